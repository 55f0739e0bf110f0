"""Bad input refused where it enters, and nothing lost: NaN/inf, dtype, range, shape, empty batches,
labels, environment variables, corrupt MNIST folders, results files, the checkpoint manifest under
concurrent writers, and the divergence guard."""
import json
import multiprocessing
import os
import struct

import numpy as np
import pytest
import torch
from torch import nn

from lecture_utils import budget as B
from lecture_utils import checkpoints as C
from lecture_utils import checks
from lecture_utils import data as D
from lecture_utils import losses as L
from lecture_utils import metrics as M
from lecture_utils import results as R
from lecture_utils import train as T
from lecture_utils.autoencoders import train_autoencoder, train_vae
from lecture_utils.gans import GANOptions, GANRun, train_conditional_gan, train_gan
from lecture_utils.models.autoencoder import MLPAutoencoder
from lecture_utils.models.conditional import ConditionalGenerator, ProjectionDiscriminator
from lecture_utils.models.gan import MLPDiscriminator, MLPGenerator


def with_nan(x: torch.Tensor, value=float("nan")) -> torch.Tensor:
    x = x.clone()
    x.view(-1)[3] = value
    return x


# --------------------------------------------------------------------------- NaN passes no range check
def test_range_checks_see_nan_and_inf():
    x = torch.rand(4, 1, 8, 8)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match=r"images must be finite, got .*(NaN|infinite)"):
            checks.check_image_batch(with_nan(x, bad), "images")
    # the comparison a NaN slips through: min/max are NaN, and NaN < 0 is False
    y = with_nan(x)
    assert not (float(y.min()) < 0 or float(y.max()) > 1)
    checks.check_image_batch(x, "images")            # clean images pass


@pytest.mark.parametrize("metric", [M.psnr, M.ssim])
def test_psnr_and_ssim_refuse_nan_empty_and_wrong_range(metric):
    target = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="prediction must be finite.*1 NaN"):
        metric(with_nan(target), target)
    with pytest.raises(ValueError, match="target must be finite"):
        metric(target, with_nan(target, float("inf")))
    with pytest.raises(ValueError, match="prediction must hold at least one example"):
        metric(target[:0], target[:0])
    with pytest.raises(ValueError, match=r"prediction must lie in \[0, 1\].*data_range=255"):
        metric(target * 255, target)
    with pytest.raises(ValueError, match="data_range must be a positive number"):
        metric(target, target, data_range=float("nan"))


def test_sample_quality_and_frechet_refuse_nan_before_eigh():
    images = torch.rand(20, 1, 28, 28)
    with pytest.raises(ValueError, match="images must be finite"):
        M.sample_quality(with_nan(images))
    with pytest.raises(ValueError, match="must be a floating-point tensor, got dtype torch.uint8.*255"):
        M.classify((images * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"images must be N x 1 x 28 x 28 \(or 32 x 32\), got shape"):
        M.classify(torch.rand(20, 1, 14, 14))
    features = torch.randn(30, 4)
    with pytest.raises(ValueError, match="features_b must be finite"):
        M.frechet_distance(features, with_nan(features))


def test_conditional_accuracy_checks_label_shape_and_range():
    images = torch.rand(6, 1, 28, 28)
    with pytest.raises(ValueError, match="requested must be a 1-D tensor of 6 class indices"):
        M.conditional_accuracy(images, torch.zeros(6, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"requested must lie in \[0, 9\] \(class indices\), got values in \[0, 12\]"):
        M.conditional_accuracy(images, torch.tensor([0, 1, 2, 3, 4, 12]))
    with pytest.raises(ValueError, match="requested must be integers"):
        M.conditional_accuracy(images, torch.zeros(6))


def test_negative_elbo_refuses_8_bit_and_nan_images():
    x = torch.rand(3, 1, 28, 28)
    logits, mu, logvar = torch.zeros(3, 1, 28, 28), torch.zeros(3, 2), torch.zeros(3, 2)
    reference = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(L.negative_elbo(x, logits, mu, logvar), reference)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\].*divide 8-bit images by 255"):
        L.negative_elbo(x * 255, logits, mu, logvar)
    with pytest.raises(ValueError, match="x must be finite"):
        L.negative_elbo(with_nan(x), logits, mu, logvar)


def test_degradations_refuse_nan_images():
    photos = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="images must be finite"):
        D.degrade(with_nan(photos), "inpainting")
    with pytest.raises(ValueError, match="images must be finite"):
        D.low_resolution(with_nan(photos), 2)


# --------------------------------------------------------------------------- training runs check their data first
def small_gan():
    torch.manual_seed(0)
    return MLPGenerator(latent_dim=8, sample_shape=(1, 8, 8), hidden=(16,)), MLPDiscriminator((1, 8, 8), hidden=(16,))


def test_train_gan_refuses_8_bit_and_nan_data_before_training():
    G, D_ = small_gan()
    before = [p.detach().clone() for p in G.parameters()]
    data = torch.rand(64, 1, 8, 8) * 2 - 1
    with pytest.raises(ValueError, match=r"data must lie in \[-1, 1\].*to_tanh_range"):
        train_gan(G, D_, (data + 1) * 127.5, 1, GANOptions(batch_size=16), progress=False)
    with pytest.raises(ValueError, match="data must be finite"):
        train_gan(G, D_, with_nan(data), 1, GANOptions(batch_size=16), progress=False)
    with pytest.raises(ValueError, match="data must be finite"):
        train_gan(G, D_, with_nan(data.flatten(1)), 1, GANOptions(batch_size=16), progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, G.parameters()))      # nothing trained


def test_train_vae_and_autoencoder_refuse_bad_data_before_training():
    from lecture_utils.models.vae import MLPVAE

    images = torch.rand(32, 1, 28, 28)
    with pytest.raises(ValueError, match="images must be finite"):
        train_vae(MLPVAE(latent_size=2, hidden=16), with_nan(images), 1, batch_size=16)
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\].*255"):
        train_autoencoder(MLPAutoencoder(2, hidden=(16,)), images * 255, 1, batch_size=16, progress=False)
    with pytest.raises(ValueError, match="must be a floating-point tensor, got dtype torch.uint8"):
        train_autoencoder(MLPAutoencoder(2, hidden=(16,)), (images * 255).to(torch.uint8), 1, batch_size=16,
                          progress=False)


def test_fit_reports_nan_in_the_data_as_data():
    batches = D.BatchIterator(with_nan(torch.rand(20, 3)), batch_size=5)
    with pytest.raises(ValueError, match="training data .* must be finite"):
        T.fit(lambda batch: {"loss": batch.sum()}, batches, 1, progress=False)


def test_conditional_forward_checks_labels_without_reading_them():
    # On the meta device a tensor has a shape and a dtype but no values: reading one (int(labels.min()))
    # raises, so a forward pass that runs here does not sync with the device for its labels.
    with torch.device("meta"):
        G = ConditionalGenerator(latent_dim=8, features=8, embedding_dim=4)
        Dm = ProjectionDiscriminator(features=8, hidden=16)
        z, labels = torch.randn(5, 8), torch.zeros(5, dtype=torch.long)
        images = G(z, labels)
        assert images.shape == (5, 1, 28, 28)
        assert Dm(images, labels).shape[0] == 5
        with pytest.raises(ValueError, match="labels must be a 1-D tensor of 5 class indices"):
            G(z, labels[:, None])
        with pytest.raises(ValueError, match="labels must be integers"):
            G(z, labels.float())


def test_conditional_training_refuses_out_of_range_labels():
    G = ConditionalGenerator(latent_dim=8, features=8, embedding_dim=4)
    Dm = ProjectionDiscriminator(features=8, hidden=16)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\] \(class indices\), got values in \[0, 200\]"):
        train_conditional_gan(G, Dm, torch.rand(8, 1, 28, 28), torch.tensor([0] * 7 + [200]), 1, progress=False)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float64])
def test_models_refuse_uint8_and_float64_inputs_with_a_clear_error(dtype):
    from lecture_utils.models.vae import ConvVAE

    x = torch.rand(2, 1, 28, 28)
    x = (x * 255).to(dtype) if dtype == torch.uint8 else x.to(dtype)
    for model in (MLPAutoencoder(2, hidden=(16,)), ConvVAE(latent_size=2, channels=4, hidden=8)):
        with pytest.raises(ValueError, match=f"x must be a torch.float32 tensor|x must have the model's dtype"):
            model(x)



def _model_inputs():
    """(name, call, input maker, argument name) for the models whose forward gave a raw torch error on uint8 or
    float64 input: each maker takes (n, dtype) and returns the argument the check must name."""
    from lecture_utils.models.autoencoder import MLPAutoencoder
    from lecture_utils.models.classifier import MNISTClassifier
    from lecture_utils.models.diffusion_unet import DiffusionUNet, LatentDenoiser
    from lecture_utils.models.style import RandomMultiScaleFeatures, VGG19Features
    from lecture_utils.models.text_to_image import SceneAttributeClassifier, TextToImageVAE, Tokenizer
    from lecture_utils.models.vae import ConvVAE

    ids = Tokenizer().encode(["a red circle on the left", "a blue square"])
    t, y = torch.tensor([3, 7]), torch.tensor([1, 2])
    vae = ConvVAE(latent_size=2, channels=4, hidden=8)
    return [
        ("MNISTClassifier", MNISTClassifier(), lambda n, d: torch.zeros(n, 1, 28, 28, dtype=d), "images"),
        ("SceneAttributeClassifier", SceneAttributeClassifier(channels=4), lambda n, d: torch.zeros(n, 3, 32, 32, dtype=d), "images"),
        ("TextToImageVAE", lambda x: TextToImageVAE(len(Tokenizer()), channels=8)(x, ids[:len(x)]),
         lambda n, d: torch.zeros(n, 3, 32, 32, dtype=d), "images"),
        ("RandomMultiScaleFeatures", RandomMultiScaleFeatures(channels=4, scales=2), lambda n, d: torch.zeros(n, 3, 16, 16, dtype=d), "images"),
        ("VGG19Features", VGG19Features(layers=("conv1_1",)), lambda n, d: torch.zeros(n, 3, 16, 16, dtype=d), "images"),
        ("DiffusionUNet", lambda x: DiffusionUNet(1, channels=(8, 8, 8), emb_dim=16)(x, t[:len(x)], y[:len(x)]),
         lambda n, d: torch.zeros(n, 1, 28, 28, dtype=d), "x"),
        ("LatentDenoiser", lambda z: LatentDenoiser(latent_dim=4, hidden=16, depth=1, emb_dim=16)(z, t[:len(z)], y[:len(z)]),
         lambda n, d: torch.zeros(n, 4, dtype=d), "z"),
        ("ConvVAE.decode", vae.decode, lambda n, d: torch.zeros(n, 2, dtype=d), "z"),
        ("MLPAutoencoder.decode", MLPAutoencoder(2, hidden=(16,)).decode, lambda n, d: torch.zeros(n, 2, dtype=d), "code"),
        ("ConditionalGenerator", lambda z: ConditionalGenerator(latent_dim=8, features=8, embedding_dim=4)(z, y[:len(z)]),
         lambda n, d: torch.zeros(n, 8, dtype=d), "z"),
    ]


@pytest.mark.parametrize("case", range(10))
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float64])
def test_more_models_refuse_uint8_and_float64_naming_the_argument(case, dtype):
    name, call, make, argument = _model_inputs()[case]
    expected = (rf"{argument} must be a torch.float32 tensor, got dtype torch.uint8 \(divide 8-bit images by 255"
                if dtype == torch.uint8 else rf"{argument} must have the model's dtype torch.float32, got torch.float64")
    with pytest.raises(ValueError, match=expected):
        call(make(2, dtype))
    call(make(2, torch.float32))                                 # the right dtype still runs


@pytest.mark.parametrize("case", range(5))
def test_image_models_refuse_an_empty_batch_naming_the_argument(case):
    name, call, make, argument = _model_inputs()[case]
    with pytest.raises(ValueError, match=r"(images|ids) must hold at least one example, got an empty tensor"):
        call(make(0, torch.float32))


def test_text_to_image_vae_refuses_images_and_captions_of_different_counts():
    from lecture_utils.models.text_to_image import TextToImageVAE, Tokenizer

    tokenizer = Tokenizer()
    model = TextToImageVAE(len(tokenizer), channels=8)
    with pytest.raises(ValueError, match="images and ids must hold one row per scene, got 3 images and 2 captions"):
        model(torch.rand(3, 3, 32, 32), tokenizer.encode(["a red circle", "a blue square"]))


# --------------------------------------------------------------------------- environment variables
def test_device_variable_is_validated_up_front(monkeypatch):
    for value in ("tpu", "meta", "gpu", "cuda:x"):
        monkeypatch.setenv("LECTURE_UTILS_DEVICE", value)
        with pytest.raises(ValueError, match=f"LECTURE_UTILS_DEVICE must be one of cpu, cuda, cuda:N or mps, got '{value}'"):
            B.get_device()
    monkeypatch.setenv("LECTURE_UTILS_DEVICE", " CPU ")
    assert B.get_device() == torch.device("cpu")
    if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        monkeypatch.setenv("LECTURE_UTILS_DEVICE", "mps")
        with pytest.raises(ValueError, match="LECTURE_UTILS_DEVICE='mps' requested but MPS"):
            B.get_device()
    with pytest.raises(ValueError, match="preference must be one of"):
        B.get_device("meta")


def test_on_off_variables_accept_the_usual_spellings_and_refuse_others(monkeypatch):
    for value, expected in (("on", True), ("YES", True), ("True", True), ("1", True),
                            ("off", False), ("No", False), ("false", False), ("0", False)):
        monkeypatch.setenv("LECTURE_UTILS_OFFLINE", value)
        assert B.offline() is expected
        monkeypatch.setenv("LECTURE_UTILS_PRESENT", value)
        assert B.presenting() is expected
    for variable, call in (("LECTURE_UTILS_OFFLINE", B.offline), ("LECTURE_UTILS_PRESENT", B.presenting),
                           ("LECTURE_UTILS_PRETRAINED", B.use_pretrained)):
        monkeypatch.setenv(variable, "maybe")
        with pytest.raises(ValueError, match=f"{variable} must be 1 or 0 .*got 'maybe'"):
            call()
        monkeypatch.delenv(variable)
    monkeypatch.setenv("LECTURE_UTILS_BUDGET", "tiny")
    with pytest.raises(ValueError, match="LECTURE_UTILS_BUDGET must be one of smoke, standard, full; got 'tiny'"):
        B.get_budget()


def test_start_refuses_a_bad_variable_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setenv("LECTURE_UTILS_ROOT", str(tmp_path))
    monkeypatch.setenv("LECTURE_UTILS_DEVICE", "tpu")
    with pytest.raises(ValueError, match="LECTURE_UTILS_DEVICE"):
        R.start("01_autoencoders")


# --------------------------------------------------------------------------- corrupt MNIST folders
def write_idx(raw, prefix, images, labels, image_magic=0x803, label_magic=0x801, cut=0):
    raw.mkdir(parents=True, exist_ok=True)
    payload = struct.pack(">IIII", image_magic, *images.shape) + images.astype(np.uint8).tobytes()
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(payload[:len(payload) - cut])
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", label_magic, len(labels)) + np.asarray(labels, dtype=np.uint8).tobytes())


@pytest.mark.parametrize("case, message", [
    ("bad_magic", r"train-images-idx3-ubyte' has magic number 0x00000a03, expected 0x00000803"),
    ("truncated", r"train-images-idx3-ubyte' is 39216 bytes, but its header \(50 x 28 x 28\) needs 39216|truncated"),
    ("counts", r"holds 500 images but .*train-labels-idx1-ubyte' holds 100 labels"),
    ("small", r"train-images-idx3-ubyte' holds 14 x 14 images, expected 28 x 28"),
    ("labels", r"train-labels-idx1-ubyte' holds labels up to 200, expected digits 0-9"),
])
def test_corrupt_mnist_folder_names_the_file(tmp_path, case, message, capsys):
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    labels = np.arange(50) % 10
    if case == "bad_magic":
        write_idx(raw, "train", rng.integers(0, 256, (50, 28, 28)), labels, image_magic=0xA03)
    elif case == "truncated":
        write_idx(raw, "train", rng.integers(0, 256, (50, 28, 28)), labels, cut=1000)
    elif case == "counts":
        write_idx(raw, "train", rng.integers(0, 256, (500, 28, 28)), np.arange(100) % 10)
    elif case == "small":
        write_idx(raw, "train", rng.integers(0, 256, (50, 14, 14)), labels)
    else:
        write_idx(raw, "train", rng.integers(0, 256, (50, 28, 28)), np.minimum(np.arange(50) * 5, 200))
    write_idx(raw, "t10k", rng.integers(0, 256, (10, 28, 28)), np.arange(10))
    with pytest.raises(ValueError, match=message) as error:
        D.load_mnist("train", root=tmp_path, download=False)
    assert "delete" in str(error.value)
    assert "torchvision MNIST" not in capsys.readouterr().out


def test_intact_mnist_folder_still_loads(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28))
    write_idx(tmp_path / "MNIST" / "raw", "train", images, np.arange(40) % 10)
    write_idx(tmp_path / "MNIST" / "raw", "t10k", images[:10], np.arange(10))
    data = D.load_mnist("train", root=tmp_path, download=False, verbose=False)
    assert data.source == "torchvision MNIST" and data.labels.tolist() == [i % 10 for i in range(40)]
    np.testing.assert_allclose(data.images[:, 0].numpy(), images / 255.0, atol=1e-6)


# --------------------------------------------------------------------------- results files
def strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"invalid JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def session(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURE_UTILS_ROOT", str(tmp_path))
    return R.start("99_checks")


def test_results_are_valid_json_with_nan_as_null(session):
    session.write_results(loss=torch.tensor(float("nan")), scores=np.array([1.0, np.inf]),
                          ratio=np.float32("nan"), ok=0.5)
    record = strict_json(session.results_path().read_text())
    assert record["loss"] is None and record["scores"] == [1.0, None] and record["ratio"] is None
    assert record["ok"] == 0.5


def test_results_refuse_names_that_overwrite_fields_or_leave_the_folder(session, tmp_path):
    with pytest.raises(ValueError, match=r"metric names \['budget', 'device'\] are fields"):
        session.write_results(budget="fake", device="tpu")
    for stem in ("../escape", "a/b", "..", ""):
        with pytest.raises(ValueError, match="stem must be a notebook name without path separators"):
            R.start(stem)
        with pytest.raises(ValueError, match="stem must be"):
            R.Session(stem=stem, budget=session.budget, device=session.device, seed=0)
    assert not (tmp_path / "build" / "escape.json").exists()


def _write_many(stem, worker, barrier):
    session = R.start(stem)
    barrier.wait()
    for i in range(30):
        session.write_results(worker=worker, i=i)


def test_concurrent_results_writers_never_fail_or_leave_a_broken_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURE_UTILS_ROOT", str(tmp_path))
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(4)
    workers = [context.Process(target=_write_many, args=("99_race", w, barrier)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    record = strict_json((tmp_path / "build" / "results" / "99_race.json").read_text())
    assert record["i"] == 29 and record["worker"] in range(4)
    assert not list((tmp_path / "build" / "results").glob("*.tmp"))


def test_build_folder_follows_its_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURE_UTILS_ROOT", str(tmp_path / "course"))
    monkeypatch.setenv("LECTURE_UTILS_BUILD", str(tmp_path / "elsewhere"))
    R.start("01_autoencoders").write_results(answer=1.0)
    assert (tmp_path / "elsewhere" / "results" / "01_autoencoders.json").is_file()
    assert not (tmp_path / "course" / "build").exists()


def test_unwritable_build_folder_is_found_at_start(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURE_UTILS_ROOT", str(tmp_path))
    (tmp_path / "build").write_text("a file where the build folder should be")
    with pytest.raises(RuntimeError, match="results folder"):
        R.start("01_autoencoders")
    if os.geteuid() != 0:      # root may write anywhere
        (tmp_path / "build").unlink()
        (tmp_path / "build" / "results").mkdir(parents=True)
        (tmp_path / "build" / "results").chmod(0o555)
        try:
            with pytest.raises(RuntimeError, match="is not writable"):
                R.start("01_autoencoders")
        finally:
            (tmp_path / "build" / "results").chmod(0o755)


# --------------------------------------------------------------------------- the checkpoint manifest
def _ship_many(worker, barrier):
    barrier.wait()
    for j in range(4):
        torch.manual_seed(10 * worker + j)
        C.ship(f"model_{worker}_{j}", {"model": nn.Linear(8, 4).state_dict()}, trained_by="test",
               metrics={"worker": worker, "j": j})


def test_concurrent_ship_keeps_every_manifest_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURE_UTILS_ROOT", str(tmp_path))
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(6)
    workers = [context.Process(target=_ship_many, args=(w, barrier)) for w in range(6)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
    assert [p.exitcode for p in workers] == [0] * 6
    manifest = strict_json(C.manifest_path().read_text())
    assert sorted(manifest) == sorted(f"model_{w}_{j}" for w in range(6) for j in range(4))
    for name, info in manifest.items():
        assert C.sha256_of(C.checkpoints_dir() / info["file"]) == info["sha256"]
        state = C.load_shipped(name)
        torch.manual_seed(10 * info["metrics"]["worker"] + info["metrics"]["j"])
        torch.testing.assert_close(state["model"]["weight"], nn.Linear(8, 4).weight.detach())
    assert not list(C.checkpoints_dir().glob("*.tmp"))


def test_ship_refuses_nan_metrics_and_path_names(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURE_UTILS_ROOT", str(tmp_path))
    state = {"model": nn.Linear(2, 2).state_dict()}
    with pytest.raises(ValueError, match="finite JSON values"):
        C.ship("model", state, trained_by="test", metrics={"psnr": float("nan")})
    for name in ("../model", "a/b", ".."):
        with pytest.raises(ValueError, match="name must be a file name"):
            C.ship(name, state, trained_by="test", metrics={})
    assert not C.manifest_path().exists() and not list(tmp_path.rglob("*.pt"))


def test_broken_manifest_and_entries_raise_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURE_UTILS_ROOT", str(tmp_path))
    C.checkpoints_dir().mkdir(parents=True)
    C.manifest_path().write_text('{"vae": {"file": "vae.pt", ')
    with pytest.raises(C.CheckpointError, match=r"manifest.json' is not valid JSON"):
        C.load_shipped("vae")
    C.manifest_path().write_text(json.dumps({"vae": {"file": "vae.pt", "trained_by": "scripts/x.py"}}))
    with pytest.raises(C.CheckpointError, match="entry 'vae' has no sha256.*scripts/x.py"):
        C.load_shipped("vae")
    C.manifest_path().write_text("[1, 2]")
    with pytest.raises(C.CheckpointError, match="must map each checkpoint name"):
        C.read_manifest()


def test_resume_without_rng_state_and_shape_mismatch_give_whole_messages(tmp_path):
    path = tmp_path / "run.pt"
    model = nn.Linear(3, 2)
    C.save_checkpoint(path, {"state": {"model": model.state_dict()}, "history": [], "epoch": 1})
    batches = D.BatchIterator(torch.rand(10, 3), batch_size=5)
    step = lambda batch: {"loss": model(batch).pow(2).mean()}        # noqa: E731
    with pytest.raises(C.CheckpointError, match=r"run.pt' cannot resume a run: it has no rng"):
        T.fit(step, batches, 2, state={"model": model}, checkpoint=path, resume=True, progress=False)
    other = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with pytest.raises(C.CheckpointError) as error:
        C.load_into({"model": nn.Linear(5, 7)}, {"model": model.state_dict()}, path)
    message = str(error.value)
    assert "size mismatch for weight" in message and "size mismatch for bias" in message
    with pytest.raises(C.CheckpointError, match="Missing key"):
        C.load_into({"model": other}, {"model": model.state_dict()}, path)


# --------------------------------------------------------------------------- the divergence guard
def test_exploding_but_finite_loss_stops_the_run(tmp_path):
    torch.manual_seed(0)
    images = (torch.rand(500, 1, 28, 28) > 0.8).float()            # binary images, as MNIST nearly is
    model = MLPAutoencoder(2, hidden=(32,))
    with pytest.raises(T.DivergenceError, match=r"loss 'loss' grew from about .* \(more than 10000 times\)"):
        train_autoencoder(model, images, 5, batch_size=50, lr=1e6, progress=False,
                          checkpoint=tmp_path / "ae.pt")


def test_non_finite_weights_with_finite_loss_stop_the_run_and_are_never_saved(tmp_path):
    model = nn.Linear(3, 1)
    batches = D.BatchIterator(torch.rand(20, 3), batch_size=5, shuffle=False)
    calls = [0]

    def step(batch):
        calls[0] += 1
        if calls[0] == 6:                                # in epoch 2: a weight goes NaN, the loss stays 0
            with torch.no_grad():
                model.weight[0, 1] = float("nan")
        return {"loss": torch.zeros(())}

    path = tmp_path / "run.pt"
    with pytest.raises(T.DivergenceError, match=r"weights model.weight hold NaN .* epoch 2.*run.pt' \(epoch 1\)"):
        T.fit(step, batches, 3, state={"model": model}, checkpoint=path, progress=False)
    saved = C.load_checkpoint(path)
    assert saved["epoch"] == 1 and bool(torch.isfinite(saved["state"]["model"]["weight"]).all())


def test_save_checkpoint_refuses_non_finite_values_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.pt"
    good = nn.Linear(2, 2).state_dict()
    C.save_checkpoint(path, {"model": good})
    bad = {k: v.clone() for k, v in good.items()}
    bad["bias"][0] = float("inf")
    with pytest.raises(T.DivergenceError, match=r"state\['model'\]\['bias'\].*still holds the last good"):
        C.save_checkpoint(path, {"model": bad})
    torch.testing.assert_close(C.load_checkpoint(path)["model"]["bias"], good["bias"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_nan_loss_message_blames_the_model_once_the_data_were_checked():
    batches = D.BatchIterator(torch.rand(20, 3), batch_size=5)
    with pytest.raises(T.DivergenceError, match="data were checked and are finite.*smaller learning rate"):
        T.fit(lambda batch: {"loss": torch.tensor(float("nan"))}, batches, 1, progress=False)


# --------------------------------------------------------------------------- small bugs
def test_gan_run_sample_refuses_a_seed_it_cannot_use():
    G, D_ = small_gan()
    run = GANRun(G, D_, T.History(), torch.zeros(1, 8))
    torch.testing.assert_close(run.sample(4, seed=3), run.sample(4, seed=3))
    assert not torch.equal(run.sample(4, seed=3), run.sample(4, seed=4))
    torch.testing.assert_close(run.sample(4), run.sample(4, seed=0))
    codes = torch.randn(4, 8)
    torch.testing.assert_close(run.sample(4, noise=lambda m: codes[:m]), G.eval()(codes).detach())
    with pytest.raises(ValueError, match="seed=5 has no effect when noise is given"):
        run.sample(4, seed=5, noise=lambda m: codes[:m])


def test_text_to_image_generate_restores_the_training_mode():
    from lecture_utils import text_to_image as TTI
    from lecture_utils.models.text_to_image import TextToImageVAE, Tokenizer

    tokenizer = Tokenizer()
    model = TextToImageVAE(len(tokenizer), channels=8)
    for mode in (True, False):
        model.train(mode)
        images = TTI.generate(model, tokenizer, "a red circle on the left", samples_per_caption=2)
        assert images.shape == (2, 3, 32, 32) and model.training is mode

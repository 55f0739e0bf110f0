import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA as SkPCA

import lecture_utils
from lecture_utils import plotting, results
from lecture_utils.metrics import nearest_neighbours, reconstruction_mse
from lecture_utils.models.autoencoder import PCA, ConvAutoencoder, MLPAutoencoder
from lecture_utils.train import History


def test_grid_array_tiles_images():
    images = torch.zeros(6, 1, 8, 8)
    images[2] = 1.0
    grid = plotting.grid_array(images, nrow=3, padding=2)
    assert grid.shape == (2 * 8 + 3 * 2, 3 * 8 + 4 * 2, 3)
    # image 2 sits in the first row, third column: all white
    assert np.allclose(grid[2:10, 2 + 2 * 10:2 + 2 * 10 + 8], 1.0)
    assert np.allclose(grid[2:10, 2:10], 0.0)
    with pytest.raises(ValueError, match="N x C x H x W"):
        plotting.grid_array(torch.zeros(2, 4, 8, 8))


def test_figures_have_fixed_sizes_and_content():
    fig = plotting.image_grid(torch.rand(16, 3, 8, 8), nrow=4, title="x")
    assert tuple(fig.get_size_inches()) == plotting.GRID_SIZE
    plt.close(fig)
    fig = plotting.latent_scatter(torch.randn(50, 2), torch.arange(50) % 10, title="codes")
    ax = fig.axes[0]
    assert len(ax.collections[0].get_offsets()) == 50
    assert ax.get_legend() is not None
    plt.close(fig)
    history = History([{"epoch": 1, "loss": 2.0, "wall_time_s": 1}, {"epoch": 2, "loss": 1.0, "wall_time_s": 1}])
    fig = plotting.loss_curves(history)
    assert list(fig.axes[0].lines[0].get_ydata()) == [2.0, 1.0]
    assert tuple(fig.get_size_inches()) == plotting.WIDE_SIZE
    plt.close(fig)
    fig = plotting.image_rows([torch.rand(5, 1, 8, 8)] * 2, ["in", "out"])
    assert len(fig.axes) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="N x 2"):
        plotting.latent_scatter(torch.randn(5, 3), torch.arange(5))
    with pytest.raises(ValueError, match="history is empty"):
        plotting.loss_curves([])


def test_pca_matches_scikit_learn():
    torch.manual_seed(0)
    x = torch.rand(200, 1, 28, 28) ** 3
    ours = PCA(code_size=10).fit(x)
    reference = SkPCA(n_components=10, svd_solver="full").fit(x.reshape(200, -1).numpy())
    ours_rec = ours.reconstruct(x).reshape(200, -1).numpy()
    ref_rec = reference.inverse_transform(reference.transform(x.reshape(200, -1).numpy()))
    np.testing.assert_allclose(ours_rec, ref_rec, atol=1e-4)


@pytest.mark.parametrize("cls", [MLPAutoencoder, ConvAutoencoder])
def test_autoencoder_shapes(cls):
    model = cls(code_size=5)
    x = torch.rand(7, 1, 28, 28)
    assert model.encode(x).shape == (7, 5)
    assert model(x).shape == (7, 1, 28, 28)
    out = model.reconstruct(x)
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    with pytest.raises(ValueError, match="N x 1 x 28 x 28"):
        model(torch.rand(7, 28, 28))
    with pytest.raises(ValueError, match="N x 5"):
        model.decode(torch.rand(7, 4))


def test_nearest_neighbours_against_brute_force():
    torch.manual_seed(0)
    ref = torch.rand(40, 1, 4, 4)
    queries = torch.cat([ref[[3, 17]], torch.rand(5, 1, 4, 4)])
    dist, index = nearest_neighbours(queries, ref, chunk=3)
    brute = ((queries.reshape(7, 1, -1) - ref.reshape(1, 40, -1)) ** 2).mean(-1).sqrt()
    assert torch.allclose(dist, brute.min(1).values, atol=1e-5)
    assert index[:2].tolist() == [3, 17] and float(dist[:2].max()) < 1e-3
    assert reconstruction_mse(ref, ref) == 0.0


def test_results_file_has_the_standard_fields(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURE_UTILS_ROOT", str(tmp_path))
    nb = results.start("01_autoencoders")
    record = nb.write_results(ae_mse=torch.tensor(0.5), codes=np.array([1, 2]), bad=float("nan"))
    path = tmp_path / "build" / "results" / "01_autoencoders.json"
    stored = json.loads(path.read_text())
    assert stored == record
    for key in ("budget", "device", "data_source", "wall_time_s"):
        assert key in stored
    assert stored["budget"] == "smoke" and stored["ae_mse"] == 0.5 and stored["codes"] == [1, 2]
    assert stored["bad"] is None
    samples = nb.save_samples(torch.rand(4, 1, 28, 28), labels=torch.arange(4))
    loaded = np.load(samples)
    assert loaded["images"].dtype == np.uint8 and loaded["images"].shape == (4, 1, 28, 28)
    assert loaded["labels"].tolist() == [0, 1, 2, 3]


def test_start_names_where_the_main_model_comes_from(tmp_path, monkeypatch, capsys):
    """The first line says "shipped checkpoint" when the notebook will load its main model: in presenter mode, and
    in a budget that does not train it (notebook 10's standard budget), else "trained here"."""
    monkeypatch.setenv("LECTURE_UTILS_ROOT", str(tmp_path))
    monkeypatch.delenv("LECTURE_UTILS_PRESENT", raising=False)
    monkeypatch.delenv("LECTURE_UTILS_PRETRAINED", raising=False)
    for budget, stem, expected in (("smoke", "10_diffusion", "trained here"),
                                   ("standard", "10_diffusion", "shipped checkpoint"),
                                   ("standard", "01_autoencoders", "trained here")):
        monkeypatch.setenv("LECTURE_UTILS_BUDGET", budget)
        nb = results.start(stem)
        assert f"main model: {expected}" in capsys.readouterr().out, (budget, stem)
        assert nb.trains_main_model == (expected == "trained here"), (budget, stem)


def test_require_version():
    lecture_utils.require("0.0.1")
    with pytest.raises(RuntimeError, match="needs lecture_utils >= 99.0"):
        lecture_utils.require("99.0")


def test_presenter_session_loads_shipped_weights(monkeypatch, tmp_path):
    import matplotlib

    from lecture_utils.metrics import classify
    from lecture_utils.data import load_mnist
    from lecture_utils.models.classifier import MNISTClassifier

    monkeypatch.setenv("LECTURE_UTILS_PRESENT", "1")
    monkeypatch.delenv("LECTURE_UTILS_PRETRAINED", raising=False)
    with matplotlib.rc_context():
        nb = results.start("01_autoencoders")
        assert nb.present and nb.pretrained and matplotlib.rcParams["font.size"] >= 16
    fresh = MNISTClassifier()
    model = nb.load_shipped("mnist_classifier", fresh)
    assert model is fresh and not model.training
    test = load_mnist("test", verbose=False)
    with torch.no_grad():
        ours = model(test.images[:100]).argmax(1)
    assert torch.equal(ours, classify(test.images[:100])[0])
    assert nb.loaded_checkpoints == ["mnist_classifier"]
    from lecture_utils.checkpoints import CheckpointError

    with pytest.raises(CheckpointError, match="does not match 'model'"):
        nb.load_shipped("mnist_classifier", torch.nn.Linear(2, 2))
    assert nb.loaded_checkpoints == ["mnist_classifier"]


def test_save_samples_writes_uint8_atomically_and_checks_its_input(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURE_UTILS_ROOT", str(tmp_path))
    images = torch.rand(6, 3, 8, 8)
    path = results.save_samples("09_text_to_image", images, captions=[f"caption {i}" for i in range(6)])
    assert path == tmp_path / "build" / "results" / "09_text_to_image_samples.npz"
    loaded = np.load(path)
    assert loaded["images"].dtype == np.uint8
    np.testing.assert_array_equal(loaded["images"], np.round(images.numpy() * 255).astype(np.uint8))
    assert loaded["captions"].tolist() == [f"caption {i}" for i in range(6)] and "labels" not in loaded
    # a second writer replaces the file whole; no temporary file is left behind
    results.save_samples("09_text_to_image", torch.zeros(2, 1, 4, 4), labels=torch.tensor([3, 4]))
    assert np.load(path)["labels"].tolist() == [3, 4]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    with pytest.raises(ValueError, match="images must be an N x C x H x W tensor"):
        results.save_samples("x", torch.rand(4, 8, 8))
    with pytest.raises(ValueError, match="labels must be a 1-D tensor of 4 class indices"):
        results.save_samples("x", torch.rand(4, 1, 8, 8), labels=torch.arange(3))
    with pytest.raises(ValueError, match="captions must be 4 strings"):
        results.save_samples("x", torch.rand(4, 1, 8, 8), captions=["a"])
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]

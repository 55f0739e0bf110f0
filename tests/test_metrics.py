import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from lecture_utils import metrics
from lecture_utils.checkpoints import entry, load_shipped, sha256_of, checkpoints_dir
from lecture_utils.data import load_mnist
from lecture_utils.checkpoints import CheckpointError


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The offline digits, explicitly (an empty root, no download): the classifier's shipped metrics were
    measured on them, whatever MNIST files an earlier run left in data/."""
    empty = tmp_path_factory.mktemp("no_mnist_here")
    train = load_mnist("train", root=empty, download=False, verbose=False)
    return train.images[:600], load_mnist("test", root=empty, download=False, verbose=False)


def test_shipped_classifier_is_small_verified_and_accurate(digits):
    info = entry("mnist_classifier")
    path = checkpoints_dir() / info["file"]
    assert path.stat().st_size <= 1_000_000
    assert sha256_of(path) == info["sha256"]
    _, test = digits
    assert test.source == info["data_source"]   # the manifest's accuracy was measured on these digits
    labels, confidence = metrics.classify(test.images)
    accuracy = float((labels == test.labels).float().mean())
    assert accuracy >= 0.97
    assert accuracy == pytest.approx(info["metrics"]["test_accuracy"], abs=0.002)
    assert float(confidence.min()) > 0 and float(confidence.max()) <= 1


def test_corrupted_shipped_checkpoint_says_how_to_retrain(tmp_path, monkeypatch):
    import shutil

    from lecture_utils import checkpoints

    fake = tmp_path / "data" / "checkpoints"
    fake.mkdir(parents=True)
    shutil.copy(checkpoints.manifest_path(), fake / "manifest.json")
    original = checkpoints_dir() / entry("mnist_classifier")["file"]
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (fake / original.name).write_bytes(bytes(data))
    monkeypatch.setattr(checkpoints, "checkpoints_dir", lambda: fake)
    with pytest.raises(CheckpointError, match="corrupted or was replaced; retrain it with: python scripts/train_metrics_classifier.py"):
        load_shipped("mnist_classifier")
    (fake / original.name).unlink()
    with pytest.raises(CheckpointError, match="is missing"):
        load_shipped("mnist_classifier")
    with pytest.raises(CheckpointError, match="no shipped checkpoint named 'nope'"):
        load_shipped("nope")


def test_frechet_distance_matches_scipy_closed_form():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 5, generator=g, dtype=torch.float64)
    b = torch.randn(300, 5, generator=g, dtype=torch.float64) * 2 + 1
    mu_a, mu_b = a.mean(0).numpy(), b.mean(0).numpy()
    ca, cb = np.cov(a.numpy().T), np.cov(b.numpy().T)
    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="same d"):
        metrics.frechet_distance(a, b[:, :3])


def test_frechet_distance_rises_with_noise_and_blur(digits):
    images, test = digits
    noise = [metrics.sample_quality((images + s * torch.randn_like(images)).clamp(0, 1))["frechet_distance"]
             for s in (0.0, 0.1, 0.2, 0.4)]
    assert all(x < y for x, y in zip(noise, noise[1:])), noise

    def blur(x, sigma):
        radius = 4
        t = torch.arange(-radius, radius + 1, dtype=torch.float32)
        k = torch.exp(-t ** 2 / (2 * sigma ** 2))
        k = (k / k.sum())
        x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
        return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))

    blurred = [noise[0]] + [metrics.sample_quality(blur(images, s))["frechet_distance"] for s in (0.7, 1.2, 2.0)]
    assert all(x < y for x, y in zip(blurred, blurred[1:])), blurred


def test_real_digits_beat_an_untrained_generator(digits):
    images, _ = digits
    torch.manual_seed(0)
    untrained = torch.nn.Sequential(torch.nn.Linear(16, 784), torch.nn.Sigmoid(), torch.nn.Unflatten(1, (1, 28, 28)))
    with torch.no_grad():
        fake = untrained(torch.randn(600, 16))
    real, bad = metrics.sample_quality(images), metrics.sample_quality(fake)
    assert real["frechet_distance"] < 0.2 * bad["frechet_distance"]
    assert real["classes_covered"] == 10 and real["coverage_entropy"] > 0.95 * np.log(10)
    # noise collapses onto one or two "digits": confidence alone can be fooled, coverage cannot
    assert bad["classes_covered"] < real["classes_covered"]
    assert bad["coverage_entropy"] < 0.5 * real["coverage_entropy"]
    assert sum(real["class_shares"]) == pytest.approx(1.0, abs=1e-3)


def test_conditional_accuracy_and_32px_inputs(digits):
    _, test = digits
    x32 = F.pad(test.images[:200], (2, 2, 2, 2))
    assert metrics.conditional_accuracy(x32, test.labels[:200]) > 0.9
    assert metrics.conditional_accuracy(test.images[:200], (test.labels[:200] + 1) % 10) < 0.1
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        metrics.sample_quality(test.images[:10] * 2 - 1)
    with pytest.raises(ValueError, match="N x 1 x 28 x 28"):
        metrics.classify(torch.rand(4, 3, 28, 28))


@pytest.mark.parametrize("metric", [metrics.gradient_magnitude, metrics.high_frequency_energy,
                                    lambda x: metrics.sharpness_ratio(x, torch.rand(x.shape)),
                                    lambda x: metrics.reconstruction_mse(x, torch.rand(x.shape)),
                                    lambda x: metrics.nearest_neighbours(x, torch.rand(3, *x.shape[1:]))])
def test_pixel_metrics_refuse_8_bit_nan_and_empty_images(metric):
    images = torch.rand(4, 1, 8, 8)
    with pytest.raises(ValueError, match=r"must be a floating-point tensor, got dtype torch.uint8 \(divide 8-bit"):
        metric((images * 255).to(torch.uint8))
    nan = images.clone()
    nan[1, 0, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="must be finite, got 1 NaN"):
        metric(nan)
    with pytest.raises(ValueError, match="must hold at least one example"):
        metric(images[:0])
    result = metric(images)                                       # float images in [0, 1] are scored
    assert torch.isfinite(torch.as_tensor(result[0] if isinstance(result, tuple) else result)).all()


def test_radial_power_spectrum_against_closed_forms():
    torch.manual_seed(0)
    # white noise: every frequency carries the pixel variance (Parseval), here 1/12 for uniform noise
    frequencies, power = metrics.radial_power_spectrum(torch.rand(64, 1, 48, 48))
    assert frequencies.shape == power.shape == (14,)
    assert torch.allclose(power, torch.full_like(power, 1 / 12), rtol=0.08)
    x = torch.arange(48.0)
    wave = (0.5 + 0.5 * torch.cos(2 * torch.pi * 0.25 * x)).expand(4, 1, 48, 48)      # 0.25 cycles per pixel
    frequencies, power = metrics.radial_power_spectrum(wave)
    edges = torch.linspace(0, 0.5 * 2 ** 0.5, 15)
    assert edges[int(power.argmax())] <= 0.25 < edges[int(power.argmax()) + 1]
    checkerboard = (0.5 + 0.5 * (-1) ** (x[:, None] + x[None, :])).expand(2, 3, 48, 48)   # (0.5, 0.5)
    assert int(metrics.radial_power_spectrum(checkerboard)[1].argmax()) == 13
    photos = torch.rand(16, 3, 48, 48)
    blurred = gaussian_blur(photos, kernel_size=13, sigma=2.0)
    ratio = metrics.radial_power_spectrum(blurred)[1] / metrics.radial_power_spectrum(photos)[1]
    assert ratio[-4:].max() < 0.05 and ratio[0] > 0.5        # blur removes the high rings, keeps the low ones


def test_radial_power_spectrum_refuses_bad_input():
    with pytest.raises(ValueError, match="bins must be an int >= 2"):
        metrics.radial_power_spectrum(torch.rand(2, 3, 32, 32), bins=1)
    with pytest.raises(ValueError, match="too small"):
        metrics.radial_power_spectrum(torch.rand(2, 3, 4, 4), bins=14)
    with pytest.raises(ValueError, match="finite"):
        metrics.radial_power_spectrum(torch.full((2, 3, 32, 32), float("nan")))

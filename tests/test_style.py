"""Notebook 08: Gram matrix and style losses against their explicit formulas, the VGG-19 weights path
(exercised offline on a seeded torch hub cache), the offline fallback, the pixel optimisation, images."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lecture_utils import data as D
from lecture_utils import losses as L
from lecture_utils import style_transfer as ST
from lecture_utils.models import style as S


# --------------------------------------------------------------------------- losses
def test_gram_matrix_matches_the_explicit_double_sum():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 4, 3, 5, generator=g, dtype=torch.float64)
    gram = L.gram_matrix(features)
    n, c, h, w = features.shape
    expected = torch.zeros(n, c, c, dtype=torch.float64)
    for b in range(n):
        for i in range(c):
            for j in range(c):
                total = 0.0
                for y in range(h):
                    for x in range(w):
                        total += features[b, i, y, x] * features[b, j, y, x]
                expected[b, i, j] = total / (h * w)
    torch.testing.assert_close(gram, expected)
    assert torch.allclose(gram, gram.transpose(1, 2))                       # symmetric
    assert bool((torch.linalg.eigvalsh(gram) > -1e-10).all())               # positive semi-definite


def test_gram_matrix_ignores_the_layout():
    features = torch.randn(1, 3, 4, 4)
    shuffled = features.flatten(2)[:, :, torch.randperm(16)].reshape(1, 3, 4, 4)
    torch.testing.assert_close(L.gram_matrix(features), L.gram_matrix(shuffled))


def test_style_layer_loss_is_gatys_equation_4():
    g = torch.Generator().manual_seed(1)
    generated = torch.randn(1, 6, 4, 7, generator=g, dtype=torch.float64)
    style = torch.randn(1, 6, 5, 3, generator=g, dtype=torch.float64)       # sizes may differ
    n_l = 6
    # Gatys et al.: unnormalised Gram matrices, E_l = 1 / (4 N_l^2 M_l^2) sum (G - A)^2, where the
    # two images share M_l; with different sizes each Gram matrix is divided by its own M_l.
    big_g = generated[0].reshape(n_l, -1) @ generated[0].reshape(n_l, -1).T / (4 * 7)
    big_a = style[0].reshape(n_l, -1) @ style[0].reshape(n_l, -1).T / (5 * 3)
    expected = ((big_g - big_a) ** 2).sum() / (4 * n_l ** 2)
    got = L.style_layer_loss(generated, L.gram_matrix(style))
    torch.testing.assert_close(got, expected)
    same_size = torch.randn(1, 6, 4, 7, generator=g, dtype=torch.float64)
    m_l = 4 * 7
    raw_g = generated[0].reshape(n_l, -1) @ generated[0].reshape(n_l, -1).T
    raw_a = same_size[0].reshape(n_l, -1) @ same_size[0].reshape(n_l, -1).T
    torch.testing.assert_close(L.style_layer_loss(generated, L.gram_matrix(same_size)),
                               ((raw_g - raw_a) ** 2).sum() / (4 * n_l ** 2 * m_l ** 2))


def test_style_loss_weights_layers_and_names_missing_ones():
    features = {"a": torch.randn(1, 2, 3, 3), "b": torch.randn(1, 4, 2, 2)}
    targets = {name: L.gram_matrix(torch.randn_like(f)) for name, f in features.items()}
    each = {name: L.style_layer_loss(features[name], targets[name]) for name in targets}
    torch.testing.assert_close(L.style_loss(features, targets), (each["a"] + each["b"]) / 2)
    torch.testing.assert_close(L.style_loss(features, targets, {"a": 3.0, "b": 0.5}), 3 * each["a"] + 0.5 * each["b"])
    with pytest.raises(ValueError, match="lack the style layers"):
        L.style_loss({"a": features["a"]}, targets)
    with pytest.raises(ValueError, match="target_gram must be"):
        L.style_layer_loss(features["a"], targets["b"])


def test_content_loss_and_total_variation_against_references():
    x, y = torch.randn(2, 3, 5, 6), torch.randn(1, 3, 5, 6)
    torch.testing.assert_close(L.content_loss(x, y), F.mse_loss(x, y.expand_as(x)))
    with pytest.raises(ValueError, match="C x H x W"):
        L.content_loss(x, torch.randn(1, 3, 4, 6))
    images = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    vertical = sum(abs(images[n, c, i + 1, j] - images[n, c, i, j])
                   for n in range(2) for c in range(3) for i in range(3) for j in range(5)) / (2 * 3 * 3 * 5)
    horizontal = sum(abs(images[n, c, i, j + 1] - images[n, c, i, j])
                     for n in range(2) for c in range(3) for i in range(4) for j in range(4)) / (2 * 3 * 4 * 4)
    torch.testing.assert_close(L.total_variation(images), vertical + horizontal)
    assert float(L.total_variation(torch.ones(1, 3, 8, 8))) == 0.0
    with pytest.raises(ValueError, match="N x C x H x W"):
        L.gram_matrix(torch.randn(3, 4, 4))


# --------------------------------------------------------------------------- VGG-19 through torchvision's weights API
def test_layer_indices_match_torchvision_vgg19():
    from torchvision.models.vgg import cfgs, make_layers

    reference = make_layers(cfgs["E"])
    conv_positions = [i for i, m in enumerate(reference) if isinstance(m, torch.nn.Conv2d)]
    indices = S.vgg19_layer_indices()
    assert list(indices.values()) == conv_positions and len(indices) == 16
    assert indices["conv4_2"] == 21 and indices["conv5_1"] == 28


def _seed_cache(torch_home, layers):
    """A small, correctly shaped VGG-19 state dict for ``layers`` under the weights enum's file name."""
    from torchvision.models import VGG19_Weights

    g = torch.Generator().manual_seed(3)
    shapes = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128)}
    state = {}
    for index in layers:
        out_c, in_c = shapes[index]
        state[f"features.{index}.weight"] = torch.randn(out_c, in_c, 3, 3, generator=g) * 0.05
        state[f"features.{index}.bias"] = torch.randn(out_c, generator=g) * 0.01
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    path = folder / VGG19_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1]
    torch.save(state, path)
    return state, path


def test_vgg19_weights_load_from_the_torch_hub_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("LECTURE_UTILS_OFFLINE", "1")      # a download attempt would be a bug
    state, path = _seed_cache(tmp_path, layers=(0, 2, 5))
    assert S.vgg19_cache_file() == path
    extractor = S.feature_extractor(layers=("conv1_1", "conv2_1"), pooling="max")
    out = capsys.readouterr().out
    assert isinstance(extractor, S.VGG19Features) and extractor.key == "vgg19_imagenet"
    assert "VGG-19" in out and str(path) in out
    torch.testing.assert_close(extractor.features[5].weight, state["features.5.weight"])
    assert not any(p.requires_grad for p in extractor.parameters())
    # the same weights in torchvision's own VGG-19 layers give the same features
    from torchvision.models.vgg import cfgs, make_layers

    reference = make_layers(cfgs["E"])[:7]
    reference.load_state_dict({k.replace("features.", ""): v for k, v in state.items()}, strict=False)
    images = torch.rand(2, 3, 20, 24)
    normalised = (images - torch.tensor(S.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(S.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        features = extractor(images)
        torch.testing.assert_close(features["conv1_1"], reference[:2](normalised))
        torch.testing.assert_close(features["conv2_1"], reference[:7](normalised))
    assert features["conv2_1"].shape == (2, 128, 10, 12)


def test_offline_without_cached_weights_falls_back_with_a_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("LECTURE_UTILS_OFFLINE", "1")
    extractor = S.feature_extractor()
    out = capsys.readouterr().out.strip().splitlines()
    assert isinstance(extractor, S.RandomMultiScaleFeatures) and extractor.key == "random_multiscale_cnn"
    assert len(out) == 1 and "VGG-19 ImageNet weights unavailable" in out[0] and "random multi-scale CNN" in out[0]
    assert not (tmp_path / "hub" / "checkpoints").exists() or not any((tmp_path / "hub" / "checkpoints").iterdir())


def test_unusable_cache_files_fall_back_and_say_which_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("LECTURE_UTILS_OFFLINE", "1")
    _, path = _seed_cache(tmp_path, layers=(0,))                    # lacks the deeper layers
    assert isinstance(S.feature_extractor(), S.RandomMultiScaleFeatures)
    assert "does not fit VGG-19" in capsys.readouterr().out
    path.write_bytes(b"not a torch file")                           # corrupted
    assert isinstance(S.feature_extractor(), S.RandomMultiScaleFeatures)
    out = capsys.readouterr().out
    assert str(path) in out and "unreadable" in out


def test_random_multiscale_features_shapes_and_determinism():
    a, b = S.RandomMultiScaleFeatures(seed=0), S.RandomMultiScaleFeatures(seed=0)
    images = torch.rand(1, 3, 40, 48)
    fa, fb = a(images), b(images)
    assert list(fa) == ["scale0", "scale1", "scale2", "scale3"]
    assert [tuple(f.shape[1:]) for f in fa.values()] == [(131, 40, 48), (131, 20, 24), (131, 10, 12), (131, 5, 6)]
    for name in fa:
        torch.testing.assert_close(fa[name], fb[name])
        assert float(fa[name][:, :128].detach().min()) >= 0             # filter responses after a ReLU
    # the last three channels are the (blurred) colours: at full scale, the normalised image itself
    torch.testing.assert_close(fa["scale0"][:, 128:], a.normalise(images))
    weights = a.convs[0].weight
    torch.testing.assert_close(weights.mean(dim=(1, 2, 3)), torch.zeros(weights.shape[0]), atol=1e-6, rtol=0)
    assert a.content_layers == ("scale2",) and a.style_layers == tuple(fa)
    # mirrored borders: a border pixel changes the features as much as an interior one
    probe = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    a(probe)["scale0"][:, :128].pow(2).sum().backward()
    reach = probe.grad.abs().sum((0, 1))
    border, interior = float(reach[0, 8:40].mean()), float(reach[20:28, 8:40].mean())
    assert interior > 0 and border == pytest.approx(interior, rel=0.5), (border, interior)
    assert a(torch.rand(1, 3, 9, 40))["scale3"].shape[2:] == (2, 5)
    with pytest.raises(ValueError, match="at least 9 x 9"):
        a(torch.rand(1, 3, 8, 40))


def test_gaussian_downsample_keeps_constants_and_means():
    x = torch.rand(2, 3, 33, 40)
    small = S.gaussian_downsample(x, 4)
    assert small.shape == (2, 3, 9, 10)
    torch.testing.assert_close(S.gaussian_downsample(torch.full((1, 3, 16, 16), 0.3), 4), torch.full((1, 3, 4, 4), 0.3))
    assert abs(float(small.mean() - x.mean())) < 0.02
    assert S.gaussian_downsample(x, 1) is x


# --------------------------------------------------------------------------- the optimisation
@pytest.fixture(scope="module")
def small_pair():
    g = torch.Generator().manual_seed(0)
    content = torch.rand(3, 24, 32, generator=g)
    stripes = (torch.arange(32) // 3 % 2).float().expand(24, 32)
    style = torch.stack([stripes, 1 - stripes, 0.5 * torch.ones(24, 32)])
    return content, style


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_transfer_style_lowers_the_style_loss(small_pair, optimizer):
    content, style = small_pair
    extractor = S.RandomMultiScaleFeatures(channels=16, scales=3).freeze()
    result = ST.transfer_style(content, style, extractor, steps=25, style_weight=100.0, optimizer=optimizer,
                              lr=0.05 if optimizer == "adam" else None)
    first, last = result.history[0], result.history[-1]
    assert last["style"] < 0.5 * first["style"], (first, last)
    assert result.image.shape == (1, 3, 24, 32)
    assert 0.0 <= float(result.image.min()) and float(result.image.max()) <= 1.0
    assert [r["epoch"] for r in result.history] == list(range(26))
    assert result.raw["style"] == pytest.approx(last["style"] / 100.0, rel=1e-5)


def test_without_style_weight_the_content_stays(small_pair):
    content, style = small_pair
    extractor = S.RandomMultiScaleFeatures(channels=8, scales=3).freeze()
    result = ST.transfer_style(content, style, extractor, steps=5, style_weight=0.0)
    torch.testing.assert_close(result.image[0], content)
    assert result.raw["content"] == 0.0


def test_transfer_style_rejects_bad_input(small_pair):
    content, style = small_pair
    extractor = S.RandomMultiScaleFeatures(channels=8, scales=2).freeze()
    with pytest.raises(ValueError, match="content must be a tensor N x 3 x H x W"):
        ST.transfer_style(content[:1], style, extractor, steps=1)
    with pytest.raises(ValueError, match=r"style must lie in \[0, 1\]"):
        ST.transfer_style(content, style * 2, extractor, steps=1)
    with pytest.raises(ValueError, match="optimizer must be"):
        ST.transfer_style(content, style, extractor, steps=1, optimizer="sgd")
    with pytest.raises(ValueError, match="not among the extractor's layers"):
        ST.transfer_style(content, style, extractor, steps=1, style_layers=("conv1_1",))
    with pytest.raises(ValueError, match="layers must be VGG-19 layer names"):
        S.VGG19Features(layers=("conv9_9",))


# --------------------------------------------------------------------------- images
def test_load_image_reads_files_and_course_photos(tmp_path):
    from PIL import Image

    array = (np.arange(10 * 12 * 3) % 256).astype(np.uint8).reshape(10, 12, 3)
    Image.fromarray(array).save(tmp_path / "colour.png")
    image = D.load_image(tmp_path / "colour.png", verbose=False)
    assert image.shape == (3, 10, 12) and image.dtype == torch.float32
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), array / 255.0, atol=1e-6)
    Image.fromarray(array[..., 0]).save(tmp_path / "grey.png")
    grey = D.load_image(str(tmp_path / "grey.png"), verbose=False)
    assert grey.shape == (3, 10, 12) and torch.equal(grey[0], grey[2])
    Image.fromarray(np.dstack([array, np.full((10, 12), 128, np.uint8)])).save(tmp_path / "alpha.png")
    assert D.load_image(tmp_path / "alpha.png", verbose=False).shape == (3, 10, 12)
    cat = D.load_image("chelsea", verbose=False)
    assert cat.shape == (3, 300, 451) and 0 <= float(cat.min()) and float(cat.max()) <= 1


def test_load_image_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="does not exist.*course photo name"):
        D.load_image(tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match="is a folder"):
        D.load_image(tmp_path)
    (tmp_path / "notes.png").write_text("this is not a picture")
    with pytest.raises(ValueError, match="not a readable image file"):
        D.load_image(tmp_path / "notes.png")
    from PIL import Image

    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "cut.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:40])  # truncated
    with pytest.raises(ValueError, match="not a readable image file"):
        D.load_image(tmp_path / "cut.png")
    with pytest.raises(ValueError, match="source must be"):
        D.load_image(42)
    with pytest.raises(ValueError, match="max_side"):
        ST.resize_image(torch.rand(3, 10, 10), 2)


def test_resize_image_keeps_the_aspect_ratio():
    resized = ST.resize_image(torch.rand(3, 300, 451), 128)
    assert resized.shape == (3, 85, 128)
    image = torch.rand(3, 20, 30)
    with pytest.raises(ValueError, match=r"image must be a floating-point tensor, got dtype torch.uint8 \(divide 8-bit"):
        ST.resize_image((image * 255).to(torch.uint8), 16)
    with pytest.raises(ValueError, match="image must be finite, got 1 NaN"):
        ST.resize_image(image.index_put((torch.tensor([0]),) * 3, torch.tensor(float("nan"))), 16)


def test_style_weight_slider_static_figure_and_slider():
    from lecture_utils import widgets

    results = {w: torch.rand(3, 8, 10) for w in (10.0, 1.0, 100.0)}
    explorer = widgets.style_weight_slider(results, content=torch.rand(3, 8, 10), style=torch.rand(3, 8, 10),
                                           losses={w: {"content": 0.1, "style": 0.2} for w in results}, show=False)
    titles = [ax.get_title() for ax in explorer.static_figure().axes]
    assert titles == ["content", "style weight 1", "style weight 10", "style weight 100", "style"]
    assert explorer.slider.value == 10.0 and torch.equal(explorer.current_image(), results[10.0])
    shown = explorer.image.value
    explorer.slider.value = 100.0
    assert explorer.image.value != shown and "style weight 100" in explorer.caption.value
    assert explorer.static_png()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="results is empty"):
        widgets.style_weight_slider({})
    with pytest.raises(ValueError, match="content must be C x H x W"):
        widgets.style_weight_slider(results, content=torch.rand(8, 10), show=False)


def test_measured_receptive_fields_match_the_composition_of_blur_and_filter():
    """Scale s: a Gaussian blur of 2 * ceil(2^s / 2 * 2) + 1 taps, every 2^s-th pixel, then a k x k filter;
    walking back from one output unit that covers (k - 1) * 2^s + taps input pixels (taps = 1 at s = 0)."""
    k = 5
    extractor = S.RandomMultiScaleFeatures(scales=3, channels=8, kernel_size=k, seed=1)
    fields = ST.measured_receptive_fields(extractor, size=96)

    def expected(s):
        factor = 2 ** s
        taps = 1 if factor == 1 else 2 * int(np.ceil(2 * factor / 2)) + 1
        return (k - 1) * factor + taps

    assert fields == {f"scale{s}": expected(s) for s in range(3)} == {"scale0": 5, "scale1": 13, "scale2": 25}
    assert all(fields[f"scale{s}"] > k * 2 ** s for s in (1, 2))  # wider than kernel_size * 2^s: the blur counts
    with pytest.raises(ValueError, match="threshold"):
        ST.measured_receptive_fields(extractor, threshold=2.0)

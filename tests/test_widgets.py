"""The latent explorers of lecture_utils.widgets, driven headlessly: set a slider, check the image."""
import io
import math

import pytest
import torch
from PIL import Image

from lecture_utils.models.vae import ConvVAE, MLPVAE
from lecture_utils.widgets import (code_of, endpoint_choices, interpolate, interpolation_explorer,
                                   latent_sliders)

PIXEL = 1 / 255 + 1e-6  # the widgets show 8-bit PNGs


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return MLPVAE(latent_size=6, hidden=64).eval()


def direct_decode(model, z):
    with torch.no_grad():
        return model.decode_images(z.reshape(1, -1))[0]


def test_linear_and_spherical_interpolation():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, generator=g), 3 * torch.randn(16, generator=g)
    t = torch.linspace(0, 1, 11)
    for mode in ("linear", "spherical"):
        path = interpolate(a, b, t, mode)
        assert path.shape == (11, 16)
        torch.testing.assert_close(path[0], a)
        torch.testing.assert_close(path[-1], b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(interpolate(a, b, t, "linear")[5], (a + b) / 2)
    slerp = interpolate(a, b, t, "spherical")
    # the norm changes linearly, and the angle to a grows linearly with t (a great circle)
    torch.testing.assert_close(slerp.norm(dim=1), (1 - t) * a.norm() + t * b.norm(), rtol=1e-5, atol=1e-5)
    cos = (slerp @ a) / (slerp.norm(dim=1) * a.norm())
    omega = math.acos(float(a @ b / (a.norm() * b.norm())))
    torch.testing.assert_close(torch.arccos(cos.clamp(-1, 1)), t * omega, rtol=1e-3, atol=1e-3)
    # orthogonal unit vectors: the midpoint is (a + b) / sqrt(2)
    e1, e2 = torch.eye(3)[0], torch.eye(3)[1]
    torch.testing.assert_close(interpolate(e1, e2, [0.5], "spherical")[0], (e1 + e2) / math.sqrt(2))
    with pytest.raises(ValueError, match="mode must be one of"):
        interpolate(a, b, t, "cubic")
    with pytest.raises(ValueError, match="z_end must be a vector of 16 numbers"):
        interpolate(a, torch.zeros(3), t)


@pytest.mark.parametrize("mode", ["linear", "spherical"])
def test_moving_the_slider_shows_the_direct_decode(vae, mode):
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(6, generator=g), torch.randn(6, generator=g)
    explorer = interpolation_explorer(vae.decode_images, z0, z1, n_frames=11, mode=mode, show=False)
    before = explorer.image.value
    torch.testing.assert_close(explorer.displayed_image(), direct_decode(vae, z0), atol=PIXEL, rtol=0)
    explorer.slider.value = 0.3
    assert explorer.image.value != before, "the image must change when the slider moves"
    expected_code = interpolate(z0, z1, [0.3], mode)[0]
    torch.testing.assert_close(explorer.current_code(), expected_code, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(explorer.displayed_image(), direct_decode(vae, expected_code), atol=PIXEL, rtol=0)
    # the other path shows a different image at the same t
    shown = explorer.image.value
    explorer.mode.value = "linear" if mode == "spherical" else "spherical"
    assert explorer.image.value != shown
    other = interpolate(z0, z1, [0.3], explorer.mode.value)[0]
    torch.testing.assert_close(explorer.displayed_image(), direct_decode(vae, other), atol=PIXEL, rtol=0)


def test_explorer_endpoints_pickers_and_static_fallback(vae):
    g = torch.Generator().manual_seed(2)
    images = torch.rand(30, 1, 28, 28, generator=g)
    labels = torch.arange(30) % 3
    choices = endpoint_choices(vae.encode, images, labels)
    assert list(choices) == ["digit 0 (#0)", "digit 1 (#1)", "digit 2 (#2)"]
    z, image = code_of(vae.encode, images, labels, digit=2, occurrence=1)
    torch.testing.assert_close(image, images[5])
    torch.testing.assert_close(z, vae.encode(images[5:6])[0][0])
    explorer = interpolation_explorer(vae.decode_images, *choices["digit 0 (#0)"][:1], choices["digit 1 (#1)"][0],
                                      start_image=images[0], n_frames=5, choices=choices, show=False)
    explorer.slider.value = 1.0
    shown = explorer.image.value
    explorer.end_picker.value = "digit 2 (#2)"
    assert explorer.image.value != shown
    torch.testing.assert_close(explorer.displayed_image(), direct_decode(vae, choices["digit 2 (#2)"][0]),
                               atol=PIXEL, rtol=0)
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "image/png" in bundle
    static = Image.open(io.BytesIO(explorer.static_png()))
    assert static.format == "PNG" and static.width > 300


def test_explorer_works_with_colour_decoders_and_checks_them():
    def colour(z):  # any decoder: B x d -> B x 3 x 32 x 32 in [0, 1]
        return torch.sigmoid(z[:, :3, None, None].expand(-1, 3, 32, 32))

    explorer = interpolation_explorer(colour, torch.full((4,), -2.0), torch.full((4,), 2.0), n_frames=9, show=False)
    explorer.slider.value = 0.5
    torch.testing.assert_close(explorer.displayed_image(), torch.full((3, 32, 32), 0.5), atol=PIXEL, rtol=0)
    with pytest.raises(ValueError, match=r"decode must return images in \[0, 1\]"):
        interpolation_explorer(lambda z: 2 * colour(z), torch.zeros(4), torch.ones(4), show=False)
    with pytest.raises(ValueError, match="decode must return images B x C x H x W"):
        interpolation_explorer(lambda z: z, torch.zeros(4), torch.ones(4), show=False)
    with pytest.raises(ValueError, match="start_image must have the decoder's image shape"):
        interpolation_explorer(colour, torch.zeros(4), torch.ones(4), start_image=torch.rand(1, 28, 28), show=False)
    with pytest.raises(ValueError, match="n_frames must be an int >= 2"):
        interpolation_explorer(colour, torch.zeros(4), torch.ones(4), n_frames=1, show=False)


def test_latent_sliders_decode_the_code_they_show():
    torch.manual_seed(0)
    model = ConvVAE(latent_size=4, channels=8, hidden=32).eval()
    z0 = torch.tensor([0.1, -0.2, 0.3, 0.0])
    panel = latent_sliders(model.decode_images, z0, dims=[1, 3], show=False)
    assert [s.description for s in panel.sliders] == ["z[1]", "z[3]"]
    torch.testing.assert_close(panel.displayed_image(), direct_decode(model, z0), atol=PIXEL, rtol=0)
    before = panel.image.value
    panel.sliders[1].value = 2.5
    assert panel.image.value != before
    expected = torch.tensor([0.1, -0.2, 0.3, 2.5])
    torch.testing.assert_close(panel.code(), expected)
    torch.testing.assert_close(panel.displayed_image(), direct_decode(model, expected), atol=PIXEL, rtol=0)
    assert "image/png" in panel._repr_mimebundle_()
    with pytest.raises(ValueError, match="dims must be distinct indices"):
        latent_sliders(model.decode_images, z0, dims=[4], show=False)
    with pytest.raises(ValueError, match="z0 must be"):
        latent_sliders(model.decode_images, torch.zeros(2, 4), show=False)

"""Notebook 06's pieces: the sub-pixel residual network, bicubic baseline, L1 and L1 + PatchGAN training,
and the PSNR/SSIM evaluation on whole photos."""
import pytest
import torch
import torch.nn.functional as F

from lecture_utils import metrics
from lecture_utils.data import low_resolution
from lecture_utils.models.super_resolution import SuperResolutionNet
from lecture_utils.restoration import (add_patchgan, bicubic_upscale, crop_to_multiple, evaluate_super_resolution,
                                       train_super_resolution, upscale)


def _smooth_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, size // 8, size // 8, generator=g)
    sharp = (torch.rand(n, 3, size // 4, size // 4, generator=g) > 0.5).float()
    images = 0.6 * F.interpolate(coarse, size=size, mode="bicubic") + 0.4 * F.interpolate(sharp, size=size, mode="nearest")
    return images.clamp(0, 1)


def test_untrained_network_is_exactly_bicubic():
    torch.manual_seed(0)
    for scale in (2, 3, 4):
        model = SuperResolutionNet(scale, features=8, n_blocks=2)
        low = torch.rand(2, 3, 10, 12)
        out = model(low)
        assert out.shape == (2, 3, 10 * scale, 12 * scale)
        reference = F.interpolate(low, scale_factor=scale, mode="bicubic", align_corners=False)
        assert torch.allclose(out, reference, atol=1e-6), "the sub-pixel layer starts at zero: bicubic + 0"
        assert torch.allclose(bicubic_upscale(low, scale), reference.clamp(0, 1))


def test_sub_pixel_convolution_places_channels_in_blocks():
    """PixelShuffle(s): output pixel (s*i + a, s*j + b) of channel c is input channel c*s*s + a*s + b at (i, j)."""
    model = SuperResolutionNet(2, features=4, n_blocks=0)
    shuffle = model.upsample[1]
    x = torch.arange(2 * 12 * 3 * 3, dtype=torch.float32).view(2, 12, 3, 3)
    y = shuffle(x)
    for c in range(3):
        for a in range(2):
            for b in range(2):
                assert torch.equal(y[:, c, a::2, b::2], x[:, c * 4 + a * 2 + b])


def test_super_resolution_rejects_bad_input():
    model = SuperResolutionNet(4, features=8, n_blocks=1)
    with pytest.raises(ValueError, match=r"N x 3 x h x w, got shape \(1, 1, 16, 16\)"):
        model(torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match="at least 4 x 4"):
        model(torch.rand(1, 3, 3, 8))
    with pytest.raises(ValueError, match="scale must be one of"):
        SuperResolutionNet(5)


def test_l1_training_beats_bicubic_and_the_gan_trains_from_it():
    torch.manual_seed(0)
    patches = _smooth_images(64, 32)
    model = SuperResolutionNet(2, features=16, n_blocks=2)
    history = train_super_resolution(model, patches, 15, batch_size=16, lr=2e-3, progress=False)
    assert history.records[-1]["l1"] < 0.8 * history.records[0]["l1"]
    assert history.records[-1]["lr"] < history.records[0]["lr"], "cosine schedule decays the learning rate"
    held_out = _smooth_images(16, 32, seed=1)
    low = low_resolution(held_out, 2)
    assert metrics.psnr(upscale(model, low), held_out) > metrics.psnr(bicubic_upscale(low, 2), held_out) + 0.5

    before = [p.clone() for p in model.parameters()]
    gan_model, gan_history = add_patchgan(model, patches, 1, features=8, n_layers=1, batch_size=16, progress=False)
    assert {"loss_d", "adv_g", "d_real", "d_fake", "l1"} <= set(gan_history.records[-1])
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "add_patchgan trains a copy"
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), gan_model.parameters()))


def test_evaluation_scores_each_method_with_the_shaved_border():
    torch.manual_seed(0)
    photos = {"a": _smooth_images(1, 48, seed=2)[0], "b": _smooth_images(1, 48, seed=3)[0][:, :45, :46]}
    model = SuperResolutionNet(4, features=8, n_blocks=1)       # untrained: identical to bicubic
    results = evaluate_super_resolution({"bicubic": "bicubic", "cnn": model}, photos, 4)
    assert results["cnn"]["psnr"] == pytest.approx(results["bicubic"]["psnr"], abs=1e-4)
    high = crop_to_multiple(photos["b"], 4)[None]
    assert high.shape[-2:] == (44, 44)
    out = bicubic_upscale(low_resolution(high, 4), 4)
    expected = metrics.psnr(out[..., 4:-4, 4:-4], high[..., 4:-4, 4:-4])
    assert results["bicubic"]["per_photo"]["b"][0] == pytest.approx(expected)
    assert 0 < results["bicubic"]["ssim"] < 1


def test_restoration_recipes_build_fixed_weights_without_touching_the_random_state():
    from lecture_utils.pretrained.restoration import build_editing, build_super_resolution

    for build in (build_super_resolution, build_editing):
        before = torch.random.get_rng_state()
        first, second = build(), build()
        assert torch.equal(before, torch.random.get_rng_state()), build.__name__
        for a, b in zip(first.state_dict().values(), second.state_dict().values()):
            assert torch.equal(a, b), build.__name__
    other = SuperResolutionNet(4, features=32, n_blocks=6)      # the same architecture, fresh random weights
    assert not torch.equal(other.head.weight, build_super_resolution().head.weight)


def test_shipped_models_are_held_to_the_goals_of_the_budget_they_were_trained_at():
    from lecture_utils.budget import get_budget
    from lecture_utils.checkpoints import read_manifest
    from lecture_utils.pretrained import trained_goals

    smoke = get_budget("smoke").sizes("06_super_resolution")
    assert trained_goals("super_resolution_x4", smoke, trained_here=True) is smoke
    if "super_resolution_x4" not in read_manifest():
        pytest.skip("super_resolution_x4 is not shipped")
    shipped = trained_goals("super_resolution_x4", smoke, trained_here=False)
    assert shipped.min_gain_db > smoke.min_gain_db and shipped.min_detail_gain_gan > smoke.min_detail_gain_gan


def test_dihedral_augment_draws_each_of_the_eight_symmetries():
    from lecture_utils.restoration import dihedral_augment

    patches = torch.rand(200, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    out = dihedral_augment(patches, seed=3)
    assert torch.equal(out, dihedral_augment(patches, seed=3)) and not torch.equal(out, dihedral_augment(patches, seed=4))
    seen = set()
    for p, q in zip(patches, out):
        views = [torch.rot90(p, k, (1, 2)).flip(2) if m else torch.rot90(p, k, (1, 2)) for k in range(4) for m in (0, 1)]
        matches = [i for i, v in enumerate(views) if torch.equal(v, q)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == set(range(8))
    with pytest.raises(ValueError, match="square"):
        dihedral_augment(torch.rand(2, 3, 4, 6))

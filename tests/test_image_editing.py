"""Notebook 07's pieces: the degradation API, PSNR/SSIM (also masked), baselines, the editing model and trainer,
and the editing explorer widget."""
import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lecture_utils import metrics, widgets
from lecture_utils.data import (box_masks, check_mask, degrade, greyscale, low_resolution, side_masks, stroke_masks)
from lecture_utils.models.editing import EditingUNet, editing_input
from lecture_utils.models.patchgan import PatchDiscriminator
from lecture_utils.restoration import (baseline, edge_replicate, evaluate_editing, mean_fill, model_input, restore,
                                       train_editing)


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(6, 3, 8, 8, generator=g), size=32, mode="bilinear")
    return smooth.clamp(0, 1)


# --------------------------------------------------------------------------- PSNR / SSIM
def test_psnr_matches_scikit_image_and_the_closed_form(images):
    noisy = (images + 0.05 * torch.randn(images.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    expected = np.mean([peak_signal_noise_ratio(t.numpy(), p.numpy(), data_range=1.0) for p, t in zip(noisy, images)])
    assert metrics.psnr(noisy, images) == pytest.approx(expected, rel=1e-9)
    mse = ((noisy[0].double() - images[0].double()) ** 2).mean()
    assert metrics.psnr(noisy[0], images[0]) == pytest.approx(float(10 * torch.log10(1 / mse)), rel=1e-9)
    # 8-bit images with data_range=255 give the same dB as [0, 1] images with data_range=1
    assert metrics.psnr(noisy * 255, images * 255, data_range=255) == pytest.approx(expected, rel=1e-9)


def test_psnr_of_an_exact_copy_is_infinite_as_in_scikit_image_and_homework_3(images):
    copy = images.clone()
    copy[1:] = (copy[1:] + 0.1).clamp(0, 1)
    with np.errstate(divide="ignore"):
        assert peak_signal_noise_ratio(images[0].numpy(), copy[0].numpy(), data_range=1.0) == np.inf
    assert metrics.psnr(copy[0], images[0]) == float("inf")
    assert metrics.psnr(copy, images) == float("inf")                  # the mean over the images
    mask = torch.zeros(6, 1, 32, 32)
    mask[:, :, 8:16, 8:16] = 1
    assert metrics.psnr(copy[:1], images[:1], mask=mask[:1]) == float("inf")
    assert np.isfinite(metrics.psnr(copy[1:], images[1:]))


def test_psnr_rejects_a_wrong_data_range_and_shapes(images):
    with pytest.raises(ValueError, match=r"data_range = 1.*data_range=255"):
        metrics.psnr(images * 255, images * 255)
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(images, images[:, :, :16])


def test_masked_psnr_scores_only_the_missing_pixels(images):
    g = torch.Generator().manual_seed(2)
    prediction = images.clone()
    mask = box_masks(images.shape[0], 32, seed=3)
    prediction = (prediction + mask * 0.1 * torch.randn(images.shape, generator=g)).clamp(0, 1)
    for k in range(images.shape[0]):  # numpy reference: the MSE over the selected pixels, all channels
        region = mask[k, 0].numpy() > 0
        diff = (prediction[k].numpy() - images[k].numpy())[:, region]
        expected = 10 * np.log10(1 / np.mean(diff.astype(np.float64) ** 2))
        assert metrics.psnr(prediction[k:k + 1], images[k:k + 1], mask=mask[k:k + 1]) == pytest.approx(expected, rel=1e-6)
    full = torch.ones(images.shape[0], 1, 32, 32)
    assert metrics.psnr(prediction, images, mask=full) == pytest.approx(metrics.psnr(prediction, images), rel=1e-9)
    # errors outside the mask do not count
    worse_outside = (prediction + (1 - mask) * 0.3).clamp(0, 1)
    assert metrics.psnr(worse_outside, images, mask=mask) == pytest.approx(metrics.psnr(prediction, images, mask=mask))


def test_ssim_matches_scikit_image_and_its_masked_mean(images):
    noisy = (images + 0.05 * torch.randn(images.shape, generator=torch.Generator().manual_seed(4))).clamp(0, 1)
    expected = np.mean([structural_similarity(t.numpy(), p.numpy(), data_range=1.0, channel_axis=0)
                        for p, t in zip(noisy, images)])
    assert metrics.ssim(noisy, images) == pytest.approx(expected, rel=1e-6)   # float64 vs float32
    assert metrics.ssim(images, images) == pytest.approx(1.0)
    full = torch.ones(images.shape[0], 1, 32, 32)
    assert metrics.ssim(noisy, images, mask=full) == pytest.approx(expected, rel=1e-6)
    mask = box_masks(images.shape[0], 32, seed=5)
    damaged = images * (1 - mask)
    assert metrics.ssim(damaged, images, mask=mask) < metrics.ssim(damaged, images)


def test_metric_masks_of_the_wrong_shape_raise(images):
    with pytest.raises(ValueError, match=r"mask must be 6 x 1 x 32 x 32"):
        metrics.psnr(images, images, mask=torch.ones(6, 3, 32, 32))
    with pytest.raises(ValueError, match="only 0"):
        metrics.psnr(images, images, mask=torch.full((6, 1, 32, 32), 0.5))
    with pytest.raises(ValueError, match="empty"):
        metrics.psnr(images, images, mask=torch.zeros(6, 1, 32, 32))


# --------------------------------------------------------------------------- degradations
def test_inpainting_keeps_known_pixels_and_zeroes_the_holes(images):
    for shape in ("boxes", "strokes", "mixed"):
        corrupted, mask = degrade(images, "inpainting", seed=0, mask_shape=shape)
        assert mask.shape == (6, 1, 32, 32) and set(mask.unique().tolist()) == {0.0, 1.0}
        assert torch.equal(corrupted * (1 - mask), images * (1 - mask))
        assert float((corrupted * mask).abs().max()) == 0
        again, mask_again = degrade(images, "inpainting", seed=0, mask_shape=shape)
        assert torch.equal(mask, mask_again), "the same seed must give the same masks"
    other = degrade(images, "inpainting", seed=1)[1]
    assert not torch.equal(other, degrade(images, "inpainting", seed=0)[1])


def test_box_masks_have_the_requested_size():
    masks = box_masks(50, (40, 60), seed=0, min_fraction=0.25, max_fraction=0.5)
    for m in masks[:, 0]:
        rows, cols = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert 10 <= height <= 20 and 15 <= width <= 30
        assert int(m.sum()) == height * width, "a box is a filled rectangle"


@pytest.mark.parametrize("make", [box_masks, side_masks, stroke_masks])
@pytest.mark.parametrize("n, size, needle", [(0, 32, "n must be a positive int"), (-2, 32, "n must be a positive int"),
                                             (2.5, 32, "n must be a positive int"), (3, 0, "size must be"),
                                             (3, (32, -1), "size must be"), (3, (32.0, 32), "size must be")])
def test_mask_makers_refuse_bad_counts_and_sizes(make, n, size, needle):
    with pytest.raises(ValueError, match=needle):
        make(n, size)


def test_degrade_refuses_an_empty_batch():
    with pytest.raises(ValueError, match="empty batch"):
        degrade(torch.zeros(0, 3, 32, 32), "inpainting")


def test_stroke_masks_are_free_form_and_cover_a_fraction():
    masks = stroke_masks(20, 64, seed=0)
    coverage = masks.flatten(1).mean(1)
    assert bool((coverage > 0.02).all()) and bool((coverage < 0.8).all())
    boxes = [int(m.any(1).sum()) * int(m.any(0).sum()) for m in masks[:, 0]]
    assert any(b > m.sum() * 1.3 for b, m in zip(boxes, masks[:, 0])), "strokes are not rectangles"


def test_uncropping_masks_are_a_band_along_one_side(images):
    corrupted, mask = degrade(images, "uncropping", seed=0)
    masks = side_masks(40, 32, seed=1)
    for m in torch.cat([mask, masks])[:, 0]:
        known = m == 0
        rows, cols = known.any(1).nonzero().flatten(), known.any(0).nonzero().flatten()
        assert bool(known[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()), "known part is a rectangle"
        touches = [bool(m[:, 0].all()), bool(m[:, -1].all()), bool(m[0].all()), bool(m[-1].all())]
        assert sum(touches) == 1, "exactly one side is cut"
        assert 0.2 <= float(m.mean()) <= 0.55


def test_colorization_is_the_luma_of_pillow(images):
    corrupted, mask = degrade(images, "colorization")
    assert bool((mask == 1).all())
    assert torch.equal(corrupted[:, 0], corrupted[:, 1]) and torch.equal(corrupted[:, 1], corrupted[:, 2])
    pixels = (images[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    reference = np.asarray(Image.fromarray(pixels).convert("L"), dtype=np.float32) / 255   # Pillow: ITU-R 601
    ours = greyscale((torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)[None])[0, 0].numpy()
    assert np.abs(ours - reference).max() <= 1 / 255 + 1e-6


def test_low_resolution_matches_pillow_bicubic(images):
    small = low_resolution(images, 4)
    assert small.shape == (6, 3, 8, 8)
    pixels = (images[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    reference = np.asarray(Image.fromarray(pixels).resize((8, 8), Image.BICUBIC), dtype=np.float32) / 255
    ours = low_resolution(torch.from_numpy(pixels).permute(2, 0, 1).float()[None] / 255, 4)[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - reference).max() < 3 / 255


def test_degradations_reject_bad_input(images):
    with pytest.raises(ValueError, match="3 colour channels"):
        degrade(images[:, :1], "inpainting")
    with pytest.raises(ValueError, match=r"mask must be 6 x 1 x 32 x 32"):
        degrade(images, "inpainting", mask=torch.ones(6, 1, 16, 16))
    with pytest.raises(ValueError, match="at least 4 x 4"):
        degrade(images[..., :2, :2], "uncropping")
    with pytest.raises(ValueError, match="task must be one of"):
        degrade(images, "denoising")
    with pytest.raises(ValueError, match="multiples of scale = 3"):
        low_resolution(images, 3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        degrade(images * 2, "colorization")
    one = check_mask(torch.ones(32, 32), images)
    assert one.shape == (6, 1, 32, 32)


# --------------------------------------------------------------------------- baselines
def test_mean_fill_uses_the_mean_of_known_pixels(images):
    corrupted, mask = degrade(images, "inpainting", seed=0, mask_shape="boxes")
    filled = mean_fill(corrupted, mask)
    for k in range(images.shape[0]):
        known = mask[k, 0].numpy() == 0
        expected = images[k].numpy()[:, known].mean(1)
        hole = filled[k].numpy()[:, ~known]
        assert np.allclose(hole, expected[:, None], atol=1e-6)
    assert torch.equal(filled * (1 - mask), images * (1 - mask))


def test_edge_replication_matches_numpy_pad_edge(images):
    corrupted, mask = degrade(images, "uncropping", seed=3)
    out = edge_replicate(corrupted, mask)
    for k in range(images.shape[0]):
        known = (mask[k, 0] == 0).numpy()
        rows, cols = np.where(known.any(1))[0], np.where(known.any(0))[0]
        crop = corrupted[k].numpy()[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        pad = ((0, 0), (rows[0], 31 - rows[-1]), (cols[0], 31 - cols[-1]))
        assert np.array_equal(out[k].numpy(), np.pad(crop, pad, mode="edge"))
    with pytest.raises(ValueError, match="rectangle"):
        edge_replicate(*degrade(images, "inpainting", seed=0, mask_shape="boxes"))


def test_colorization_baseline_is_the_grey_copy(images):
    corrupted, mask = degrade(images, "colorization")
    assert torch.equal(baseline("colorization", corrupted, mask), corrupted)


# --------------------------------------------------------------------------- model and trainer
def test_editing_unet_starts_at_the_baseline_and_keeps_known_pixels(images):
    torch.manual_seed(0)
    model = EditingUNet(depth=2, base_channels=8).eval()
    for task in ("inpainting", "colorization", "uncropping"):
        corrupted, mask = degrade(images, task, seed=0)
        out = restore(model, task, corrupted, mask)
        assert torch.allclose(out, baseline(task, corrupted, mask).clamp(0, 1), atol=1.01e-3), "untrained = baseline"
    with torch.no_grad():                           # a trained-looking model: random last layer
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        corrupted, mask = degrade(images, "inpainting", seed=0)
        out = model(model_input("inpainting", corrupted, mask))
    assert out.shape == images.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    assert torch.equal(out * (1 - mask), images * (1 - mask))
    assert not torch.allclose(out * mask, mean_fill(corrupted, mask) * mask)


def test_editing_unet_rejects_bad_input(images):
    model = EditingUNet(depth=2, base_channels=8)
    with pytest.raises(ValueError, match="N x 4 x H x W"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="at least 16 x 16"):
        model(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="multiples of 2\\*\\*depth = 4"):
        model(torch.zeros(1, 4, 30, 32))
    with pytest.raises(ValueError, match="must be N x 3 x H x W"):
        editing_input(torch.zeros(1, 1, 32, 32), torch.ones(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"mask must be 1 x 1 x 32 x 32"):
        editing_input(torch.zeros(1, 3, 32, 32), torch.ones(1, 2, 32, 32))


def test_pix2pix_training_learns_inpainting(images):
    """A few epochs of L1 + PatchGAN on smooth images: the L1 falls and the model beats mean fill."""
    torch.manual_seed(0)
    train = images.repeat(4, 1, 1, 1)
    model = EditingUNet(depth=2, base_channels=8)
    discriminator = PatchDiscriminator(in_channels=7, features=8, n_layers=1)
    history = train_editing(model, train, "inpainting", 12, discriminator=discriminator, batch_size=8, lr=2e-3,
                            progress=False)
    assert history.records[-1]["l1"] < 0.9 * history.records[0]["l1"]   # the first epoch starts at mean fill
    assert {"loss_d", "adv_g", "d_real", "d_fake"} <= set(history.records[-1])
    scores = evaluate_editing(model, images, "inpainting", seed=7)
    assert scores["psnr_model"] > scores["psnr_baseline"], scores
    assert scores["restored"].shape == images.shape


def test_warmup_trains_with_l1_before_the_discriminator_joins(images):
    torch.manual_seed(0)
    model = EditingUNet(depth=2, base_channels=4)
    discriminator = PatchDiscriminator(in_channels=7, features=4, n_layers=1)
    before = [p.clone() for p in discriminator.parameters()]
    history = train_editing(model, images, "uncropping", 3, discriminator=discriminator, warmup_epochs=2,
                            batch_size=6, progress=False)
    assert [r["epoch"] for r in history.records] == [1, 2, 3]
    assert "loss_d" not in history.records[1] and "loss_d" in history.records[2]
    assert any(not torch.equal(a, b) for a, b in zip(before, discriminator.parameters()))
    with pytest.raises(ValueError, match="warmup_epochs"):
        train_editing(model, images, "uncropping", 1, discriminator=discriminator, warmup_epochs=2, progress=False)


def test_gan_lr_sets_the_learning_rate_of_the_adversarial_phase_only(images):
    """With gan_lr = 0 the adversarial epoch leaves every weight as the L1 warm-up left it; with gan_lr > 0 it moves them."""
    def train(epochs, gan_lr):
        torch.manual_seed(0)
        model = EditingUNet(depth=2, base_channels=4)
        discriminator = PatchDiscriminator(in_channels=7, features=4, n_layers=1)
        d_start = [p.clone() for p in discriminator.parameters()]
        train_editing(model, images, "inpainting", epochs, discriminator=discriminator, warmup_epochs=1,
                      batch_size=6, lr=1e-2, gan_lr=gan_lr, progress=False)
        return model, d_start, discriminator

    warmed, _, _ = train(1, None)
    frozen, d_start, discriminator = train(2, 0.0)
    moving, _, _ = train(2, 1e-2)
    for a, b in zip(warmed.parameters(), frozen.parameters()):
        assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(d_start, discriminator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(warmed.parameters(), moving.parameters()))


# --------------------------------------------------------------------------- widget
def test_editing_explorer_follows_its_controls(images):
    torch.manual_seed(0)
    models = {task: EditingUNet(depth=2, base_channels=4) for task in ("inpainting", "colorization", "uncropping")}
    photo = images[0]
    explorer = widgets.editing_explorer(models, photo, show=False)
    mask = explorer.mask()
    assert mask.shape == (1, 1, 32, 32) and 0 < float(mask.mean()) < 1
    explorer.top.value, explorer.left.value = 0.0, 1.0      # box in the top right corner
    moved = explorer.mask()[0, 0]
    assert bool(moved[0, -1] == 1) and bool(moved[-1, 0] == 0)
    result = explorer.result()
    assert result["psnr_model"] == pytest.approx(metrics.psnr(restore(models["inpainting"], "inpainting",
                                                                     result["corrupted"], result["mask"]),
                                                             result["target"], mask=result["mask"]))
    explorer.choice.value = "uncropping"
    explorer.side.value = "left"
    m = explorer.mask()[0, 0]
    assert bool(m[:, 0].all()) and not bool(m[:, -1].any())
    explorer.choice.value = "colorization"
    assert bool((explorer.result()["mask"] == 1).all())
    assert explorer.static_png()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="missing"):
        widgets.editing_explorer({"inpainting": models["inpainting"]}, photo, show=False)
    with pytest.raises(ValueError, match="3 colour channels"):
        widgets.editing_explorer(models, photo[:1], show=False)

"""GAN library: losses against torch.nn.functional and closed forms, models, PatchGAN receptive field,
U-Net contract, and the Algorithm-1 training step."""
import copy
import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lecture_utils import losses
from lecture_utils.autoencoders import autoencoder_step, vae_step
from lecture_utils.data import BatchIterator
from lecture_utils.gans import (EMA, Augmented, GANOptions, GaussianMixturePrior, GradientNorms, Speed, gan_step,
                                generate, image_to_image_step, make_optimizers, measure_receptive_field, r1_penalty,
                                resize_images, reused_fakes_step, to_tanh_range, to_unit_range, train_conditional_gan,
                                train_gan, train_image_to_image)
from lecture_utils.models.conditional import ConditionalGenerator, ProjectionDiscriminator
from lecture_utils.models.dcgan import DCGANDiscriminator, DCGANGenerator
from lecture_utils.models.gan import MLPDiscriminator, MLPGenerator
from lecture_utils.models.patchgan import PatchDiscriminator, receptive_field
from lecture_utils.models.unet import UNet
from lecture_utils.train import adam, random_shift


def logits(n=1000, seed=0, scale=6.0):
    return scale * torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --------------------------------------------------------------------------- losses
def test_discriminator_loss_is_binary_cross_entropy_with_real_1_fake_0():
    real, fake = logits(seed=1), logits(seed=2)
    expected = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    assert torch.allclose(losses.discriminator_loss(real, fake).double(), expected, rtol=1e-6)
    # closed form: -mean log D(x) - mean log(1 - D(G(z)))
    closed = -(torch.sigmoid(real).log().mean() + (1 - torch.sigmoid(fake)).log().mean())
    assert math.isclose(float(losses.discriminator_loss(real, fake)), float(closed), rel_tol=1e-5)
    smoothed = (F.binary_cross_entropy_with_logits(real, torch.full_like(real, 0.9))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    assert math.isclose(float(losses.discriminator_loss(real, fake, real_label=0.9)), float(smoothed), rel_tol=1e-5)


def test_generator_losses_match_closed_forms_and_stay_finite():
    fake = logits(seed=3)
    d = torch.sigmoid(fake)
    assert math.isclose(float(losses.generator_loss_minimax(fake)), float(torch.log1p(-d).mean()), rel_tol=1e-5)
    assert math.isclose(float(losses.generator_loss_non_saturating(fake)), float(-d.log().mean()), rel_tol=1e-5)
    assert math.isclose(float(losses.generator_loss_non_saturating(fake)),
                        float(F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))), rel_tol=1e-6)
    extreme = torch.tensor([-200.0, 200.0])  # sigmoid is exactly 0 and 1 in float32: log would be -inf
    for kind in ("minimax", "non_saturating", "least_squares"):
        assert torch.isfinite(losses.generator_loss(extreme, kind))
    assert torch.isfinite(losses.discriminator_loss(extreme, extreme))


def test_saturation_gradients_with_respect_to_the_logit():
    # d/dl log(1 - sigmoid(l)) = -sigmoid(l): vanishes as D(G(z)) -> 0; d/dl -log sigmoid(l) = -(1 - sigmoid(l))
    fake = torch.linspace(-10, 10, 41, dtype=torch.float64, requires_grad=True)
    losses.generator_loss_minimax(fake).backward()
    assert torch.allclose(fake.grad * fake.numel(), -torch.sigmoid(fake.detach()), atol=1e-6)
    fake.grad = None
    losses.generator_loss_non_saturating(fake).backward()
    assert torch.allclose(fake.grad * fake.numel(), -(1 - torch.sigmoid(fake.detach())), atol=1e-6)


def test_least_squares_losses_closed_form():
    real, fake = logits(seed=4, scale=1), logits(seed=5, scale=1)
    assert math.isclose(float(losses.least_squares_discriminator_loss(real, fake)),
                        float(0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean()), rel_tol=1e-5)
    assert math.isclose(float(losses.least_squares_generator_loss(fake)), float(0.5 * ((fake - 1) ** 2).mean()),
                        rel_tol=1e-5)


def test_loss_inputs_are_checked():
    with pytest.raises(ValueError, match="real_logits must be a float tensor"):
        losses.discriminator_loss(torch.ones(3, dtype=torch.long), torch.zeros(3))
    with pytest.raises(ValueError, match="real_label must lie in"):
        losses.discriminator_loss(torch.ones(3), torch.zeros(3), real_label=0.2)
    with pytest.raises(ValueError, match="generator loss kind must be one of"):
        losses.generator_loss(torch.ones(3), "wasserstein")
    with pytest.raises(ValueError, match="fake_logits is empty"):
        losses.generator_loss_minimax(torch.zeros(0))


# --------------------------------------------------------------------------- models
def test_mlp_gan_shapes_and_pack():
    g = MLPGenerator(latent_dim=8, sample_shape=(1, 28, 28), hidden=(32,))
    x = g(torch.randn(6, 8))
    assert x.shape == (6, 1, 28, 28) and x.abs().max() <= 1
    d = MLPDiscriminator((1, 28, 28), hidden=(16,))
    assert d(x).shape == (6,)
    packed = MLPDiscriminator((2,), hidden=(16,), pack=3)
    assert packed(torch.randn(6, 2)).shape == (2,)
    with pytest.raises(ValueError, match="divisible by pack=3"):
        packed(torch.randn(4, 2))
    with pytest.raises(ValueError, match="z must be N x 8"):
        g(torch.randn(2, 3))


@pytest.mark.parametrize("channels,image_size,fractionally_strided", [(1, 32, 3), (3, 32, 3), (3, 64, 4)])
def test_dcgan_projects_to_4x4_then_doubles_with_fractionally_strided_convolutions(channels, image_size,
                                                                                   fractionally_strided):
    g = DCGANGenerator(latent_dim=16, channels=channels, image_size=image_size, features=8)
    transposed = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(transposed) == fractionally_strided and all(m.stride == (2, 2) for m in transposed)  # 4 at 64 x 64
    assert g.project[1].unflattened_size[1:] == (4, 4)  # project and reshape to 4 x 4
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == fractionally_strided  # all but the output
    x = g(torch.randn(5, 16))
    assert x.shape == (5, channels, image_size, image_size) and x.abs().max() < 1
    for sn in (False, True):
        d = DCGANDiscriminator(channels, image_size, features=8, spectral_norm=sn)
        assert d(x).shape == (5,)
        assert any(isinstance(m, nn.BatchNorm2d) for m in d.modules()) is not sn
    with pytest.raises(ValueError, match="power of two"):
        DCGANGenerator(image_size=28)
    with pytest.raises(ValueError, match="channels must be 1"):
        DCGANGenerator(channels=2)
    with pytest.raises(ValueError, match="images must be N x 1 x 32 x 32"):
        DCGANDiscriminator(1, 32, features=8)(torch.zeros(2, 1, 28, 28))


def test_spectral_norm_bounds_the_largest_singular_value():
    torch.manual_seed(0)
    d = DCGANDiscriminator(1, 32, features=8, spectral_norm=True)
    for _ in range(20):  # power iteration converges during training-mode forward passes
        d(torch.randn(4, 1, 32, 32))
    d.eval()
    conv = d.net[2]
    assert isinstance(conv, nn.Conv2d) and hasattr(conv, "parametrizations")
    sigma = torch.linalg.matrix_norm(conv.weight.reshape(conv.weight.shape[0], -1), ord=2)
    assert sigma.item() == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("n_layers,expected", [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field_formula_and_autograd_measurement(n_layers, expected):
    assert receptive_field(n_layers) == expected
    torch.manual_seed(n_layers)
    d = PatchDiscriminator(in_channels=3, features=8, n_layers=n_layers)
    top, left, height, width = measure_receptive_field(d, in_channels=3, input_size=160)
    assert (height, width) == (expected, expected)
    out = d(torch.randn(2, 3, 160, 160))
    assert out.shape == (2, 1, d.output_size(160), d.output_size(160))


def test_patchgan_checks_inputs():
    d = PatchDiscriminator(in_channels=6, n_layers=3, features=8)
    with pytest.raises(ValueError, match="N x 6 x H x W"):
        d(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="too small"):
        d(torch.randn(1, 6, 16, 16))
    with pytest.raises(ValueError, match="n_layers"):
        receptive_field(0)


@pytest.mark.parametrize("c_in,c_out,depth", [(3, 3, 3), (1, 3, 2), (4, 3, 4)])
def test_unet_shapes_and_range(c_in, c_out, depth):
    net = UNet(in_channels=c_in, out_channels=c_out, depth=depth, base_channels=8)
    y = net(torch.randn(2, c_in, 32, 48))
    assert y.shape == (2, c_out, 32, 48) and 0 <= y.min() and y.max() <= 1
    assert UNet(c_in, c_out, depth, 8, final_activation="tanh")(torch.randn(2, c_in, 32, 32)).min() >= -1


def test_unet_validates_inputs():
    net = UNet(3, 3, depth=3, base_channels=8)
    with pytest.raises(ValueError, match=r"divisible by 2\*\*depth = 8 \(depth=3\), got 20 x 32"):
        net(torch.randn(1, 3, 20, 32))
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        net(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="depth must be a positive int"):
        UNet(depth=0)
    with pytest.raises(ValueError, match="final_activation"):
        UNet(final_activation="relu")


def test_unet_upsampling_by_resize_has_no_period_two_pattern():
    # A flat feature map upsampled: the stride-2 transposed convolution paints a 2 x 2 pattern (the grid a GAN
    # loss turns into checkerboard artefacts); nearest resize + 3 x 3 convolution stays flat away from the border.
    torch.manual_seed(0)
    flat = torch.ones(1, 32, 8, 8)            # the deepest level: 32 -> 16 channels
    transpose = UNet(3, 3, depth=2, base_channels=8).up[0](flat)[0, :, 2:-2, 2:-2]
    resize = UNet(3, 3, depth=2, base_channels=8, upsample="resize").up[0](flat)[0, :, 2:-2, 2:-2]
    assert (transpose[:, 0::2, 0::2] - transpose[:, 1::2, 1::2]).abs().max() > 1e-3
    assert (resize - resize[:, :1, :1]).abs().max() < 1e-5
    net = UNet(3, 3, depth=2, base_channels=8, upsample="resize")
    assert net(torch.rand(2, 3, 16, 24)).shape == (2, 3, 16, 24)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
    with pytest.raises(ValueError, match="upsample must be one of"):
        UNet(upsample="bilinear")


def test_unet_skip_connections_carry_detail():
    # With skips, a U-Net can learn the identity on random images far better than through its 2x2 bottleneck
    torch.manual_seed(0)
    x = torch.rand(64, 1, 16, 16)
    net = UNet(1, 1, depth=3, base_channels=8, final_activation=None)
    history = train_image_to_image(net, x, x, epochs=30, batch_size=16, lr=3e-3, progress=False)
    assert history["l1"][-1] < 0.5 * history["l1"][0]
    assert history["l1"][-1] < 0.1  # a bottleneck of 2 x 2 x 64 alone cannot reproduce 256 random pixels


# --------------------------------------------------------------------------- training
def ring_free_toy(n=2048, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 3.0 + 0.5 * torch.randn(n, 1, generator=g)


class Recording(nn.Module):
    """A discriminator that keeps a copy of every input it is shown."""

    def __init__(self, discriminator):
        super().__init__()
        self.discriminator, self.seen = discriminator, []

    def forward(self, x, *labels):
        self.seen.append((x.detach().clone(), *labels))
        return self.discriminator(x, *labels)


def test_gan_step_is_algorithm_1_with_k_discriminator_updates():
    torch.manual_seed(0)
    g, d = MLPGenerator(2, (1,), (8,), output="linear"), Recording(MLPDiscriminator((1,), (8,)))
    opt_g, opt_d = make_optimizers(g, d, "sgd", lr_generator=0.01, momentum=0.5)
    calls = {"d_steps": 0, "g_steps": 0}
    original_d_step, original_g_step = opt_d.step, opt_g.step
    opt_d.step = lambda *a, **kw: (calls.__setitem__("d_steps", calls["d_steps"] + 1), original_d_step())
    opt_g.step = lambda *a, **kw: (calls.__setitem__("g_steps", calls["g_steps"] + 1), original_g_step())
    step = gan_step(g, d, opt_g, opt_d, k=3)
    data = torch.arange(12.0).reshape(12, 1)
    out = step(data)
    assert calls["d_steps"] == 3 and calls["g_steps"] == 1
    seen = [x for x, *_ in d.seen]
    reals = seen[0:6:2]  # each D update sees (real, fake); then the G update sees a fake
    assert [r.flatten().tolist() for r in reals] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    fakes = seen[1:6:2] + [seen[6]]
    assert len(seen) == 7
    assert all(not torch.allclose(fakes[i], fakes[j]) for i in range(4) for j in range(i))  # fresh noise each
    assert set(out) == {"loss_d", "loss_g", "d_real", "d_fake"}
    assert all(v.ndim == 0 and not v.requires_grad for v in out.values())
    assert all(p.requires_grad for p in d.parameters())  # D unfrozen after the generator update
    with pytest.raises(ValueError, match="k .* must be a positive int, got 0"):
        gan_step(g, d, opt_g, opt_d, k=0)


def test_gan_step_with_labels_conditions_both_players():
    torch.manual_seed(0)
    g = ConditionalGenerator(latent_dim=4, n_classes=3, embedding_dim=2, features=4)
    d = Recording(ProjectionDiscriminator(n_classes=3, features=4, hidden=8))
    opt_g, opt_d = make_optimizers(g, d)
    images, labels = torch.rand(8, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    gan_step(g, d, opt_g, opt_d, k=2)((images, labels))
    (real_0, y_0), (_, fake_y_0), (real_1, y_1), (_, fake_y_1), (_, fake_y_g) = d.seen
    assert torch.equal(real_0, images[:4]) and torch.equal(y_0, labels[:4])   # D(x, y) on the real pairs
    assert torch.equal(real_1, images[4:]) and torch.equal(y_1, labels[4:])
    for y in (fake_y_0, fake_y_1, fake_y_g):                                   # G(z, y'), D(G(z, y'), y')
        assert y.shape == (4,) and y.dtype == torch.long and int(y.min()) >= 0 and int(y.max()) < 3


def test_generator_update_leaves_the_discriminator_alone():
    torch.manual_seed(0)
    g, d = MLPGenerator(2, (1,), (8,), output="linear"), MLPDiscriminator((1,), (8,))
    opt_g, opt_d = make_optimizers(g, d, "adam")
    d_before = [p.detach().clone() for p in d.parameters()]
    step = gan_step(g, d, opt_g, opt_d, k=1)
    opt_d.step = lambda *a, **kw: None  # skip D's update: only the generator update may change anything
    step(torch.randn(8, 1))
    assert all(torch.equal(a, b) for a, b in zip(d_before, d.parameters()))
    assert all(p.grad is None or p.grad.abs().sum() > 0 for p in d.parameters())


def test_gan_learns_a_1d_gaussian_and_records_diagnostics():
    torch.manual_seed(0)
    g = MLPGenerator(4, (1,), (32, 32), output="linear")
    d = MLPDiscriminator((1,), (32, 32))
    data = ring_free_toy()
    run = train_gan(g, d, data, 40, GANOptions(batch_size=64, lr_generator=2e-3, betas=(0.5, 0.999), ema_decay=0.99,
                                               n_snapshot=2000), progress=False)
    samples = run.snapshots[-1][1]
    assert abs(float(samples.mean()) - 3.0) < 0.3 and abs(float(samples.std()) - 0.5) < 0.25
    before = run.snapshots[0][1]
    assert abs(float(before.mean()) - 3.0) > 1.0  # it did move
    h = run.history
    assert len(h) == 40 and len(run.snapshots) == 41
    assert 0 < h["d_real"][-1] < 1 and 0 < h["d_fake"][-1] < 1 and h["grad_norm_g"][-1] > 0
    assert abs(h["d_real"][-1] - 0.5) < 0.25  # near the equilibrium D = 1/2


def test_dcgan_loop_runs_and_images_map_between_ranges():
    torch.manual_seed(0)
    images = torch.rand(64, 1, 28, 28)
    x = to_tanh_range(resize_images(images, 32))
    assert x.shape == (64, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert torch.allclose(to_unit_range(to_tanh_range(images)), images, atol=1e-6)
    g, d = DCGANGenerator(16, 1, 32, features=8), DCGANDiscriminator(1, 32, features=8, spectral_norm=True)
    run = train_gan(g, d, x, 2, GANOptions(batch_size=16, k=2, ema_decay=0.9, real_label=0.9, lr_discriminator=4e-4),
                    progress=False)
    assert run.history.last["steps"] == 2 and run.history.last["images"] == 64
    assert run.sample(10).shape == (10, 1, 32, 32)
    assert not torch.equal(run.sampler.state_dict()["project.0.weight"], g.state_dict()["project.0.weight"])
    z = torch.randn(3, 16)
    assert torch.equal(generate(g, z), generate(g, z))  # eval mode: batch norm uses running statistics


def test_image_to_image_with_patchgan_runs_and_lowers_l1():
    torch.manual_seed(0)
    target = torch.rand(32, 3, 16, 16)
    inputs = F.avg_pool2d(target, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    net = UNet(3, 3, depth=2, base_channels=8)
    d = PatchDiscriminator(6, features=8, n_layers=2)
    history = train_image_to_image(net, inputs, target, epochs=6, discriminator=d, batch_size=8, lr=2e-3,
                                   progress=False)
    assert {"l1", "loss_g", "loss_d", "adv_g", "d_real", "d_fake"} <= set(history.last)
    assert history["l1"][-1] < history["l1"][0]
    with pytest.raises(ValueError, match="both discriminator and opt_d"):
        image_to_image_step(net, torch.optim.Adam(net.parameters()), discriminator=d)


def test_ema_follows_the_warm_up_recursion_and_round_trips_through_state_dict():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(model, decay=0.9)
    expected = float(model[0].weight[0, 0].detach())  # the average starts as a copy of the model
    for n in range(1, 30):
        with torch.no_grad():
            model[0].weight.fill_(float(n))
        model(torch.randn(4, 2))  # moves the batch-norm statistics too
        ema.update(model)
        d = min(0.9, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * n
    assert float(ema.module[0].weight[0, 0]) == pytest.approx(expected, rel=1e-5)
    assert not ema.module[0].weight.requires_grad
    assert int(ema.module[1].num_batches_tracked) == 29  # integer buffers are copied
    assert not torch.equal(ema.module[1].running_mean, model[1].running_mean)  # float buffers are averaged
    restored = EMA(model, decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == 29 and restored.decay == 0.9
    assert torch.equal(restored.module[0].weight, ema.module[0].weight)


# --------------------------------------------------------------------------- sharpness metrics
def test_sharpness_metrics_fall_with_blur_and_match_closed_forms():
    from torchvision.transforms.functional import gaussian_blur

    from lecture_utils.metrics import gradient_magnitude, high_frequency_energy, sharpness_ratio

    # a vertical edge of height 1: every row has one forward difference of 1
    edge = torch.zeros(1, 1, 8, 8)
    edge[..., 4:] = 1.0
    assert float(gradient_magnitude(edge)) == pytest.approx(7 / (7 * 7))
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2
    checker = checker.float().expand(1, 3, 16, 16)
    assert float(high_frequency_energy(checker)) == pytest.approx(1.0)  # all energy at the Nyquist corner
    assert float(high_frequency_energy(torch.full((1, 1, 8, 8), 0.3))) == 0.0
    torch.manual_seed(0)
    sharp = torch.rand(4, 3, 32, 32)
    blurred = gaussian_blur(sharp, kernel_size=9, sigma=2.0)
    assert (gradient_magnitude(blurred) < 0.5 * gradient_magnitude(sharp)).all()
    assert (high_frequency_energy(blurred) < 0.2 * high_frequency_energy(sharp)).all()
    assert sharpness_ratio(sharp, sharp) == pytest.approx(1.0)
    assert sharpness_ratio(blurred, sharp) < 0.5
    with pytest.raises(ValueError, match="same shape"):
        sharpness_ratio(sharp, sharp[:2])
    with pytest.raises(ValueError, match="N x C x H x W"):
        gradient_magnitude(torch.rand(3, 8, 8))


def test_residual_unet_starts_near_the_identity():
    torch.manual_seed(0)
    net = UNet(3, 3, depth=2, base_channels=8, final_activation=None, residual=True)
    with torch.no_grad():
        net.head[0].weight.zero_()
        net.head[0].bias.zero_()
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(net(x), x)  # a zero correction returns the input
    with pytest.raises(ValueError, match="residual=True needs"):
        UNet(1, 3, residual=True, final_activation=None)
    with pytest.raises(ValueError, match="residual=True needs"):
        UNet(3, 3, residual=True)


# --------------------------------------------------------------------------- CIFAR-10 loader
def write_cifar_fixture(root, n=6):
    """A tiny CIFAR-10 in torchvision's on-disk format (pickled batches)."""
    import pickle

    import numpy as np

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), "labels": list(range(n))}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog"]}, handle)
    return folder


def test_cifar10_loads_from_files_and_falls_back_offline(tmp_path, monkeypatch, capsys):
    from lecture_utils.data import load_cifar10

    monkeypatch.setenv("LECTURE_UTILS_OFFLINE", "1")
    assert load_cifar10("train", root=tmp_path / "empty") is None
    assert "not available offline" in capsys.readouterr().out
    folder = write_cifar_fixture(tmp_path)
    # the fixture cannot match the official md5 sums: skip torchvision's integrity checks
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)
    data = load_cifar10("train", root=tmp_path)
    assert data.images.shape == (30, 3, 32, 32) and data.images.dtype == torch.float32
    assert 0 <= float(data.images.min()) and float(data.images.max()) <= 1
    assert data.labels.tolist() == list(range(6)) * 5
    # pixel (row 0, col 0, red) of the first image is byte 0 of its row in the pickled batch
    import pickle

    with open(folder / "data_batch_1", "rb") as handle:
        first = pickle.load(handle)["data"][0]
    assert float(data.images[0, 0, 0, 0]) == pytest.approx(first[0] / 255.0)
    assert float(data.images[0, 1, 0, 0]) == pytest.approx(first[1024] / 255.0)  # green plane starts at 1024
    assert load_cifar10("test", root=tmp_path).images.shape[0] == 6
    with pytest.raises(ValueError, match="split must be"):
        load_cifar10("valid", root=tmp_path)


def test_random_shift_moves_each_image_and_passes_gradients():
    torch.manual_seed(0)
    x = torch.randn(64, 2, 8, 8, requires_grad=True)
    y = random_shift(x, max_shift=2, background=-1.0)
    assert y.shape == x.shape
    # each output image equals its input shifted by some (dy, dx) in [-2, 2]^2, with -1 where it came from outside
    for i in range(8):
        matches = 0
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                reference = torch.full_like(x[i], -1.0)
                src = x[i, :, max(0, -dy):8 - max(0, dy), max(0, -dx):8 - max(0, dx)]
                reference[:, max(0, dy):8 - max(0, -dy), max(0, dx):8 - max(0, -dx)] = src
                matches += torch.equal(y[i], reference)
        assert matches == 1
    assert len({tuple(y[i].flatten()[:3].tolist()) for i in range(64)}) > 5  # different shifts per image
    y.sum().backward()
    assert x.grad is not None and float(x.grad.sum()) > 0
    assert torch.equal(random_shift(x, 0), x)
    # DiffAugment: D sees shifted images, and G's gradient flows back through the shift
    d = MLPDiscriminator((2, 8, 8), hidden=(8,))
    augmented = Augmented(d)
    torch.manual_seed(1)
    scores = augmented(x)
    torch.manual_seed(1)
    assert torch.equal(scores, d(random_shift(x, 2, background=-1.0)))


class Counting(nn.Module):
    """A generator that counts its forward passes."""

    def __init__(self, generator):
        super().__init__()
        self.generator, self.latent_dim, self.calls = generator, generator.latent_dim, 0

    def forward(self, z):
        self.calls += 1
        return self.generator(z)


def test_reused_fakes_skip_one_generator_forward_and_feed_both_updates():
    torch.manual_seed(0)
    data = torch.randn(3, 8, 1)
    for make_step, forwards in ((gan_step, 2), (reused_fakes_step, 1)):
        g, d = Counting(MLPGenerator(2, (1,), (8,), output="linear")), Recording(MLPDiscriminator((1,), (8,)))
        step = make_step(g, d, *make_optimizers(g, d))
        for batch in data:
            out = step(batch)
        assert g.calls == 3 * forwards and torch.isfinite(out["loss_g"])
        if make_step is reused_fakes_step:    # G's update judges the very fakes D was just trained on
            assert all(torch.equal(d.seen[i][0], d.seen[i + 1][0]) for i in range(1, len(d.seen), 3))
    with pytest.raises(ValueError, match="reuse_fakes=True is DCGAN's loop with k = 1"):
        GANOptions(k=2, reuse_fakes=True)


def test_grad_norm_every_samples_the_norms_without_changing_training():
    """Measured every 3rd iteration and held in between: the measured values are those of a run that measures
    every iteration (measuring does not change training), and the iterations in between repeat them."""
    data = torch.randn(6, 8, 1)

    def norms(every):
        torch.manual_seed(0)
        g, d = MLPGenerator(2, (1,), (8,), output="linear"), MLPDiscriminator((1,), (8,))
        opt_g, opt_d = make_optimizers(g, d)
        step = GradientNorms(opt_g, opt_d, every).wrap(gan_step(g, d, opt_g, opt_d))
        outs = [step(batch) for batch in data]
        return [(float(o["grad_norm_d"]), float(o["grad_norm_g"])) for o in outs], [p.detach() for p in g.parameters()]

    every_step, weights_1 = norms(1)
    sampled, weights_3 = norms(3)
    assert len(set(every_step)) == 6                       # the norms change from one iteration to the next
    assert sampled == [every_step[0]] * 3 + [every_step[3]] * 3
    for a, b in zip(weights_1, weights_3):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="grad_norm_every must be a positive int"):
        g, d = MLPGenerator(2, (1,), (8,)), MLPDiscriminator((1,), (8,))
        GradientNorms(*make_optimizers(g, d), every=0)


def max_difference(a: nn.Module, b: nn.Module) -> float:
    """The largest absolute difference between two models' floating-point weights and buffers."""
    pairs = [(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()) if p.is_floating_point()]
    assert len(pairs) == len(a.state_dict()) - sum(not p.is_floating_point() for p in a.state_dict().values())
    return max(float((p - q.contiguous()).abs().max()) for p, q in pairs)


@pytest.mark.parametrize("conditional", [False, True])
def test_the_readable_gan_step_and_the_fast_path_train_the_same_weights(conditional):
    """gan_step run plainly, and train_gan / train_conditional_gan (channels-last models and data, gradient
    norms sampled by optimiser hooks, an EMA hook, autocast): the same seeds give the same G and D."""
    torch.manual_seed(0)
    if conditional:
        g, d = ConditionalGenerator(latent_dim=8, features=8), ProjectionDiscriminator(features=8, hidden=16)
        images, labels = torch.rand(48, 1, 28, 28), torch.arange(48) % 10
        batches = BatchIterator(to_tanh_range(images), labels, batch_size=32, seed=0)
    else:
        g, d = DCGANGenerator(8, 1, 32, features=8), DCGANDiscriminator(1, 32, features=8)
        images = torch.rand(96, 1, 32, 32) * 2 - 1
        batches = BatchIterator(images, batch_size=32, seed=0)
    readable_g, readable_d = copy.deepcopy(g), copy.deepcopy(d)
    opt_g, opt_d = make_optimizers(readable_g, readable_d)
    step = gan_step(readable_g, readable_d, opt_g, opt_d, k=2)
    torch.manual_seed(1)
    for epoch in range(2):
        for batch in batches:
            step(batch)
    options = GANOptions(batch_size=16, k=2, ema_decay=0.9, speed=Speed(channels_last=True, grad_norm_every=2))
    torch.manual_seed(1)
    if conditional:
        run = train_conditional_gan(g, d, images, labels, 2, options, progress=False)
    else:
        run = train_gan(g, d, images, 2, options, progress=False)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in g.parameters() if p.ndim == 4)
    assert {"grad_norm_d", "grad_norm_g"} <= set(run.history.last) and run.ema.updates == 2 * len(batches)
    assert max_difference(readable_g, g) < 1e-5 and max_difference(readable_d, d) < 1e-5
    assert max_difference(readable_g, run.ema.module) > 1e-4   # the EMA is another model: the test can tell


def test_the_readable_pix2pix_step_and_train_image_to_image_train_the_same_weights():
    torch.manual_seed(0)
    target = torch.rand(32, 3, 16, 16)
    inputs = F.avg_pool2d(target, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    net, d = UNet(3, 3, depth=2, base_channels=8), PatchDiscriminator(6, features=8, n_layers=2)
    readable_net, readable_d = copy.deepcopy(net), copy.deepcopy(d)
    opt_g, opt_d = adam(readable_net.parameters(), 2e-3, (0.5, 0.999)), adam(readable_d.parameters(), 2e-3, (0.5, 0.999))
    step = image_to_image_step(readable_net, opt_g, discriminator=readable_d, opt_d=opt_d)
    torch.manual_seed(1)
    for batch in BatchIterator(inputs, target, batch_size=8, seed=3):
        step(batch)
    torch.manual_seed(1)
    train_image_to_image(net, inputs, target, 1, discriminator=d, batch_size=8, lr=2e-3, seed=3, progress=False)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in net.parameters() if p.ndim == 4)
    assert max_difference(readable_net, net) < 1e-5 and max_difference(readable_d, d) < 1e-5
    assert max_difference(readable_net, UNet(3, 3, depth=2, base_channels=8)) > 1e-3


def test_gaussian_mixture_prior_draws_from_its_components():
    prior = GaussianMixturePrior(latent_dim=100, n_components=20, sigma=1.0, seed=3)
    z, k = prior.sample(4000, seed=1, return_components=True)
    assert z.shape == (4000, 100) and k.shape == (4000,)
    assert torch.equal(prior.sample(4000, seed=1), z)                     # seeded: the same codes again
    assert torch.equal(GaussianMixturePrior(100, 20, 1.0, seed=3).centres, prior.centres)
    assert not torch.equal(prior.sample(10, seed=2), z[:10])
    counts = torch.bincount(k, minlength=20).double()
    assert (counts / 4000 - 1 / 20).abs().max() < 0.02                    # equal weights
    offsets = z - prior.centres[k]                                        # N(0, sigma^2 I) around each centre
    assert offsets.mean().abs() < 0.01 and abs(offsets.std() - 1.0) < 0.01
    # every code lies nearest its own centre: the components are separate in 100 dimensions
    assert torch.equal(torch.cdist(z, prior.centres).argmin(1), k)
    torch.manual_seed(0)
    drawn = prior(500)                                                    # the training-time call
    assert drawn.shape == (500, 100) and (torch.cdist(drawn, prior.centres).min(1).values < 14).all()
    with pytest.raises(ValueError, match="n_components must be a positive int"):
        GaussianMixturePrior(100, 0)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        GaussianMixturePrior(100, 5, sigma=0.0)


def test_the_training_steps_the_notebooks_print_fit_on_one_screen():
    """Notebooks 01-05 print these with inspect.getsource: each is at most 40 lines, docstring included."""
    for function in (gan_step, vae_step, autoencoder_step, EMA.update, r1_penalty, GaussianMixturePrior.__call__):
        lines = inspect.getsource(function).splitlines()
        assert len(lines) <= 40, f"{function.__qualname__} prints {len(lines)} lines"

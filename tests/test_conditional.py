"""Notebook 05's pieces: the class-conditional GAN (label embedding, projection discriminator, AC term),
the conditional VAE, sampling with requested labels, and the class explorer widget."""
import pytest
import torch

from lecture_utils import widgets
from lecture_utils.autoencoders import train_conditional_vae
from lecture_utils.gans import GANOptions, recalibrate_batch_norm, sample_conditional, train_conditional_gan
from lecture_utils.losses import negative_elbo
from lecture_utils.models.conditional import ConditionalGenerator, ConditionalVAE, ProjectionDiscriminator


def test_generator_shapes_range_and_label_dependence():
    torch.manual_seed(0)
    g = ConditionalGenerator(latent_dim=8, features=8).eval()
    z = torch.randn(4, 8)
    with torch.no_grad():
        a, b = g(z, torch.tensor([0, 1, 2, 3])), g(z, torch.tensor([5, 5, 5, 5]))
    assert a.shape == (4, 1, 28, 28) and float(a.abs().max()) < 1
    assert not torch.allclose(a, b), "the label must change the image"
    assert ConditionalGenerator(latent_dim=8, features=8, image_size=32, channels=3)(z, torch.zeros(4, dtype=torch.long)).shape == (4, 3, 32, 32)


def test_projection_discriminator_is_psi_plus_inner_product():
    torch.manual_seed(0)
    d = ProjectionDiscriminator(features=8, hidden=16, spectral_norm=False)
    x, y = torch.rand(5, 1, 28, 28) * 2 - 1, torch.tensor([0, 3, 3, 9, 1])
    h = d.phi(x)
    expected = h @ d.psi.weight[0] + d.psi.bias + (d.embed.weight[y] * h).sum(1)
    assert torch.allclose(d(x, y), expected, atol=1e-6)
    unconditional = ProjectionDiscriminator(features=8, hidden=16, projection=False).eval()  # eval: no power step
    assert torch.allclose(unconditional(x, y), unconditional(x, (y + 1) % 10))


def test_conditional_models_reject_bad_input():
    g, d = ConditionalGenerator(latent_dim=8, features=8), ProjectionDiscriminator(features=8)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\]"):   # where labels enter; forward
        sample_conditional(g, torch.tensor([0, 10]))                    # checks shape and dtype only
    with pytest.raises(ValueError, match="integers"):
        g(torch.randn(2, 8), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="1-D tensor of 2 class indices"):
        g(torch.randn(2, 8), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="z must be N x 8"):
        g(torch.randn(2, 7), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"images must be N x 1 x 28 x 28, got shape \(2, 3, 28, 28\)"):
        d(torch.zeros(2, 3, 28, 28), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"images must be N x 1 x 28 x 28, got shape \(2, 1, 14, 14\)"):
        d(torch.zeros(2, 1, 14, 14), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="image_size must be one of"):
        ConditionalGenerator(image_size=20)
    with pytest.raises(ValueError, match="auxiliary_classifier=True"):
        train_conditional_gan(g, d, torch.rand(8, 1, 28, 28), torch.arange(8), 1,
                              GANOptions(batch_size=4, classifier_weight=1.0))


def _halves(n: int, seed: int = 0):
    """Toy data: class 0 lights the left half of the image, class 1 the right half (plus noise)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = 0.1 * torch.rand(n, 1, 28, 28, generator=g)
    images[labels == 0, :, :, :14] += 0.8
    images[labels == 1, :, :, 14:] += 0.8
    return images.clamp(0, 1), labels


@pytest.mark.parametrize("classifier_weight", [0.0, 1.0])
def test_conditional_gan_learns_to_obey_the_label(classifier_weight):
    torch.manual_seed(0)
    images, labels = _halves(256)
    g = ConditionalGenerator(latent_dim=8, n_classes=2, embedding_dim=4, features=8)
    d = ProjectionDiscriminator(n_classes=2, features=8, hidden=32, auxiliary_classifier=classifier_weight > 0)
    run = train_conditional_gan(g, d, images, labels, 12,
                                GANOptions(batch_size=32, lr_discriminator=4e-4, classifier_weight=classifier_weight),
                                progress=False)
    requested = torch.arange(200) % 2
    samples = run.sample(requested, seed=1)
    assert samples.shape == (200, 1, 28, 28) and 0 <= float(samples.min()) and float(samples.max()) <= 1
    left, right = samples[..., :14].mean((1, 2, 3)), samples[..., 14:].mean((1, 2, 3))
    obeys = torch.where(requested == 0, left > right, right > left).float().mean()
    assert obeys > 0.9, f"only {float(obeys):.2f} of the samples light the requested half"


def test_sampling_is_seeded_and_checks_codes():
    g = ConditionalGenerator(latent_dim=8, features=8)
    labels = torch.tensor([1, 2, 3])
    assert torch.equal(sample_conditional(g, labels, seed=3), sample_conditional(g, labels, seed=3))
    assert g.training, "sampling must restore training mode"
    with pytest.raises(ValueError, match=r"z must be 3 x 8"):
        sample_conditional(g, labels, z=torch.randn(2, 8))


def test_conditional_vae_elbo_and_training():
    torch.manual_seed(0)
    model = ConditionalVAE(latent_dim=2, features=8)
    images, labels = _halves(128)
    logits, mu, logvar = model(images, labels)
    assert logits.shape == images.shape and mu.shape == (128, 2) == logvar.shape
    before = float(negative_elbo(images, logits, mu, logvar).mean().detach())
    history = train_conditional_vae(model, images, labels, 20, batch_size=32, lr=3e-3, progress=False)
    after = history.records[-1]["negative_elbo"]
    floor = 392 * (0.199 + 0.423)          # the entropy of the pixel noise: no model can go below it
    assert after < before - 0.5 * (before - floor), (before, after)
    with torch.no_grad():                  # the decoder relies on y: the wrong label costs hundreds of nats
        right_label = negative_elbo(images, *model(images, labels, generator=torch.Generator().manual_seed(0)))
        wrong_label = negative_elbo(images, *model(images, 1 - labels, generator=torch.Generator().manual_seed(0)))
    assert float(wrong_label.mean()) > float(right_label.mean()) + 200
    requested = torch.arange(200) % 2
    samples = sample_conditional(model, requested)
    left, right = samples[..., :14].mean((1, 2, 3)), samples[..., 14:].mean((1, 2, 3))
    obeys = torch.where(requested == 0, left > right, right > left).float().mean()
    assert obeys > 0.6, f"only {float(obeys):.2f} of the prior samples light the requested half (chance: 0.5)"
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_conditional_vae(model, images * 2, labels, 1, progress=False)


def test_class_explorer_shows_the_same_code_in_every_class():
    torch.manual_seed(0)
    g = ConditionalGenerator(latent_dim=6, features=8)

    def decode(z, y):
        return sample_conditional(g, y, z=z)

    z0 = torch.randn(6)
    explorer = widgets.class_explorer(decode, z0, dims=[0, 1], show=False)
    explorer.picker.value = 7
    assert torch.allclose(explorer.current_image(), decode(z0[None], torch.tensor([7]))[0], atol=1e-6)
    explorer.sliders.sliders[0].value = 2.0
    z = z0.clone()
    z[0] = 2.0
    assert torch.allclose(explorer.code(), z)
    strip = explorer.strip_images()
    assert strip.shape == (10, 1, 28, 28)
    assert torch.allclose(strip, decode(z[None].repeat(10, 1), torch.arange(10)), atol=1e-6)
    assert torch.allclose(explorer.current_image(), strip[7], atol=1e-6)
    assert explorer.static_png()[:8] == b"\x89PNG\r\n\x1a\n"


def test_batch_norm_recalibration_matches_the_samples_statistics():
    torch.manual_seed(0)
    g = ConditionalGenerator(latent_dim=8, features=8)
    bn = g.project[2]
    bn.running_mean.fill_(5.0)                         # stale statistics, as an EMA leaves them
    recalibrate_batch_norm(g, n_batches=3, batch_size=64, seed=0)
    assert not g.training
    draw = torch.Generator().manual_seed(0)
    pre_activations = []
    for _ in range(3):                                 # the same draws as the recalibration
        z = torch.randn(64, 8, generator=draw)
        labels = torch.randint(0, 10, (64,), generator=draw)
        with torch.no_grad():
            pre_activations.append(g.project[1](g.project[0](torch.cat([z, g.embed(labels)], 1))))
    h = torch.cat(pre_activations)                     # N x 2f x 7 x 7, the first batch norm's input
    assert torch.allclose(bn.running_mean, h.mean((0, 2, 3)), atol=1e-5)
    per_batch_var = torch.stack([p.var((0, 2, 3), unbiased=True) for p in pre_activations])
    assert torch.allclose(bn.running_var, per_batch_var.mean(0), rtol=1e-4)
    assert bn.momentum == 0.1, "the momentum is restored"

"""Notebook 02's library: VAE models, the ELBO and its parts, the IWAE bound, the VAE training step."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from lecture_utils.data import BatchIterator, load_mnist
from lecture_utils.losses import (bernoulli_nll, gaussian_kl, gaussian_nll, iwae_log_likelihood,
                                  monte_carlo_kl, negative_elbo, vae_loss_terms)
from lecture_utils.models.vae import ConvVAE, MLPVAE
from lecture_utils.autoencoders import evaluate_vae, train_vae, vae_step
from lecture_utils.train import adam, random_shift


def random_gaussian(n=16, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g).clamp(-3, 3)


# --------------------------------------------------------------------------- losses
def test_gaussian_kl_matches_torch_distributions():
    mu, logvar = random_gaussian()
    ours = gaussian_kl(mu, logvar)
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    torch.testing.assert_close(ours, kl_divergence(q, p), rtol=1e-5, atol=1e-5)
    # against a prior that is not N(0, I)
    prior_mu, prior_logvar = random_gaussian(seed=1)
    p = Independent(Normal(prior_mu, torch.exp(0.5 * prior_logvar)), 1)
    torch.testing.assert_close(gaussian_kl(mu, logvar, prior_mu, prior_logvar), kl_divergence(q, p),
                               rtol=1e-5, atol=1e-5)
    assert float(gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max()) == 0.0


def test_monte_carlo_kl_converges_to_the_closed_form():
    mu, logvar = random_gaussian(n=8, d=4)
    exact = gaussian_kl(mu, logvar)
    g = torch.Generator().manual_seed(0)
    one = monte_carlo_kl(mu, logvar, n_samples=1, generator=g)
    many = monte_carlo_kl(mu, logvar, n_samples=40000, generator=g)
    assert one.shape == exact.shape == (8,)
    torch.testing.assert_close(many, exact, rtol=0.03, atol=0.05)
    assert (many - exact).abs().mean() < 0.1 * (one - exact).abs().mean()


def test_bernoulli_nll_is_the_cross_entropy_and_the_bernoulli_log_likelihood():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 28, 28, generator=g)
    logits = 3 * torch.randn(6, 1, 28, 28, generator=g)
    reference = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(bernoulli_nll(x, logits), reference, rtol=1e-4, atol=1e-3)
    binary = (x > 0.5).float()
    log_prob = torch.distributions.Bernoulli(logits=logits).log_prob(binary).sum((1, 2, 3))
    torch.testing.assert_close(bernoulli_nll(binary, logits), -log_prob, rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="same shape"):
        bernoulli_nll(x, logits[:, :, :27])


def test_gaussian_nll_matches_normal_log_prob():
    g = torch.Generator().manual_seed(0)
    x, mean = torch.randn(4, 1, 5, 5, generator=g), torch.randn(4, 1, 5, 5, generator=g)
    log_sigma = 0.3 * torch.randn(1, 5, 5, generator=g)
    reference = -Normal(mean, log_sigma.exp()).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(gaussian_nll(x, mean, log_sigma), reference, rtol=1e-5, atol=1e-4)


def test_negative_elbo_is_the_pytorch_examples_loss():
    """pytorch/examples vae/main.py: BCE(recon, x, sum) + -0.5 * sum(1 + logvar - mu^2 - exp(logvar))."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(10, 1, 28, 28, generator=g)
    logits = torch.randn(10, 1, 28, 28, generator=g)
    mu, logvar = random_gaussian(n=10, d=20)
    bce = F.binary_cross_entropy(torch.sigmoid(logits).view(-1, 784), x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    ours = negative_elbo(x, logits, mu, logvar)
    assert ours.shape == (10,)
    torch.testing.assert_close(ours.sum(), bce + kld, rtol=1e-4, atol=1e-2)
    torch.testing.assert_close(negative_elbo(x, logits, mu, logvar, beta=4.0) - ours, 3 * gaussian_kl(mu, logvar))


def test_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="mu and logvar must have the same shape"):
        gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        monte_carlo_kl(torch.zeros(3, 4), torch.zeros(3, 4), n_samples=0)


class LinearGaussianModel:
    """z ~ N(0, I_d), x | z ~ N(W z + b, sigma^2 I_D): log p(x) = log N(x; b, W W^T + sigma^2 I) in
    closed form.  The 'encoder' is a Gaussian with diagonal covariance (the VAE's interface)."""

    def __init__(self, W, b, sigma, exact_diagonal_posterior: bool):
        self.W, self.b, self.log_sigma = W, b, math.log(sigma)
        d = W.shape[1]
        precision = torch.eye(d) + W.T @ W / sigma**2
        self.posterior_cov = torch.linalg.inv(precision)
        self.exact = exact_diagonal_posterior
        self.marginal = MultivariateNormal(b, W @ W.T + sigma**2 * torch.eye(W.shape[0]))

    def encode(self, x):
        mu = (x - self.b) @ self.W @ self.posterior_cov.T / math.exp(2 * self.log_sigma)
        var = torch.diagonal(self.posterior_cov).expand_as(mu)
        if not self.exact:  # a deliberately poor q: shifted mean, too wide
            mu, var = 0.6 * mu + 0.3, 2.5 * var
        return mu, var.log()

    def decode(self, z):
        return z @ self.W.T + self.b

    def reconstruction_nll(self, x, mean):
        return gaussian_nll(x, mean, self.log_sigma)


def linear_gaussian_problem(exact, seed=0, n=200, D=6, d=3):
    g = torch.Generator().manual_seed(seed)
    if exact:  # orthogonal columns: the true posterior is diagonal, q can equal it
        W = torch.linalg.qr(torch.randn(D, d, generator=g))[0] * torch.tensor([2.0, 1.0, 0.5])
    else:
        W = torch.randn(D, d, generator=g)
    model = LinearGaussianModel(W, torch.randn(D, generator=g), 0.5, exact)
    x = model.marginal.sample((n,))
    return model, x


def test_iwae_bound_tightens_with_k_towards_the_true_log_likelihood():
    torch.manual_seed(0)
    model, x = linear_gaussian_problem(exact=False)
    log_px = model.marginal.log_prob(x).mean()
    g = torch.Generator().manual_seed(1)
    bounds = {k: float(iwae_log_likelihood(model, x, k, generator=g).mean()) for k in (1, 10, 100, 1000)}
    values = list(bounds.values())
    assert all(a < b for a, b in zip(values, values[1:])), bounds
    assert values[-1] <= float(log_px) + 0.02, (bounds, float(log_px))
    assert float(log_px) - values[-1] < 0.2 * (float(log_px) - values[0]), (bounds, float(log_px))
    # k = 1 is the ELBO: its mean equals -E[reconstruction] - KL
    mu, logvar = model.encode(x)
    g = torch.Generator().manual_seed(2)
    z = mu + (0.5 * logvar).exp() * torch.randn(2000, *mu.shape, generator=g)
    elbo = (-model.reconstruction_nll(x.repeat(2000, 1), model.decode(z.reshape(-1, 3))).mean()
            - gaussian_kl(mu, logvar).mean())
    assert abs(values[0] - float(elbo)) < 0.1 + 0.02 * abs(float(elbo))


def test_iwae_is_exact_when_q_is_the_true_posterior():
    model, x = linear_gaussian_problem(exact=True, n=50)
    estimate = iwae_log_likelihood(model, x, k=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(estimate, model.marginal.log_prob(x), rtol=1e-4, atol=1e-3)


def test_iwae_chunks_do_not_change_the_answer():
    model, x = linear_gaussian_problem(exact=False, n=20)
    a = iwae_log_likelihood(model, x, k=50, generator=torch.Generator().manual_seed(3))
    b = iwae_log_likelihood(model, x, k=50, generator=torch.Generator().manual_seed(3), max_rows=45)
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="k must be a positive int"):
        iwae_log_likelihood(model, x, k=0)


# --------------------------------------------------------------------------- models
@pytest.mark.parametrize("cls", [MLPVAE, ConvVAE])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_shapes_and_interface(cls, likelihood):
    torch.manual_seed(0)
    model = cls(latent_size=6, likelihood=likelihood)
    x = torch.rand(5, 1, 28, 28)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 6)
    out, mu2, _ = model(x)
    assert out.shape == (5, 1, 28, 28)
    torch.testing.assert_close(mu, mu2)
    assert model.reconstruction_nll(x, out).shape == (5,)
    images = model.sample(7)
    assert images.shape == (7, 1, 28, 28) and 0 <= float(images.min()) and float(images.max()) <= 1
    terms = vae_loss_terms(model, x)
    torch.testing.assert_close(terms["negative_elbo"], terms["reconstruction"] + terms["kl"])
    with pytest.raises(ValueError, match="N x 1 x 28 x 28"):
        model.encode(torch.rand(5, 28, 28))
    with pytest.raises(ValueError, match="z must be N x 6"):
        model.decode(torch.rand(5, 5))


def test_model_arguments_are_checked():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        MLPVAE(4, likelihood="poisson")
    with pytest.raises(ValueError, match="latent_size must be a positive int"):
        MLPVAE(0)


def test_reparameterisation_lets_gradients_through_the_sample():
    mu = torch.tensor([[0.5, -1.0]], requires_grad=True)
    logvar = torch.tensor([[0.2, -0.4]], requires_grad=True)
    g = torch.Generator().manual_seed(0)
    z = MLPVAE.reparameterise(mu, logvar, generator=g)
    eps = torch.randn(1, 2, generator=torch.Generator().manual_seed(0))
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(1, 2))
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)


# --------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def digits():
    return load_mnist("train", verbose=False).images[:600], load_mnist("test", verbose=False).images[:200]


def test_vae_training_lowers_the_negative_elbo_and_iwae_bounds_it(digits):
    train, test = digits
    torch.manual_seed(0)
    model = MLPVAE(latent_size=8, hidden=200)
    before = evaluate_vae(model, test)
    history = train_vae(model, train, epochs=10, batch_size=100)
    after = evaluate_vae(model, test, iw_samples=20)
    assert history["negative_elbo"][-1] < 0.6 * history["negative_elbo"][0], history["negative_elbo"]
    assert after["negative_elbo"] < 0.5 * before["negative_elbo"], (before, after)
    assert after["negative_elbo"] == pytest.approx(after["reconstruction"] + after["kl"], rel=1e-6)
    # the importance-weighted bound is tighter than the one-sample ELBO (up to Monte-Carlo noise)
    assert -after["iw_log_likelihood"] < after["negative_elbo"] + 0.5, after
    assert evaluate_vae(model, test) == evaluate_vae(model, test), "evaluation must be seeded"


def test_larger_beta_gives_a_smaller_kl(digits):
    train, _ = digits
    kls = {}
    for beta in (0.5, 4.0):
        torch.manual_seed(0)
        model = MLPVAE(latent_size=8, hidden=100)
        history = train_vae(model, train[:300], epochs=5, batch_size=100, beta=beta)
        kls[beta] = history.last["kl"]
        assert history.last["loss"] == pytest.approx(history.last["reconstruction"] + beta * history.last["kl"],
                                                     rel=1e-4)
    assert kls[4.0] < 0.6 * kls[0.5], kls


def test_lr_final_anneals_the_rate_along_a_half_cosine(digits):
    train, _ = digits
    model = MLPVAE(latent_size=4, hidden=50)
    history = train_vae(model, train[:200], epochs=4, batch_size=100, lr=1e-3, lr_final=1e-4)
    # epoch e (from 0) of 4 runs at 1e-4 + 0.5 * 9e-4 * (1 + cos(pi e / 4)), by hand
    expected = [1e-4 + 0.45e-3 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert history["lr"] == pytest.approx(expected, rel=1e-9)
    assert train_vae(MLPVAE(4, hidden=50), train[:200], epochs=2, batch_size=100)["lr"] == [1e-3, 1e-3]
    with pytest.raises(ValueError, match="lr_final must lie in"):
        train_vae(model, train[:200], epochs=1, batch_size=100, lr=1e-3, lr_final=2e-3)


def test_a_resumed_vae_run_repeats_an_uninterrupted_one(digits, tmp_path):
    """Interrupted after 2 of 4 epochs and resumed: the cosine schedule, the random shifts and the
    weights match one uninterrupted run."""
    train, _ = digits
    options = dict(epochs=4, batch_size=100, lr=1e-3, lr_final=1e-4, shift_pixels=1)
    torch.manual_seed(0)
    whole = MLPVAE(latent_size=4, hidden=50)
    expected = train_vae(whole, train[:200], **options)

    def interrupt(epoch, record):
        if epoch == 3:
            raise KeyboardInterrupt  # after epoch 3's work, before its checkpoint: epoch 2 is saved

    torch.manual_seed(0)
    resumed = MLPVAE(latent_size=4, hidden=50)
    path = tmp_path / "vae.pt"
    with pytest.raises(KeyboardInterrupt):
        train_vae(resumed, train[:200], **options, checkpoint=path, on_epoch_end=interrupt)
    torch.manual_seed(123)  # a new process starts from another random state
    history = train_vae(resumed, train[:200], **options, checkpoint=path, resume=True)
    assert [r["epoch"] for r in history.records] == [1, 2, 3, 4]
    assert history["lr"] == pytest.approx(expected["lr"], rel=1e-12)
    for a, b in zip(whole.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_the_readable_vae_step_and_train_vae_train_the_same_weights(digits):
    """vae_step run plainly over seeded batches, and train_vae (fused Adam, autocast, the distributed wrapper,
    shifted images): the same seeds give the same weights."""
    train, _ = digits
    torch.manual_seed(0)
    readable, fast = MLPVAE(latent_size=4, hidden=50), MLPVAE(latent_size=4, hidden=50)
    fast.load_state_dict(readable.state_dict())
    step = vae_step(readable, adam(readable.parameters(), 2e-3), shift_pixels=1,
                    generator=torch.Generator().manual_seed(1))
    batches = BatchIterator(train[:300], batch_size=100, seed=0)
    torch.manual_seed(5)
    for epoch in range(2):
        for batch in batches:
            step(batch)
    torch.manual_seed(5)
    train_vae(fast, train[:300], epochs=2, batch_size=100, lr=2e-3, shift_pixels=1)
    for a, b in zip(readable.parameters(), fast.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    untrained = MLPVAE(4, hidden=50)
    assert max(float((a - b).detach().abs().max()) for a, b in zip(readable.parameters(), untrained.parameters())) > 1e-3


def test_vae_step_and_train_vae_check_their_input():
    model = MLPVAE(4)
    optimizer = torch.optim.Adam(model.parameters())
    with pytest.raises(ValueError, match="beta must be a non-negative number"):
        vae_step(model, optimizer, beta=-1)
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        train_vae(model, 2 * torch.ones(10, 1, 28, 28), epochs=1, batch_size=5)


def test_random_shift_moves_each_image_by_its_own_offset():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(64, 2, 7, 9, generator=g) + 0.1  # no zeros, so the fill shows
    shifted = random_shift(images, 2, generator=torch.Generator().manual_seed(1))
    seen = set()
    for x, y in zip(images, shifted):
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                # reference: zero-padded translation by (dy, dx), written independently with slicing
                ref = torch.zeros_like(x)
                ref[:, max(0, -dy):7 - max(0, dy), max(0, -dx):9 - max(0, dx)] = \
                    x[:, max(0, dy):7 - max(0, -dy), max(0, dx):9 - max(0, -dx)]
                if torch.equal(ref, y):
                    matches.append((dy, dx))
        assert len(matches) == 1, matches
        seen.add(matches[0])
    assert len(seen) > 10, "offsets must differ between images"
    assert random_shift(images, 0) is images
    with pytest.raises(ValueError, match="max_shift must be a non-negative int"):
        random_shift(images, -1)

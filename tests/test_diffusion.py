"""Diffusion (notebook 10): schedules, forward process, posterior, samplers and guidance against closed forms and
independent computations."""
import math

import pytest
import torch
from torch import nn

from lecture_utils import diffusion as D
from lecture_utils.models.diffusion_unet import DiffusionUNet, timestep_embedding


# --------------------------------------------------------------------------- schedules
def test_linear_schedule_products_match_a_python_loop():
    schedule = D.NoiseSchedule.make("linear", T=50)
    product = 1.0
    for t in range(50):
        beta = 1e-4 + (0.02 - 1e-4) * t / 49
        product *= 1 - beta
        assert math.isclose(float(schedule.betas[t]), beta, rel_tol=1e-12)
        assert math.isclose(float(schedule.alpha_bars[t]), product, rel_tol=1e-12)
    assert float(schedule.alpha_bars_prev[0]) == 1.0


def test_cosine_schedule_follows_its_defining_alpha_bar():
    T, s = 1000, 0.008
    schedule = D.NoiseSchedule.make("cosine", T=T)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2   # noqa: E731
    for t in (0, 1, 100, 500, 900):
        assert math.isclose(float(schedule.alpha_bars[t]), f(t + 1) / f(0), rel_tol=1e-9)
    snr = schedule.snr()
    assert bool((snr[1:] < snr[:-1]).all())              # the signal drowns monotonically
    assert float(schedule.alpha_bars[-1]) < 1e-4         # x_T is (almost) pure noise


def test_schedule_input_validation():
    with pytest.raises(ValueError, match="schedule kind"):
        D.NoiseSchedule.make("quadratic")
    with pytest.raises(ValueError, match="T"):
        D.linear_betas(0)
    with pytest.raises(ValueError, match="betas"):
        D.NoiseSchedule(torch.tensor([0.1, 1.5]))


# --------------------------------------------------------------------------- forward process
def test_closed_form_forward_process_matches_the_markov_chain_step_by_step():
    schedule = D.NoiseSchedule.make("linear", T=200)
    x0 = torch.tensor([[0.8, -0.5, 0.1]], dtype=torch.float64).expand(200_000, 3)
    generator = torch.Generator().manual_seed(0)
    x = x0.clone()
    t_check = 120
    for t in range(t_check + 1):                   # x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z
        beta = float(schedule.betas[t])
        x = math.sqrt(1 - beta) * x + math.sqrt(beta) * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    closed = D.q_sample(schedule, x0, torch.tensor(t_check), torch.randn(x0.shape, generator=generator,
                                                                        dtype=x0.dtype))
    ab = float(schedule.alpha_bars[t_check])
    for samples in (x, closed):
        assert torch.allclose(samples.mean(0), math.sqrt(ab) * x0[0], atol=0.01)
        assert torch.allclose(samples.var(0), torch.full((3,), 1 - ab, dtype=x.dtype), rtol=0.02)


def test_q_sample_validates_t_and_noise():
    schedule = D.NoiseSchedule.make("cosine", T=10)
    x0 = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"t must lie in \[0, T = 10\)"):
        D.q_sample(schedule, x0, torch.tensor([0, 10]), torch.zeros_like(x0))
    with pytest.raises(ValueError, match="noise must have"):
        D.q_sample(schedule, x0, torch.tensor([0, 1]), torch.zeros(2, 1, 4, 5))
    with pytest.raises(ValueError, match="int tensor"):
        D.q_sample(schedule, x0, torch.tensor([0.5, 1.0]), torch.zeros_like(x0))


def test_posterior_matches_bayes_rule_for_1d_gaussians():
    """q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x_0): the product of two Gaussians in x_{t-1},
    multiplied out by precisions, and checked again by numerical integration on a grid."""
    schedule = D.NoiseSchedule.make("cosine", T=100)
    x0, xt = torch.tensor([0.7], dtype=torch.float64), torch.tensor([-0.3], dtype=torch.float64)
    for t in (1, 10, 60, 99):
        a, ab_prev, beta = float(schedule.alphas[t]), float(schedule.alpha_bars[t - 1]), float(schedule.betas[t])
        # likelihood in x_{t-1}: N(x_t; sqrt(a) x_{t-1}, beta) -> precision a / beta, mean x_t / sqrt(a)
        # prior: N(sqrt(ab_prev) x0, 1 - ab_prev)
        precision = a / beta + 1 / (1 - ab_prev)
        mean = (a / beta * float(xt) / math.sqrt(a) + math.sqrt(ab_prev) * float(x0) / (1 - ab_prev)) / precision
        got_mean, got_var = D.posterior_mean_variance(schedule, x0.view(1, 1), xt.view(1, 1), torch.tensor([t]))
        assert math.isclose(float(got_mean), mean, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(float(got_var), 1 / precision, rel_tol=1e-9)
        grid = torch.linspace(mean - 12 / math.sqrt(precision), mean + 12 / math.sqrt(precision), 200_001,
                              dtype=torch.float64)
        log_density = (torch.distributions.Normal(math.sqrt(a) * grid, math.sqrt(beta)).log_prob(xt)
                       + torch.distributions.Normal(math.sqrt(ab_prev) * x0, math.sqrt(1 - ab_prev)).log_prob(grid))
        weights = torch.softmax(log_density, 0)
        grid_mean = float((weights * grid).sum())
        assert math.isclose(grid_mean, mean, rel_tol=1e-6, abs_tol=1e-9)
        assert math.isclose(float((weights * (grid - grid_mean) ** 2).sum()), 1 / precision, rel_tol=1e-4)


def test_predict_x0_inverts_q_sample():
    schedule = D.NoiseSchedule.make("linear", T=100)
    x0, noise = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    t = torch.tensor([0, 5, 50, 99])
    assert torch.allclose(D.predict_x0(schedule, D.q_sample(schedule, x0, t, noise), t, noise), x0, atol=1e-4)


# --------------------------------------------------------------------------- toy models with a known answer
class GaussianDenoiser(nn.Module):
    """The exact noise predictor for data x_0 ~ N(mu_y, s^2 I): E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu_y) /
    (ab s^2 + 1 - ab).  Class k has mean mu_k = k / 10 - 0.5, "no class" mean 0."""

    no_class = 10

    def __init__(self, schedule, s=0.3):
        super().__init__()
        self.schedule, self.s = schedule, s
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, t, y=None):
        ab = self.schedule.at(self.schedule.alpha_bars, t, x)
        mu = torch.zeros(x.shape[0]) if y is None else torch.where(y == self.no_class, 0.0, y / 10 - 0.5)
        mu = mu.to(x).view(-1, 1, 1, 1)
        return (1 - ab).sqrt() * (x - ab.sqrt() * mu) / (ab * self.s ** 2 + 1 - ab)


def test_ddim_eta0_is_deterministic_and_invertible():
    schedule = D.NoiseSchedule.make("cosine", T=1000)
    model = GaussianDenoiser(schedule).double()
    labels = torch.tensor([2, 7, 10])
    x0 = torch.randn(3, 1, 4, 4, dtype=torch.float64) * 0.3 + (torch.tensor([2, 7, 10]) / 10 - 0.5).where(
        torch.tensor([2, 7, 10]) < 10, torch.tensor(0.0)).view(3, 1, 1, 1).double()
    a = D.ddim_sample(model, schedule, x0.shape, steps=20, labels=labels, seed=1, noise=torch.randn_like(x0))
    noise = torch.randn_like(x0)
    first = D.ddim_sample(model, schedule, x0.shape, steps=20, labels=labels, seed=1, noise=noise)
    second = D.ddim_sample(model, schedule, x0.shape, steps=20, labels=labels, seed=99, noise=noise)
    assert torch.equal(first, second)                  # eta = 0: the seed plays no part, only x_T does
    assert not torch.allclose(first, a)
    errors = {}
    for steps in (50, 1000):
        latent = D.ddim_invert(model, schedule, x0, steps=steps, labels=labels)
        back = D.ddim_sample(model, schedule, x0.shape, steps=steps, labels=labels, noise=latent, clip=False)
        errors[steps] = float((back - x0).abs().max())
    # the round trip is exact up to the ODE's discretisation error, first order in the step size
    assert errors[1000] < 0.01 and errors[1000] < errors[50] / 10


def test_ddpm_samples_have_the_data_distributions_moments():
    schedule = D.NoiseSchedule.make("linear", T=200)
    model = GaussianDenoiser(schedule, s=0.3).double()
    labels = torch.full((4000,), 8)
    x = D.ddpm_sample(model, schedule, (4000, 1, 1, 4), labels=labels, seed=0, clip=False,
                      noise=torch.randn(4000, 1, 1, 4, dtype=torch.float64))
    assert abs(float(x.mean()) - 0.3) < 0.01 and abs(float(x.std()) - 0.3) < 0.01


def test_guidance_w1_is_the_conditional_model_and_w0_the_unconditional():
    torch.manual_seed(0)
    model = DiffusionUNet(channels=(8, 8, 8), num_classes=10, emb_dim=16)
    for p in model.parameters():                      # nonzero output layer, so the class matters
        nn.init.normal_(p, std=0.1)
    x, t, y = torch.randn(3, 1, 8, 8), torch.tensor([5, 50, 500]), torch.tensor([1, 4, 9])
    eps_c, eps_u = model(x, t, y), model(x, t, torch.full_like(y, 10))
    assert torch.allclose(D.guided_noise(model, x, t, y, w=1.0), eps_c)
    assert torch.allclose(D.guided_noise(model, x, t, y, w=0.0), eps_u)
    assert torch.allclose(D.guided_noise(model, x, t, y, w=3.0), eps_u + 3 * (eps_c - eps_u), atol=1e-5)
    assert not torch.allclose(eps_c, eps_u)


def test_repaint_keeps_the_known_pixels_exactly_and_varies_the_rest():
    schedule = D.NoiseSchedule.make("cosine", T=100)
    model = GaussianDenoiser(schedule)
    known = torch.rand(2, 1, 6, 6) * 2 - 1
    mask = torch.zeros(2, 1, 6, 6)
    mask[..., 3:] = 1                                     # 1 = missing: the right half; the left half is known
    a = D.inpaint(model, schedule, known, mask, steps=20, seed=0, resample=2)
    b = D.inpaint(model, schedule, known, mask, steps=20, seed=1)
    assert torch.equal(a[..., :3], known[..., :3]) and torch.equal(b[..., :3], known[..., :3])
    assert float((a[..., 3:] - b[..., 3:]).abs().mean()) > 0.05
    with pytest.raises(ValueError, match="mask must be 2 x 1 x 6 x 6"):
        D.inpaint(model, schedule, known, mask[:, :, :3], steps=5)
    with pytest.raises(ValueError, match="only 0"):
        D.inpaint(model, schedule, known, mask * 0.5, steps=5)
    with pytest.raises(ValueError, match=r"known must lie in \[-1, 1\].*to_model_range"):
        D.inpaint(model, schedule, (known + 1) * 127.5, mask, steps=5)       # 0..255 pixels
    with pytest.raises(ValueError, match="known must be finite, got 1 NaN"):
        D.inpaint(model, schedule, known.index_put((torch.tensor([0]),) * 4, torch.tensor(float("nan"))), mask, steps=5)


def test_super_resolve_and_ddim_invert_refuse_bad_images():
    schedule = D.NoiseSchedule.make("cosine", T=100)
    model = GaussianDenoiser(schedule)
    low = torch.rand(2, 1, 3, 3) * 2 - 1
    with pytest.raises(ValueError, match=r"low must be a floating-point tensor, got dtype torch.uint8"):
        D.super_resolve(model, schedule, ((low + 1) * 127.5).to(torch.uint8), factor=4, steps=5)
    with pytest.raises(ValueError, match=r"low must lie in \[-1, 1\]"):
        D.super_resolve(model, schedule, low * 3, factor=4, steps=5)
    with pytest.raises(ValueError, match="x0 must be finite"):
        D.ddim_invert(model, schedule, low.where(low > 0, torch.tensor(float("nan"))), steps=5)
    with pytest.raises(ValueError, match="x0 must hold at least one example"):
        D.ddim_invert(model, schedule, low[:0], steps=5)


def test_super_resolution_is_consistent_with_the_low_resolution_input():
    schedule = D.NoiseSchedule.make("cosine", T=100)
    model = GaussianDenoiser(schedule)
    low = torch.rand(2, 1, 3, 3) * 2 - 1
    high = D.super_resolve(model, schedule, low, factor=4, steps=10)
    assert high.shape == (2, 1, 12, 12)
    assert torch.allclose(D.downsample(high, 4), low, atol=1e-6)
    assert float(high.std(dim=(2, 3)).mean()) > float(D.upsample(low, 4).std(dim=(2, 3)).mean())  # detail added


def test_sampler_input_validation():
    schedule = D.NoiseSchedule.make("cosine", T=100)
    model = GaussianDenoiser(schedule)
    with pytest.raises(ValueError, match="steps must be an int in"):
        D.ddim_sample(model, schedule, (2, 1, 4, 4), steps=0)
    with pytest.raises(ValueError, match="labels must lie in"):
        D.ddim_sample(model, schedule, (2, 1, 4, 4), steps=5, labels=torch.tensor([0, 11]))
    with pytest.raises(ValueError, match="labels must be int64"):
        D.ddim_sample(model, schedule, (2, 1, 4, 4), steps=5, labels=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="guidance scale w"):
        D.ddim_sample(model, schedule, (2, 1, 4, 4), steps=5, labels=torch.tensor([0, 1]), w=-1.0)
    with pytest.raises(ValueError, match="eta must lie"):
        D.ddim_sample(model, schedule, (2, 1, 4, 4), steps=5, eta=2.0)
    with pytest.raises(ValueError, match="noise must have shape"):
        D.ddim_sample(model, schedule, (2, 1, 4, 4), steps=5, noise=torch.zeros(1, 1, 4, 4))
    # trailing spacing: T / steps apart, the last step jumps from T / steps - 1 to x_0; all T steps is DDPM's grid
    assert D.ddim_timesteps(1000, 5) == [999, 799, 599, 399, 199]
    assert D.ddim_timesteps(1000, 1000) == list(range(999, -1, -1))
    times = D.ddim_timesteps(1000, 30)
    gaps = [a - b for a, b in zip(times, times[1:] + [-1])]
    assert len(set(times)) == 30 and times[0] == 999 and set(gaps) == {33, 34}


# --------------------------------------------------------------------------- the denoiser and training
def test_unet_shapes_embedding_and_validation():
    emb = timestep_embedding(torch.tensor([0, 3]), 8)
    freqs = torch.tensor([10000 ** (-k / 4) for k in range(4)])
    assert torch.allclose(emb[1], torch.cat([torch.cos(3 * freqs), torch.sin(3 * freqs)]))
    model = DiffusionUNet(channels=(8, 16, 16), emb_dim=32)
    out = model(torch.randn(2, 1, 28, 28), torch.tensor([0, 999]), torch.tensor([3, 10]))
    assert out.shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="divisible by 4"):
        model(torch.randn(2, 1, 30, 30), torch.tensor([0, 1]), torch.tensor([3, 10]))
    with pytest.raises(ValueError, match="channels must be three"):
        DiffusionUNet(channels=(8, 16))


def test_label_dropout_rate():
    labels = torch.zeros(100_000, dtype=torch.long)
    dropped = D.drop_labels(labels, 10, 0.1, torch.Generator().manual_seed(0))
    assert abs(float((dropped == 10).float().mean()) - 0.1) < 0.005
    with pytest.raises(ValueError, match="p_uncond"):
        D.drop_labels(labels, 10, 1.5)


def test_p2_weights_are_one_over_one_plus_snr_normalised():
    schedule = D.NoiseSchedule.make("linear", T=50)
    alpha_bar = [math.prod(1 - float(b) for b in schedule.betas[: t + 1]) for t in range(50)]
    p2 = [1 / (1 + a / (1 - a)) for a in alpha_bar]            # Choi et al.'s 1 / (k + SNR)^gamma, k = gamma = 1
    expected = torch.tensor([w / (sum(p2) / 50) for w in p2], dtype=torch.float64)
    assert torch.allclose(D.loss_weights(schedule, "p2").double(), expected, rtol=1e-6)
    assert torch.equal(D.loss_weights(schedule, "simple"), torch.ones(50))
    with pytest.raises(ValueError, match=r"weighting must be one of \('simple', 'p2'\), got 'snr'"):
        D.loss_weights(schedule, "snr")


@pytest.mark.parametrize("weighting", ["simple", "p2"])
def test_noise_prediction_loss_against_the_noise_recovered_from_x_t(weighting):
    schedule = D.NoiseSchedule.make("cosine", T=100)
    seen = []

    class Recorder(nn.Module):
        no_class = 10

        def forward(self, xt, t, y):
            seen.append((xt.clone(), t.clone(), y.clone()))
            return 0.5 * xt

    x0 = torch.rand(16, 1, 4, 4, dtype=torch.float64) * 2 - 1
    labels = torch.arange(16) % 10
    loss = D.noise_prediction_loss(Recorder(), schedule, x0, labels, p_uncond=0.5,
                                   generator=torch.Generator().manual_seed(0), weighting=weighting)
    (xt, t, y), = seen
    ab = schedule.alpha_bars[t].view(-1, 1, 1, 1)
    noise = (xt - ab.sqrt() * x0) / (1 - ab).sqrt()            # the forward process solved for the noise
    per_image = ((noise - 0.5 * xt) ** 2).mean(dim=(1, 2, 3))
    weights = 1 - schedule.alpha_bars[t] if weighting == "p2" else torch.ones(16, dtype=torch.float64)
    mean_weight = (1 - schedule.alpha_bars).mean() if weighting == "p2" else 1.0
    reference = float((weights / mean_weight * per_image).mean())
    assert abs(float(loss) - reference) < 1e-6 * reference
    if weighting == "simple":                                 # Ho et al.'s simple loss: the plain mean squared error
        assert abs(float(loss) - float(torch.nn.functional.mse_loss(0.5 * xt, noise))) < 1e-9
    assert bool((y == 10).any()) and bool((y == labels).any()), "some labels dropped, some kept"


def test_training_lowers_the_noise_prediction_loss():
    torch.manual_seed(0)
    images = torch.zeros(64, 1, 8, 8)
    images[:32, :, 2:6, 2:6] = 1.0                       # two classes: a square, an empty image
    labels = torch.cat([torch.zeros(32), torch.ones(32)]).long()
    model = DiffusionUNet(channels=(8, 16, 16), num_classes=2, emb_dim=32)
    run = D.train_diffusion(model, images, labels, epochs=25, schedule=D.NoiseSchedule.make("cosine", T=100),
                            options=D.DiffusionOptions(batch_size=32, lr=3e-3), progress=False)
    losses = run.history["loss"]
    assert losses[-1] < 0.6 * losses[0]
    assert isinstance(run.ema, DiffusionUNet)
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\], got values in \[0, 2\]"):
        D.train_diffusion(model, images * 2, labels, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"images .*NaN"):
        D.train_diffusion(model, images.masked_fill(images > 0.5, float("nan")), labels, epochs=1, progress=False)
    with pytest.raises(ValueError, match="weighting must be one of"):
        D.train_diffusion(model, images, labels, epochs=1, options=D.DiffusionOptions(weighting="snr"), progress=False)


def test_ddpm_is_ddim_with_eta_one_on_every_step():
    schedule = D.NoiseSchedule.make("cosine", T=60)
    model = GaussianDenoiser(schedule).double()
    labels = torch.tensor([1, 5, 10])
    noise = torch.randn(3, 1, 2, 2, dtype=torch.float64)
    ddpm = D.ddpm_sample(model, schedule, noise.shape, labels=labels, seed=3, noise=noise)
    ddim = D.ddim_sample(model, schedule, noise.shape, steps=60, labels=labels, eta=1.0, seed=3, noise=noise)
    assert torch.allclose(ddpm, ddim, atol=1e-9)
    path = D.ddpm_sample(model, schedule, noise.shape, labels=labels, seed=3, noise=noise, keep_every=20)[1]
    assert [t for t, _ in path] == [40, 20, 0]


def test_latent_denoiser_trains_on_vector_codes():
    from lecture_utils.models.diffusion_unet import LatentDenoiser

    torch.manual_seed(0)
    codes = torch.randn(256, 4) * 0.2 + torch.tensor([1.0, -1.0, 0.5, 0.0])
    model = LatentDenoiser(latent_dim=4, hidden=32, depth=2, num_classes=0)
    run = D.train_denoiser(model, codes, None, epochs=30, schedule=D.NoiseSchedule.make("cosine", T=100),
                           options=D.DiffusionOptions(batch_size=64, lr=3e-3), progress=False)
    assert run.history["loss"][-1] < 0.7 * run.history["loss"][0]
    samples = D.ddim_sample(run.ema, run.schedule, (500, 4), steps=20, clip=3.0)
    assert torch.allclose(samples.mean(0), codes.mean(0), atol=0.25)
    with pytest.raises(ValueError, match="z must be N x 4"):
        model(torch.zeros(2, 5), torch.tensor([0, 1]))


def test_generate_evaluates_the_model_in_chunks_without_changing_the_samples():
    from lecture_utils.pretrained import RECIPES
    from lecture_utils.pretrained.diffusion import _InChunks, generate, schedule

    torch.manual_seed(0)
    model = RECIPES["diffusion"].build().eval()
    labels = torch.arange(12) % 10
    calls = []
    model.register_forward_hook(lambda m, inputs, out: calls.append(inputs[0].shape[0]))
    chunked = D.ddim_sample(_InChunks(model, size=5), schedule(), (12, 1, 28, 28), steps=3, labels=labels, w=2.0,
                            eta=1.0, seed=7)
    assert set(calls) == {5, 4}                   # guidance doubles the batch: 24 rows in chunks of 5
    whole = D.ddim_sample(model, schedule(), (12, 1, 28, 28), steps=3, labels=labels, w=2.0, eta=1.0, seed=7)
    assert torch.allclose(chunked, whole, atol=1e-5)
    images = generate(model, labels, w=2.0, steps=3, seed=7)
    assert images.shape == (12, 1, 28, 28) and torch.allclose(images, D.to_image_range(whole), atol=1e-5)

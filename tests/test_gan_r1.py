"""The R1 penalty (Mescheder et al. 2018) and its place in the GAN step, against closed forms."""
import pytest
import torch
from torch import nn

from lecture_utils.gans import LazyR1, gan_step, make_optimizers, r1_penalty
from lecture_utils.models.gan import MLPGenerator


class LinearDiscriminator(nn.Module):
    """D(x) = w . x + b: the R1 penalty is |w|^2 and its gradient with respect to w is 2 w."""

    def __init__(self, n: int = 3):
        super().__init__()
        self.linear = nn.Linear(n, 1)

    def forward(self, x):
        return self.linear(x).squeeze(1)


def test_r1_penalty_matches_closed_forms():
    torch.manual_seed(0)
    d = LinearDiscriminator(3)
    x = torch.randn(5, 3, requires_grad=True)
    penalty = r1_penalty(d(x), x)
    assert float(penalty.detach()) == pytest.approx(float(d.linear.weight.detach().pow(2).sum()), rel=1e-6)
    # a quadratic D(x) = sum x^2 has grad 2x: the penalty is the batch mean of |2x|^2
    x2 = torch.randn(4, 2, 3, 3, requires_grad=True)
    penalty2 = r1_penalty(x2.pow(2).flatten(1).sum(1), x2)
    assert float(penalty2.detach()) == pytest.approx(float((2 * x2.detach()).pow(2).flatten(1).sum(1).mean()), rel=1e-5)
    assert penalty2.requires_grad  # keeps its graph: D's weights get the penalty's gradient


def test_r1_penalty_checks_its_inputs():
    d = LinearDiscriminator(3)
    with pytest.raises(ValueError, match="require grad"):
        r1_penalty(d(torch.randn(2, 3)), torch.randn(2, 3))
    x = torch.randn(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match="real_scores"):
        r1_penalty(d(x)[:1], x)


def _discriminator_gradients(r1_gamma, r1_every, n_steps):
    """D's weight and bias gradients at each of ``n_steps`` GAN steps (D not updated), same seeds."""
    torch.manual_seed(0)
    g, d = MLPGenerator(2, (3,), (8,), output="linear"), LinearDiscriminator(3)
    opt_g, opt_d = make_optimizers(g, d, "sgd", lr_generator=0.01, momentum=0.0)
    seen = []
    step = gan_step(g, d, opt_g, opt_d)
    if r1_gamma > 0:          # its hook runs first, then the one below records the gradient D would step with
        step = LazyR1(d, opt_d, r1_gamma, r1_every).wrap(step)
    opt_d.register_step_pre_hook(lambda *_: seen.append((d.linear.weight.grad.clone(), d.linear.bias.grad.clone())))
    opt_d.param_groups[0]["lr"] = 0.0     # D not updated: every step sees the same D
    data = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    for _ in range(n_steps):
        step(data)
    return seen, d.linear.weight.detach()


def test_gan_step_adds_gamma_times_w_to_the_discriminator_gradient():
    plain, w = _discriminator_gradients(0.0, 1, 2)
    gamma = 0.7
    with_r1, _ = _discriminator_gradients(gamma, 1, 2)
    for (gw0, gb0), (gw1, gb1) in zip(plain, with_r1):
        assert torch.allclose(gw1 - gw0, gamma * w, atol=1e-6)   # d/dw of gamma / 2 |w|^2
        assert torch.allclose(gb1, gb0, atol=1e-7)               # the bias does not change the slope
    # lazy regularisation: only every 2nd D update, scaled by 2
    lazy, _ = _discriminator_gradients(gamma, 2, 2)
    assert torch.allclose(lazy[0][0], plain[0][0], atol=1e-7)
    assert torch.allclose(lazy[1][0] - plain[1][0], 2 * gamma * w, atol=1e-6)


def test_lazy_r1_checks_its_arguments():
    g, d = MLPGenerator(2, (3,), (8,), output="linear"), LinearDiscriminator(3)
    opt_g, opt_d = make_optimizers(g, d)
    with pytest.raises(ValueError, match="r1_gamma"):
        LazyR1(d, opt_d, gamma=-1.0)
    with pytest.raises(ValueError, match="r1_every"):
        LazyR1(d, opt_d, gamma=1.0, every=0)

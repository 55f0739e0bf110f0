"""Recipe of notebook 10: the class-conditional pixel diffusion model (a DDPM denoiser with a "no class" token
for classifier-free guidance) on 28 x 28 digits.

Maintainer notes (how it was sized) are in ``docs/recipes.md``, section "Diffusion".
"""
import copy

import torch

from ..data import load_mnist
from ..diffusion import DiffusionOptions, NoiseSchedule, ddim_sample, to_image_range, train_diffusion
from ..metrics import conditional_accuracy, sample_quality
from ..models.diffusion_unet import DiffusionUNet
from . import Recipe, register

DIFFUSION_CHANNELS = (16, 32, 64)       # the U-Net's widths at 28, 14 and 7 pixels, the same in every budget
DIFFUSION_EMB_DIM = 128
DIFFUSION_SCHEDULE = "cosine"
DIFFUSION_T = 1000
DIFFUSION_GUIDANCE = 3.0                # the guidance scale of the shipped metrics (eps_u + w (eps_c - eps_u))
DIFFUSION_ETA = 1.0                     # DDIM's eta for every measured sample: 50 stochastic steps match DDPM's 1,000
                                        # on this model, the deterministic eta = 0 does not (docs/recipes.md)
DIFFUSION_EVAL_SEED = 10
DIFFUSION_EVAL_STEPS = 50


def schedule():
    """The noise schedule the model was trained with (cosine, T = 1000)."""
    return NoiseSchedule.make(DIFFUSION_SCHEDULE, T=DIFFUSION_T)


def _build():
    return DiffusionUNet(image_channels=1, channels=DIFFUSION_CHANNELS, num_classes=10, emb_dim=DIFFUSION_EMB_DIM)


def _train(model, sizes, device, on_epoch_end=None, ema=None):
    """Notebook 10's training: the noise-prediction loss with 20 % of the labels dropped, Adam, an EMA of the
    weights; leaves the EMA (the weights every sample comes from) in ``model`` and returns the
    :class:`~lecture_utils.diffusion.DiffusionRun`."""
    train = load_mnist("train").subset(sizes.n_train)
    denoiser = copy.deepcopy(model)                         # trained; ``model`` receives its average at the end
    recipe = DiffusionOptions(batch_size=sizes.batch_size, lr=sizes.lr, lr_final=sizes.lr_final,
                              ema_decay=sizes.ema_decay, p_uncond=sizes.p_uncond)
    run = train_diffusion(denoiser, train.images, train.labels, sizes.epochs, schedule(), recipe, device=device,
                          on_epoch_end=on_epoch_end, ema=ema)
    model.to(device).load_state_dict(run.ema.state_dict())
    return run


def eval_labels(n: int = 1000):
    """The requested labels of the evaluation samples: 0, 1, ..., 9, 0, 1, ... (n of them)."""
    return torch.arange(n) % 10


def generate(model, labels, w: float, steps: int = DIFFUSION_EVAL_STEPS, seed: int = DIFFUSION_EVAL_SEED,
             batch_size: int = 500, eta: float = DIFFUSION_ETA):
    """DDIM samples in [0, 1], N x 1 x 28 x 28, for ``labels`` (int64 N) at guidance scale ``w`` (w = 0: the
    unconditional model, w = 1: the conditional one), ``steps`` steps with noise ``eta`` (1: each step draws from
    the posterior, as DDPM does; 0: deterministic), in batches; seeded (batch k uses seed + k)."""
    out = []
    for k, start in enumerate(range(0, len(labels), batch_size)):
        chunk = labels[start:start + batch_size]
        out.append(to_image_range(ddim_sample(model, schedule(), (len(chunk), 1, 28, 28), steps=steps,
                                              labels=chunk, w=w, eta=eta, seed=seed + k)).cpu())
    return torch.cat(out)


def _evaluate(model):
    """DDIM-50 (eta = DIFFUSION_ETA): conditional accuracy of 200 guided samples (w = DIFFUSION_GUIDANCE); the sample quality of 500
    unconditional ones (w = 0) and of 300 from the plain conditional model (w = 1, no guidance, labels 0-9 in
    turn): 75,000 denoiser calls, so that tests/test_pretrained.py stays within its time limit (notebook 10
    measures 1,000 of each)."""
    model = model.cpu()
    requested = eval_labels(200)
    guided = generate(model, requested, DIFFUSION_GUIDANCE)
    unguided = generate(model, eval_labels(500), 0.0, seed=DIFFUSION_EVAL_SEED + 100)
    plain_labels = eval_labels(300)
    plain = generate(model, plain_labels, 1.0, seed=DIFFUSION_EVAL_SEED + 200)
    q, p = sample_quality(unguided), sample_quality(plain)
    return {"conditional_accuracy": round(conditional_accuracy(guided, requested), 4),
            "guidance_scale": DIFFUSION_GUIDANCE,
            "mean_confidence": round(q["mean_confidence"], 4), "min_class_share": round(min(q["class_shares"]), 4),
            "frechet_distance": round(q["frechet_distance"], 2),
            "plain_accuracy": round(conditional_accuracy(plain, plain_labels), 4),
            "plain_mean_confidence": round(p["mean_confidence"], 4),
            "plain_min_class_share": round(min(p["class_shares"]), 4),
            "plain_frechet_distance": round(p["frechet_distance"], 2)}


register(Recipe("diffusion", "10_diffusion", _build, _train, _evaluate,
                tolerance={"conditional_accuracy": 0.005, "guidance_scale": 0.0, "mean_confidence": 0.005,
                           "min_class_share": 0.003, "frechet_distance": 1.0, "plain_accuracy": 0.005,
                           "plain_mean_confidence": 0.005, "plain_min_class_share": 0.004,
                           "plain_frechet_distance": 1.0}))

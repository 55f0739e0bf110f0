"""Text-to-image with the small conditional VAE of notebook 09: training, generation, and how it is judged.

* :func:`train_text_to_image` -- the text encoder and the conditional VAE trained together on the
  negative ELBO (:func:`negative_elbo_terms`); :func:`generate` draws images for captions.
* :func:`attribute_accuracy` and :func:`object_accuracy` -- how often the generated scenes show the
  colours, shapes and positions the captions asked for, read by the shipped
  :class:`~lecture_utils.models.text_to_image.SceneAttributeClassifier` (:func:`load_scene_classifier`).
* :data:`TEXT_TO_IMAGE_TIMELINE` and :func:`timeline_figure` -- where the field went (GANs,
  autoregressive transformers, diffusion), after Bie et al. 2023 (arXiv 2309.00810), Fig. 5.

The modules (tokenizer, text encoder, conditional VAE, scene classifier) are in
:mod:`lecture_utils.models.text_to_image`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from .checkpoints import load_shipped
from .data import SCENE_ATTRIBUTES, SCENE_COLOURS, SCENE_SHAPES, BatchIterator, SceneData
from .models.text_to_image import HEADS, SceneAttributeClassifier, TextToImageVAE, Tokenizer
from .train import History, adam, autocast, batched_inference, fit


# --------------------------------------------------------------------------- training and generation
def negative_elbo_terms(model: TextToImageVAE, images: torch.Tensor, ids: torch.Tensor,
                        beta: float = 1.0) -> dict[str, torch.Tensor]:
    """Per-image reconstruction (Bernoulli NLL, nats) and KL(q(z|x,c) || N(0, I)); loss = rec + beta KL."""
    logits, mu, logvar = model(images, ids)
    reconstruction = F.binary_cross_entropy_with_logits(logits.float(), images, reduction="sum") / images.shape[0]
    kl = 0.5 * (mu.float().pow(2) + logvar.float().exp() - 1 - logvar.float()).sum(1).mean()
    return {"loss": reconstruction + beta * kl, "reconstruction": reconstruction, "kl": kl}


def text_to_image_step(model: TextToImageVAE, optimizer: torch.optim.Optimizer,
                       device: torch.device | str = "cpu", beta: float = 1.0):
    """One update of the conditional VAE on a batch ``(images, ids)``: minimise rec + beta KL."""

    def step(batch):
        images, ids = batch
        model.train()
        with autocast(device):
            terms = negative_elbo_terms(model, images, ids, beta)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        return {name: value.detach() for name, value in terms.items()}

    return step


def train_text_to_image(model: TextToImageVAE, scenes: SceneData, tokenizer: Tokenizer, epochs: int,
                        batch_size: int = 64, lr: float = 2e-3, device: torch.device | str = "cpu",
                        seed: int = 0, checkpoint: str | Path | None = None,
                        progress: bool | None = None) -> History:
    """Train the text encoder and the conditional VAE together with Adam (lr halved for the last third).

    The images and the caption ids live on ``device`` as two tensors (a :class:`BatchIterator`).
    """
    model.to(device)
    optimizer = adam(model.parameters(), lr=lr, reference_on_cpu=True)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[max(1, (2 * epochs) // 3)], gamma=0.5)
    batches = BatchIterator(scenes.images, tokenizer.encode(scenes.captions), batch_size=batch_size,
                            seed=seed, device=device)
    return fit(text_to_image_step(model, optimizer, device), batches, epochs,
               state={"model": model, "optimizer": optimizer, "schedule": schedule}, checkpoint=checkpoint,
               progress=progress, on_epoch_end=lambda epoch, record: schedule.step(), desc="text-to-image cVAE")


@torch.no_grad()
def generate(model: TextToImageVAE, tokenizer: Tokenizer, captions: str | Sequence[str],
             samples_per_caption: int = 1, seed: int = 0) -> torch.Tensor:
    """Images for captions: N*samples x 3 x 32 x 32 in [0, 1], each caption's samples together.

    Unknown words raise :class:`UnknownWordsError` (a ValueError naming them and the vocabulary).
    """
    if not isinstance(samples_per_caption, int) or isinstance(samples_per_caption, bool) or samples_per_caption < 1:
        raise ValueError(f"samples_per_caption must be a positive int, got {samples_per_caption!r}")
    captions = [captions] if isinstance(captions, str) else list(captions)
    if not captions:
        raise ValueError("captions must be a caption or a non-empty list of captions, got an empty list")
    ids = tokenizer.encode(captions).repeat_interleave(samples_per_caption, dim=0)
    generator = torch.Generator().manual_seed(seed)
    # one batch, so that the samples do not depend on a batch size
    return batched_inference(model, ids, batch_size=ids.shape[0], call=lambda x: model.sample(x, generator=generator))


# --------------------------------------------------------------------------- judging generated scenes
def _check_judged(predicted: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> int:
    """``predicted`` (the classifier's heads) and ``target`` (a SceneData's attributes): 1-D integer tensors
    of one common length N >= 1 under the expected keys.  Metadata only; returns N."""
    lengths = set()
    for name, table, keys in (("predicted", predicted, HEADS), ("target", target, SCENE_ATTRIBUTES)):
        if not isinstance(table, dict):
            raise ValueError(f"{name} must be a dict of tensors with keys {list(keys)}, got {type(table).__name__}")
        missing = [k for k in keys if k not in table]
        if missing:
            raise ValueError(f"{name} lacks the keys {missing} (expected {list(keys)})")
        for k in keys:
            value = table[k]
            if not torch.is_tensor(value) or value.ndim != 1 or value.is_floating_point() or value.dtype == torch.bool:
                given = f"{value.dtype} {tuple(value.shape)}" if torch.is_tensor(value) else type(value).__name__
                raise ValueError(f"{name}[{k!r}] must be a 1-D integer tensor (one class per scene), got {given}")
            lengths.add(value.shape[0])
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"predicted and target must hold the same number N >= 1 of scenes in every entry, "
                         f"got lengths {sorted(lengths)}")
    return lengths.pop()


def classifier_loss(logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over heads of the cross-entropy; object-2 heads skip scenes with one object (target -1)."""
    return sum(F.cross_entropy(logits[k].float(), targets[k], ignore_index=-1) for k in HEADS)


def attribute_accuracy(predicted: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, float]:
    """How often colour, shape and position come out right.

    ``target`` is a :class:`SceneData`'s attributes.  Checks: ``position`` (the layout: where a single
    shape sits, or whether a pair is one above the other or side by side, with the right object
    first), ``colour`` and ``shape`` of every object, and ``size`` where the caption named it.
    Returns each check's accuracy, ``attribute`` (colour, shape and position checks pooled: the
    headline number) and ``all_correct`` (scenes whose every colour, shape and position check passed).
    """
    _check_judged(predicted, target)
    position = predicted["layout"] == target["layout"]
    colour, shape, size = [], [], []
    scene_ok = position.clone()
    for k in (1, 2):
        present = target[f"colour_{k}"] >= 0
        c = predicted[f"colour_{k}"] == target[f"colour_{k}"]
        s = predicted[f"shape_{k}"] == target[f"shape_{k}"]
        colour.append(c[present])
        shape.append(s[present])
        scene_ok &= (c & s) | ~present
        said = present & (target[f"size_{k}_said"] == 1)
        size.append((predicted[f"size_{k}"] == target[f"size_{k}"])[said])
    colour, shape, size = torch.cat(colour), torch.cat(shape), torch.cat(size)
    pooled = torch.cat([position, colour, shape]).float()
    return {"position": float(position.float().mean()), "colour": float(colour.float().mean()),
            "shape": float(shape.float().mean()),
            "size": float(size.float().mean()) if size.numel() else float("nan"),
            "attribute": float(pooled.mean()), "all_correct": float(scene_ok.float().mean())}


def object_accuracy(predicted: dict[str, torch.Tensor], target: dict[str, torch.Tensor], pairs=None) -> float:
    """Share of the objects drawn with colour *and* shape right together.

    Counts the objects of ``target`` (a :class:`SceneData`'s attributes) whose (colour, shape) is one of
    ``pairs`` (names, e.g. ``SCENE_HELDOUT``; None: every object).  Chance, for a guess uniform over
    colours and shapes: ``1 / (len(SCENE_COLOURS) * len(SCENE_SHAPES))``.
    """
    _check_judged(predicted, target)
    colours, shapes = list(SCENE_COLOURS), list(SCENE_SHAPES)
    wanted = None
    if pairs is not None:
        unknown = [p for p in pairs if p[0] not in colours or p[1] not in shapes]
        if unknown:
            raise ValueError(f"pairs must be (colour, shape) names from {colours} x {shapes}, got {unknown}")
        wanted = {(colours.index(c), shapes.index(s)) for c, s in pairs}
    right = []
    for k in (1, 2):
        c_true, s_true = target[f"colour_{k}"], target[f"shape_{k}"]
        counted = c_true >= 0
        if wanted is not None:
            counted &= torch.tensor([(int(c), int(s)) in wanted for c, s in zip(c_true, s_true)], dtype=torch.bool)
        both = (predicted[f"colour_{k}"] == c_true) & (predicted[f"shape_{k}"] == s_true)
        right.append(both[counted])
    right = torch.cat(right)
    if right.numel() == 0:
        raise ValueError(f"no object of the target has one of the pairs {pairs}")
    return float(right.float().mean())


# --------------------------------------------------------------------------- where the field went
# Text-to-image models on the axes of Bie et al. 2023 (arXiv 2309.00810, Fig. 5): date of the paper
# and parameter count, coloured by family.  Parameter counts as reported by each model's own paper;
# "text encoder excluded" marks counts without the (often frozen) text encoder, as the survey's
# asterisks do.  Dates are the first arXiv version (year + month / 12).
TEXT_TO_IMAGE_TIMELINE = (
    # name, date, parameters, family, note
    ("AttnGAN", 2017 + 10 / 12, 230e6, "GAN", "count from DF-GAN's comparison table (Tao et al. 2022)"),
    ("DM-GAN", 2019 + 3 / 12, 46e6, "GAN", "count from DF-GAN's comparison table (Tao et al. 2022)"),
    ("DF-GAN", 2020 + 7 / 12, 19e6, "GAN", "count from DF-GAN's comparison table (Tao et al. 2022)"),
    ("XMC-GAN", 2021 + 0 / 12, 166e6, "GAN", "count from DF-GAN's comparison table (Tao et al. 2022)"),
    ("LAFITE", 2021 + 10 / 12, 75e6, "GAN", "trainable parameters; frozen CLIP excluded"),
    ("GigaGAN", 2023 + 2 / 12, 1.0e9, "GAN", "generator; text encoder excluded"),
    ("DALL-E", 2021 + 1 / 12, 12e9, "autoregressive", "transformer"),
    ("CogView", 2021 + 4 / 12, 4e9, "autoregressive", "transformer"),
    ("Make-A-Scene", 2022 + 2 / 12, 4e9, "autoregressive", "transformer"),
    ("CogView2", 2022 + 3 / 12, 6e9, "autoregressive", "transformer"),
    ("Parti", 2022 + 5 / 12, 20e9, "autoregressive", "largest of 350M / 750M / 3B / 20B"),
    ("GLIDE", 2021 + 11 / 12, 5e9, "diffusion", "3.5B text-conditional model + 1.5B upsampler"),
    ("LDM (KL-8-G)", 2021 + 11 / 12, 1.45e9, "diffusion", "text-to-image latent diffusion model"),
    ("DALL-E 2", 2022 + 3 / 12, 5.5e9, "diffusion", "3.5B decoder + 1B prior + upsamplers; CLIP excluded"),
    ("Imagen", 2022 + 4 / 12, 7.6e9, "diffusion", "2B base + 1B super-resolution + 4.6B T5-XXL"),
    ("Stable Diffusion", 2022 + 7 / 12, 1.07e9, "diffusion", "860M U-Net + 123M CLIP text encoder + 84M autoencoder"),
    ("eDiff-I", 2022 + 10 / 12, 9.1e9, "diffusion", "ensemble of expert denoisers, all components"),
    ("SDXL", 2023 + 6 / 12, 2.6e9, "diffusion", "U-Net; text encoders excluded"),
)
TIMELINE_COLOURS = {"GAN": "tab:green", "autoregressive": "tab:blue", "diffusion": "tab:orange"}
TIMELINE_SOURCE = ("after Bie et al. 2023, 'RenAIssance: A Survey into AI Text-to-Image Generation in the Era "
                   "of Large Model', arXiv 2309.00810, Fig. 5; parameter counts as reported by each paper")


_LABEL_OFFSETS = {  # points; the spring of 2022 is crowded
    "Imagen": (7, 2), "CogView2": (-34, 9), "DALL-E 2": (6, -4), "Make-A-Scene": (-30, -13),
    "GLIDE": (-36, -12), "Stable Diffusion": (-50, -13), "GigaGAN": (6, -11), "LDM (KL-8-G)": (-30, -13),
}


def timeline_figure(ours: tuple[str, int] | None = None):
    """Parameter count (log scale) against date for :data:`TEXT_TO_IMAGE_TIMELINE`, coloured by family.

    ``ours``: ``(label, parameter count)`` of the notebook's model, drawn as a horizontal line.
    """
    fig, ax = plt.subplots(figsize=(10, 5))
    for family, colour in TIMELINE_COLOURS.items():
        rows = [r for r in TEXT_TO_IMAGE_TIMELINE if r[3] == family]
        ax.scatter([r[1] for r in rows], [r[2] for r in rows], s=60, color=colour, label=family, zorder=3)
        for name, date, params, _, note in rows:
            mark = "*" if "excluded" in note else ""
            ax.annotate(f"{name}{mark}", (date, params), textcoords="offset points",
                        xytext=_LABEL_OFFSETS.get(name, (5, 4)), fontsize=8)
    if ours is not None:
        ax.axhline(ours[1], color="k", ls="--", lw=1)
        ax.text(2017.6, ours[1] * 1.4, f"{ours[0]}: {ours[1] / 1e6:.1f}M parameters", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlim(2017.5, 2024)
    ax.set_xlabel("first arXiv version")
    ax.set_ylabel("parameters")
    ax.set_title("Text-to-image models: GANs, then autoregressive transformers, then diffusion")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3, which="both")
    ax.text(0.0, -0.16, "* text encoder excluded.  " + TIMELINE_SOURCE, transform=ax.transAxes, fontsize=6.5,
            va="top", wrap=True)
    fig.tight_layout()
    return fig


def blur_and_noise(images: torch.Tensor, generator: torch.Generator, max_sigma: float = 1.0,
                   max_noise: float = 0.05) -> torch.Tensor:
    """Each image blurred by a Gaussian of random width (sigma in [0, max_sigma] pixels) plus random
    Gaussian noise (std in [0, max_noise]), clipped to [0, 1].  Training the judge on these makes it
    read slightly blurry generated scenes as well as crisp ones."""
    n = images.shape[0]
    sigma = torch.rand(n, generator=generator) * max_sigma
    taps = torch.arange(-2, 3, dtype=images.dtype)
    kernels = torch.exp(-taps[None] ** 2 / (2 * sigma[:, None].clamp_min(1e-3) ** 2))
    kernels = kernels / kernels.sum(1, keepdim=True)                                # n x 5
    x = F.pad(images, (2, 2, 2, 2), mode="replicate").reshape(1, n * 3, images.shape[2] + 4, -1)
    weight = kernels.repeat_interleave(3, 0)
    x = F.conv2d(x, weight.view(-1, 1, 1, 5), groups=n * 3)                         # along W
    x = F.conv2d(x, weight.view(-1, 1, 5, 1), groups=n * 3)                         # along H
    x = x.reshape(images.shape)
    noise = torch.randn(images.shape, generator=generator) * (torch.rand(n, generator=generator) * max_noise)[:, None, None, None]
    return (x + noise).clamp(0, 1)


SCENE_CLASSIFIER_NAME = "scene_classifier"
_scene_classifier: SceneAttributeClassifier | None = None


def load_scene_classifier() -> SceneAttributeClassifier:
    """The shipped scene-attribute classifier (eval mode, CPU), verified against its sha256; cached.

    Trained by ``scripts/train_scene_classifier.py`` on generated scenes with every colour-shape
    pair (the manifest ``data/checkpoints/manifest.json`` records its accuracy).
    """
    global _scene_classifier
    if _scene_classifier is None:
        model = SceneAttributeClassifier()
        model.load_state_dict(load_shipped(SCENE_CLASSIFIER_NAME)["model"])
        _scene_classifier = model.eval()
    return _scene_classifier

"""A small text-to-image model for the captioned scenes of notebook 09, and how it is judged.

* :class:`Tokenizer` -- words to integer ids over a fixed vocabulary; unknown words are an error
  that names them and lists the vocabulary.
* :class:`TextEncoder` -- word embeddings read by a bidirectional GRU into one caption vector.
* :class:`TextToImageVAE` -- a conditional VAE (Sohn et al. 2015): the caption vector conditions
  both the encoder q(z | x, caption) and the decoder p(x | z, caption), through FiLM layers
  (Perez et al. 2018) at every resolution of the decoder.  Text encoder and VAE train together on
  the negative ELBO.  ``sample`` draws z ~ N(0, I) and decodes it with a caption.
* :class:`SceneAttributeClassifier` -- a CNN that reads a scene's layout and each object's colour,
  shape and size (in picture order), trained on generated scenes; it judges generated images.
* :data:`TEXT_TO_IMAGE_TIMELINE` and :func:`timeline_figure` -- where the field went (GANs,
  autoregressive transformers, diffusion), after Bie et al. 2023 (arXiv 2309.00810), Fig. 5.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data import (SCENE_ATTRIBUTES, SCENE_COLOURS, SCENE_LAYOUTS, SCENE_SHAPES, SCENE_SIZES,
                    BatchIterator, SceneData, scene_vocabulary)
from ..train import History, autocast, fit


# --------------------------------------------------------------------------- tokenizer
class UnknownWordsError(ValueError):
    """A caption used words outside the vocabulary; ``words`` lists them."""

    def __init__(self, words: list[str], vocabulary: Sequence[str]):
        self.words = words
        quoted = ", ".join(repr(w) for w in words)
        super().__init__(f"unknown word{'s' if len(words) > 1 else ''} {quoted}: the model only knows "
                         f"these {len(vocabulary)} words: {' '.join(vocabulary)}")


class Tokenizer:
    """Lower-cases a caption, drops punctuation, splits it into words and maps each to an id.

    Id 0 is padding; words get ids 1 .. V in vocabulary order.  ``encode`` returns a LongTensor
    N x L (right-padded with 0, L = the longest caption unless ``length`` is given).
    """

    PAD = "<pad>"

    def __init__(self, vocabulary: Sequence[str] | None = None):
        vocabulary = tuple(vocabulary if vocabulary is not None else scene_vocabulary())
        if len(set(vocabulary)) != len(vocabulary) or not vocabulary:
            raise ValueError(f"vocabulary must be a non-empty sequence of distinct words, got {vocabulary!r}")
        self.vocabulary = vocabulary
        self.index = {word: i + 1 for i, word in enumerate(vocabulary)}

    def __len__(self) -> int:
        """Number of ids, padding included."""
        return len(self.vocabulary) + 1

    @staticmethod
    def split(caption: str) -> list[str]:
        if not isinstance(caption, str):
            raise ValueError(f"a caption must be a string, got {type(caption).__name__}")
        return re.sub(r"[^\w\s]", " ", caption.lower()).split()

    def unknown_words(self, caption: str) -> list[str]:
        return list(dict.fromkeys(w for w in self.split(caption) if w not in self.index))

    def encode(self, captions: str | Sequence[str], length: int | None = None) -> torch.Tensor:
        """Ids N x L (int64, 0 = padding) of one caption or a list of them."""
        captions = [captions] if isinstance(captions, str) else list(captions)
        if not captions:
            raise ValueError("captions is empty")
        words = [self.split(c) for c in captions]
        unknown = list(dict.fromkeys(w for ws in words for w in ws if w not in self.index))
        if unknown:
            raise UnknownWordsError(unknown, self.vocabulary)
        empty = [c for c, ws in zip(captions, words) if not ws]
        if empty:
            raise ValueError(f"caption {empty[0]!r} has no words")
        length = length or max(len(ws) for ws in words)
        if max(len(ws) for ws in words) > length:
            raise ValueError(f"a caption has {max(len(ws) for ws in words)} words, more than length={length}")
        ids = torch.zeros(len(captions), length, dtype=torch.int64)
        for row, ws in enumerate(words):
            ids[row, :len(ws)] = torch.tensor([self.index[w] for w in ws])
        return ids

    def decode(self, ids: torch.Tensor) -> str:
        """The words of one row of ids (padding dropped)."""
        return " ".join(self.vocabulary[i - 1] for i in ids.tolist() if i > 0)


# --------------------------------------------------------------------------- text encoder and cVAE
class TextEncoder(nn.Module):
    """Word embeddings and a bidirectional GRU: ids N x L (0 = padding) -> caption vectors N x ``text_dim``.

    The last hidden states of the forward and the backward GRU (the backward one has read the
    caption from its end) are concatenated and projected.  Padding is skipped (packed sequences).
    :meth:`read` also returns the GRU's output at every word (N x L x 2 ``hidden``): each word's
    features in the context of the whole caption, for cross-attention.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden: int = 64, text_dim: int = 128):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)            # N x L x embed_dim
        self.gru = nn.GRU(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.project = nn.Linear(2 * hidden, text_dim)                              # N x text_dim
        self.text_dim = text_dim
        self.word_dim = 2 * hidden

    def read(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(caption vectors N x text_dim, word features N x L x word_dim, mask N x L: True = a word)``."""
        if ids.ndim != 2 or ids.dtype != torch.int64:
            raise ValueError(f"ids must be an int64 tensor N x L, got {ids.dtype} {tuple(ids.shape)}")
        mask = ids > 0
        lengths = mask.sum(1).clamp_min(1)
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        outputs, last = self.gru(packed)                                            # last: 2 x N x hidden
        words, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=ids.shape[1])
        return self.project(torch.cat([last[0], last[1]], dim=1)), words, mask     # N x text_dim, N x L x 2h

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.read(ids)[0]


class FiLM(nn.Module):
    """Feature-wise linear modulation: x * (1 + gamma(t)) + beta(t), per channel."""

    def __init__(self, text_dim: int, channels: int):
        super().__init__()
        self.to_gamma_beta = nn.Linear(text_dim, 2 * channels)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.to_gamma_beta(text)[:, :, None, None].chunk(2, dim=1)   # N x C x 1 x 1 each
        return x * (1 + gamma) + beta


class CrossAttention(nn.Module):
    """Every image location attends over the caption's words (one head of scaled dot-product attention):

        out = x + softmax(Q K^T / sqrt(d)) V,   Q = W_q (x + P),  K = W_k words,  V = W_v words,

    with P a learned embedding of the location (so that "the left half" can ask for the words that
    describe the left object).  This is how Imagen and Stable Diffusion feed text to their U-Nets.
    ``x``: N x C x H x W with H x W = ``size`` x ``size``; ``words``: N x L x word_dim; ``mask``: N x L.
    The last attention weights (N x HW x L) are kept in ``attention`` for plotting.
    """

    def __init__(self, channels: int, word_dim: int, size: int, dim: int = 32):
        super().__init__()
        self.position = nn.Parameter(0.1 * torch.randn(1, channels, size, size))   # 1 x C x size x size
        self.query = nn.Conv2d(channels, dim, 1)                                    # N x dim x H x W
        self.key = nn.Linear(word_dim, dim)                                         # N x L x dim
        self.value = nn.Linear(word_dim, channels)                                  # N x L x C
        self.scale = dim ** -0.5
        self.attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        queries = self.query(x + self.position).flatten(2).transpose(1, 2)         # N x HW x dim
        scores = queries @ self.key(words).transpose(1, 2) * self.scale             # N x HW x L
        weights = scores.masked_fill(~mask[:, None, :], float("-inf")).softmax(-1)  # N x HW x L
        self.attention = weights.detach()
        return x + (weights @ self.value(words)).transpose(1, 2).reshape(n, c, h, w)  # N x C x H x W


class TextToImageVAE(nn.Module):
    """A conditional VAE for 3 x 32 x 32 scenes given a caption (ids N x L).

    ``forward(images, ids) -> (logits, mu, logvar)``: pixel logits N x 3 x 32 x 32 (Bernoulli
    likelihood on values in [0, 1]) and the Gaussian posterior q(z | x, caption), N x ``z_dim`` each.
    ``sample(ids)`` -> images N x 3 x 32 x 32 in [0, 1], one per caption, z ~ N(0, I).

    The decoder hears the caption twice at each of the 4 x 4, 8 x 8 and 16 x 16 resolutions: the
    caption vector through FiLM (what to draw) and the words through :class:`CrossAttention` (what to
    draw *where*: "a red circle to the left of a blue square" binds red to the left).
    """

    def __init__(self, vocab_size: int, z_dim: int = 16, channels: int = 32, text_dim: int = 128):
        super().__init__()
        c = channels
        self.z_dim = z_dim
        self.channels = c
        self.text_encoder = TextEncoder(vocab_size, text_dim=text_dim)
        word_dim = self.text_encoder.word_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c // 2, 4, 2, 1), nn.LeakyReLU(0.2),                      # N x c/2 x 16 x 16
            nn.Conv2d(c // 2, c, 4, 2, 1), nn.LeakyReLU(0.2),                      # N x c x 8 x 8
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2),                       # N x 2c x 4 x 4
            nn.Flatten(),                                                           # N x 2c*16
        )
        self.posterior = nn.Sequential(
            nn.Linear(2 * c * 16 + text_dim, 128), nn.LeakyReLU(0.2),              # N x 128
            nn.Linear(128, 2 * z_dim),                                              # N x 2 z_dim (mu, logvar)
        )
        self.project = nn.Linear(z_dim + text_dim, 2 * c * 16)                     # N x 2c*16 -> 2c x 4 x 4
        self.up = nn.ModuleList([
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1),                                 # N x c x 8 x 8
            nn.ConvTranspose2d(c, c, 4, 2, 1),                                     # N x c x 16 x 16
        ])
        self.norms = nn.ModuleList([nn.GroupNorm(8, c), nn.GroupNorm(8, c)])
        self.films = nn.ModuleList([FiLM(text_dim, 2 * c), FiLM(text_dim, c), FiLM(text_dim, c)])
        self.attend = nn.ModuleList([CrossAttention(2 * c, word_dim, 4), CrossAttention(c, word_dim, 8),
                                     CrossAttention(c, word_dim, 16)])
        self.to_pixels = nn.ConvTranspose2d(c, 3, 4, 2, 1)                         # N x 3 x 32 x 32 logits

    def encode(self, images: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, 32, 32):
            raise ValueError(f"images must be N x 3 x 32 x 32 in [0, 1], got {tuple(images.shape)}")
        mu, logvar = self.posterior(torch.cat([self.encoder(images), text], 1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def decode(self, z: torch.Tensor, caption: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Pixel logits N x 3 x 32 x 32 from codes N x z_dim and a caption read by ``text_encoder.read``."""
        text, words, mask = caption
        x = self.project(torch.cat([z, text], 1)).view(-1, 2 * self.channels, 4, 4)  # N x 2c x 4 x 4
        x = F.relu(self.films[0](self.attend[0](x, words, mask), text))
        for up, norm, film, attend in zip(self.up, self.norms, self.films[1:], self.attend[1:]):
            x = F.relu(film(norm(attend(up(x), words, mask)), text))               # N x c x 8 x 8, 16 x 16
        return self.to_pixels(x)

    def forward(self, images: torch.Tensor, ids: torch.Tensor):
        caption = self.text_encoder.read(ids)
        mu, logvar = self.encode(images, caption[0])
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()                       # reparameterisation
        return self.decode(z, caption), mu, logvar

    @torch.no_grad()
    def sample(self, ids: torch.Tensor, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """One image per row of ``ids`` (N x 3 x 32 x 32 in [0, 1]), codes z ~ N(0, temperature^2 I)."""
        device = next(self.parameters()).device
        ids = ids.to(device)
        z = torch.randn(ids.shape[0], self.z_dim, generator=generator).to(device) * temperature
        return torch.sigmoid(self.decode(z, self.text_encoder.read(ids))).float()


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
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
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
    captions = [captions] if isinstance(captions, str) else list(captions)
    ids = tokenizer.encode(captions).repeat_interleave(samples_per_caption, dim=0)
    was_training = model.training
    model.eval()
    try:
        return model.sample(ids, generator=torch.Generator().manual_seed(seed)).cpu()
    finally:
        model.train(was_training)      # the caller's mode: generating mid-training must not freeze dropout


# --------------------------------------------------------------------------- attribute classifier
HEADS = {"layout": len(SCENE_LAYOUTS), "colour_1": len(SCENE_COLOURS), "shape_1": len(SCENE_SHAPES),
         "size_1": len(SCENE_SIZES), "colour_2": len(SCENE_COLOURS), "shape_2": len(SCENE_SHAPES),
         "size_2": len(SCENE_SIZES)}


class SceneAttributeClassifier(nn.Module):
    """Reads a scene (N x 3 x 32 x 32 in [0, 1]): ``{head: logits N x classes}`` for the heads in :data:`HEADS`.

    Object 1 is the single shape, the upper one of a vertical pair or the left one of a horizontal
    pair (the picture order of :class:`~lecture_utils.data.SceneData`).
    """

    def __init__(self, channels: int = 16):
        super().__init__()
        c = channels
        self.features = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.ReLU(),                               # N x c x 32 x 32
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ReLU(),                                # N x 2c x 16 x 16
            nn.Conv2d(2 * c, 4 * c, 4, 2, 1), nn.ReLU(),                            # N x 4c x 8 x 8
            nn.Conv2d(4 * c, 4 * c, 4, 2, 1), nn.ReLU(),                            # N x 4c x 4 x 4
            nn.Flatten(), nn.Linear(4 * c * 16, 128), nn.ReLU(),                    # N x 128
        )
        self.heads = nn.ModuleDict({name: nn.Linear(128, n) for name, n in HEADS.items()})  # N x classes

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, 32, 32):
            raise ValueError(f"images must be N x 3 x 32 x 32 in [0, 1], got {tuple(images.shape)}")
        h = self.features(images)
        return {name: head(h) for name, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 512) -> dict[str, torch.Tensor]:
        """``{head: int64 N}`` predicted classes."""
        self.eval()
        device = next(self.parameters()).device
        parts = [{k: v.argmax(1).cpu() for k, v in self(images[i:i + batch_size].to(device)).items()}
                 for i in range(0, images.shape[0], batch_size)]
        return {k: torch.cat([p[k] for p in parts]) for k in HEADS}


def classifier_loss(logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over heads of the cross-entropy; object-2 heads skip scenes with one object (target -1)."""
    return sum(F.cross_entropy(logits[k].float(), targets[k], ignore_index=-1) for k in HEADS)


def train_attribute_classifier(scenes: SceneData, epochs: int, batch_size: int = 128, lr: float = 2e-3,
                               device: torch.device | str = "cpu", seed: int = 0,
                               progress: bool | None = None) -> tuple[SceneAttributeClassifier, History]:
    """Train a :class:`SceneAttributeClassifier` on generated scenes (all colour-shape pairs)."""
    torch.manual_seed(seed)
    model = SceneAttributeClassifier().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    targets = torch.stack([scenes.attributes[k] for k in HEADS], 1)                # N x heads

    def step(batch):
        images, labels = batch
        model.train()
        with autocast(device):
            logits = model(images)
        loss = classifier_loss(logits, {k: labels[:, i] for i, k in enumerate(HEADS)})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    batches = BatchIterator(scenes.images, targets, batch_size=batch_size, seed=seed, device=device)
    history = fit(step, batches, epochs, state={"model": model, "optimizer": optimizer},
                  progress=progress, desc="attribute classifier")
    return model.eval(), history


def attribute_accuracy(predicted: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, float]:
    """How often colour, shape and position come out right.

    ``target`` is a :class:`SceneData`'s attributes.  Checks: ``position`` (the layout: where a single
    shape sits, or whether a pair is one above the other or side by side, with the right object
    first), ``colour`` and ``shape`` of every object, and ``size`` where the caption named it.
    Returns each check's accuracy, ``attribute`` (colour, shape and position checks pooled: the
    headline number) and ``all_correct`` (scenes whose every colour, shape and position check passed).
    """
    n = target["layout"].shape[0]
    if predicted["layout"].shape[0] != n:
        raise ValueError(f"predicted has {predicted['layout'].shape[0]} scenes, target {n}")
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


def timeline_figure(ours: tuple[str, int] | None = None, ax=None, figsize=(10, 5)):
    """Parameter count (log scale) against date for :data:`TEXT_TO_IMAGE_TIMELINE`, coloured by family.

    ``ours``: ``(label, parameter count)`` of the notebook's model, drawn as a horizontal line.
    """
    import matplotlib.pyplot as plt

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=figsize)
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
        from ..checkpoints import load_shipped

        model = SceneAttributeClassifier()
        model.load_state_dict(load_shipped(SCENE_CLASSIFIER_NAME)["model"])
        _scene_classifier = model.eval()
    return _scene_classifier

"""A small text-to-image model for the captioned scenes of notebook 09, and the classifier that judges it.

* :class:`Tokenizer` -- words to integer ids over a fixed vocabulary; unknown words are an error
  that names them and lists the vocabulary.
* :class:`TextEncoder` -- word embeddings read by a bidirectional GRU into one caption vector.
* :class:`TextToImageVAE` -- a conditional VAE (Sohn et al. 2015): the caption vector conditions
  both the encoder q(z | x, caption) and the decoder p(x | z, caption), through FiLM layers
  (Perez et al. 2018) at every resolution of the decoder.  ``sample`` draws z ~ N(0, I) and decodes
  it with a caption.
* :class:`SceneAttributeClassifier` -- a CNN that reads a scene's layout and each object's colour,
  shape and size (in picture order); it judges generated images.

Training, generation, the accuracy measures and the timeline figure are in :mod:`lecture_utils.text_to_image`.
"""
from __future__ import annotations

import re
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_input_dtype, check_not_empty
from ..data import SCENE_COLOURS, SCENE_LAYOUTS, SCENE_SHAPES, SCENE_SIZES, scene_vocabulary
from ..train import batched_inference


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


def _check_scenes(images: torch.Tensor, module: nn.Module) -> None:
    """A batch of scenes N x 3 x 32 x 32 (N >= 1) of the module's floating dtype; metadata only."""
    if not torch.is_tensor(images) or images.ndim != 4 or tuple(images.shape[1:]) != (3, 32, 32):
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"images must be N x 3 x 32 x 32 in [0, 1], got {shape}")
    check_not_empty(images, "images")
    check_input_dtype(images, "images", module)


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
        if not torch.is_tensor(ids) or ids.ndim != 2 or ids.dtype != torch.int64:
            given = f"{ids.dtype} {tuple(ids.shape)}" if torch.is_tensor(ids) else type(ids).__name__
            raise ValueError(f"ids must be an int64 tensor N x L, got {given}")
        check_not_empty(ids, "ids")
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
        _check_scenes(images, self)
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
        if torch.is_tensor(images) and images.ndim >= 1 and images.shape[0] != ids.shape[0]:
            raise ValueError(f"images and ids must hold one row per scene, got {images.shape[0]} images "
                             f"and {ids.shape[0]} captions")
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
        _check_scenes(images, self)
        h = self.features(images)
        return {name: head(h) for name, head in self.heads.items()}

    def predict(self, images: torch.Tensor, batch_size: int = 512) -> dict[str, torch.Tensor]:
        """``{head: int64 N}`` predicted classes (eval mode; the model's mode is restored)."""
        check_not_empty(images, "images")
        classes = batched_inference(self, images, batch_size=batch_size,
                                    call=lambda x: torch.stack([v.argmax(1) for v in self(x).values()], 1))
        return {k: classes[:, i].long() for i, k in enumerate(HEADS)}

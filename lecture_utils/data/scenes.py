"""Captioned scenes for text-to-image (notebook 09), rendered from a seed: no download, no files."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .sources import note_source

# One or two shapes on a plain background, each with a colour, a shape, a size and a place, and a
# caption from templates: "a small red circle on the left", "a blue square above a large green triangle".
SCENE_COLOURS = {"red": (0.90, 0.15, 0.15), "green": (0.15, 0.75, 0.20), "blue": (0.20, 0.35, 0.95),
                 "yellow": (0.95, 0.85, 0.15), "purple": (0.65, 0.25, 0.85)}
SCENE_SHAPES = ("circle", "square", "triangle")
SCENE_SIZES = ("small", "large")
# Where a single shape sits (its phrase in the caption), then the two arrangements of a pair:
# "vertical" = object 1 on top, "horizontal" = object 1 on the left.
SCENE_PLACES = {"left": "on the left", "right": "on the right", "top": "at the top",
                "bottom": "at the bottom", "middle": "in the middle"}
SCENE_LAYOUTS = ("left", "right", "top", "bottom", "middle", "vertical", "horizontal")
SCENE_RELATIONS = {"above": "vertical", "below": "vertical", "to the left of": "horizontal",
                   "to the right of": "horizontal"}
# Combinations never shown in training in notebook 09 (every colour and every shape still is).
SCENE_HELDOUT = (("red", "triangle"), ("green", "circle"), ("blue", "square"))
TWO_OBJECT_FRACTION = 0.5      # of the scenes; the others show one shape
SIZE_SAID_PROBABILITY = 0.7    # a caption names an object's size this often, so "a red circle" is seen too
SCENE_ATTRIBUTES = ("layout", "colour_1", "shape_1", "size_1", "colour_2", "shape_2", "size_2",
                    "size_1_said", "size_2_said")


def scene_vocabulary() -> tuple[str, ...]:
    """Every word the caption templates use, sorted."""
    words = {"a", *SCENE_COLOURS, *SCENE_SHAPES, *SCENE_SIZES}
    for phrase in (*SCENE_PLACES.values(), *SCENE_RELATIONS):
        words.update(phrase.split())
    return tuple(sorted(words))


@dataclass
class SceneData:
    """Captioned scenes: ``images`` float32 N x 3 x S x S in [0, 1], ``captions`` (N strings) and
    ``attributes`` ``{name: int64 tensor N}`` (names in :data:`SCENE_ATTRIBUTES`).

    Attributes are in *picture order*: object 1 is the single shape, or the upper one of a vertical
    pair, or the left one of a horizontal pair; ``layout`` indexes :data:`SCENE_LAYOUTS`; colours
    index :data:`SCENE_COLOURS`, shapes :data:`SCENE_SHAPES`, sizes :data:`SCENE_SIZES`; a missing
    object 2 has -1; ``size_k_said`` is 1 when the caption names object k's size.
    """

    images: torch.Tensor
    captions: list[str]
    attributes: dict[str, torch.Tensor]
    source: str = "captioned scenes (generated)"

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, n: int | None) -> "SceneData":
        if n is None:
            return self
        return SceneData(self.images[:n], self.captions[:n], {k: v[:n] for k, v in self.attributes.items()},
                         self.source)


def _check_combos(combos, name: str) -> set[tuple[str, str]]:
    combos = {tuple(c) for c in combos}
    for combo in combos:
        if len(combo) != 2 or combo[0] not in SCENE_COLOURS or combo[1] not in SCENE_SHAPES:
            raise ValueError(f"{name} must hold (colour, shape) pairs with colours {list(SCENE_COLOURS)} and "
                             f"shapes {list(SCENE_SHAPES)}, got {combo!r}")
    return combos


def _shape_coverage(shape: np.ndarray, cx: np.ndarray, cy: np.ndarray, r: np.ndarray, size: int,
                    supersample: int = 4) -> np.ndarray:
    """Anti-aliased coverage (N x size x size in [0, 1]) of one shape per scene, by supersampling.

    ``shape`` indexes :data:`SCENE_SHAPES`; ``cx``, ``cy`` (centre) and ``r`` (half-extent) are in pixels.
    """
    fine = ((np.arange(size * supersample) + 0.5) / supersample).astype(np.float32)  # sub-pixel centres
    out = np.zeros((shape.size, size, size), dtype=np.float32)
    for kind in np.unique(shape):
        rows = np.flatnonzero(shape == kind)
        y, x = fine[None, :, None], fine[None, None, :]
        x0 = cx[rows, None, None].astype(np.float32)
        y0 = cy[rows, None, None].astype(np.float32)
        rr = r[rows, None, None].astype(np.float32)
        if SCENE_SHAPES[kind] == "circle":
            inside = (x - x0) ** 2 + (y - y0) ** 2 <= rr ** 2
        elif SCENE_SHAPES[kind] == "square":
            half = 0.88 * rr                                                    # about a circle's area
            inside = (np.abs(x - x0) <= half) & (np.abs(y - y0) <= half)
        else:                                                                   # apex up, base down
            top, bottom = y0 - 1.05 * rr, y0 + 0.85 * rr
            inside = (y >= top) & (y <= bottom) & (np.abs(x - x0) <= 1.1 * rr * (y - top) / (bottom - top))
        out[rows] = inside.reshape(rows.size, size, supersample, size, supersample).mean(axis=(2, 4))
    return out


def make_scenes(n: int, seed: int = 0, size: int = 32, exclude=(), only=None, verbose: bool = True) -> SceneData:
    """``n`` captioned scenes, the same for the same arguments (all randomness from ``seed``).

    Each scene has one shape (half of them; placed left, right, top, bottom or in the middle) or two (one above / below / to the left of / to the right of the other), with a
    colour from :data:`SCENE_COLOURS`, a shape from :data:`SCENE_SHAPES` and a size ("small" or
    "large", named in the caption with probability :data:`SIZE_SAID_PROBABILITY`), on a plain grey
    background of random brightness, with a few pixels of random jitter in every position.

    ``exclude``: (colour, shape) pairs that never appear (the training set of notebook 09 leaves
    out :data:`SCENE_HELDOUT`).  ``only``: (colour, shape) pairs of which every scene shows at least
    one (to test generalisation to them).  Returns a :class:`SceneData`.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16 (pixels), got {size!r}")
    exclude = _check_combos(exclude, "exclude")
    only = _check_combos(only, "only") if only is not None else None
    if only is not None and not only - exclude:
        raise ValueError("only and exclude leave no (colour, shape) pair to draw")
    colours, shapes = list(SCENE_COLOURS), list(SCENE_SHAPES)
    allowed = [(c, s) for c in colours for s in shapes if (c, s) not in exclude]
    wanted = [combo for combo in allowed if only is None or combo in only]
    rng = np.random.default_rng(seed)
    scale = size / 32.0
    radius = {"small": 4.0 * scale, "large": 6.5 * scale}
    jitter = 1.5 * scale
    centre = {"left": (9.0, 16.0), "right": (23.0, 16.0), "top": (16.0, 9.0), "bottom": (16.0, 23.0),
              "middle": (16.0, 16.0)}

    objects = []  # per scene: list of (colour, shape, size, cx, cy, size_said) in picture order
    captions, layouts = [], []
    for _ in range(n):
        count = 2 if rng.random() < TWO_OBJECT_FRACTION else 1
        combos = [allowed[rng.integers(len(allowed))] for _ in range(count)]
        if only is not None and not any(combo in only for combo in combos):
            combos[rng.integers(count)] = wanted[rng.integers(len(wanted))]
        sizes = [SCENE_SIZES[rng.integers(2)] for _ in range(count)]
        said = [bool(rng.random() < SIZE_SAID_PROBABILITY) for _ in range(count)]
        words = [" ".join(["a"] + ([s] if k else []) + [c, sh])
                 for (c, sh), s, k in zip(combos, sizes, said)]
        if count == 1:
            place = list(SCENE_PLACES)[rng.integers(len(SCENE_PLACES))]
            cx, cy = np.array(centre[place]) * scale + rng.uniform(-jitter, jitter, 2)
            objects.append([(*combos[0], sizes[0], cx, cy, said[0])])
            captions.append(f"{words[0]} {SCENE_PLACES[place]}")
            layouts.append(SCENE_LAYOUTS.index(place))
            continue
        relation = list(SCENE_RELATIONS)[rng.integers(len(SCENE_RELATIONS))]
        captions.append(f"{words[0]} {relation} {words[1]}")
        # picture order: the caption's first object comes first for "above" and "to the left of"
        order = (0, 1) if relation in ("above", "to the left of") else (1, 0)
        arrangement = SCENE_RELATIONS[relation]
        layouts.append(SCENE_LAYOUTS.index(arrangement))
        along = np.array([8.5, 23.5]) * scale + rng.uniform(-jitter, jitter, 2)
        across = 16.0 * scale + rng.uniform(-2.5 * jitter, 2.5 * jitter, 2)
        scene = []
        for slot, k in enumerate(order):
            cx, cy = (across[slot], along[slot]) if arrangement == "vertical" else (along[slot], across[slot])
            scene.append((*combos[k], sizes[k], cx, cy, said[k]))
        objects.append(scene)

    background = rng.uniform(0.05, 0.3, n).astype(np.float32)
    images = np.broadcast_to(background[:, None, None, None], (n, 3, size, size)).copy()
    attributes = {name: np.full(n, -1, dtype=np.int64) for name in SCENE_ATTRIBUTES}
    attributes["layout"][:] = layouts
    for slot in range(2):
        index = np.array([i for i in range(n) if len(objects[i]) > slot])
        if index.size == 0:
            continue
        rows = [objects[i][slot] for i in index]
        colour = np.array([colours.index(r[0]) for r in rows])
        shape = np.array([shapes.index(r[1]) for r in rows])
        size_index = np.array([SCENE_SIZES.index(r[2]) for r in rows])
        cx = np.array([r[3] for r in rows])
        cy = np.array([r[4] for r in rows])
        r = np.array([radius[row[2]] for row in rows])
        for start in range(0, index.size, 512):
            part = slice(start, start + 512)
            alpha = _shape_coverage(shape[part], cx[part], cy[part], r[part], size)[:, None]  # m x 1 x S x S
            rgb = np.array([SCENE_COLOURS[colours[c]] for c in colour[part]], dtype=np.float32)[:, :, None, None]
            images[index[part]] = images[index[part]] * (1 - alpha) + rgb * alpha
        attributes[f"colour_{slot + 1}"][index] = colour
        attributes[f"shape_{slot + 1}"][index] = shape
        attributes[f"size_{slot + 1}"][index] = size_index
        attributes[f"size_{slot + 1}_said"][:] = np.maximum(attributes[f"size_{slot + 1}_said"], 0)
        attributes[f"size_{slot + 1}_said"][index] = [int(r[5]) for r in rows]
    source = "captioned scenes (generated)"
    if verbose:
        held = f", without {sorted(exclude)}" if exclude else ""
        print(f"[lecture_utils] {n:,} captioned scenes ({size} x {size}, seed {seed}{held})")
    note_source(source)
    return SceneData(torch.from_numpy(images).clamp_(0, 1), captions,
                     {k: torch.from_numpy(v) for k, v in attributes.items()}, source)

"""The timing harness the loop benchmarks share: run a reference loop and ours in alternation, keep the best
repeat of each, print images/s side by side and the ratio against the goal.  On a machine whose speed drifts
(a shared or virtual CPU) the best repeats may come from different moments, so the ratio of each repeat to the
reference's repeat run just before it is printed too (its median and range)."""
from __future__ import annotations

import statistics
from typing import Callable

import torch


def compare(loops: dict[str, Callable[[], float]], repeats: int, goal: str) -> float:
    """``loops``: {name: run} with the reference first and ours after it, each run training a fresh model and
    returning images/s.  Repeats alternate (seeded by the repeat index) so that a load spike hits all of them.
    Returns the best ratio of ours to the reference."""
    results: dict[str, list[float]] = {name: [] for name in loops}
    for repeat in range(repeats):
        for name, run in loops.items():
            torch.manual_seed(repeat)
            results[name].append(run())
    best = {name: max(values) for name, values in results.items()}
    reference, *ours = best.items()
    ratios = {("ratio ours / reference" if len(ours) == 1 else f"ratio {name.split(' (')[0]} / reference"):
              value / reference[1] for name, value in ours}
    width = max(34, *map(len, best), *map(len, ratios))
    for name, value in best.items():
        print(f"{name:{width}s} {value:10,.0f} images/s   (repeats: {', '.join(f'{v:,.0f}' for v in results[name])})")
    for (label, ratio), (name, _) in zip(ratios.items(), ours):
        paired = sorted(o / r for o, r in zip(results[name], results[reference[0]]))
        print(f"{label:{width}s} {ratio:10.2f}x   (goal: {goal}; each repeat against the reference's: median "
              f"{statistics.median(paired):.2f}x, {paired[0]:.2f}-{paired[-1]:.2f}x)")
    return max(ratios.values())

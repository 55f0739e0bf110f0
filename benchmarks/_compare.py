"""The timing harness the loop benchmarks share: run a reference loop and ours in alternation, keep the best
repeat of each, print images/s side by side and the ratio against the goal."""
from __future__ import annotations

from typing import Callable

import torch


def compare(loops: dict[str, Callable[[], float]], repeats: int, goal: str) -> float:
    """``loops``: {name: run} with the reference first and ours second, each run training a fresh model and
    returning images/s.  Repeats alternate (seeded by the repeat index) so that a load spike hits both."""
    results: dict[str, list[float]] = {name: [] for name in loops}
    for repeat in range(repeats):
        for name, run in loops.items():
            torch.manual_seed(repeat)
            results[name].append(run())
    best = {name: max(values) for name, values in results.items()}
    for name, value in best.items():
        print(f"{name:34s} {value:10,.0f} images/s   (repeats: {', '.join(f'{v:,.0f}' for v in results[name])})")
    reference, ours = best.values()
    print(f"{'ratio ours / reference':34s} {ours / reference:10.2f}x   (goal: {goal})")
    return ours / reference

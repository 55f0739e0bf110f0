#!/usr/bin/env python3
"""Homework grading: N submissions graded one at a time, then with --jobs J; prints both and their ratio.

    .venv/bin/python benchmarks/bench_homework_grading.py                 # 40 submissions of HW3, jobs 2
    .venv/bin/python benchmarks/bench_homework_grading.py --n 10 --jobs 2 --assignment hw1_vae

Each submission is the assignment's set-up cell and answer cells from the solutions (a student's
notebook without the demo cells), with a comment that makes every file different; half of them get one
answer wrong.  Goal on a 2-core machine: --jobs 2 takes at most 0.65x the sequential time.  The
machine's load average is printed with the result: on a machine shared with other jobs the ratio
says little.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("homework_tool", ROOT / "homework" / "homework.py")
homework = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = homework
spec.loader.exec_module(homework)


def submissions(assignment: str, built: Path, folder: Path, n: int) -> None:
    solution = nbformat.read(built / assignment / "autograder" / f"{assignment}.ipynb", as_version=4)
    setup = next(c for c in solution.cells if c.cell_type == "code" and "import torch" in c.source and "otter" not in c.source)
    answers = [c for c in solution.cells if "otter_assign_solution_cell" in c.metadata.get("tags", [])]
    for i in range(n):
        cells = [nbformat.v4.new_code_cell(f"# submission {i}\n" + setup.source)]
        for j, cell in enumerate(answers):
            source = cell.source
            if i % 2 and j == len(answers) - 1:        # half of them: the last answer returns nonsense
                source += "\n\n" + re.match(r"(?:def|class) (\w+)", source).group(1) + " = lambda *args, **kwargs: None"
            cells.append(nbformat.v4.new_code_cell(source))
        nbformat.write(nbformat.v4.new_notebook(cells=cells), folder / f"{assignment}_{i:03d}.ipynb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="number of submissions (default 40)")
    parser.add_argument("--jobs", type=int, default=2, help="submissions at a time in the parallel run (default 2)")
    parser.add_argument("--assignment", default="hw3_vision_tasks", choices=homework.ASSIGNMENTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        built = tmp / "built"
        homework.build([args.assignment], out=built)
        folder = tmp / "submissions"
        folder.mkdir()
        submissions(args.assignment, built, folder, args.n)
        times = {}
        for jobs in (1, args.jobs):
            started = time.perf_counter()
            rows = homework.grade(folder, out=tmp / f"grades-{jobs}", autograders=built, jobs=jobs)
            times[jobs] = time.perf_counter() - started
            assert all(r.status == "ok" for r in rows), [r.status for r in rows if r.status != "ok"]
        ratio = times[args.jobs] / times[1]
        load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
        print(f"\n{args.n} submissions of {args.assignment} on {os.cpu_count()} CPUs (load average now {load[0]:.1f}):")
        print(f"  sequential (--jobs 1): {times[1]:7.1f} s  ({times[1] / args.n:.1f} s per submission)")
        print(f"  --jobs {args.jobs}:             {times[args.jobs]:7.1f} s  ({times[args.jobs] / args.n:.1f} s per submission)")
        print(f"  ratio {ratio:.2f} (goal <= 0.65 with 2 jobs on 2 cores)")


if __name__ == "__main__":
    main()

"""Every notebook runs in presenter mode, as an instructor runs it in front of a lecture hall.

Presenter mode (``LECTURE_UTILS_PRESENT=1``) loads the shipped checkpoints, keeps the side experiments small
and asserts the shipped models' standard goals (``trained_goals``).  nbval runs the notebooks in the smoke
budget only, so a notebook whose presenter path broke (a checkpoint that no longer loads into its model, a
goal the shipped weights miss, a cell that only runs when nothing was trained) would pass the rest of the
suite.  The kernels inherit the suite's environment: offline digits, an empty data folder.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_notebook_is_covered():
    assert len(NOTEBOOKS) >= 10, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_presenter_mode(path, monkeypatch, tmp_path):
    monkeypatch.setenv("LECTURE_UTILS_PRESENT", "1")
    monkeypatch.delenv("LECTURE_UTILS_BUDGET", raising=False)      # presenter mode picks its own sizes
    monkeypatch.delenv("LECTURE_UTILS_PRETRAINED", raising=False)  # and loads the shipped checkpoints
    monkeypatch.setenv("LECTURE_UTILS_BUILD", str(tmp_path))         # results of this run stay out of build/
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    failure = None
    try:
        client.execute()
    except CellExecutionError as error:
        failure = str(error)[-3000:]
    if failure is not None:
        pytest.fail(f"{path.name} failed in presenter mode:\n{failure}", pytrace=False)
    seconds = time.perf_counter() - start
    results = tmp_path / "results" / f"{path.stem}.json"
    assert results.is_file(), f"{path.name} wrote no results record under {tmp_path}"
    record = json.loads(results.read_text())
    assert record["presenter_mode"] is True, record
    print(f"{path.name}: presenter mode in {seconds:.0f} s, loaded {record['pretrained']}")

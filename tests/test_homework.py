"""Autograded homework: the student versions build without solutions or hidden tests, and the offline
grader scores solutions, float32 answers, untouched notebooks and broken submissions (wrong, looping,
crashing, deleting, unreadable) each on its own, without one submission stopping or changing the
grading of another; submissions that tamper with the grading or use the library's answer are flagged,
never scored; an interrupted grading run resumes without losing or repeating a row.

The grading runs are module fixtures: one folder with every kind of submission is graded once, two
at a time (about twenty notebook executions, a few minutes on 2 cores), and the tests read its rows.
Grading needs POSIX signals: its tests are skipped on Windows.
"""
import csv
import importlib.util
import json
import os
import re
import signal
import subprocess
import shutil
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("homework_tool", ROOT / "homework" / "homework.py")
homework = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = homework          # dataclasses look their module up there
_spec.loader.exec_module(homework)

ASSIGNMENTS = homework.ASSIGNMENTS
posix_only = pytest.mark.skipif(os.name == "nt", reason="grading needs Linux or macOS (POSIX signals for its time limits)")
CELL_LIMIT_S = 90          # generous: a set-up cell imports torch and the library, slow on a busy machine
SUBMISSION_LIMIT_S = 400
LOOP_CELL_LIMIT_S = 10     # short limits for the looping submission, whose cells are light
LOOP_CHECK_LIMIT_S = 5     # the checks of a correct answer take well under a second


def master_cells(name):
    return nbformat.read(ROOT / "homework" / f"{name}.ipynb", as_version=4).cells


def master_questions(name):
    """{question: points} from the master's '# BEGIN QUESTION' cells."""
    questions = {}
    for cell in master_cells(name):
        if cell.cell_type == "raw" and cell.source.startswith("# BEGIN QUESTION"):
            config = dict(line.split(": ", 1) for line in cell.source.splitlines()[1:] if ": " in line)
            questions[config["name"]] = float(config["points"])
    return questions


def master_tests(name):
    """[(function name, hidden)] of the master's test cells."""
    tests = []
    for cell in master_cells(name):
        match = re.search(r"^def (test_\w+)\(", cell.source, re.M) if cell.cell_type == "code" else None
        if match:
            tests.append((match.group(1), bool(re.search(r"^hidden: true$", cell.source, re.M))))
    return tests


def solution_lines(name):
    """Lines that occur only inside '# BEGIN SOLUTION' ... '# END SOLUTION' in the master."""
    inside_lines, outside_lines = set(), set()
    for cell in master_cells(name):
        if cell.cell_type != "code":
            continue
        inside = False
        for line in cell.source.splitlines():
            if "# END SOLUTION" in line:
                inside = False
            elif "# BEGIN SOLUTION" in line:
                inside = True
            elif line.strip():
                (inside_lines if inside else outside_lines).add(line.strip())
    return inside_lines - outside_lines


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("homework-build")
    return out, homework.build(out=out)


# --------------------------------------------------------------------------- the release
def test_every_assignment_builds_a_release_and_an_autograder(built):
    out, releases = built
    assert set(releases) == set(ASSIGNMENTS)
    for name in ASSIGNMENTS:
        questions = master_questions(name)
        assert len(questions) == 4, f"{name}: four questions expected, found {sorted(questions)}"
        student = releases[name]["student"]
        assert (student / f"{name}.ipynb").is_file()
        assert sorted(p.stem for p in (student / "tests").glob("*.py")) == sorted(questions)
        with zipfile.ZipFile(out / f"{name}-autograder.zip") as archive:
            files = set(archive.namelist())
            config = json.loads(archive.read("otter_config.json"))
        assert {f"tests/{q}.py" for q in questions} <= files and "run_autograder" in files
        assert "files/lecture_utils/__init__.py" in files, "the autograder zip carries the library for Gradescope"
        assert config["assignment_name"] == name
        # points in the autograder's tests add up to the question's points (so full marks are reachable)
        assert homework.questions_of((out / f"{name}-autograder.zip").read_bytes()) == questions
        with zipfile.ZipFile(out / f"{name}-student.zip") as archive:
            assert f"{name}/{name}.ipynb" in archive.namelist()


def test_student_release_has_no_solution_code_and_no_hidden_test(built):
    out, releases = built
    for name in ASSIGNMENTS:
        student = releases[name]["student"]
        texts = {p: p.read_text() for p in student.rglob("*") if p.is_file()}
        with zipfile.ZipFile(out / f"{name}-student.zip") as archive:
            texts.update({f"zip:{n}": archive.read(n).decode() for n in archive.namelist()})
        notebook = nbformat.read(student / f"{name}.ipynb", as_version=4)
        code_lines = {line.strip() for cell in notebook.cells if cell.cell_type == "code"
                      for line in cell.source.splitlines()}
        secret = solution_lines(name)
        assert len(secret) >= 5, f"{name}: the master should have solution code"
        leaked = secret & code_lines
        assert not leaked, f"{name}: solution lines in the student notebook: {sorted(leaked)}"
        tests = master_tests(name)
        hidden = [t for t, is_hidden in tests if is_hidden]
        public = [t for t, is_hidden in tests if not is_hidden]
        assert hidden and public, f"{name}: each assignment has public and hidden tests"
        public_text = "\n".join(texts[p] for p in texts if str(p).endswith(".py"))
        for test in public:
            assert f"def {test}(" in public_text, f"{name}: the public test {test} is missing from the release"
        for path, text in texts.items():
            for test in hidden:
                assert test not in text, f"{name}: the hidden test {test} is in {path}"
            for mark in ("BEGIN SOLUTION", "END SOLUTION", "hidden=True", "hidden: true"):
                assert mark not in text, f"{name}: {path} contains {mark!r}"
        # every answer cell is a stub with '...' where the solution was
        stubs = [c for c in notebook.cells if "otter_answer_cell" in c.metadata.get("tags", [])]
        assert len(stubs) == 4 and all("..." in c.source for c in stubs)


# --------------------------------------------------------------------------- grading
def _solution(name, out):
    return nbformat.read(out / name / "autograder" / f"{name}.ipynb", as_version=4)


def _cell(notebook, start):
    cells = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(start)]
    assert len(cells) == 1, f"one code cell starting with {start!r} expected, found {len(cells)}"
    return cells[0]


def _minimal_notebook(*sources):
    """A submission of a few code cells only (no set-up cell importing the library: quick to grade)."""
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])


FLOAT32_CELL = """\
import functools
import torch


def _in_float32(function):
    \"\"\"The same answer computed in float32: floating tensors in are cast down, a tensor out is cast back.\"\"\"
    def down(value):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.float()
        if isinstance(value, (list, tuple)):
            return type(value)(down(v) for v in value)
        return value

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        dtypes = [a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()]
        result = function(*map(down, args), **{k: down(v) for k, v in kwargs.items()})
        if dtypes and isinstance(result, torch.Tensor) and result.is_floating_point():
            result = result.to(dtypes[0])
        return result
    return wrapper
"""


def _float32_submission(name, out):
    """The solution's set-up and answer cells, every answer function wrapped to compute in float32."""
    solution = _solution(name, out)
    setup = next(c for c in solution.cells if c.cell_type == "code" and "import torch" in c.source
                 and "otter" not in c.source)
    answers = [c for c in solution.cells if "otter_assign_solution_cell" in c.metadata.get("tags", [])]
    functions = [q for question in homework.read_master(ROOT / "homework" / f"{name}.ipynb")["questions"]
                 for q in question["answers"] if not q[0].isupper()]          # classes keep float32 parameters
    wrap = "\n".join(f"{f} = _in_float32({f})" for f in functions)
    return _minimal_notebook(setup.source, *[c.source for c in answers], FLOAT32_CELL + "\n\n" + wrap)


WRONG_PSNR = "import torch\n\n\ndef psnr(prediction, target, data_range=1.0):\n    return prediction.flatten(1).mean(1)"
RIGHT_PSNR = ("import torch\n\n\ndef psnr(prediction, target, data_range=1.0):\n"
              "    mse = (prediction - target).pow(2).flatten(1).mean(1)\n"
              "    return 10 * torch.log10(data_range ** 2 / mse)")
ADVERSARIAL = {     # file name: cells.  Each would get full marks on what it forges if the grader believed its kernel.
    "hw3_forge_runner.ipynb": [WRONG_PSNR, (
        "import otter.test_files.exception_test as exception_test\n"
        "from otter.test_files.abstract_test import TestCaseResult\n\n\n"
        "def _all_passed(self, global_environment):\n"
        "    self.test_case_results = [TestCaseResult(test_case=tc, message='passed', passed=True) for tc in self.test_cases]\n\n\n"
        "exception_test.ExceptionTestFile.run = _all_passed")],
    "hw3_forge_check.ipynb": [WRONG_PSNR, (
        "from otter.test_files.exception_test import test_case\n"
        "test_case.call_func = lambda self, global_environment: None")],
    "hw3_forge_results.ipynb": [WRONG_PSNR, (
        "import pickle\n"
        "_real_dump = pickle.dump\n\n\n"
        "def _forged_dump(results, handle, *args, **kwargs):\n"
        "    for test_file in getattr(results, 'results', {}).values():\n"
        "        test_file.test_case_results = [type(r)(test_case=r.test_case, message='passed', passed=True)\n"
        "                                       for r in test_file.test_case_results]\n"
        "    return _real_dump(results, handle, *args, **kwargs)\n\n\n"
        "pickle.dump = _forged_dump")],
    "hw3_forge_signal.ipynb": [(
        "import signal\nimport torch\n"
        "signal.setitimer = lambda *args, **kwargs: (0.0, 0.0)   # the kernel's check time limits never start\n\n\n"
        "def psnr(prediction, target, data_range=1.0):\n"
        "    signal.signal(signal.SIGALRM, signal.SIG_IGN)       # no later check could be stopped\n"
        "    mse = (prediction - target).pow(2).flatten(1).mean(1)\n"
        "    return 10 * torch.log10(data_range ** 2 / mse)")],
    "hw3_forge_torch.ipynb": [(
        "import numpy\nimport torch\n\n\n"
        "def psnr(prediction, target, data_range=1.0):\n"
        "    numpy.allclose = lambda *args, **kwargs: True      # every later comparison 'passes'\n"
        "    torch.allclose = lambda *args, **kwargs: True\n"
        "    return prediction.flatten(1).mean(1)")],
    "hw3_wraps_gram.ipynb": [(
        "import torch.nn.functional as F\n"
        "from lecture_utils.losses import gram_matrix as library_gram_matrix\n\n\n"
        "def gram_matrix(features):\n"
        "    return library_gram_matrix(features)\n\n\n"
        "def style_loss(generated, style, weights=None):\n"
        "    weights = [1.0 / len(generated)] * len(generated) if weights is None else weights\n"
        "    return sum(w * F.mse_loss(gram_matrix(g), gram_matrix(s)) / 4 for g, s, w in zip(generated, style, weights))")],
    "hw2_imports_dcgan.ipynb": ["from lecture_utils.models.dcgan import DCGANGenerator"],
}
FLAG_REASONS = {
    "hw3_forge_runner.ipynb": "passed in the notebook's kernel but fail in a fresh process",
    "hw3_forge_check.ipynb": "passed in the notebook's kernel but fail in a fresh process",
    "hw3_forge_results.ipynb": "passed in the notebook's kernel but fail in a fresh process",
    "hw3_forge_signal.ipynb": "SIGALRM handler (the time limit) was replaced",
    "hw3_forge_torch.ipynb": "changed the grading machinery",
    "hw3_wraps_gram.ipynb": "uses lecture_utils.losses.gram_matrix",
    "hw2_imports_dcgan.ipynb": "uses lecture_utils.models.dcgan.DCGANGenerator",
}


@pytest.fixture(scope="module")
def graded(built, tmp_path_factory):
    """Grade one folder holding solutions, untouched releases and broken submissions; returns ({file name: row}, reports)."""
    out, releases = built
    folder = tmp_path_factory.mktemp("submissions")
    autograders = tmp_path_factory.mktemp("autograders")          # a copy the deleting submission wipes
    for name in ASSIGNMENTS:
        shutil.copy(out / f"{name}-autograder.zip", autograders)
        shutil.copy(out / name / "autograder" / f"{name}.ipynb", folder / f"{name}_solution.ipynb")
        shutil.copy(releases[name]["student"] / f"{name}.ipynb", folder / f"{name}_untouched.ipynb")

    # one function wrong: PSNR pooled over the batch instead of one value per image
    notebook = _solution("hw3_vision_tasks", out)
    cell = _cell(notebook, "def psnr(")
    cell.source = cell.source.replace("mse = (prediction - target).pow(2).flatten(1).mean(1)",
                                      "mse = (prediction - target).pow(2).mean().expand(prediction.shape[0])")
    nbformat.write(notebook, folder / "hw3_one_wrong.ipynb")

    # raises at import: the set-up cell fails on its first line, so nothing after it is defined
    notebook = _solution("hw1_vae", out)
    cell = _cell(notebook, "import math")
    cell.source = "import lecture_utilz  # a typo: ModuleNotFoundError\n" + cell.source
    nbformat.write(notebook, folder / "hw1_import_error.ipynb")

    # deletes every other submission and the autograders before any of them is graded (it sorts first),
    # then answers one question
    nbformat.write(_minimal_notebook(
        "import glob, os\n"
        f"for victim in glob.glob({str(folder)!r} + '/*') + glob.glob({str(autograders)!r} + '/*'):\n"
        "    if not victim.endswith('00_deleter_hw3.ipynb'):\n"
        "        os.remove(victim)",
        "def psnr(prediction, target, data_range=1.0):\n"
        "    mse = (prediction - target).pow(2).flatten(1).mean(1)\n"
        "    return 10 * (data_range ** 2 / mse).log10()"), folder / "00_deleter_hw3.ipynb")

    (folder / "hw1_unreadable.ipynb").write_text('{"cells": [ not json')

    # crashes: the kernel process dies half-way through the notebook
    nbformat.write(_minimal_notebook("def psnr(prediction, target, data_range=1.0):\n    return None",
                                     "import os\nos._exit(3)"), folder / "hw3_crash.ipynb")

    # every answer computed in float32 (floating inputs cast down, the result cast back to their dtype)
    for name in ASSIGNMENTS:
        nbformat.write(_float32_submission(name, out), folder / f"{name}_float32.ipynb")

    # submissions that forge their grading or hand in the library's answer
    for file_name, cells in ADVERSARIAL.items():
        nbformat.write(_minimal_notebook(*cells), folder / file_name)

    reports = tmp_path_factory.mktemp("grades")
    started = time.time()
    rows = homework.grade(folder, out=reports, autograders=autograders, time_limit=SUBMISSION_LIMIT_S,
                          cell_time_limit=CELL_LIMIT_S, check_time_limit=30, jobs=2)
    print(f"graded {len(rows)} submissions in {time.time() - started:.0f} s")
    left = {"submissions": sorted(p.name for p in folder.iterdir()), "autograders": sorted(p.name for p in autograders.iterdir())}
    return {row.path.name: row for row in rows}, reports, left


@pytest.fixture(scope="module")
def looping(built, tmp_path_factory):
    """A submission with a stuck top-level cell and a function that never returns, graded under short limits."""
    out, _ = built
    folder = tmp_path_factory.mktemp("looping")
    nbformat.write(_minimal_notebook(
        "while True:      # stuck at the top level: the per-cell limit interrupts it\n    pass",
        "import torch\nimport torch.nn.functional as F\n\n\n"
        "def discriminator_loss(real_logits, fake_logits):\n"
        "    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))\n"
        "            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))",
        "def algorithm1_step(generator, discriminator, g_optimizer, d_optimizer, next_real_batch, latent_dim, k=1):\n"
        "    while True:  # never returns: the per-check limit stops each check that calls it\n"
        "        pass"), folder / "hw2_loop.ipynb")
    started = time.time()
    (row,) = homework.grade(folder, out=tmp_path_factory.mktemp("grades"), autograders=out,
                            time_limit=SUBMISSION_LIMIT_S, cell_time_limit=LOOP_CELL_LIMIT_S,
                            check_time_limit=LOOP_CHECK_LIMIT_S)
    return row, time.time() - started


@posix_only
def test_solutions_get_full_marks(graded):
    rows, _, _ = graded
    for name in ASSIGNMENTS:
        row = rows[f"{name}_solution.ipynb"]
        assert row.status == "ok", row.status
        assert row.possible == sum(master_questions(name).values())
        assert row.total == row.possible, f"{name}: {row.total}/{row.possible}; failed: {row.failed_checks}"


@posix_only
def test_untouched_release_gets_zero_and_the_grader_finishes(graded):
    rows, _, _ = graded
    for name in ASSIGNMENTS:
        row = rows[f"{name}_untouched.ipynb"]
        assert row.status == "ok" and row.total == 0 and row.possible > 0, (row.status, row.total)
        assert len(row.failed_checks) == len(master_tests(name)), "every check runs and fails"


@posix_only
def test_one_wrong_function_gets_partial_credit_naming_the_failing_check(graded):
    rows, reports, _ = graded
    row = rows["hw3_one_wrong.ipynb"]
    assert row.status == "ok"
    assert 0 < row.total < row.possible
    assert row.scores["psnr"] < row.possible_by_question["psnr"]
    others = [q for q in row.scores if q != "psnr"]
    assert all(row.scores[q] == row.possible_by_question[q] for q in others), row.scores
    assert row.failed_checks and all(c.startswith("psnr - ") for c in row.failed_checks), row.failed_checks
    assert any("scikit-image" in c for c in row.failed_checks), row.failed_checks
    feedback = (reports / "hw3_vision_tasks" / "hw3_one_wrong.ipynb.txt").read_text()
    assert "FAILED" in feedback and "psnr - 2 (hidden)" in feedback


@posix_only
def test_infinite_loop_is_stopped_by_the_time_limit_and_scores_zero_on_that_question(looping):
    row, seconds = looping
    assert row.status == "ok", row.status
    assert row.scores["algorithm1_step"] == 0
    loop_checks = [c for c in row.failed_checks if c.startswith("algorithm1_step - ")]
    assert len(loop_checks) == 2 and all("TimeoutError" in c and "time limit" in c for c in loop_checks), loop_checks
    # the rest of the notebook was still graded: the stuck cell was interrupted, the next cells ran
    assert row.scores["discriminator_loss"] == row.possible_by_question["discriminator_loss"], row.failed_checks
    assert seconds >= LOOP_CELL_LIMIT_S + 2 * LOOP_CHECK_LIMIT_S


@posix_only
def test_submission_raising_at_import_is_graded_not_crashed(graded):
    rows, _, _ = graded
    row = rows["hw1_import_error.ipynb"]
    assert row.status == "ok", row.status
    assert row.total == 0 and set(row.scores) == set(master_questions("hw1_vae"))
    assert any("define reparameterised_sample" in c for c in row.failed_checks), row.failed_checks


@posix_only
def test_unreadable_notebook_gets_an_error_row(graded):
    rows, _, _ = graded
    row = rows["hw1_unreadable.ipynb"]
    assert row.status.startswith("error") and "not a readable notebook" in row.status
    assert row.total == 0 and row.possible == sum(master_questions("hw1_vae").values())


@posix_only
def test_crashing_kernel_gets_an_error_row_and_the_next_submissions_are_graded(graded):
    rows, _, _ = graded
    row = rows["hw3_crash.ipynb"]
    assert row.status.startswith("error") and "kernel died" in row.status, row.status
    assert row.total == 0 and row.possible == sum(master_questions("hw3_vision_tasks").values())
    after = [r for name, r in rows.items() if name > "hw3_crash.ipynb" and name not in ADVERSARIAL]
    assert after and all(r.status == "ok" for r in after)


@posix_only
def test_deleting_files_changes_nothing_for_the_others(graded):
    rows, _, left = graded
    assert left == {"submissions": ["00_deleter_hw3.ipynb"], "autograders": []}, "the deleting submission ran"
    deleter = rows["00_deleter_hw3.ipynb"]
    assert deleter.status == "ok" and deleter.scores["psnr"] == deleter.possible_by_question["psnr"]
    # it ran first and removed every other submission and the autograders: all were still graded
    assert len(rows) == len(ASSIGNMENTS) * 3 + 5 + len(ADVERSARIAL)
    assert all(row.status != "not graded" for row in rows.values())


@posix_only
def test_csv_has_a_row_per_submission_and_a_column_per_question(graded):
    rows, reports, _ = graded
    for name in ASSIGNMENTS:
        with open(reports / f"{name}.csv", newline="") as handle:
            table = list(csv.DictReader(handle))
        expected = sorted(r.path.name for r in rows.values() if r.assignment == name)
        assert sorted(line["submission"] for line in table) == expected
        for line in table:
            row = rows[line["submission"]]
            assert set(master_questions(name)) <= set(line)
            assert float(line["total"]) == row.total == sum(float(line[q]) for q in master_questions(name))
            assert line["status"] == row.status


@posix_only
def test_submission_time_limit_kills_the_grading_process_tree(built, tmp_path):
    out, _ = built
    folder = tmp_path / "slow"
    folder.mkdir()
    shutil.copy(out / "hw1_vae" / "autograder" / "hw1_vae.ipynb", folder / "hw1_slow.ipynb")
    started = time.time()
    (row,) = homework.grade(folder, out=tmp_path / "grades", autograders=out, time_limit=2)
    assert time.time() - started < 30
    assert row.status.startswith("timed out") and row.total == 0
    with open(tmp_path / "grades" / "hw1_vae.csv", newline="") as handle:
        (line,) = list(csv.DictReader(handle))
    assert line["status"].startswith("timed out")


@posix_only
def test_kill_tree_reaches_a_grandchild_in_its_own_session(tmp_path):
    import os
    import subprocess
    psutil = pytest.importorskip("psutil")
    marker = "test-" + str(os.getpid())
    script = ("import subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', 'while True: pass'], start_new_session=True)\n"
              "time.sleep(60)\n")
    env = dict(os.environ, **{homework._RUN_MARKER: marker})
    parent = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    deadline = time.time() + 20
    while time.time() < deadline and not psutil.Process(parent.pid).children():
        time.sleep(0.1)
    (child,) = psutil.Process(parent.pid).children()
    homework._kill_tree(parent.pid, marker)
    parent.wait(timeout=10)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_bad_arguments_raise_value_errors(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        homework.grade(tmp_path / "missing")
    with pytest.raises(ValueError, match="assignment must be one of"):
        homework.grade(tmp_path, assignment="hw9")
    with pytest.raises(ValueError, match="time_limit must be a positive"):
        homework.grade(tmp_path, time_limit=0)
    with pytest.raises(ValueError, match="no .ipynb or .zip submissions"):
        homework.grade(tmp_path)
    with pytest.raises(ValueError, match="no master notebook"):
        homework.build(["hw9"], out=tmp_path)


def test_assignment_detection_from_metadata_then_file_name():
    notebook = json.dumps({"metadata": {"otter": {"assignment_name": "hw2_gan"}}, "cells": []}).encode()
    assert homework.detect_assignment(Path("anything.ipynb"), notebook) == "hw2_gan"
    assert homework.detect_assignment(Path("alice_hw3.ipynb"), b"not json") == "hw3_vision_tasks"
    assert homework.detect_assignment(Path("hw1_vae (1).ipynb"), b"{}") == "hw1_vae"
    assert homework.detect_assignment(Path("hw10.ipynb"), b"{}") is None


# --------------------------------------------------------------------------- float32, tampering, library answers
@posix_only
def test_answers_computed_in_float32_get_full_marks(graded):
    rows, _, _ = graded
    for name in ASSIGNMENTS:
        row = rows[f"{name}_float32.ipynb"]
        assert row.status == "ok", row.status
        assert row.total == row.possible, f"{name} in float32: {row.total}/{row.possible}; failed: {row.failed_checks}"


@posix_only
def test_tampering_and_library_answers_are_flagged_never_scored(graded):
    rows, reports, _ = graded
    for name, reason in FLAG_REASONS.items():
        row = rows[name]
        assert row.status.startswith("flagged: ") and reason in row.status, (name, row.status)
        assert row.total == 0 and row.possible > 0, (name, row.total)
        with open(reports / f"{row.assignment}.csv", newline="") as handle:
            (line,) = [line for line in csv.DictReader(handle) if line["submission"] == name]
        assert line["status"].startswith("flagged") and float(line["total"]) == 0
    # the forgeries worked inside the notebook's kernel: the flag names the checks they faked
    assert "psnr - 2" in rows["hw3_forge_runner.ipynb"].status
    assert "gram_style_loss - 1" in rows["hw3_forge_check.ipynb"].status


def test_answers_source_keeps_definitions_and_what_they_use_only():
    notebook = _minimal_notebook(
        "import torch\nSCALE = 2.0\nUNUSED = print('top-level call')\nimport otter\notter.x = 1",
        "def psnr(prediction, target):\n    return SCALE * helper(torch.as_tensor(prediction))",
        "helper = make_helper(OFFSET)\nOFFSET = 3\ntorch.allclose = None\nfor i in range(3):\n    pass",
        "psnr_fast = psnr\npsnr = psnr_fast",
        "%matplotlib inline\nx = (")
    source, notes = homework.answers_source(notebook, answers=["psnr"])
    kept = [line for line in source.splitlines() if line and not line.startswith(" ")]
    assert kept == ["import torch", "SCALE = 2.0", "def psnr(prediction, target):",
                    "helper = make_helper(OFFSET)", "OFFSET = 3", "psnr_fast = psnr", "psnr = psnr_fast"], kept
    assert len(notes) == 1 and "cell 4 does not parse" in notes[0]


def test_grading_says_it_needs_linux_or_macos_elsewhere(tmp_path, monkeypatch):
    (tmp_path / "hw1_vae.ipynb").write_text("{}")
    monkeypatch.setattr(homework, "posix_signals_available", lambda: False)
    with pytest.raises(RuntimeError, match="grading needs Linux or macOS"):
        homework.grade(tmp_path)


# --------------------------------------------------------------------------- resuming an interrupted run
def _saved_rows(grades):
    return {p.name: p.read_text() for p in (grades / ".results").glob("*.json")} if (grades / ".results").is_dir() else {}


def _interrupt_after_new_rows(command, grades, how, at_least, env):
    """Start a grading run, wait until it has saved ``at_least`` rows in all, then interrupt it with ``how``."""
    # SIGINT at its default in the child, whatever the test process inherited (an ignored SIGINT would be inherited)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 400
    while len(_saved_rows(grades)) < at_least and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(how)
    output = process.communicate(timeout=60)[0].decode(errors="replace")
    return process.returncode, output


@posix_only
def test_interrupted_grading_resumes_without_losing_or_repeating_a_row(built, tmp_path):
    out, _ = built
    folder = tmp_path / "submissions"
    folder.mkdir()
    for i in range(4):
        # the last two take longer, so that the first run cannot end before it is interrupted
        slow = "import time\ntime.sleep(15)" if i >= 2 else "# quick"
        nbformat.write(_minimal_notebook(f"# submission {i}", slow, RIGHT_PSNR if i % 2 else WRONG_PSNR),
                       folder / f"hw3_s{i}.ipynb")
    grades = tmp_path / "grades"
    command = [sys.executable, str(ROOT / "homework" / "homework.py"), "grade", str(folder), "--autograders", str(out),
               "--out", str(grades), "--jobs", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    code, output = _interrupt_after_new_rows(command, grades, signal.SIGINT, 1, env)        # Ctrl-C
    assert code == 130 and "interrupted" in output, output[-2000:]
    first = _saved_rows(grades)
    assert 1 <= len(first) < 4, sorted(first)
    code, output = _interrupt_after_new_rows(command, grades, signal.SIGKILL, len(first) + 1, env)   # killed
    second = _saved_rows(grades)
    assert code == -signal.SIGKILL or (code == 0 and len(second) == 4), (code, output[-2000:])
    assert all(second[name] == text for name, text in first.items()), "a saved row was graded again"
    assert len(first) < len(second) <= 4
    rows = homework.grade(folder, out=grades, autograders=out, jobs=2)
    final = _saved_rows(grades)
    assert all(final[name] == text for name, text in second.items()), "a saved row was graded again"
    assert len(final) == 4
    with open(grades / "hw3_vision_tasks.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert sorted(line["submission"] for line in table) == [f"hw3_s{i}.ipynb" for i in range(4)]
    for line in table:
        odd = int(line["submission"][5]) % 2
        assert line["status"] == "ok" and float(line["psnr"]) == (5 if odd else 0), line
    assert {r.path.name: r.total for r in rows} == {line["submission"]: float(line["total"]) for line in table}


# --------------------------------------------------------------------------- one definition per idea
def _master_solution(name, *functions):
    """The master's solution code cells that define ``functions``, executed in the library's company."""
    import torch
    import torch.nn.functional as F
    namespace = {"torch": torch, "F": F, "math": __import__("math")}
    for cell in master_cells(name):
        if cell.cell_type == "code" and any(f"def {f}(" in cell.source for f in functions):
            exec(cell.source, namespace)
    return namespace


def test_hw3_style_loss_and_psnr_agree_with_notebook_08_and_the_library():
    import torch
    from lecture_utils import losses, metrics
    hw3 = _master_solution("hw3_vision_tasks", "gram_matrix", "psnr")
    torch.manual_seed(0)
    generated = {"a": torch.randn(2, 3, 8, 8), "b": torch.randn(2, 5, 4, 4)}
    style = {"a": torch.randn(1, 3, 10, 9), "b": torch.randn(1, 5, 6, 5)}
    grams = {k: losses.gram_matrix(v) for k, v in style.items()}
    # the library's Gatys loss (with its 1/4 and default weights 1/L) is HW3's style loss
    library = losses.style_loss(generated, grams)
    homework_value = hw3["style_loss"](list(generated.values()), [s.expand(2, -1, -1, -1) for s in style.values()])
    assert torch.allclose(homework_value, library, rtol=1e-5), (homework_value, library)
    # notebook 08's formula, E_l = 1 / (4 N_l^2) sum_ij (G - A)^2 with normalised Gram matrices
    explicit = sum(0.5 * ((losses.gram_matrix(generated[k]) - grams[k]) ** 2).sum() / (4 * grams[k].shape[1] ** 2 * 2)
                   for k in generated)
    assert torch.allclose(library, explicit, rtol=1e-5)
    # PSNR: per image in HW3, averaged by the library; an exact copy is +inf in both
    target = torch.rand(3, 3, 8, 8)
    prediction = (target + 0.05 * torch.randn(3, 3, 8, 8)).clamp(0, 1)
    per_image = hw3["psnr"](prediction, target)
    assert abs(per_image.mean().item() - metrics.psnr(prediction, target)) < 1e-3
    assert torch.isinf(hw3["psnr"](target, target)).all() and metrics.psnr(target, target) == float("inf")


def test_hw3_measures_its_baselines_in_the_hole_and_says_the_heat_equation_is_no_diffusion_model():
    text = "\n".join(c.source for c in master_cells("hw3_vision_tasks"))
    assert "not a diffusion model" in text and "heat" in text
    baseline = next(c.source for c in master_cells("hw3_vision_tasks") if "mean_fill" in c.source and c.cell_type == "code")
    assert "metrics.psnr(filled, image, mask=hole)" in baseline and "masked_l1(filled, image, hole)" in baseline
    assert "psnr(filled, image)" not in baseline.replace("metrics.psnr(filled, image, mask=hole)", "")

#!/usr/bin/env python3
"""Autograded homework for course staff: build the assignments, grade submissions offline.

    python3 course.py homework build [--check]              student versions + autograders -> build/homework/
    python3 course.py homework grade SUBMISSIONS/ [--jobs N] scores per question -> build/homework/grades/SUBMISSIONS/
    python3 course.py release OUT                            the student edition of the whole course (homework/release.py)

(or ``.venv/bin/python homework/homework.py build|grade ...`` in the course's environment).

The master notebooks ``homework/hw*.ipynb`` (every one of them: a new ``hwN_topic.ipynb`` is picked up
as it is) are in otter-grader's assign format: solutions between ``# BEGIN SOLUTION`` /
``# END SOLUTION``, public tests (students run them with ``grader.check``) and hidden tests
(``hidden: true``).  A question's markdown may name library functions it must not use, in a bullet
``* **Not allowed:** `lecture_utils.module.name`, ...``: the grader flags an answer that uses them.
``build`` runs ``otter assign`` on each and writes

    build/homework/<hw>/student/            what students get: notebook without solutions + public tests
    build/homework/<hw>/autograder/         solutions notebook, all tests, otter's autograder zip
    build/homework/<hw>-student.zip         the student version as one file
    build/homework/<hw>-autograder.zip      the autograder (Gradescope can use it as is; ``grade`` uses it offline)

``grade`` grades every ``.ipynb`` (or otter export ``.zip``) in a folder without Docker, ``--jobs``
submissions at a time, each in its own processes with its own private copy of the submission and of
the autograder, under three time limits: per check (a test case), per notebook cell, per submission.
Each submission is graded twice: otter runs the notebook and its checks in the notebook's kernel,
then a fresh process runs the same checks against the notebook's definitions only (its imports,
functions, classes and the assignments they use), with the grading machinery fingerprinted before
and after every check.  A check counts when it passes in both.  The row says ``flagged: ...``
instead of a score when the two disagree (the kernel's results were forged, or an answer depends on
top-level code that is not a definition), when a check changed the grading machinery (otter, the
test runner, the modules the tests use, the time-limit signal handler) or when an answer uses the
library function its question asks for.  Each finished submission is saved at once (one JSON file
in ``<out>/.results/``) and the CSV is rebuilt atomically, so a run that is interrupted and started
again grades only what has no row yet.  This is not a sandbox: a submission runs with the grader's
permissions (use ``otter grade`` with Docker, or a throw-away account, for untrusted code), and a
determined attacker who reads this file can defeat checks that run in the same process as their
code.  The time limits use POSIX signals: grading needs Linux or macOS (``build`` runs anywhere).
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures
import csv
import hashlib
import hmac
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HOMEWORK = Path(__file__).resolve().parent
ROOT = HOMEWORK.parent
BUILD = ROOT / "build" / "homework"
ASSIGNMENTS = tuple(sorted(p.stem for p in HOMEWORK.glob("hw*.ipynb")))   # every master notebook
RULES_FILE = "course_rules.json"     # in each autograder zip: questions, their answers, what they may not use

TIME_LIMIT_S = 600         # a whole submission
CELL_TIME_LIMIT_S = 120    # one notebook cell
CHECK_TIME_LIMIT_S = 30    # one check (test case)

# Cells of the grader itself, exempt from the per-cell limit: otter's set-up cell, the check time
# limit below, and otter's last cell, which runs every check not yet run (each under the per-check
# limit, so that cell as a whole is bounded by the submission's limit only).
_GRADER_CELL_MARKS = ("init_grading_mode(", "_install_check_time_limit(", "GradingResults(Checker.get_results())")
_RUN_MARKER = "LECTURE_UTILS_GRADING_RUN"


# jsonschema (which nbformat and otter import) loads ``rfc3987_syntax`` when it is installed (Jupyter's
# ``jsonschema[format-nongpl]`` installs it), and that module builds about 35 Earley parsers at import: 2.7 s of
# every grading process and of every graded notebook's kernel on a 2-core CPU, for the "iri" string format that no
# notebook schema uses.  Marked absent, jsonschema leaves out that one format checker (its issue 1428).  The same
# line runs here (_skip_slow_iri_checker) and as the first cell of every graded notebook's kernel.
_SKIP_SLOW_IRI_CHECKER = 'import sys\nsys.modules.setdefault("rfc3987_syntax", None)'


def _skip_slow_iri_checker() -> None:
    exec(_SKIP_SLOW_IRI_CHECKER, {})


def say(message: str) -> None:
    print(f"[homework] {message}", flush=True)


# --------------------------------------------------------------------------- the masters
_NOT_ALLOWED = "**Not allowed:**"


def read_master(path: Path) -> dict:
    """What a master notebook says about itself: ``{"name", "title", "questions": [...]}``.

    Each question: ``{"name", "points", "answers": [functions/classes it defines], "forbidden":
    [dotted names of library objects it must not use]}``, the forbidden names read from the question's
    ``* **Not allowed:** `a.b`, `c.d` ...`` bullet (continued on indented lines).
    """
    notebook = json.loads(Path(path).read_text())
    cells = [(c["cell_type"], "".join(c["source"])) for c in notebook["cells"]]
    title = next((src.splitlines()[0].lstrip("# ").strip() for kind, src in cells
                  if kind == "markdown" and src.startswith("# ")), Path(path).stem)
    questions, current = [], None
    for kind, src in cells:
        if kind == "raw" and src.startswith("# BEGIN QUESTION"):
            config = dict(line.split(":", 1) for line in src.splitlines()[1:] if ":" in line)
            current = {"name": config["name"].strip(), "points": float(config.get("points", 0)),
                       "answers": [], "forbidden": []}
            questions.append(current)
        elif kind == "raw" and src.startswith("# END QUESTION"):
            current = None
        elif current is not None and kind == "markdown":
            lines = src.splitlines()
            for i, line in enumerate(lines):
                if _NOT_ALLOWED in line:
                    bullet = [line] + [l for l in _takewhile_indented(lines[i + 1:])]
                    current["forbidden"] += re.findall(r"`(lecture_utils(?:\.\w+)+)`", " ".join(bullet))
        elif current is not None and kind == "code" and "# BEGIN SOLUTION" in src:
            current["answers"] += [node.name for node in ast.parse(src).body
                                   if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return {"name": Path(path).stem, "title": title, "questions": questions}


def _takewhile_indented(lines):
    for line in lines:
        if not line.startswith("  "):
            return
        yield line


def resolve_dotted(name: str):
    """(owner, attribute, object) of a dotted name such as ``lecture_utils.models.vae.VAE.reparameterise``."""
    import importlib

    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        rest = parts[split:]
        if not rest:
            raise ValueError(f"{name!r} is a module; name a function or class")
        for attribute in rest[:-1]:
            owner = getattr(owner, attribute)
        return owner, rest[-1], getattr(owner, rest[-1])
    raise ValueError(f"cannot import {name!r}")


# --------------------------------------------------------------------------- build
def build(assignments=ASSIGNMENTS, out: Path = BUILD, check: bool = False, quiet: bool = True) -> dict[str, dict[str, Path]]:
    """Run ``otter assign`` on each master notebook; returns {assignment: {"student", "autograder", "zip", "student_zip"}}.

    The library ``lecture_utils`` is added to each autograder zip (``files/``), so that the zip also
    works on Gradescope, whose image installs ``homework/requirements.txt``.  With ``check``, the
    solutions are graded by :func:`grade` and anything short of full marks raises RuntimeError.
    """
    from otter.assign import main as otter_assign

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    built = {}
    for name in assignments:
        master = HOMEWORK / f"{name}.ipynb"
        if not master.is_file():
            raise ValueError(f"assignment {name!r}: no master notebook {master}; expected one of {list(ASSIGNMENTS)}")
        target = out / name
        shutil.rmtree(target, ignore_errors=True)
        started = time.time()
        output = io.StringIO()
        try:
            if quiet:
                from contextlib import redirect_stderr, redirect_stdout
                with redirect_stdout(output), redirect_stderr(output):
                    otter_assign(str(master), str(target), no_pdfs=True, no_run_tests=True)
            else:
                otter_assign(str(master), str(target), no_pdfs=True, no_run_tests=True)
        except Exception as error:
            print(output.getvalue())
            raise RuntimeError(f"otter assign failed on {master.name}: {error}") from error
        zips = sorted((target / "autograder").glob(f"{name}-autograder_*.zip"))
        if len(zips) != 1:
            raise RuntimeError(f"otter assign wrote {len(zips)} autograder zips for {name}; expected 1")
        autograder_zip = out / f"{name}-autograder.zip"
        rules = read_master(master)
        for question in rules["questions"]:
            for dotted in question["forbidden"]:
                try:
                    resolve_dotted(dotted)
                except (ValueError, AttributeError) as error:
                    raise RuntimeError(f"{master.name}, question {question['name']}: the 'Not allowed' name "
                                       f"{dotted} is not in the library ({error})") from error
        _copy_with_library(zips[0], autograder_zip, rules)
        student = target / "student"
        _check_student_release(student, name)
        student_zip = out / f"{name}-student.zip"
        with zipfile.ZipFile(student_zip, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(student.rglob("*")):
                if path.is_file():
                    archive.write(path, Path(name) / path.relative_to(student))
        built[name] = {"student": student, "autograder": target / "autograder", "zip": autograder_zip,
                       "student_zip": student_zip}
        say(f"{name}: {student_zip.name} (student release), {autograder_zip.name} ({time.time() - started:.1f} s)")
    say(f"student releases and autograders are in {out}")
    if check:
        solutions = Path(tempfile.mkdtemp(prefix="homework-solutions-"))
        try:
            for name in built:
                shutil.copy(built[name]["autograder"] / f"{name}.ipynb", solutions / f"{name}.ipynb")
            report = grade(solutions, out=out / "grades" / "solutions", autograders=out)
        finally:
            shutil.rmtree(solutions, ignore_errors=True)
        short = [f"{r.assignment}: {r.total:g}/{r.possible:g} ({r.status})" for r in report if r.total != r.possible]
        if short:
            raise RuntimeError("the solutions do not get full marks: " + "; ".join(short))
        say("check: every solution notebook gets full marks")
    return built


def _copy_with_library(source: Path, target: Path, rules: dict) -> None:
    """Copy otter's autograder zip, adding lecture_utils/ under files/ (copied next to the submission)
    and the course's rules (questions, answers, forbidden library names) as course_rules.json."""
    library = ROOT / "lecture_utils"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for item in original.infolist():
            copy.writestr(item, original.read(item.filename))
        copy.writestr(RULES_FILE, json.dumps(rules, indent=1))
        for path in sorted(library.rglob("*.py")):
            copy.write(path, Path("files") / path.relative_to(library.parent))


def _check_student_release(student: Path, name: str) -> None:
    """Refuse a student release that still holds solution markers or hidden tests."""
    for path in student.rglob("*"):
        if path.is_file() and path.suffix in (".ipynb", ".py"):
            text = path.read_text()
            for mark in ("BEGIN SOLUTION", "END SOLUTION", "hidden=True", "BEGIN TEST CONFIG"):
                if mark in text:
                    raise RuntimeError(f"{name}: the student release file {path} contains {mark!r}")


# --------------------------------------------------------------------------- grade: the parent
@dataclass
class Submission:
    """One graded submission: a row of the scores CSV."""

    path: Path
    assignment: str | None
    status: str = "not graded"
    scores: dict[str, float] = field(default_factory=dict)
    possible_by_question: dict[str, float] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    log_tail: str = ""
    sha256: str = ""

    @property
    def total(self) -> float:
        return sum(self.scores.values())

    @property
    def possible(self) -> float:
        return sum(self.possible_by_question.values())

    @property
    def failed_checks(self) -> list[str]:
        return [f"{c['name']}{' (hidden)' if c['hidden'] else ''}: {_last_line(c['message'])}"
                for c in self.checks if not c["passed"]]

    def to_json(self, folder: Path) -> dict:
        return {"submission": str(self.path.relative_to(folder)), "assignment": self.assignment, "status": self.status,
                "scores": self.scores, "possible_by_question": self.possible_by_question, "checks": self.checks,
                "seconds": self.seconds, "log_tail": self.log_tail, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: dict, folder: Path) -> "Submission":
        return cls(path=folder / data["submission"], assignment=data["assignment"], status=data["status"],
                   scores=data["scores"], possible_by_question=data["possible_by_question"], checks=data["checks"],
                   seconds=data["seconds"], log_tail=data["log_tail"], sha256=data["sha256"])


def _last_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[-1] if lines else message


def questions_of(autograder: bytes) -> dict[str, float]:
    """{question: points} read from the test files of an autograder zip."""
    questions = {}
    with zipfile.ZipFile(io.BytesIO(autograder)) as archive:
        for item in sorted(archive.namelist()):
            if re.fullmatch(r"tests/[^/]+\.py", item):
                text = archive.read(item).decode()
                name = re.search(r'^name = "(.+)"$', text, re.M)
                points = re.search(r"^points = ([0-9.]+)$", text, re.M)
                if name is None or points is None:
                    raise ValueError(f"autograder test {item} has no name/points lines")
                questions[name.group(1)] = float(points.group(1))
    return questions


def _notebook_bytes(path: Path, payload: bytes) -> bytes:
    """The notebook of a submission: the file itself, or the one .ipynb inside an otter export zip."""
    if path.suffix != ".zip":
        return payload
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        notebooks = [n for n in archive.namelist() if n.endswith(".ipynb") and "checkpoint" not in n]
        if len(notebooks) != 1:
            raise ValueError(f"{path.name}: expected one .ipynb in the zip, found {len(notebooks)}")
        return archive.read(notebooks[0])


def detect_assignment(path: Path, payload: bytes) -> str | None:
    """The assignment a submission belongs to: otter's notebook metadata, else its file name."""
    try:
        metadata = json.loads(_notebook_bytes(path, payload)).get("metadata", {})
        named = metadata.get("otter", {}).get("assignment_name")
        if named in ASSIGNMENTS:
            return named
    except (ValueError, zipfile.BadZipFile, AttributeError):
        pass
    lowered = path.name.lower()
    for name in ASSIGNMENTS:
        if name in lowered:
            return name
    for name in ASSIGNMENTS:
        if re.search(rf"(^|[^a-z0-9]){name.split('_')[0]}([^0-9]|$)", lowered):
            return name
    return None


def find_submissions(folder: Path) -> list[Path]:
    """Every .ipynb and .zip under ``folder`` (checkpoints excluded), sorted by path."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".ipynb", ".zip")
                  and ".ipynb_checkpoints" not in p.parts)


def posix_signals_available() -> bool:
    """Grading's time limits need SIGALRM and setitimer (Linux, macOS)."""
    return os.name == "posix" and hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")


def _atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a unique temporary file next to ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _result_file(out: Path, relative: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", relative)[:80]
    return out / ".results" / f"{safe}-{hashlib.sha256(relative.encode()).hexdigest()[:12]}.json"


def grade(folder, out=None, assignment: str | None = None, autograders=BUILD,
          time_limit: float = TIME_LIMIT_S, cell_time_limit: float = CELL_TIME_LIMIT_S,
          check_time_limit: float = CHECK_TIME_LIMIT_S, jobs: int = 1) -> list[Submission]:
    """Grade every submission in ``folder``; write ``<out>/<assignment>.csv`` and feedback; return the rows.

    ``autograders``: the folder holding ``<hw>-autograder.zip`` (built first when missing).
    ``assignment``: grade everything against this assignment instead of detecting it per file.
    ``jobs``: how many submissions are graded at the same time (each in its own processes).
    A submission that already has a saved row in ``<out>/.results/`` (same file content) is not
    graded again: an interrupted run picks up where it stopped.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ValueError(f"folder {str(folder)!r} must be a folder of submitted notebooks")
    if assignment is not None and assignment not in ASSIGNMENTS:
        raise ValueError(f"assignment must be one of {list(ASSIGNMENTS)}, got {assignment!r}")
    for name, value in [("time_limit", time_limit), ("cell_time_limit", cell_time_limit), ("check_time_limit", check_time_limit)]:
        if not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a positive int (submissions graded at a time), got {jobs!r}")
    if not posix_signals_available():
        raise RuntimeError("grading needs Linux or macOS: its time limits use POSIX signals (SIGALRM), which "
                           f"this platform ({sys.platform}) lacks; 'build' and the student edition work everywhere")
    out = Path(out).resolve() if out is not None else BUILD / "grades" / folder.name
    autograders = Path(autograders).resolve()

    # Read everything first: nothing a submission does to the disk can reach the others' grading.
    paths = find_submissions(folder)
    if not paths:
        raise ValueError(f"no .ipynb or .zip submissions in {folder}")
    payloads = {p: p.read_bytes() for p in paths}
    rows = [Submission(p, assignment or detect_assignment(p, payloads[p]), sha256=hashlib.sha256(payloads[p]).hexdigest())
            for p in paths]
    found = {r.assignment for r in rows if r.assignment}
    if len(found) == 1:                       # a folder of one assignment: unrecognised files belong to it
        for row in rows:
            row.assignment = row.assignment or next(iter(found))
    needed = sorted(found)
    missing = [n for n in needed if not (autograders / f"{n}-autograder.zip").is_file()]
    if missing:
        say(f"no autograder for {', '.join(missing)} in {autograders}: building it first")
        build(missing, out=autograders)
    zips = {n: (autograders / f"{n}-autograder.zip").read_bytes() for n in needed}
    questions = {n: questions_of(zips[n]) for n in needed}

    # Rows saved by an earlier run (same file, same content, same assignment) are kept as they are.
    todo = []
    for index, row in enumerate(rows):
        relative = str(row.path.relative_to(folder))
        try:
            saved = Submission.from_json(json.loads(_result_file(out, relative).read_text()), folder)
        except (OSError, ValueError, KeyError, TypeError):
            saved = None
        if saved is not None and saved.sha256 == row.sha256 and saved.assignment == row.assignment:
            rows[index] = saved
        else:
            todo.append(row)
    kept = f"; {len(rows) - len(todo)} graded before, kept" if len(todo) < len(rows) else ""
    say(f"grading {len(todo)} submission(s) from {folder}, {jobs} at a time{kept} (limits: {time_limit:g} s per "
        f"submission, {cell_time_limit:g} s per cell, {check_time_limit:g} s per check)")
    lock = threading.Lock()
    stop = threading.Event()
    todo_ids = {id(r) for r in todo}
    _write_reports(rows, out, folder, feedback_for=[r for r in rows if id(r) not in todo_ids])

    def grade_row(row: Submission) -> None:
        if stop.is_set():
            return
        if row.assignment is None:
            row.status = "error: cannot tell the assignment (name the file hwN_... or use --assignment)"
        else:
            row.possible_by_question = dict(questions[row.assignment])
            row.scores = {q: 0.0 for q in row.possible_by_question}
            _grade_in_own_process(row, payloads[row.path], zips[row.assignment], time_limit, cell_time_limit,
                                  check_time_limit, stop)
        if stop.is_set():                     # interrupted: this row is not finished, save nothing
            row.status, row.scores, row.checks = "not graded", {q: 0.0 for q in row.scores}, []
            return
        with lock:
            relative = str(row.path.relative_to(folder))
            _atomic_write(_result_file(out, relative), json.dumps(row.to_json(folder)))
            _write_reports(rows, out, folder, feedback_for=[row])
            say(f"{row.assignment or '?'}  {relative}: {row.total:g}/{row.possible:g}  {row.status}  ({row.seconds:.0f} s)")

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = [pool.submit(grade_row, row) for row in todo]
        for future in concurrent.futures.as_completed(futures):
            future.result()
    except BaseException:                      # Ctrl-C (or an error): stop the running workers, keep what is saved
        stop.set()
        for future in futures:
            future.cancel()
        with _ACTIVE_LOCK:
            active = list(_ACTIVE)
        for pid, marker in active:
            _kill_tree(pid, marker)
        pool.shutdown(wait=True)
        say(f"interrupted: {sum(r.status != 'not graded' for r in rows)} of {len(rows)} rows are saved in {out}; "
            "run the same command again to grade the rest")
        raise
    pool.shutdown(wait=True)
    say(f"scores in {out}")
    return rows


_ACTIVE: set = set()                 # (pid, marker) of the grading processes running now
_ACTIVE_LOCK = threading.Lock()


def _run_worker(command, private: Path, env: dict, log_name: str, timeout: float, marker: str,
                stop: threading.Event, stdin: bytes = b"") -> int | None:
    """Run one grading process in its own session; its exit code, or None past ``timeout``."""
    with open(private / log_name, "wb") as log:
        worker = subprocess.Popen(command, cwd=private, env=env, stdin=subprocess.PIPE, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        with _ACTIVE_LOCK:
            _ACTIVE.add((worker.pid, marker))
        try:
            try:
                worker.stdin.write(stdin)
                worker.stdin.close()
            except OSError:
                pass
            deadline = time.time() + max(timeout, 0.1)
            code = None
            while time.time() < deadline and not stop.is_set():
                try:
                    code = worker.wait(timeout=min(0.5, max(deadline - time.time(), 0.01)))
                    break
                except subprocess.TimeoutExpired:
                    continue
            _kill_tree(worker.pid, marker)
            worker.wait()
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.discard((worker.pid, marker))
    return code


def _grade_in_own_process(row: Submission, payload: bytes, autograder: bytes, time_limit: float,
                          cell_time_limit: float, check_time_limit: float,
                          stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    private = Path(tempfile.mkdtemp(prefix="homework-grade-"))
    started = time.time()
    marker = uuid.uuid4().hex
    try:
        (private / "tmp").mkdir()
        (private / "autograder.zip").write_bytes(autograder)
        submission = private / ("submission" + row.path.suffix)
        submission.write_bytes(payload)
        result_path = private / "result.json"
        # Offline, CPU only, one thread: the same conditions for every submission (and tiny tensors
        # run faster on one thread than on two that spin-wait for each other on a busy machine).
        env = dict(os.environ, LECTURE_UTILS_OFFLINE="1", MPLBACKEND="Agg", TMPDIR=str(private / "tmp"),
                   CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONDONTWRITEBYTECODE="1", **{_RUN_MARKER: marker})
        command = [sys.executable, str(Path(__file__).resolve()), "_grade-one", str(private / "autograder.zip"),
                   str(submission), str(result_path), "--assignment", row.assignment,
                   "--cell-time-limit", str(cell_time_limit), "--check-time-limit", str(check_time_limit)]
        code = _run_worker(command, private, env, "worker.log", time_limit, marker, stop)
        row.log_tail = _tail(private / "worker.log")
        if stop.is_set():
            return
        if code is None:
            row.status = f"timed out: stopped after the submission time limit of {time_limit:g} s"
            return
        try:
            result = json.loads(result_path.read_text())
        except (OSError, ValueError):
            row.status = f"error: the grading process ended with code {code} without results: {_last_line(row.log_tail) or 'no output'}"
            return
        if result.get("status") != "ok":
            row.status = f"error: {result.get('error', 'unknown')}"
            return
        kernel = {}
        for question, outcome in result["questions"].items():
            for check in outcome["checks"]:
                kernel[check["name"]] = dict(check, question=question)

        # The same checks again, in a fresh process that runs only the notebook's definitions.
        key = os.urandom(32)
        verified_path = private / "verified.json"
        command = [sys.executable, str(Path(__file__).resolve()), "_verify-one", str(private / "autograder.zip"),
                   str(submission), str(verified_path), "--check-time-limit", str(check_time_limit)]
        code = _run_worker(command, private, env, "verify.log", time_limit - (time.time() - started), marker, stop, key)
        if stop.is_set():
            return
        verify_log = _tail(private / "verify.log")
        verified = _read_verified(verified_path, key)
        if verified is None:
            why = "it ran out of the submission time limit" if code is None else f"it ended with code {code}"
            _flag(row, [f"the fresh-process re-run of the checks gave no valid results ({why}: "
                        f"{_last_line(verify_log) or 'no output'})"], kernel)
            row.log_tail = verify_log
            return
        fresh = {check["name"]: check for check in verified["checks"]}
        flags = list(verified["flags"])
        if set(fresh) != set(kernel):
            flags.append(f"the notebook's kernel reported the checks {sorted(set(kernel) ^ set(fresh))} "
                         "that the autograder does not have, or left some out")
        forged = sorted(name for name in kernel if kernel[name]["passed"] and name in fresh and not fresh[name]["passed"])
        if forged:
            flags.append(f"{len(forged)} check(s) passed in the notebook's kernel but fail in a fresh process that "
                         f"runs only the notebook's definitions ({', '.join(forged)}): the grading was tampered with, "
                         "or an answer depends on top-level code that is not a definition")
        row.checks = [dict(fresh[name], passed=fresh[name]["passed"] and kernel.get(name, {}).get("passed", False),
                           message=fresh[name]["message"] if not fresh[name]["passed"] else kernel.get(name, fresh[name])["message"])
                      for name in sorted(fresh)]
        if flags:
            _flag(row, flags, kernel)
            return
        row.status = "ok"
        for check in row.checks:
            if check["passed"] and check["question"] in row.scores:
                row.scores[check["question"]] += float(check["points"] or 0)
        for question in row.scores:
            row.scores[question] = min(row.scores[question], row.possible_by_question[question])
    finally:
        row.seconds = time.time() - started
        _kill_tree(None, marker)
        shutil.rmtree(private, ignore_errors=True)


def _flag(row: Submission, flags: list[str], kernel: dict) -> None:
    """No score: the row says why (the feedback file lists every check as the kernel reported it)."""
    row.status = "flagged: " + "; ".join(flags)
    row.scores = {q: 0.0 for q in row.scores}
    if not row.checks:
        row.checks = [dict(check, passed=False, message="(flagged) the kernel reported: " + check["message"])
                      for check in kernel.values()]


def _sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def _read_verified(path: Path, key: bytes) -> dict | None:
    """The verification's results, if they carry a valid signature made with this run's key."""
    try:
        envelope = json.loads(path.read_text())
        payload = envelope["payload"].encode()
        if not hmac.compare_digest(envelope["signature"], _sign(key, payload)):
            return None
        return json.loads(payload)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _kill_tree(pid: int | None, marker: str | None = None) -> None:
    """Kill a process, its descendants (the kernel runs in its own session), and every process that
    carries the grading run's marker in its environment (orphans a submission left behind)."""
    try:
        import psutil
    except ImportError:                                   # without psutil: the worker's process group
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        return
    victims = []
    if pid is not None:
        try:
            parent = psutil.Process(pid)
            victims = parent.children(recursive=True) + [parent]
        except psutil.Error:
            pass
    if marker is not None:
        for process in psutil.process_iter():
            try:
                if process.pid != os.getpid() and process.environ().get(_RUN_MARKER) == marker:
                    victims.append(process)
            except psutil.Error:
                continue
    for process in victims:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(victims, timeout=10)


def _write_reports(rows: list[Submission], out: Path, folder: Path, feedback_for: list[Submission] | None = None) -> None:
    """One CSV per assignment (a row per submission, a column per question) and a feedback file for
    each row of ``feedback_for`` (default: every graded row); every file written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    by_assignment: dict[str, list[Submission]] = {}
    for row in rows:
        by_assignment.setdefault(row.assignment or "unrecognised", []).append(row)
    for name, group in by_assignment.items():
        questions = next((list(r.possible_by_question) for r in group if r.possible_by_question), [])
        table = io.StringIO()
        writer = csv.writer(table)
        writer.writerow(["submission", "status", "total", "possible", *questions, "failed_checks", "seconds"])
        for row in group:
            writer.writerow([str(row.path.relative_to(folder)), row.status, f"{row.total:g}", f"{row.possible:g}",
                             *[f"{row.scores.get(q, 0.0):g}" for q in questions],
                             " | ".join(row.failed_checks), f"{row.seconds:.1f}"])
        _atomic_write(out / f"{name}.csv", table.getvalue())
        feedback = out / name
        feedback.mkdir(exist_ok=True)
        for row in group:
            if row.status == "not graded" or (feedback_for is not None and not any(row is r for r in feedback_for)):
                continue
            safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(row.path.relative_to(folder)))
            lines = [f"{row.path.relative_to(folder)}  ({name})", f"status: {row.status}",
                     f"score: {row.total:g} / {row.possible:g}", ""]
            for question, possible in row.possible_by_question.items():
                lines.append(f"{question}: {row.scores.get(question, 0.0):g} / {possible:g}")
                for check in (c for c in row.checks if c["name"].startswith(question + " - ")):
                    mark = "passed" if check["passed"] else "FAILED"
                    lines.append(f"  {check['name']}{' (hidden)' if check['hidden'] else ''}: {mark}")
                    if not check["passed"]:
                        lines.extend("      " + line for line in check["message"].splitlines())
            if not row.status.startswith("ok"):
                lines += ["", "last lines of the grading log:", row.log_tail]
            _atomic_write(feedback / f"{safe}.txt", "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- grade: the worker
# Prepended to the submission in the worker: every check (otter test case) runs under SIGALRM, so a
# check that loops forever fails with TimeoutError and the grading goes on.  It replaces otter's
# ExceptionTestFile.run with the same loop (the same traceback depth for otter's error messages).
_CHECK_LIMIT_CELL = '''\
# added by the course's grader, not part of the submission: a time limit for every check
def _install_check_time_limit(limit):
    import signal
    from otter.test_files import exception_test
    from otter.test_files.abstract_test import TestCaseResult

    def on_alarm(signum, frame):
        raise TimeoutError(f"stopped: this check ran longer than its time limit of {limit:g} s")

    def run(self, global_environment):
        self.test_case_results = []
        for tc in self.test_cases:
            passed, message = True, "\\u2705 Test case passed"
            previous = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, limit)
            try:
                tc.body.call_func(global_environment)
            except Exception as e:
                passed, message = False, "\\u274c Test case failed\\n" + self._generate_error_message(e)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
            self.test_case_results.append(TestCaseResult(test_case=tc, message=message, passed=passed))

    exception_test.ExceptionTestFile.run = run


_install_check_time_limit(LIMIT)
del _install_check_time_limit
'''


def _grade_one(autograder_zip: str, submission: str, result_path: str, assignment: str,
               cell_time_limit: float, check_time_limit: float) -> int:
    """Grade one submission in this (fresh) process with otter's local runner; write result_path."""
    result: dict = {"status": "error"}
    _exit_with_parent()
    try:
        import nbformat
        import nbconvert.preprocessors as preprocessors

        class TimedExecutePreprocessor(preprocessors.ExecutePreprocessor):
            """Each cell under the cell time limit (interrupted, then the next cell runs)."""

            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.interrupt_on_timeout = True
                self.timeout_func = lambda cell: None if any(m in cell.source for m in _GRADER_CELL_MARKS) else cell_time_limit

            def preprocess(self, nb, resources=None, km=None):
                # the kernel's first cell, before otter's set-up cells (which import nbformat)
                nb.cells.insert(0, nbformat.v4.new_code_cell(_SKIP_SLOW_IRI_CHECKER))
                return super().preprocess(nb, resources, km)

        preprocessors.ExecutePreprocessor = TimedExecutePreprocessor   # otter imports it at grading time

        submission = Path(submission)
        raw = _notebook_bytes(submission, submission.read_bytes())
        try:
            notebook = nbformat.reads(raw.decode("utf-8", errors="replace"), as_version=4)
        except Exception as error:
            raise ValueError(f"the submission is not a readable notebook ({type(error).__name__}: {error})") from error
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        notebook.metadata.setdefault("otter", {})
        if not notebook.metadata["otter"].get("assignment_name"):
            notebook.metadata["otter"]["assignment_name"] = assignment
        notebook.cells.insert(0, nbformat.v4.new_code_cell(_CHECK_LIMIT_CELL.replace("LIMIT", repr(float(check_time_limit)))))
        folder = Path(tempfile.mkdtemp(prefix="submission-"))
        prepared = folder / f"{assignment}.ipynb"
        nbformat.write(notebook, prepared)

        from otter.api import grade_submission

        results = grade_submission(str(prepared), autograder_zip, quiet=True)
        questions = {}
        for name, test_file in results.results.items():
            questions[name] = {"score": float(test_file.score), "possible": float(test_file.possible),
                               "checks": [{"name": r.test_case.name, "hidden": bool(r.test_case.hidden),
                                           "points": r.test_case.points, "passed": bool(r.passed),
                                           "message": str(r.message)}
                                          for r in test_file.test_case_results]}
        result = {"status": "ok", "questions": questions}
        if results.has_catastrophic_failure():     # e.g. the submission deleted its tests: no results to collect
            error = results.catastrophic_error
            result = {"status": "error", "error": f"otter could not collect the results ({type(error).__name__}: {error})"}
    except BaseException as error:          # report, never raise: the parent reads the file
        cause = "the notebook's kernel died (a crash, os._exit or out of memory): " if type(error).__name__ == "DeadKernelError" else ""
        result = {"status": "error", "error": f"{cause}{type(error).__name__}: {error}"}
    Path(result_path).write_text(json.dumps(result))
    return 0


def _exit_with_parent() -> None:
    """A daemon thread: when the grading run that started this process dies (SIGKILL), kill this
    process's children (the notebook's kernel) and exit, leaving no orphan behind."""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                try:
                    import psutil
                    for child in psutil.Process().children(recursive=True):
                        child.kill()
                except Exception:
                    pass
                os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


# --------------------------------------------------------------------------- grade: the verification
# The modules whose contents the checks rely on: their attributes (and the code of their functions)
# are fingerprinted before the submission's definitions run and after every check.
_WATCHED = ("builtins", "math", "random", "copy", "inspect", "signal", "json", "hmac", "hashlib", "functools",
            "numpy", "numpy.random", "torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.autograd",
            "torch.linalg", "torch.optim", "torch.distributions", "torch.distributions.normal",
            "torch.distributions.kl", "torch.distributions.bernoulli", "skimage.metrics")


def _watched_objects():
    import torch
    objects = [(name, vars(sys.modules[name])) for name in _WATCHED if name in sys.modules]
    objects += [("torch.Tensor", vars(torch.Tensor)), ("torch.nn.Module", vars(torch.nn.Module)),
                ("torch.optim.Optimizer", vars(torch.optim.Optimizer)), ("torch.optim.SGD", vars(torch.optim.SGD))]
    return objects


def _fingerprint(extra: dict) -> dict:
    """{(namespace, name): (id of the value, id of its code)} over the watched modules and classes,
    which modules sys.modules maps the watched names to, and ``extra`` (the harness's own functions)."""
    marks = {}
    for space, namespace in _watched_objects():
        for name, value in list(namespace.items()):
            marks[(space, name)] = (id(value), id(getattr(value, "__code__", None)), type(value).__name__ == "module")
            _SEEN[id(value)] = value                       # keep it alive: its id must not be reused
    for name in _WATCHED:
        marks[("sys.modules", name)] = (id(sys.modules.get(name)), 0, False)
    for name, value in extra.items():
        marks[("grader", name)] = (id(value), id(getattr(value, "__code__", None)), False)
    return marks


_SEEN: dict = {}
_TORCH_DIR = None


def _torch_wrapper_of(new_id: int, old_id: int) -> bool:
    """Whether the new value is torch's own wrapper around the old one: importing torch._dynamo (which
    torchvision does) wraps torch.manual_seed and a few others with code in torch's package."""
    new, old = _SEEN.get(new_id), _SEEN.get(old_id)
    code = getattr(new, "__code__", None)
    return (old is not None and getattr(new, "__wrapped__", None) is old and code is not None
            and code.co_filename.startswith(_TORCH_DIR or "\0"))


def _changes(before: dict, after: dict) -> list[str]:
    """What was replaced or removed, and what was added other than a submodule (imported lazily by torch)."""
    return sorted(f"{space}.{name}" for (space, name) in set(before) | set(after)
                  if before.get((space, name)) != after.get((space, name))
                  and not ((space, name) not in before and after[(space, name)][2])
                  and not ((space, name) in before and (space, name) in after
                           and _torch_wrapper_of(after[(space, name)][0], before[(space, name)][0])))


def answers_source(notebook, answers=()) -> tuple[str, list[str]]:
    """The part of a notebook that defines its answers, as one module's source, and notes on what was left out.

    Kept, in notebook order: function and class definitions, assignments to plain names that a
    definition uses (directly or through other such assignments) or that bind one of the ``answers``
    (``psnr = my_psnr``), and the imports of names these use.  Everything else (calls at
    the top level, loops, plots, changes to other modules) is left out: it does not run when the
    checks are verified.  Cells that do not parse are left out with a note.
    """
    statements, notes = [], []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(source)
        except SyntaxError as error:
            notes.append(f"cell {index} does not parse ({error.msg}): left out")
            continue
        statements += tree.body

    def names_in(nodes) -> set[str]:
        return {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)}

    def targets(node) -> set[str] | None:
        """The plain names an assignment binds, or None when it assigns to anything else."""
        found = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = set()
        for target in found:
            for part in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]):
                if not isinstance(part, ast.Name):
                    return None
                names.add(part.id)
        return names

    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    needed = names_in([s for s in statements if isinstance(s, definitions)]) | set(answers)
    kept_assignments: set[int] = set()
    changed = True
    while changed:
        changed = False
        for i, statement in enumerate(statements):
            if isinstance(statement, (ast.Assign, ast.AnnAssign)) and i not in kept_assignments:
                bound = targets(statement)
                if bound and bound & needed and (not isinstance(statement, ast.AnnAssign) or statement.value):
                    kept_assignments.add(i)
                    needed |= names_in([statement.value])
                    changed = True
    def used_import(statement) -> bool:
        if not isinstance(statement, (ast.Import, ast.ImportFrom)):
            return False
        bound = {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
        return "*" in bound or bool(bound & needed)

    kept = [s for i, s in enumerate(statements)
            if isinstance(s, definitions) or i in kept_assignments or used_import(s)]
    return "\n\n".join(ast.unparse(s) for s in kept), notes


def _plain_notebook(raw: bytes):
    """A notebook's cells (``cell_type``, ``source``) read as plain JSON: nbformat's schema validation
    costs seconds of start-up and the notebook already ran in the kernel."""
    from types import SimpleNamespace

    cells = json.loads(raw.decode("utf-8", errors="replace")).get("cells", [])
    return SimpleNamespace(cells=[SimpleNamespace(cell_type=c.get("cell_type"), source="".join(c.get("source", "")))
                                  for c in cells if isinstance(c, dict)])


def _settle_lazy_imports() -> None:
    """Let the libraries make the changes to themselves that they make on first use, before the
    fingerprint is taken: torch._dynamo wraps torch.manual_seed when imported, each optimizer class
    wraps its step method on its first instance, scikit-image loads its functions on first access."""
    import importlib

    import torch
    global _TORCH_DIR
    _TORCH_DIR = str(Path(torch.__file__).parent) + os.sep
    for name in ("skimage.metrics",):
        try:
            importlib.import_module(name)
        except Exception:
            pass
    for name in _WATCHED:
        module = sys.modules.get(name)
        for attribute in getattr(module, "__all__", None) or ():
            try:
                getattr(module, attribute)
            except Exception:
                pass
    for value in list(vars(torch.optim).values()):
        if isinstance(value, type) and issubclass(value, torch.optim.Optimizer) and value is not torch.optim.Optimizer:
            try:
                value([torch.zeros(1, requires_grad=True)])
            except Exception:
                pass


def _verify_one(autograder_zip: str, submission: str, result_path: str, check_time_limit: float) -> int:
    """Run the autograder's checks against the submission's definitions in this fresh process.

    Trusted code runs first: it reads the signing key (stdin), loads the tests and the rules, imports
    what they use and fingerprints it.  Then the submission's definitions run, each statement on its
    own (one that raises is skipped, as a failed cell would be), and every check runs under the
    per-check time limit, with the library functions its question must not use replaced by tripwires.
    After each check the fingerprint, the SIGALRM handler and the tripwires are compared.  The
    results are signed with the key, so a file the submission writes is not taken for them.
    """
    key = sys.stdin.buffer.read(32)
    _exit_with_parent()
    import importlib
    import numpy  # noqa: F401  (fingerprinted)
    import torch  # noqa: F401
    import skimage.metrics  # noqa: F401
    import torch.distributions  # noqa: F401
    import lecture_utils  # noqa: F401

    with zipfile.ZipFile(autograder_zip) as archive:
        rules = json.loads(archive.read(RULES_FILE))
        tests = [_TestFile.load(archive.read(item).decode(), item) for item in sorted(archive.namelist())
                 if re.fullmatch(r"tests/[^/]+\.py", item)]
    forbidden = {q["name"]: q["forbidden"] for q in rules["questions"]}
    answers = {q["name"]: q["answers"] for q in rules["questions"]}
    library = {name: resolve_dotted(name) for names in forbidden.values() for name in names}
    for module in list(sys.modules):
        if module.startswith("lecture_utils"):
            importlib.import_module(module)
    _settle_lazy_imports()

    checks, flags = [], []
    hits: set[str] = set()

    def on_alarm(signum, frame):
        raise TimeoutError(f"stopped: this check ran longer than its time limit of {check_time_limit:g} s")

    harness = {"on_alarm": on_alarm, "_fingerprint": _fingerprint, "_changes": _changes, "_sign": _sign,
               "call": _TestFile.call, "message": _TestFile.message, "json.dumps": json.dumps}
    for test in tests:
        for case in test.cases:
            harness[f"test:{case.name}"] = case.function
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    baseline = _fingerprint(harness)

    # the submission's definitions
    raw = _notebook_bytes(Path(submission), Path(submission).read_bytes())
    source, notes = answers_source(_plain_notebook(raw), [name for names in answers.values() for name in names])
    env: dict = {"__name__": "__main__"}
    signal.signal(signal.SIGALRM, on_alarm)
    for statement in ast.parse(source).body:
        signal.setitimer(signal.ITIMER_REAL, check_time_limit)
        try:
            exec(compile(ast.Module(body=[statement], type_ignores=[]), "submission", "exec"), env)
        except BaseException as error:          # noqa: BLE001  a failing definition is skipped, like a failed cell
            notes.append(f"line {statement.lineno}: {type(error).__name__}: {error}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    changed = _changes(baseline, _fingerprint(harness))
    if changed:
        flags.append(f"the notebook's definitions change the grading machinery: {', '.join(changed[:5])}")
        baseline = _fingerprint(harness)

    for test in tests:
        question = test.name
        # tripwires: the library objects this question must not use, wherever they are bound
        patched = []
        for dotted in forbidden.get(question, []):
            owner, attribute, original = library[dotted]
            wire = _tripwire(dotted, original, hits)
            raw_attribute = vars(owner).get(attribute) if isinstance(owner, type) else None
            patched.append((owner, attribute, getattr(owner, attribute) if raw_attribute is None else raw_attribute))
            setattr(owner, attribute, staticmethod(wire) if isinstance(raw_attribute, staticmethod) else wire)
            for module in [m for name, m in sys.modules.items() if name.startswith("lecture_utils") and m is not None]:
                for name, value in list(vars(module).items()):
                    if value is original:
                        patched.append((module, name, value))
                        setattr(module, name, wire)
            for name, value in list(env.items()):
                if value is original:
                    patched.append((env, name, value))
                    env[name] = wire
        for answer in answers.get(question, []):
            for dotted in forbidden.get(question, []):
                if _holds(env.get(answer), library[dotted][2]):
                    hits.add(dotted)
        for case in test.cases:
            passed, message = True, "\u2705 Test case passed"
            signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, check_time_limit)
            handler = on_alarm
            try:
                test.call(case, env)
            except BaseException as error:     # noqa: BLE001  SystemExit, KeyboardInterrupt from a submission fail the check
                passed = False
                message = "\u274c Test case failed\n" + test.message(case, error)
            finally:
                handler = signal.getsignal(signal.SIGALRM)
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
            if handler is not on_alarm:
                flags.append(f"{case.name}: the check's SIGALRM handler (the time limit) was replaced")
            changed = _changes(baseline, _fingerprint(harness))
            if changed:
                flags.append(f"{case.name}: the check changed the grading machinery: {', '.join(changed[:5])}")
                baseline = _fingerprint(harness)
            checks.append({"name": case.name, "question": question, "hidden": bool(case.hidden),
                           "points": case.points, "passed": passed, "message": message})
        for owner, attribute, value in reversed(patched):
            if isinstance(owner, dict):
                owner[attribute] = value
            else:
                setattr(owner, attribute, value)
        for dotted in sorted(hits):
            flags.append(f"{question}: the answer uses {dotted}, the library's version of what this question asks for")
        hits.clear()
    payload = json.dumps({"checks": checks, "flags": flags, "notes": notes})
    Path(result_path).write_text(json.dumps({"payload": payload, "signature": _sign(key, payload.encode())}))
    return 0


def _holds(value, original) -> bool:
    """Whether an answer is the library object, a subclass, a partial or wrapper of it, or keeps it in
    its default arguments or closure (where a tripwire put in the library's module cannot reach)."""
    seen = 0
    while value is not None and seen < 10:
        seen += 1
        if value is original or (isinstance(value, type) and isinstance(original, type) and issubclass(value, original)):
            return True
        inner = [*(getattr(value, "__defaults__", None) or ()), *(getattr(value, "__kwdefaults__", None) or {}).values()]
        for cell in getattr(value, "__closure__", None) or ():
            try:
                inner.append(cell.cell_contents)
            except ValueError:
                pass
        if any(item is original for item in inner):
            return True
        value = getattr(value, "func", None) or getattr(value, "__wrapped__", None)
    return False


@dataclass
class _Case:
    name: str
    function: object
    points: float | None
    hidden: bool


class _TestFile:
    """An otter test file in its exception format (``@test_case(points=..., hidden=...)`` functions),
    loaded without otter: the verification does not import what a submission could have patched in
    the notebook's kernel, and starts seconds faster.  Names, points and messages as otter makes them."""

    def __init__(self, name: str, path: str, source: str, cases: list[_Case]):
        self.name, self.path, self.source, self.cases = name, path, source, cases

    @classmethod
    def load(cls, source: str, path: str) -> "_TestFile":
        import types

        found = []

        class test_case:                                 # noqa: N801  the decorator the files import
            def __init__(self, name=None, points=None, hidden=False, success_message=None, failure_message=None):
                self.name, self.points, self.hidden = name, points, hidden

            def __call__(self, function):
                found.append((self, function))
                return self

        fake = types.ModuleType("otter.test_files")
        fake.test_case = test_case
        namespace: dict = {"__name__": f"autograder_test_{Path(path).stem}"}
        saved = {name: sys.modules.get(name) for name in ("otter", "otter.test_files")}
        sys.modules["otter"], sys.modules["otter.test_files"] = types.ModuleType("otter"), fake
        try:
            exec(compile(source, path, "exec"), namespace)
        finally:
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
        name = namespace["name"]
        cases = [_Case(decorator.name or f"{name} - {i + 1}", function, decorator.points, bool(decorator.hidden))
                 for i, (decorator, function) in enumerate(found)]
        total, given = namespace.get("points"), [c.points for c in cases if c.points is not None]
        unset = [c for c in cases if c.points is None]
        for case in unset:                               # otter's rule: the rest of the total, shared equally
            case.points = (float(total) - sum(given)) / len(unset) if isinstance(total, (int, float)) else 0.0
        return cls(name, path, source, cases)

    @staticmethod
    def call(case: _Case, env: dict) -> None:
        import inspect
        arguments = inspect.signature(case.function).parameters
        case.function(**{a: (env if a == "env" else env.get(a)) for a in arguments})

    def message(self, case: _Case, error: BaseException) -> str:
        """Otter's failure message: the test file's line that raised, and the error."""
        line = None
        frame = error.__traceback__
        while frame is not None:
            if frame.tb_frame.f_code.co_filename == self.path:
                line = frame.tb_lineno
            frame = frame.tb_next
        lines = self.source.split("\n")
        where = f"Error at line {line} in test {self.name}:\n  {lines[line - 1]}\n" if line else ""
        return f"{where}{type(error).__name__}: {str(error).strip(chr(39))}"


def _tripwire(dotted: str, original, hits: set):
    """A stand-in for a forbidden library object that records its use and then behaves as the original."""
    if isinstance(original, type):
        def __init__(self, *args, **kwargs):
            hits.add(dotted)
            original.__init__(self, *args, **kwargs)
        return type(original.__name__, (original,), {"__init__": __init__, "__module__": original.__module__})

    def wire(*args, **kwargs):
        hits.add(dotted)
        return original(*args, **kwargs)
    return wire


# --------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the student releases and the autograders into build/homework/")
    b.add_argument("--assignments", nargs="+", choices=ASSIGNMENTS, default=list(ASSIGNMENTS), help="which assignments (default: all)")
    b.add_argument("--out", type=Path, default=BUILD, help="output folder (default: build/homework)")
    b.add_argument("--check", action="store_true", help="then grade the solution notebooks and fail unless they get full marks")
    g = sub.add_parser("grade", help="grade a folder of submitted notebooks offline; writes a CSV of scores per question")
    g.add_argument("folder", type=Path, help="folder of submissions (.ipynb, or otter export .zip), searched recursively")
    g.add_argument("--assignment", choices=ASSIGNMENTS, help="grade all against this assignment (default: detect from each notebook)")
    g.add_argument("--out", type=Path, help="where the CSVs and feedback go (default: build/homework/grades/<folder name>)")
    g.add_argument("--autograders", type=Path, default=BUILD, help="folder of <hw>-autograder.zip (default: build/homework; built when missing)")
    g.add_argument("--time-limit", type=float, default=TIME_LIMIT_S, help=f"seconds per submission (default {TIME_LIMIT_S})")
    g.add_argument("--cell-time-limit", type=float, default=CELL_TIME_LIMIT_S, help=f"seconds per notebook cell (default {CELL_TIME_LIMIT_S})")
    g.add_argument("--check-time-limit", type=float, default=CHECK_TIME_LIMIT_S, help=f"seconds per check (default {CHECK_TIME_LIMIT_S})")
    g.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time, each in its own "
                   "processes (default 1; about one per CPU core)")
    w = sub.add_parser("_grade-one", help=argparse.SUPPRESS)
    w.add_argument("autograder_zip")
    w.add_argument("submission")
    w.add_argument("result_path")
    w.add_argument("--assignment", required=True)
    w.add_argument("--cell-time-limit", type=float, required=True)
    w.add_argument("--check-time-limit", type=float, required=True)
    v = sub.add_parser("_verify-one", help=argparse.SUPPRESS)
    v.add_argument("autograder_zip")
    v.add_argument("submission")
    v.add_argument("result_path")
    v.add_argument("--check-time-limit", type=float, required=True)
    args = parser.parse_args(argv)
    _skip_slow_iri_checker()
    try:
        if args.command == "build":
            build(args.assignments, out=args.out, check=args.check)
        elif args.command == "grade":
            grade(args.folder, out=args.out, assignment=args.assignment, autograders=args.autograders,
                  time_limit=args.time_limit, cell_time_limit=args.cell_time_limit, check_time_limit=args.check_time_limit,
                  jobs=args.jobs)
        elif args.command == "_verify-one":
            return _verify_one(args.autograder_zip, args.submission, args.result_path, args.check_time_limit)
        else:
            return _grade_one(args.autograder_zip, args.submission, args.result_path, args.assignment,
                              args.cell_time_limit, args.check_time_limit)
    except (ValueError, RuntimeError) as error:
        print(f"[homework] error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[homework] interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Autograded homework for course staff: build the releases, grade submissions offline.

    python3 course.py homework build [--check]         student releases + autograders -> build/homework/
    python3 course.py homework grade SUBMISSIONS/      scores per question -> build/homework/grades/SUBMISSIONS/

(or ``.venv/bin/python homework/homework.py build|grade ...`` in the course's environment).

The master notebooks ``homework/hw*.ipynb`` are in otter-grader's assign format: solutions between
``# BEGIN SOLUTION`` / ``# END SOLUTION``, public tests (students run them with ``grader.check``) and
hidden tests (``hidden: true``).  ``build`` runs ``otter assign`` on each and writes

    build/homework/<hw>/student/            the release for students: notebook without solutions + public tests
    build/homework/<hw>/autograder/         solutions notebook, all tests, otter's autograder zip
    build/homework/<hw>-student.zip         the student release as one file to hand out
    build/homework/<hw>-autograder.zip      the autograder (Gradescope can use it as is; ``grade`` uses it offline)

``grade`` grades every ``.ipynb`` (or otter export ``.zip``) in a folder without Docker, one
submission at a time, each in its own process with its own private copy of the submission and of
the autograder, under three time limits: per check (a test case), per notebook cell, and per
submission.  A submission that crashes, hangs or deletes files gets its own row (scores 0 where it
failed, a status saying why) and cannot stop or change the grading of the others: all submissions
and autograders are read into memory before the first one runs, and the CSV is written from memory.
This is not a sandbox: a submission runs with the grader's permissions (use ``otter grade`` with
Docker, or a throw-away account, for untrusted code).  The per-check and per-cell limits use POSIX
signals: grade on Linux or macOS.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HOMEWORK = Path(__file__).resolve().parent
ROOT = HOMEWORK.parent
BUILD = ROOT / "build" / "homework"
ASSIGNMENTS = ("hw1_vae", "hw2_gan", "hw3_vision_tasks")

TIME_LIMIT_S = 600         # a whole submission
CELL_TIME_LIMIT_S = 120    # one notebook cell
CHECK_TIME_LIMIT_S = 30    # one check (test case)

# Cells of the grader itself, exempt from the per-cell limit: otter's set-up cell, the check time
# limit below, and otter's last cell, which runs every check not yet run (each under the per-check
# limit, so that cell as a whole is bounded by the submission's limit only).
_GRADER_CELL_MARKS = ("init_grading_mode(", "_install_check_time_limit(", "GradingResults(Checker.get_results())")
_RUN_MARKER = "LECTURE_UTILS_GRADING_RUN"


def say(message: str) -> None:
    print(f"[homework] {message}", flush=True)


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
        _copy_with_library(zips[0], autograder_zip)
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


def _copy_with_library(source: Path, target: Path) -> None:
    """Copy otter's autograder zip, adding lecture_utils/ under files/ (copied next to the submission)."""
    library = ROOT / "lecture_utils"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for item in original.infolist():
            copy.writestr(item, original.read(item.filename))
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


def grade(folder, out=None, assignment: str | None = None, autograders=BUILD,
          time_limit: float = TIME_LIMIT_S, cell_time_limit: float = CELL_TIME_LIMIT_S,
          check_time_limit: float = CHECK_TIME_LIMIT_S) -> list[Submission]:
    """Grade every submission in ``folder``; write ``<out>/<assignment>.csv`` and feedback; return the rows.

    ``autograders``: the folder holding ``<hw>-autograder.zip`` (built first when missing).
    ``assignment``: grade everything against this assignment instead of detecting it per file.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ValueError(f"folder {str(folder)!r} must be a folder of submitted notebooks")
    if assignment is not None and assignment not in ASSIGNMENTS:
        raise ValueError(f"assignment must be one of {list(ASSIGNMENTS)}, got {assignment!r}")
    for name, value in [("time_limit", time_limit), ("cell_time_limit", cell_time_limit), ("check_time_limit", check_time_limit)]:
        if not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    out = Path(out).resolve() if out is not None else BUILD / "grades" / folder.name
    autograders = Path(autograders).resolve()

    # Read everything first: nothing a submission does to the disk can reach the others' grading.
    paths = find_submissions(folder)
    if not paths:
        raise ValueError(f"no .ipynb or .zip submissions in {folder}")
    payloads = {p: p.read_bytes() for p in paths}
    rows = [Submission(p, assignment or detect_assignment(p, payloads[p])) for p in paths]
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

    say(f"grading {len(rows)} submission(s) from {folder} (limits: {time_limit:g} s per submission, "
        f"{cell_time_limit:g} s per cell, {check_time_limit:g} s per check)")
    for row in rows:
        if row.assignment is None:
            row.status = "error: cannot tell the assignment (name the file hwN_... or use --assignment)"
        else:
            row.possible_by_question = dict(questions[row.assignment])
            row.scores = {q: 0.0 for q in row.possible_by_question}
            _grade_in_own_process(row, payloads[row.path], zips[row.assignment], time_limit, cell_time_limit, check_time_limit)
        name = row.path.relative_to(folder)
        say(f"{row.assignment or '?'}  {name}: {row.total:g}/{row.possible:g}  {row.status}  ({row.seconds:.0f} s)")
        _write_reports(rows, out, folder)
    say(f"scores in {out}")
    return rows


def _grade_in_own_process(row: Submission, payload: bytes, autograder: bytes, time_limit: float,
                          cell_time_limit: float, check_time_limit: float) -> None:
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
        with open(private / "worker.log", "wb") as log:
            worker = subprocess.Popen(command, cwd=private, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code = worker.wait(timeout=time_limit)
            except subprocess.TimeoutExpired:
                code = None
            _kill_tree(worker.pid, marker)
            worker.wait()
        row.log_tail = _tail(private / "worker.log")
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
        row.status = "ok"
        for question, outcome in result["questions"].items():
            if question in row.scores:        # only the autograder's questions count
                row.scores[question] = min(float(outcome["score"]), row.possible_by_question[question])
            row.checks.extend(outcome["checks"])
    finally:
        row.seconds = time.time() - started
        _kill_tree(None, marker)
        shutil.rmtree(private, ignore_errors=True)


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


def _write_reports(rows: list[Submission], out: Path, folder: Path) -> None:
    """One CSV per assignment (a row per submission, a column per question) and a feedback file per submission."""
    out.mkdir(parents=True, exist_ok=True)
    by_assignment: dict[str, list[Submission]] = {}
    for row in rows:
        by_assignment.setdefault(row.assignment or "unrecognised", []).append(row)
    for name, group in by_assignment.items():
        questions = list(group[0].possible_by_question) if group[0].possible_by_question else []
        path = out / f"{name}.csv"
        tmp = path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["submission", "status", "total", "possible", *questions, "failed_checks", "seconds"])
            for row in group:
                writer.writerow([str(row.path.relative_to(folder)), row.status, f"{row.total:g}", f"{row.possible:g}",
                                 *[f"{row.scores.get(q, 0.0):g}" for q in questions],
                                 " | ".join(row.failed_checks), f"{row.seconds:.1f}"])
        tmp.replace(path)
        feedback = out / name
        feedback.mkdir(exist_ok=True)
        for row in group:
            if row.status == "not graded":
                continue
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
            safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(row.path.relative_to(folder)))
            (feedback / f"{safe}.txt").write_text("\n".join(lines) + "\n")


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
    try:
        import nbformat
        import nbconvert.preprocessors as preprocessors

        class TimedExecutePreprocessor(preprocessors.ExecutePreprocessor):
            """Each cell under the cell time limit (interrupted, then the next cell runs)."""

            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.interrupt_on_timeout = True
                self.timeout_func = lambda cell: None if any(m in cell.source for m in _GRADER_CELL_MARKS) else cell_time_limit

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
                                           "passed": bool(r.passed), "message": str(r.message)}
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
    w = sub.add_parser("_grade-one", help=argparse.SUPPRESS)
    w.add_argument("autograder_zip")
    w.add_argument("submission")
    w.add_argument("result_path")
    w.add_argument("--assignment", required=True)
    w.add_argument("--cell-time-limit", type=float, required=True)
    w.add_argument("--check-time-limit", type=float, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.assignments, out=args.out, check=args.check)
        elif args.command == "grade":
            grade(args.folder, out=args.out, assignment=args.assignment, autograders=args.autograders,
                  time_limit=args.time_limit, cell_time_limit=args.cell_time_limit, check_time_limit=args.check_time_limit)
        else:
            return _grade_one(args.autograder_zip, args.submission, args.result_path, args.assignment,
                              args.cell_time_limit, args.check_time_limit)
    except (ValueError, RuntimeError) as error:
        print(f"[homework] error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

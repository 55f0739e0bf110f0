#!/usr/bin/env python3
"""The student edition of the course: ``python3 course.py release OUT``.

This repository holds the homework's master notebooks (solutions and hidden tests): keep it
private and publish the folder this writes.  OUT gets

    README.md             the student README (homework/student_readme.md, with sections of the course README)
    course.py, pyproject.toml, environment.yml, .gitignore, .ci/   the same two set-up commands work there
    notebooks/            every notebook, without exercise solutions
    lecture_utils/, data/, scripts/, benchmarks/, docs/ (when there)
    tests/                the tests that need no master notebook (not tests/test_homework*.py, tests/test_release*.py)
    homework/README.md    how to open, check, export and submit; what may be imported; the precision contract
    homework/<hw>/        otter assign's student version of each homework/hw*.ipynb (notebook + public tests)

and nothing else: no master notebook, no solution, no hidden test, no autograder, no benchmark of the
grader.  **Exercise solutions in the notebooks** are left out too: a notebook cell tagged
``solution`` (JupyterLab: the cell's property inspector → Cell Tags), or whose first line is
``# SOLUTION``, is not copied.  After writing, :func:`scan` reads every file of OUT (zips included)
and the release fails if it finds a solution marker, a line of a hidden test or of a solution, a
master notebook (by name or content) or a cell tagged ``solution``.  OUT is written next to itself
first and renamed into place, so a failed release leaves no half-written folder.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path

HOMEWORK = Path(__file__).resolve().parent
ROOT = HOMEWORK.parent
sys.path.insert(0, str(HOMEWORK))
import homework as homework_tool  # noqa: E402

STAMP = ".course-release"                 # marks a folder written by this tool (safe to replace)
# Paths (fnmatch patterns, relative to the repository) that stay in the course repository.
STAFF_ONLY = ("README.md", "homework/*", "tests/test_homework*.py", "tests/test_release*.py",
              "benchmarks/bench_homework*", "solutions/*")
SOLUTION_TAG = "solution"
SOLUTION_FIRST_LINE = "# SOLUTION"
EXERCISE_SOLUTIONS = "EXERCISE SOLUTIONS: instructors only"   # first line of every solutions/NN_topic.md
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", SOLUTION_FIRST_LINE, "BEGIN QUESTION", "END QUESTION",
           "ASSIGNMENT CONFIG", "BEGIN TESTS", "BEGIN TEST CONFIG", "hidden: true", "otter_assign_solution_cell",
           EXERCISE_SOLUTIONS)


def say(message: str) -> None:
    print(f"[release] {message}", flush=True)


def course_files(root: Path = ROOT) -> list[str]:
    """The course's files, relative to ``root``: what git tracks or would track (ignored files and
    build outputs left out); without git, every file outside the usual build folders."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                                capture_output=True, check=True).stdout.decode().split("\0")
        files = sorted({name for name in listed if name and (root / name).is_file()})
        if files:
            return files
    except (OSError, subprocess.CalledProcessError):
        pass
    skip = {".git", ".venv", "build", "__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and not skip & set(p.relative_to(root).parts) and not p.name.endswith(".egg-info"))


def is_exercise_solution(cell: dict) -> bool:
    source = "".join(cell.get("source", []))
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", []) or source.lstrip().startswith(SOLUTION_FIRST_LINE)


def without_exercise_solutions(text: str) -> tuple[str, int]:
    """A notebook's JSON without its exercise-solution cells, and how many were left out."""
    notebook = json.loads(text)
    kept = [cell for cell in notebook["cells"] if not is_exercise_solution(cell)]
    removed = len(notebook["cells"]) - len(kept)
    notebook["cells"] = kept
    return (json.dumps(notebook, indent=1, ensure_ascii=False) + "\n" if removed else text), removed


def _course_section(readme: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", readme, re.M | re.S)
    if match is None:
        raise RuntimeError(f"the course README has no section '## {title}' for the student README "
                           "(homework/student_readme.md names it)")
    return match.group(0).rstrip() + "\n"


def student_readme(assignments: list[dict], root: Path = ROOT) -> str:
    """homework/student_readme.md with the assignment list and the named sections of the course README."""
    template = (root / "homework" / "student_readme.md").read_text()
    readme = (root / "README.md").read_text()
    table = ["| assignment | open | questions |", "|---|---|---|"]
    for info in assignments:
        questions = ", ".join(f"{q['name']} ({q['points']:g})" for q in info["questions"])
        table.append(f"| {info['title']} | `homework/{info['name']}/{info['name']}.ipynb` | {questions} |")
    text = template.replace("<!-- assignments -->", "\n".join(table))
    return re.sub(r"<!-- course: (.+?) -->", lambda m: _course_section(readme, m.group(1)), text)


def homework_readme(assignments: list[dict], root: Path = ROOT) -> str:
    """homework/student_homework.md with a section per assignment, generated from its master."""
    sections = []
    for info in assignments:
        lines = [f"### {info['title']}", "", f"Open `{info['name']}/{info['name']}.ipynb`.", "",
                 "| question | points | you write | not allowed from `lecture_utils` |", "|---|---|---|---|"]
        for q in info["questions"]:
            forbidden = ", ".join(f"`{name}`" for name in q["forbidden"]) or "—"
            answers = ", ".join(f"`{name}`" for name in q["answers"])
            lines.append(f"| {q['name']} | {q['points']:g} | {answers} | {forbidden} |")
        sections.append("\n".join(lines) + "\n")
    template = (root / "homework" / "student_homework.md").read_text()
    return template.replace("<!-- assignment sections -->", "\n".join(sections))


def release(out, root: Path = ROOT) -> Path:
    """Write the student edition of the course into ``out`` (replacing an earlier release there)."""
    out = Path(out).resolve()
    root = Path(root).resolve()
    if out == root or root in out.parents and not str(out.relative_to(root)).startswith("build"):
        raise ValueError(f"out must be a folder outside the course (or under build/), got {str(out)!r}")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / STAMP).is_file())):
        raise ValueError(f"out {str(out)!r} exists and is not an earlier release (no {STAMP} file): "
                         "give a new or empty folder")
    masters = sorted((root / "homework").glob("hw*.ipynb"))
    if not masters:
        raise ValueError(f"no master notebooks homework/hw*.ipynb in {root}")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    staging.mkdir()
    try:
        removed = 0
        for name in course_files(root):
            if any(fnmatch.fnmatch(name, pattern) for pattern in STAFF_ONLY):
                continue
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if name.endswith(".ipynb"):
                text, count = without_exercise_solutions((root / name).read_text())
                target.write_text(text)
                removed += count
            else:
                shutil.copy2(root / name, target)
        with tempfile.TemporaryDirectory(prefix="release-homework-") as build_dir:
            built = homework_tool.build([m.stem for m in masters], out=Path(build_dir))
            for name, paths in built.items():
                shutil.copytree(paths["student"], staging / "homework" / name)
        assignments = [homework_tool.read_master(m) for m in masters]
        (staging / "homework" / "README.md").write_text(homework_readme(assignments, root))
        (staging / "README.md").write_text(student_readme(assignments, root))
        (staging / STAMP).write_text("written by python3 course.py release; safe to replace with a newer release\n")
        problems = scan(staging, root)
        if problems:
            raise RuntimeError("the release would leak: " + "; ".join(problems[:10]))
        if out.exists():
            old = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(out, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = sum(1 for p in out.rglob("*") if p.is_file())
    say(f"the student edition is in {out} ({files} files, {len(masters)} assignments, {removed} exercise-solution "
        "cells left out): publish that folder, keep this repository private")
    return out


# --------------------------------------------------------------------------- the scan
def _lines_of_hidden_tests_and_solutions(root: Path) -> tuple[dict[str, str], set[str]]:
    """({line: where}, hidden test names): lines (and test names) that occur in the masters' hidden tests
    or solutions and nowhere else in the course (so finding one in the release means it leaked)."""
    secret: dict[str, str] = {}
    names: set[str] = set()
    elsewhere: set[str] = set()
    for master in sorted((root / "homework").glob("hw*.ipynb")):
        notebook = json.loads(master.read_text())
        for cell in notebook["cells"]:
            source = "".join(cell["source"])
            hidden = cell["cell_type"] == "code" and re.search(r"^hidden: true$", source, re.M)
            if hidden:
                names.update(re.findall(r"^def (test_\w+)\(", source, re.M))
            inside = False
            for line in source.splitlines():
                stripped = line.strip()
                if "# END SOLUTION" in line:
                    inside = False
                    continue
                if "# BEGIN SOLUTION" in line:
                    inside = True
                    continue
                if len(stripped) < 20:
                    continue
                if hidden or inside:
                    secret.setdefault(stripped, f"{master.name} ({'hidden test' if hidden else 'solution'})")
                else:
                    elsewhere.add(stripped)
    for name in course_files(root):
        if (name.startswith("homework/") or not name.endswith((".py", ".ipynb", ".md"))
                or any(fnmatch.fnmatch(name, pattern) for pattern in STAFF_ONLY)):
            continue
        text = (root / name).read_text(errors="replace")
        if name.endswith(".ipynb"):
            text = "\n".join("".join(c.get("source", [])) for c in json.loads(text).get("cells", []))
        elsewhere.update(line.strip() for line in text.splitlines())
        names = {test for test in names if test not in text}           # a library test of the same name
    return {line: where for line, where in secret.items() if line not in elsewhere}, names


def _texts(folder: Path):
    """(relative name, text) of every text file in ``folder``, and of every text file inside its zips."""
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        relative = str(path.relative_to(folder))
        data = path.read_bytes()
        if path.suffix == ".zip":
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    for item in archive.namelist():
                        try:
                            yield f"{relative}:{item}", archive.read(item).decode()
                        except UnicodeDecodeError:
                            continue
            except zipfile.BadZipFile:
                pass
            continue
        try:
            yield relative, data.decode()
        except UnicodeDecodeError:
            continue                        # checkpoints and other binary files


def scan(folder, root: Path = ROOT) -> list[str]:
    """Everything in ``folder`` that must not be in a student edition; [] when there is nothing."""
    folder, root = Path(folder), Path(root)
    problems = []
    masters = sorted((root / "homework").glob("hw*.ipynb"))
    master_hashes = {hashlib.sha256(m.read_bytes()).hexdigest(): m.name for m in masters}
    for master in masters:
        if (folder / "homework" / master.name).exists():
            problems.append(f"homework/{master.name}: the master notebook")
    for path in folder.rglob("*"):
        if path.is_file():
            if hashlib.sha256(path.read_bytes()).hexdigest() in master_hashes:
                problems.append(f"{path.relative_to(folder)}: a copy of the master {master_hashes[hashlib.sha256(path.read_bytes()).hexdigest()]}")
            if path.name.endswith(".zip") and "autograder" in path.name:
                problems.append(f"{path.relative_to(folder)}: an autograder")
    secret, hidden_names = _lines_of_hidden_tests_and_solutions(root)
    for name, text in _texts(folder):
        for marker in MARKERS:
            if marker in text:
                problems.append(f"{name}: the marker {marker!r}")
        for test in hidden_names:
            if test in text:
                problems.append(f"{name}: the hidden test {test}")
        for line in text.splitlines():
            if line.strip() in secret:
                problems.append(f"{name}: a line of {secret[line.strip()]}: {line.strip()[:60]!r}")
        if name.endswith(".ipynb"):
            try:
                cells = json.loads(text).get("cells", [])
            except ValueError:
                continue
            if any(is_exercise_solution(cell) for cell in cells):
                problems.append(f"{name}: an exercise-solution cell")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write the student edition into (new, empty, or an earlier release)")
    args = parser.parse_args(argv)
    try:
        release(args.out)
    except (ValueError, RuntimeError) as error:
        print(f"[release] error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

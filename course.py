#!/usr/bin/env python3
"""Set up and run the Generative Models for Vision course.  Needs only Python >= 3.10 and git.

    python3 course.py                 set up (first time only) and open JupyterLab on notebooks/
    python3 course.py test            set up with the test extras, then run the whole test suite
    python3 course.py run [NB ...]    execute notebooks headlessly into build/notebooks/
                                      (--budget smoke|standard|full, default: the library's default)
    python3 course.py slides          offline reveal.js slides of every notebook into build/slides/
    python3 course.py site            execute every notebook (--budget) and write a static site into build/site/
    python3 course.py homework build  course staff: homework student versions + autograders into build/homework/
    python3 course.py homework grade FOLDER [--jobs N]   grade submitted notebooks offline, CSV of scores per question
    python3 course.py release OUT     course staff: write the student edition (no solutions, no hidden tests) into OUT
    python3 course.py homework        in the student edition: open JupyterLab on homework/

Set-up creates a virtual environment in .venv/, installs the course package (lecture_utils)
with its pinned dependencies, and registers a Jupyter kernel.  It remembers what it installed
(.venv/lecture_utils.stamp), so running a command again installs nothing new.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / "lecture_utils.stamp"
LOG = VENV / "install.log"
KERNEL = "lecture-utils"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def say(message: str) -> None:
    print(f"[course] {message}", flush=True)


def project_hash() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def installed() -> dict:
    try:
        return json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return {}


def setup(extras: tuple[str, ...] = ()) -> Path:
    """Create .venv and install the package (with ``extras``) unless the stamp says it is there."""
    if sys.version_info < (3, 10):
        sys.exit(f"[course] Python >= 3.10 is needed, this is {sys.version.split()[0]}")
    python = venv_python()
    stamp = installed()
    have = set(stamp.get("extras", [])) if stamp.get("pyproject") == project_hash() else None
    if python.exists() and have is not None and set(extras) <= have:
        return python
    if not python.exists():
        say(f"creating the virtual environment {VENV.relative_to(ROOT)}/")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    wanted = sorted(set(extras) | (have or set()))
    target = f".[{','.join(wanted)}]" if wanted else "."
    say(f"installing lecture_utils{target[1:]} and its dependencies "
        "(first time: about 5.5 GB with PyTorch, a few minutes; log in .venv/install.log)")
    started = time.time()
    with open(LOG, "w") as log:
        result = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check",
                                 "-e", target], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = [line for line in LOG.read_text().splitlines() if "is ignored" not in line][-25:]
        print("\n".join(tail))
        sys.exit(f"[course] installing failed (exit {result.returncode}); the whole log is {LOG}")
    subprocess.run([str(python), "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL,
                    "--display-name", "Python (Generative Models for Vision)"],
                   check=True, stdout=subprocess.DEVNULL)
    STAMP.write_text(json.dumps({"pyproject": project_hash(), "extras": wanted}))
    say(f"installed in {time.time() - started:.0f} s")
    return python


def command_lab(args: argparse.Namespace) -> int:
    python = setup()
    say("opening JupyterLab on notebooks/ (stop it with Ctrl-C)")
    extra = ["--no-browser"] if args.no_browser else []
    return subprocess.call([str(python), "-m", "jupyter", "lab", f"--notebook-dir={ROOT / 'notebooks'}", *extra])


def command_test(args: argparse.Namespace) -> int:
    python = setup(("test",))
    env = dict(os.environ, LECTURE_UTILS_BUDGET="smoke", MPLBACKEND="Agg")
    say("running the test suite in the smoke budget")
    return subprocess.call([str(python), "-m", "pytest", *args.pytest_args], cwd=ROOT, env=env)


def command_run(args: argparse.Namespace) -> int:
    python = setup()
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the notebooks' inline figures must be kept
    if args.budget:
        env["LECTURE_UTILS_BUDGET"] = args.budget
    notebooks = [Path(n).resolve() for n in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    out = ROOT / "build" / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for notebook in notebooks:
        started = time.time()
        say(f"executing {notebook.name} (budget {args.budget or 'default'})")
        code = subprocess.call([str(python), "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                                "--ExecutePreprocessor.timeout=-1", f"--ExecutePreprocessor.kernel_name={KERNEL}",
                                "--output-dir", str(out), str(notebook)], cwd=notebook.parent, env=env)
        say(f"{notebook.name}: {'ok' if code == 0 else 'FAILED'} in {time.time() - started:.0f} s")
        if code:
            failed.append(notebook.name)
    say(f"executed notebooks are in {out.relative_to(ROOT)}/, results in build/results/")
    if failed:
        say("failed: " + ", ".join(failed))
    return 1 if failed else 0


def _executed_is_current(notebook: Path) -> bool:
    copy = ROOT / "build" / "notebooks" / notebook.name
    return copy.is_file() and copy.stat().st_mtime >= notebook.stat().st_mtime


def command_slides(args: argparse.Namespace) -> int:
    """Offline reveal.js slides of the notebooks into build/slides/ (executed copies from build/notebooks/)."""
    python = setup()
    notebooks = [Path(n).resolve() for n in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    failed = 0
    if not args.no_execute:
        # --budget given: execute every notebook in it; else execute (smoke) only those without a current copy
        todo = notebooks if args.budget else [n for n in notebooks if not _executed_is_current(n)]
        if todo:
            failed = command_run(argparse.Namespace(notebooks=[str(n) for n in todo], budget=args.budget or "smoke"))
    code = subprocess.call([str(python), "-m", "lecture_utils.publish", "slides", "--out", str(ROOT / "build" / "slides"),
                            *map(str, notebooks)], cwd=ROOT)
    if code == 0:
        say("slides are in build/slides/ (open NN_topic.slides.html in a browser; works offline)")
    return failed or code


def command_site(args: argparse.Namespace) -> int:
    """Execute every notebook (--budget) and write the static course site into build/site/."""
    python = setup()
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    todo = [n for n in notebooks if not _executed_is_current(n)] if args.reuse else notebooks
    failed = command_run(argparse.Namespace(notebooks=[str(n) for n in todo], budget=args.budget)) if todo else 0
    code = subprocess.call([str(python), "-m", "lecture_utils.publish", "site", "--out", str(ROOT / "build" / "site"),
                            *map(str, notebooks)], cwd=ROOT)
    if code == 0:
        say("the course site is in build/site/ (open index.html; works offline, publish the folder as it is)")
    return failed or code


def command_homework(args: argparse.Namespace) -> int:
    """Course staff: build the homework and autograders, or grade a folder (homework/homework.py).
    In the student edition (no homework/homework.py): open JupyterLab on homework/."""
    tool = ROOT / "homework" / "homework.py"
    if not tool.is_file():
        if args.homework_args:
            sys.exit("[course] this is the student edition: 'python3 course.py homework' opens the assignments "
                     "(building and grading them is for course staff)")
        python = setup()
        say("opening JupyterLab on homework/ (stop it with Ctrl-C); how to submit: homework/README.md")
        return subprocess.call([str(python), "-m", "jupyter", "lab", f"--notebook-dir={ROOT / 'homework'}"])
    python = setup(("homework",))
    return subprocess.call([str(python), str(tool), *args.homework_args], cwd=ROOT)


def command_release(args: argparse.Namespace) -> int:
    """Course staff: write the student edition of the course into OUT (homework/release.py)."""
    tool = ROOT / "homework" / "release.py"
    if not tool.is_file():
        sys.exit("[course] this is the student edition: it has no release to make")
    python = setup(("homework",))
    return subprocess.call([str(python), str(tool), str(Path(args.out).resolve())], cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    lab = sub.add_parser("lab", help="open JupyterLab on notebooks/ (the default)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    test = sub.add_parser("test", help="run the whole test suite (smoke budget); extra arguments go to pytest")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER, help="arguments passed on to pytest")
    run = sub.add_parser("run", help="execute notebooks headlessly into build/notebooks/")
    run.add_argument("notebooks", nargs="*", help="notebooks to execute (default: all, in course order)")
    run.add_argument("--budget", choices=("smoke", "standard", "full"), help="LECTURE_UTILS_BUDGET for this run")
    slides = sub.add_parser("slides", help="build offline reveal.js slides of the notebooks into build/slides/")
    slides.add_argument("notebooks", nargs="*", help="notebooks (default: all, in course order)")
    slides.add_argument("--budget", choices=("smoke", "standard", "full"),
                        help="execute every notebook in this budget first (default: reuse current executed "
                             "copies in build/notebooks/, execute the others in smoke)")
    slides.add_argument("--no-execute", action="store_true", help="execute nothing (notebooks without a current "
                        "executed copy become slides without outputs)")
    site = sub.add_parser("site", help="execute every notebook and write the static course site into build/site/")
    site.add_argument("--budget", choices=("smoke", "standard", "full"),
                      help="LECTURE_UTILS_BUDGET for the executions (default: the library's default)")
    site.add_argument("--reuse", action="store_true",
                      help="execute only notebooks without a current executed copy in build/notebooks/")
    homework = sub.add_parser("homework", help="course staff: 'build' the homework releases and autograders, "
                              "'grade FOLDER' of submissions offline (see homework/homework.py --help)")
    homework.add_argument("homework_args", nargs=argparse.REMAINDER,
                          help="build [--check] | grade FOLDER [--assignment NAME] [--time-limit S] ...")
    release = sub.add_parser("release", help="course staff: write the student edition (notebooks, library, data, "
                             "student README, homework without solutions or hidden tests) into OUT")
    release.add_argument("out", help="folder to write (new, empty, or an earlier release)")
    setup_parser = sub.add_parser("setup", help="only create the environment (add --test for the test extras)")
    setup_parser.add_argument("--test", action="store_true", help="include the test extras")
    args = parser.parse_args(argv)
    if args.command in (None, "lab"):
        if args.command is None:
            args.no_browser = False
        return command_lab(args)
    if args.command == "test":
        return command_test(args)
    if args.command == "run":
        return command_run(args)
    if args.command == "slides":
        return command_slides(args)
    if args.command == "site":
        return command_site(args)
    if args.command == "homework":
        return command_homework(args)
    if args.command == "release":
        return command_release(args)
    setup(("test",) if args.test else ())
    return 0


if __name__ == "__main__":
    sys.exit(main())

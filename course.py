#!/usr/bin/env python3
"""Set up and run the Generative Models for Vision course.  Needs only Python >= 3.10 and git.

    python3 course.py                 set up (first time only) and open JupyterLab on notebooks/
    python3 course.py test [ARGS]     set up with the test extras, then run the test suite (ARGS go to pytest)
    python3 course.py run [NB ...]    execute notebooks headlessly into build/notebooks/
                                      (--budget smoke|standard|full, default: the library's default)
    python3 course.py slides          offline reveal.js slides of every notebook into build/slides/
    python3 course.py site            execute every notebook (--budget) and write a static site into build/site/
    python3 course.py homework build  course staff: homework student versions + autograders into build/homework/
    python3 course.py homework grade FOLDER [--jobs N]   grade submitted notebooks offline, CSV of scores per question
    python3 course.py release OUT     course staff: write the student edition (no solutions, no hidden tests) into OUT
    python3 course.py homework        in the student edition: open JupyterLab on homework/

Set-up creates a virtual environment in .venv/ with the Python that runs this file, installs the
course package (lecture_utils) with the exact versions the course is tested with (constraints.txt),
and registers a Jupyter kernel.  It remembers what it installed (.venv/lecture_utils.stamp: the hash of
pyproject.toml and constraints.txt, the extras, the Python version and interpreter), so running a command
again installs nothing new.  A half-made or broken .venv/ is rebuilt (the reason is printed); a lock
file (.venv.lock) keeps two commands from installing at once.  Every inner step runs with this
interpreter or the environment's own Python, never with whatever ``python3`` is on PATH.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:          # course_tools/ sits beside this file, also when it is loaded by path
    sys.path.insert(0, str(ROOT))
from course_tools.executed import pick_executed  # noqa: E402 - standard library only, like this file

VENV = ROOT / ".venv"
KERNEL = "lecture-utils"
LOCK_WAIT_S = 1800                # how long a second command waits for a running installation


class SetupError(RuntimeError):
    """A set-up step failed; the message is the one line the user sees (``cli`` adds the log's path
    unless ``with_log`` is False: a failure before anything was logged)."""

    def __init__(self, message: str, with_log: bool = True):
        super().__init__(message)
        self.with_log = with_log


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def stamp_path() -> Path:
    return VENV / "lecture_utils.stamp"


def log_path() -> Path:
    """The set-up log: outside .venv/, so that it survives a .venv/ that has to be removed."""
    return ROOT / "build" / "setup.log"


def lock_path() -> Path:
    return ROOT / ".venv.lock"


def say(message: str) -> None:
    print(f"[course] {message}", flush=True)


def project_hash() -> str:
    """What decides the installation: the package's metadata and the exact versions it is installed at."""
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        path = ROOT / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    return digest.hexdigest()


def installed() -> dict:
    try:
        return json.loads(stamp_path().read_text())
    except (OSError, ValueError):
        return {}


def venv_command(target: Path) -> list[str]:
    """The command that creates the virtual environment (with the Python running this file)."""
    return [sys.executable, "-m", "venv", str(target)]


def _python_version(python: Path) -> str | None:
    """``major.minor.micro`` of ``python``, or None when it does not run."""
    try:
        result = subprocess.run([str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _minor(version: str | None) -> str:
    return ".".join((version or "").split(".")[:2])


def diagnose() -> str | None:
    """Why .venv/ cannot be used as it is (None: it can, or there is none yet)."""
    if not VENV.exists():
        return None
    python = venv_python()
    if not python.exists() and not python.is_symlink():
        return (f"{VENV.name}/ has no {python.relative_to(VENV)} (an earlier set-up stopped half-way, "
                "or creating the environment failed)")
    version = _python_version(python)
    if version is None:
        return f"{python.relative_to(ROOT)} does not run (the Python it was made from was moved, upgraded or removed)"
    recorded = installed().get("python")
    if recorded and _minor(recorded) != _minor(version):
        return f"{VENV.name}/ was set up with Python {recorded}, its interpreter is now Python {version}"
    pip = subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True, text=True)
    if pip.returncode != 0:
        return f"{VENV.name}/ has no working pip (creating the environment did not finish)"
    return None


def is_current(extras: tuple[str, ...] = ()) -> bool:
    """True when .venv/ holds the package with ``extras`` for the current pyproject.toml/constraints.txt."""
    stamp = installed()
    return (stamp.get("project") == project_hash() and set(extras) <= set(stamp.get("extras", []))
            and _minor(stamp.get("python")) == _minor(_python_version(venv_python())))


# --------------------------------------------------------------------------- the lock
class InstallLock:
    """An exclusive lock on .venv.lock (fcntl on Linux/macOS, msvcrt on Windows) for the whole set-up.

    The operating system releases it when the holder exits, however it exits, so a crashed run leaves
    no stale lock; the file holds the holder's pid, for the waiting message."""

    def __init__(self, path: Path, wait_s: float = LOCK_WAIT_S):
        self.path, self.wait_s, self.handle = path, wait_s, None

    def _try(self) -> bool:
        try:
            if os.name == "nt":
                import msvcrt
                self.handle.seek(0)
                msvcrt.locking(self.handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl
                fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def __enter__(self) -> "InstallLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a+")
        deadline, told = time.monotonic() + self.wait_s, False
        while not self._try():
            if not told:
                self.handle.seek(0)
                holder = self.handle.read().strip() or "another process"
                say(f"another course.py (pid {holder}) is setting up {VENV.name}/; waiting for it to finish")
                told = True
            if time.monotonic() > deadline:
                self.handle.close()
                raise SetupError(f"waited {self.wait_s:.0f} s for the set-up running in another course.py "
                                 f"(lock {self.path}); stop it or try again later", with_log=False)
            time.sleep(0.5)
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()
        return self

    def __exit__(self, *exc) -> None:
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.close()    # closing releases the lock (flock and msvcrt alike)


# --------------------------------------------------------------------------- set-up
def _run_logged(command: list[str], log, **kwargs) -> int:
    log.write(f"\n$ {' '.join(command)}\n")
    log.flush()
    return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, **kwargs).returncode


def _venv_failure(output: str) -> str:
    """One line saying why creating the environment failed, naming the package to install on Debian/Ubuntu."""
    if "ensurepip" in output or "No module named venv" in output:
        wanted = re.search(r"apt(?:-get)? install (python3[\w.]*-venv)", output)
        package = wanted.group(1) if wanted else f"python{sys.version_info[0]}.{sys.version_info[1]}-venv"
        if wanted or Path("/etc/debian_version").exists():
            return (f"Python's venv module cannot create environments here (ensurepip is missing): on Debian/Ubuntu "
                    f"install it with `sudo apt install {package}`, then run this command again")
        return "Python's venv module (or its ensurepip) is missing: install the full Python, then run this command again"
    return "creating the virtual environment failed"


def setup(extras: tuple[str, ...] = ()) -> Path:
    """Create .venv and install the package (with ``extras``) unless the stamp says it is there.

    Raises :class:`SetupError` (one line; ``main`` adds the log's path) when a step fails."""
    if sys.version_info < (3, 10):
        raise SetupError(f"Python >= 3.10 is needed, this is {sys.version.split()[0]} ({sys.executable})",
                         with_log=False)
    if is_current(extras):
        return venv_python()
    with InstallLock(lock_path()):
        if is_current(extras):             # another command installed it while this one waited
            return venv_python()
        return _install(extras)


def _install(extras: tuple[str, ...]) -> Path:
    python = venv_python()
    log = log_path()
    log.parent.mkdir(parents=True, exist_ok=True)
    reason = diagnose()
    if reason:
        say(f"rebuilding {VENV.name}/: {reason}")
        shutil.rmtree(VENV, ignore_errors=True)
    stamp = installed()
    same_project = stamp.get("project") == project_hash()
    wanted = sorted(set(extras) | set(stamp.get("extras", [])))   # keep what this environment already has
    target = f".[{','.join(wanted)}]" if wanted else "."
    started = time.time()
    with open(log, "w") as out:
        out.write(f"course.py set-up with {sys.executable} (Python {platform.python_version()}, "
                  f"{platform.platform()})\n")
        if not python.exists():
            say(f"creating the virtual environment {VENV.name}/ with Python {platform.python_version()} ({sys.executable})")
            code = _run_logged(venv_command(VENV), out)
            if code == 0 and python.exists():
                code = _run_logged([str(python), "-m", "pip", "--version"], out)   # ensurepip did its part
            if code != 0 or not python.exists():
                out.flush()
                shutil.rmtree(VENV, ignore_errors=True)      # never leave a half-made environment behind
                raise SetupError(_venv_failure(log.read_text()))
        elif stamp and not same_project:
            say("pyproject.toml or constraints.txt changed since the last set-up: updating the installation")
        elif not stamp:
            say(f"{VENV.name}/ has no record of a finished installation: installing (again)")
        say(f"installing lecture_utils{target[1:]} with the versions in constraints.txt "
            f"(first time: about 5.5 GB with PyTorch, a few minutes; log in {log})")
        stamp_path().unlink(missing_ok=True)                  # no stamp until everything below has worked
        code = _run_logged([str(python), "-m", "pip", "install", "--disable-pip-version-check",
                            "-c", "constraints.txt", "-e", target], out, cwd=ROOT)
        if code != 0:
            out.flush()
            tail = [line for line in log.read_text().splitlines() if "is ignored" not in line][-25:]
            print("\n".join(tail))
            raise SetupError(f"installing the course package failed (pip exited with {code})")
        code = _run_logged([str(python), "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL,
                            "--display-name", "Python (Generative Models for Vision)"], out)
        if code != 0:
            raise SetupError(f"registering the Jupyter kernel failed (exit {code})")
    version = _python_version(python)
    record = {"project": project_hash(), "extras": wanted, "python": version,
              "interpreter": sys.executable, "venv_python": str(python)}
    temporary = stamp_path().with_name(f".{stamp_path().name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(temporary, stamp_path())
    say(f"installed in {time.time() - started:.0f} s")
    return python


# --------------------------------------------------------------------------- commands
def _free_port(start: int = 8888) -> int:
    for port in range(start, start + 100):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_server(url: str, process: subprocess.Popen, timeout_s: float = 180) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/api", timeout=5):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def command_lab(args: argparse.Namespace) -> int:
    python = setup()
    port = args.port or _free_port()
    token = args.token or secrets.token_hex(24)
    command = [str(python), "-m", "jupyter", "lab", f"--notebook-dir={ROOT / 'notebooks'}", f"--port={port}",
               "--ServerApp.port_retries=0", f"--ip={args.ip}", f"--IdentityProvider.token={token}"]
    if args.no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        say("running as root (a container or a cloud machine?): JupyterLab is started with --allow-root")
        command.append("--allow-root")
    say("starting JupyterLab on notebooks/ (stop it with Ctrl-C)")
    process = subprocess.Popen(command, cwd=ROOT)
    if hasattr(signal, "SIGTERM"):             # a terminated course.py stops its JupyterLab too
        signal.signal(signal.SIGTERM, _interrupt)
    host = "127.0.0.1" if args.ip in ("localhost", "127.0.0.1", "0.0.0.0", "") else args.ip
    try:
        if _wait_for_server(f"http://{host}:{port}", process):
            say(f"JupyterLab is running: open http://{host}:{port}/lab?token={token}")
        elif process.poll() is None:
            say(f"JupyterLab has not answered yet; it should be at http://{host}:{port}/lab?token={token}")
        return process.wait()
    except KeyboardInterrupt:
        say("stopping JupyterLab")
        process.terminate()
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


def command_test(args: argparse.Namespace) -> int:
    """Run pytest in the smoke budget; every argument after ``test`` goes to pytest as it is."""
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


def command_slides(args: argparse.Namespace) -> int:
    """Offline reveal.js slides of the notebooks into build/slides/ (executed copies from build/notebooks/)."""
    python = setup()
    notebooks = [Path(n).resolve() for n in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    failed = 0
    if not args.no_execute:
        # --budget given: execute every notebook in it; else execute (smoke) only those without a current copy
        todo = notebooks if args.budget else [n for n in notebooks if not pick_executed(n, ROOT / "build" / "notebooks").executed]
        if todo:
            failed = command_run(argparse.Namespace(notebooks=[str(n) for n in todo], budget=args.budget or "smoke"))
    code = subprocess.call([str(python), "-m", "course_tools.publish", "slides", "--out", str(ROOT / "build" / "slides"),
                            *map(str, notebooks)], cwd=ROOT)
    if code == 0:
        say("slides are in build/slides/ (open NN_topic.slides.html in a browser; works offline)")
    return failed or code


def command_site(args: argparse.Namespace) -> int:
    """Execute every notebook (--budget) and write the static course site into build/site/."""
    python = setup()
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    todo = [n for n in notebooks if not pick_executed(n, ROOT / "build" / "notebooks").executed] if args.reuse else notebooks
    failed = command_run(argparse.Namespace(notebooks=[str(n) for n in todo], budget=args.budget)) if todo else 0
    code = subprocess.call([str(python), "-m", "course_tools.publish", "site", "--out", str(ROOT / "build" / "site"),
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
    python = setup()
    return subprocess.call([str(python), str(tool), *args.homework_args], cwd=ROOT)


def command_release(args: argparse.Namespace) -> int:
    """Course staff: write the student edition of the course into OUT (homework/release.py)."""
    tool = ROOT / "homework" / "release.py"
    if not tool.is_file():
        sys.exit("[course] this is the student edition: it has no release to make")
    python = setup()
    return subprocess.call([str(python), str(tool), str(Path(args.out).resolve())], cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["test"]:   # before argparse, so that every pytest argument passes through as it is
        pytest_args = argv[2:] if argv[1:2] == ["--"] else argv[1:]
        return command_test(argparse.Namespace(pytest_args=pytest_args))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_lab_options(parser)           # `python3 course.py --no-browser` works as `course.py lab --no-browser`
    sub = parser.add_subparsers(dest="command")
    lab = sub.add_parser("lab", help="open JupyterLab on notebooks/ (the default)")
    add_lab_options(lab)
    sub.add_parser("test", help="run the whole test suite (smoke budget); every further argument goes to pytest, "
                   "e.g. course.py test -k gan -x")
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
        return command_lab(args)
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


def add_lab_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    parser.add_argument("--port", type=int, default=0, help="port for JupyterLab (default: the first free one from 8888)")
    parser.add_argument("--ip", default="localhost",
                        help="address to listen on (default localhost; 0.0.0.0 in a container whose port is published)")
    parser.add_argument("--token", default="", help="the access token (default: a random one, printed in the URL)")


def cli(argv: list[str] | None = None) -> int:
    """``main`` for the shell: a failed set-up ends with one line that names the log."""
    try:
        return main(argv)
    except SetupError as error:
        sys.exit(f"[course] set-up failed: {error}" + (f". The log is {log_path()}" if error.with_log else ""))


if __name__ == "__main__":
    sys.exit(cli())

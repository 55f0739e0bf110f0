"""course.py: the set-up logic against a fake pip, the lock, pytest's arguments, and JupyterLab for real.

The set-up tests run the real ``course.setup`` in a temporary repository.  Only the command that creates
the environment is replaced: it makes a real virtual environment (without pip) and puts a fake ``pip``,
``ipykernel`` and ``pytest`` into it, which record their arguments and exit with a chosen code -- the
subprocess boundary, where the real set-up hands over to pip.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RECORDER = textwrap.dedent('''\
    import json, os, sys
    module = __spec__.parent
    with open(os.environ["FAKE_CALLS"], "a") as calls:
        calls.write(json.dumps({"module": module, "args": sys.argv[1:], "cwd": os.getcwd(),
                                "python": sys.executable,
                                "budget": os.environ.get("LECTURE_UTILS_BUDGET")}) + "\\n")
    probe = module == "pip" and sys.argv[1:] == ["--version"]
    sys.exit(int(os.environ.get("FAKE_PIP_VERSION_EXIT" if probe else "FAKE_%s_EXIT" % module.upper(), "0")))
''')

CREATOR = textwrap.dedent('''\
    """A stand-in for `python -m venv`: a real environment without pip, with a fake pip, ipykernel, pytest."""
    import os, pathlib, sys, venv
    target = pathlib.Path(sys.argv[1])
    if os.environ.get("FAKE_VENV_MODE") == "no-ensurepip":      # what Debian prints without python3-venv
        (target / "bin").mkdir(parents=True)
        print("The virtual environment was not created successfully because ensurepip is not\\n"
              "available.  On Debian/Ubuntu systems, you need to install the python3-venv\\n"
              "package using the following command.\\n\\n    apt install python3.11-venv\\n")
        sys.exit(1)
    venv.create(target, with_pip=False, symlinks=os.name != "nt")
    site = next(p for p in target.rglob("site-packages") if p.is_dir())
    for module in ("pip", "ipykernel", "pytest"):
        (site / module).mkdir()
        (site / module / "__init__.py").write_text("")
        (site / module / "__main__.py").write_text(RECORDER)
''').replace("RECORDER", repr(RECORDER))


def load_course():
    spec = importlib.util.spec_from_file_location("course_under_test", ROOT / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def course(tmp_path, monkeypatch):
    """course.py on a temporary repository whose environment creator is the fake above."""
    module = load_course()
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("pyproject.toml", "constraints.txt"):
        (repo / name).write_bytes((ROOT / name).read_bytes())
    creator = tmp_path / "fake_venv.py"
    creator.write_text(CREATOR)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setattr(module, "ROOT", repo)
    monkeypatch.setattr(module, "VENV", repo / ".venv")
    monkeypatch.setattr(module, "venv_command", lambda target: [sys.executable, str(creator), str(target)])
    monkeypatch.setenv("FAKE_CALLS", str(calls))
    for name in ("FAKE_VENV_MODE", "FAKE_PIP_EXIT", "FAKE_PIP_VERSION_EXIT", "FAKE_IPYKERNEL_EXIT", "FAKE_PYTEST_EXIT"):
        monkeypatch.delenv(name, raising=False)

    def recorded(module_name=None):
        if not calls.exists():
            return []
        rows = [json.loads(line) for line in calls.read_text().splitlines()]
        return [r for r in rows if module_name is None or r["module"] == module_name]

    module.recorded = recorded
    return module


def pip_installs(course):
    return [r["args"] for r in course.recorded("pip") if r["args"][:1] == ["install"]]


def test_setup_installs_with_the_constraints_and_stamps_python_and_interpreter(course, capsys):
    assert course.main(["setup"]) == 0
    python = course.venv_python()
    assert python.exists()
    assert pip_installs(course) == [["install", "--disable-pip-version-check", "-c", "constraints.txt", "-e", "."]]
    assert course.recorded("pip")[-1]["cwd"] == str(course.ROOT)
    kernel = course.recorded("ipykernel")
    assert len(kernel) == 1 and kernel[0]["args"][:2] == ["install", "--sys-prefix"]
    # every inner step ran with the environment's own Python, not a `python3` from PATH
    assert {Path(r["python"]).parent for r in course.recorded()} == {python.parent}
    stamp = json.loads(course.stamp_path().read_text())
    assert stamp["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert stamp["interpreter"] == sys.executable and stamp["venv_python"] == str(python)
    assert stamp["extras"] == [] and stamp["project"] == course.project_hash()

    assert course.main(["setup"]) == 0                  # nothing new to install
    assert len(pip_installs(course)) == 1
    assert course.main(["setup", "--test"]) == 0        # more extras: installs them
    assert pip_installs(course)[-1][-1] == ".[test]"
    assert course.main(["setup"]) == 0 and len(pip_installs(course)) == 2

    with open(course.ROOT / "constraints.txt", "a") as constraints:   # the constraints are part of the stamp
        constraints.write("# a change\n")
    capsys.readouterr()
    assert course.main(["setup"]) == 0
    assert pip_installs(course)[-1][-1] == ".[test]"    # keeps the extras it had
    assert "constraints.txt changed" in capsys.readouterr().out


def test_a_half_made_environment_is_rebuilt_with_the_reason(course, capsys):
    (course.VENV / "bin").mkdir(parents=True)           # what an interrupted `python -m venv` leaves
    (course.VENV / "lecture_utils.stamp").write_text("{}")
    assert course.main(["setup"]) == 0
    out = capsys.readouterr().out
    assert "rebuilding .venv/" in out and "has no" in out and "half-way" in out
    assert course.venv_python().exists() and len(pip_installs(course)) == 1


@pytest.mark.skipif(os.name == "nt", reason="a dangling symlink stands for a removed interpreter (POSIX)")
def test_an_environment_whose_python_no_longer_runs_is_rebuilt(course, capsys, tmp_path):
    assert course.main(["setup"]) == 0
    python = course.venv_python()
    python.unlink()
    python.symlink_to(tmp_path / "python3.99-removed")
    capsys.readouterr()
    assert course.main(["setup"]) == 0
    out = capsys.readouterr().out
    assert "rebuilding .venv/" in out and "does not run" in out
    assert len(pip_installs(course)) == 2 and course.is_current()


def test_an_environment_made_with_another_python_is_rebuilt(course, capsys):
    assert course.main(["setup"]) == 0
    stamp = json.loads(course.stamp_path().read_text())
    course.stamp_path().write_text(json.dumps(dict(stamp, python="3.9.18")))
    capsys.readouterr()
    assert course.main(["setup"]) == 0
    assert "was set up with Python 3.9.18" in capsys.readouterr().out
    assert len(pip_installs(course)) == 2


def test_missing_venv_on_debian_names_the_package_and_leaves_no_half_made_environment(course, monkeypatch):
    monkeypatch.setenv("FAKE_VENV_MODE", "no-ensurepip")
    with pytest.raises(SystemExit) as stopped:
        course.cli(["setup"])
    message = str(stopped.value)
    assert message.startswith("[course] set-up failed:") and "\n" not in message
    assert "sudo apt install python3.11-venv" in message
    assert message.endswith(f"The log is {course.log_path()}")
    assert "ensurepip is not" in course.log_path().read_text()
    assert not course.VENV.exists()                      # the next run starts clean
    monkeypatch.delenv("FAKE_VENV_MODE")
    assert course.main(["setup"]) == 0 and course.is_current()


def test_an_environment_created_without_pip_is_a_failed_creation(course, monkeypatch):
    monkeypatch.setenv("FAKE_PIP_VERSION_EXIT", "1")      # `python -m pip --version` fails: no pip
    with pytest.raises(SystemExit) as stopped:
        course.cli(["setup"])
    assert "creating the virtual environment failed" in str(stopped.value)
    assert not course.VENV.exists() and pip_installs(course) == []


def test_a_failed_pip_install_ends_with_one_line_and_is_retried(course, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_PIP_EXIT", "1")
    with pytest.raises(SystemExit) as stopped:
        course.cli(["setup"])
    message = str(stopped.value)
    assert message == (f"[course] set-up failed: installing the course package failed (pip exited with 1). "
                       f"The log is {course.log_path()}")
    assert not course.stamp_path().exists() and not course.is_current()
    monkeypatch.delenv("FAKE_PIP_EXIT")
    capsys.readouterr()
    assert course.main(["setup"]) == 0
    assert "no record of a finished installation" in capsys.readouterr().out
    assert len(pip_installs(course)) == 2 and course.is_current()


def test_pytest_arguments_pass_through_whatever_they_are(course):
    assert course.main(["setup", "--test"]) == 0
    assert course.main(["test", "-k", "gan", "-x"]) == 0
    assert course.main(["test", "--", "-q", "tests/test_gan.py"]) == 0
    assert course.main(["test", "--co", "-p", "no:cacheprovider"]) == 0
    runs = course.recorded("pytest")
    assert [r["args"] for r in runs] == [["-k", "gan", "-x"], ["-q", "tests/test_gan.py"],
                                         ["--co", "-p", "no:cacheprovider"]]
    assert {r["budget"] for r in runs} == {"smoke"} and runs[0]["cwd"] == str(course.ROOT)
    assert len(pip_installs(course)) == 1                # `test` found the test extras installed


def test_the_lock_keeps_a_second_set_up_waiting_until_the_first_is_done(course):
    holder = course.InstallLock(course.lock_path())
    holder.__enter__()                                   # "another course.py" is installing
    done = threading.Event()
    worker = threading.Thread(target=lambda: (course.setup(), done.set()))
    worker.start()
    time.sleep(1.5)
    assert not done.is_set() and pip_installs(course) == []
    holder.__exit__(None, None, None)
    worker.join(60)
    assert done.is_set() and len(pip_installs(course)) == 1


def test_concurrent_set_ups_install_once(course):
    threads = [threading.Thread(target=course.setup) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(pip_installs(course)) == 1 and course.is_current()


@pytest.mark.skipif(os.name == "nt", reason="kills a process holding the lock (POSIX signals)")
def test_a_lock_left_by_a_killed_process_does_not_block(course):
    course.lock_path().parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
        import fcntl, time
        handle = open({str(course.lock_path())!r}, "a+")
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("12345"); handle.flush()
        print("locked", flush=True)
        time.sleep(300)
        """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait()
    started = time.monotonic()
    course.setup()
    assert time.monotonic() - started < 60 and len(pip_installs(course)) == 1


def test_no_inner_step_assumes_python3_on_path():
    source = (ROOT / "course.py").read_text()
    course = load_course()
    assert course.venv_command(Path("x"))[0] == sys.executable
    for command in ('["python3"', "['python3'", '["python"', "['python'", '"python3 -m', '"python -m'):
        assert command not in source, command


# --------------------------------------------------------------------------- the main command, for real
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(os.name == "nt", reason="stops the server with SIGINT (POSIX)")
def test_main_command_serves_jupyterlab_and_lists_the_notebooks():
    course = load_course()
    if not course.is_current():
        pytest.skip("the course environment is not set up here (python3 course.py setup)")
    port, token = _free_port(), "course-test-token"
    process = subprocess.Popen([sys.executable, str(ROOT / "course.py"), "--no-browser", "--port", str(port),
                                "--token", token], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while not any("JupyterLab is running" in line for line in lines):
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.5)
        announced = next(line for line in lines if "JupyterLab is running" in line)
        assert f"{url}/lab?token={token}" in announced
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            assert any("--allow-root" in line for line in lines)
        request = urllib.request.Request(f"{url}/api/contents/", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            listing = json.load(response)
        names = sorted(item["name"] for item in listing["content"] if item["type"] == "notebook")
        assert names == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
        with pytest.raises(urllib.error.HTTPError) as refused:   # the token is needed
            urllib.request.urlopen(f"{url}/api/contents/", timeout=30)
        assert refused.value.code == 403
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    with socket.socket() as probe:                                   # JupyterLab stopped with it
        assert probe.connect_ex(("127.0.0.1", port)) != 0

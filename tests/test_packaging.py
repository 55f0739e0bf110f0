"""Ranges for the package, pins for the course: pyproject.toml accepts a compatible PyTorch that is already
installed, constraints.txt picks the tested versions inside those ranges, environment.yml uses them."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")


def requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {Requirement(r).name: Requirement(r) for r in listed}


def constraints() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            pin = Requirement(line)
            (spec,) = pin.specifier
            assert spec.operator == "==", line
            pins[pin.name] = Version(spec.version)
    return pins


def test_pytorch_is_a_range_in_the_package_and_a_pin_in_the_constraints():
    required, pinned = requirements(), constraints()
    for name in ("torch", "torchvision"):
        assert not any(s.operator in ("==", "===", "~=") for s in required[name].specifier), required[name]
        assert name in pinned


def test_every_pinned_version_lies_in_the_package_ranges():
    required, pinned = requirements(), constraints()
    assert set(pinned) == set(required), set(pinned) ^ set(required)
    for name, version in pinned.items():
        assert required[name].specifier.contains(version, prereleases=True), (name, version, required[name])


def test_course_and_conda_install_with_the_constraints():
    course = (ROOT / "course.py").read_text()
    assert '"-c", "constraints.txt"' in course
    environment = (ROOT / "environment.yml").read_text()
    assert "- -c constraints.txt" in environment and "- -e .[test]" in environment


OLDER_BUILD = {"torch": "2.6.0", "torchvision": "0.21.0"}     # an older PyTorch than the course's pin


def _minimum(requirement: Requirement) -> str:
    """The oldest version the package accepts (its lower bound), else an older build than the pin."""
    lows = [s.version for s in requirement.specifier if s.operator == ">="]
    return lows[0] if lows else OLDER_BUILD[requirement.name]


def test_installing_the_package_keeps_a_compatible_pytorch_already_there(tmp_path):
    """pip's dry-run report for `pip install <course>` in an environment whose PyTorch is the oldest the
    package accepts (an older build than the course's pin, as on a hosted service): nothing but the course
    package is installed.  With an exact pin (torch==X) pip would have to replace it (or fail offline)."""
    required = requirements()
    source = tmp_path / "course"
    (source / "lecture_utils").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "setup.py"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copy2(ROOT / "lecture_utils" / "__init__.py", source / "lecture_utils" / "__init__.py")

    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # this environment's packages (pip, numpy, jupyter, ...) are visible; PyTorch is the service's older one
    (site / "course_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    service = {name: _minimum(required[name]) for name in ("torch", "torchvision")}
    for name, version in service.items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "INSTALLER").write_text("pip\n")
        (info / "RECORD").write_text("")
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                            env=_offline_env())
    assert {p["name"]: p["version"] for p in json.loads(listed.stdout)}["torch"] == service["torch"]

    report = tmp_path / "report.json"
    result = subprocess.run([str(python), "-m", "pip", "install", "--dry-run", "--report", str(report),
                             "--no-index", "--no-build-isolation", str(source)],
                            capture_output=True, text=True, env=_offline_env(), timeout=600)
    if result.returncode != 0 and "Could not find a version" in result.stderr and "torch" not in result.stderr:
        pytest.skip(f"pip cannot resolve the course's other dependencies offline here: {result.stderr[-500:]}")
    assert result.returncode == 0, result.stderr[-3000:]
    install = {item["metadata"]["name"]: item["metadata"]["version"] for item in json.loads(report.read_text())["install"]}
    assert "torch" not in install and "torchvision" not in install, install
    assert set(install) == {"lecture_utils"}, install


def _offline_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def test_the_library_students_import_loads_no_course_tooling():
    """``import lecture_utils`` and every one of its modules, in a fresh interpreter, load neither nbconvert
    (publishing: course_tools/) nor otter (grading: homework/)."""
    probe = (
        "import importlib, json, pkgutil, sys\n"
        "import lecture_utils\n"
        "names = [m.name for m in pkgutil.walk_packages(lecture_utils.__path__, 'lecture_utils.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('nbconvert', 'otter', 'course_tools'))\n"
        "print(json.dumps({'modules': names, 'tooling': loaded}))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT / "tests", env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"lecture_utils.data.mnist", "lecture_utils.widgets", "lecture_utils.checkpoints"} <= set(report["modules"])
    assert report["tooling"] == []
    assert not (ROOT / "lecture_utils" / "static").exists() and not (ROOT / "lecture_utils" / "templates").exists()

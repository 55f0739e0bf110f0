"""Hosted notebooks: every notebook starts with the set-up lines, and those lines install the course
package in a fresh environment without it, keep its PyTorch, and the installed package finds and
verifies the shipped checkpoints from where it is installed (not from the clone)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from lecture_utils.checkpoints import checkpoints_dir, read_manifest
from lecture_utils.hosted import COURSE_URL, SETUP_CELL, first_code_cell, with_setup_cell

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_starts_with_the_hosted_setup_lines(path):
    source = "".join(first_code_cell(json.loads(path.read_text()))["source"])
    assert source.startswith(SETUP_CELL), f"{path.name}: run python -m lecture_utils.hosted"
    assert "import lecture_utils" in source[len(SETUP_CELL):]


def test_setup_lines_are_replaced_not_stacked():
    once = with_setup_cell("import lecture_utils as lu\n")
    older = once.replace(COURSE_URL, "https://example.org/old-course")
    assert with_setup_cell(older) == once and once.count("Set-up for hosted") == 1
    compile(SETUP_CELL, "setup-cell", "exec")


def make_clone(destination: Path) -> Path:
    """What a student's clone holds that a build needs (the package, its metadata, the checkpoints)."""
    destination.mkdir(parents=True)
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, destination / name)
    for package in ("lecture_utils", "course_tools"):
        shutil.copytree(ROOT / package, destination / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(checkpoints_dir(), destination / "data" / "checkpoints")
    (destination / "notebooks").mkdir()
    return destination


def fresh_environment(folder: Path) -> Path:
    """A new virtual environment that sees this environment's third-party packages (a .pth file: no 5 GB
    reinstall of PyTorch) but not lecture_utils, whose editable install is not carried over."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "course_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


CHECK = textwrap.dedent("""\
    import json, pathlib, sys, sysconfig
    import lecture_utils, torch
    from lecture_utils.checkpoints import checkpoints_dir, load_shipped, read_manifest, sha256_of
    folder = checkpoints_dir()
    manifest = read_manifest()
    print(json.dumps({
        "package": lecture_utils.__file__, "torch": torch.__file__, "torch_version": torch.__version__,
        "site": sysconfig.get_paths()["purelib"], "checkpoints": str(folder),
        "verified": {name: sha256_of(folder / info["file"]) == info["sha256"] for name, info in manifest.items()},
        "vae_keys": len(load_shipped("vae")["model"]),
    }))
""")


def run_setup_cell(python: Path, cwd: Path, cell: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "LECTURE_UTILS_"))}
    # offline: no index; the build uses the setuptools this environment already sees
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    probe = subprocess.run([str(python), "-c", "import lecture_utils"], cwd=cwd, env=env, capture_output=True)
    assert probe.returncode != 0, "the fresh environment must start without lecture_utils"
    result = subprocess.run([str(python), "-c", cell + "\n" + CHECK], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_installed(report: dict, clone: Path) -> None:
    site = Path(report["site"])
    assert Path(report["package"]).is_relative_to(site), report["package"]      # installed, not the clone
    assert Path(report["checkpoints"]) == site / "lecture_utils" / "shipped" / "checkpoints"
    assert not Path(report["checkpoints"]).is_relative_to(clone)
    assert set(report["verified"]) == set(read_manifest()) and all(report["verified"].values()), report["verified"]
    assert report["vae_keys"] > 0
    import torch
    assert report["torch"] == torch.__file__ and report["torch_version"] == torch.__version__  # not replaced
    assert not (site / "torch").exists()
    # the wheel is the library only: course tooling and its vendored web libraries stay in the clone
    assert not (site / "course_tools").exists() and not (site / "lecture_utils" / "static").exists()


def test_setup_cell_installs_from_the_clone_it_sits_in(tmp_path):
    clone = make_clone(tmp_path / "clone")
    python = fresh_environment(tmp_path / "env")
    check_installed(run_setup_cell(python, clone / "notebooks", SETUP_CELL), clone)


def test_setup_cell_installs_from_the_course_url_outside_a_clone(tmp_path):
    clone = make_clone(tmp_path / "published")
    python = fresh_environment(tmp_path / "env")
    elsewhere = tmp_path / "content"          # Colab's working directory holds no clone
    elsewhere.mkdir()
    cell = SETUP_CELL.replace(COURSE_URL, clone.as_uri())
    assert cell != SETUP_CELL
    check_installed(run_setup_cell(python, elsewhere, cell), clone)

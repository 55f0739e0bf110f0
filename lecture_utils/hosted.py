"""The set-up lines every notebook starts with, so that it also runs on a hosted notebook service.

On Colab, a JupyterHub or any Jupyter without the course installed, ``import lecture_utils`` fails.
The first code cell of every notebook therefore begins with :data:`SETUP_CELL`: when the package is
missing it installs it with pip, from the clone the notebook sits in (found by walking up from the
working directory to the folder with ``lecture_utils/``), else from :data:`COURSE_URL`.  A plain
``pip install`` (no ``--upgrade``, no constraints file) keeps the service's PyTorch: the package asks
for ranges (``torch>=2.6``), which the service's build satisfies.  The shipped checkpoints travel inside
the package (the wheel carries ``data/checkpoints/`` as ``lecture_utils/shipped/checkpoints/``, see
``setup.py``), and :func:`lecture_utils.checkpoints.load_shipped` verifies each one's sha256 before it
loads it.  In a set-up course environment the lines do nothing.

Instructors set :data:`COURSE_URL` once, here, then write it into every notebook::

    python -m lecture_utils.hosted            # rewrite the set-up lines of notebooks/NN_*.ipynb
    python -m lecture_utils.hosted --check    # exit 1 if a notebook's set-up lines differ

``tests/test_hosted.py`` checks that every notebook starts with these lines and runs them in a fresh
environment without the package.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Where pip finds the course when a notebook is opened outside a clone: anything ``pip install`` accepts
# (``git+https://github.com/OWNER/REPO``, a wheel's URL).  Instructors: set it to your copy of the course.
COURSE_URL = "git+https://github.com/COURSE-OWNER/generative-models-for-vision"

SETUP_CELL = f'''\
# Set-up for hosted notebooks (Colab, JupyterHub): installs the course package if it is missing,
# keeping the service's PyTorch. In the course's own environment this does nothing.
import importlib, importlib.util, pathlib, subprocess, sys
if importlib.util.find_spec("lecture_utils") is None:
    COURSE_URL = "{COURSE_URL}"
    here = pathlib.Path.cwd().resolve()
    clone = next((p for p in [here, *here.parents] if (p / "lecture_utils" / "__init__.py").is_file()), None)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", str(clone or COURSE_URL)], check=True)
    importlib.invalidate_caches()
'''


def _notebooks(folder: Path) -> list[Path]:
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def first_code_cell(notebook: dict) -> dict:
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            return cell
    raise ValueError("the notebook has no code cell")


def with_setup_cell(source: str) -> str:
    """``source`` (a first code cell) starting with the current :data:`SETUP_CELL`: an older set-up block
    (up to its ``importlib.invalidate_caches()`` line) is replaced, else the lines are put in front."""
    marker = "# Set-up for hosted notebooks"
    end = "    importlib.invalidate_caches()\n"
    if source.startswith(marker) and end in source:
        source = source[source.index(end) + len(end):]
    return SETUP_CELL + "\n" + source.lstrip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: notebooks/NN_*.ipynb)")
    parser.add_argument("--check", action="store_true", help="only report notebooks whose set-up lines differ")
    args = parser.parse_args(argv)
    from .paths import repo_root

    paths = args.notebooks or _notebooks(repo_root() / "notebooks")
    stale = []
    for path in paths:
        notebook = json.loads(path.read_text())
        cell = first_code_cell(notebook)
        source = "".join(cell["source"])
        if source.startswith(SETUP_CELL):
            continue
        stale.append(path.name)
        if not args.check:
            cell["source"] = with_setup_cell(source).splitlines(keepends=True)
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
            temporary.replace(path)
    verb = "differ" if args.check else "updated"
    print(f"{len(stale)} notebook(s) {verb}: {', '.join(stale) or 'none'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())

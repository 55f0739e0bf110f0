"""Slide metadata for the notebooks: one notebook, three media (JupyterLab, RISE slides, reveal.js HTML).

Each cell may carry ``cell.metadata.slideshow.slide_type``, one of ``SLIDE_TYPES``. JupyterLab's
RISE extension (jupyterlab-rise) presents a notebook live from it, and nbconvert's SlidesExporter
turns the same metadata into reveal.js HTML (``python3 course.py slides``).

:func:`add_slide_metadata` gives every cell that has *no* slide type a sensible one, and leaves
cells that have one alone, so an author's choices win and applying it twice changes nothing:

* the first cell (the title) and every markdown section ``## ...`` start a **slide**;
* a ``### ...`` heading starts a **subslide** (a vertical step inside the section);
* a markdown cell or a code cell right after a code cell starts a **subslide** too: each step of a
  section (prose, code, its figure) gets its own screen instead of overflowing one;
* a markdown cell that starts with *Presenter note* / *Speaker note* (bold or italic), or any cell
  tagged ``notes``, becomes **notes** (shown in the speaker view only); a cell tagged ``skip`` or
  ``remove-cell`` is **skipped**;
* inside a section the author hid (its ``## `` heading marked ``skip`` or ``notes``: an optional deep-dive
  that the notebook keeps for students but the lecture leaves out), every cell gets the heading's type;
* everything else continues the current slide (``"-"``).

The **presented path** is what a slideshow shows: the cells that start a slide or a sub-slide and are not
skipped or notes (:func:`presented_slides`); a lecture notebook keeps it at most ``MAX_PRESENTED_SLIDES``.

From the command line (in place, idempotent; ``--check`` only reports)::

    python -m course_tools.slides notebooks/*.ipynb
    python -m course_tools.slides --check notebooks/*.ipynb
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

SLIDE_TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")
HIDDEN = ("skip", "notes")          # not on the presented path
MAX_PRESENTED_SLIDES = 20
_NOTE_START = re.compile(r"^\s*(\*\*|\*|_)?(presenter|speaker|instructor)('s)? notes?\b", re.IGNORECASE)


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _first_line(cell) -> str:
    return _source(cell).lstrip("\n").split("\n", 1)[0]


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def slide_type(cell) -> str | None:
    """The cell's slide type, or None where it has none.  Raises ValueError for an unknown one."""
    value = cell.get("metadata", {}).get("slideshow", {}).get("slide_type")
    if value is not None and value not in SLIDE_TYPES:
        raise ValueError(f"slide_type must be one of {SLIDE_TYPES}, got {value!r} in a {cell.get('cell_type')} cell "
                         f"starting {_first_line(cell)[:60]!r}")
    return value


def is_section(cell) -> bool:
    """True for a markdown cell whose first line is a ``## `` section heading."""
    return cell.get("cell_type") == "markdown" and _first_line(cell).startswith("## ")


def hidden_section_type(cells, index: int) -> str | None:
    """'skip' or 'notes' when ``cells[index]`` lies inside (after the heading of) a ``## `` section whose
    heading the author marked so; else None."""
    for previous in reversed(cells[:index]):
        if is_section(previous) or _first_line(previous).startswith("# "):
            kind = previous.get("metadata", {}).get("slideshow", {}).get("slide_type")
            return kind if kind in HIDDEN else None
    return None


def presented_slides(nb) -> int:
    """How many slides and sub-slides a slideshow of ``nb`` shows (skipped and notes cells excluded)."""
    return sum(slide_type(cell) in ("slide", "subslide") for cell in nb["cells"])


def suggested_slide_type(cells, index: int) -> str:
    """The slide type the rules in this module's docstring give ``cells[index]`` (a list of notebook cells)."""
    if not 0 <= index < len(cells):
        raise ValueError(f"index must be in [0, {len(cells)}), got {index}")
    cell = cells[index]
    hidden = hidden_section_type(cells, index) if not is_section(cell) else None
    if hidden:
        return hidden
    tags = _tags(cell)
    if "notes" in tags:
        return "notes"
    if tags & {"skip", "remove-cell"}:
        return "skip"
    if index == 0:
        return "slide"
    first = _first_line(cell)
    if cell.get("cell_type") == "markdown":
        if first.startswith(("# ", "## ")):
            return "slide"
        if _NOTE_START.match(first):
            return "notes"
        if first.startswith("### "):
            return "subslide"
    previous = cells[index - 1]
    if previous.get("cell_type") == "code" and cell.get("cell_type") in ("code", "markdown"):
        return "subslide"
    return "-"


def add_slide_metadata(nb, overwrite: bool = False) -> int:
    """Give each cell of ``nb`` (an nbformat notebook or its dict) without a slide type the suggested one.

    Cells that already have one keep it (``overwrite=True`` replaces every cell's).  Changes ``nb``
    in place and returns how many cells changed.  Idempotent: a second call returns 0.
    """
    cells = nb["cells"]
    changed = 0
    for index, cell in enumerate(cells):
        current = slide_type(cell)
        if current is not None and not overwrite:
            continue
        wanted = suggested_slide_type(cells, index)
        if wanted != current:
            cell.setdefault("metadata", {}).setdefault("slideshow", {})["slide_type"] = wanted
            changed += 1
    return changed


def slide_metadata_problems(nb) -> list[str]:
    """What keeps ``nb`` from presenting well: the title cell and each ``## `` section must start a slide,
    unless the author hid the section (``skip`` or ``notes``); then every cell of that section must be hidden
    too (a presented cell there would be appended to the slide before the section)."""
    problems = []
    cells = nb["cells"]
    if not cells:
        return ["the notebook has no cells"]
    for index, cell in enumerate(cells):
        try:
            kind = slide_type(cell)
        except ValueError as error:
            problems.append(f"cell {index}: {error}")
            continue
        if index == 0 and kind != "slide":
            problems.append(f"cell 0 (the title cell) has slide_type {kind!r}, expected 'slide'")
        elif is_section(cell) and kind not in ("slide",) + HIDDEN:
            problems.append(f"cell {index} (section {_first_line(cell)[3:].strip()!r}) has slide_type {kind!r}, "
                            "expected 'slide' (or 'skip' / 'notes' to leave the section out of the slides)")
        elif not is_section(cell) and index > 0 and hidden_section_type(cells, index) and kind not in HIDDEN:
            problems.append(f"cell {index} lies in a section hidden from the slides but has slide_type {kind!r}; "
                            "expected 'skip' or 'notes'")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Add slide metadata to notebooks (in place, idempotent).")
    parser.add_argument("notebooks", nargs="+", type=Path, help="notebook files (.ipynb)")
    parser.add_argument("--check", action="store_true", help="only report notebooks that lack slide metadata")
    args = parser.parse_args(argv)
    failing = 0
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if args.check:
            problems = slide_metadata_problems(nb)
            failing += bool(problems)
            print(f"{path}: " + ("; ".join(problems) if problems else "ok") + f" ({presented_slides(nb)} slides presented)")
            continue
        changed = add_slide_metadata(nb)
        if changed:
            nbformat.write(nb, path)
        print(f"{path}: {changed} cells given a slide type")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())

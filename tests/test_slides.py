"""Slide metadata: the rules of course_tools.slides, and every course notebook carries it."""
import json
from pathlib import Path

import nbformat
import pytest

from course_tools.slides import (MAX_PRESENTED_SLIDES, SLIDE_TYPES, add_slide_metadata, main, presented_slides,
                                  slide_metadata_problems, slide_type, suggested_slide_type)

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def lecture_like_notebook():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    return nbformat.v4.new_notebook(cells=[
        md("# 07 · A title\nGoals."),                       # 0 slide (title)
        md("## Setup\nWhat the setup does."),               # 1 slide (section)
        code("import lecture_utils as lu"),                 # 2 -
        code("plt.show()"),                                 # 3 subslide (code after code)
        md("**Self-check.** It holds."),                    # 4 subslide (markdown after code)
        code("assert True"),                                # 5 -
        md("## The idea\n$$ x = 1 $$"),                      # 6 slide
        md("### A detail"),                                 # 7 subslide
        md("More prose"),                                   # 8 -
        md("*Presenter note:* say why."),                   # 9 notes
        code("x = 1", metadata={"tags": ["notes"]}),        # 10 notes (tag)
        code("y = 2", metadata={"tags": ["remove-cell"]}),  # 11 skip (tag)
        md("## Exercises\n1. *(Exercise)* Try it."),         # 12 slide
    ])


EXPECTED = ["slide", "slide", "-", "subslide", "subslide", "-", "slide", "subslide", "-", "notes", "notes",
            "skip", "slide"]


def types(nb):
    return [cell.metadata.get("slideshow", {}).get("slide_type") for cell in nb.cells]


def test_rules_give_each_cell_its_slide_type():
    nb = lecture_like_notebook()
    assert types(nb) == [None] * len(EXPECTED)
    assert slide_metadata_problems(nb)  # the title and the sections lack it
    assert add_slide_metadata(nb) == len(EXPECTED)
    assert types(nb) == EXPECTED
    assert set(EXPECTED) <= set(SLIDE_TYPES)
    assert slide_metadata_problems(nb) == []
    nbformat.validate(nb)


def test_idempotent_and_explicit_choices_win():
    nb = lecture_like_notebook()
    nb.cells[2].metadata["slideshow"] = {"slide_type": "fragment"}   # an author's choice
    nb.cells[6].metadata["slideshow"] = {"slide_type": "subslide"}   # a section demoted on purpose
    add_slide_metadata(nb)
    once = json.dumps(nb, sort_keys=True)
    assert add_slide_metadata(nb) == 0
    assert json.dumps(nb, sort_keys=True) == once
    assert types(nb)[2] == "fragment" and types(nb)[6] == "subslide"
    problems = slide_metadata_problems(nb)
    assert len(problems) == 1 and "The idea" in problems[0]
    add_slide_metadata(nb, overwrite=True)
    assert types(nb) == EXPECTED


def test_unknown_slide_type_is_reported():
    cell = nbformat.v4.new_markdown_cell("## A", metadata={"slideshow": {"slide_type": "slyde"}})
    with pytest.raises(ValueError, match="slide_type must be one of"):
        slide_type(cell)
    nb = nbformat.v4.new_notebook(cells=[cell])
    assert "slyde" in slide_metadata_problems(nb)[0]
    with pytest.raises(ValueError, match="index must be"):
        suggested_slide_type(nb.cells, 1)


def test_command_line_fills_in_place_and_checks(tmp_path, capsys):
    path = tmp_path / "07_a.ipynb"
    nbformat.write(lecture_like_notebook(), path)
    assert main(["--check", str(path)]) == 1
    assert main([str(path)]) == 0
    assert types(nbformat.read(path, as_version=4)) == EXPECTED
    before = path.read_bytes()
    assert main([str(path)]) == 0 and path.read_bytes() == before  # nothing to change the second time
    assert main(["--check", str(path)]) == 0
    assert "ok" in capsys.readouterr().out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_notebook_carries_slide_metadata(path):
    """The title and every '## ' section start a slide (fix: python -m course_tools.slides notebooks/NN_x.ipynb)."""
    problems = slide_metadata_problems(nbformat.read(path, as_version=4))
    assert not problems, f"{path.name}: " + "; ".join(problems) + \
        f" -- run: python -m course_tools.slides notebooks/{path.name}"


def test_a_section_the_author_hides_stays_hidden_and_leaves_the_presented_path():
    nb = lecture_like_notebook()
    add_slide_metadata(nb)
    before = presented_slides(nb)
    assert before == EXPECTED.count("slide") + EXPECTED.count("subslide") == 7
    # the author hides the section "The idea" (an optional deep-dive) by marking its heading only
    nb.cells[6].metadata["slideshow"] = {"slide_type": "skip"}
    problems = slide_metadata_problems(nb)
    assert problems and all("hidden from the slides" in p for p in problems)   # its cells 7-11 still show
    for cell in nb.cells[7:12]:
        del cell.metadata["slideshow"]
    add_slide_metadata(nb)                                                       # the tool fills in the rest ...
    assert types(nb)[6:13] == ["skip"] * 6 + ["slide"]                           # ... hidden, up to the next section
    assert slide_metadata_problems(nb) == [] and presented_slides(nb) == before - 2
    nb.cells[8].metadata["slideshow"] = {"slide_type": "subslide"}               # a presented cell in a hidden section
    assert "cell 8 lies in a section hidden" in slide_metadata_problems(nb)[0]
    nb.cells[6].metadata["slideshow"] = {"slide_type": "fragment"}               # a section must start a slide or hide
    assert any("expected 'slide' (or 'skip'" in p for p in slide_metadata_problems(nb))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_notebook_presents_at_most_20_slides(path):
    """The lecture path: optional deep-dives are skipped slides or speaker notes, so that a notebook's slideshow
    has at most 20 slides and sub-slides."""
    count = presented_slides(nbformat.read(path, as_version=4))
    assert 0 < count <= MAX_PRESENTED_SLIDES == 20, f"{path.name} presents {count} slides (at most 20)"

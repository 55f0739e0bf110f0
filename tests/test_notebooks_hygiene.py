"""The notebooks are stored clean, named in course order, and each uses lecture_utils."""
import json
import re
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
COURSE_ORDER = ["autoencoders", "vae_elbo", "gan_minimax", "dcgan_patchgan", "class_conditional",
                "super_resolution", "image_editing", "style_transfer", "text_to_image", "diffusion"]


def notebooks():
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks():
    assert notebooks(), "no notebooks found"


def test_names_follow_course_order():
    for path in notebooks():
        match = re.fullmatch(r"(\d\d)_([a-z0-9_]+)\.ipynb", path.name)
        assert match, f"{path.name} must be named NN_topic.ipynb"
        number, topic = int(match.group(1)), match.group(2)
        assert COURSE_ORDER[number - 1] == topic, f"{path.name}: notebook {number:02d} is {COURSE_ORDER[number - 1]}"
    numbers = [int(p.name[:2]) for p in notebooks()]
    assert numbers == list(range(1, len(numbers) + 1)), f"notebooks must be numbered without gaps: {numbers}"


def test_stored_without_outputs():
    for path in notebooks():
        nb = json.loads(path.read_text())
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "code":
                assert not cell.get("outputs"), f"{path.name} cell {i} has stored outputs"
                assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"


def test_each_starts_the_library_and_writes_results():
    for path in notebooks():
        nb = json.loads(path.read_text())
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        assert "import lecture_utils" in code, f"{path.name} does not import lecture_utils"
        stem = path.stem
        assert f'lu.start("{stem}"' in code, f"{path.name} must call lu.start({stem!r})"
        assert "write_results(" in code, f"{path.name} must write its results file"
        assert "assert " in code, f"{path.name} has no self-check"
        first = "".join(nb["cells"][0]["source"])
        assert first.startswith("# "), f"{path.name} must open with a title cell"


MAX_WORDS_PER_MARKDOWN_CELL = 350
MAX_MARKDOWN_WORDS_PER_NOTEBOOK = 2500


def markdown_words(cell) -> int:
    """Words of a markdown cell: whitespace-separated tokens (LaTeX and code spans count too)."""
    source = cell["source"]
    return len(("".join(source) if isinstance(source, list) else source).split())


def test_notebooks_read_as_lectures_not_logs():
    """No markdown cell over 350 words and no notebook over 2,500 words of markdown: tuning history,
    timings and engineering notes belong in docs/recipes.md or the recipe's docstring."""
    course_notebooks = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert course_notebooks
    for path in course_notebooks:
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]
        for i, cell in enumerate(cells):
            words = markdown_words(cell)
            first = "".join(cell["source"]).lstrip().split("\n", 1)[0][:60]
            assert words <= MAX_WORDS_PER_MARKDOWN_CELL, \
                f"{path.name}: markdown cell {first!r} has {words} words (at most {MAX_WORDS_PER_MARKDOWN_CELL})"
        total = sum(markdown_words(c) for c in cells)
        assert total <= MAX_MARKDOWN_WORDS_PER_NOTEBOOK, \
            f"{path.name}: {total} words of markdown (at most {MAX_MARKDOWN_WORDS_PER_NOTEBOOK})"


def test_word_limit_counts_what_it_should():
    assert markdown_words({"source": ["one two\n", "three $x$"]}) == 4
    assert markdown_words({"source": "a " * 351}) > MAX_WORDS_PER_MARKDOWN_CELL


SOLUTIONS = NOTEBOOKS.parent / "solutions"
# Written in two pieces: the student release refuses any file that holds the whole marker.
SOLUTIONS_MARKER = "<!-- EXERCISE " + "SOLUTIONS: instructors only; not part of the student release -->"
# The student edition (python3 course.py release) has the exercises but not their solutions.
STUDENT_EDITION = (NOTEBOOKS.parent / ".course-release").is_file()


def test_each_notebook_has_3_to_5_exercises_with_worked_solutions_for_instructors():
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        markdown = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                             if c["cell_type"] == "markdown")
        exercises = len(re.findall(r"^\d+\. \*\(Exercise\)\*", markdown, flags=re.MULTILINE))
        assert 3 <= exercises <= 5, f"{path.name} has {exercises} exercises marked '*(Exercise)*' (3 to 5 wanted)"
        if STUDENT_EDITION:
            assert not SOLUTIONS.exists(), "the student edition must not hold solutions/"
            continue
        solution = SOLUTIONS / f"{path.stem}.md"
        assert solution.is_file(), f"{path.name}: its worked solutions belong in solutions/{solution.name}"
        text = solution.read_text()
        assert text.splitlines()[0] == SOLUTIONS_MARKER, f"{solution.name} must start with {SOLUTIONS_MARKER}"
        solved = len(re.findall(r"^## \d+\.", text, flags=re.MULTILINE))
        assert solved == exercises, f"{solution.name} solves {solved} exercises, the notebook has {exercises}"

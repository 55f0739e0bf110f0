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

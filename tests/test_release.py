"""The student edition (`python3 course.py release OUT`): built once per module, then scanned here with
checks of the test's own (markers, the hidden tests' source, the solutions' lines, the masters' names
and contents), its README and homework instructions read, its tests collected and an assignment's
public checks run with otter the way a student runs them."""
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


release_tool = _load("release_tool", ROOT / "homework" / "release.py")
MASTERS = sorted((ROOT / "homework").glob("hw*.ipynb"))
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "# SOLUTION", "BEGIN QUESTION", "ASSIGNMENT CONFIG",
           "BEGIN TEST CONFIG", "hidden: true", "otter_assign_solution_cell", "EXERCISE SOLUTIONS")


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    return release_tool.release(tmp_path_factory.mktemp("edition") / "course")


def _text_files(folder):
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            try:
                yield path, path.read_text()
            except UnicodeDecodeError:
                continue


def _hidden_tests_and_solutions(master):
    """(hidden test blocks, solution lines) of a master notebook."""
    blocks, lines = [], []
    for cell in nbformat.read(master, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        if re.search(r"^hidden: true$", cell.source, re.M):
            blocks.append(cell.source[cell.source.index("def test_"):])
        inside = False
        for line in cell.source.splitlines():
            if "# END SOLUTION" in line:
                inside = False
            elif "# BEGIN SOLUTION" in line:
                inside = True
            elif inside and line.strip():
                lines.append(line.strip())
    return blocks, lines


def test_the_edition_has_the_course_and_a_student_version_of_every_assignment(edition):
    for name in ("README.md", "course.py", "pyproject.toml", "environment.yml", "homework/README.md",
                 "lecture_utils/__init__.py", "lecture_utils/losses.py", "tests/conftest.py"):
        assert (edition / name).is_file(), name
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in (edition / "notebooks").glob("*.ipynb")) == notebooks
    manifest = json.loads((ROOT / "data" / "checkpoints" / "manifest.json").read_text())
    for entry in manifest.values() if isinstance(manifest, dict) else manifest:
        if isinstance(entry, dict) and "file" in entry:
            assert (edition / "data" / "checkpoints" / entry["file"]).is_file(), entry["file"]
    for master in MASTERS:
        student = edition / "homework" / master.stem
        notebook = nbformat.read(student / master.name, as_version=4)
        assert any("grader.check(" in c.source for c in notebook.cells)
        assert any("grader.export(" in c.source for c in notebook.cells), "the export cell students submit"
        assert list((student / "tests").glob("*.py")), "the public checks ship with the notebook"
    shipped_tests = sorted(p.name for p in (edition / "tests").glob("test_*.py"))
    expected = sorted(p.name for p in (ROOT / "tests").glob("test_*.py")
                      if not p.name.startswith(("test_homework", "test_release")))
    assert shipped_tests == expected


def test_no_master_solution_hidden_test_or_exercise_solution_in_the_edition(edition):
    masters = {hashlib.sha256(m.read_bytes()).hexdigest(): m.name for m in MASTERS}
    secrets = [_hidden_tests_and_solutions(m) for m in MASTERS]
    blocks = [block for b, _ in secrets for block in b]
    solution_lines = {line for _, lines in secrets for line in lines if len(line) > 25}
    library = "\n".join(p.read_text() for p in (ROOT / "lecture_utils").rglob("*.py"))
    solution_lines = {line for line in solution_lines if line not in library}   # the library has its own versions
    assert len(blocks) >= 10 and len(solution_lines) >= 10
    files = list(_text_files(edition))
    assert len(files) > 50
    for master in MASTERS:
        assert not (edition / "homework" / master.name).exists()
    # the notebooks' worked exercise solutions (solutions/NN_topic.md) stay with the instructors
    exercise_solutions = sorted((ROOT / "solutions").glob("*.md"))
    assert exercise_solutions and not (edition / "solutions").exists()
    for solution in exercise_solutions:
        lines = {line.strip() for line in solution.read_text().splitlines() if len(line.strip()) > 40}
        for name in release_tool.course_files(ROOT):          # lines the course also has elsewhere may ship
            if not name.startswith("solutions/") and name.endswith((".py", ".md", ".ipynb", ".txt")):
                lines -= {line.strip() for line in (ROOT / name).read_text(errors="replace").splitlines()}
        for path, text in files:
            assert not lines & {line.strip() for line in text.splitlines()}, f"{path}: a line of {solution.name}"
    assert not [p for p in edition.rglob("*") if p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() in masters]
    assert not [p for p in edition.rglob("*autograder*")]
    for path, text in files:
        for marker in MARKERS:
            assert marker not in text, f"{path}: {marker!r}"
        for block in blocks:
            assert block not in text and block.splitlines()[0] not in text, f"{path}: {block.splitlines()[0]}"
        leaked = {line.strip() for line in text.splitlines()} & solution_lines
        assert not leaked, f"{path}: solution lines {sorted(leaked)[:3]}"
        if path.suffix == ".ipynb":
            for cell in json.loads(text)["cells"]:
                assert "solution" not in cell.get("metadata", {}).get("tags", []), path
    assert release_tool.scan(edition) == []


def test_the_scan_finds_each_kind_of_leak(edition, tmp_path):
    leaky = tmp_path / "leaky"
    shutil.copytree(edition, leaky)
    shutil.copy(MASTERS[0], leaky / "notes.ipynb")                                   # a master, renamed
    blocks, lines = _hidden_tests_and_solutions(MASTERS[-1])
    (leaky / "tests" / "helpers.py").write_text(blocks[0])                          # a hidden test
    notebook = nbformat.read(leaky / "notebooks" / "01_autoencoders.ipynb", as_version=4)
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["solution"]
    notebook.cells.append(cell)
    nbformat.write(notebook, leaky / "notebooks" / "01_autoencoders.ipynb")          # an exercise solution
    problems = release_tool.scan(leaky)
    assert any("notes.ipynb" in p and "master" in p for p in problems), problems
    assert any("helpers.py" in p and "hidden test" in p for p in problems), problems
    assert any("01_autoencoders" in p and "exercise-solution" in p for p in problems), problems


def test_exercise_solutions_are_left_out_of_notebooks():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("1. *(Exercise)* Try a code size of 64."),
        nbformat.v4.new_code_cell("# SOLUTION\nmodel = train(code_size=64)"),
        nbformat.v4.new_code_cell("answer = 42", metadata={"tags": ["solution", "hide-input"]}),
        nbformat.v4.new_code_cell("print('kept')")])
    text, removed = release_tool.without_exercise_solutions(nbformat.writes(notebook))
    assert removed == 2
    assert [c.source for c in nbformat.reads(text, as_version=4).cells] == ["1. *(Exercise)* Try a code size of 64.",
                                                                            "print('kept')"]


def test_student_readme_and_homework_instructions(edition):
    readme = (edition / "README.md").read_text()
    assert "python3 course.py          #" in readme and "python3 course.py test     #" in readme
    assert "python3 course.py homework" in readme and "homework/README.md" in readme
    assert "## What the course is" in readme and "Homework (course staff)" not in readme
    instructions = (edition / "homework" / "README.md").read_text()
    for step in ("**Open.**", "**Check.**", "grader.check(", "**Export.**", "**Submit**", "## What you may use",
                 "float32"):
        assert step in instructions, step
    for master in MASTERS:
        info = release_tool.homework_tool.read_master(master)
        assert f"### {info['title']}" in instructions and f"{master.stem}/{master.name}" in instructions
        for question in info["questions"]:
            assert f"| {question['name']} |" in instructions
            for name in question["forbidden"]:
                assert f"`{name}`" in instructions
        # every answer's docstring states its dtype and tolerance contract (or that it is exact)
        notebook = nbformat.read(edition / "homework" / master.stem / master.name, as_version=4)
        answers = "\n".join(c.source for c in notebook.cells if "otter_answer_cell" in c.metadata.get("tags", []))
        for question in info["questions"]:
            for answer in question["answers"]:
                body = answers[answers.index(f" {answer}("):]
                docstring = body[body.index('"""') + 3:].split('"""')[0]
                assert "Precision" in docstring or "Exact" in docstring, (master.stem, answer, docstring)


def test_the_edition_runs_its_commands(edition):
    env = dict(os.environ, PYTHONPATH=str(edition))
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                "tests"], cwd=edition, env=env, capture_output=True, text=True, timeout=300)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    files = {line.split("::")[0] for line in collected.stdout.splitlines() if "::" in line}
    assert files and all(not Path(f).name.startswith(("test_homework", "test_release")) for f in files)
    staff = subprocess.run([sys.executable, "course.py", "homework", "build"], cwd=edition, capture_output=True,
                           text=True, timeout=60)
    assert staff.returncode != 0 and "student edition" in staff.stderr
    again = subprocess.run([sys.executable, "course.py", "release", str(edition.parent / "again")], cwd=edition,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "student edition" in again.stderr


def test_a_student_runs_the_public_checks_with_otter(edition):
    folder = edition / "homework" / "hw3_vision_tasks"
    script = (
        "import otter, torch\n"
        "grader = otter.Notebook('hw3_vision_tasks.ipynb')\n"
        "def psnr(prediction, target, data_range=1.0):\n"
        "    return 10 * torch.log10(data_range ** 2 / (prediction - target).pow(2).flatten(1).mean(1))\n"
        "good = grader.check('psnr', global_env={'psnr': psnr})\n"
        "bad = grader.check('psnr', global_env={'psnr': lambda p, t, data_range=1.0: p.mean()})\n"
        "print('RESULT', good.passed_all, bad.passed_all)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=folder, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(edition)))
    assert "RESULT True False" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]

"""Labs: student copies made as nbgrader makes them, and every check fails on them.

nbval runs the solutions (``labs/*.ipynb``) strictly, so every check passes there; this file
proves the other half: in the released student copy, every check cell fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from meshlab import labs

ROOT = Path(__file__).resolve().parents[1]
LABS = sorted((ROOT / "labs").glob("*.ipynb"))
CHECK_CALL = re.compile(r"\blab\d+\.check_\w+\(")


def test_solution_block_becomes_the_stub_indented_like_the_block():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n\nprint(f)"
    assert labs.strip_solutions(source) == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\nprint(f)"


def test_markdown_answer_becomes_your_answer_here():
    source = "Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"
    assert labs.strip_solutions(source, "markdown") == "Why?\nYOUR ANSWER HERE"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("### BEGIN SOLUTION\nx = 1\n", "is never closed by ### END SOLUTION"),
        ("x = 1\n### END SOLUTION\n", "line 2: ### END SOLUTION without a ### BEGIN SOLUTION"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n", "line 2: ### BEGIN SOLUTION inside another solution block"),
    ],
)
def test_unbalanced_markers_are_named(source, message):
    with pytest.raises(labs.LabFormatError, match=re.escape(message)):
        labs.strip_solutions(source, where="lab.ipynb, cell 3")


def _write_notebook(path: Path, *sources: str) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    nbformat.write(notebook, path)


def test_a_malformed_lab_leaves_the_output_folder_untouched(tmp_path):
    source, out = tmp_path / "labs", tmp_path / "out"
    source.mkdir()
    _write_notebook(source / "01-good.ipynb", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
    _write_notebook(source / "02-bad.ipynb", "### BEGIN SOLUTION\nx = 1")
    with pytest.raises(labs.LabFormatError, match="02-bad.ipynb, cell 0"):
        labs.release(source, out)
    assert not out.exists()


def test_a_lab_without_exercises_is_refused(tmp_path):
    (tmp_path / "labs").mkdir()
    _write_notebook(tmp_path / "labs" / "01-empty.ipynb", "print(1)")
    with pytest.raises(labs.LabFormatError, match="no ### BEGIN SOLUTION block"):
        labs.release(tmp_path / "labs", tmp_path / "out")


def test_releasing_into_the_labs_folder_is_refused():
    with pytest.raises(labs.LabFormatError, match="would overwrite the solutions"):
        labs.release(ROOT / "labs", ROOT / "labs")


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    done = subprocess.run([sys.executable, "-m", "meshlab.cli", "labs", "release", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"wrote {out / lab.name}" for lab in LABS]
    return out


@pytest.mark.parametrize("lab", LABS, ids=lambda path: path.name)
def test_student_copy_changes_only_the_solution_blocks(released, lab):
    solution = json.loads(lab.read_text())
    student = json.loads((released / lab.name).read_text())
    assert len(student["cells"]) == len(solution["cells"])
    for ours, theirs in zip(solution["cells"], student["cells"]):
        ours_source, theirs_source = "".join(ours["source"]), "".join(theirs["source"])
        assert "### BEGIN SOLUTION" not in theirs_source and "### END SOLUTION" not in theirs_source
        kept = re.sub(r"[ \t]*### BEGIN SOLUTION.*?### END SOLUTION\n?", "", ours_source, flags=re.S)
        assert re.sub(r"[ \t]*# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)\n?", "", theirs_source) == kept
        assert {k: v for k, v in theirs.items() if k not in ("source", "outputs", "execution_count")} == {
            k: v for k, v in ours.items() if k not in ("source", "outputs", "execution_count")
        }
        if theirs["cell_type"] == "code":
            assert theirs["outputs"] == [] and theirs["execution_count"] is None


@pytest.mark.parametrize("lab", LABS, ids=lambda path: path.name)
def test_every_check_fails_on_the_student_copy(released, lab):
    notebook = nbformat.read(released / lab.name, as_version=4)
    checks = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code" and CHECK_CALL.search(cell.source)]
    assert checks, f"{lab.name} has no check cells"
    NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(ROOT / "labs")}}).execute()
    for index in checks:
        errors = [output for output in notebook.cells[index].outputs if output.output_type == "error"]
        assert errors, f"{lab.name} cell {index}: the check passed on the student copy"
        assert errors[0].ename == "CheckFailed", f"{lab.name} cell {index}: failed with {errors[0].ename}, not a check's hint"
        assert "is not answered yet" in errors[0].evalue

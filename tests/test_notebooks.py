"""The book's structure: stored notebooks equal their sources, and every chapter has what a chapter needs.

Strict nbval (``make test`` runs it over notebooks/ and labs/) compares every stored output; this file
checks what nbval cannot: that the .ipynb is the executed form of its reviewed .py source, and that each
chapter has learning objectives, a widget control and a section that names the stage it runs on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from meshlab import notebooks

ROOT = Path(__file__).resolve().parents[1]
PAIRS = notebooks.pairs(ROOT / "notebooks", ROOT / "labs")
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def test_the_book_has_its_first_chapters_and_lab():
    names = [path.name for path in CHAPTERS]
    assert names[:2] == ["00-how-to-use-this-book.ipynb", "01-from-kubernetes-to-istio.ipynb"]
    assert (ROOT / "labs" / "01-call-graphs.ipynb").exists()


@pytest.mark.parametrize(("source", "stored"), PAIRS, ids=lambda p: p.name)
def test_stored_notebook_is_its_source_executed(source, stored):
    assert notebooks.differences(source, stored) == [], f"run make notebooks to rebuild {stored.name}"
    code = [cell for cell in nbformat.read(stored, as_version=4).cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), f"{stored.name} was not executed in full"
    notebook = nbformat.read(stored, as_version=4)
    if any("widget-view" in json.dumps(cell.get("outputs", [])) for cell in code):
        state = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
        assert state, f"{stored.name} shows widgets but stores no widget state: a reader would see text until running it"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_objectives_a_control_and_says_its_stage(chapter):
    cells = nbformat.read(chapter, as_version=4).cells
    markdown = "\n".join(cell.source for cell in cells if cell.cell_type == "markdown")
    code = "\n".join(cell.source for cell in cells if cell.cell_type == "code")
    assert "**After this chapter you can**" in markdown
    assert re.search(r"widgets\.(interact|Dropdown)|interactive_figure\(|slider\(", code), "a chapter needs an ipywidgets control"
    assert re.search(r"## Stage of this chapter\n.*\*\*(model|live|kind)\*\*", markdown, re.S)


STORED = CHAPTERS + sorted((ROOT / "labs").glob("[0-9][0-9]-*.ipynb"))


@pytest.mark.parametrize("notebook", STORED, ids=lambda p: p.name)
def test_cells_whose_output_is_not_pinned_still_assert_what_must_hold(notebook):
    """nbval does not compare an nbval-ignore-output cell's output, so the cell itself must check what
    must hold: an ``assert``, or a lab check (``lab02.check_live(...)``), which raises with a hint.
    A widget cell is no exception: it asserts on the model once."""
    for cell in nbformat.read(notebook, as_version=4).cells:
        if "nbval-ignore-output" in cell.metadata.get("tags", ()):
            assert re.search(r"^\s*assert |\blab\d\d\.check_\w+\(", cell.source, re.M), f"{notebook.name}: {cell.source[:100]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_chapter_closes_with_what_to_remember_and_three_questions_with_folded_answers(chapter):
    markdown = "\n".join(cell.source for cell in nbformat.read(chapter, as_version=4).cells if cell.cell_type == "markdown")
    assert "## What to remember" in markdown
    closing = markdown.split("## Check yourself", 1)
    assert len(closing) == 2, "a chapter ends with self-check questions"
    questions = re.findall(r"^\d\. .+$", closing[1], re.M)
    assert len(questions) == 3 and closing[1].count("<details><summary>Answer</summary>") == 3 == closing[1].count("</details>")

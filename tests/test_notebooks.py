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
from meshlab.viz.text import WIDTH

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
    notebook = nbformat.read(stored, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), f"{stored.name} was not executed in full"
    if any("widget-view" in json.dumps(cell.get("outputs", [])) for cell in code):
        state = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
        assert state, f"{stored.name} shows widgets but stores no widget state: a reader would see text until running it"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_objectives_a_stored_control_and_says_its_stage(chapter):
    notebook = nbformat.read(chapter, as_version=4)
    markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "**After this chapter you can**" in markdown
    assert re.search(r"widgets\.(interact|Dropdown)|interactive_figure\(|slider\(", code), "a chapter needs an ipywidgets control"
    outputs = json.dumps([cell.get("outputs", []) for cell in notebook.cells if cell.cell_type == "code"])
    assert "widget-view" in outputs and notebook.metadata.get("widgets"), "the control is stored with its state"
    assert re.search(r"## Stage of this chapter\n.*\*\*(model|live|kind)\*\*", markdown, re.S)
    if not chapter.name.startswith("00-"):  # chapter 00 is the how-to; its live cell is meshlab doctor's probe
        assert re.search(r"^## \d+ · Live", markdown, re.M), "each chapter runs its mechanism for real in a Live section"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_chapter_opens_with_its_architecture_diagram(chapter):
    """Before any other output, the reader sees the system the chapter teaches, drawn by meshlab.viz."""
    cells = nbformat.read(chapter, as_version=4).cells
    first = next(cell for cell in cells if cell.cell_type == "code" and cell.outputs)
    assert "meshlab.viz.architectures" in first.source
    assert any("image/svg+xml" in output.get("data", {}) for output in first.outputs), "the diagram is stored as SVG"


#: A rule in iptables-save's format is one line and is printed whole, as the kernel and Istio's goldens hold it.
IPTABLES_RULE = re.compile(r"^\s*(\[\d+:\d+\] )?-[AIN] [A-Z_]+ ")


def _text_lines(cell) -> list[str]:
    """The text a reader sees in a stored cell: not a widget's text fallback, which the stored state replaces."""
    lines = []
    for output in cell.get("outputs", []):
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {}):
            continue
        text = output.get("text") or output.get("data", {}).get("text/plain", "")
        lines += ("".join(text) if isinstance(text, list) else text).splitlines()
    # a single word longer than the page (a type URL) is printed whole: never broken mid-word
    return [line for line in lines if not IPTABLES_RULE.match(line) and len(line.split()) > 1]


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")) + sorted((ROOT / "labs").glob("[0-9][0-9]-*.ipynb")),
                         ids=lambda p: p.name)
def test_stored_text_fits_100_columns(notebook):
    """A reader sees stored text without scrolling or wrapped, misaligned rows; wide tables are rendered."""
    wide = [(index, line) for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells)
            for line in _text_lines(cell) if len(line) > WIDTH]
    assert wide == [], "\n".join(f"cell {index}: {len(line)} columns: {line[:60]}..." for index, line in wide)


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


def _machine_details() -> dict[str, str]:
    import os
    import platform

    return {"kernel release": platform.release(), "host name": platform.node(), "Python": f"Python {platform.python_version()}",
            "home": os.path.expanduser("~") + "/", "checkout": str(ROOT) + "/"}


@pytest.mark.parametrize("notebook", STORED, ids=lambda p: p.name)
def test_a_stored_notebook_says_nothing_about_this_machine(notebook):
    """What one machine said (doctor's report, its paths) is not stored: cells about the machine are tagged
    machine-specific and stored without output (meshlab.notebooks.build)."""
    stored = nbformat.read(notebook, as_version=4)
    text = json.dumps([cell.get("outputs", []) for cell in stored.cells]) + json.dumps(stored.metadata.get("widgets", {}))
    found = [name for name, detail in _machine_details().items() if len(detail) > 3 and detail in text]
    assert found == [], f"{notebook.name} stores this machine's {', '.join(found)}"


def test_chapter_00_names_optional_sections_that_exist():
    """The optional-sections table points at real headings: '§5 what the extra hops cost' must be section 5."""
    markdown = "\n".join(c.source for c in nbformat.read(ROOT / "notebooks" / "00-how-to-use-this-book.ipynb", as_version=4).cells
                         if c.cell_type == "markdown")
    table = markdown.split("**Optional sections.**", 1)[1].split("\n\n")[1]
    rows = re.findall(r"^\| (\d\d) \| (.+?) \|", table, re.M)
    assert len(rows) >= 4
    for number, sections in rows:
        (chapter,) = (ROOT / "notebooks").glob(f"{number}-*.ipynb")
        headings = {m.group(1): m.group(2).lower() for m in re.finditer(r"^## (\d+) · (.+)$", "\n".join(
            c.source for c in nbformat.read(chapter, as_version=4).cells if c.cell_type == "markdown"), re.M)}
        for section, title in re.findall(r"§(\d+) ([^;,]+)", sections):
            assert section in headings, f"chapter {number} has no section {section}"
            words = [w for w in re.findall(r"[a-z]+", title.lower()) if len(w) > 3]
            assert words and all(w in headings[section] for w in words[:2]), f"chapter {number} §{section} is '{headings[section]}', not '{title}'"


def _png_widths(value) -> list[int]:
    """Pixel widths of every PNG stored anywhere in a notebook's JSON (outputs and widget state)."""
    import base64
    import struct

    if isinstance(value, dict):
        found = [struct.unpack(">I", base64.b64decode(value["image/png"])[16:20])[0]] if isinstance(value.get("image/png"), str) else []
        return found + [w for key, inner in value.items() if key != "image/png" for w in _png_widths(inner)]
    if isinstance(value, list):
        return [w for inner in value for w in _png_widths(inner)]
    return []


@pytest.mark.parametrize("notebook", STORED, ids=lambda p: p.name)
def test_stored_figures_fit_the_page(notebook):
    """A stored figure wider than the page is scaled down by JupyterLab, and its 9 pt labels with it."""
    from meshlab.viz.style import PAGE_PX

    widths = _png_widths(json.loads(notebook.read_text()))
    assert [w for w in widths if w > PAGE_PX] == [], f"{notebook.name}: figures wider than {PAGE_PX} px"


def test_build_runs_a_notebook_again_once_when_a_cell_gives_no_reply(tmp_path):
    """The first run's cell outlasts the timeout (as a lost reply does); the second run succeeds. An error is not retried."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    source = tmp_path / "01-slow.py"
    source.write_text("# %%\nimport pathlib, time\nfirst = not pathlib.Path('ran').exists()\npathlib.Path('ran').touch()\n"
                      "time.sleep(30 if first else 0)\nprint('second run' if not first else 'first run')\n")
    with pytest.raises(CellTimeoutError):
        notebooks.build(source, timeout=3, attempts=1)
    (tmp_path / "ran").unlink()
    stored = nbformat.read(notebooks.build(source, timeout=3), as_version=4)
    assert stored.cells[0].outputs[0]["text"] == "second run\n"
    source.write_text("# %%\nraise RuntimeError('a real error')\n")
    with pytest.raises(CellExecutionError, match="a real error"):
        notebooks.build(source, timeout=3)

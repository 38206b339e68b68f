"""Chapters and labs are written as jupytext percent scripts and stored executed as .ipynb.

``NN-topic.py`` is the source a reviewer reads (plain diffs); ``NN-topic.ipynb`` beside it is
the same cells executed, with their outputs, which strict nbval compares on every test run.
``make notebooks`` rebuilds the .ipynb files; a test fails when a .py and its .ipynb disagree,
so the book cannot drift from its source.

    pairs        (source .py, stored .ipynb) pairs in some folders
    read_source  a percent script as a notebook
    differences  where a stored notebook's cells differ from its source
    build        execute a source and store the result (cells tagged machine-specific without output)
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

#: Tag of a cell whose output describes the machine that ran it (meshlab doctor): stored without output.
MACHINE_SPECIFIC = "machine-specific"

KERNEL = {"name": "python3", "display_name": "Python 3 (meshlab)", "language": "python"}


#: The sources in a folder: the chapters or labs (NN-topic.py) and the instructors' guide.
SOURCES = ("[0-9][0-9]-*.py", "instructors.py")


def pairs(*folders: Path) -> list[tuple[Path, Path]]:
    """Every percent source in the folders (``SOURCES``) with the .ipynb stored beside it."""
    found = []
    for folder in folders:
        for source in sorted(source for pattern in SOURCES for source in Path(folder).glob(pattern)):
            found.append((source, source.with_suffix(".ipynb")))
    return found


def read_source(source: Path) -> nbformat.NotebookNode:
    import jupytext

    notebook = jupytext.read(source, fmt="py:percent")
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["kernelspec"] = KERNEL
    return notebook


def _cell_key(cell: nbformat.NotebookNode) -> tuple[str, str, tuple[str, ...], str]:
    """What a stored cell must keep from its source: type, text, tags and nbgrader's metadata (a lab's
    solution and graded cells)."""
    return cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", ())), repr(sorted(cell.metadata.get("nbgrader", {}).items()))


def differences(source: Path, stored: Path) -> list[str]:
    """Human-readable differences between the source's cells and the stored notebook's."""
    if not stored.exists():
        return [f"{stored.name} is missing; run make notebooks"]
    wanted = [_cell_key(cell) for cell in read_source(source).cells]
    have = [_cell_key(cell) for cell in nbformat.read(stored, as_version=4).cells]
    if len(wanted) != len(have):
        return [f"{source.name} has {len(wanted)} cells, {stored.name} has {len(have)}"]
    return [f"cell {index} differs" for index, (a, b) in enumerate(zip(wanted, have)) if a != b]


#: Seconds one cell may take: the slowest (chapter 06's live pushes) takes about a minute.
CELL_TIMEOUT = 240


def build(source: Path, timeout: int = CELL_TIMEOUT, attempts: int = 2) -> Path:
    """Execute ``source`` in a fresh kernel (working directory: its folder) and store the .ipynb with
    the widgets' state, so a reader who opens it without running sees the controls and what they drew.

    A cell that runs out of time is run again once, in a fresh kernel: here nbclient (0.11, with
    ipykernel 6.31) now and then waits for a reply that never comes from a kernel that is idle, which
    a second run does not repeat. A cell that fails with an error is not retried."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    for attempt in range(1, attempts + 1):
        notebook = read_source(source)
        try:
            NotebookClient(notebook, timeout=timeout, kernel_name="python3", store_widget_state=True,
                           resources={"metadata": {"path": str(source.parent)}}).execute()
            break
        except CellTimeoutError:
            if attempt == attempts:
                raise
            print(f"  {source}: a cell gave no reply within {timeout} s; running the notebook again", file=sys.stderr, flush=True)
    for cell in notebook.cells:
        if MACHINE_SPECIFIC in cell.metadata.get("tags", ()):
            cell.outputs = []  # what this machine said is not the book's to keep
    stored = source.with_suffix(".ipynb")
    nbformat.write(notebook, stored)
    return stored


def main(folders: list[str]) -> int:
    for source, _ in pairs(*(Path(folder) for folder in folders or ["notebooks", "labs"])):
        print(f"executing {source} ...", flush=True)
        print(f"  wrote {build(source)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

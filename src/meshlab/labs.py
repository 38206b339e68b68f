"""Lab notebooks in nbgrader's format, and the student copies made from them.

A lab in ``labs/`` is the instructor's notebook: solutions sit between
``### BEGIN SOLUTION`` and ``### END SOLUTION``; check cells call meshlab.check.
Releasing a lab replaces each solution block by ``# YOUR CODE HERE`` and
``raise NotImplementedError()`` (indented like the block; in Markdown cells by
``YOUR ANSWER HERE``), as nbgrader does, and clears stored outputs so the
solution's results are not given away. Nothing else in the notebook changes.

    LabFormatError     a lab with unbalanced or missing solution markers
    strip_solutions    one cell's source with its solution blocks replaced
    student_copy       a whole notebook's student copy
    release            writes the student copy of every lab in a folder
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
MARKDOWN_STUB = ("YOUR ANSWER HERE",)


class LabFormatError(ValueError):
    """A lab notebook whose solution markers cannot be released."""


def strip_solutions(source: str, cell_type: str = "code", where: str = "cell") -> str:
    """Replace every BEGIN/END SOLUTION block in ``source``; raise LabFormatError if unbalanced."""
    stub = CODE_STUB if cell_type == "code" else MARKDOWN_STUB
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        marker = line.strip()
        if marker == BEGIN_SOLUTION:
            if inside:
                raise LabFormatError(f"{where}, line {number}: {BEGIN_SOLUTION} inside another solution block")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(f"{indent}{text}\n" for text in stub)
        elif marker == END_SOLUTION:
            if not inside:
                raise LabFormatError(f"{where}, line {number}: {END_SOLUTION} without a {BEGIN_SOLUTION}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise LabFormatError(f"{where}: {BEGIN_SOLUTION} is never closed by {END_SOLUTION}")
    text = "".join(out)
    return text if source.endswith("\n") else text.removesuffix("\n")


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def student_copy(notebook: dict, name: str = "lab") -> dict:
    """The student copy of a lab notebook (a dict as read from .ipynb JSON)."""
    released = copy.deepcopy(notebook)
    solutions = 0
    for index, cell in enumerate(released.get("cells", [])):
        source = _source(cell)
        solutions += source.count(BEGIN_SOLUTION)
        cell["source"] = strip_solutions(source, cell.get("cell_type", "code"), f"{name}, cell {index}")
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    if solutions == 0:
        raise LabFormatError(f"{name}: no {BEGIN_SOLUTION} block; a lab needs at least one exercise")
    return released


def release(source_dir: Path, out_dir: Path) -> list[Path]:
    """Write the student copy of every ``*.ipynb`` in ``source_dir`` to ``out_dir``.

    Every lab is converted before anything is written, so a malformed lab leaves
    ``out_dir`` untouched; writing into ``source_dir`` itself is refused because it
    would overwrite the solutions.
    """
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    if not source_dir.is_dir():
        raise LabFormatError(f"no labs folder at {source_dir}")
    if out_dir.resolve() == source_dir.resolve():
        raise LabFormatError(f"--out {out_dir} is the labs folder itself; releasing there would overwrite the solutions")
    labs = sorted(source_dir.glob("*.ipynb"))
    if not labs:
        raise LabFormatError(f"no lab notebooks (*.ipynb) in {source_dir}")
    copies = {}
    for lab in labs:
        try:
            notebook = json.loads(lab.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise LabFormatError(f"{lab} is not a valid notebook: {error}") from None
        copies[lab.name] = student_copy(notebook, lab.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, notebook in copies.items():
        target = out_dir / name
        target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written

"""How long executing the book takes: every chapter and lab, against an empty notebook's kernel start-up.

Run: ``.venv/bin/python benchmarks/bench_notebooks.py``. Prints wall time per notebook (best of
``--repeat``), the ratio to the baseline measured in the same run (a fresh kernel running one empty
cell) and the total against the foundation issue's budget of 5 minutes for all chapters.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from meshlab import notebooks

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 300.0


def execute_seconds(notebook: nbformat.NotebookNode, folder: Path) -> float:
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    empty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass")], metadata={"kernelspec": notebooks.KERNEL})
    baseline = min(execute_seconds(empty, ROOT) for _ in range(repeat))
    print(f"baseline: empty notebook (kernel start + one cell), best of {repeat}: {baseline:.2f} s")
    total = 0.0
    for source, _ in notebooks.pairs(ROOT / "notebooks", ROOT / "labs"):
        seconds = min(execute_seconds(notebooks.read_source(source), source.parent) for _ in range(repeat))
        total += seconds if source.parent.name == "notebooks" else 0.0
        print(f"{source.parent.name}/{source.stem:<36} {seconds:6.2f} s   {seconds / baseline:5.1f}x baseline")
    print(f"all chapters: {total:.1f} s of a {BUDGET_S:.0f} s budget ({total / BUDGET_S:.0%})")


if __name__ == "__main__":
    main()

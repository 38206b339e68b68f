"""A lab's solutions, read from its source in labs/: the check tests start from the answers the
instructor's copy gives (and vary them), so the two are one text."""

from __future__ import annotations

from pathlib import Path

from meshlab.labs import BEGIN_SOLUTION

LABS = Path(__file__).parents[1] / "labs"


def solution(lab: str, function: str, given: dict | None = None):
    """What ``function`` of lab ``lab`` (e.g. "08-writing-routes") returns, its solution cell run alone
    with ``given`` (names the lab's earlier cells define) in scope."""
    path = LABS / f"{lab}.py"
    for cell in path.read_text().split("\n# %%"):
        code = cell.partition("\n")[2]
        if f"def {function}(" in code and BEGIN_SOLUTION in code:
            namespace: dict = dict(given or {})
            exec(compile(code, str(path), "exec"), namespace)
            return namespace[function]()
    raise LookupError(f"{path} has no solution cell defining {function}()")

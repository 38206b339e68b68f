"""Checks for the exercises in ``labs/``: pass quietly, or fail with a hint that names the mistake.

A check compares the reader's answer with meshlab's reference on several inputs
and, when they differ, tries the usual wrong answers in turn, so the message can
say *which* mistake was made rather than just "wrong".

    Mistake       one wrong answer a check recognises: the exercise, what the reader did, the hint printed
    CheckFailed   an AssertionError whose message is the hint
    StageMissing  a check that needs a stage this machine cannot run: not graded here, and why
    require_stage raise StageMissing unless meshlab doctor says the stage runs here
    answer_of     calls the reader's function; an unanswered stub becomes a CheckFailed
    diagnose      picks the hint of the first known mistake that explains a wrong answer
    labNN         checks for lab NN (lab01 call graphs, ..., lab08 routes, lab09 Sidecars, ..., lab14 policies)

Each ``labNN`` declares ``MISTAKES``, the wrong answers its checks recognise, and prints their ``hint``
from that declaration: the instructor guide's tables are read from it, so they cannot drift from the checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Mistake:
    """A wrong answer a check recognises. ``exercise`` is the reader's function (or the YAML it returns),
    ``wrong_answer`` what the reader did, in a teacher's words, and ``hint`` the text the check prints
    for it (the check's message contains it verbatim)."""

    exercise: str
    wrong_answer: str
    hint: str


class CheckFailed(AssertionError):
    """A wrong or missing answer; the message says what is wrong and what to look at."""


class StageMissing(RuntimeError):
    """The check runs on a stage (the live lab, eBPF) this machine cannot run, so the answer is not graded
    here: nbgrader scores the cell 0 and its feedback shows this message, with the reason and the fix."""


def require_stage(stage: str) -> None:
    """Before a check starts a live lab: the stage must run here (``meshlab doctor``'s verdict)."""
    from meshlab import doctor

    report = doctor.diagnose((stage,))[stage]
    if not report.available:
        raise StageMissing(f"not graded on this machine: this check runs on the {stage} stage, which is missing here "
                           f"({report.reason}; fix: {report.fix}); grade it where `meshlab doctor` shows the {stage} stage")


def answer_of(function: Callable[..., Any], *args: Any) -> Any:
    """Call the reader's function; ``raise NotImplementedError`` (the student stub) means not answered."""
    try:
        return function(*args)
    except NotImplementedError:
        raise CheckFailed(f"{function.__name__} is not answered yet: replace `raise NotImplementedError` with your code") from None


def _show(value: Any) -> str:
    """A stable rendering: sets are shown sorted, since set order changes from run to run."""
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(repr(item) for item in sorted(value)) + "}"
    return repr(value)


def diagnose(answer: Any, expected: Any, what: str, mistakes: Sequence[tuple[Any, str]]) -> None:
    """Raise CheckFailed unless ``answer == expected``; ``mistakes`` are (wrong answer, hint) pairs tried in order."""
    if answer == expected:
        return
    for wrong, hint in mistakes:
        if answer == wrong:
            raise CheckFailed(f"{what}: got {_show(answer)}. {hint}")
    raise CheckFailed(f"{what}: got {_show(answer)}, expected {_show(expected)}")

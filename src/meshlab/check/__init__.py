"""Checks for the exercises in ``labs/``: pass quietly, or fail with a hint that names the mistake.

A check compares the reader's answer with meshlab's reference on several inputs
and, when they differ, tries the usual wrong answers in turn, so the message can
say *which* mistake was made rather than just "wrong".

    CheckFailed   an AssertionError whose message is the hint
    answer_of     calls the reader's function; an unanswered stub becomes a CheckFailed
    diagnose      picks the hint of the first known mistake that explains a wrong answer
    labNN         checks for lab NN (lab01 call graphs, ..., lab08 routes, lab09 Sidecars, ..., lab14 policies)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


class CheckFailed(AssertionError):
    """A wrong or missing answer; the message says what is wrong and what to look at."""


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

"""The upstream programs for tests: the path of one, or a skip naming the command that builds it
(under MESHLAB_REQUIRE_UPSTREAM=1 that skip fails the test: tests/conftest.py)."""

from __future__ import annotations

import pytest

from meshlab.upstream import build
from meshlab.upstream.versions import PROGRAMS


def program_path(name: str) -> str:
    found = build.find(PROGRAMS[name])
    if found is None:
        pytest.skip(f"upstream stage: {name} {PROGRAMS[name].version} is not built (fix: meshlab upstream install {name}, or make upstream)")
    return found.path

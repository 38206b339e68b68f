"""Running an upstream program (istioctl, egctl, spire-server...) the one way meshlab does.

Each caller names what it was doing and the error type of its module; a failure carries the
program's own last words (stderr, or stdout when stderr is empty), so the reader sees why.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def run(argv: list[str], doing: str, error: type[Exception], accepted: tuple[int, ...] = (0,), timeout: float = 120,
        cwd: Path | None = None, tail: int = 600, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` (``stdin`` its input); an exit status not in ``accepted`` raises
    ``error("<doing> failed (exit N): <last words>")``."""
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
    if done.returncode not in accepted:
        said = (done.stderr.strip() or done.stdout.strip() or "no output")[-tail:]
        raise error(f"{doing} failed (exit {done.returncode}): {said}")
    return done

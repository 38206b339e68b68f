"""A pinned upstream module's source, as Go's module cache holds it: read at test time (Istio's own
goldens, say), never copied into the repository.

    UpstreamError   Go is missing or the module could not be had; says why and the fix
    go_command      the ``go`` on PATH, or an UpstreamError
    cached_source   the module's folder if it is already in the module cache, else None
    source          the module's folder, downloading it with ``go mod download`` if needed
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from meshlab.upstream.versions import GO_MIN, Module

GO_FIX = f"install Go >= {GO_MIN} (go.dev/dl, or your distribution's golang if it is as new) and put `go` on PATH"


class UpstreamError(RuntimeError):
    """The upstream stage cannot give what was asked; the message says why and how to fix it."""


def go_command() -> str:
    go = shutil.which("go")
    if go is None:
        raise UpstreamError(f"go is not on PATH; {GO_FIX}")
    return go


def _go(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run go outside any module (a temporary folder), so the pinned version alone decides."""
    with tempfile.TemporaryDirectory(prefix="meshlab-go-") as folder:
        try:
            return subprocess.run([go_command(), *argv], capture_output=True, text=True, timeout=timeout, cwd=folder, check=False)
        except subprocess.TimeoutExpired:
            raise UpstreamError(f"go {' '.join(argv)} did not finish within {timeout:.0f} s") from None


def cached_source(module: Module) -> Path | None:
    """The module's folder in Go's module cache, without touching the network."""
    done = _go(["env", "GOMODCACHE"], timeout=30)
    folder = Path(done.stdout.strip()) / f"{module.path}@{module.version}"
    return folder if done.returncode == 0 and (folder / "go.mod").exists() else None


def source(module: Module, timeout: float = 600) -> Path:
    """The module's folder, downloaded through the Go module proxy if it is not cached yet."""
    if found := cached_source(module):
        return found
    done = _go(["mod", "download", "-json", module.spec], timeout)
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:
        answer = {}
    if done.returncode != 0 or "Dir" not in answer:
        said = answer.get("Error") or (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UpstreamError(f"go mod download {module.spec} failed: {said}; check that the Go module proxy is reachable (go env GOPROXY)")
    return Path(answer["Dir"])

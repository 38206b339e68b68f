"""Building the upstream programs with ``go build`` into a cache outside the checkout, and finding
them again: a build of the pinned version in the cache, or a release binary of the same release on
PATH (e.g. from Istio's release tarball), which is then used as it is.

A program is built from a wrapper module in the cache (``src/<module>-<version>/``): its go.mod
requires the pinned module and replaces the dependencies the module proxy refuses
(``versions.Module.replacements``) and, for a module whose own go.mod has replace lines
(``Module.own_replaces``), repeats those, read from that go.mod in Go's module cache; its tools.go
names the programs, so one go.sum serves them all; that go.sum starts with the module's ``sums``
(lines the checksum database does not give, read in an upstream go.sum). Nothing of the upstream
source is written into the repository.

    Installed      a program found: name, version, path, and whether it was built here or found on PATH
    cache_root     MESHLAB_UPSTREAM_CACHE, else $XDG_CACHE_HOME/meshlab/upstream, else ~/.cache/meshlab/upstream
    find           the program if it is built or on PATH at the pinned release, else None
    replace_lines  the wrapper's replace lines for a module: (old, new, why), the pinned ones and its go.mod's
    install        find it, or build it (progress reported line by line); UpstreamError says the step
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from meshlab.upstream.source import GO_FIX, UpstreamError, go_command, source
from meshlab.upstream.versions import PROGRAMS, Module, Program


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    path: str
    source: str  # "built" (in the cache) or "PATH"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def cache_root() -> Path:
    if folder := os.environ.get("MESHLAB_UPSTREAM_CACHE"):
        return Path(folder)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "meshlab" / "upstream"


def binary_path(program: Program) -> Path:
    return cache_root() / "bin" / f"{program.name}-{program.module.version}"


def reported_version(path: str, program: Program) -> str | None:
    """What the binary says its version is (first line), or None if it cannot say."""
    try:
        done = subprocess.run([path, *program.version_argv], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()  # SPIRE prints its version on stderr
    return lines[0].strip() if done.returncode == 0 and lines else None


def find(program: Program) -> Installed | None:
    built = binary_path(program)
    if built.exists():
        return Installed(program.name, program.version, str(built), "built")
    on_path = shutil.which(program.name)
    if on_path and (said := reported_version(on_path, program)) and said.split("+")[0] == program.module.release:
        return Installed(program.name, said, on_path, "PATH")
    return None


def replace_lines(module: Module) -> list[tuple[str, str, str]]:
    """(old, new, why) for each replace line the wrapper needs: the module's own go.mod's first (read
    with ``go mod edit -json``), then the pinned ``replacements``, which win for the same module."""
    lines = {path: (path, f"{path} {version}", why) for path, (version, why) in module.replacements.items()}
    if module.own_replaces:
        go_mod = source(module) / "go.mod"
        done = subprocess.run([go_command(), "mod", "edit", "-json", str(go_mod)], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise UpstreamError(f"cannot read the replace lines of {go_mod}: {done.stderr.strip()}")
        for line in json.loads(done.stdout).get("Replace") or []:
            old, new = line["Old"], line["New"]
            if not new.get("Version"):
                raise UpstreamError(f"{module.spec}'s go.mod replaces {old['Path']} with the folder {new['Path']}, which a wrapper module cannot have")
            target = " ".join(filter(None, (old["Path"], old.get("Version"))))
            lines.setdefault(target, (target, f"{new['Path']} {new['Version']}", f"as {module.spec}'s go.mod"))
    return sorted(lines.values())


def wrapper_module(module: Module) -> Path:
    """The cache folder whose go.mod builds ``module``'s programs (written if missing or changed)."""
    folder = cache_root() / "src" / f"{module.path.replace('/', '_')}-{module.version}"
    folder.mkdir(parents=True, exist_ok=True)
    replaces = "".join(f"\t{old} => {new} // {why}\n" for old, new, why in replace_lines(module))
    go_mod = (f"// Written by meshlab.upstream.build: builds {module.spec} ({module.release}).\n"
              f"module meshlab.local/upstream\n\ngo 1.25\n\nrequire {module.path} {module.version}\n"
              + (f"\nreplace (\n{replaces})\n" if replaces else ""))
    imports = "".join(f'\t_ "{p.package}"\n' for p in PROGRAMS.values() if p.module == module)
    tools = f"//go:build tools\n\n// Package tools names the programs built from this module.\npackage tools\n\nimport (\n{imports})\n"
    if not (folder / "go.mod").exists() or (folder / "go.mod").read_text() != go_mod:
        # sums of other versions: go build -mod=mod writes them anew, after the ones it cannot look up
        (folder / "go.sum").write_text("".join(f"{line}\n" for line in module.sums))
    for name, text in (("go.mod", go_mod), ("tools.go", tools)):
        (folder / name).write_text(text)
    return folder


def install(program: Program, progress: Callable[[str], None] = lambda line: None, timeout: float = 3600) -> Installed:
    """The program, built now if it is neither in the cache nor on PATH at the pinned release."""
    if found := find(program):
        return found
    go = go_command()
    try:
        folder = wrapper_module(program.module)
    except OSError as error:
        raise UpstreamError(f"{program.name}: cannot write the wrapper module in {cache_root()}: {error.strerror}") from None
    target = binary_path(program)
    partial = target.with_name(target.name + ".partial")
    ldflags = " ".join(f"-X {name}={value}" for name, value in program.stamp.items())
    tags = ["-tags", ",".join(program.tags)] if program.tags else []
    argv = [go, "build", "-v", "-mod=mod", "-trimpath", *tags, "-ldflags", ldflags, "-o", str(partial), program.package]
    progress(f"building {program.name} {program.version} ({program.module.spec}): go build {program.package}")
    started, tail = time.monotonic(), deque(maxlen=15)
    environment = {**os.environ, "CGO_ENABLED": "1" if program.cgo else "0", "GOFLAGS": "-buildvcs=false"}
    with subprocess.Popen(argv, cwd=folder, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as build:
        assert build.stdout is not None
        compiled = 0
        for line in build.stdout:
            tail.append(line.rstrip())
            if line.startswith(("go: downloading", "#")) or " " in line.strip():
                progress(line.rstrip())  # downloads, and compiler or linker messages
            else:
                compiled += 1  # go build -v names each package it builds
                if compiled % 200 == 0:
                    progress(f"{program.name}: {compiled} packages built, {time.monotonic() - started:.0f} s")
            if time.monotonic() - started > timeout:
                build.kill()
                raise UpstreamError(f"{program.name}: go build did not finish within {timeout:.0f} s")
        code = build.wait()
    if code != 0 or not partial.exists():
        said = "\n  ".join(tail) or "no output"
        cgo = "; it needs a C compiler (cgo): apt-get install gcc" if program.cgo else ""
        raise UpstreamError(f"{program.name}: go build {program.package} failed (exit {code}) in {folder}:\n  {said}\n"
                            f"fix: check the Go module proxy is reachable (go env GOPROXY){cgo}; {GO_FIX}")
    partial.replace(target)
    progress(f"built {program.name} in {time.monotonic() - started:.0f} s: {target}")
    return Installed(program.name, program.version, str(target), "built")

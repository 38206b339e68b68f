"""Building real proxy-wasm modules from AssemblyScript, offline after one ``npm install``.

A proxy-wasm module is an ordinary WebAssembly module that exports the ABI's callbacks
(``proxy_on_request_headers``, ...) and imports the host's functions (``proxy_log``, ...). meshlab
builds its example filters, and the filter a reader writes in chapter 10's lab, with the
AssemblyScript SDK ``@solo-io/proxy-runtime`` 0.1.8 and the compiler its lockfile pins,
``assemblyscript`` 0.14.9 (newer compilers break the SDK's old runtime: /work/shared/reference/wasm.md).
The toolchain is npm-installed once into a cache outside the checkout; a module is built once per
source text and kept under the sha256 of what went into it.

    TOOLCHAIN      the npm packages and versions the build uses
    ASC_FLAGS      the compiler's flags (the SDK's README: abort ends in wasi proc_exit)
    SOURCES        the example filters: name -> index.ts in meshlab's data folder
    TEMPLATE       chapter 10's lab filter with a hole for the reader (root_id "my_filter"); it compiles as given
    BuildError     the build could not be done: names the step, asc's message for a compile error
    cache_root     MESHLAB_WASM_CACHE, else $XDG_CACHE_HOME/meshlab/wasm, else ~/.cache/meshlab/wasm
    install_toolchain  npm-install TOOLCHAIN into the cache (once); the path of ``asc``
    module_path    where a module built from a source text is cached
    build          an example filter's module, built or found in the cache
    build_source   a module from any AssemblyScript source text (the reader's filter)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from meshlab import npm

#: npm packages the build uses. The SDK's package-lock.json pins assemblyscript 0.14.9.
TOOLCHAIN = {"@solo-io/proxy-runtime": "0.1.8", "assemblyscript": "0.14.9"}

#: ``--use abort=abort_proc_exit`` routes AssemblyScript's abort to the SDK's function, which logs the
#: message at critical level and calls wasi ``proc_exit(255)`` (proxy-runtime 0.1.8 README, runtime.ts).
ASC_FLAGS = ("--use", "abort=abort_proc_exit", "--optimize")

DATA = Path(__file__).resolve().parent.parent / "data" / "wasm"
#: Helpers every filter may import as ``"../config"`` (a flat JSON configuration reader).
LIBRARY = DATA / "config.ts"

SOURCES: dict[str, Path] = {
    "add_header": DATA / "add_header" / "index.ts",
    "deny_by_header": DATA / "deny_by_header" / "index.ts",
    "count_by_path": DATA / "count_by_path" / "index.ts",
}

TEMPLATE = DATA / "lab_template" / "index.ts"

NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


class BuildError(Exception):
    """A module could not be built; the message says which step failed and how to fix it."""


def cache_root() -> Path:
    if folder := os.environ.get("MESHLAB_WASM_CACHE"):
        return Path(folder)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "meshlab" / "wasm"


def install_toolchain() -> Path:
    """npm-install the pinned SDK and compiler into ``<cache>/toolchain`` unless they are there; ``asc``'s path."""
    try:
        return npm.install(cache_root() / "toolchain", TOOLCHAIN, Path("node_modules/.bin/asc"))
    except npm.NpmError as error:
        raise BuildError(f"building proxy-wasm modules: {error}") from None


def _digest(source: str) -> str:
    """What decides the module's bytes: the source, meshlab's helpers, the toolchain and flags."""
    what = json.dumps([source, LIBRARY.read_text(), TOOLCHAIN, ASC_FLAGS])
    return hashlib.sha256(what.encode()).hexdigest()


def module_path(source: str, name: str) -> Path:
    return cache_root() / "modules" / f"{name}-{_digest(source)}.wasm"


def build(name: str) -> Path:
    """The module of example filter ``name`` (one of SOURCES), built unless cached."""
    if name not in SOURCES:
        raise BuildError(f"no example filter named {name!r}; the examples are {', '.join(SOURCES)} "
                         "(for a source text of your own use build_source)")
    return build_source(SOURCES[name].read_text(), name=name)


def _compile_errors(stderr: str, work: Path, name: str) -> str:
    """asc's ERROR blocks (its warnings from the standard library left out), paths made readable."""
    blocks = re.split(r"\n(?=(?:ERROR|WARNING) )", stderr.strip())
    errors = [block for block in blocks if not block.startswith("WARNING")] or blocks
    return "\n".join(errors).replace(str(work / name) + "/", f"{name}/").replace(str(work) + "/", "")


def build_source(source: str, *, name: str = "filter") -> Path:
    """Compile AssemblyScript ``source`` (an ``index.ts`` importing ``@solo-io/proxy-runtime`` and,
    if it likes, ``"../config"``) into ``<cache>/modules/<name>-<sha256>.wasm``; a module already
    built from the same source is reused. A compile error raises BuildError with asc's message."""
    if not NAME.fullmatch(name):
        raise BuildError(f"module name {name!r} is not accepted: use lower-case letters, digits and '_', "
                         "starting with a letter (at most 63)")
    target = module_path(source, name)
    if target.exists():
        return target
    asc = install_toolchain()
    target.parent.mkdir(parents=True, exist_ok=True)
    # asc finds @solo-io/proxy-runtime in the node_modules above the source, so the work folder
    # lives inside the toolchain folder.
    with tempfile.TemporaryDirectory(prefix="build-", dir=asc.parent.parent.parent) as scratch:
        work = Path(scratch)
        (work / name).mkdir()
        (work / name / "index.ts").write_text(source)
        shutil.copy(LIBRARY, work / "config.ts")
        output = work / f"{name}.wasm"
        done = subprocess.run([str(asc), f"{name}/index.ts", "-b", str(output), *ASC_FLAGS],
                              cwd=work, capture_output=True, text=True, check=False)
        if "no such global element: abort_proc_exit" in done.stderr:
            raise BuildError(f"{name} does not use the proxy-wasm SDK, so asc finds no abort_proc_exit for "
                             'ASC_FLAGS: begin the source with export * from "@solo-io/proxy-runtime/proxy";')
        if done.returncode != 0 or not output.exists():
            raise BuildError(f"asc could not compile {name}:\n{_compile_errors(done.stderr or done.stdout, work, name)}")
        os.replace(output, target)
    return target

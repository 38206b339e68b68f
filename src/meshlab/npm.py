"""npm packages meshlab runs, installed once into a cache outside the checkout and reused after.

    NODE_FIX     how to get Node.js and npm
    NpmError     npm missing, or an install that failed (npm's last lines say why)
    cache_root   MESHLAB_NPM_CACHE, else $XDG_CACHE_HOME/meshlab/npm, else ~/.cache/meshlab/npm
    install      the pinned packages into a folder unless there; the path of the file asked for
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

NODE_FIX = "install Node.js and npm (Debian: apt-get install nodejs npm)"


class NpmError(RuntimeError):
    """npm is missing or an install failed; the message says which and the fix."""


def cache_root() -> Path:
    if folder := os.environ.get("MESHLAB_NPM_CACHE"):
        return Path(folder)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "meshlab" / "npm"


def _installed_version(folder: Path, package: str) -> str | None:
    try:
        return json.loads((folder / "node_modules" / package / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def install(folder: Path, packages: dict[str, str], wanted: Path) -> Path:
    """``npm install`` the exact ``packages`` (name -> version) into ``folder`` (in a cache) unless they
    are there already; returns ``folder/wanted`` (a program in node_modules/.bin, say)."""
    for program in ("node", "npm"):  # what they run needs node, even when they are installed
        if shutil.which(program) is None:
            raise NpmError(f"{', '.join(packages)} come from npm and run on Node.js; {program} is not on PATH (fix: {NODE_FIX})")
    target = folder / wanted
    if target.exists() and all(_installed_version(folder, package) == version for package, version in packages.items()):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(json.dumps({"name": f"meshlab-{folder.name}", "private": True}) + "\n")
    specs = [f"{package}@{version}" for package, version in packages.items()]
    done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--save-exact", *specs], cwd=folder, capture_output=True, text=True)
    if done.returncode != 0 or not target.exists():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-10:])
        raise NpmError(f"npm install {' '.join(specs)} failed in {folder} (is the npm registry reachable?):\n{tail}")
    return target

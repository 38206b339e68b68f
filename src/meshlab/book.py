"""Open the textbook in JupyterLab: what ``make lab`` runs.

It checks the port first (a busy port gets a clear message, not a traceback from
deep inside Tornado), makes a token, prints the URL with that token, then
replaces itself with the JupyterLab server so Ctrl-C and signals reach Jupyter.

    FIRST_CHAPTER  the notebook JupyterLab opens
    BookError      a port that is busy or malformed, a missing notebooks folder
    port_is_free   can we listen on (ip, port)? (meshlab.ports)
    server_argv    the JupyterLab command line for a root folder, address and token
    trust_book     mark the stored chapters and labs trusted, so their widgets render before they run
    serve          check, print the URL, trust the book, exec JupyterLab
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from meshlab.ports import port_is_free

FIRST_CHAPTER = "notebooks/00-how-to-use-this-book.ipynb"


class BookError(RuntimeError):
    """The book cannot be opened as asked."""


def server_argv(root: Path, ip: str, port: int, token: str) -> list[str]:
    """``python -m jupyterlab`` (not the ``jupyter lab`` wrapper, which leaves the server behind when killed)."""
    argv = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        f"--ServerApp.ip={ip}", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.default_url=/lab/tree/{FIRST_CHAPTER}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    return argv


def trust_book(root: Path) -> list[Path]:
    """Sign the book's stored notebooks with this user's Jupyter key (what ``jupyter trust`` does).

    JupyterLab shows an untrusted notebook's widgets as text (``interactive(children=...``): the widget
    renderer is not "safe", so a notebook nobody ran here falls back to text/plain. The reader who runs
    ``make lab`` runs this repository's code anyway; trusting its stored outputs lets the controls and
    the figures they drew show before the first Run."""
    from nbformat import read
    from nbformat.sign import NotebookNotary

    notary = NotebookNotary()
    trusted = []
    for path in sorted([*root.glob("notebooks/*.ipynb"), *root.glob("labs/*.ipynb")]):
        notary.sign(read(path, as_version=4))
        trusted.append(path)
    return trusted


def serve(root: Path, ip: str, port: int) -> None:
    """Print the URL with its token, then become the JupyterLab server."""
    if not 1 <= port <= 65535:
        raise BookError(f"PORT={port} is not a TCP port; use 1-65535, e.g. PORT=8899 make lab")
    if not (root / FIRST_CHAPTER).exists():
        raise BookError(f"{root / FIRST_CHAPTER} not found; run make lab from the repository root")
    if not port_is_free(ip, port):
        raise BookError(f"port {port} on {ip} is busy (another Jupyter?); choose another, e.g. PORT={port + 11} make lab")
    trust_book(root)
    token = secrets.token_hex(24)
    host = f"[{ip}]" if ":" in ip else ip
    print(f"meshlab: the textbook is at http://{host}:{port}/lab/tree/{FIRST_CHAPTER}?token={token}", flush=True)
    argv = server_argv(root.resolve(), ip, port, token)
    os.execv(argv[0], argv)

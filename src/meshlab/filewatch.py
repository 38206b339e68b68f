"""A file another process rewrites, noticed by its modification time.

The lab hands configuration to its running processes through files it replaces whole (a rename): the
sidecars' service table and data-plane file, the agents' name table. Each reader looks at the file's
modification time when it next needs it, as Envoy watches a path config source, and rereads it when it
changed. Standard library only: the sidecar imports it before it drops its privileges.

    ChangedFile   ``changed()``: True once for each new version of the file
"""

from __future__ import annotations

from pathlib import Path


class ChangedFile:
    """``path`` None, or a file that does not exist (yet), never counts as changed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.seen: int | None = None

    def changed(self) -> bool:
        """Whether the file is another version than when this was last asked (the first time: any file)."""
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return False
        if mtime == self.seen:
            return False
        self.seen = mtime
        return True

"""What every live composition of the lab shares: one prefix, all or nothing on the way up, one way down.

A composition (the pods of ``Lab``, the tiered gateways of ``Clusters``, the lazy-loading lab, the
multi-cluster mesh, the Dapr lab) creates network namespaces and processes that carry its prefix and
records them in its state folder, so that ``down`` (or ``meshlab lab cleanup`` after a crash) removes
exactly them. Four rules are the same for all of them, and live here: a prefix already in use is
refused before anything is made; a failure while coming up takes down what was made before it;
``down_at_exit`` takes the lab down when the Python that made it ends; and ``with`` takes it down
at the block's end.

    Composition   prefix, state_dir, host; refuse_existing, bring_up, _log; a context manager; down is each one's
"""

from __future__ import annotations

import atexit
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Self

from meshlab.lab.netns import MACHINE, LabUsageError
from meshlab.lab.spec import DEFAULT_PREFIX, check_prefix
from meshlab.lab.state import state_dir


class Composition(ABC):
    """A live composition identified by its prefix; subclasses say how to go ``down``."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = check_prefix(prefix)
        self.state_dir = state_dir(self.prefix)
        self.host = MACHINE

    def refuse_existing(self, in_use: bool = False) -> None:
        """A lab of this prefix (its state file, its namespaces, or ``in_use``, the subclass's own sign) exists."""
        if in_use or (self.state_dir / "state.json").exists() or MACHINE.with_prefix(self.prefix):
            raise LabUsageError(f"a lab with prefix {self.prefix!r} already exists; stop it with `meshlab lab down --prefix {self.prefix}` "
                                f"(or `meshlab lab cleanup --prefix {self.prefix}` after a crash)")

    def bring_up(self, build: Callable[[], None], down_at_exit: bool) -> Self:
        """Run ``build``; on any failure (an interrupt too) take down what it made and re-raise."""
        try:
            build()
        except BaseException:
            self.down()
            raise
        if down_at_exit:
            atexit.register(self.down)
        return self

    def _log(self, pod: str, role: str) -> Path:
        """Where a pod's process of ``role`` (app, sidecar, gateway, ...) logs."""
        return self.state_dir / f"{pod}-{role}.log"

    @abstractmethod
    def down(self) -> None:
        """Stop what the composition started and delete what it created (idempotent)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.down()

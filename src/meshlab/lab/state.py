"""A lab's state file, ``<state folder>/state.json``: what ``Lab.attach`` reopens and what ``cleanup``
stops, read in one place. Without root the state folder lives under a folder only the user can read.

    LabState     prefix, datapath, proxy mode, nodes, pods, processes, services, and several clusters' layout
    read_state   a state folder's LabState, or None when there is none (or it is unreadable)
    state_root   the folder holding every lab's state, created and checked
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from meshlab.lab.netns import LabError
from meshlab.lab.processes import ProcessRecord
from meshlab.lab.spec import STATE_ROOT


@dataclass
class LabState:
    prefix: str
    datapath: str = "iptables"
    proxy_mode: str = "sidecar"
    nodes: int = 1
    pods: list[dict] = field(default_factory=list)
    processes: list[tuple[str, ProcessRecord]] = field(default_factory=list)
    services: dict[str, dict] = field(default_factory=dict)
    #: A lab of several clusters (``meshlab.lab.clusters``): its layout; empty for a one-cluster lab.
    clusters: dict = field(default_factory=dict)

    def write(self, state_dir: Path) -> None:
        saved = {**asdict(self), "processes": [{"pod": pod, **asdict(process)} for pod, process in self.processes]}
        (state_dir / "state.json").write_text(json.dumps(saved, indent=1))


def read_state(state_dir: Path) -> LabState | None:
    try:
        saved = json.loads((state_dir / "state.json").read_text())
        processes = [(p["pod"], ProcessRecord(p["pid"], p["start_time"], p["role"])) for p in saved["processes"]]
        return LabState(saved["prefix"], saved["datapath"], saved["proxy_mode"], saved["nodes"], saved["pods"], processes, saved["services"],
                        saved.get("clusters", {}))
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return None


def state_root() -> Path:
    """The folder holding every lab's state; without root one that only this user owns and can
    read, created if needed (a folder in /tmp that someone else made is refused)."""
    if os.geteuid() == 0:
        STATE_ROOT.mkdir(parents=True, exist_ok=True)
        return STATE_ROOT
    STATE_ROOT.mkdir(mode=0o700, exist_ok=True)
    owner = STATE_ROOT.lstat()
    if STATE_ROOT.is_symlink() or owner.st_uid != os.geteuid() or owner.st_mode & 0o077:
        raise LabError(f"{STATE_ROOT} must be a folder owned by you (uid {os.geteuid()}) with mode 0700; remove it and try again")
    return STATE_ROOT


def state_dir(prefix: str) -> Path:
    """Where the lab ``prefix`` keeps its state, inside the checked ``state_root()``: every way in (up,
    attach, cleanup) goes through the owner and symlink check, so none follows a planted link."""
    return state_root() / prefix

"""Reading what the lab's processes log, without a lab: every proxy writes one JSON record per line
(``{"event": "ready"}`` once listening, ``{"event": "hop", ...}`` per finished connection).

    started        the log says the process is listening
    start_failure  the traceback a process died with before it was ready, or None
    parse          a proxy log's hop records, oldest first
    matching       the hops whose fields equal the given ones
    wait_for       the newest such hop, waited for (a hop is logged when its connection closes)
    counters       connections and bytes per direction, and errors, summed over hops
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from meshlab.lab.netns import LabError


def started(log: str) -> bool:
    return '"event": "ready"' in log


def start_failure(log: str) -> str | None:
    return log[-1500:] if "Traceback" in log else None


def parse(log: str) -> list[dict]:
    return [record for record in map(json.loads, log.splitlines()) if record.get("event") == "hop"]


def matching(hops: list[dict], **fields) -> list[dict]:
    return [hop for hop in hops if all(hop.get(key) == value for key, value in fields.items())]


def wait_for(read: Callable[[], list[dict]], where: str, timeout: float, since: float | None = None, **fields) -> dict:
    """The newest hop of ``read()`` whose fields equal ``fields`` and, with ``since`` (``time.time()``
    taken before the request), that opened no earlier, waited for: a hop is logged only when its
    connection closes, possibly after the client already has its reply. Without ``since`` an earlier
    connection from the same address and port (ports are reused) could be taken for this one."""
    deadline = time.monotonic() + timeout
    while not (found := [hop for hop in matching(read(), **fields) if since is None or hop["opened"] >= since]):
        if time.monotonic() > deadline:
            raise LabError(f"{where} logged no hop with {fields} within {timeout:.0f} s")
        time.sleep(0.01)
    return found[-1]


def counters(hops: list[dict]) -> dict[str, int]:
    totals = {"outbound_connections": 0, "inbound_connections": 0, "bytes_from_downstream": 0, "bytes_from_upstream": 0, "upstream_errors": 0}
    for hop in hops:
        totals[f"{hop['direction']}_connections"] += 1
        totals["bytes_from_downstream"] += hop["bytes_from_downstream"]
        totals["bytes_from_upstream"] += hop["bytes_from_upstream"]
        totals["upstream_errors"] += hop["error"] is not None
    return totals

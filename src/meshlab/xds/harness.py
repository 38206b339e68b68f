"""A control plane, backends and proxyless clients together on loopback: what tests, chapters and
benchmarks start.

    Greeter      the demo service: backends v1 and v2 (and more), and the Service that routes to them
    run_clients  client processes (gRPC's real xDS client), each calling several xds:/// targets
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from meshlab.xds.debounce import DebounceOptions
from meshlab.xds.echo import start_backend
from meshlab.xds.resources import Service
from meshlab.xds.server import ControlPlaneThread, bootstrap


class Greeter:
    """A control plane on its own thread plus named backends; ``close()`` stops everything."""

    def __init__(self, options: DebounceOptions = DebounceOptions(debounce_after_ms=10), throttle: int = 0, backends: tuple[str, ...] = ("v1", "v2")) -> None:
        self.control_plane = ControlPlaneThread(options, throttle)
        self.port = self.control_plane.start()
        self.servers, self.address = {}, {}
        for name in backends:
            self.add_backend(name)
        self.folder = Path(tempfile.mkdtemp(prefix="meshlab-xds-"))
        self.bootstrap = self.folder / "bootstrap.json"
        bootstrap(self.port, path=self.bootstrap)

    def add_backend(self, name: str) -> str:
        server, port = start_backend(name)
        self.servers[name], self.address[name] = server, f"127.0.0.1:{port}"
        return self.address[name]

    def service(self, target: str, weights: dict[str, int], cluster_type: str = "EDS") -> Service:
        """``target`` routing to one cluster per backend name, with these weights."""
        return Service(target, {f"{target}-{b}": w for b, w in weights.items()}, {f"{target}-{b}": [self.address[b]] for b in weights}, cluster_type)

    def close(self) -> None:
        """Stop the backends and the control plane, and remove the bootstrap file's folder."""
        for server in self.servers.values():
            server.stop(grace=None)
        self.control_plane.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def run_clients(bootstrap_file: Path, targets: list[str], count: int, interval_ms: float = 0.0, processes: int = 1, wait: bool = True,
                within: Callable[[list[str]], list[str]] = list):
    """Start ``processes`` client processes; each calls every target ``count`` times. With ``wait``,
    returns their records (one list per process); otherwise the Popen objects. ``within`` wraps the
    command: a pod's ``namespace.argv`` runs the clients in that pod."""
    argv = [sys.executable, "-m", "meshlab.xds.echo", "--bootstrap", str(bootstrap_file), "--targets", ",".join(targets), "--count", str(count), "--interval-ms", str(interval_ms)]
    started = [subprocess.Popen(within(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(processes)]
    return collect(started) if wait else started


def collect(processes, timeout: float = 120) -> list[list[dict]]:
    """Each client's records; a client that has not finished within ``timeout`` is ended (all of them are ours)."""
    results = []
    for process in processes:
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for started in processes:
                if started.poll() is None:
                    started.kill()
                    started.wait()
            raise RuntimeError(f"xDS client process {process.pid} did not finish within {timeout} s; all clients ended") from None
        if process.returncode != 0:
            raise RuntimeError(f"xDS client process exited with {process.returncode}")
        results.append(json.loads(out))
    return results

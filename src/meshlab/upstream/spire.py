"""SPIRE's own server and agent (v1.13.3, built by the upstream stage), run on loopback from a folder
of their own: SQLite datastore, join-token node attestation, the unix workload attestor, the Workload
API on a Unix socket. Beside meshlab's agent (meshlab.identity) it answers "does the real SPIRE issue
the same identities for the same entries and callers?".

The configuration follows SPIRE's own samples (conf/server/server.conf, conf/agent/agent.conf of
v1.13.3) less the disk UpstreamAuthority, so the server signs with its own CA; commands as in
SPIRE's doc/SPIRE101.md (``token generate``, ``run -joinToken``, ``entry create``).

    SpireError   a SPIRE command failed or a process did not become healthy; names which and what it said
    Spire        with Spire(server, agent, folder) as spire: spire.create_entry(...); spire.workload_socket
                 (``discover_workload_path`` turns on the unix attestor's path and sha256 selectors)
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from meshlab.lab.processes import ProcessRecord
from meshlab.ports import free_port
from meshlab.upstream.daemons import Daemons
from meshlab.upstream.run import run

SERVER_CONF = """server {{
    bind_address = "127.0.0.1"
    bind_port = "{port}"
    socket_path = "{folder}/server/api.sock"
    trust_domain = "{trust_domain}"
    data_dir = "{folder}/server-data"
    log_level = "INFO"
}}
plugins {{
    DataStore "sql" {{
        plugin_data {{
            database_type = "sqlite3"
            connection_string = "{folder}/server-data/datastore.sqlite3"
        }}
    }}
    NodeAttestor "join_token" {{
        plugin_data {{}}
    }}
    KeyManager "memory" {{
        plugin_data = {{}}
    }}
}}
"""

AGENT_CONF = """agent {{
    data_dir = "{folder}/agent-data"
    log_level = "INFO"
    server_address = "127.0.0.1"
    server_port = "{port}"
    socket_path = "{folder}/agent/api.sock"
    insecure_bootstrap = true
    trust_domain = "{trust_domain}"
}}
plugins {{
    NodeAttestor "join_token" {{
        plugin_data {{}}
    }}
    KeyManager "disk" {{
        plugin_data {{
            directory = "{folder}/agent-data"
        }}
    }}
    WorkloadAttestor "unix" {{
        plugin_data {{
            discover_workload_path = {discover_workload_path}
        }}
    }}
}}
"""


class SpireError(RuntimeError):
    """SPIRE did not do what was asked; the message names the step and SPIRE's own words."""


class Spire(Daemons):
    """A SPIRE server and one agent attested with a join token; both stopped (by PID) and the folder
    removed on exit. ``agent_id`` is the agent's SPIFFE ID, the parent of the entries."""

    def __init__(self, server: str, agent: str, folder: Path, trust_domain: str = "meshlab.test", discover_workload_path: bool = False,
                 on_start: Callable[[ProcessRecord], None] = lambda process: None) -> None:
        """``on_start`` hears of each process as it starts (a live lab records it, so its cleanup stops it)."""
        super().__init__(folder, on_start)
        self.server, self.agent, self.trust_domain = server, agent, trust_domain
        self.discover_workload_path = discover_workload_path
        self.agent_id = ""

    @property
    def server_socket(self) -> Path:
        return self.folder / "server" / "api.sock"

    @property
    def workload_socket(self) -> Path:
        return self.folder / "agent" / "api.sock"

    def _command(self, step: str, argv: list[str]) -> str:
        return run(argv, f"{step}: {' '.join(argv[:3])}", SpireError, timeout=60, tail=500).stdout

    def _start(self, role: str, argv: list[str], healthcheck: list[str], timeout: float = 30) -> None:
        process = self.start(f"spire-{role}", argv)
        self.wait_ready(f"spire-{role}", process, lambda: subprocess.run(healthcheck, capture_output=True, timeout=30, check=False).returncode == 0,
                        timeout, poll=0.1, error=SpireError)

    def setup(self) -> None:
        for sub in ("server", "agent", "server-data", "agent-data"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        # SPIRE takes the agent API's port as a number and reads bind_port "0" as its default 8081 (v1.13.3)
        values = {"folder": self.folder, "port": free_port(), "trust_domain": self.trust_domain,
                  "discover_workload_path": str(self.discover_workload_path).lower()}
        (self.folder / "server.conf").write_text(SERVER_CONF.format(**values))
        (self.folder / "agent.conf").write_text(AGENT_CONF.format(**values))
        self._start("server", [self.server, "run", "-config", str(self.folder / "server.conf")],
                    [self.server, "healthcheck", "-socketPath", str(self.server_socket)])
        said = self._command("generate a join token", [self.server, "token", "generate", "-spiffeID", f"spiffe://{self.trust_domain}/agent",
                                                       "-socketPath", str(self.server_socket)])
        token = said.split("Token:")[-1].strip()
        self.agent_id = f"spiffe://{self.trust_domain}/spire/agent/join_token/{token}"
        self._start("agent", [self.agent, "run", "-config", str(self.folder / "agent.conf"), "-joinToken", token],
                    [self.agent, "healthcheck", "-socketPath", str(self.workload_socket)])

    def create_entry(self, spiffe_id: str, selectors: list[str]) -> str:
        """``spire-server entry create`` under this agent; returns the entry ID."""
        argv = [self.server, "entry", "create", "-parentID", self.agent_id, "-spiffeID", spiffe_id, "-socketPath", str(self.server_socket)]
        for selector in selectors:
            argv += ["-selector", selector]
        said = self._command(f"create the entry {spiffe_id}", argv)
        return said.split("Entry ID")[1].split(":", 1)[1].split()[0]

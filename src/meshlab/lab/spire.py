"""SPIRE's own server and agent (the upstream stage's v1.13.3) in the live lab: their data and sockets in
the lab's state folder, their processes recorded by the lab, so ``meshlab lab down`` or ``cleanup`` (also
after the Python process that started them was killed) stops them and removes everything. Workloads in
the lab's pods ask the real agent with the real ``spiffe`` client.

SPIRE's unix attestor tells callers apart by uid, gid, groups (and, if enabled, binary); it has no
notion of pods without a kubelet. So a workload here is a process in a pod with a gid of its own
(``setpriv --regid``), and entries select ``unix:gid:N``.

    Issued         what a workload was given: its X509-SVIDs' IDs and a JWT-SVID's subject (None: refused)
    workload_ids   run a workload in a pod with a gid against any Workload API socket (SPIRE's or meshlab's)
    LabSpire       with LabSpire(lab, server, agent) as spire: spire.create_entry(...); spire.fetch(pod, gid)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from meshlab.lab.cluster import Lab
from meshlab.upstream.spire import Spire

#: A workload: its X509-SVIDs' SPIFFE IDs and a JWT-SVID for the audience "meshlab", as JSON, or "refused".
FETCH = """
import json, sys
from spiffe import WorkloadApiClient
from spiffe.workloadapi.errors import FetchJwtSvidError, FetchX509SvidError
try:
    with WorkloadApiClient(sys.argv[1]) as client:
        x509 = sorted(str(svid.spiffe_id) for svid in client.fetch_x509_svids())
        jwt = str(client.fetch_jwt_svid({"meshlab"}).spiffe_id)
    print(json.dumps({"x509": x509, "jwt": jwt}))
except (FetchX509SvidError, FetchJwtSvidError):
    print("refused")
"""


@dataclass(frozen=True)
class Issued:
    x509: frozenset[str]
    jwt: str


def workload_ids(lab: Lab, pod: str, gid: int, socket_path: Path) -> Issued | None:
    """What a process with ``gid`` in ``pod`` is given by the Workload API at ``socket_path``."""
    argv = ["setpriv", f"--regid={gid}", "--clear-groups", sys.executable, "-c", FETCH, f"unix://{socket_path}"]
    done = lab.exec(pod, argv)
    if done.returncode != 0:
        raise RuntimeError(f"the workload in pod {pod} failed: {done.stderr.strip()[-400:]}")
    if done.stdout.strip() == "refused":
        return None
    said = json.loads(done.stdout)
    return Issued(frozenset(said["x509"]), said["jwt"])


class LabSpire(Spire):
    def __init__(self, lab: Lab, server: str, agent: str, trust_domain: str = "meshlab.test") -> None:
        super().__init__(server, agent, lab.state_dir / "spire", trust_domain, on_start=lambda process: lab.adopt("spire", process))
        self.lab = lab

    def fetch(self, pod: str, gid: int) -> Issued | None:
        return workload_ids(self.lab, pod, gid, self.workload_socket)

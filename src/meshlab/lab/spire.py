"""SPIRE's own server and agent (the upstream stage's v1.13.3) in the live lab: their data and sockets in
the lab's state folder, their processes recorded by the lab, so ``meshlab lab down`` or ``cleanup`` (also
after the Python process that started them was killed) stops them and removes everything. Workloads in
the lab's pods ask the real agent with the real ``spiffe`` client.

SPIRE's unix attestor tells callers apart by uid, gid, groups (and, if enabled, binary); it has no
notion of pods without a kubelet. So a workload here is a process in a pod with a gid of its own
(``setpriv --regid``), and entries select ``unix:gid:N``.

    LabSpire   with LabSpire(lab, server, agent) as spire: spire.create_entry(...); spire.fetch(pod, gid)
"""

from __future__ import annotations

import sys

from meshlab.lab.cluster import Lab
from meshlab.upstream.spire import Spire

#: A workload: fetch the X509-SVIDs the agent gives this process and print their SPIFFE IDs, or "refused".
FETCH = """
import sys
from spiffe import WorkloadApiClient
from spiffe.workloadapi.errors import FetchX509SvidError
try:
    with WorkloadApiClient(sys.argv[1]) as client:
        print(" ".join(sorted(str(svid.spiffe_id) for svid in client.fetch_x509_svids())))
except FetchX509SvidError:
    print("refused")
"""


class LabSpire(Spire):
    def __init__(self, lab: Lab, server: str, agent: str, trust_domain: str = "meshlab.test") -> None:
        super().__init__(server, agent, lab.state_dir / "spire", trust_domain, on_start=lambda process: lab.adopt("spire", process))
        self.lab = lab

    def fetch(self, pod: str, gid: int) -> set[str] | None:
        """The SPIFFE IDs a process with ``gid`` in ``pod`` gets from the real agent (None: refused)."""
        argv = ["setpriv", f"--regid={gid}", "--clear-groups", sys.executable, "-c", FETCH, f"unix://{self.workload_socket}"]
        done = self.lab.exec(pod, argv)
        if done.returncode != 0:
            raise RuntimeError(f"the workload in pod {pod} failed: {done.stderr.strip()[-400:]}")
        said = done.stdout.strip()
        return None if said == "refused" else set(said.split())

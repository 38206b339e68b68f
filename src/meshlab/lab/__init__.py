"""The embedded live lab: pods as network namespaces, Istio's rules, real sidecar processes.

    netns      network namespaces the lab owns (create, enter, run, delete)
    processes  processes the lab started, by PID and start time
    network    nodes, bridges, the fabric and how pods are wired to them
    cluster    Lab: nodes, pods, services; up/down/status/exec/logs/hops/requests; cleanup
    kubelet    starts pods' processes by forking one pre-imported Python
    sidecar    the transparent proxy (15001 outbound, 15006 inbound) running as uid 1337
    apps       the demo HTTP echo app
    client     an HTTP client that times every request
"""

from meshlab.lab.cluster import DEFAULT_PREFIX, Lab, Pod, PodSpec, cleanup
from meshlab.lab.netns import LabError, LabUsageError

__all__ = ["DEFAULT_PREFIX", "Lab", "LabError", "LabUsageError", "Pod", "PodSpec", "cleanup"]

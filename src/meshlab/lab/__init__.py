"""The embedded live lab: pods as network namespaces, Istio's rules, real sidecar processes.

    netns      network namespaces the lab owns, and the host they live on (create, enter, run, delete)
    rootless   the same lab without root, inside a user namespace
    processes  processes the lab started, by PID and start time
    network    nodes, bridges, the fabric and how pods are wired to them
    cluster    Lab: nodes, pods, services; up/down/status/exec/logs/hops/requests; cleanup
    kubelet    starts pods' processes by forking one pre-imported Python
    sidecar    the transparent proxy (15001 outbound, 15006 inbound) running as uid 1337
    apps       the demo HTTP echo app
    client     an HTTP client that times every request

``Lab`` and the names beside it are imported on first use, so that ``python -m meshlab.lab.client``
(run inside pods) loads only the client.
"""

from meshlab.lab.netns import LabError, LabUsageError

__all__ = ["DEFAULT_PREFIX", "Lab", "LabError", "LabUsageError", "Pod", "PodSpec", "cleanup"]
_FROM_CLUSTER = {"DEFAULT_PREFIX", "Lab", "Pod", "PodSpec", "cleanup"}


def __getattr__(name: str):
    if name in _FROM_CLUSTER:
        from meshlab.lab import cluster

        return getattr(cluster, name)
    raise AttributeError(f"module 'meshlab.lab' has no attribute {name!r}")

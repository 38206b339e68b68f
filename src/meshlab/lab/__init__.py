"""The embedded live lab: pods as network namespaces, Istio's rules, real sidecar processes.

    netns      network namespaces the lab owns, and the host they live on (create, enter, run, delete)
    rootless   the same lab without root, inside a user namespace
    processes  processes the lab started, by PID and start time
    network    nodes, bridges, the fabric and how pods are wired to them
    spec       PodSpec, Pod, the prefix rule and the lab's numbers
    state      the state file attach and cleanup read
    hops       the proxies' logs read without a lab (ready, hops, counters)
    composition  what every live composition shares: prefix, all-or-nothing up, down, a context manager
    cluster    Lab: nodes, pods, services; up/down/status/exec/logs/hops/requests
    clusters   several clusters, each behind its tier-2 gateway, and a tier-1 gateway splitting between them
    lazyload   lazy loading live: a fenced workload, the global sidecar, the controller, meshlab's xDS control plane
    multicluster  one mesh over clusters on several networks: control planes, east-west gateways, mutual TLS, a VM
    dapr       Dapr's daprd beside lab pods (and their sidecars), driven by Dapr's Python SDK
    teardown   cleanup: remove what a prefix owns (down, and after a crash)
    identity   the identity live lab: SPIRE-style agent attesting the lab's pods, mTLS between them
    spire      the same pods given identities by a real SPIRE (the upstream stage)
    kubelet    starts pods' processes (apps, sidecars, gateways) by forking one pre-imported Python
    sidecar    the transparent proxy (15001 outbound, 15006 inbound) running as uid 1337
    xdsclient  the sidecar's ADS client: its outbound table from the control plane's listeners, clusters, endpoints
    balancer   how the sidecar picks an endpoint: Envoy's priority levels, weights, outlier detection
    tlsinspector  Envoy's tls_inspector: a connection's first bytes peeked (TLS or not, the SNI)
    admin      the sidecar's Envoy admin paths (15000, and 15090's /stats/prometheus)
    hcm        Envoy's HTTP connection manager in the sidecar: HTTP filters, router, access logs, tracing
    dataplane  the sidecar's HTTP side configured by a pod's inbound listener and extension configs
    proxyconfig  what istiod and pilot-agent do for the data-plane pods: WasmPlugins, telemetry, each pod's file
    agent      pilot-agent beside a data-plane pod's sidecar: its files, certificates and process
    apps       the demo HTTP echo app
    client     an HTTP client that times every request

``Lab`` and the names beside it are imported on first use, so that ``python -m meshlab.lab.client``
(run inside pods) loads only the client.
"""

from meshlab.lab.netns import LabError, LabUsageError

__all__ = ["DEFAULT_PREFIX", "Lab", "LabError", "LabUsageError", "Pod", "PodSpec", "cleanup"]
_WHERE = {"DEFAULT_PREFIX": "spec", "Pod": "spec", "PodSpec": "spec", "Lab": "cluster", "cleanup": "teardown"}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"meshlab.lab.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'meshlab.lab' has no attribute {name!r}")

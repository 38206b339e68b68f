"""The Kubernetes and Istio objects the kind stage applies, as pure functions of a few names.

A namespace is enrolled the way Istio's docs do it: ``istio-injection=enabled`` for sidecars (the
injector adds istio-init and istio-proxy to every new pod), ``istio.io/dataplane-mode=ambient`` for
ambient (istio-cni adds the in-pod rules, ztunnel serves the pod; nothing is injected). The sample
workloads are a server (go-httpbin, as in Istio's httpbin sample) behind a NodePort Service, and a
client pod that only sleeps, to run ``curl`` from (Istio's ``curl`` sample image).

``service_entries`` is what the debounce experiment applies: one ServiceEntry per config change.
"""

from __future__ import annotations

from meshlab.kind.config import NODE_PORTS
from meshlab.kind.runner import KindError
from meshlab.kind.versions import CURL_IMAGE, HTTPBIN_IMAGE

MODES = {"sidecar": {"istio-injection": "enabled"}, "ambient": {"istio.io/dataplane-mode": "ambient"}}


def namespace(name: str, mode: str) -> dict:
    if mode not in MODES:
        raise KindError("manifests", f"data-plane mode {mode!r}", f"one of {', '.join(MODES)}")
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(MODES[mode])}}


def _deployment(name: str, ns: str, container: dict) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"serviceAccountName": name, "terminationGracePeriodSeconds": 0, "containers": [container]}}}}


def _service_account(name: str, ns: str) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}


def httpbin(ns: str, node_port: int = 30080) -> list[dict]:
    """httpbin on port 8080, published as Service port 8000 and NodePort ``node_port``."""
    if node_port not in NODE_PORTS:
        raise KindError("manifests", f"NodePort {node_port} is outside 30000-32767", "choose a NodePort in 30000-32767")
    container = {"name": "httpbin", "image": HTTPBIN_IMAGE, "imagePullPolicy": "IfNotPresent", "ports": [{"containerPort": 8080, "name": "http"}]}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpbin", "namespace": ns, "labels": {"app": "httpbin"}},
               "spec": {"type": "NodePort", "selector": {"app": "httpbin"},
                        "ports": [{"name": "http", "port": 8000, "targetPort": 8080, "nodePort": node_port, "protocol": "TCP"}]}}
    return [_service_account("httpbin", ns), service, _deployment("httpbin", ns, container)]


def curl_client(ns: str) -> list[dict]:
    container = {"name": "curl", "image": CURL_IMAGE, "imagePullPolicy": "IfNotPresent", "command": ["/bin/sleep", "infinity"]}
    return [_service_account("curl", ns), _deployment("curl", ns, container)]


def service_entries(count: int, ns: str, prefix: str = "meshlab-burst", labels: dict[str, str] | None = None) -> list[dict]:
    """``count`` distinct ServiceEntries (each one a config event for istiod) for external hosts."""
    if not 1 <= count <= 500:
        raise KindError("manifests", f"{count} ServiceEntries", "between 1 and 500")
    return [{"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": f"{prefix}-{i}", "namespace": ns, "labels": dict(labels or {})},
             "spec": {"hosts": [f"{prefix}-{i}.example.com"], "location": "MESH_EXTERNAL", "resolution": "DNS",
                      "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]}}
            for i in range(count)]


def workloads(ns: str, mode: str) -> list[dict]:
    """Everything one namespace of the stage holds: the enrolled namespace, httpbin and the client."""
    return [namespace(ns, mode), *httpbin(ns, 30080 if mode == "sidecar" else 30081), *curl_client(ns)]

"""Kubernetes health probes through the agent: the injector rewrites them, the agent runs the originals.

Why: with mutual TLS STRICT, the kubelet's plain HTTP probe to the app's port would be captured and
refused by the sidecar. So the injector points every httpGet, tcpSocket and grpc probe of every app
container at the agent's status port as an httpGet of ``/app-health/<container>/livez|readyz|startupz``,
and hands the originals to the agent in the istio-proxy container's env ``ISTIO_KUBE_APP_PROBERS``
(JSON: URL path -> prober). The agent probes the app from 127.0.0.6, an address Istio's capture rules
let through to the app unproxied, at the pod's IP. Facts from Istio 1.30: pkg/kube/inject/app_probe.go
(convertAppProber, DumpAppProbers: named ports resolved, a probe already aimed at the status port
left alone, HTTPS becomes HTTP), pilot/cmd/pilot-agent/status/server.go (FormatProberURL; handleAppProbe:
an unknown path is 400, a failed request 500, a redirect 200, else the app's own status code; tcpSocket:
200 if the connection opens, else 500; grpc: the gRPC health protocol; UpstreamLocalAddressIPv4 127.0.0.6).

    PROBE_SOURCE       127.0.0.6, where the agent's probes come from
    rewrite_probes     a pod spec (dict) -> (rewritten pod spec, ISTIO_KUBE_APP_PROBERS JSON or "")
    ProbeError         a prober the agent cannot run, and why
    run_prober         one prober against the app -> the HTTP status the agent answers the kubelet with
"""

from __future__ import annotations

import copy
import http.client
import json
import socket

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshlab.agent.bootstrap import STATUS_PORT

PROBE_SOURCE = "127.0.0.6"  # status/server.go UpstreamLocalAddressIPv4 (the InboundPassthroughBindIp)
PROXY_CONTAINER = "istio-proxy"
#: container probe field -> the agent's URL suffix (status/server.go FormatProberURL)
PROBES = {"readinessProbe": "readyz", "livenessProbe": "livez", "startupProbe": "startupz"}


class ProbeError(ValueError):
    """A prober the agent cannot run; the message names the prober and what is accepted."""


def _prober(probe: dict) -> dict | None:
    """The part of a Kubernetes probe the agent keeps (app_probe.go kubeProbeToInternalProber)."""
    prober = {kind: copy.deepcopy(probe[kind]) for kind in ("httpGet", "tcpSocket", "grpc") if kind in probe}
    if not prober:
        return None  # exec probes stay with the kubelet
    if "grpc" in prober:  # k8s.io/api core/v1 GRPCAction.Service has no omitempty: JSON says null when unset
        prober["grpc"].setdefault("service", None)
    if "timeoutSeconds" in probe:
        prober["timeoutSeconds"] = probe["timeoutSeconds"]
    return prober


def rewrite_probes(pod: dict, status_port: int = STATUS_PORT) -> tuple[dict, str]:
    """What the injector does to the probes of ``pod``: the rewritten pod (a copy) and the value of
    ISTIO_KUBE_APP_PROBERS ("" when there is nothing to take over, as the injector leaves it out)."""
    pod = copy.deepcopy(pod)
    probers: dict[str, dict] = {}
    for container in pod.get("spec", {}).get("initContainers", []) + pod.get("spec", {}).get("containers", []):
        if container.get("name") == PROXY_CONTAINER:
            continue
        named = {port["name"]: port["containerPort"] for port in container.get("ports", []) if port.get("name")}
        for field, suffix in PROBES.items():
            probe = container.get(field)
            if not probe:
                continue
            path = f"/app-health/{container['name']}/{suffix}"
            prober = _prober(probe)
            if prober is None:
                continue
            action = prober.get("httpGet") or prober.get("tcpSocket")
            if action is not None and isinstance(action.get("port"), str):
                if action["port"] in named:
                    action["port"] = named[action["port"]]
                    probers[path] = prober
            elif action is None or action.get("port") != status_port:
                probers[path] = prober
            rewritten = {key: value for key, value in probe.items() if key not in ("httpGet", "tcpSocket", "grpc")}
            scheme = probe.get("httpGet", {}).get("scheme")
            get = {**probe.get("httpGet", {}), "path": path, "port": status_port}
            if scheme == "HTTPS":
                get["scheme"] = "HTTP"
            container[field] = {"httpGet": get, **rewritten}
    return pod, json.dumps(probers, separators=(",", ":"), sort_keys=True) if probers else ""


def run_prober(prober: dict, pod_ip: str, host_header: str | None = None, timeout: float = 1) -> int:
    """Probe the app at ``pod_ip`` from PROBE_SOURCE as ``prober`` says; the status code for the kubelet.
    ``host_header`` is the Host the kubelet's request to the agent carried."""
    seconds = prober.get("timeoutSeconds", timeout)
    if "httpGet" in prober:
        get = prober["httpGet"]
        if get.get("scheme", "HTTP") != "HTTP":
            raise ProbeError(f"httpGet scheme {get['scheme']!r}: meshlab's agent probes plain HTTP only")
        path = get.get("path", "/")
        connection = http.client.HTTPConnection(pod_ip, int(get["port"]), timeout=seconds, source_address=(PROBE_SOURCE, 0))
        try:
            headers = {header["name"]: header["value"] for header in get.get("httpHeaders", [])}
            if host_header and "Host" not in headers:
                name, _, port = host_header.rpartition(":")
                # server.go: a Host naming the status port is given the app's port instead
                headers["Host"] = f"{name}:{get['port']}" if port == str(STATUS_PORT) else host_header
            connection.request("GET", path if path.startswith("/") else f"/{path}", headers=headers)
            status = connection.getresponse().status
        except OSError:
            return 500
        finally:
            connection.close()
        return 200 if 300 <= status < 400 else status
    if "tcpSocket" in prober:
        try:
            socket.create_connection((pod_ip, int(prober["tcpSocket"]["port"])), timeout=seconds, source_address=(PROBE_SOURCE, 0)).close()
        except OSError:
            return 500
        return 200
    if "grpc" in prober:
        return _grpc_health(pod_ip, int(prober["grpc"]["port"]), prober["grpc"].get("service") or "", seconds)
    raise ProbeError(f"prober {sorted(prober)}: the agent runs httpGet, tcpSocket and grpc probers")


def _grpc_health(pod_ip: str, port: int, service: str, seconds: float) -> int:
    """grpc.health.v1.Health/Check, waiting for the connection as the kubelet's prober does (server.go
    handleAppProbeGRPC): SERVING is 200; any other status, an error or Unimplemented is 500. Unlike Istio's,
    the call leaves from the pod's own address: Python's gRPC cannot bind 127.0.0.6 (the proxy's uid keeps
    it out of capture all the same)."""
    with grpc.insecure_channel(f"{pod_ip}:{port}") as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=seconds, wait_for_ready=True)
        except grpc.RpcError:
            return 500
    return 200 if response.status == health_pb2.HealthCheckResponse.SERVING else 500

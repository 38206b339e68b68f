"""What a live lab is made of, before and after it runs: its prefix, its pods, its numbers.

    check_prefix     a prefix short enough for interface names and safe in file names
    InitContainer    a command run in a pod before its apps, as a kubelet runs an init container
    PodSpec          what to create: name, sidecar or not (or proxyless), capture configuration, app and its ports,
                     Kubernetes metadata
    Pod              a running pod: name, namespace, IP, ports, sidecar
    DEFAULT_CAPTURE  everything in and out, as a sidecar-injected pod gets by default
    capture_for      a pod's capture on a datapath: with eBPF, connect4 replaces outbound capture
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from meshlab.intercept import CaptureConfig
from meshlab.lab.netns import MACHINE, Host, LabUsageError, NetNS

DEFAULT_PREFIX = "ml"
#: Root keeps lab state in /run; a user without root in a folder of their own (see ``meshlab.lab.state.state_root``).
STATE_ROOT = Path("/run/meshlab") if os.geteuid() == 0 else Path(f"/tmp/meshlab-{os.geteuid()}")
FIRST_POD_HOST = 10
PROXY_MODES = ("sidecar", "per-node")
#: The processes whose logs ``Lab.logs`` reads (a gateway runs in a lab of several clusters).
LOG_ROLES = ("app", "sidecar", "node-proxy", "gateway", "agent", "collector", "init")
DATAPATHS = ("iptables", "ebpf")
#: What a pod's app serves on its ports: the HTTP echo app (``meshlab.lab.apps``), or a gRPC server
#: answering with the pod's name (``meshlab.xds.echo``), what proxyless clients call (chapter 05).
APPS = ("http", "grpc")
MAX_NODES = 8
SERVICE_NETWORK = "10.96.0"  # ClusterIPs, as Kubernetes' default service CIDR 10.96.0.0/12
APP_PORT = 8080
#: A lab's telemetry collector pod (``Lab.up(collector=True)``) and its port: OTLP's gRPC port, where
#: it serves Envoy's ALS too (OpenTelemetry specification: 4317 for OTLP/gRPC).
COLLECTOR_POD, COLLECTOR_PORT = "collect", 4317
METRICS_PORT = 9090
SIDECAR_UID = SIDECAR_GID = 1337
READY_TIMEOUT_S = 10.0
MAX_PODS = 200
#: The lab's default capture: everything in and out, as a sidecar-injected pod gets by default.
DEFAULT_CAPTURE = CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*")


def capture_for(datapath: str, capture: CaptureConfig = DEFAULT_CAPTURE) -> CaptureConfig:
    """The rules a pod gets on ``datapath``: on eBPF, connect4 sends the app to its sidecar, so the
    outbound capture goes and Istio's inbound rules stay."""
    if datapath == "ebpf":
        return replace(capture, outbound_ip_ranges_include="", outbound_ports_include="")
    return capture


def check_prefix(prefix: str) -> str:
    """A prefix short enough for interface names and safe in file names."""
    if not re.fullmatch(r"[a-z][a-z0-9]{0,5}", prefix):
        raise LabUsageError(f"prefix {prefix!r} is not valid; use 1-6 lowercase letters or digits, starting with a letter (e.g. ml)")
    return prefix



@dataclass(frozen=True)
class InitContainer:
    """A command the lab runs in a sidecar pod's network namespace before anything else, in place of
    applying meshlab's rendering of the pod's capture, as a kubelet runs an init container: an injected
    istio-init, ``pilot-agent istio-iptables ...`` with its environment (``meshlab.lab.istiod``)."""

    argv: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodSpec:
    name: str
    sidecar: bool = True
    capture: CaptureConfig = DEFAULT_CAPTURE
    ports: tuple[int, ...] = (APP_PORT, METRICS_PORT)
    node: int = 0
    #: Kubernetes metadata, which workload attestation reads (``k8s:ns``, ``k8s:sa``, ``k8s:pod-label``).
    k8s_namespace: str = "default"
    service_account: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    #: The sidecar's HTTP side (chapters 07 and 10): Envoy's inbound listener with HTTP filters, an
    #: admin port, and a pilot-agent process beside the proxy.
    dataplane: bool = False
    app: str = "http"
    #: A proxyless gRPC pod (chapter 05): no sidecar and no rules. Served by istiod (``meshlab.lab.istiod``)
    #: it is injected with Istio's ``grpc-agent`` template and its gRPC clients reach istiod through the
    #: agent's xDS socket.
    proxyless: bool = False
    #: How the pod's rules are made: by this command, or (None) by applying meshlab's rendering of ``capture``.
    init: InitContainer | None = None

    def __post_init__(self) -> None:
        if self.dataplane and not self.sidecar:
            raise LabUsageError(f"pod {self.name}: dataplane needs a sidecar (the HTTP side is the sidecar's)")
        if self.init is not None and not self.sidecar:
            raise LabUsageError(f"pod {self.name}: an init container makes a sidecar pod's rules; this pod has no sidecar")
        if self.proxyless and self.sidecar:
            raise LabUsageError(f"pod {self.name}: a proxyless pod has no sidecar; give it sidecar=False")
        if self.app not in APPS:
            raise LabUsageError(f"pod {self.name}: app {self.app!r} is not one of {', '.join(APPS)}")
        if self.app == "grpc" and not self.ports:
            raise LabUsageError(f"pod {self.name}: a gRPC app needs a port to serve on (ports=(7070,), say)")
        if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", self.name):
            raise LabUsageError(f"pod name {self.name!r} is not valid; use 1-8 lowercase letters or digits, starting with a letter")
        for what, value in (("namespace", self.k8s_namespace), ("service account", self.service_account)):
            if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", value):
                raise LabUsageError(f"pod {self.name}: {what} {value!r} is not a Kubernetes name (lowercase letters, digits and '-', at most 63)")


@dataclass(frozen=True)
class Pod:
    name: str
    netns: str
    ip: str
    ports: tuple[int, ...]
    sidecar: bool
    capture: dict = field(default_factory=dict)
    node: int = 0
    k8s_namespace: str = "default"
    service_account: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    dataplane: bool = False
    host: Host = field(default=MACHINE, repr=False, compare=False)

    @property
    def app_port(self) -> int | None:
        """The first port the pod listens on (None for a pod that only sends, like a lab's client)."""
        return self.ports[0] if self.ports else None

    @property
    def namespace(self) -> NetNS:
        return NetNS(self.netns, self.host)

    def saved(self) -> dict:
        """What the state file keeps (the host is the lab's, kept once)."""
        return {key: value for key, value in asdict(self).items() if key != "host"}

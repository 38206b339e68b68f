"""Istio's own istiod (pilot-discovery, built by the upstream stage) run out of cluster against a
real API server (meshlab.upstream.kube), as a developer runs it from an IDE: ``pilot-discovery
discovery --kubeconfig``. Its CRDs, the ``istio`` and ``istio-sidecar-injector`` ConfigMaps come from
``istioctl manifest generate`` of the same commit and are applied with the real kubectl.

Every listener is on 127.0.0.1 at a port chosen here: plaintext xDS (Istio's 15010), xDS over TLS
(15012), the webhooks (15017), monitoring (15014, /metrics), HTTP debug and readiness (8080,
/ready, /debug/...). The debounce settings are the process's environment, read back from
/proc/PID/environ as the kind stage reads them from istiod's Deployment.

    IstiodError     a step failed; names it and what the program said
    loopback_service  a service of servers on loopback as Istio objects: ServiceEntry, DestinationRule, VirtualService
    version_routing   a DestinationRule of subsets by ``version`` label and a VirtualService weighting them
    proxyless_node  the node id and metadata a proxyless gRPC client presents, as Istio's agent writes them
    Istiod       with Istiod(pilot_discovery, istioctl, kube, folder, debounce) as istiod: istiod.metrics(),
                 istiod.debounce(), istiod.xds_address; stopped by PID on exit; also the ``ObservedIstiod``
                 the debounce experiment asks for (meshlab.xds.pushcount)
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from meshlab.kind.observe import Sample, debounce_from_env, metric_value, parse_prometheus
from meshlab.lab.processes import ProcessRecord
from meshlab.ports import free_port
from meshlab.upstream.daemons import Daemons
from meshlab.upstream.injection import IMAGE_SETTINGS
from meshlab.upstream.kube import KubeControlPlane, status_of
from meshlab.upstream.run import run
from meshlab.upstream.versions import ISTIO
from meshlab.xds.debounce import DebounceOptions
from meshlab.xds.pushcount import DEBOUNCED_PUSHES, EXPERIMENT_SELECTOR

NAMESPACE = "istio-system"
#: The upstream programs a control plane of a real API server and istiod runs.
PROGRAM_NAMES = ("kube-apiserver", "etcd", "kubectl", "pilot-discovery", "istioctl")
#: istiod's own ports, named by the flag that sets each (pilot/cmd/pilot-discovery/app/cmd.go).
PORTS = ("grpcAddr", "secureGRPCAddr", "httpsAddr", "monitoringAddr", "httpAddr")


class IstiodError(RuntimeError):
    """istiod or a step setting it up failed; the message names the step and the program's words."""


def loopback_service(host: str, namespace: str, port: int, backends: dict[str, int], weights: dict[str, int] | None = None) -> list[dict]:
    """A gRPC service whose endpoints are servers on this host's loopback, as Istio's API says it: a
    ServiceEntry (STATIC, one endpoint per backend, labelled ``version: <name>``) and ``version_routing``."""
    entry = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": host.split(".")[0], "namespace": namespace},
             "spec": {"hosts": [host], "location": "MESH_INTERNAL", "resolution": "STATIC",
                      "ports": [{"number": port, "name": "grpc", "protocol": "GRPC"}],
                      "endpoints": [{"address": "127.0.0.1", "ports": {"grpc": bound}, "labels": {"version": version}}
                                    for version, bound in backends.items()]}}
    return [entry, *version_routing(host, namespace, list(backends), weights)]


def version_routing(host: str, namespace: str, versions: list[str], weights: dict[str, int] | None = None) -> list[dict]:
    """A DestinationRule with a subset per ``version`` label and, with ``weights``, a VirtualService
    splitting the host's traffic between the subsets."""
    meta = {"name": host.split(".")[0], "namespace": namespace}
    documents = [{"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": meta,
                  "spec": {"host": host, "subsets": [{"name": version, "labels": {"version": version}} for version in versions]}}]
    if weights is not None:
        documents.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta,
                          "spec": {"hosts": [host], "http": [{"route": [{"destination": {"host": host, "subset": version}, "weight": weight}
                                                                         for version, weight in weights.items()]}]}})
    return documents


def proxyless_node(pod: str, namespace: str, ip: str = "127.0.0.1") -> tuple[str, dict]:
    """The node id and metadata Istio's agent puts in a proxyless gRPC pod's bootstrap
    (pkg/istio-agent/grpcxds/grpc_bootstrap.go): ``GENERATOR: grpc`` makes istiod answer with its gRPC
    generators; ``PROXY_CONFIG`` (the agent sends the whole ProxyConfig; any object will do) is what
    makes istiod count the client as a proxy in ``istioctl proxy-status`` (pilot/pkg/xds/statusgen.go)."""
    node = f"sidecar~{ip}~{pod}.{namespace}~{namespace}.svc.cluster.local"
    return node, {"GENERATOR": "grpc", "NAMESPACE": namespace, "CLUSTER_ID": "Kubernetes", "ISTIO_VERSION": ISTIO.release,
                  "PROXY_CONFIG": {}}


class Istiod(Daemons):
    def __init__(self, pilot_discovery: str, istioctl: str, kube: KubeControlPlane, folder: Path,
                 debounce: DebounceOptions = DebounceOptions(),
                 on_start: Callable[[ProcessRecord], None] = lambda process: None) -> None:
        """istiod's working folder is ``folder``: it reads ./etc and ./var paths relative to it, which
        must not hold anything (certificates there would replace its CA)."""
        super().__init__(folder, on_start)
        self.pilot_discovery, self.istioctl, self.kube, self.settings = pilot_discovery, istioctl, kube, debounce
        self.ports: dict[str, int] = {}
        self.pid = 0
        self.manifest: list[dict] = []  # istioctl manifest generate's objects (the webhook configurations, ...)

    @property
    def xds_address(self) -> str:
        """Plaintext xDS (Istio's 15010), where proxyless gRPC clients connect."""
        return f"127.0.0.1:{self.ports['grpcAddr']}"

    def proxy_status(self) -> str:
        """``istioctl proxy-status`` as an operator runs it against this istiod: over TLS (15012) with a
        token of istio-system's default account, which istiod reviews with the API server (debug
        requests on plaintext are refused, ENABLE_DEBUG_ENDPOINT_AUTH). ``--insecure``: istioctl does not
        know istiod's self-signed root."""
        return run([self.istioctl, "proxy-status", "--kubeconfig", str(self.kube.kubeconfig),
                    "--xds-address", f"127.0.0.1:{self.ports['secureGRPCAddr']}", "--insecure"],
                   "istioctl proxy-status", IstiodError).stdout

    def _manifest(self) -> list[dict]:
        said = run([self.istioctl, "manifest", "generate", *IMAGE_SETTINGS], "generate Istio's manifest: istioctl manifest generate",
                   IstiodError, cwd=self.folder, timeout=180).stdout
        return [document for document in yaml.safe_load_all(said) if document]

    def _install(self, manifest: list[dict]) -> None:
        """The CRDs (server-side: some are too big for the last-applied annotation), then the namespace
        and the two ConfigMaps istiod reads."""
        crds = [document for document in manifest if document["kind"] == "CustomResourceDefinition"]
        self.kube.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(crds))
        self.kube.kubectl("wait", "--for", "condition=Established", "crd", "--all", "--timeout=60s", timeout=90)
        maps = [document for document in manifest if document["kind"] == "ConfigMap"
                and document["metadata"]["name"] in ("istio", "istio-sidecar-injector")]
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        # istioctl's debug requests (proxy-status) carry a token of this account, which istiod checks with
        # a TokenReview; without a controller-manager nobody else creates it
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": NAMESPACE}}
        self.kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([namespace, account, *maps]))
        (self.folder / "mesh.yaml").write_text(next(m for m in maps if m["metadata"]["name"] == "istio")["data"]["mesh"])

    def _environment(self) -> dict[str, str]:
        # POD_NAME is istiod's identity in its leader-election locks: the same name lets a restarted istiod
        # take its locks back at once instead of waiting out the 30 s a lock of another holder lasts
        return {**os.environ, "POD_NAMESPACE": NAMESPACE, "POD_NAME": "istiod-meshlab", "REVISION": "default",
                "CLUSTER_ID": "Kubernetes", "ISTIOD_CUSTOM_HOST": "127.0.0.1,localhost",
                "KUBECONFIG": str(self.kube.kubeconfig), **self.settings.environment()}

    def _start(self) -> None:
        self.ports = {flag: free_port() for flag in PORTS}
        argv = [self.pilot_discovery, "discovery", "--kubeconfig", str(self.kube.kubeconfig),
                "--meshConfig", str(self.folder / "mesh.yaml"), "--ctrlz_port", "0",
                *(f"--{flag}=127.0.0.1:{port}" for flag, port in self.ports.items())]
        process = self.start("istiod", argv, env=self._environment(), cwd=self.folder)
        self.pid = process.pid
        self.wait_ready("istiod", process, lambda: status_of(f"http://127.0.0.1:{self.ports['httpAddr']}/ready") == 200,
                        timeout=120, poll=0.25, error=IstiodError)

    def setup(self) -> None:
        self.manifest = self._manifest()
        self._install(self.manifest)
        self._start()

    # -- as the debounce experiment (meshlab.xds.pushcount) asks for it --------------------------

    waits = True

    def debounced_pushes(self) -> int:
        return int(metric_value(self.metrics(), DEBOUNCED_PUSHES))

    def apply(self, manifests: list[dict]) -> None:
        self.kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))

    def delete_experiment(self, namespace: str) -> None:
        self.kube.kubectl("-n", namespace, "delete", "serviceentries", "-l", EXPERIMENT_SELECTOR, "--wait=true")

    def metrics(self) -> list[Sample]:
        """istiod's own /metrics on its monitoring port."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['monitoringAddr']}/metrics", timeout=10) as answer:
            return parse_prometheus(answer.read().decode())

    def debounce(self) -> DebounceOptions:
        """The debounce settings the running process has, read from its environment."""
        raw = Path(f"/proc/{self.pid}/environ").read_bytes().split(b"\0")
        return debounce_from_env(dict(item.decode().split("=", 1) for item in raw if b"=" in item))

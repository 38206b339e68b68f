"""pilot-agent beside a data-plane pod's sidecar: the files it needs and the process the kubelet starts.

In Istio the istio-proxy container runs pilot-agent as uid 1337, and the agent starts Envoy. Here
the kubelet starts both, side by side, and the agent (``python -m meshlab.agent``) does the agent's
jobs for the sidecar: the bootstrap it would hand Envoy, SDS from file-mounted certificates (an
X509-SVID for the pod's service account, issued by chapter 13's authority), the DNS proxy on 15053
answering the lab's services (its own upstream is the pod's loopback, where nothing answers: the lab
has no DNS server, and a lab never sends traffic off the machine), the status server on 15020 and
15021 (probes, merged metrics, readiness through the proxy's admin), and the drain on SIGTERM.

    pod_manifest   the Kubernetes Pod a lab pod stands for (probes, Prometheus annotations)
    injected_env   what the injector gives the agent for it: ISTIO_KUBE_APP_PROBERS, ISTIO_PROMETHEUS_ANNOTATIONS
    agent_dir      the pod's agent folder: its working directory and certificates
    process_specs  the kubelet's specs for the pods' agents (each sidecar's PID is filled in by the kubelet)
    write_names   the name table of the lab's services, which the DNS proxy answers from
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from meshlab.identity.authority import TrustDomainAuthority
from meshlab.identity.spiffeid import SpiffeId, TrustDomain
from meshlab.agent.probes import rewrite_probes
from meshlab.lab.spec import APP_PORT, METRICS_PORT, SIDECAR_GID, SIDECAR_UID

#: The trust domain of the SVIDs the agent serves over SDS: Istio's default (meshConfig trustDomain).
TRUST_DOMAIN = "cluster.local"
#: The cluster DNS Service's address in the pods' resolv.conf: the pods' DNS goes there, and Istio's DNS
#: capture sends it to the agent instead. Kubernetes gives kube-dns the tenth address of the service range
#: (10.96.0.10), which the lab gives its first service; the lab's DNS address is the range's last instead.
CLUSTER_DNS = "10.96.0.254"


def agent_dir(lab, pod: str) -> Path:
    return lab.state_dir / f"{pod}-agent"


def _owned_by_proxy(path: Path) -> None:
    """The agent runs as uid 1337: what it reads or writes must be its own."""
    if os.geteuid() == 0:
        os.chown(path, SIDECAR_UID, SIDECAR_GID)


def _certificates(authority: TrustDomainAuthority, pod, folder: Path) -> None:
    """Istio's file-mounted certificates (``./var/run/secrets/workload-spiffe-credentials``: cert-chain.pem,
    key.pem, root-cert.pem), readable by the agent only."""
    svid = authority.sign_x509_svid(SpiffeId(TrustDomain(TRUST_DOMAIN), f"/ns/{pod.k8s_namespace}/sa/{pod.service_account}"), dt.timedelta(hours=12))
    chain, key = svid.pem_files()
    folder.mkdir(parents=True, exist_ok=True)
    files = {"cert-chain.pem": chain, "key.pem": key, "root-cert.pem": b"".join(c.public_bytes(Encoding.PEM) for c in authority.x509_bundle())}
    for name, data in files.items():
        path = folder / name
        path.touch(mode=0o600)
        path.write_bytes(data)
        _owned_by_proxy(path)
    _owned_by_proxy(folder)


def write_names(lab) -> Path:
    """The lab's services as the agent's name table (``<name>.default.svc.cluster.local`` -> its ClusterIP)."""
    path = lab.state_dir / "agent-names.json"
    table = {f"{name}.default.svc.cluster.local": {"ips": [service["vip"]], "registry": "Kubernetes", "shortname": name, "namespace": "default"}
             for name, service in lab.services.items()}
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(table, indent=1))
    partial.chmod(0o644)
    os.replace(partial, path)  # the agents reread it when it changes: never half of it
    return path


def pod_manifest(pod) -> dict:
    """The Kubernetes Pod the lab's pod stands for: the app container with its probes (httpGet on the app
    port) and the Prometheus annotations of the app's own metrics (the echo app answers /metrics)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.name, "namespace": pod.k8s_namespace, "labels": dict(pod.labels),
                         "annotations": {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics", "prometheus.io/port": str(METRICS_PORT)}},
            "spec": {"serviceAccountName": pod.service_account, "containers": [{
                "name": "app", "image": "meshlab/echo:lab", "ports": [{"name": "http", "containerPort": APP_PORT}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": APP_PORT}}, "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}}}]}}


def injected_env(pod) -> dict[str, str]:
    """What Istio's injector puts in the istio-proxy container's environment for ``pod_manifest``: the
    app's probers (ISTIO_KUBE_APP_PROBERS, the probes rewritten to the agent's /app-health paths) and the
    app's metrics target (ISTIO_PROMETHEUS_ANNOTATIONS, the annotations the merge moves there)."""
    manifest = pod_manifest(pod)
    _, probers = rewrite_probes(manifest)
    annotations = manifest["metadata"]["annotations"]
    target = {"scrape": annotations["prometheus.io/scrape"], "path": annotations["prometheus.io/path"], "port": annotations["prometheus.io/port"]}
    return {"ISTIO_KUBE_APP_PROBERS": probers, "ISTIO_PROMETHEUS_ANNOTATIONS": json.dumps(target, separators=(",", ":"))}


def _resolv_conf(lab) -> Path:
    """A pod's resolv.conf as the kubelet writes it for ClusterFirst: the cluster DNS service and the
    namespace's search domains (the agent's DNS proxy expands names with them)."""
    path = lab.state_dir / "resolv.conf"
    path.write_text(f"nameserver {CLUSTER_DNS}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n")
    path.chmod(0o644)
    return path


def process_specs(lab, pods: list) -> list[dict]:
    """The kubelet's specs for the agents of ``pods``, their folders and certificates made first (one
    authority for the lab, as one istiod signs for a mesh)."""
    if not pods:
        return []
    authority = TrustDomainAuthority(TrustDomain(TRUST_DOMAIN))
    names, resolv = write_names(lab), _resolv_conf(lab)
    proxy = {"uid": None, "gid": None} if os.geteuid() != 0 else {"uid": SIDECAR_UID, "gid": SIDECAR_GID}
    specs = []
    for pod in pods:
        folder = agent_dir(lab, pod.name)
        folder.mkdir(exist_ok=True)
        _owned_by_proxy(folder)
        _certificates(authority, pod, folder / "certs")
        argv = [sys.executable, "-m", "meshlab.agent", "--pod", pod.name, "--namespace", pod.k8s_namespace, "--ip", pod.ip,
                "--service-account", pod.service_account, "--workdir", str(folder), "--certs", str(folder / "certs"),
                "--name-table", str(names), "--resolv-conf", str(resolv), "--dns-upstream", "127.0.0.1:53", "--envoy-status"]
        specs.append({"role": "agent", "pod": pod.name, "netns": pod.netns, "log": str(lab._log(pod.name, "agent")), "argv": argv,
                      "env": injected_env(pod), **proxy})
    return specs

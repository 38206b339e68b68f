"""Identities in the live lab: an agent attesting the lab's pods, and workloads talking mutual TLS.

One SPIRE-style server and agent run in this process; the agent's Workload API socket sits in the
lab's state folder, which every pod sees (a Unix socket is reached by path, not over the pod's
network). Workloads are processes in the pods: ``python -m meshlab.identity.mtls`` fetching their
SVID with the real ``spiffe`` client, so what they get is decided by the kernel's account of who
they are (SO_PEERCRED, their network namespace -> pod) matched against the entries.

    LabPods       the k8s workload attestor over a lab's pods (network namespace -> pod, sidecar or app)
    IdentityLab   with IdentityLab(prefix, pods, entries) as lab (or start()/stop()): serve, call, decisions, set_entries

This is the live stage composing mechanisms (meshlab.identity's agent, meshlab.lab's pods), so it
lives with the stage: meshlab.identity itself never imports the lab.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import uuid

from meshlab.identity.agent import AgentThread, Decision, attested_agent
from meshlab.identity.attestation import Caller
from meshlab.identity.entries import Selector, load_entries
from meshlab.identity.spiffeid import TrustDomain
from meshlab.lab import Lab, PodSpec

TRUST_DOMAIN = TrustDomain("meshlab.test")
MTLS_PORT = 8443
#: What the lab's containers would be called and run in Kubernetes (the app, and Istio's sidecar container).
CONTAINERS = {"app": ("app", "meshlab/echo:lab"), "sidecar": ("istio-proxy", "meshlab/sidecar:lab")}


class LabPods:
    """The k8s workload attestor for a live lab: a process belongs to the pod whose network
    namespace it is in (what the pod's cgroup tells a real kubelet), its container is the sidecar
    if it is the pod's recorded sidecar process, the app otherwise."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        # the namespace files' inodes, looked up where the lab's namespaces live (rootless: in its user namespace)
        inodes = lab.host.run(["stat", "-L", "-c", "%i", *[f"/run/netns/{pod.netns}" for pod in lab.pods.values()]]).stdout.split()
        self.by_namespace = {int(inode): pod for inode, pod in zip(inodes, lab.pods.values(), strict=True)}
        self.sidecars = {process.pid for _, process in lab.processes if process.role == "sidecar"}

    def pod_of(self, pid: int):
        try:
            inode = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            return None
        return self.by_namespace.get(inode)

    def selectors(self, caller: Caller) -> set[Selector]:
        pod = self.pod_of(caller.credentials.pid)
        if pod is None:
            return set()
        container, image = CONTAINERS["sidecar" if caller.credentials.pid in self.sidecars else "app"]
        values = [f"ns:{pod.k8s_namespace}", f"sa:{pod.service_account}", f"node-name:node{pod.node}", f"pod-name:{pod.name}",
                  f"pod-uid:{uuid.uuid5(uuid.NAMESPACE_URL, f'meshlab:{self.lab.prefix}:{pod.name}')}",
                  f"container-name:{container}", f"container-image:{image}"]
        values += [f"pod-label:{key}:{value}" for key, value in pod.labels.items()]
        return {Selector("k8s", value) for value in values}


class IdentityLab:
    def __init__(self, prefix: str, pods: list[PodSpec], entries: list[dict], trust_domain: TrustDomain = TRUST_DOMAIN) -> None:
        self.prefix, self.pod_specs, self.entry_items, self.trust_domain = prefix, pods, entries, trust_domain
        self.lab: Lab | None = None
        self.agent: AgentThread | None = None
        self.servers: list[subprocess.Popen] = []

    def __enter__(self) -> IdentityLab:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, down_at_exit: bool = False) -> IdentityLab:
        """The lab's pods, then the SPIRE server and agent (node attestation first), then the entries.
        ``down_at_exit`` stops everything when this Python process exits (for notebooks)."""
        self.lab = Lab(self.prefix).up(self.pod_specs)
        try:
            agent = attested_agent(self.trust_domain, self.lab.state_dir / "spire" / "agent.sock", self.entry_items, LabPods(self.lab))
            self.agent = AgentThread(agent).start()
        except BaseException:
            self.lab.down()
            raise
        if down_at_exit:
            atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """End the workloads, the agent and the lab (a notebook's cells cannot share a ``with``)."""
        for process in self.servers:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        self.servers.clear()
        if self.agent:
            self.agent.stop()
            self.agent = None
        if self.lab:
            self.lab.down()

    @property
    def socket(self) -> str:
        return f"unix://{self.agent.agent.socket_path}"

    def workload_argv(self, *args: str) -> list[str]:
        """``python -m meshlab.identity.mtls ARGS`` with the agent's socket in its environment."""
        return ["env", f"SPIFFE_ENDPOINT_SOCKET={self.socket}", sys.executable, "-m", "meshlab.identity.mtls", *args]

    def serve(self, pod: str, allow: list[str], connections: int, port: int = MTLS_PORT) -> subprocess.Popen:
        """An mTLS server in ``pod`` accepting ``connections`` connections; it has fetched its SVID
        and is listening when this returns (its first line said so)."""
        argv = self.workload_argv("serve", "--port", str(port), "--connections", str(connections), *[arg for spiffe_id in allow for arg in ("--allow", spiffe_id)])
        process = subprocess.Popen(self.lab.pod(pod).namespace.argv(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.servers.append(process)
        ready = process.stdout.readline()
        if not ready:
            raise RuntimeError(f"the mTLS server in {pod} did not start: {process.communicate(timeout=10)[1].strip()[-800:]}")
        return process

    def call(self, pod: str, server: str, expect: str, port: int = MTLS_PORT) -> dict:
        """One mTLS call from a workload in ``pod`` to the server in pod ``server``; its JSON record."""
        done = self.lab.exec(pod, self.workload_argv("call", self.lab.pod(server).ip, str(port), "--expect", expect))
        if not done.stdout.strip():
            raise RuntimeError(f"the workload in {pod} printed nothing: {done.stderr.strip()[-800:]}")
        return json.loads(done.stdout)

    def fetch_jwt(self, pod: str, audience: str, subject: str | None = None) -> dict:
        """A workload in ``pod`` asks for a JWT-SVID (for ``subject``, if given: an impersonation attempt)."""
        done = self.lab.exec(pod, self.workload_argv("fetch-jwt", "--audience", audience, *(["--as", subject] if subject else [])))
        if not done.stdout.strip():
            raise RuntimeError(f"the workload in {pod} printed nothing: {done.stderr.strip()[-800:]}")
        return json.loads(done.stdout)

    def decisions(self) -> list[Decision]:
        return self.agent.decisions()

    def set_entries(self, entries: list[dict]) -> None:
        """Replace the registration entries (what ``spire-server entry create/delete`` does)."""
        agent = self.agent.agent
        self.agent.runner.call(lambda: setattr(agent.server, "entries", load_entries(entries, agent.id)))

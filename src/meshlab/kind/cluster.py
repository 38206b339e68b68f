"""A kind cluster's life: create or reuse, wait until ready, apply, run commands on a node, delete.

A thin wrapper of the reader's ``kind`` and ``kubectl`` rather than pytest-kind(-ng)'s KindCluster,
for three reasons: that class downloads its own kind and kubectl unless told otherwise, its reuse
path crashes when no kubeconfig was written, and it is GPL-3.0 (meshlab is Apache-2.0). The method
names follow it (create, delete, kubectl) so a reader who knows one knows the other. The kubeconfig is the cluster's own file, never the reader's ~/.kube/config.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from meshlab.kind.config import cluster_config_yaml
from meshlab.kind.runner import KindError, Runner

READY_FIX = ("kubectl describe nodes shows why; on Linux, kind's known issue is inotify: "
             "sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512")


class KindCluster:
    def __init__(self, name: str = "meshlab", runner: Runner | None = None, kubeconfig: Path | None = None) -> None:
        self.name = name
        self.kubeconfig = kubeconfig or Path.home() / ".kube" / f"kind-{name}.yaml"
        self.runner = runner or Runner()
        self.runner.kubeconfig = self.kubeconfig

    def exists(self) -> bool:
        out = self.runner.run("find cluster", "kind", "get", "clusters", fix="is Docker running? `docker info` must work")
        return self.name in out.split()

    def create(self, config_yaml: str | None = None, ready_timeout_s: int = 300) -> bool:
        """Create the cluster (True) or reuse one of the same name (False), then wait for its nodes."""
        if not self.runner.dry_run:
            self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        if self.exists():
            self.runner.run("reuse cluster", "kind", "export", "kubeconfig", "--name", self.name, "--kubeconfig", str(self.kubeconfig))
            created = False
        else:
            config = config_yaml or cluster_config_yaml(name=self.name)
            self.runner.run("create cluster", "kind", "create", "cluster", "--name", self.name, "--config=-", "--kubeconfig", str(self.kubeconfig),
                            stdin=config, timeout=600, fix="`kind create cluster` prints why; check Docker has >= 8 GB and 4 CPUs, then `kind delete cluster --name " + self.name + "`")
            created = True
        try:
            self.wait_ready(ready_timeout_s)
        except KindError as error:
            if created:  # nothing half-made is left behind: a cluster this call made and that never got ready goes
                self.delete()
                raise KindError(error.step, error.problem + f"; the new cluster {self.name} was deleted again", error.fix) from None
            raise
        return created

    def wait_ready(self, timeout_s: int = 300) -> None:
        self.kubectl("wait for nodes", "wait", "--for=condition=Ready", "nodes", "--all", f"--timeout={timeout_s}s", timeout=timeout_s + 30, fix=READY_FIX)

    def kubectl(self, step: str, *args: str, stdin: str | None = None, timeout: float = 120, fix: str = "") -> str:
        return self.runner.run(step, "kubectl", *args, stdin=stdin, timeout=timeout, fix=fix)

    def apply(self, step: str, manifests: list[dict]) -> str:
        """``kubectl apply`` of the given objects (as one multi-document YAML on standard input)."""
        if not manifests:
            raise KindError(step, "nothing to apply", "pass at least one manifest")
        return self.kubectl(step, "apply", "-f", "-", stdin=yaml.safe_dump_all(manifests, sort_keys=False))

    def rollout(self, step: str, namespace: str, workload: str, timeout_s: int = 300) -> None:
        """Wait until a Deployment or DaemonSet (``deploy/x``, ``ds/x``) has rolled out."""
        self.kubectl(step, "-n", namespace, "rollout", "status", workload, f"--timeout={timeout_s}s", timeout=timeout_s + 30,
                     fix=f"kubectl -n {namespace} describe {workload} and kubectl -n {namespace} get events show why")

    def node_exec(self, step: str, node: str, *command: str, timeout: float = 60) -> str:
        """Run a command on a kind node (a Docker container), e.g. crictl or nsenter."""
        return self.runner.run(step, "docker", "exec", node, *command, timeout=timeout)

    def delete(self) -> None:
        self.runner.run("delete cluster", "kind", "delete", "cluster", "--name", self.name, "--kubeconfig", str(self.kubeconfig), timeout=300)

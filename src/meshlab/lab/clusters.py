"""Several clusters in the live lab, and two tiers of gateways in front of them.

Each cluster is a one-node lab without sidecars: a node (a namespace holding the pod network's
bridge), pods running the echo app, and its **tier-2** (ingress) gateway, a pod wired both to the
cluster's pod network and to the **edge** network outside every cluster. On the edge also live the
**tier-1** gateway, which sends a host's requests to the clusters' tier-2 gateways by weight (75/25
for two clusters, the split in Tetrate's blog "Designing Traffic Flow via Tier-1 and Tier-2 Ingress
Gateways"), and a client. Every gateway is meshlab's gateway proxy (``meshlab.gateway.proxy``),
configured by the Gateway API translator from an HTTPRoute (``tier1_routes``, ``tier2_routes``).

The layout for prefix ``ml`` and two clusters::

    ml-edge              the edge: a bridge for 10.250.0.0/24
    ml-tier1             the tier-1 gateway, 10.250.0.10:80
    ml-client            the client, 10.250.0.100
    ml-cluster1-node0    cluster1's node: the pod network's bridge, 10.244.0.1/24
    ml-cluster1-gateway  cluster1's tier-2 gateway: 10.244.0.10 in the cluster, 10.250.0.11:80 on the edge
    ml-cluster1-echo0    cluster1's pods from 10.244.0.11: the echo app, answering "cluster1-echo0"
    ml-cluster2-...      the same pod addresses again, as two kind clusters both number pods from 10.244.0.0/16

Pods of different clusters share addresses, which works because no namespace routes to both
clusters: a tier-2 gateway routes to its own cluster and to the edge, the edge to nothing behind the
gateways. Everything carries the prefix and is recorded in the lab's state file (``meshlab.lab.state``)
as soon as it starts, so ``meshlab lab down``/``cleanup`` remove it, also after its processes (or the
Python that started them) were killed. Root only: the client runs as threads that enter its namespace.

The tier-1 gateway checks the tier-2 gateways actively (``TIER1_HEALTH_CHECK``) and passively
(``TIER1_OUTLIER_DETECTION``), in Envoy's terms. Envoy's default ``maxEjectionPercent`` of 10% would
never let a two-host cluster eject one host (``meshlab.gateway.health``), so the tier-1 sets 50%.

    TIER1_HEALTH_CHECK, TIER1_OUTLIER_DETECTION   the tier-1 gateway's health settings (Envoy's protojson)
    tier1_routes, tier2_routes   the gateways' Gateway API YAML
    Failover     what failover() measured: requests lost, time until none failed, recovery, the timeline
    Clusters     up/down/attach/status; request, split, failover; kill_gateway, start_gateway, set_weights, logs, counters
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from meshlab.gateway.ingress import ENVOY_GATEWAY_CONTROLLER
from meshlab.gateway.proxy import counters, load_config
from meshlab.lab import kubelet, network
from meshlab.lab.client import HttpClient, Reply
from meshlab.lab.composition import Composition
from meshlab.lab.netns import LabError, LabUsageError, NetNS
from meshlab.lab.processes import ProcessRecord
from meshlab.lab.spec import APP_PORT, DEFAULT_PREFIX, FIRST_POD_HOST, Pod
from meshlab.lab.state import LabState, read_state
from meshlab.lab.teardown import cleanup
from meshlab.lab.traffic import Sample, paced

MAX_CLUSTERS = 8
MAX_PODS_PER_CLUSTER = 50
HOSTNAME = "shop.example.com"
GATEWAY_PORT = 80
TIER1_IP = f"{network.EDGE_NETWORK}.10"
CLIENT_IP = f"{network.EDGE_NETWORK}.100"
#: The tier-1's active check of each tier-2 gateway: through it to an echo pod, every second (Envoy
#: Gateway's BackendTrafficPolicy default is 3 s, api/v1alpha1/healthcheck_types.go v1.9.0); before
#: any traffic also every second, not Envoy's 60 s noTrafficInterval. The Host header is the route's
#: hostname, as Envoy Gateway sets it (else a tier-2 would answer the check 404: no route for the
#: cluster's name).
TIER1_HEALTH_CHECK = {"timeout": "0.5s", "interval": "1s", "unhealthyThreshold": 2, "healthyThreshold": 1, "noTrafficInterval": "1s",
                      "httpHealthCheck": {"path": "/healthz"}}
#: Envoy's defaults but for the sweep interval (1 s, not 10 s) and maxEjectionPercent (50%, not 10%).
TIER1_OUTLIER_DETECTION = {"consecutive5xx": 5, "interval": "1s", "baseEjectionTime": "30s", "maxEjectionPercent": 50}


def _one_route(gateway: str, namespace: str, hostname: str, backend_refs: list[dict]) -> str:
    """A GatewayClass (Envoy Gateway's controller), a Gateway with one HTTP listener, an HTTPRoute
    for ``hostname`` to ``backend_refs``, and the Services they name: what each tier runs."""
    group = "gateway.networking.k8s.io/v1"
    documents = [
        {"apiVersion": group, "kind": "GatewayClass", "metadata": {"name": "eg"}, "spec": {"controllerName": ENVOY_GATEWAY_CONTROLLER}},
        {"apiVersion": group, "kind": "Gateway", "metadata": {"name": gateway, "namespace": namespace},
         "spec": {"gatewayClassName": "eg", "listeners": [{"name": "http", "protocol": "HTTP", "port": GATEWAY_PORT}]}},
        {"apiVersion": group, "kind": "HTTPRoute", "metadata": {"name": "shop", "namespace": namespace},
         "spec": {"parentRefs": [{"name": gateway}], "hostnames": [hostname], "rules": [{"backendRefs": backend_refs}]}},
        *({"apiVersion": "v1", "kind": "Service", "metadata": {"name": ref["name"], "namespace": namespace}, "spec": {"ports": [{"port": ref["port"]}]}}
          for ref in backend_refs),
    ]
    return yaml.safe_dump_all(documents, sort_keys=False)


def tier1_routes(weights: Mapping[str, int], hostname: str = HOSTNAME) -> str:
    """The tier-1 gateway's Gateway API resources: an HTTPRoute for ``hostname`` whose backendRefs are
    the clusters' tier-2 gateways (Services in namespace edge), weighted; for two clusters at 75/25 the
    same Gateway and HTTPRoute as the chapter's data/gateway/tier1.yaml."""
    refs = [{"name": f"{name}-gateway", "port": GATEWAY_PORT, "weight": weight} for name, weight in weights.items()]
    return _one_route("tier1", "edge", hostname, refs)


def tier2_routes(hostname: str = HOSTNAME) -> str:
    """A tier-2 gateway's resources: ``hostname`` to the cluster's echo Service."""
    return _one_route("ingress", "default", hostname, [{"name": "echo", "port": APP_PORT}])


@dataclass(frozen=True)
class Failover:
    """A failover measured on the live gateways: ``killed``'s tier-2 gateway was killed at ``kill_at``,
    started again at ``restart_at`` and listening at ``ready_at`` (seconds since the first request).
    ``events`` are the tier-1 gateway's health and outlier events in that time (with their ``t``)."""

    killed: str
    kill_at: float
    restart_at: float
    ready_at: float
    samples: tuple[Sample, ...]
    events: tuple[dict, ...]

    @property
    def failed(self) -> tuple[Sample, ...]:
        return tuple(sample for sample in self.samples if sample.cluster is None)

    @property
    def requests_lost(self) -> int:
        return len(self.failed)

    @property
    def time_to_no_failures_s(self) -> float:
        """From the kill to the last failed request (0 when none failed)."""
        return max((sample.t - self.kill_at for sample in self.failed), default=0.0)

    @property
    def recovery_s(self) -> float | None:
        """From the restarted gateway's first moment listening to the first request it answered again."""
        back = [sample.t for sample in self.samples if sample.t >= self.ready_at and sample.cluster == self.killed]
        return back[0] - self.ready_at if back else None

    def __str__(self) -> str:
        recovery = f"{self.recovery_s:.2f} s" if self.recovery_s is not None else "not within the run"
        return (f"{len(self.samples)} requests; {self.killed}'s gateway killed at {self.kill_at:.2f} s: {self.requests_lost} lost, "
                f"none failed after {self.time_to_no_failures_s * 1000:.0f} ms; restarted, listening at {self.ready_at:.2f} s, "
                f"answering again after {recovery}")


class Clusters(Composition):
    """A live lab of several clusters with tier-1 and tier-2 gateways, identified by its prefix."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        super().__init__(prefix)
        self.names: list[str] = []
        self.weights: dict[str, int] = {}
        self.hostname = HOSTNAME
        self.health_check: dict | None = TIER1_HEALTH_CHECK
        self.outlier_detection: dict | None = TIER1_OUTLIER_DETECTION
        self.pods: dict[str, Pod] = {}
        self.processes: list[tuple[str, ProcessRecord]] = []
        self._executor: ThreadPoolExecutor | None = None

    # -- life cycle ------------------------------------------------------------------------
    def up(self, clusters: int = 2, pods: int = 2, weights: Mapping[str, int] | None = None, hostname: str = HOSTNAME,
           health_check: dict | None = TIER1_HEALTH_CHECK, outlier_detection: dict | None = TIER1_OUTLIER_DETECTION,
           down_at_exit: bool = False) -> Clusters:
        """Create the edge, the clusters, their pods and all gateways; undo everything on failure.
        ``weights`` maps cluster1, cluster2, ... to the tier-1's weights (default 75/25 for two
        clusters, equal otherwise); ``health_check``/``outlier_detection`` are the tier-1's, in Envoy's
        protojson (None: no active checks; Envoy's defaults for outlier detection)."""
        if os.geteuid() != 0:
            raise LabError("a lab of several clusters needs root (its client enters the edge's namespace); run it as root, or use `meshlab lab up` without --clusters")
        if not 1 <= clusters <= MAX_CLUSTERS:
            raise LabUsageError(f"a lab has 1 to {MAX_CLUSTERS} clusters, not {clusters}")
        if not 1 <= pods <= MAX_PODS_PER_CLUSTER:
            raise LabUsageError(f"a cluster has 1 to {MAX_PODS_PER_CLUSTER} pods, not {pods}")
        self.names = [f"cluster{k}" for k in range(1, clusters + 1)]
        default = {"cluster1": 75, "cluster2": 25} if clusters == 2 else dict.fromkeys(self.names, 1)
        self.weights = self._checked_weights(weights if weights is not None else default)
        self.hostname, self.outlier_detection = hostname, outlier_detection
        self.health_check = None if health_check is None else {**health_check, "httpHealthCheck": {"host": hostname, **health_check.get("httpHealthCheck", {})}}
        self.refuse_existing()

        def build() -> None:
            self.state_dir.mkdir(exist_ok=True)
            self._wire(pods)
            self._write_configs()
            tier2 = [self._app(pod) for pod in self.pods.values() if pod.name.rpartition("-")[2].startswith("echo")]
            tier2 += [self._gateway(f"{name}-gateway") for name in self.names]
            self._start(tier2)
            self._start([self._gateway("tier1")])  # after the tier-2s, so its first checks find them
        return self.bring_up(build, down_at_exit)

    def _checked_weights(self, weights: Mapping[str, int]) -> dict[str, int]:
        if set(weights) != set(self.names) or any(isinstance(w, bool) or not isinstance(w, int) or w < 0 for w in weights.values()) or not any(weights.values()):
            raise LabUsageError(f"weights must give each of {', '.join(self.names)} a whole number >= 0, not all 0; got {dict(weights)}")
        return {name: weights[name] for name in self.names}

    def _wire(self, pods: int) -> None:
        """The namespaces and links: edge, tier-1, client, then each cluster's node, gateway and pods."""
        network.create_edge(self.host, self.prefix)
        edge_links = iter(range(2 + len(self.names)))
        for name, ip in (("tier1", TIER1_IP), ("client", CLIENT_IP)):
            network.wire_to_edge(self.host, self.prefix, f"{self.prefix}-{name}", ip, next(edge_links))
            self.pods[name] = Pod(name, f"{self.prefix}-{name}", ip, (GATEWAY_PORT,) if name == "tier1" else (), sidecar=False)
        for k, name in enumerate(self.names, 1):
            cluster = f"{self.prefix}-{name}"
            network.create_node(self.host, cluster, 0)
            gateway_ip = f"{network.POD_NETWORK}.0.{FIRST_POD_HOST}"
            gateway = network.wire_pod(self.host, cluster, "gateway", 0, gateway_ip, 0)
            network.wire_to_edge(self.host, self.prefix, gateway.name, self.edge_ip(name), next(edge_links), interface="eth1")
            self.pods[f"{name}-gateway"] = Pod(f"{name}-gateway", gateway.name, gateway_ip, (GATEWAY_PORT,), sidecar=False)
            for i in range(pods):
                ip = f"{network.POD_NETWORK}.0.{FIRST_POD_HOST + 1 + i}"
                pod = network.wire_pod(self.host, cluster, f"echo{i}", 0, ip, 1 + i)
                self.pods[f"{name}-echo{i}"] = Pod(f"{name}-echo{i}", pod.name, ip, (APP_PORT,), sidecar=False)

    def edge_ip(self, cluster: str) -> str:
        """The address of a cluster's tier-2 gateway on the edge."""
        return f"{network.EDGE_NETWORK}.{10 + self.names.index(cluster) + 1}"

    def _write_configs(self) -> None:
        """Each gateway's configuration file (what ``meshlab.gateway.proxy.run`` reads, and rereads on SIGHUP)."""
        for name in self.names:
            echo = [f"{pod.ip}:{APP_PORT}" for pod in self.pods.values() if pod.name.startswith(f"{name}-echo")]
            self._write_config(f"{name}-gateway", {"routes": tier2_routes(self.hostname), "port": GATEWAY_PORT, "listen": f"0.0.0.0:{GATEWAY_PORT}",
                                                   "endpoints": {"default/echo": echo}})
        self._write_config("tier1", {"routes": tier1_routes(self.weights, self.hostname), "port": GATEWAY_PORT, "listen": f"0.0.0.0:{GATEWAY_PORT}",
                                     "endpoints": {f"edge/{name}-gateway": [f"{self.edge_ip(name)}:{GATEWAY_PORT}"] for name in self.names},
                                     "healthCheck": self.health_check, "outlierDetection": self.outlier_detection})

    def _write_config(self, gateway: str, config: dict) -> None:
        text = json.dumps(config, indent=1)
        load_config(text, gateway)  # a bad health setting is refused here, not in a gateway that then fails to start
        self._config(gateway).write_text(text)

    def _config(self, gateway: str) -> Path:
        return self.state_dir / f"{gateway}.json"

    def _app(self, pod: Pod) -> dict:
        return {"role": "app", "pod": pod.name, "netns": pod.netns, "log": str(self._log(pod.name, "app")), "ports": list(pod.ports), "cgroup": None}

    def _gateway(self, name: str) -> dict:
        return {"role": "gateway", "pod": name, "netns": self.pods[name].netns, "log": str(self._log(name, "gateway")), "config": str(self._config(name))}

    def _start(self, processes: list[dict]) -> None:
        try:
            self.processes += kubelet.launch(self.host, processes)
        finally:
            self._save()
        kubelet.wait_ready(processes, self.state_dir)

    def _save(self) -> None:
        layout = {"names": self.names, "weights": self.weights, "hostname": self.hostname,
                  "health_check": self.health_check, "outlier_detection": self.outlier_detection}
        LabState(self.prefix, pods=[pod.saved() for pod in self.pods.values()], processes=self.processes, clusters=layout).write(self.state_dir)

    def down(self) -> None:
        """Stop every process and delete every namespace of the prefix (idempotent)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        cleanup(self.prefix, [process for _, process in self.processes])
        self.pods.clear()
        self.processes.clear()

    @classmethod
    def attach(cls, prefix: str = DEFAULT_PREFIX) -> Clusters:
        """The running lab of several clusters with this prefix, from its state file."""
        clusters = cls(prefix)
        state = read_state(clusters.state_dir)
        if state is None or not state.clusters:
            raise LabUsageError(f"no lab of several clusters with prefix {prefix!r} is running (start one with `meshlab lab up --clusters 2 --prefix {prefix}`)")
        layout = state.clusters
        clusters.names, clusters.weights, clusters.hostname = layout["names"], layout["weights"], layout["hostname"]
        clusters.health_check, clusters.outlier_detection = layout["health_check"], layout["outlier_detection"]
        clusters.pods = {pod["name"]: Pod(**{**pod, "ports": tuple(pod["ports"])}) for pod in state.pods}
        clusters.processes = state.processes
        return clusters

    # -- looking -------------------------------------------------------------------------------
    def _alive(self, pod: str) -> bool:
        return any(owner == pod and process.alive() for owner, process in self.processes)

    def status(self) -> dict:
        return {
            "prefix": self.prefix,
            "hostname": self.hostname,
            "tier1": {"ip": TIER1_IP, "port": GATEWAY_PORT, "weights": self.weights, "running": self._alive("tier1")},
            "client": {"ip": CLIENT_IP},
            "clusters": [{"name": name, "gateway": {"edge_ip": self.edge_ip(name), "ip": self.pods[f"{name}-gateway"].ip, "running": self._alive(f"{name}-gateway")},
                          "pods": [{"name": pod.name, "ip": pod.ip} for pod in self.pods.values() if pod.name.startswith(f"{name}-echo")]}
                         for name in self.names],
        }

    def logs(self, gateway: str) -> list[dict]:
        """A gateway's log records (``tier1`` or ``<cluster>-gateway``), oldest first."""
        if gateway != "tier1" and gateway not in (f"{name}-gateway" for name in self.names):
            raise LabUsageError(f"no gateway {gateway!r}; gateways are tier1, {', '.join(f'{name}-gateway' for name in self.names)}")
        path = self._log(gateway, "gateway")
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def counters(self, gateway: str = "tier1") -> dict:
        """A gateway's counters: requests per backend and status, ejections, health transitions."""
        return counters(self.logs(gateway))

    # -- requests ------------------------------------------------------------------------------
    def _in_client(self, function, *args):
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"{self.prefix}-client", initializer=NetNS(f"{self.prefix}-client", self.host).enter)
        return self._executor.submit(function, *args)

    def _client(self) -> HttpClient:
        return HttpClient(TIER1_IP, GATEWAY_PORT, authority=self.hostname)

    def request(self, path: str = "/") -> Reply:
        """One request from the client to the tier-1 gateway, on a new connection."""
        def once() -> Reply:
            client = self._client()
            try:
                return client.get(path, close=True)
            finally:
                client.close()
        return self._in_client(once).result(timeout=60)

    def cluster_of(self, reply: Reply) -> str | None:
        """The cluster whose pod answered, or None for a failed request."""
        pod = reply.body.get("pod", "") if reply.status == 200 else ""
        return pod.rpartition("-")[0] or None

    def split(self, requests: int = 2000) -> dict[str, int]:
        """``requests`` requests over one keep-alive connection through the tier-1 gateway: how many
        each cluster answered (and ``failed``, if any failed)."""
        samples = self._in_client(self._send, time.monotonic(), requests, 0.0, None).result(timeout=600)
        counts = {name: sum(sample.cluster == name for sample in samples) for name in self.names}
        failed = sum(sample.cluster is None for sample in samples)
        return {**counts, "failed": failed} if failed else counts

    def _send(self, started: float, count: int | None, pace: float, stop: threading.Event | None) -> list[Sample]:
        """Paced requests (``meshlab.lab.traffic``) over one keep-alive connection; a broken connection is a
        failed request, and the next request opens a new one."""
        client: HttpClient | None = None

        def send(n: int) -> tuple[int, str | None]:
            nonlocal client
            try:
                client = client or self._client()
                reply = client.get(f"/{n}")
            except OSError:
                if client is not None:
                    client.close()
                client = None
                raise
            return reply.status, self.cluster_of(reply)

        try:
            return paced(send, started, pace, count, stop)
        finally:
            if client is not None:
                client.close()

    # -- failures ------------------------------------------------------------------------------
    def kill_gateway(self, cluster: str) -> None:
        """SIGKILL a cluster's tier-2 gateway, as a crash would."""
        gateway = self._gateway_name(cluster)
        for owner, process in self.processes:
            if owner == gateway and process.alive():
                os.kill(process.pid, signal.SIGKILL)

    def start_gateway(self, cluster: str) -> None:
        """Start a cluster's tier-2 gateway again (after ``kill_gateway``); returns once it listens."""
        gateway = self._gateway_name(cluster)
        if self._alive(gateway):
            raise LabUsageError(f"{gateway} is running; kill it first")
        log = self._log(gateway, "gateway")
        if log.exists():
            log.replace(log.with_name(log.name + ".1"))  # the killed process's log, kept; the new one starts empty
        self._start([self._gateway(gateway)])

    def _gateway_name(self, cluster: str) -> str:
        if cluster not in self.names:
            raise LabUsageError(f"no cluster {cluster!r}; clusters are {', '.join(self.names)}")
        return f"{cluster}-gateway"

    def set_weights(self, weights: Mapping[str, int], timeout: float = 10.0) -> None:
        """New weights for the tier-1 gateway: its configuration rewritten, then SIGHUP; returns once reloaded.
        Recorded in the lab's state only then; a configuration the gateway refuses is put back."""
        previous, self.weights = self.weights, self._checked_weights(weights)
        self._write_configs()
        before = sum(record.get("event") == "config" for record in self.logs("tier1"))
        for owner, process in self.processes:
            if owner == "tier1" and process.alive():
                os.kill(process.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while sum(record.get("event") == "config" for record in self.logs("tier1")) == before:
            if time.monotonic() > deadline:
                raise LabError(f"the tier-1 gateway did not reload within {timeout:.0f} s; see {self._log('tier1', 'gateway')}")
            time.sleep(0.02)
        latest = [record for record in self.logs("tier1") if record.get("event") == "config"][-1]
        if "error" in latest:
            self.weights = previous
            self._write_configs()
            raise LabError(f"the tier-1 gateway refused its new configuration: {latest['error']}")
        self._save()

    def failover(self, kill: str = "cluster1", before_s: float = 1.0, down_s: float = 3.0, after_s: float = 3.0, pace_ms: float = 2.0) -> Failover:
        """Send requests every ``pace_ms`` while ``kill``'s tier-2 gateway is killed (after ``before_s``),
        left dead for ``down_s`` and started again, then for ``after_s`` more."""
        gateway = self._gateway_name(kill)
        if not self._alive(gateway):
            raise LabUsageError(f"{gateway} is not running; start it with start_gateway({kill!r})")
        stop = threading.Event()
        wall = time.time()
        started = time.monotonic()
        sending = self._in_client(self._send, started, None, pace_ms / 1000, stop)
        try:
            time.sleep(before_s)
            kill_at = time.monotonic() - started
            self.kill_gateway(kill)
            time.sleep(down_s)
            restart_at = time.monotonic() - started
            self.start_gateway(kill)
            ready_at = time.monotonic() - started
            time.sleep(after_s)
        finally:
            stop.set()
            samples = sending.result(timeout=60)
        events = [{"t": round(_epoch(record["time"]) - wall, 3), **record} for record in self.logs("tier1") if record.get("event") in ("health", "outlier")]
        return Failover(kill, kill_at, restart_at, ready_at, tuple(samples), tuple(event for event in events if event["t"] >= 0))


def _epoch(stamp: str) -> float:
    """A gateway log's time (ISO 8601, UTC, ``Z``) in seconds since the epoch."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

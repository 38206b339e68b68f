"""Lazy loading on the live lab: sidecars configured by meshlab's xDS control plane, a global sidecar,
and Slime's controller writing each workload's Sidecar from what the global sidecar saw.

The pods are the live lab's (network namespaces on a node's bridge, Istio's rules, the echo app), but
their sidecars hold no services file: each subscribes over ADS to the control plane
(``meshlab.xds.server``), which listens on the node's bridge address, port 15010 (istiod's plaintext
xDS port, pilot-discovery ``--grpcAddr``), and is sent only what its Sidecar imports. Slime's flow
(slime-io/slime modules/lazyload, commit 043e38df; ``meshlab.scoping.lazyload``) then runs live:

1. every service is fenced (Slime's autoFence): its pods' Sidecar imports only ``istio-system/*``
   and ``mesh-operator/*``, and the ``to-global-sidecar`` EnvoyFilter makes virtualOutbound send what
   a proxy has no listener for to the global sidecar's cluster;
2. the workload calls a service it was not told about: its sidecar sends the connection to the
   **global sidecar** (the ``global`` pod, namespace mesh-operator, Service
   ``global-sidecar.mesh-operator.svc.cluster.local:80``), starting with a PROXY protocol line that
   carries the caller and the original destination; the global sidecar (unscoped: no Sidecar selects
   it) forwards it there by its own full configuration and logs it. The call succeeds, one hop longer;
3. ``refresh`` (Slime's producer, every 10 s there; here when called, or every ``refresh_s``) reads
   the global sidecar's new log records as Slime's access-log entries and runs one round of the same
   ``LazyloadController`` the model runs (learner, ServiceFence, Sidecar); each new Sidecar goes to the
   control plane, which pushes it to that workload's proxy only;
4. the next calls go direct.

An L4 adaptation, said once: Slime's global sidecar routes HTTP by the Host header; meshlab's proxy is
layer 4, so the original destination travels in a PROXY protocol line and the access log's authority
is the hostname of the service the destination belongs to (from the global sidecar's listeners).

Layout for prefix ``ml`` (everything carries it; the state file records every process, so ``down`` and
``cleanup`` remove it all, also after the Python running the control plane was killed)::

    ml-node0     the node: bridge 10.244.0.1/24; the control plane listens on 10.244.0.1:15010
    ml-product   the fresh workload, 10.244.0.10 (Service product, as Slime fences services)
    ml-global    the global sidecar, 10.244.0.11:80 (no capture rules: it is reached directly)
    ml-details   ... one pod per service from 10.244.0.12, echo app on 8080; ClusterIPs from 10.96.0.10, port 9080

    LazyLab      up, down; call, measure; refresh, access_log, sidecar_of; resources, pushed, unscoped; logs, hops, status
    Call         one call: service, path taken (global-sidecar or direct), latency, the hops that prove it
    Measurement  what measure() found: per service the fallback and direct latencies, resources before/after
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from meshlab.intercept import build_rules
from meshlab.lab import hops, kubelet, network
from meshlab.lab.client import Reply, get_once
from meshlab.lab.composition import Composition
from meshlab.lab.netns import LabError, LabUsageError, NetNS
from meshlab.lab.processes import ProcessRecord
from meshlab.lab.spec import APP_PORT, DEFAULT_CAPTURE, DEFAULT_PREFIX, FIRST_POD_HOST, SERVICE_NETWORK, SIDECAR_GID, SIDECAR_UID, Pod
from meshlab.lab.state import LabState
from meshlab.lab.teardown import cleanup
from meshlab.scoping.lazyload import GLOBAL_SIDECAR, SERVICE_LABEL, SLIME_NAMESPACE, AccessLogEntry, LazyloadController, ServiceFence
from meshlab.scoping.scope import Service, ServicePort
from meshlab.scoping.sidecar import Sidecar
from meshlab.xds import DebounceOptions
from meshlab.xds.outbound import ClusterIPService, cluster_name
from meshlab.xds.server import ControlPlaneThread

XDS_PORT = 15010  # istiod's plaintext xDS port (pilot-discovery --grpcAddr :15010)
SERVICE_PORT = 9080  # the services' port (Bookinfo's), in front of the echo app's 8080
GLOBAL_PORT = 80  # the global sidecar Service's port (Slime charts/global-sidecar)
NAMESPACE = "default"
WORKLOAD = "product"
GLOBAL_POD = "global"
DEFAULT_SERVICES = ("details", "reviews", "ratings", "cart", "payment", "shipping")
MAX_SERVICES = 40
VIA_FALLBACK, DIRECT = "global-sidecar", "direct"
HOP_TIMEOUT_S = 5.0


def fqdn(name: str, namespace: str = NAMESPACE) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


@dataclass(frozen=True)
class Call:
    """``via``: "global-sidecar" (the fallback) or "direct"; ``hops``: the proxies' records of this very
    call, caller's sidecar first (three via the global sidecar, two direct)."""

    service: str
    via: str
    latency_us: float
    pod: str
    hops: tuple[dict, ...]


@dataclass(frozen=True)
class Measurement:
    """Per service, latencies (µs) of ``repeats`` calls via the global sidecar (before the controller
    ran) and as many direct (after): ``first_us`` the very first call; resource counts the control
    plane sent the workload's proxy: ``unscoped`` (no Sidecar), ``fenced`` (Slime's first Sidecar),
    ``learned`` (after every service was learned)."""

    repeats: int
    first_us: dict[str, float]
    fallback_us: dict[str, list[float]]
    direct_us: dict[str, list[float]]
    resources: dict[str, dict[str, int]] = field(default_factory=dict)

    def medians(self) -> dict[str, tuple[float, float]]:
        """Per service (median via the global sidecar, median direct), µs."""
        return {s: (statistics.median(self.fallback_us[s]), statistics.median(self.direct_us[s])) for s in self.fallback_us}

    def __str__(self) -> str:
        lines = [f"{'service':<10} {'first call':>11} {'via global-sidecar':>19} {'direct':>8}   (medians of {self.repeats}, µs)"]
        for service, (fallback, direct) in self.medians().items():
            lines.append(f"{service:<10} {self.first_us[service]:>11.0f} {fallback:>19.0f} {direct:>8.0f}")
        for stage, counts in self.resources.items():
            lines.append(f"{stage:<10} " + ", ".join(f"{kind} {count}" for kind, count in counts.items()))
        return "\n".join(lines)


class LazyLab(Composition):
    """The live lazy-loading lab, identified by its prefix; the control plane runs in this process."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        super().__init__(prefix)
        self.pods: dict[str, Pod] = {}
        self.processes: list[tuple[str, ProcessRecord]] = []
        self.services: dict[str, ClusterIPService] = {}  # service name -> its ClusterIP service
        self.control_plane: ControlPlaneThread | None = None
        self.lazyload: LazyloadController | None = None  # Slime's controller, once lazy loading is on
        self.unscoped: dict[str, int] = {}  # what the workload's proxy was sent before any Sidecar
        self._read = 0  # global sidecar log lines already learned from
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None
        self._executors: dict[str, ThreadPoolExecutor] = {}

    # -- life cycle ------------------------------------------------------------------------
    def up(self, services: tuple[str, ...] = DEFAULT_SERVICES, lazy_loading: bool = True, refresh_s: float | None = None,
           down_at_exit: bool = False) -> LazyLab:
        """Create the node, the workload, one pod per service, the global sidecar and the control plane;
        wait until every sidecar has its configuration. With ``lazy_loading`` every service is then fenced
        (Slime's first Sidecars and the EnvoyFilter). ``refresh_s`` runs ``refresh`` on a thread that
        often (Slime: every 10 s); None leaves it to the caller. Undoes everything on failure."""
        if os.geteuid() != 0:
            raise LabError("the lazy-loading lab needs root (its control plane and client enter the lab's namespaces); run it as root")
        names = list(services)
        if not 1 <= len(names) <= MAX_SERVICES or len(set(names)) != len(names) or {WORKLOAD, GLOBAL_POD} & set(names):
            raise LabUsageError(f"services are 1 to {MAX_SERVICES} distinct pod names other than {WORKLOAD!r} and {GLOBAL_POD!r}, got {names}")
        if refresh_s is not None and refresh_s <= 0:
            raise LabUsageError(f"refresh_s is a period in seconds > 0 (or None: call refresh() yourself), got {refresh_s!r}")
        self.refuse_existing()

        def build() -> None:
            self.state_dir.mkdir(exist_ok=True)
            self._wire(names)
            self.control_plane = ControlPlaneThread(DebounceOptions())
            node = NetNS(network.node_name(self.prefix, 0), self.host)
            self.control_plane.start(XDS_PORT, network.gateway(0), enter=node.enter)
            self.control_plane.set_cluster_ip_services(list(self.services.values()))
            self._start_processes()
            self._wait_connected()
            self.unscoped = self.resources()
            if lazy_loading:
                self._fence()
            if refresh_s is not None:
                self._loop = threading.Thread(target=self._refresh_every, args=(refresh_s,), name=f"{self.prefix}-lazyload", daemon=True)
                self._loop.start()
        return self.bring_up(build, down_at_exit)

    def _wire(self, names: list[str]) -> None:
        network.create_node(self.host, self.prefix, 0)
        for index, name in enumerate([WORKLOAD, GLOBAL_POD, *names]):
            ip = f"{network.POD_NETWORK}.0.{FIRST_POD_HOST + index}"
            namespace = network.wire_pod(self.host, self.prefix, name, 0, ip, index)
            if name != GLOBAL_POD:  # what istio-init does; the global sidecar is reached directly, as its Service's pod
                namespace.run(["iptables-restore", "--noflush"], stdin=build_rules(DEFAULT_CAPTURE).restore_text(4))
            k8s_namespace = SLIME_NAMESPACE if name == GLOBAL_POD else NAMESPACE
            labels = {SERVICE_LABEL: "global-sidecar" if name == GLOBAL_POD else name}
            self.pods[name] = Pod(name, namespace.name, ip, (GLOBAL_PORT,) if name == GLOBAL_POD else (APP_PORT,), True,
                                  k8s_namespace=k8s_namespace, labels=labels, host=self.host)
            hostname = GLOBAL_SIDECAR if name == GLOBAL_POD else fqdn(name)
            port, target = (GLOBAL_PORT, GLOBAL_PORT) if name == GLOBAL_POD else (SERVICE_PORT, APP_PORT)
            self.services[name] = ClusterIPService(hostname, k8s_namespace, f"{SERVICE_NETWORK}.{10 + index}", port, (f"{ip}:{target}",))

    def node_id(self, pod: str) -> str:
        """The xDS node id of a pod's sidecar: ``namespace/name``."""
        return f"{self.pod(pod).k8s_namespace}/{pod}"

    def _start_processes(self) -> None:
        processes = []
        server = f"{network.gateway(0)}:{XDS_PORT}"
        for pod in self.pods.values():
            if pod.name != GLOBAL_POD:
                processes.append({"role": "app", "pod": pod.name, "netns": pod.netns, "log": str(self._log(pod.name, "app")), "ports": list(pod.ports), "cgroup": None})
            xds = {"server": server, "node": self.node_id(pod.name), "labels": pod.labels, "global_port": GLOBAL_PORT if pod.name == GLOBAL_POD else None}
            processes.append({"role": "sidecar", "pod": pod.name, "netns": pod.netns, "log": str(self._log(pod.name, "sidecar")),
                              "uid": SIDECAR_UID, "gid": SIDECAR_GID, "mark": None, "services": None, "cgroup": None, "xds": xds})
        try:
            self.processes += kubelet.launch(self.host, processes)
        finally:
            self._save()  # what started is recorded before anything else can fail
        kubelet.wait_ready(processes, self.state_dir)

    def _wait_connected(self, timeout: float = 30.0) -> None:
        """Until every sidecar holds an ADS stream and has answered every response."""
        plane = self.control_plane.plane
        deadline = time.monotonic() + timeout
        while self.control_plane.call(lambda: sum(c.workload is not None for c in plane.connections.values())) < len(self.pods):
            if time.monotonic() > deadline:
                raise LabError(f"not every sidecar connected to the control plane within {timeout:.0f} s; see their logs in {self.state_dir}")
            time.sleep(0.02)
        self.control_plane.wait_settled(timeout)

    def _save(self) -> None:
        LabState(self.prefix, pods=[pod.saved() for pod in self.pods.values()], processes=self.processes).write(self.state_dir)

    def _fence(self) -> None:
        """Slime's autoFence and the to-global-sidecar EnvoyFilter: every service starts knowing only
        the Istio and Slime namespaces; what it does not know goes to the global sidecar."""
        registry = [Service(s.hostname, s.namespace, (ServicePort(s.port, "TCP", "tcp"),), len(s.endpoints)) for s in self.services.values()]
        labels = {f"{pod.k8s_namespace}/{pod.name}": pod.labels for pod in self.pods.values()}
        workloads = [pod for pod in self.pods.values() if pod.name != GLOBAL_POD]
        self.lazyload = LazyloadController(registry, {pod.ip: [f"{pod.k8s_namespace}/{pod.name}"] for pod in workloads}, labels)
        self.control_plane.set_fallback(cluster_name(GLOBAL_PORT, GLOBAL_SIDECAR))
        for pod in workloads:
            self._write(self.lazyload.fence(ServiceFence(NAMESPACE, pod.name), self._now()))
        self.control_plane.wait_settled()

    def _write(self, sidecar: Sidecar | None) -> None:
        if sidecar is not None:
            self.control_plane.set_sidecar(sidecar)

    def down(self) -> None:
        """Stop the controller, the control plane, every process; delete every namespace (idempotent)."""
        self._stop.set()
        if self._loop is not None:
            self._loop.join(timeout=10)
            self._loop = None
        for executor in self._executors.values():
            executor.shutdown(wait=False, cancel_futures=True)
        self._executors.clear()
        cleanup(self.prefix, [process for _, process in self.processes])
        if self.control_plane is not None:
            self.control_plane.stop()
            self.control_plane = None
        self.pods.clear()
        self.processes.clear()

    # -- the controller --------------------------------------------------------------------
    def _now(self) -> float:
        return time.monotonic() - self._started

    def access_log(self) -> list[AccessLogEntry]:
        """The global sidecar's log as Slime's access-log entries: one per forwarded call, from the caller's
        pod address, the authority the hostname of the service called, on its inbound listener."""
        entries = []
        for hop in self.hops(GLOBAL_POD):
            cluster = hop.get("upstream_cluster") or ""
            authority = cluster.split("|")[3] if cluster.startswith("outbound|") else hop["original_dst"]
            entries.append(AccessLogEntry(hop["opened"], (hop.get("source") or "").rpartition(":")[0], authority, f"inbound|{GLOBAL_PORT}||"))
        return entries

    def refresh(self) -> list[Sidecar]:
        """One round of Slime's controller: learn from the global sidecar's new log records, refresh the
        fences whose metric changed, give their Sidecars to the control plane and wait for the push to
        be answered. Returns the Sidecars written."""
        if self.lazyload is None:
            raise LabUsageError("lazy loading is off in this lab; start it with up(lazy_loading=True)")
        with self._lock:
            entries = self.access_log()
            written = self.lazyload.round(entries[self._read:], self._now())
            self._read = len(entries)
            for sidecar in written:
                self._write(sidecar)
            if written:
                self.control_plane.wait_settled()
            return written

    def _refresh_every(self, period_s: float) -> None:
        while not self._stop.wait(period_s):
            self.refresh()

    def sidecar_of(self, pod: str = WORKLOAD) -> Sidecar | None:
        """The Sidecar the controller last wrote for ``pod``'s service (None before lazy loading)."""
        return self.control_plane.call(lambda: self.control_plane.plane.sidecars.get(f"Sidecar/{NAMESPACE}/{self.pod(pod).name}"))

    # -- looking ---------------------------------------------------------------------------
    def pod(self, name: str) -> Pod:
        if name not in self.pods:
            raise LabUsageError(f"no pod {name!r} in lab {self.prefix!r}; pods are {', '.join(self.pods) or 'none'}")
        return self.pods[name]

    def status(self) -> dict:
        return {"prefix": self.prefix, "control_plane": f"{network.gateway(0)}:{XDS_PORT}",
                "pods": [{"name": p.name, "ip": p.ip, "namespace": p.k8s_namespace} for p in self.pods.values()],
                "services": [{"name": name, "hostname": s.hostname, "cluster_ip": s.cluster_ip, "port": s.port} for name, s in self.services.items()]}

    def logs(self, pod: str, role: str = "sidecar") -> str:
        """A pod's ``sidecar`` (the global pod's: the global sidecar's) or ``app`` log."""
        if role not in ("sidecar", "app") or (pod == GLOBAL_POD and role == "app"):
            raise LabUsageError(f"logs of {pod!r}: roles are sidecar and, except for {GLOBAL_POD!r}, app")
        path = self._log(self.pod(pod).name, role)
        text = path.read_text() if path.exists() else ""
        return text[:text.rfind("\n") + 1]  # whole records only: a proxy may be writing the next one

    def hops(self, pod: str) -> list[dict]:
        """``pod``'s sidecar's hop records (the global pod's: the global sidecar's), oldest first."""
        return hops.parse(self.logs(pod))

    def resources(self, pod: str = WORKLOAD) -> dict[str, int]:
        """How many listeners, clusters and endpoint assignments (LDS, CDS, EDS) the control plane last sent
        ``pod``'s sidecar, from its own exchange records."""
        sent = self.control_plane.last_sent(self.node_id(pod))
        return {kind: len(sent.get(kind, [])) for kind in ("LDS", "CDS", "EDS")}

    def pushed(self, pod: str = WORKLOAD) -> list[dict]:
        """The same counts after each version the control plane sent ``pod``'s sidecar, in order."""
        node = self.node_id(pod)
        counts: dict[str, int] = {}
        history: list[dict] = []
        for record in self.control_plane.exchanges:
            if record["direction"] == "response" and record["node"] == node:
                counts[record["type"]] = len(record["resources"])
                entry = {"version": int(record["version"]), **{kind: counts.get(kind, 0) for kind in ("LDS", "CDS", "EDS")}}
                if history and history[-1]["version"] == entry["version"]:
                    history[-1] = entry
                else:
                    history.append(entry)
        return history

    # -- calling ---------------------------------------------------------------------------
    def _in_pod(self, pod: str, function, *args):
        namespace = self.pod(pod).namespace
        if namespace.name not in self._executors:
            self._executors[namespace.name] = ThreadPoolExecutor(1, thread_name_prefix=namespace.name, initializer=namespace.enter)
        return self._executors[namespace.name].submit(function, *args).result(timeout=60)

    def call(self, service: str, pod: str = WORKLOAD) -> Call:
        """One request from ``pod`` to ``service``'s ClusterIP on a new connection, and the path it took,
        read from the proxies' records of this very connection."""
        if service not in self.services or service == GLOBAL_POD or service == pod:
            raise LabUsageError(f"no service {service!r} to call from {pod}; services are {', '.join(s for s in self.services if s not in (GLOBAL_POD, pod))}")
        target = self.services[service]
        since = time.time()  # this call's hops opened after this; an earlier call's may share its ports
        reply: Reply = self._in_pod(pod, get_once, target.cluster_ip, target.port)
        if reply.status != 200 or reply.body.get("pod") != service:
            raise LabError(f"{pod} -> {service}: answered {reply.status} by {reply.body.get('pod')!r}, not by {service}")
        inbound = self._hop(service, since, direction="inbound", upstream_source=reply.body["peer"])
        caller = inbound["downstream"]
        hops_taken = [inbound]
        if caller.rpartition(":")[0] == self.pods[GLOBAL_POD].ip:
            forwarded = self._hop(GLOBAL_POD, since, upstream_source=caller)
            hops_taken.insert(0, forwarded)
            caller = forwarded["downstream"]
        outbound = self._hop(pod, since, direction="outbound", upstream_source=caller)
        hops_taken.insert(0, outbound)
        return Call(service, VIA_FALLBACK if len(hops_taken) == 3 else DIRECT, reply.latency_us, pod, tuple(hops_taken))

    def _hop(self, pod: str, since: float, **fields) -> dict:
        """The hop of ``pod``'s sidecar with ``fields`` that opened at or after ``since``, waited for."""
        return hops.wait_for(lambda: self.hops(pod), f"{pod}'s sidecar (see {self._log(pod, 'sidecar')})", HOP_TIMEOUT_S, since, **fields)

    def measure(self, services: tuple[str, ...] = ("details", "reviews", "ratings"), repeats: int = 20) -> Measurement:
        """For each service in turn: ``repeats`` calls before the controller runs (the first is the very
        first call: all go through the global sidecar), one ``refresh``, ``repeats`` calls after (direct).
        Needs a fresh workload and the controller driven from here (``up(refresh_s=None)``)."""
        if self._loop is not None or self.lazyload is None:
            raise LabUsageError("measure() needs lazy loading with the controller driven from here: up(lazy_loading=True, refresh_s=None)")
        if repeats < 1:
            raise LabUsageError(f"repeats is a whole number >= 1, got {repeats}")
        unknown = [s for s in services if s not in self.services or s in (GLOBAL_POD, WORKLOAD)]
        if unknown:
            raise LabUsageError(f"no service {unknown[0]!r} to call; services are {', '.join(s for s in self.services if s not in (GLOBAL_POD, WORKLOAD))}")
        learned = [s for s in services if self.services[s].hostname in self._scope_hostnames()]
        if learned:
            raise LabUsageError(f"{WORKLOAD} has already learned {', '.join(learned)}: measure() needs services it has not called yet (start a new lab)")
        resources = {"unscoped": self.unscoped, "fenced": self.resources()}
        first, fallback, direct = {}, {}, {}
        for service in services:
            before = [self._expect(self.call(service), VIA_FALLBACK) for _ in range(repeats)]
            self.refresh()
            after = [self._expect(self.call(service), DIRECT) for _ in range(repeats)]
            first[service], fallback[service], direct[service] = before[0], before, after
        resources["learned"] = self.resources()
        return Measurement(repeats, first, fallback, direct, resources)

    @staticmethod
    def _expect(call: Call, via: str) -> float:
        if call.via != via:
            raise LabError(f"a call to {call.service} went {call.via}, not {via}: the controller ran outside measure()? hops: {call.hops}")
        return call.latency_us

    def _scope_hostnames(self) -> set[str]:
        sidecar = self.sidecar_of(WORKLOAD)
        hosts = sidecar.egress[0].hosts if sidecar is not None and sidecar.egress else ()
        return {host.partition("/")[2] for host in hosts}

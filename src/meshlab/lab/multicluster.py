"""One mesh over several clusters on several networks, live: Istio's multi-primary, multi-network model.

Each cluster has its own network, its own control plane (meshlab's xDS server, the part of istiod)
and an **east-west gateway**; every control plane reads every cluster's registry (as each istiod reads
the other clusters' API servers through remote secrets) and sends its proxies Istio's
**split-horizon EDS** (``meshlab.multicluster.endpoints.split_horizon``): a pod on the proxy's own
network as it is, the pods of another network as that network's east-west gateway (port 15443),
weighted by how many pods it stands for. Endpoints carry Istio's locality failover priorities for the
cluster's locality (``meshlab.multicluster.locality``): priority 0 at home, 1 in the other region. So:

- a call from cluster1 to a service whose pods are all in cluster2 leaves cluster1's sidecar as mutual
  TLS with the SNI ``outbound_.9080_._.<host>`` to cluster2's east-west gateway, which reads the SNI
  without terminating (AUTO_PASSTHROUGH) and passes the connection to one of its pods, whose sidecar
  terminates it and sees the caller's SPIFFE ID. All three proxies log the hop (``call``).
- a service with pods in both clusters stays at home while its home pods are healthy; kill them and the
  caller's outlier detection (the DestinationRule's, ``OUTLIER_DETECTION``) ejects them one failed
  connection at a time, priority 0 empties and traffic fails over to priority 1, the other cluster,
  through its gateway; restart them and, once their ejection time is over, traffic comes back
  (``failover``: requests lost, time to fail over, time to come back).

Kubernetes DNS answers only for Services of the caller's own cluster, so a Service whose pods are all in
cluster2 is created in cluster1 too, without pods (what Istio's multicluster docs ask for, "Deploy the
HelloWorld Service" in every cluster; Istio's DNS proxy is the other way). Every cluster's pods get
X509-SVIDs of one trust domain, signed by one authority: Istio's multi-cluster setups need a common
root (istio.io "Plug in CA Certificates"); chapter 13 shows what several trust domains need. Pods of
all clusters are in namespace default; each cluster is one locality (``region<k>/zone<k>``), so the
priorities istiod computes per proxy are the same for all of a cluster's proxies.

A **VM** joins the mesh from outside every cluster (``vm=True``): a namespace on the edge network with
its own sidecar (Istio's rules, an SVID of ``spiffe://cluster.local/ns/vm/sa/vmapp`` from the same
authority) and app. It is on network1 (it routes to cluster1's pod network through cluster1's node, as
a VM in the cluster's VPC would) and gets its configuration from cluster1's control plane (on cluster1's
node edge address; Istio exposes istiod through the east-west gateway on 15012, with TLS). When its
proxy connects, the lab does what istiod's auto-registration does (``meshlab.multicluster.workloads``:
the WorkloadGroup ``vm/vmapp`` gives the WorkloadEntry ``vmapp-10.250.0.50-network1``), and the
Service ``vmapp`` selects it: pods of cluster1 reach it directly, pods of cluster2 through cluster1's
east-west gateway, by the Service's ClusterIP (the name Kubernetes DNS, or Istio's DNS proxy on the VM,
resolves).

The layout for prefix ``ml`` and two clusters (everything carries the prefix and is in the state file)::

    ml-edge               the edge: a bridge for 10.250.0.0/24, where the networks meet
    ml-cluster1-node0     cluster1's node: bridge 10.244.0.1/24, its control plane on 10.244.0.1:15010,
                          on the edge as 10.250.0.21, masquerading its pods' traffic to the edge
    ml-cluster1-eastwest  the east-west gateway: 10.244.0.10 in the cluster, 10.250.0.11:15443 on the edge
    ml-cluster1-sleep     the client pod, 10.244.0.11 (a sidecar, no app: calls are made from here)
    ml-cluster1-echo0...  the echo Service's pods from 10.244.0.12 (ClusterIP 10.96.0.10:9080)
    ml-cluster2-...       the same addresses again (each network numbers its own pods); cluster2 also
                          runs the hello Service's pods (ClusterIP 10.96.0.11:9080 in both clusters)
    ml-vm                 the VM: 10.250.0.50 on the edge, its default route via cluster1's node;
                          Service vmapp.vm, ClusterIP 10.96.0.12:9080

    OUTLIER_DETECTION   the DestinationRule's outlierDetection the echo and hello Services carry
    Call                one call: who answered, whether it crossed networks, the three proxies' hops
    Failover            what failover() measured
    VM_GROUP            the VM's WorkloadGroup
    MultiClusterMesh    up, down, attach, status; call, failover, kill_pods, start_pods; hops, control_plane_of
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from meshlab.identity.authority import TrustDomainAuthority
from meshlab.identity.spiffeid import SpiffeId, TrustDomain
from meshlab.intercept import build_rules
from meshlab.lab import hops, kubelet, network
from meshlab.lab.client import get_once
from meshlab.lab.composition import Composition
from meshlab.lab.netns import LabError, LabUsageError, NetNS
from meshlab.lab.processes import ProcessRecord
from meshlab.lab.spec import APP_PORT, DEFAULT_CAPTURE, DEFAULT_PREFIX, FIRST_POD_HOST, SERVICE_NETWORK, SIDECAR_GID, SIDECAR_UID, Pod
from meshlab.lab.state import LabState, read_state
from meshlab.lab.teardown import cleanup
from meshlab.lab.traffic import Sample, paced
from meshlab.multicluster.endpoints import EastWestGateway, Endpoint, split_horizon
from meshlab.multicluster.locality import Locality, failover_priorities
from meshlab.multicluster.workloads import Controller, Service, ServicePort, WorkloadEntry, WorkloadGroup, endpoints_of
from meshlab.xds import DebounceOptions
from meshlab.xds.outbound import AUTO_PASSTHROUGH_PORT, EASTWEST_LABEL, ClusterIPService, EdsEndpoint
from meshlab.xds.server import ControlPlaneThread

MAX_CLUSTERS = 4
MAX_PODS = 8
XDS_PORT = 15010
SERVICE_PORT = 9080
NAMESPACE = "default"
TRUST_DOMAIN = "cluster.local"
SERVICES = {"echo": f"{SERVICE_NETWORK}.10", "hello": f"{SERVICE_NETWORK}.11", "vmapp": f"{SERVICE_NETWORK}.12"}
VM_IP = f"{network.EDGE_NETWORK}.50"
VM_NETWORK = "network1"
VM_GROUP = f"""\
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {{name: vmapp, namespace: vm}}
spec:
  metadata:
    labels: {{app: vmapp}}
  template:
    serviceAccount: vmapp
    network: {VM_NETWORK}
    locality: region1/zone1
    ports: {{http: {APP_PORT}}}
"""
#: The DestinationRule's trafficPolicy.outlierDetection as istiod writes it into Envoy's cluster
#: (cluster_traffic_policy.go applyOutlierDetection): consecutive5xxErrors 1 -> consecutive5xx 1 (and
#: enforcing 100%, Envoy's default), interval, baseEjectionTime, maxEjectionPercent. Istio's locality
#: failover task uses consecutive5xxErrors 1, interval 1s, baseEjectionTime 1m; here 5 s, so a run
#: sees traffic come back, and maxEjectionPercent 100 (Envoy's default 10% would let no host of a
#: small cluster be ejected). Istio also turns success-rate detection off, which meshlab does not model.
OUTLIER_DETECTION = {"consecutive5xx": 1, "interval": "1s", "baseEjectionTime": "5s", "maxEjectionPercent": 100}


def fqdn(service: str) -> str:
    return f"{service}.{'vm' if service == 'vmapp' else NAMESPACE}.svc.cluster.local"


@dataclass(frozen=True)
class Call:
    """``answered_by`` the pod; ``crossed`` whether it went through an east-west gateway; ``hops`` the
    caller's sidecar's, the gateway's (when crossed) and the answering pod's sidecar's records."""

    service: str
    caller: str
    answered_by: str
    crossed: bool
    latency_us: float
    hops: tuple[dict, ...]


@dataclass(frozen=True)
class Failover:
    """``service``'s pods in ``cluster`` were killed at ``kill_at`` and started again at ``restart_at``
    (seconds since the first request); ``samples`` are the requests (``meshlab.lab.traffic.Sample``)."""

    service: str
    cluster: str
    kill_at: float
    restart_at: float
    samples: tuple[Sample, ...]
    events: tuple[dict, ...]

    @property
    def requests_lost(self) -> int:
        return sum(sample.cluster is None for sample in self.samples)

    @property
    def failed_over_s(self) -> float | None:
        """From the kill to the first request answered by another cluster."""
        away = [s.t for s in self.samples if s.t >= self.kill_at and s.cluster not in (None, self.cluster)]
        return away[0] - self.kill_at if away else None

    @property
    def back_s(self) -> float | None:
        """From the restart to the first request answered at home again."""
        home = [s.t for s in self.samples if s.t >= self.restart_at and s.cluster == self.cluster]
        return home[0] - self.restart_at if home else None

    def __str__(self) -> str:
        def seconds(value: float | None) -> str:
            return f"{value:.2f} s" if value is not None else "not within the run"
        return (f"{len(self.samples)} requests to {self.service}; {self.cluster}'s pods killed at {self.kill_at:.2f} s: "
                f"{self.requests_lost} lost, failed over after {seconds(self.failed_over_s)}; restarted at {self.restart_at:.2f} s, "
                f"home again after {seconds(self.back_s)}")


class MultiClusterMesh(Composition):
    """The live multi-primary, multi-network mesh, identified by its prefix; its control planes run in this process."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        super().__init__(prefix)
        self.names: list[str] = []
        self.pods: dict[str, Pod] = {}
        self.processes: list[tuple[str, ProcessRecord]] = []
        self.control_planes: dict[str, ControlPlaneThread] = {}
        self.outlier_detection: dict | None = OUTLIER_DETECTION
        self.registrar = Controller()  # istiod's auto-registration, for the VM
        self._executors: dict[str, ThreadPoolExecutor] = {}

    # -- layout ----------------------------------------------------------------------------
    @staticmethod
    def network_of(cluster: str) -> str:
        return f"network{cluster.removeprefix('cluster')}"

    @staticmethod
    def locality_of(cluster: str) -> Locality:
        k = cluster.removeprefix("cluster")
        return Locality(f"region{k}", f"zone{k}")

    def edge_ip(self, cluster: str) -> str:
        """The cluster's east-west gateway on the edge."""
        return f"{network.EDGE_NETWORK}.{10 + self.names.index(cluster) + 1}"

    def node_edge_ip(self, cluster: str) -> str:
        return f"{network.EDGE_NETWORK}.{20 + self.names.index(cluster) + 1}"

    def cluster_of(self, pod: str) -> str:
        """The cluster a pod runs in ("vm" for the VM, which is in none)."""
        return pod.partition("-")[0]

    def network_of_pod(self, pod: str) -> str:
        return VM_NETWORK if pod == "vm" else self.network_of(self.cluster_of(pod))

    def plane_of(self, pod: str) -> str:
        """The cluster whose control plane configures the pod's proxy (the VM's: cluster1's)."""
        return self.names[0] if pod == "vm" else self.cluster_of(pod)

    # -- life cycle ------------------------------------------------------------------------
    def up(self, clusters: int = 2, pods: int = 2, vm: bool = True, outlier_detection: dict | None = OUTLIER_DETECTION,
           down_at_exit: bool = False) -> MultiClusterMesh:
        """Create the edge, the clusters (nodes, east-west gateways, pods), their control planes and
        proxies, and (``vm``) the VM, registered as istiod would; wait until every proxy has its
        configuration. ``pods``: echo pods per cluster (the hello Service's live in the last cluster).
        Undoes everything on failure."""
        if os.geteuid() != 0:
            raise LabError("a multi-cluster mesh needs root (its control planes and client enter the lab's namespaces); run it as root")
        if not 2 <= clusters <= MAX_CLUSTERS:
            raise LabUsageError(f"a multi-cluster mesh has 2 to {MAX_CLUSTERS} clusters, not {clusters}")
        if not 1 <= pods <= MAX_PODS:
            raise LabUsageError(f"a cluster runs 1 to {MAX_PODS} echo pods, not {pods}")
        self.refuse_existing()
        self.names = [f"cluster{k}" for k in range(1, clusters + 1)]
        self.outlier_detection = outlier_detection

        def build() -> None:
            self.state_dir.mkdir(exist_ok=True)
            self._wire(pods, vm)
            self._issue_svids()
            for name in self.names:
                plane = ControlPlaneThread(DebounceOptions())
                self.control_planes[name] = plane
                # on every address of the node: the pods reach it on the bridge, the VM on the edge
                plane.start(XDS_PORT, "0.0.0.0", enter=NetNS(self._node(name), self.host).enter)
            self._publish()
            self._start(list(self.pods.values()))
            self._wait_connected()
            if vm:
                self._register_vm()
        return self.bring_up(build, down_at_exit)

    def _node(self, cluster: str) -> str:
        return network.node_name(f"{self.prefix}-{cluster}", 0)

    def _wire(self, echo_pods: int, vm: bool) -> None:
        """The edge; per cluster its node (on the edge, masquerading), east-west gateway and pods; the VM."""
        network.create_edge(self.host, self.prefix)
        links = itertools.count()
        for name in self.names:
            cluster = f"{self.prefix}-{name}"
            node = network.create_node(self.host, cluster, 0)
            network.wire_to_edge(self.host, self.prefix, node.name, self.node_edge_ip(name), next(links), interface="edge0")
            # what a node's SNAT does for pods reaching another network (kind: the node's address)
            node.run(["iptables-restore", "--noflush"], stdin=f"*nat\n-A POSTROUTING -s {network.POD_NETWORK}.0.0/24 -o edge0 -j MASQUERADE\nCOMMIT\n")
            members = ["eastwest", "sleep", *(f"echo{i}" for i in range(echo_pods))]
            if name == self.names[-1]:
                members += ["hello0"]
            for index, member in enumerate(members):
                ip = f"{network.POD_NETWORK}.0.{FIRST_POD_HOST + index}"
                namespace = network.wire_pod(self.host, cluster, member, 0, ip, index)
                app = member.rstrip("0123456789")
                if member == "eastwest":
                    network.wire_to_edge(self.host, self.prefix, namespace.name, self.edge_ip(name), next(links), interface="eth1")
                    labels = {EASTWEST_LABEL[0]: EASTWEST_LABEL[1], "topology.istio.io/network": self.network_of(name)}
                else:
                    namespace.run(["iptables-restore", "--noflush"], stdin=build_rules(DEFAULT_CAPTURE).restore_text(4))
                    labels = {"app": app}
                ports = (AUTO_PASSTHROUGH_PORT,) if member == "eastwest" else () if member == "sleep" else (APP_PORT,)
                self.pods[f"{name}-{member}"] = Pod(f"{name}-{member}", namespace.name, ip, ports, member != "eastwest",
                                                    k8s_namespace=NAMESPACE, service_account=app, labels=labels, host=self.host)
        if vm:
            namespace = network.wire_to_edge(self.host, self.prefix, f"{self.prefix}-vm", VM_IP, next(links))
            # cluster1's node is the VM's router (as the VPC's is): to cluster1's pods, and by default
            self.host.ip_batch(namespace.name, ["link set lo up", f"route add default via {self.node_edge_ip(self.names[0])}"])
            namespace.run(["iptables-restore", "--noflush"], stdin=build_rules(DEFAULT_CAPTURE).restore_text(4))
            group = WorkloadGroup.parse(VM_GROUP)
            self.pods["vm"] = Pod("vm", namespace.name, VM_IP, (APP_PORT,), True, k8s_namespace=group.namespace,
                                  service_account=group.template.service_account, labels=dict(group.labels), host=self.host)

    def _issue_svids(self) -> None:
        """Every meshed pod's X509-SVID (spiffe://cluster.local/ns/<namespace>/sa/<service account>) and the bundle, as files
        only root reads; the sidecar reads them before it drops to uid 1337."""
        authority = TrustDomainAuthority(TrustDomain(TRUST_DOMAIN))
        bundle = self.state_dir / "bundle.pem"
        bundle.write_bytes(b"".join(self._pem(certificate) for certificate in authority.x509_bundle()))
        for pod in self.pods.values():
            if pod.sidecar:
                svid = authority.sign_x509_svid(SpiffeId(TrustDomain(TRUST_DOMAIN), f"/ns/{pod.k8s_namespace}/sa/{pod.service_account}"), dt.timedelta(hours=12))
                chain, key = svid.pem_files()
                self._tls_files(pod.name)["chain"].write_bytes(chain)
                self._tls_files(pod.name)["key"].touch(mode=0o600)
                self._tls_files(pod.name)["key"].write_bytes(key)

    @staticmethod
    def _pem(certificate) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding
        return certificate.public_bytes(Encoding.PEM)

    def _tls_files(self, pod: str) -> dict[str, Path]:
        return {"chain": self.state_dir / f"{pod}-svid.pem", "key": self.state_dir / f"{pod}-svid.key", "bundle": self.state_dir / "bundle.pem"}

    def _endpoints(self, service: str) -> list[Endpoint]:
        """Every cluster's running pods of ``service``, as each control plane reads them from every
        registry, and the WorkloadEntries its selector selects (the VM's, once registered)."""
        pods = [Endpoint(pod.ip, APP_PORT, self.cluster_of(pod.name), self.network_of(self.cluster_of(pod.name)), str(self.locality_of(self.cluster_of(pod.name))))
                for pod in self.pods.values() if pod.name != "vm" and pod.labels.get("app") == service and self._alive(pod.name)]
        entries = {entry.address: entry for entry in self.registrar.entries.values()}
        selector = Service(service, "vm" if service == "vmapp" else NAMESPACE, {"app": service}, (ServicePort(SERVICE_PORT, "http", "TCP", "http"),))
        vms = [Endpoint(e.address, e.port, "", entries[e.address].network, entries[e.address].locality)
               for e in endpoints_of(selector, [], list(self.registrar.entries.values())) if self._alive("vm")]
        return pods + vms

    def _register_vm(self) -> WorkloadEntry:
        """What istiod's auto-registration does when the VM's proxy connects: the WorkloadEntry from its
        WorkloadGroup, then every control plane pushes the Service that selects it."""
        vm = self.pods["vm"]
        entry = self.registrar.register(WorkloadGroup.parse(VM_GROUP), vm.ip, dt.datetime.now(dt.timezone.utc), network=VM_NETWORK,
                                        identity=(vm.k8s_namespace, vm.service_account))
        self._publish()
        for plane in self.control_planes.values():
            plane.wait_settled()
        return entry

    def services_for(self, cluster: str) -> list[ClusterIPService]:
        """What ``cluster``'s control plane serves: each Service's split-horizon endpoints with their
        failover priorities for the cluster's locality, and the DestinationRule's outlier detection."""
        gateways = [EastWestGateway(self.network_of(name), self.edge_ip(name), AUTO_PASSTHROUGH_PORT, name) for name in self.names]
        home = self.locality_of(cluster)
        services = []
        for service, cluster_ip in SERVICES.items():
            split = split_horizon(self._endpoints(service), self.network_of(cluster), gateways)
            priorities = failover_priorities(home, [Locality.parse(e.locality) for e in split])
            endpoints = tuple(EdsEndpoint(e.address, e.port, e.weight, e.locality, priorities[Locality.parse(e.locality)], e.network, e.tls_mode) for e in split)
            namespace = fqdn(service).split(".")[1]
            services.append(ClusterIPService(fqdn(service), namespace, cluster_ip, SERVICE_PORT, endpoints, self.outlier_detection, self.network_of(cluster)))
        return services

    def _publish(self) -> None:
        """Every control plane's services, from every cluster's registry (after pods come or go)."""
        for name, plane in self.control_planes.items():
            plane.set_cluster_ip_services(self.services_for(name))

    def _processes(self, pods: list[Pod]) -> list[dict]:
        processes = []
        for pod in pods:
            log = str(self._log(pod.name, "sidecar"))
            server = f"{self.node_edge_ip(self.names[0])}:{XDS_PORT}" if pod.name == "vm" else f"{network.gateway(0)}:{XDS_PORT}"
            xds = {"server": server, "node": f"{pod.k8s_namespace}/{pod.name}", "labels": pod.labels}
            if pod.sidecar:
                xds["tls"] = {part: str(path) for part, path in self._tls_files(pod.name).items()}
            else:
                xds["eastwest_port"] = AUTO_PASSTHROUGH_PORT
            processes.append({"role": "sidecar", "pod": pod.name, "netns": pod.netns, "log": log, "uid": SIDECAR_UID, "gid": SIDECAR_GID,
                              "mark": None, "services": None, "cgroup": None, "xds": xds})
            if pod.app_port == APP_PORT:
                processes.append({"role": "app", "pod": pod.name, "netns": pod.netns, "log": str(self._log(pod.name, "app")), "ports": [APP_PORT], "cgroup": None})
        return processes

    def _start(self, pods: list[Pod]) -> None:
        processes = self._processes(pods)
        try:
            self.processes += kubelet.launch(self.host, processes)
        finally:
            self._save()
        kubelet.wait_ready(processes, self.state_dir)

    def _wait_connected(self, timeout: float = 30.0) -> None:
        """Until every proxy of every cluster holds an ADS stream and has answered every response."""
        for name, plane in self.control_planes.items():
            expected = sum(self.plane_of(pod) == name and self._alive(pod) for pod in self.pods)
            deadline = time.monotonic() + timeout
            while plane.call(lambda p=plane: sum(c.workload is not None for c in p.plane.connections.values())) < expected:
                if time.monotonic() > deadline:
                    raise LabError(f"not every proxy of {name} connected to its control plane within {timeout:.0f} s; see their logs in {self.state_dir}")
                time.sleep(0.02)
            plane.wait_settled(timeout)

    def _save(self) -> None:
        layout = {"names": self.names, "mesh": "multi-primary, multi-network", "outlier_detection": self.outlier_detection}
        LabState(self.prefix, pods=[pod.saved() for pod in self.pods.values()], processes=self.processes, clusters=layout).write(self.state_dir)

    def down(self) -> None:
        """Stop the client threads, every process and control plane; delete every namespace (idempotent)."""
        for executor in self._executors.values():
            executor.shutdown(wait=False, cancel_futures=True)
        self._executors.clear()
        cleanup(self.prefix, [process for _, process in self.processes])
        for plane in self.control_planes.values():
            plane.stop()
        self.control_planes.clear()
        self.pods.clear()
        self.processes.clear()

    # -- looking ---------------------------------------------------------------------------
    def _alive(self, pod: str) -> bool:
        """A pod is in the registry until it is killed (its processes not started yet count as alive)."""
        owned = [process for owner, process in self.processes if owner == pod]
        return not owned or any(process.alive() for process in owned)

    def pod(self, name: str) -> Pod:
        if name not in self.pods:
            raise LabUsageError(f"no pod {name!r}; pods are {', '.join(self.pods)}")
        return self.pods[name]

    def hops(self, pod: str) -> list[dict]:
        """A pod's proxy's hop records (``<cluster>-eastwest``: the gateway's), oldest first."""
        path = self._log(self.pod(pod).name, "sidecar")
        text = path.read_text() if path.exists() else ""
        return hops.parse(text[:text.rfind("\n") + 1])

    def outlier_events(self, pod: str) -> list[dict]:
        """The outlier detector's ejections and returns in a pod's proxy, oldest first."""
        path = self._log(self.pod(pod).name, "sidecar")
        return [json.loads(line) for line in path.read_text().splitlines() if '"outlier"' in line] if path.exists() else []

    def status(self) -> dict:
        return {"prefix": self.prefix, "model": "multi-primary, multi-network",
                "clusters": [{"name": name, "network": self.network_of(name), "locality": str(self.locality_of(name)),
                              "control_plane": f"{network.gateway(0)}:{XDS_PORT} in {self._node(name)}",
                              "eastwest_gateway": f"{self.edge_ip(name)}:{AUTO_PASSTHROUGH_PORT}",
                              "pods": [{"name": p.name, "ip": p.ip, "running": self._alive(p.name)} for p in self.pods.values() if self.cluster_of(p.name) == name]}
                             for name in self.names],
                "services": {fqdn(service): f"{ip}:{SERVICE_PORT}" for service, ip in SERVICES.items()}}

    def control_plane_of(self, cluster: str) -> ControlPlaneThread:
        if cluster not in self.control_planes:
            raise LabUsageError(f"no cluster {cluster!r}; clusters are {', '.join(self.names)}")
        return self.control_planes[cluster]

    # -- calling ---------------------------------------------------------------------------
    def _in_pod(self, pod: str, function, *args):
        namespace = self.pod(pod).namespace
        if namespace.name not in self._executors:
            self._executors[namespace.name] = ThreadPoolExecutor(1, thread_name_prefix=namespace.name, initializer=namespace.enter)
        return self._executors[namespace.name].submit(function, *args)

    def _service(self, service: str) -> str:
        if service not in SERVICES:
            raise LabUsageError(f"no service {service!r}; services are {', '.join(SERVICES)}")
        return SERVICES[service]

    def _client(self, caller: str) -> str:
        """The pod calls are made from: a cluster's sleep pod, or the VM."""
        if caller == "vm" and "vm" in self.pods:
            return "vm"
        if caller not in self.names:
            raise LabUsageError(f"no caller {caller!r}; callers are {', '.join(self.names)}" + (", vm" if "vm" in self.pods else ""))
        return f"{caller}-sleep"

    def call(self, service: str = "hello", caller: str = "cluster1") -> Call:
        """One request from ``caller`` (a cluster's sleep pod, or ``vm``) to ``service``'s ClusterIP, and
        the proxies' records of it."""
        cluster_ip = self._service(service)
        client = self._client(caller)
        since = time.time()
        reply = self._in_pod(client, get_once, cluster_ip, SERVICE_PORT).result(timeout=60)
        if reply.status != 200:
            raise LabError(f"{client} -> {service}: answered {reply.status}: {reply.body}")
        answered_by = reply.body["pod"]
        where = lambda pod: f"{pod}'s proxy (see {self._log(pod, 'sidecar')})"  # noqa: E731
        outbound = hops.wait_for(lambda: self.hops(client), where(client), 5.0, since, direction="outbound", original_dst=f"{cluster_ip}:{SERVICE_PORT}")
        inbound = hops.wait_for(lambda: self.hops(answered_by), where(answered_by), 5.0, since, direction="inbound")
        path = [outbound]
        home = self.network_of_pod(answered_by)
        crossed = home != self.network_of_pod(client)
        if crossed:
            gateway = f"cluster{home.removeprefix('network')}-eastwest"
            path.append(hops.wait_for(lambda: self.hops(gateway), where(gateway), 5.0, since, direction="eastwest", sni=outbound["sni"]))
        path.append(inbound)
        return Call(service, client, answered_by, crossed, reply.latency_us, tuple(path))

    # -- failures --------------------------------------------------------------------------
    def kill_pods(self, cluster: str, service: str = "echo") -> list[str]:
        """SIGKILL ``service``'s pods in ``cluster`` (app and sidecar), as a zone outage would; the
        registry is not told (Kubernetes takes its time): outlier detection has to notice."""
        self.control_plane_of(cluster)
        self._service(service)
        killed = [pod.name for pod in self.pods.values() if self.cluster_of(pod.name) == cluster and pod.labels.get("app") == service]
        for owner, process in self.processes:
            if owner in killed and process.alive():
                os.kill(process.pid, signal.SIGKILL)
        return killed

    def start_pods(self, pods: list[str]) -> None:
        """Start killed pods again (their logs kept as ``.1``); returns once they listen."""
        for name in pods:
            if any(owner == name and process.alive() for owner, process in self.processes):
                raise LabUsageError(f"{name} is running; kill it first")
            for role in ("sidecar", "app"):
                log = self._log(name, role)
                if log.exists():
                    log.replace(log.with_name(log.name + ".1"))
        self.processes = [(owner, process) for owner, process in self.processes if owner not in pods]
        self._start([self.pod(name) for name in pods])
        self._wait_connected()

    def failover(self, service: str = "echo", cluster: str = "cluster1", before_s: float = 1.0, down_s: float = 2.0, after_s: float = 7.0,
                 pace_ms: float = 20.0) -> Failover:
        """Requests from ``cluster``'s sleep pod every ``pace_ms``, each on a new connection; ``service``'s
        pods in ``cluster`` killed after ``before_s``, left dead ``down_s``, started again, then ``after_s`` more."""
        cluster_ip = self._service(service)
        client = self._client(cluster)
        stop = threading.Event()
        started = time.monotonic()
        wall = time.time()
        sending = self._in_pod(client, self._send, cluster_ip, started, pace_ms / 1000, stop)
        try:
            time.sleep(before_s)
            kill_at = time.monotonic() - started
            killed = self.kill_pods(cluster, service)
            time.sleep(down_s)
            restart_at = time.monotonic() - started
            self.start_pods(killed)
            time.sleep(after_s)
        finally:
            stop.set()
            samples = sending.result(timeout=60)
        events = [{**event, "t": round(event["time"] - wall, 3)} for event in self.outlier_events(client) if event.get("time", 0) >= wall]
        return Failover(service, cluster, kill_at, restart_at, tuple(samples), tuple(events))

    def _send(self, cluster_ip: str, started: float, pace: float, stop: threading.Event) -> list[Sample]:
        """Paced requests (``meshlab.lab.traffic``), each on a new connection, as a client pod would."""
        def send(_: int) -> tuple[int, str | None]:
            reply = get_once(cluster_ip, SERVICE_PORT, timeout=2.0)
            return reply.status, self.cluster_of(reply.body["pod"]) if reply.status == 200 else None

        return paced(send, started, pace, stop=stop)

    @classmethod
    def attach(cls, prefix: str = DEFAULT_PREFIX) -> MultiClusterMesh:
        """The running mesh's layout from its state file (for status and cleanup; its control planes
        live in the process that started it)."""
        mesh = cls(prefix)
        state = read_state(mesh.state_dir)
        if state is None or not state.clusters or "mesh" not in state.clusters:
            raise LabUsageError(f"no multi-cluster mesh with prefix {prefix!r} is running (start one with `meshlab lab up --clusters 2 --mesh`)")
        mesh.names, mesh.outlier_detection = state.clusters["names"], state.clusters["outlier_detection"]
        mesh.pods = {pod["name"]: Pod(**{**pod, "ports": tuple(pod["ports"])}) for pod in state.pods}
        mesh.processes = state.processes
        return mesh

"""A live xDS control plane: ADS over gRPC, fed by the same Debouncer and PushQueue as the simulator.

Configuration changes become PushRequests for the Debouncer (routes and clusters full, endpoints
incremental). A debounced push takes a new snapshot (a new version) and enqueues every connected
client in the PushQueue; PUSH_THROTTLE sender tasks dequeue, send the client every resource type
it watches (endpoints only, for an incremental push) and mark it done once written.

Each ADS stream is one client ("proxy"). Requests are read as gRPC's xDS client sends them: a
request without a nonce subscribes (answered at once); one carrying the nonce of our last response
for its type is an ACK, or a NACK when it has ``error_detail`` (the client keeps its last good
configuration), and if its resource list changed it is also a subscription change, answered again;
one carrying an older nonce is stale and ignored, as Istio does, since a newer response is already
on its way. Every request and response is recorded in ``exchanges`` for notebooks. A request naming
``*`` (or a first LDS/CDS request naming nothing) subscribes to every resource of its type, as Envoy
does: the xDS protocol's wildcard (Istio's pkg/xds/server.go IsWildcardTypeURL).

Every connection is scoped, as istiod scopes proxies (``meshlab.scoping``): its node id names its
workload, ``namespace/name`` (an id without ``/`` is a workload of namespace ``default``), its node
metadata ``LABELS`` its labels (Istio's NodeMetadata.Labels, pkg/model/proxy.go); the Sidecar that
selects it decides which services' resources it is sent (a PushContext per push, a SidecarScope per
connection; with no Sidecar, everything). A push goes only to the connections whose new or previous
scope depends on what changed (Istio 1.30.3 pilot/pkg/xds/proxy_dependencies.go and ads.go
pushConnection: the scope is recomputed first, then ProxyNeedsPush asks both). Two kinds of services
are served: a proxyless ``Service`` (scoped as the hostname of its name, in namespace ``default``) and
a ``ClusterIPService`` with Istio's outbound resources for a sidecar (``meshlab.xds.outbound``).

    Connection         one ADS stream's state: its workload, scope, subscriptions and nonces
    workload_of        a node (id and metadata) -> the Workload whose Sidecar scopes it
    ControlPlane       the asyncio control plane: start, stop, set_service, set_endpoints,
                       set_cluster_ip_services, set_sidecar, set_fallback; sent_to, last_sent
    ControlPlaneThread the same, run on its own thread for synchronous callers (tests, notebooks)
    bootstrap          the bootstrap JSON a gRPC client needs to find this control plane
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import json_format

from meshlab.loopthread import LoopThread
from meshlab.scoping.scope import PushContext, ServicePort, SidecarScope, Workload, needs_push
from meshlab.scoping.scope import Service as RegistryService
from meshlab.scoping.sidecar import Sidecar
from meshlab.xds import outbound
from meshlab.xds.clock import AsyncioClock
from meshlab.xds.debounce import DebounceOptions, Debouncer
from meshlab.xds.outbound import ClusterIPService
from meshlab.xds.pushqueue import AsyncPushQueue, push_throttle
from meshlab.xds.pushrequest import PushRequest
from meshlab.xds.resources import CLUSTER, ENDPOINT, LISTENER, SHORT, TYPE_URLS, MeshConfig, Service, build

#: The namespace of a node id without one, and of proxyless services (which carry none).
DEFAULT_NAMESPACE = "default"
WILDCARD = "*"
#: The resource types a first request naming nothing subscribes to all of (IsWildcardTypeURL).
WILDCARD_TYPES = (LISTENER, CLUSTER)
#: Slime's EnvoyFilter that sends unknown traffic to the global sidecar (charts/global-sidecar), as a config key.
FALLBACK_KEY = "EnvoyFilter/istio-system/to-global-sidecar"


def load_config(data: dict) -> list[Service]:
    """Services from ``{"services": [{"name", "routes": {cluster: weight}, "clusters": {cluster: ["host:port"]}}]}``."""
    if not isinstance(data, dict) or not isinstance(data.get("services"), list):
        raise ValueError('a control-plane config is {"services": [{"name", "routes", "clusters"}]}')
    services = []
    for index, entry in enumerate(data["services"]):
        missing = [key for key in ("name", "routes", "clusters") if key not in entry]
        if missing:
            raise ValueError(f"services[{index}]: missing field {missing[0]!r}")
        unknown = sorted(set(entry["routes"]) - set(entry["clusters"]))
        if unknown:
            raise ValueError(f"services[{index}] ({entry['name']}): route to unknown cluster {unknown[0]!r}")
        services.append(Service(entry["name"], dict(entry["routes"]), {k: list(v) for k, v in entry["clusters"].items()}))
    return services


def bootstrap(server: int | str, node_id: str = "meshlab-client", path: Path | None = None, metadata: dict | None = None) -> dict:
    """What GRPC_XDS_BOOTSTRAP must point to; written to ``path`` when given. ``server``: the control
    plane's port on loopback, or a gRPC target such as ``unix:///.../XDS`` (Istio's agent's socket).
    ``metadata`` is the node's (istiod reads GENERATOR, NAMESPACE, ... from it)."""
    node = {"id": node_id, "cluster": "meshlab", "locality": {"zone": "meshlab"}} | ({"metadata": metadata} if metadata else {})
    config = {
        "xds_servers": [{"server_uri": f"127.0.0.1:{server}" if isinstance(server, int) else server, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
        "node": node,
    }
    if path is not None:
        Path(path).write_text(json.dumps(config))
    return config


@dataclass(eq=False)
class Connection:
    id: int
    node: str = ""
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    watched: dict[str, set[str]] = field(default_factory=dict)
    last_nonce: dict[str, str] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)  # nonces the client has ACKed or NACKed
    workload: Workload | None = None  # from the first request's node
    scope: SidecarScope | None = None

    def answered_all(self) -> bool:
        """The client has ACKed or NACKed the latest response of every type it watches."""
        return all(self.last_nonce.get(t) in self.answered for t in self.watched)


def workload_of(node) -> Workload:
    """The workload a node (envoy.config.core.v3.Node) stands for: ``namespace/name`` from its id,
    labels from its metadata's ``LABELS``."""
    namespace, _, name = node.id.rpartition("/")
    labels = json_format.MessageToDict(node.metadata).get("LABELS", {}) if node.HasField("metadata") else {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ValueError(f"node {node.id!r}: metadata LABELS must map label names to strings, got {labels!r}")
    return Workload(namespace or DEFAULT_NAMESPACE, name, dict(labels))


class ControlPlane(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, options: DebounceOptions = DebounceOptions(), throttle: int = 0, cpus: int = 2) -> None:
        self.options, self.throttle = options, push_throttle(throttle, cpus)
        self.config = MeshConfig()
        self.snapshot = MeshConfig()
        self.cluster_ip_services: dict[str, ClusterIPService] = {}  # hostname -> service
        self.sidecars: dict[str, Sidecar] = {}  # config key -> Sidecar
        self.fallback = outbound.PASSTHROUGH_CLUSTER
        # what the last push took: ClusterIP services, Sidecars and the fallback, as the snapshot takes self.config
        self._pushed: tuple[dict[str, ClusterIPService], dict[str, Sidecar], str] = ({}, {}, self.fallback)
        self.push_context = PushContext([])
        self.version = 0
        self.connections: dict[int, Connection] = {}
        self.exchanges: list[dict] = []
        self.pushes: list[dict] = []
        self._ids = itertools.count(1)
        self._nonces = itertools.count(1)
        self._built: dict = {}
        self.server = None
        self._senders: list[asyncio.Task] = []
        self.port = 0
        self.on_exchange = None  # called with each exchange record (e.g. to print them live)

    # -- life cycle ------------------------------------------------------------------------
    async def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Listen on ``host:port`` (0: any free port) in the calling thread's network namespace."""
        self.clock = AsyncioClock()
        self.queue = AsyncPushQueue()
        self.debouncer = Debouncer(self.clock, self._push, self.options)
        self.server = grpc.aio.server()
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        await self.server.start()
        self._senders = [asyncio.create_task(self._sender()) for _ in range(self.throttle)]
        return self.port

    async def stop(self) -> None:
        for task in self._senders:
            task.cancel()
        if self.server is not None:
            await self.server.stop(grace=0.5)

    # -- configuration changes -------------------------------------------------------------
    def set_service(self, service: Service) -> None:
        """A route or cluster change: a full push (new listeners, routes and clusters)."""
        self.set_services([service])

    def set_services(self, services: list[Service]) -> None:
        """Several services changed at once (one configuration event, as one kubectl apply)."""
        for service in services:
            self.config.services[service.name] = copy.deepcopy(service)
        self.debouncer.update(PushRequest(True, frozenset(f"Service/{s.name}" for s in services), {"config": 1}, self.clock.now_ms()))

    def set_endpoints(self, cluster: str, endpoints: list[str]) -> None:
        """An endpoint change: an incremental (EDS-only) push."""
        owner = next((s for s in self.config.services.values() if cluster in s.clusters), None)
        if owner is None:
            raise KeyError(f"no cluster {cluster!r}; clusters are {', '.join(self.config.clusters())}")
        owner.clusters[cluster] = list(endpoints)
        self.debouncer.update(PushRequest(False, frozenset({f"Endpoints/{cluster}"}), {"endpoint": 1}, self.clock.now_ms()))

    def set_cluster_ip_services(self, services: list[ClusterIPService]) -> None:
        """Kubernetes Services added or changed (their endpoints too): a full push to the proxies whose
        scope holds them."""
        for service in services:
            self.cluster_ip_services[service.hostname] = service
        self.debouncer.update(PushRequest(True, frozenset(s.key for s in services), {"config": 1}, self.clock.now_ms()))

    def set_sidecar(self, sidecar: Sidecar) -> None:
        """A Sidecar created or changed: a full push to the proxies it applies to, or applied to before."""
        self.sidecars[sidecar.key] = sidecar
        self.debouncer.update(PushRequest(True, frozenset({sidecar.key}), {"config": 1}, self.clock.now_ms()))

    def set_fallback(self, cluster: str) -> None:
        """What Slime's ``to-global-sidecar`` EnvoyFilter does: virtualOutbound's default chain sends
        to ``cluster`` (the global sidecar's) instead of PassthroughCluster; an EnvoyFilter in the root
        namespace concerns every proxy."""
        self.fallback = cluster
        self.debouncer.update(PushRequest(True, frozenset({FALLBACK_KEY}), {"config": 1}, self.clock.now_ms()))

    def _push(self, request: PushRequest, merged: int, done) -> None:
        """Istio's Push: a new snapshot (a new version) and PushContext, then each client whose scope
        depends on the change enqueued (every client for a change with no config keys)."""
        self.version += 1
        self.snapshot = copy.deepcopy(self.config)
        self._pushed = (dict(self.cluster_ip_services), dict(self.sidecars), self.fallback)
        self.push_context = PushContext(self._registry(), self._pushed[1].values())
        self._built = {}  # resources are built once per snapshot and type, then shared by every client
        pushed = 0
        for connection in self.connections.values():
            previous = connection.scope
            if connection.workload is not None:
                connection.scope = self.push_context.sidecar_scope(connection.workload)
            if self._needs_push(request, connection, previous):
                self.queue.enqueue(connection, replace(request))
                pushed += 1
        self.pushes.append({"t_ms": self.clock.now_ms(), "version": self.version, "full": request.full, "configs": sorted(request.configs or ()),
                            "merged_events": merged, "clients": len(self.connections), "pushed": pushed})
        done()

    def _registry(self) -> list[RegistryService]:
        """The snapshot's services as istiod's registry holds them, for scoping."""
        proxyless = [RegistryService(name, DEFAULT_NAMESPACE, endpoints=sum(map(len, s.clusters.values()))) for name, s in self.snapshot.services.items()]
        return proxyless + [RegistryService(s.hostname, s.namespace, (ServicePort(s.port, "TCP", "tcp"),), len(s.endpoints)) for s in self._pushed[0].values()]

    def _istio_key(self, config: str) -> str:
        """A change's key as istiod would name it: a proxyless Service's and its endpoints' changes are
        its ServiceEntry's (EDS updates carry the service's key too)."""
        kind, _, name = config.partition("/")
        if kind == "Endpoints":
            name = next((s.name for s in self.snapshot.services.values() if name in s.clusters), name)
        return f"ServiceEntry/{DEFAULT_NAMESPACE}/{name}" if kind in ("Service", "Endpoints") else config

    def _needs_push(self, request: PushRequest, connection: Connection, previous: SidecarScope | None) -> bool:
        """ProxyNeedsPush (``meshlab.scoping.scope.needs_push``) on the change's keys as istiod names them;
        a proxyless client, with no workload, hears of everything."""
        if connection.scope is None:
            return True
        keys = None if request.configs is None else [self._istio_key(config) for config in request.configs]
        return needs_push(connection.scope, keys, connection.workload, previous)

    async def _sender(self) -> None:
        while True:
            connection, request = await self.queue.dequeue()
            try:
                types = [t for t in connection.watched if request.full or t == ENDPOINT]
                await asyncio.gather(*(self._respond(connection, type_url) for type_url in types))
            finally:
                self.queue.mark_done(connection)

    # -- the ADS stream --------------------------------------------------------------------
    async def StreamAggregatedResources(self, request_iterator, context):
        connection = Connection(next(self._ids))
        self.connections[connection.id] = connection
        writer = asyncio.create_task(self._write(connection, context))
        try:
            async for request in request_iterator:
                await self._on_request(connection, request)
        finally:
            writer.cancel()
            self.connections.pop(connection.id, None)

    async def _write(self, connection: Connection, context) -> None:
        while True:
            response, written = await connection.outbox.get()
            await context.write(response)
            written.set_result(None)

    async def _on_request(self, connection: Connection, request: discovery_pb2.DiscoveryRequest) -> None:
        if connection.workload is None and request.HasField("node"):
            connection.node = request.node.id
            connection.workload = workload_of(request.node)
            connection.scope = self.push_context.sidecar_scope(connection.workload)
        type_url, names = request.type_url, set(request.resource_names)
        record = {"t_ms": round(self.clock.now_ms(), 3), "node": connection.node, "connection": connection.id, "direction": "request", "type": SHORT.get(type_url, type_url),
                  "version": request.version_info, "nonce": request.response_nonce, "resources": sorted(names)}
        if request.response_nonce and request.response_nonce != connection.last_nonce.get(type_url):
            record["kind"] = "stale (ignored)"  # it answers an older response; a newer one is on its way
            self._record(record)
            return
        if request.response_nonce:
            connection.answered.add(request.response_nonce)
            if request.HasField("error_detail"):
                record.update(kind="NACK", error=request.error_detail.message)
            else:
                record["kind"] = "ACK"
            self._record(record)
            if not names and connection.watched.get(type_url) == {WILDCARD}:
                names = {WILDCARD}  # Envoy's ACKs of a wildcard subscription name nothing, as its first request did
            if names == connection.watched.get(type_url):
                return
            record["kind"] += " + subscription change"
        else:
            record["kind"] = "subscribe"
            self._record(record)
            if not names and type_url in WILDCARD_TYPES and type_url not in connection.watched:
                names = {WILDCARD}
        connection.watched[type_url] = names
        await self._respond(connection, type_url)

    def _resources(self, type_url: str) -> dict[str | None, dict]:
        """This snapshot's resources of ``type_url`` by the hostname they belong to (None: Istio's own,
        sent to every proxy that asks), built once and shared by every client."""
        if type_url not in self._built:
            cluster_ip, _, fallback = self._pushed
            built: dict[str | None, dict] = {name: build(type_url, MeshConfig({name: service})) for name, service in self.snapshot.services.items()}
            built.update((s.hostname, outbound.build(type_url, s)) for s in cluster_ip.values())
            built[None] = outbound.build_own(type_url, fallback)
            self._built[type_url] = built
        return self._built[type_url]

    def sent_to(self, connection: Connection, type_url: str) -> dict:
        """The resources of ``type_url`` ``connection``'s scope lets it see, by name; an east-west
        gateway (labelled ``istio: eastwestgateway``) gets its AUTO_PASSTHROUGH listener and SNI clusters."""
        visible = connection.scope.hostnames if connection.scope is not None else None
        label, value = outbound.EASTWEST_LABEL
        if connection.workload is not None and connection.workload.labels.get(label) == value:
            services = [s for s in self._pushed[0].values() if visible is None or s.hostname in visible]
            return outbound.build_eastwest(type_url, services)
        return {name: resource for hostname, resources in self._resources(type_url).items()
                if hostname is None or visible is None or hostname in visible for name, resource in resources.items()}

    async def _respond(self, connection: Connection, type_url: str) -> None:
        resources = self.sent_to(connection, type_url)
        wanted = connection.watched.get(type_url, set())
        if WILDCARD in wanted:
            wanted = (wanted - {WILDCARD}) | set(resources)
        chosen = [resources[name] for name in sorted(wanted) if name in resources]
        nonce = str(next(self._nonces))
        connection.last_nonce[type_url] = nonce
        response = discovery_pb2.DiscoveryResponse(version_info=str(self.version), resources=chosen, type_url=type_url, nonce=nonce)
        self._record({"t_ms": round(self.clock.now_ms(), 3), "node": connection.node, "connection": connection.id, "direction": "response", "kind": "response",
                      "type": SHORT[type_url], "version": str(self.version), "nonce": nonce, "resources": sorted(n for n in wanted if n in resources)})
        written = asyncio.get_running_loop().create_future()
        await connection.outbox.put((response, written))
        await written

    # -- observing -------------------------------------------------------------------------
    def _record(self, record: dict) -> None:
        self.exchanges.append(record)
        if self.on_exchange is not None:
            self.on_exchange(record)

    def settled(self) -> bool:
        """Nothing left to push, and every client has ACKed or NACKed the current version of every
        type it watches (a NACKing client keeps its last good version)."""
        idle = self.debouncer.request is None and self.debouncer.free and not self.queue.pending() and not self.queue.processing()
        return idle and all(c.answered_all() for c in self.connections.values())

    def last_sent(self, node: str) -> dict[str, list[str]]:
        """The names of the resources last sent to the client ``node`` (its node id), per type (LDS,
        RDS, CDS, EDS), read from ``exchanges``."""
        sent: dict[str, list[str]] = {}
        for record in self.exchanges:
            if record["direction"] == "response" and record["node"] == node:
                sent[record["type"]] = record["resources"]
        return sent

    def clients_ready(self) -> int:
        """Clients that watch all four types (listeners, routes, clusters, endpoints) and have answered
        every response: a proxyless client in that state has its whole configuration and can call."""
        return sum(1 for c in self.connections.values() if set(c.watched) == set(TYPE_URLS.values()) and c.answered_all())


class ControlPlaneThread:
    """A ControlPlane on its own event loop thread, with synchronous methods."""

    def __init__(self, options: DebounceOptions = DebounceOptions(), throttle: int = 0) -> None:
        self.plane = ControlPlane(options, throttle)
        self.runner = LoopThread("meshlab-xds")

    def start(self, port: int = 0, host: str = "127.0.0.1", enter=None) -> int:
        """Start the loop and listen; ``enter``, when given, runs first on the loop's thread (e.g.
        NetNS.enter, so that the control plane listens inside a network namespace)."""
        self.runner.start()
        try:
            if enter is not None:
                self.call(enter)
            return self.call(self.plane.start(port, host))
        except BaseException:
            self.stop()  # a start that fails (a port that cannot be bound) leaves no loop thread behind
            raise

    def stop(self) -> None:
        self.call(self.plane.stop())
        self.runner.stop()

    def call(self, work):
        """Run a coroutine, or a plain function, on the control plane's loop and return its result."""
        return self.runner.call(work)

    def set_service(self, service: Service) -> None:
        self.call(lambda: self.plane.set_service(service))

    def set_services(self, services: list[Service]) -> None:
        self.call(lambda: self.plane.set_services(services))

    def set_endpoints(self, cluster: str, endpoints: list[str]) -> None:
        self.call(lambda: self.plane.set_endpoints(cluster, endpoints))

    def set_cluster_ip_services(self, services: list[ClusterIPService]) -> None:
        self.call(lambda: self.plane.set_cluster_ip_services(services))

    def set_sidecar(self, sidecar: Sidecar) -> None:
        self.call(lambda: self.plane.set_sidecar(sidecar))

    def set_fallback(self, cluster: str) -> None:
        self.call(lambda: self.plane.set_fallback(cluster))

    def last_sent(self, node: str) -> dict[str, list[str]]:
        return self.call(lambda: self.plane.last_sent(node))

    def wait_settled(self, timeout: float = 10.0) -> float:
        """Wait until the pushes are out and every client has answered them; returns the seconds waited.
        (set_service and friends hand the change to the debouncer before they return, so a change is
        never missed here: settled() is false until its push is out and answered.)"""
        return self._wait_until(self.plane.settled, timeout, lambda: f"the clients did not answer version {self.plane.version}")

    def wait_for_clients(self, count: int = 1, timeout: float = 30.0) -> float:
        """Wait until ``count`` clients have their whole configuration (ControlPlane.clients_ready)."""
        return self._wait_until(lambda: self.plane.clients_ready() >= count, timeout,
                                lambda: f"{count} xDS client(s) did not get their configuration")

    def _wait_until(self, done, timeout: float, what) -> float:
        """Poll ``done`` on the control plane's loop every 2 ms; the seconds waited, or TimeoutError."""
        start = time.monotonic()
        while not self.call(done):
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{what()} within {timeout:.0f} s")
            time.sleep(0.002)
        return time.monotonic() - start

    @property
    def exchanges(self) -> list[dict]:
        return self.call(lambda: list(self.plane.exchanges))

    @property
    def pushes(self) -> list[dict]:
        return self.call(lambda: list(self.plane.pushes))

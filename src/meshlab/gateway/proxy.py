"""meshlab's gateway: an HTTP/1.1 proxy that routes by the translator's output, as Envoy runs Envoy
Gateway's configuration.

For every request the gateway asks ``match()`` (the same Envoy route evaluator the chapter and the
tests use) which route answers, then does what Envoy's router does with that route:
- a **redirect** is answered at once (301/302 with Location), a **direct response** too (500 where
  every backendRef of a rule is invalid, as the Gateway API asks), and no route at all is a 404
  (Envoy's response flag NR);
- otherwise the route's request mutations apply (headers to remove, then to set or add; a prefix or
  regex rewrite of the path, the original path kept in ``x-envoy-original-path``; a host rewrite),
  mirrors get a copy (Host suffixed ``-shadow``, their answers ignored), and the request goes to one
  host of the route's cluster, chosen as Envoy chooses (``meshlab.gateway.balance``: a locality by
  weight, then a host), over a pool of keep-alive connections per host.
- A host that cannot be reached gives 503 (UF), a reset 503 (UC), no answer within the route's
  timeout (15 s, RouteAction.timeout's default) 504 (UT), no usable host 503 (UH). Each outcome is
  counted by the cluster's outlier detector, and hosts are checked actively if the cluster has a
  health check (``meshlab.gateway.health``).

Each request is logged as one JSON record (``"event": "request"``: time, method, authority, path,
route, cluster, backend, upstream, status, flags, duration_ms), as are health and outlier events;
``counters`` sums a log. Where the upstream hosts are: the translator knows Services, not pods, so
the gateway is told (``endpoints``: ``"namespace/name"`` -> ``["ip:port", ...]``), as EDS would tell Envoy.

    Upstreams       the clusters of a translation, their hosts, health checkers and outlier detectors
    Forward         a request as it will leave the gateway
    mutate          a route's request mutations (headers, path and host rewrites), in Envoy's field names
    GatewayProxy    start(host, port) / stop(); reconfigure(translation, endpoints, ...)
    counters        requests per backend and status, ejections, health transitions, from log records
    GatewayConfig   what a gateway process serves; load_config reads it from JSON
    run             serve a configuration file until SIGTERM, reloading it on SIGHUP (the lab's gateways)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import h11

from meshlab.envoy.http1 import HOP_BY_HOP, LOCAL_REPLY, UpstreamConnection, read_request, write_response
from meshlab.gateway import Translation, load, match, translate
from meshlab.gateway.balance import LB_POLICIES, Cluster, Host
from meshlab.gateway.envoy import Backend, Request, backends_of
from meshlab.gateway.health import HealthCheck, HealthChecker, OutlierDetection, OutlierDetector, seconds

#: RouteAction.timeout's default (route_components.proto): from the end of the request to the end of the answer.
ROUTE_TIMEOUT_S = 15.0
#: Cluster.connect_timeout's default in Envoy is 5 s; Envoy Gateway v1.9.0 sets 10 s (internal/xds/translator/cluster.go).
CONNECT_TIMEOUT_S = 10.0
Log = Callable[[dict], None]


def _print_record(record: dict) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


# --- the upstream side ----------------------------------------------------------------------------


@dataclass
class _UpstreamCluster:
    """A cluster as the gateway runs it: hosts, balancer, detector, checker, and a pool per host."""

    name: str
    balancer: Cluster
    detector: OutlierDetector
    checker: HealthChecker | None
    connect_timeout: float
    had_traffic: bool = False
    pools: dict[int, list[UpstreamConnection]] = field(default_factory=dict)


class Upstreams:
    """The clusters of a translation (its ClusterLoadAssignments: one locality per backendRef), with
    hosts from ``endpoints``; a cluster's own ``healthChecks``/``outlierDetection`` win over the
    gateway-wide ``health_check``/``outlier_detection`` (what a BackendTrafficPolicy on the Gateway sets)."""

    def __init__(self, translation: Translation, endpoints: Mapping[str, Sequence[str]], log: Log,
                 health_check: HealthCheck | None = None, outlier_detection: OutlierDetection | None = None, seed: int = 0) -> None:
        self.log, self.seed = log, seed
        self.health_check, self.outlier_detection = health_check, outlier_detection or OutlierDetection()
        self.addresses = _endpoint_table(endpoints)
        self.assignments = [entry.get("endpointConfig", entry) for entry in translation.endpoints]
        settings = {cluster.get("name"): cluster for cluster in translation.clusters}
        self.clusters: dict[str, _UpstreamCluster] = {}
        self.by_backends: dict[tuple[Backend, ...], list[str]] = {}
        self._sweeper: asyncio.Task | None = None
        for assignment in self.assignments:
            name = assignment["clusterName"]
            self._add(name, backends_of({"route": {"cluster": name}}, self.assignments), settings.get(name, {}))
        # A route splitting over several clusters (weightedClusters) is run as one cluster of all
        # their localities, weighted alike: the same shares, health kept per host.
        for config in translation.route_configs:
            for virtual_host in config.get("virtualHosts", []):
                for route in virtual_host.get("routes", []):
                    backends = backends_of(route, self.assignments) if "weightedClusters" in route.get("route", {}) else ()
                    if backends and backends not in self.by_backends:
                        self._add(f"weighted/{route.get('name', len(self.clusters))}", backends, {})

    def _add(self, name: str, backends: tuple[Backend, ...], settings: dict) -> None:
        self.clusters[name] = self._cluster(name, backends, settings)
        self.by_backends.setdefault(backends, []).append(name)

    def _cluster(self, name: str, backends: tuple[Backend, ...], settings: dict) -> _UpstreamCluster:
        localities = [(backend, [Host(address, backend) for address in self.resolve(backend)]) for backend in backends]
        balancer = Cluster(name, localities, lb_policy=_lb_policy(settings, name), seed=self.seed)
        hosts = balancer.hosts
        detection = OutlierDetection.from_envoy(settings["outlierDetection"], f"cluster {name} outlierDetection") if "outlierDetection" in settings else self.outlier_detection
        checks = settings.get("healthChecks")
        if checks and len(checks) != 1:
            raise ValueError(f"cluster {name}: meshlab's gateway runs one health check per cluster, got {len(checks)}")
        health_check = HealthCheck.from_envoy(checks[0], f"cluster {name} healthChecks[0]") if checks else self.health_check
        timeout = seconds(settings["connectTimeout"], f"cluster {name} connectTimeout") if "connectTimeout" in settings else CONNECT_TIMEOUT_S
        detector = OutlierDetector(detection, name, hosts, lambda host, event: self._changed(balancer, event))
        checker = None
        if health_check is not None:
            checker = HealthChecker(health_check, name, hosts, lambda host: self.probe(cluster, host, health_check),
                                    lambda host, event: self._changed(balancer, event), lambda: cluster.had_traffic,
                                    lambda host: detector.health_check_passed(host, time.monotonic()))
        cluster = _UpstreamCluster(name, balancer, detector, checker, timeout)
        return cluster

    def unresolved(self) -> list[str]:
        """The Services (``ns/name:port``) the routes send to that have no endpoints: their requests get no host."""
        found = {f"{host.namespace}/{host.name}:{host.port}" for cluster in self.clusters.values() for host, hosts in cluster.balancer.localities if not hosts}
        return sorted(found)

    def resolve(self, backend: Backend) -> list[tuple[str, int]]:
        """A Service port's endpoints: ``namespace/name:port``, else ``namespace/name``, in the table."""
        for key in (f"{backend.namespace}/{backend.name}:{backend.port}", f"{backend.namespace}/{backend.name}"):
            if key in self.addresses:
                return self.addresses[key]
        return []

    def for_route(self, route: str | None, backends: tuple[Backend, ...]) -> _UpstreamCluster | None:
        """The cluster a decision's Backends belong to: Envoy Gateway names a rule's cluster
        ``<kind>/<route>``; several clusters with the same Backends are told apart by that name."""
        names = self.by_backends.get(backends, [])
        named = [name for name in names if route and name.endswith(f"/{route}")]
        return self.clusters[(named or names)[0]] if names else None

    def _changed(self, balancer: Cluster, event: dict) -> None:
        """A host's flags changed: the localities' weights change with them (and the event is logged)."""
        balancer.refresh()
        self.log(event)

    async def probe(self, cluster: _UpstreamCluster, host: Host, check: HealthCheck) -> int:
        """One HTTP health check on its own connection (Envoy keeps one per host; here one per check)."""
        connection = await self.connect(cluster, host)
        try:
            status, _, _ = await connection.exchange(check.method, check.path, [("host", check.host or cluster.name), ("user-agent", "Envoy/HC")], b"")
            return status
        except h11.ProtocolError as error:  # closed before answering, or not HTTP: a network failure to the checker
            raise ConnectionResetError(f"health check of {host}: {error}") from None
        finally:
            connection.close()

    async def connect(self, cluster: _UpstreamCluster, host: Host) -> UpstreamConnection:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*host.address), cluster.connect_timeout)
        return UpstreamConnection(reader, writer)

    async def acquire(self, cluster: _UpstreamCluster, host: Host) -> UpstreamConnection:
        """An idle pooled connection to ``host`` that is still open, or a new one."""
        pool = cluster.pools.setdefault(id(host), [])
        while pool:
            connection = pool.pop()
            if connection.usable:
                return connection
            connection.close()
        return await self.connect(cluster, host)

    def release(self, cluster: _UpstreamCluster, host: Host, connection: UpstreamConnection) -> None:
        if connection.usable:
            cluster.pools.setdefault(id(host), []).append(connection)
        else:
            connection.close()

    async def start(self) -> None:
        """First health checks (a cluster with checks is warm only after them), then the timers."""
        checkers = [cluster.checker for cluster in self.clusters.values() if cluster.checker]
        await asyncio.gather(*(checker.first_round() for checker in checkers))
        for checker in checkers:
            checker.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """Each detector's interval timer."""
        due = {name: time.monotonic() + cluster.detector.config.interval for name, cluster in self.clusters.items()}
        while True:
            await asyncio.sleep(max(0.0, min(due.values(), default=time.monotonic() + 1.0) - time.monotonic()))
            now = time.monotonic()
            for name, cluster in list(self.clusters.items()):
                if due.setdefault(name, now + cluster.detector.config.interval) <= now:
                    cluster.detector.sweep(now)
                    due[name] = now + cluster.detector.config.interval

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for cluster in self.clusters.values():
            if cluster.checker:
                await cluster.checker.stop()
            for pool in cluster.pools.values():
                for connection in pool:
                    connection.close()


def _endpoint_table(endpoints: Mapping[str, Sequence[str]]) -> dict[str, list[tuple[str, int]]]:
    """``{"ns/name[:port]" or "name": ["ip:port", ...]}`` checked; a bare name is in namespace default."""
    table: dict[str, list[tuple[str, int]]] = {}
    for key, addresses in endpoints.items():
        if not re.fullmatch(r"([a-z0-9][-a-z0-9]*/)?[a-z0-9][-a-z0-9.]*(:\d+)?", key):
            raise ValueError(f"backend {key!r} is not a Service as namespace/name[:port] or name (namespace default)")
        parsed = []
        for address in addresses:
            host, colon, port = address.rpartition(":")
            if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"backend {key}: endpoint {address!r} is not HOST:PORT with a port 1-65535")
            parsed.append((host, int(port)))
        table[key if "/" in key else f"default/{key}"] = parsed
    return table


def _lb_policy(settings: dict, cluster: str) -> str:
    """The cluster's policy inside a locality: ``lbPolicy``, or the extension Envoy Gateway names in
    ``loadBalancingPolicy`` (least request unless told otherwise, v1.9.0)."""
    if "lbPolicy" in settings:
        return str(settings["lbPolicy"])
    policies = settings.get("loadBalancingPolicy", {}).get("policies", [])
    if not policies:
        return "LEAST_REQUEST"
    names = {"envoy.load_balancing_policies.round_robin": "ROUND_ROBIN", "envoy.load_balancing_policies.least_request": "LEAST_REQUEST",
             "envoy.load_balancing_policies.random": "RANDOM"}
    name = policies[0].get("typedExtensionConfig", {}).get("name")
    if name not in names:
        raise ValueError(f"cluster {cluster}: load balancing policy {name!r} is not run here; accepted: {', '.join(names)} or lbPolicy {', '.join(LB_POLICIES)}")
    return names[name]


# --- Envoy's request mutations --------------------------------------------------------------------


@dataclass
class Forward:
    """The request as it will leave the gateway."""

    method: str
    authority: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


#: HeaderValueOption.HeaderAppendAction (envoy/config/core/v3/base.proto); the first is Envoy's default.
APPEND_ACTIONS = ("APPEND_IF_EXISTS_OR_ADD", "ADD_IF_ABSENT", "OVERWRITE_IF_EXISTS_OR_ADD", "OVERWRITE_IF_EXISTS")


def mutate(forward: Forward, actions: Mapping[str, object], matched_prefix: str | None) -> None:
    """Apply a route's request mutations in Envoy's terms: ``requestHeadersToRemove``, then
    ``requestHeadersToAdd`` by their ``appendAction`` (Envoy Gateway writes OVERWRITE_IF_EXISTS_OR_ADD
    for a filter's set and APPEND_IF_EXISTS_OR_ADD for its add), then ``prefixRewrite`` (replacing the
    matched prefix) or ``regexRewrite`` (on the path; the query string is kept), then ``hostRewriteLiteral``
    (with ``appendXForwardedHost``, the original host goes to x-forwarded-host)."""
    removed = {str(name).lower() for name in actions.get("requestHeadersToRemove", ())}  # type: ignore[union-attr]
    forward.headers = [(name, value) for name, value in forward.headers if name not in removed]
    for option in actions.get("requestHeadersToAdd", ()):  # type: ignore[union-attr]
        name, value = option["header"]["key"].lower(), option["header"].get("value", "")
        action = option.get("appendAction") or ("APPEND_IF_EXISTS_OR_ADD" if option.get("append", True) else "OVERWRITE_IF_EXISTS_OR_ADD")
        if action not in APPEND_ACTIONS:
            raise ValueError(f"header {name}: appendAction {action!r} is not one of {', '.join(APPEND_ACTIONS)}")
        if name in (":authority", "host"):
            forward.authority = value
            continue
        present = any(existing == name for existing, _ in forward.headers)
        if (action == "ADD_IF_ABSENT" and present) or (action == "OVERWRITE_IF_EXISTS" and not present):
            continue
        if action.startswith("OVERWRITE"):
            forward.headers = [(existing, kept) for existing, kept in forward.headers if existing != name]
        forward.headers.append((name, value))
    path, question, query = forward.path.partition("?")
    rewritten = path
    if "prefixRewrite" in actions and matched_prefix is not None:
        rewritten = str(actions["prefixRewrite"]) + path[len(matched_prefix):]
    elif "regexRewrite" in actions:
        rewrite = actions["regexRewrite"]
        pattern = re.compile(rewrite["pattern"]["regex"])  # type: ignore[index]
        rewritten = pattern.sub(re.sub(r"\\(\d)", r"\\g<\1>", rewrite["substitution"]), path)  # type: ignore[index]
    if rewritten != path:
        forward.headers.append(("x-envoy-original-path", forward.path))
        forward.path = (rewritten or "/") + question + query
    if "hostRewriteLiteral" in actions:
        if actions.get("appendXForwardedHost"):
            forward.headers.append(("x-forwarded-host", forward.authority))
        forward.authority = str(actions["hostRewriteLiteral"])


# --- the gateway ----------------------------------------------------------------------------------


@dataclass
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    flags: str = "-"
    cluster: str | None = None
    backend: str | None = None
    upstream: str | None = None


class GatewayProxy:
    """The gateway: one listener, routing by ``translation`` for the Gateway listener on ``port``."""

    def __init__(self, translation: Translation, endpoints: Mapping[str, Sequence[str]], port: int, *, log: Log = _print_record,
                 health_check: HealthCheck | None = None, outlier_detection: OutlierDetection | None = None, seed: int = 0) -> None:
        self.port, self.log, self.seed = port, log, seed
        self.translation = translation
        self.upstreams = Upstreams(translation, endpoints, self._log, health_check, outlier_detection, seed)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._random = random.Random(seed)

    def _log(self, record: dict) -> None:
        self.log({"time": _now(), **record})

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Check the hosts once, then listen; returns the port listened on."""
        await self.upstreams.start()
        try:
            self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True, backlog=1024)
        except BaseException:
            await self.upstreams.stop()  # a port that cannot be bound leaves no health checker running
            raise
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.upstreams.stop()

    async def reconfigure(self, translation: Translation, endpoints: Mapping[str, Sequence[str]],
                          health_check: HealthCheck | None = None, outlier_detection: OutlierDetection | None = None) -> None:
        """New routes, endpoints and health settings (what an xDS push does); hosts start afresh."""
        upstreams = Upstreams(translation, endpoints, self._log, health_check, outlier_detection, self.seed)
        try:
            await upstreams.start()
        except BaseException:  # refused, or cancelled by a newer reload: the old configuration stays in force
            await upstreams.stop()
            raise
        old, self.upstreams, self.translation = self.upstreams, upstreams, translation
        await old.stop()

    # -- downstream ------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)  # type: ignore[arg-type]
        http = h11.Connection(h11.SERVER)
        peer = writer.get_extra_info("peername")
        try:
            while (request := await read_request(http, reader)) is not None:
                head, body = request
                started = time.perf_counter()
                try:
                    answer, route = await self._handle(head, body, peer)
                except Exception as error:  # a configuration the router cannot run: this request fails, the gateway goes on
                    answer, route = _Answer(500, [("content-type", "text/plain")], f"{type(error).__name__}: {error}".encode()), {"route": None, "error": str(error)}
                # logged as the answer leaves (Envoy logs once the stream is done): whoever has the answer finds the record
                self._log({"event": "request", "method": head.method.decode(), "authority": _header(head.headers, b"host"),
                           "path": head.target.decode("latin-1"), **route, "cluster": answer.cluster, "backend": answer.backend,
                           "upstream": answer.upstream, "status": answer.status, "flags": answer.flags,
                           "duration_ms": round((time.perf_counter() - started) * 1000, 3)})
                if not await write_response(http, writer, answer.status, answer.headers, answer.body):
                    break
        except (h11.ProtocolError, ConnectionError):
            pass  # a client that broke HTTP or went away: nothing to answer
        finally:
            writer.close()
            self._tasks.discard(task)  # type: ignore[arg-type]

    async def _handle(self, head: h11.Request, body: bytes, peer: tuple) -> tuple[_Answer, dict]:
        """Route one request and answer it: (the answer, what the access log says of the route)."""
        headers = [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in head.headers]
        first: dict[str, str] = {}
        for name, value in headers:
            first.setdefault(name, value)  # Envoy's matchers read a header's first value
        authority = first.pop("host", "")
        try:
            request = Request(authority, head.target.decode("latin-1"), head.method.decode(), first)
        except ValueError as error:
            return _Answer(400, [("content-type", "text/plain")], str(error).encode()), {"route": None}
        decision = match(self.translation, request, port=self.port)
        route = {"route": decision.route}
        if decision.redirect is not None:
            return _Answer(int(decision.redirect["statusCode"]), [("location", decision.location)], b""), route
        if decision.direct_response is not None:
            return _Answer(int(decision.direct_response), [], b""), route
        if not decision.backends:
            return _Answer(404, [], b"", "NR"), {**route, "reason": decision.reason}
        if decision.unavailable and self._random.random() < decision.unavailable[1]:
            return _Answer(decision.unavailable[0], [], b""), route  # the share of invalid backendRefs
        forward = Forward(request.method, authority, request.path, [(n, v) for n, v in headers if n not in HOP_BY_HOP and n != "host"], body)
        forward.headers += [("x-forwarded-for", _forwarded_for(first, peer)), ("x-forwarded-proto", "http")]
        actions = decision.filters
        mutate(forward, actions, decision.matched_prefix)
        for mirror in actions.get("requestMirrorPolicies", ()):
            self._mirror(mirror, forward)
        return await self._forward(self.upstreams.for_route(decision.route, decision.backends), forward), route

    async def _forward(self, cluster: _UpstreamCluster | None, forward: Forward) -> _Answer:
        if cluster is None:
            return _Answer(503, [("content-type", "text/plain")], LOCAL_REPLY["UH"], "UH")
        cluster.had_traffic = True
        host = cluster.balancer.choose()
        if host is None:
            return _Answer(503, [("content-type", "text/plain")], LOCAL_REPLY["UH"], "UH", cluster.name)
        backend = f"{host.backend.namespace}/{host.backend.name}:{host.backend.port}"
        where = {"cluster": cluster.name, "backend": backend, "upstream": str(host)}
        detector = cluster.detector
        host.active_requests += 1
        try:
            try:
                connection = await self.upstreams.acquire(cluster, host)
            except (OSError, TimeoutError):
                detector.failed(host, "connect_failed", time.monotonic())
                return _Answer(503, [("content-type", "text/plain")], LOCAL_REPLY["UF"], "UF", **where)
            detector.connected(host)
            try:
                async with asyncio.timeout(ROUTE_TIMEOUT_S):
                    status, headers, body = await connection.exchange(forward.method, forward.path, [("host", forward.authority), *forward.headers], forward.body)
            except TimeoutError:
                connection.close()
                detector.failed(host, "timeout", time.monotonic())
                return _Answer(504, [("content-type", "text/plain")], LOCAL_REPLY["UT"], "UT", **where)
            except (OSError, h11.ProtocolError):
                connection.close()
                detector.failed(host, "reset", time.monotonic())
                return _Answer(503, [("content-type", "text/plain")], LOCAL_REPLY["UC"], "UC", **where)
            self.upstreams.release(cluster, host, connection)
            detector.responded(host, status, time.monotonic())
            return _Answer(status, [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers], body, "-", **where)
        finally:
            host.active_requests -= 1

    def _mirror(self, policy: Mapping[str, object], forward: Forward) -> None:
        """Send a copy to the mirror's cluster, for the share ``runtimeFraction`` says (all by
        default), and forget it: Envoy does not wait for its answer."""
        fraction = policy.get("runtimeFraction", {}).get("defaultValue", {"numerator": 100})  # type: ignore[union-attr]
        denominator = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}[fraction.get("denominator", "HUNDRED")]
        if self._random.randrange(denominator) >= fraction.get("numerator", 0):
            return
        name = str(policy.get("cluster"))
        cluster = self.upstreams.clusters.get(name)
        if cluster is None:
            self._log({"event": "mirror", "cluster": name, "error": "no such cluster"})
            return
        authority = forward.authority if policy.get("disableShadowHostSuffixAppend") else _shadow(forward.authority)
        copy = Forward(forward.method, authority, forward.path, list(forward.headers), forward.body)
        task = asyncio.get_running_loop().create_task(self._forward(cluster, copy))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _shadow(authority: str) -> str:
    """Envoy's shadow Host: ``-shadow`` after the host name, before any port."""
    host, colon, port = authority.partition(":")
    return f"{host}-shadow{colon}{port}"


def _forwarded_for(headers: Mapping[str, str], peer: tuple) -> str:
    """x-forwarded-for with the downstream address appended (Envoy with use_remote_address, as Envoy Gateway sets it)."""
    previous = headers.get("x-forwarded-for")
    return f"{previous}, {peer[0]}" if previous else str(peer[0])


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _now() -> str:
    """Envoy's %START_TIME% format: UTC with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- reading logs ---------------------------------------------------------------------------------


def counters(records: Sequence[dict]) -> dict:
    """What a gateway's log adds up to: requests per backend and per status; ejections enforced,
    detected (enforced or not) and refused by maxEjectionPercent (Envoy's outlier_detection stats
    ejections_enforced_total, ejections_detected_*, ejections_overflow); hosts returned; health transitions."""
    requests = [r for r in records if r.get("event") == "request"]
    outlier = [r for r in records if r.get("event") == "outlier"]
    health = [r for r in records if r.get("event") == "health"]
    return {
        "requests": len(requests),
        "per_backend": dict(Counter(r["backend"] for r in requests if r.get("backend"))),
        "per_status": dict(Counter(r["status"] for r in requests)),
        "ejections": sum(r["action"] == "EJECT" and r.get("enforced", False) for r in outlier),
        "ejections_detected": sum(r["action"] == "EJECT" for r in outlier),
        "ejections_overflow": sum(r["action"] == "EJECT" and r.get("overflow", False) for r in outlier),
        "unejections": sum(r["action"] == "UNEJECT" for r in outlier),
        "health_transitions": len(health),
    }


# --- as a process ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayConfig:
    """What ``run`` serves: the routes (Gateway API YAML), the Gateway listener port they are matched
    for, where to listen, the Services' endpoints and the health settings (Envoy's protojson)."""

    routes: str
    port: int
    listen: tuple[str, int]
    endpoints: dict[str, list[str]]
    health_check: HealthCheck | None = None
    outlier_detection: OutlierDetection | None = None


def load_config(text: str, where: str = "gateway configuration") -> GatewayConfig:
    """``{"routes": YAML, "port": N, "listen": "HOST:PORT", "endpoints": {...}, "healthCheck": {...}, "outlierDetection": {...}}``."""
    config = json.loads(text)
    fields = "routes (Gateway API YAML), port (the Gateway listener's), listen (HOST:PORT), endpoints, healthCheck, outlierDetection"
    unknown = sorted(set(config) - {"routes", "port", "listen", "endpoints", "healthCheck", "outlierDetection"})
    missing = [key for key in ("routes", "port", "listen", "endpoints") if key not in config]
    if unknown or missing:
        problem = f"unknown field(s) {', '.join(unknown)}" if unknown else f"missing {', '.join(missing)}"
        raise ValueError(f"{where}: {problem}; fields are {fields}")
    host, _, port = str(config["listen"]).rpartition(":")
    if not host or not port.isdigit() or not str(config["port"]).isdigit():
        raise ValueError(f"{where}: listen must be HOST:PORT and port a number, got listen {config['listen']!r}, port {config['port']!r}")
    return GatewayConfig(config["routes"], int(config["port"]), (host, int(port)), config["endpoints"],
                         HealthCheck.from_envoy(config["healthCheck"]) if config.get("healthCheck") else None,
                         OutlierDetection.from_envoy(config["outlierDetection"]) if config.get("outlierDetection") else None)


def run(path: Path, new_loop: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop) -> None:
    """Serve the configuration in ``path`` until SIGTERM; SIGHUP reads it again (new routes, weights,
    endpoints). Logs go to standard output: ``{"event": "ready"}`` once listening, then one record per
    request and per health or outlier event. ``new_loop`` makes the event loop (the lab passes uvloop's)."""
    loop = new_loop()
    asyncio.set_event_loop(loop)
    config = load_config(path.read_text(), str(path))
    proxy = GatewayProxy(translate(load(config.routes)), config.endpoints, config.port,
                         health_check=config.health_check, outlier_detection=config.outlier_detection)
    bound = loop.run_until_complete(proxy.start(*config.listen))
    pending: list[asyncio.Task] = []  # the reload under way: a newer SIGHUP cancels it, so the newest file wins

    def reload() -> None:
        try:
            again = load_config(path.read_text(), str(path))
            translation = translate(load(again.routes))
        except (OSError, ValueError) as error:
            _print_record({"time": _now(), "event": "config", "error": str(error)})
            return
        for older in pending:
            older.cancel()
        pending[:] = [task := loop.create_task(proxy.reconfigure(translation, again.endpoints, again.health_check, again.outlier_detection))]

        def reloaded(done: asyncio.Task) -> None:
            if done.cancelled():
                return  # a newer configuration replaced this one before it was in force
            failure = done.exception()
            outcome = {"error": str(failure)} if failure else {"reloaded": str(path)}
            _print_record({"time": _now(), "event": "config", **outcome})

        task.add_done_callback(reloaded)

    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    _print_record({"time": _now(), "event": "ready", "listen": f"{config.listen[0]}:{bound}", "port": config.port, "pid": os.getpid()})
    loop.run_forever()

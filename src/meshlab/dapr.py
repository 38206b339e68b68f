"""Dapr beside a service mesh: what each does, where they overlap, and the road a request takes.

Both put a process beside the app, but the mesh's sidecar is transparent (the app dials a Service
and iptables hands the connection to the proxy), while the app calls Dapr's sidecar, ``daprd``,
by its API on localhost and names what it wants: a method of another app (by app-id), a key in a
state store, a topic. So Dapr gives building blocks the mesh has not (state, pub/sub, bindings,
actors), the mesh gives what Dapr has not (any TCP captured, traffic splitting), and a few concerns
both can do (mTLS, retries, tracing) are best done once.

Facts are from Dapr v1.14.0's source (github.com/dapr/dapr@v1.14.0, the daprd the upstream stage
builds; files named where used), from docs.dapr.io "Dapr and service meshes" (dapr/docs
daprdocs/content/en/concepts/faq/service-mesh.md, read 2026-11-30), and from Istio 1.30's source.

    DAPR_HTTP_PORT ... CALLER_ID_HEADER   daprd's ports (3500, 50001, 50002, 9090) and the invocation headers
    DaprUsageError    a building block, parameter or path that does not exist; says what does
    BuildingBlock     one Dapr API: its name, HTTP routes, what it gives an app, what the mesh sees of it
    BUILDING_BLOCKS   invoke, state, publish, bindings, actors, by name
    CATCH_ALL         the blocks whose last route part may hold '/' (invoke's method, publish's topic)
    api_path          the HTTP path of one call: api_path("invoke", app_id="orders", method="new")
    Concern           one concern: who should handle it (mesh, Dapr, both, one of them) and what to switch off
    CONCERNS          mTLS, retries, tracing, metrics, naming, routing, access policy, building blocks, capture
    overlap_table     the concerns as the chapter prints them (at most 100 columns)
    Hop               one leg of a request: from, to, port, protocol, across the network or in the pod, captured or dialled
    PATHS             the four ways from app to app: direct, mesh, dapr, dapr+mesh
    request_path      the legs of one of them (for Dapr in a mesh, optionally with Dapr's port excluded)
    proxies           the processes a path's call passes between the two apps
    path_table        the four side by side, with the proxies each crosses
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

#: daprd's API ports (pkg/runtime/config.go, v1.14.0: DefaultDaprHTTPPort, DefaultDaprAPIGRPCPort).
DAPR_HTTP_PORT = 3500
DAPR_GRPC_PORT = 50001
#: daprd-to-daprd gRPC: 50002 in Kubernetes (pkg/injector/patcher/sidecar.go SidecarInternalGRPCPort and the
#: ``<app-id>-dapr`` Service's ``dapr-internal`` port, pkg/operator/handlers/dapr_handler.go, v1.14.0). Self-hosted,
#: without --dapr-internal-grpc-port, daprd takes a "stable random" port from 47300 (pkg/runtime/config.go).
DAPR_INTERNAL_GRPC_PORT = 50002
#: daprd's Prometheus port (pkg/runtime/config.go DefaultMetricsPort, v1.14.0).
DAPR_METRICS_PORT = 9090
#: The API version in every path (pkg/api/http/http.go apiVersionV1, v1.14.0).
API_VERSION = "v1.0"
#: Invocation through daprd's HTTP port as a proxy: the target app-id in this header, the path is the
#: method (pkg/api/http/directmessaging.go findTargetIDAndMethod, v1.14.0).
APP_ID_HEADER = "dapr-app-id"
#: What the callee's daprd tells the app about the caller (pkg/messaging/v1/util.go CallerIDHeader, v1.14.0).
CALLER_ID_HEADER = "dapr-caller-app-id"
#: The mesh side, for the paths: the lab's sidecar ports, as Istio's (15001 outbound, 15006 inbound).
SIDECAR_OUTBOUND_PORT, SIDECAR_INBOUND_PORT = 15001, 15006


class DaprUsageError(ValueError):
    """Asked for something Dapr (or this model of it) has not; the message says what there is."""


@dataclass(frozen=True)
class BuildingBlock:
    """``routes``: (HTTP methods, route under /v1.0/) as daprd v1.14.0 registers them (pkg/api/http/*.go);
    ``mesh_sees``: what a mesh's proxy sees of a call, which is never the building block itself."""

    name: str
    title: str
    routes: tuple[tuple[str, str], ...]
    gives: str
    mesh_sees: str

    @property
    def route(self) -> str:
        """The main route, the one ``api_path`` fills in."""
        return self.routes[0][1]


BUILDING_BLOCKS = {block.name: block for block in (
    BuildingBlock("invoke", "service invocation", (("any", "invoke/{app_id}/method/{method}"),),
                  "call a method of another app by its app-id; daprd finds the peer daprd (name resolution), "
                  "retries, traces, and with Sentry encrypts", "a gRPC connection from daprd to the peer daprd's port 50002"),
    BuildingBlock("state", "state management", (("POST,PUT", "state/{store}"), ("GET", "state/{store}/{key}"), ("DELETE", "state/{store}/{key}"),
                                                ("POST,PUT", "state/{store}/bulk"), ("POST,PUT", "state/{store}/transaction")),
                  "save and read keys in a pluggable store (Redis, a database, in memory) with etags and transactions",
                  "a connection from daprd to the store, if the store is remote"),
    BuildingBlock("publish", "publish and subscribe", (("POST,PUT", "publish/{pubsub}/{topic}"),),
                  "publish to a topic; daprd delivers CloudEvents to subscribers' routes (asked at GET /dapr/subscribe)",
                  "connections from daprd to the broker and from the broker's daprd side to subscribers"),
    BuildingBlock("bindings", "input and output bindings", (("POST,PUT", "bindings/{name}"),),
                  "send to or be triggered by an external system (a queue, a cron, HTTP) through a component",
                  "a connection from daprd to the external system"),
    BuildingBlock("actors", "virtual actors", (("any", "actors/{actor_type}/{actor_id}/method/{method}"),
                                               ("POST,PUT", "actors/{actor_type}/{actor_id}/state"),
                                               ("POST,PUT", "actors/{actor_type}/{actor_id}/reminders/{name}"),
                                               ("POST,PUT", "actors/{actor_type}/{actor_id}/timers/{name}")),
                  "single-threaded objects placed on apps by the placement service, with state, timers and reminders",
                  "connections to the placement service and between daprds hosting actors"),
)}


#: Routes daprd registers with a trailing ``*``, so their last part may hold '/': a method ("invoke/*",
#: pkg/api/http/directmessaging.go) or a topic ("publish/{pubsubname}/*", pkg/api/http/http.go), v1.14.0.
CATCH_ALL = frozenset({"invoke", "publish"})


def api_path(block: str, **parameters: str) -> str:
    """The path of a call to ``block``'s main route, e.g. ``/v1.0/invoke/orders/method/new``."""
    if block not in BUILDING_BLOCKS:
        raise DaprUsageError(f"no building block {block!r}; there are {', '.join(BUILDING_BLOCKS)}")
    route = BUILDING_BLOCKS[block].route
    needed = re.findall(r"{(\w+)}", route)
    if missing := [name for name in needed if not parameters.get(name)]:
        raise DaprUsageError(f"{block}: {route} needs {', '.join(needed)}; missing {', '.join(missing)}")
    if extra := sorted(set(parameters) - set(needed)):
        raise DaprUsageError(f"{block}: {route} takes {', '.join(needed)}, not {', '.join(extra)}")
    fixed = needed[:-1] if block in CATCH_ALL else needed
    if bad := [name for name in fixed if "/" in parameters[name]]:
        raise DaprUsageError(f"{block}: {bad[0]}={parameters[bad[0]]!r} holds a '/', which would change the route")
    return f"/{API_VERSION}/" + route.format(**parameters)


#: Who should handle a concern when both run: the mesh, Dapr, both (they do different things), or one of them.
OWNERS = ("mesh", "dapr", "both", "one")


@dataclass(frozen=True)
class Concern:
    """``advice``: what to keep and what to switch off where, when both run."""

    name: str
    owner: str
    mesh: str
    dapr: str
    advice: str
    source: str

    def __post_init__(self) -> None:
        if self.owner not in OWNERS:
            raise DaprUsageError(f"concern {self.name}: owner {self.owner!r} is not one of {', '.join(OWNERS)}")


DOCS = "docs.dapr.io Dapr and service meshes"
CONCERNS = (
    Concern("mTLS", "one", "every TCP connection, certificates from istiod",
            "daprd to daprd only, certificates from Sentry",
            "pick one; the mesh if traffic outside Dapr must be encrypted too: then Dapr's Configuration "
            "spec.mtls.enabled: false (self-hosted daprd has it off unless --enable-mtls)",
            f"{DOCS}; cmd/daprd/options/options.go, v1.14.0"),
    Concern("retries", "one", "default route policy: 2 retries on connect-failure, refused-stream, unavailable, ...",
            "invocation: 3 retries 1 s apart on gRPC Unavailable or Unauthenticated",
            "where the mesh reads port 50002 as gRPC both retry the same call (4 x 3 tries): keep one; a Dapr Resiliency "
            "policy for the target replaces the built-in retries, or the VirtualService sets retries.attempts: 0",
            "pilot/pkg/networking/core/route/retry/retry.go (Istio 1.30); pkg/resiliency/resiliency.go and "
            "pkg/messaging/direct_messaging.go invokeWithRetry, Dapr v1.14.0"),
    Concern("tracing", "one", "a span per proxy hop; the app must pass trace headers on",
            "W3C traceparent on invocation and in pub/sub's CloudEvents",
            "pick one; with the mesh tracing, Dapr's Configuration spec.tracing.samplingRate: \"0\"; "
            "or the mesh's Telemetry randomSamplingPercentage: 0",
            f"{DOCS}; pkg/runtime/pubsub/cloudevents.go, pkg/diagnostics/utils/trace_utils.go, v1.14.0"),
    Concern("metrics", "both", "per connection and request, by service", "per building-block call, by app-id",
            "keep both: they count different things", DOCS),
    Concern("naming", "both", "a Service's hostname, its ClusterIP, endpoints by EDS",
            "app-id, resolved to the peer daprd by a name-resolution component",
            "nothing to switch off; the mesh sees Dapr's calls as connections to a pod address on port 50002 "
            "(the <app-id>-dapr Service is headless), not to the app's Service",
            "pkg/operator/handlers/dapr_handler.go (ClusterIP None), v1.14.0"),
    Concern("routing", "mesh", "traffic splitting, header routes, fault injection", "none",
            "the mesh; but a VirtualService on the app's Service does not see calls made through Dapr", DOCS),
    Concern("access policy", "one", "AuthorizationPolicy on the caller's SPIFFE principal",
            "accessControl on the caller's SPIFFE ID from Dapr's mTLS",
            "pick one; with Dapr's mTLS off Dapr knows no caller and applies its defaultAction only: "
            "use the mesh's AuthorizationPolicy", "pkg/acl/acl.go ApplyAccessControlPolicies, v1.14.0"),
    Concern("building blocks", "dapr", "none: only connections to stores and brokers",
            "state, pub/sub, bindings, actors, secrets, workflows",
            "Dapr; the mesh carries daprd's connections to remote stores and brokers like any other", DOCS),
    Concern("capture", "mesh", "any TCP the app sends or receives, without the app knowing",
            "only what the app sends to daprd on localhost",
            "the mesh; the app's calls to daprd on 127.0.0.1 are never captured, daprd's own to port 50002 are "
            "(exclude 50002 in and out to keep the mesh off them)", "the live lab (meshlab.lab.dapr)"),
)


def overlap_table(width: int = 100) -> str:
    """Each concern on one line (who, the mesh's part, Dapr's), its advice wrapped beneath."""
    if width < 80:
        raise DaprUsageError(f"the table needs at least 80 columns, got {width}")
    left = 24  # concern (17), who (5), two spaces
    column = (width - left) // 2
    lines = [f"{'concern':<17}{'who':<5}  {'mesh (Istio)':<{column}}Dapr"]
    for concern in CONCERNS:
        mesh, dapr = (textwrap.wrap(text, column - 2) for text in (concern.mesh, concern.dapr))
        for index in range(max(len(mesh), len(dapr))):
            head = f"{concern.name:<17}{concern.owner:<5}  " if index == 0 else " " * left
            pair = [part[index] if index < len(part) else "" for part in (mesh, dapr)]
            lines.append(f"{head}{pair[0]:<{column}}{pair[1]}".rstrip())
        lines += textwrap.wrap(concern.advice, width, initial_indent=" " * (left - 3) + "-> ", subsequent_indent=" " * left)
    return "\n".join(lines)


@dataclass(frozen=True)
class Hop:
    """One connection a call travels: ``network`` it leaves the pod (else loopback); ``captured`` the kernel
    handed it to a proxy (iptables) rather than the sender dialling it."""

    source: str
    target: str
    port: int
    protocol: str
    network: bool
    captured: bool = False

    def __str__(self) -> str:
        how = ("network" if self.network else "loopback") + (", captured" if self.captured else "")
        return f"{self.source} -> {self.target}:{self.port} {self.protocol} ({how})"


PATHS = ("direct", "mesh", "dapr", "dapr+mesh")


def request_path(path: str, caller: str = "checkout", callee: str = "orders", app_port: int = 8080, dapr_port_excluded: bool = False) -> tuple[Hop, ...]:
    """The connections an HTTP call from ``caller``'s app to ``callee``'s app takes on ``path``.

    In a mesh with Istio's rules, the app's call to its own daprd (127.0.0.1) is not captured (the
    rules return for 127.0.0.1), daprd's call to the peer's port 50002 is, on both ends; with
    ``dapr_port_excluded`` (excludeOutboundPorts and excludeInboundPorts 50002) it is not, and the
    road is Dapr's alone."""
    if path not in PATHS:
        raise DaprUsageError(f"no path {path!r}; paths are {', '.join(PATHS)}")
    if dapr_port_excluded and path != "dapr+mesh":
        raise DaprUsageError("dapr_port_excluded is about Dapr in a mesh: path 'dapr+mesh'")
    app, peer = f"{caller} app", f"{callee} app"
    if path == "direct":
        return (Hop(app, peer, app_port, "HTTP", True),)
    if path == "mesh":
        return (Hop(app, f"{caller} sidecar", SIDECAR_OUTBOUND_PORT, "TCP", False, True),
                Hop(f"{caller} sidecar", f"{callee} sidecar", SIDECAR_INBOUND_PORT, "TCP (mTLS)", True, True),
                Hop(f"{callee} sidecar", peer, app_port, "HTTP", False))
    daprd, peer_daprd = f"{caller} daprd", f"{callee} daprd"
    into, out = Hop(app, daprd, DAPR_HTTP_PORT, "HTTP", False), Hop(peer_daprd, peer, app_port, "HTTP", False)
    if path == "dapr" or dapr_port_excluded:
        return (into, Hop(daprd, peer_daprd, DAPR_INTERNAL_GRPC_PORT, "gRPC", True), out)
    return (into, Hop(daprd, f"{caller} sidecar", SIDECAR_OUTBOUND_PORT, "gRPC", False, True),
            Hop(f"{caller} sidecar", f"{callee} sidecar", SIDECAR_INBOUND_PORT, "gRPC in TCP (mTLS)", True, True),
            Hop(f"{callee} sidecar", peer_daprd, DAPR_INTERNAL_GRPC_PORT, "gRPC", False), out)


def proxies(hops: tuple[Hop, ...]) -> list[str]:
    """The processes between the two apps, in order."""
    return [hop.target for hop in hops[:-1]]


def path_table() -> str:
    """The four paths, each with the proxies a call crosses and its legs, one per line."""
    lines = []
    for path in PATHS:
        hops = request_path(path)
        crossed = proxies(hops)
        lines.append(f"{path:<10} {len(crossed)} proxies, {sum(hop.network for hop in hops)} network leg"
                     + ("" if sum(hop.network for hop in hops) == 1 else "s") + (f": {', '.join(crossed)}" if crossed else ""))
        lines += [f"           {hop}" for hop in hops]
    return "\n".join(lines)

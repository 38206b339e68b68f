"""The architecture diagram each chapter opens with, as specs for ``meshlab.viz.diagram``.

One function per system the book teaches. Ids are the domain's own names (chain names, listener
ports, component names), so a live cell can light up what really happened: ``interception_path``
turns a packet walk into the arrows it took, ``segment_path`` a datapath's request into the
socket-to-socket hops. Facts drawn here are the ones the chapters cite (Istio 1.30.3 for ports,
chains and components; SPIRE 1.13 for its parts; Aeraki for the MetaProtocol control plane).

    book_map               00: the chapters, what is written, and the reading paths through them
    istio_architecture     01: istiod, the Kubernetes API and two meshed pods
    sidecar_pod            02: one pod's app, sidecar, lo, eth0 and Istio's nat chains
    interception_path      02: the arrows a packet walk (meshlab.intercept.walk) took
    socket_paths           03: a request's three connections, through the stack or socket to socket
    segment_path           03: the arrows one datapath takes for that request
    deployment_models      04: sidecar, per node, per service account and ambient side by side
    ambient_mesh           04: ztunnel per node, HBONE on 15008, a waypoint for L7
    proxyless_vs_sidecar   05: the same app meshed by an Envoy and by gRPC's own xDS client
    push_pipeline          06: from a Kubernetes event to a push on every ADS stream
    gateway_api_roles      08: who owns GatewayClass, Gateway and HTTPRoute, and who turns them into Envoy's config
    tiered_gateways        08: a tier-1 gateway splitting by weight over two clusters' tier-2 gateways
    tier_path              08: the arrows a request took through the tiers (the cluster that answered)
    lazy_loading           09: Slime's lazy loading: global sidecar, access log, ServiceFence, Sidecar, istiod
    lazy_path              09: the arrows of a first call (through the global sidecar) or a later one (direct)
    aeraki_metaprotocol    11: Aeraki, istiod and the MetaProtocol proxy
    multi_network_mesh     12: two clusters on two networks, an istiod and an east-west gateway each
    cross_network_path     12: the arrows of a call answered at home or across the networks
    pilot_agent_jobs       07: one pod's Envoy and pilot-agent, and who talks to which port
    wasm_plugin_delivery   10: a WasmPlugin from istiod to the agent's fetch to its place in the filter chain
    spire_and_sds          13: SPIRE server, agent, workload attestation and Envoy's SDS
    policy_enforcement     14: where a request is authorized: the sidecar and an external PDP
"""

from __future__ import annotations

import re
from functools import partial
from textwrap import fill

from meshlab.viz.diagram import Arrow, Box, Diagram, Group

#: The book's chapters: number, short title, written yet.
CHAPTERS = (
    ("00", "how to use this book", True), ("01", "Kubernetes to Istio", True),
    ("02", "transparent interception", True), ("03", "eBPF: shortening the path", True),
    ("04", "where the proxy lives", True), ("05", "proxyless xDS", True),
    ("06", "the control plane under load", True), ("07", "the data plane: Envoy, pilot-agent", True),
    ("08", "gateways", True), ("09", "configuration at scale", True), ("10", "extending the proxy: Wasm", True),
    ("11", "beyond HTTP: MetaProtocol", True), ("12", "many clusters", True), ("13", "zero-trust identity", True),
    ("14", "NGAC vs RBAC", True),
)

#: Reading paths through the written chapters: name -> (chapters in order, hours with their labs, at
#: about an hour per chapter read and run, and forty minutes per lab: chapter 00's estimate).
READING_PATHS = {
    "data path": (("01", "02", "03", "04", "07"), 8),
    "control plane": (("01", "05", "06", "11"), 7),
    "security": (("01", "02", "13", "14"), 7),
}

#: Which chapter builds on which: (earlier, later).
BUILDS_ON = (("00", "01"), ("01", "02"), ("02", "03"), ("02", "04"), ("04", "07"), ("01", "05"), ("05", "06"), ("06", "09"),
             ("07", "08"), ("07", "10"), ("05", "11"), ("06", "12"), ("02", "13"), ("13", "14"))


def book_map() -> Diagram:
    """Every chapter of the book, grouped by part, with what each builds on; grey ones are planned."""
    boxes = tuple(Box(f"ch{number}", f"{number}\n{fill(title, 14)}", "app" if written else "planned") for number, title, written in CHAPTERS)
    parts = (
        Group("start", "start here", ("ch00", "ch01")),
        Group("dataplane", "the data path", ("ch02", "ch03", "ch04", "ch07")),
        Group("controlplane", "the control plane", ("ch05", "ch06", "ch09")),
        Group("edges", "edges and extensions", ("ch08", "ch10", "ch11", "ch12")),
        Group("security", "security", ("ch13", "ch14")),
    )
    arrows = tuple(Arrow(f"ch{a}", f"ch{b}") for a, b in BUILDS_ON)
    return Diagram("The book: each arrow points to a chapter that builds on another (grey: planned)", boxes, arrows, parts, "TB")


def reading_path(name: str) -> Diagram:
    """The book map with one reading path lit."""
    if name not in READING_PATHS:
        raise ValueError(f"no reading path {name!r}; paths: {', '.join(READING_PATHS)}")
    chapters, hours = READING_PATHS[name]
    lit = [f"ch{c}" for c in chapters] + [f"ch{a}->ch{b}" for a, b in zip(chapters, chapters[1:]) if (a, b) in BUILDS_ON]
    return book_map().lit(*lit, title=f"Reading path '{name}': {' -> '.join(chapters)}, about {hours} h with the labs")


def istio_architecture() -> Diagram:
    """Istio since 1.5: one istiod binary (config, discovery, CA) and an Envoy beside every app."""
    boxes = (
        Box("apiserver", "Kubernetes API server\nServices, Endpoints, Istio CRDs", "control-plane"),
        Box("xds", "xDS server (ADS)\nwas Pilot", "control-plane", ports=("15010", "15012")),
        Box("ca", "CA: signs workload\ncertificates, was Citadel", "control-plane"),
        Box("webhook", "sidecar injector and\nconfig validation webhooks", "control-plane", ports=("15017",)),
        Box("app_a", "app A", "app"), Box("agent_a", "pilot-agent", "proxy"), Box("envoy_a", "Envoy", "proxy", ports=("15001", "15006")),
        Box("app_b", "app B", "app"), Box("agent_b", "pilot-agent", "proxy"), Box("envoy_b", "Envoy", "proxy", ports=("15001", "15006")),
    )
    groups = (
        Group("istiod", "istiod (one binary since Istio 1.5)", ("xds", "ca", "webhook"), "control-plane"),
        Group("pod_a", "pod A", ("app_a", "agent_a", "envoy_a"), "app"),
        Group("pod_b", "pod B", ("app_b", "agent_b", "envoy_b"), "app"),
    )
    arrows = (
        Arrow("apiserver", "xds", "watch", "config"),
        Arrow("apiserver", "webhook:15017", "admission", "config"),
        Arrow("agent_a", "xds:15012", "xDS, CSR (mTLS)", "control"),
        Arrow("agent_b", "xds:15012", "xDS, CSR", "control", id="agent_b->xds"),
        Arrow("xds", "ca", "sign", "control"),
        Arrow("agent_a", "envoy_a", "SDS, xDS", "control"),
        Arrow("agent_b", "envoy_b", "SDS, xDS", "control"),
        Arrow("app_a", "envoy_a:15001", "call"),
        Arrow("envoy_a", "envoy_b:15006", "mTLS"),
        Arrow("envoy_b", "app_b", "call"),
    )
    return Diagram("Istio: istiod configures and certifies; Envoys carry every call", boxes, arrows, groups, "TB")


def sidecar_pod() -> Diagram:
    """A pod after istio-init: the app, Envoy (uid 1337), lo, eth0 and the nat chains between them.

    The four redirects: outbound to 15001, inbound to 15006, the sidecar's own calls to its pod IP
    over lo back to 15006, and (with --redirect-dns) DNS to the agent on 15053."""
    boxes = (
        Box("app", "app", "app", ports=("8080",)),
        Box("envoy", "istio-proxy: Envoy, uid 1337", "proxy", ports=("15001", "15006")),
        Box("agent_dns", "pilot-agent\nDNS proxy", "proxy", ports=("15053",)),
        Box("OUTPUT", "nat OUTPUT", "netfilter"), Box("ISTIO_OUTPUT", "ISTIO_OUTPUT", "netfilter"),
        Box("ISTIO_REDIRECT", "ISTIO_REDIRECT", "netfilter"), Box("ISTIO_OUTPUT_DNS", "ISTIO_OUTPUT_DNS", "netfilter"),
        Box("PREROUTING", "nat PREROUTING", "netfilter"), Box("ISTIO_INBOUND", "ISTIO_INBOUND", "netfilter"),
        Box("ISTIO_IN_REDIRECT", "ISTIO_IN_REDIRECT", "netfilter"),
        Box("lo", "lo", "wire"), Box("eth0_out", "eth0: out", "wire"), Box("eth0_in", "eth0: in", "wire"),
    )
    groups = (
        Group("netns", "the pod's network namespace", ("app", "envoy", "agent_dns", "OUTPUT", "ISTIO_OUTPUT", "ISTIO_REDIRECT",
                                                        "ISTIO_OUTPUT_DNS", "PREROUTING", "ISTIO_INBOUND", "ISTIO_IN_REDIRECT", "lo", "eth0_out",
                                                        "eth0_in"), "app"),
    )
    arrows = (
        Arrow("app", "OUTPUT", "connect"), Arrow("envoy", "OUTPUT", "uid 1337", id="envoy->OUTPUT"),
        Arrow("OUTPUT", "ISTIO_OUTPUT"), Arrow("ISTIO_OUTPUT", "ISTIO_REDIRECT", "app's calls"),
        Arrow("ISTIO_REDIRECT", "envoy:15001", "REDIRECT (1)"),
        Arrow("ISTIO_OUTPUT", "ISTIO_IN_REDIRECT", "(3) uid 1337 to\nown IP via lo", id="ISTIO_OUTPUT->ISTIO_IN_REDIRECT"),
        Arrow("OUTPUT", "ISTIO_OUTPUT_DNS", "udp/53"), Arrow("ISTIO_OUTPUT_DNS", "agent_dns:15053", "REDIRECT (4)"),
        Arrow("ISTIO_OUTPUT", "eth0_out", "RETURN:\nproxy's calls"), Arrow("ISTIO_OUTPUT", "lo", "RETURN:\nlocalhost"),
        Arrow("eth0_in", "PREROUTING"), Arrow("PREROUTING", "ISTIO_INBOUND"),
        Arrow("ISTIO_INBOUND", "ISTIO_IN_REDIRECT", "app ports"), Arrow("ISTIO_INBOUND", "app:8080", "RETURN:\nexcluded"),
        Arrow("ISTIO_IN_REDIRECT", "envoy:15006", "REDIRECT (2)"),
    )
    return Diagram("A meshed pod: Istio's nat chains send the app's traffic through its sidecar", boxes, arrows, groups, "TB")


def interception_path(connection, steps) -> list[str]:
    """The arrows of ``sidecar_pod`` a connection's first packet took, given the rules it matched in order:
    a model walk's steps (meshlab.intercept.walk) or the kernel's own trace (meshlab.lab.trace)."""
    chains = []
    for step in steps:
        if step.table == "nat" and (not chains or chains[-1] != step.chain):
            chains.append(step.chain)
    ports = [int(m.group(1)) for step in steps if (m := re.search(r"--to-ports (\d+)", step.rule))]
    here = ("envoy" if connection.uid == 1337 else "app") if connection.hook == "OUTPUT" else "eth0_in"
    names, seen = [], set()
    for chain in chains:
        if chain in seen:  # back in a chain already visited: a RETURN, the path has ended
            break
        names.append(f"{here}->{chain}")
        here = chain
        seen.add(chain)
    listeners = {15001: "envoy:15001", 15006: "envoy:15006", 15053: "agent_dns:15053"}
    if ports and ports[-1] in listeners:
        names.append(f"{here}->{listeners[ports[-1]]}")
    elif here == "ISTIO_OUTPUT":
        names.append("ISTIO_OUTPUT->" + ("lo" if connection.out_interface == "lo" else "eth0_out"))
    elif here == "ISTIO_INBOUND":
        names.append("ISTIO_INBOUND->app:8080")
    known = {arrow.name for arrow in sidecar_pod().arrows}
    return [name for name in names if name in known]


def socket_paths(same_node: bool) -> Diagram:
    """A request's three TCP connections, each either through the kernel's stack or socket to socket."""
    nodes = ("node1",) if same_node else ("node1", "node2")
    node_b = nodes[-1]
    boxes = (
        Box("app_a", "app A", "app"), Box("sidecar_a", "sidecar A", "proxy"),
        Box("sidecar_b", "sidecar B", "proxy"), Box("app_b", "app B", "app"),
        *(Box(f"stack_{n}", f"{n.replace('node', 'node ')}:\nTCP/IP stack, nat", "netfilter") for n in nodes),
    )
    groups = [Group("pod_a", "pod A", ("app_a", "sidecar_a"), "app"), Group("pod_b", "pod B", ("sidecar_b", "app_b"), "app")]
    if same_node:
        groups.append(Group("node1", "one node", ("pod_a", "pod_b", "stack_node1")))
    else:
        groups += [Group("node1", "node 1", ("pod_a", "stack_node1")), Group("node2", "node 2", ("pod_b", "stack_node2"))]
    arrows = [
        Arrow("app_a", "stack_node1", "1", id="1 app A->stack"), Arrow("stack_node1", "sidecar_a", "1: 15001", id="1 stack->sidecar A"),
        Arrow("app_a", "sidecar_a", "1: sk_msg", id="1 socket to socket"),
        Arrow("sidecar_a", "stack_node1", "2", id="2 sidecar A->stack"),
        Arrow(f"stack_{node_b}", "sidecar_b", "2: 15006", id="2 stack->sidecar B"),
        Arrow("sidecar_b", f"stack_{node_b}", "3", id="3 sidecar B->stack"), Arrow(f"stack_{node_b}", "app_b", "3", id="3 stack->app B"),
        Arrow("sidecar_b", "app_b", "3: sk_msg", id="3 socket to socket"),
    ]
    if same_node:
        arrows.append(Arrow("sidecar_a", "sidecar_b", "2: sk_msg", id="2 socket to socket"))
    else:
        arrows.append(Arrow("stack_node1", "stack_node2", "2: the wire", id="2 wire"))
    where = "on one node" if same_node else "across two nodes"
    return Diagram(f"One request, three connections, {where}", boxes, tuple(arrows), tuple(groups), "LR" if same_node else "TB")


def segment_path(datapath: str, same_node: bool) -> list[str]:
    """The arrows of ``socket_paths(same_node)`` one datapath takes (meshlab.intercept.paths)."""
    from meshlab.intercept.paths import request_segments

    segments = request_segments(datapath, same_node)
    stack = {
        1: ["1 app A->stack", "1 stack->sidecar A"],
        2: ["2 sidecar A->stack", "2 stack->sidecar B"] + ([] if same_node else ["2 wire"]),
        3: ["3 sidecar B->stack", "3 stack->app B"],
    }
    names = []
    for number, segment in enumerate(segments, start=1):
        names += [f"{number} socket to socket"] if segment.redirected else stack[number]
    return names


def deployment_models() -> Diagram:
    """The four places for the proxy on one node with two pods of two service accounts."""
    boxes, groups, arrows = [], [], []
    panels = {
        "sidecar": ("sidecar", {"p1": "Envoy", "p2": "Envoy"}, {}),
        "pernode": ("per node", {}, {"node": "Envoy"}),
        "persa": ("per service account", {}, {"sa1": "Envoy\nsa1", "sa2": "Envoy\nsa2"}),
        "ambient": ("ambient", {}, {"ztunnel": "ztunnel", "waypoint": "waypoint"}),
    }
    for panel, (title, in_pod, shared) in panels.items():
        members = []
        for pod, account in (("p1", "sa1"), ("p2", "sa2")):
            app = Box(f"{panel}_{pod}_app", f"app\n{account}", "app")
            inside = [app.id]
            boxes.append(app)
            if pod in in_pod:
                proxy = Box(f"{panel}_{pod}_proxy", in_pod[pod], "proxy")
                boxes.append(proxy)
                inside.append(proxy.id)
            groups.append(Group(f"{panel}_{pod}", f"pod {pod}", tuple(inside), "app"))
            members.append(f"{panel}_{pod}")
        for name, label in shared.items():
            boxes.append(Box(f"{panel}_{name}", label, "proxy"))
            members.append(f"{panel}_{name}")
        groups.append(Group(panel, title, tuple(members)))
        if panel == "sidecar":
            arrows += [Arrow("sidecar_p1_app", "sidecar_p1_proxy"), Arrow("sidecar_p1_proxy", "sidecar_p2_proxy", "mTLS"),
                       Arrow("sidecar_p2_proxy", "sidecar_p2_app")]
        elif panel == "pernode":
            arrows += [Arrow("pernode_p1_app", "pernode_node"), Arrow("pernode_node", "pernode_p2_app")]
        elif panel == "persa":
            arrows += [Arrow("persa_p1_app", "persa_sa1"), Arrow("persa_sa1", "persa_sa2", "mTLS"), Arrow("persa_sa2", "persa_p2_app")]
        else:
            arrows += [Arrow("ambient_p1_app", "ambient_ztunnel"), Arrow("ambient_ztunnel", "ambient_waypoint", "HBONE"),
                       Arrow("ambient_waypoint", "ambient_p2_app", "via ztunnel")]
    return Diagram("Where the proxy lives: four models, one node, two pods", tuple(boxes), tuple(arrows), tuple(groups), "TB")


def ambient_mesh() -> Diagram:
    """Ambient mode across two nodes: ztunnel in every pod's netns (via ZDS), HBONE, an optional waypoint."""
    boxes = (
        Box("cni", "istio-cni node agent", "control-plane"), Box("app_a", "app A", "app"),
        Box("zt1", "ztunnel (node 1)", "proxy", ports=("15001", "15006", "15008")),
        Box("waypoint", "waypoint: Envoy, L7 policy", "proxy", ports=("15008",)),
        Box("zt2", "ztunnel (node 2)", "proxy", ports=("15008",)), Box("app_b", "app B", "app"),
        Box("istiod", "istiod", "control-plane"),
    )
    groups = (Group("node1", "node 1", ("cni", "app_a", "zt1")), Group("node2", "node 2", ("zt2", "app_b", "waypoint")))
    arrows = (
        Arrow("cni", "zt1", "pod netns fd (ZDS)", "control"),
        Arrow("app_a", "zt1:15001", "captured in pod netns"),
        Arrow("zt1", "waypoint:15008", "HBONE (mTLS)"), Arrow("waypoint", "zt2:15008", "HBONE", id="waypoint->zt2"),
        Arrow("zt1", "zt2:15008", "HBONE when no L7", id="zt1->zt2"),
        Arrow("zt2", "app_b", "plain TCP in pod B"),
        Arrow("istiod", "zt1", "xDS (WDS, ...)", "control"), Arrow("istiod", "waypoint", "xDS", "control"),
    )
    return Diagram("Ambient mode: L4 in ztunnel per node, L7 only through a waypoint", boxes, arrows, groups, "TB")


def proxyless_vs_sidecar() -> Diagram:
    """The same app meshed two ways; both get their configuration over ADS from istiod."""
    boxes = (
        Box("istiod", "istiod", "control-plane", ports=("15010", "15012")),
        Box("app_s", "app", "app"), Box("envoy", "Envoy", "proxy", ports=("15001",)), Box("agent_s", "pilot-agent", "proxy"),
        Box("app_p", "gRPC app\nwith gRPC's xDS client", "app"), Box("agent_p", "pilot-agent\nxDS proxy", "proxy"),
        Box("peer", "the called service", "app"),
    )
    groups = (Group("sidecar", "sidecar pod", ("app_s", "envoy", "agent_s"), "app"),
              Group("proxyless", "proxyless pod", ("app_p", "agent_p"), "app"))
    arrows = (
        Arrow("app_s", "envoy:15001", "plain call"), Arrow("envoy", "peer", "mTLS"),
        Arrow("agent_s", "envoy", "xDS over unix socket", "control"),
        Arrow("agent_s", "istiod:15012", "ADS (mTLS)", "control"),
        Arrow("app_p", "agent_p", "ADS: unix:///etc/istio/proxy/XDS", "control"),
        Arrow("agent_p", "istiod:15012", "ADS (mTLS)", "control", id="agent_p->istiod"),
        Arrow("app_p", "peer", "direct call, gRPC balances", id="app_p->peer"),
    )
    return Diagram("Sidecar vs proxyless: who speaks xDS, and who carries the call", boxes, arrows, groups, "TB")


def push_pipeline() -> Diagram:
    """istiod's path from a change to pushes: debounce, PushContext, the push queue, the throttle."""
    boxes = (
        Box("informers", "Kubernetes informers\nconfig and endpoint events", "control-plane"),
        Box("debounce", "debounce\nPILOT_DEBOUNCE_AFTER 100 ms\nPILOT_DEBOUNCE_MAX 10 s", "control-plane"),
        Box("pushcontext", "new PushContext\n(full pushes only)", "control-plane"),
        Box("queue", "push queue: one entry per\nproxy, later requests merge", "control-plane"),
        Box("throttle", "PILOT_PUSH_THROTTLE\nconcurrent pushes", "control-plane"),
        Box("streams", "ADS streams:\ngenerate and send", "control-plane"),
        Box("proxies", "proxies (Envoy or gRPC)", "proxy"),
    )
    groups = (Group("istiod", "istiod", ("debounce", "pushcontext", "queue", "throttle", "streams"), "control-plane"),)
    arrows = (
        Arrow("informers", "debounce", "push request"), Arrow("debounce", "pushcontext", "merged batch"),
        Arrow("pushcontext", "queue", "enqueue all proxies"), Arrow("informers", "queue", "EDS, debounce off", id="eds-bypass"),
        Arrow("queue", "throttle", "dequeue"), Arrow("throttle", "streams"), Arrow("streams", "proxies", "DiscoveryResponse"),
        Arrow("proxies", "streams", "ACK / NACK", id="ack"),
    )
    return Diagram("istiod's push pipeline", boxes, arrows, groups, "TB")


def aeraki_metaprotocol() -> Diagram:
    """Aeraki beside istiod: the filter goes through istiod, the routes come from Aeraki itself."""
    boxes = (
        Box("apiserver", "Kubernetes API server\nMetaRouter, EnvoyFilter", "control-plane"),
        Box("aeraki", "Aeraki\n(its own RDS server)", "control-plane"), Box("istiod", "istiod", "control-plane"),
        Box("client", "Dubbo / Thrift client", "app"), Box("proxy_c", "Envoy with\nMetaProtocol proxy", "proxy"),
        Box("proxy_s", "Envoy with\nMetaProtocol proxy", "proxy"), Box("server", "Dubbo / Thrift server", "app"),
    )
    groups = (Group("pod_c", "client pod", ("client", "proxy_c"), "app"), Group("pod_s", "server pod", ("proxy_s", "server"), "app"))
    arrows = (
        Arrow("apiserver", "aeraki", "watch MetaRouter", "config"),
        Arrow("aeraki", "apiserver", "write EnvoyFilter", "config", id="aeraki->apiserver"),
        Arrow("apiserver", "istiod", "watch EnvoyFilter", "config"),
        Arrow("istiod", "proxy_c", "LDS/CDS with the filter", "control"),
        Arrow("aeraki", "proxy_c", "RDS: MetaRouteConfiguration", "control"),
        Arrow("client", "proxy_c", "request"), Arrow("proxy_c", "proxy_s", "route by header"), Arrow("proxy_s", "server"),
    )
    return Diagram("Aeraki: routes for any protocol, served beside istiod", boxes, arrows, groups, "TB")


def spire_and_sds() -> Diagram:
    """SPIRE issues SVIDs to attested workloads; Envoy takes them over SDS (SPIRE's or pilot-agent's)."""
    boxes = (
        Box("server", "SPIRE server\nCA, registration entries", "control-plane"),
        Box("agent", "SPIRE agent (per node)\nWorkload API, SDS", "control-plane"),
        Box("kernel", "kernel: caller's pid,\nuid, gids, cgroup", "netfilter"),
        Box("workload", "workload", "app"), Box("envoy", "Envoy", "proxy"),
        Box("pilot_agent", "pilot-agent SDS", "proxy"), Box("istiod", "istiod CA", "control-plane"),
    )
    groups = (Group("node", "node", ("agent", "kernel", "workload", "envoy", "pilot_agent")),)
    arrows = (
        Arrow("agent", "server", "node attestation", "control"),
        Arrow("server", "agent", "entries, SVIDs", "control", id="server->agent"),
        Arrow("workload", "agent", "Workload API (unix socket)"), Arrow("agent", "kernel", "who is calling?", "control"),
        Arrow("agent", "envoy", "SDS: SVID, bundle", "control"),
        Arrow("pilot_agent", "envoy", "SDS (default)", "control", id="pilot_agent->envoy"),
        Arrow("pilot_agent", "istiod", "CSR on 15012", "control"),
    )
    return Diagram("Workload identity: SPIRE, or Istio's own CA, delivers certificates over SDS", boxes, arrows, groups, "TB")


def policy_enforcement() -> Diagram:
    """Where a call is authorized: Envoy's RBAC filter in the sidecar, or an external decision point."""
    boxes = (
        Box("client", "client (SPIFFE ID)", "app"), Box("envoy", "Envoy: mTLS, then\nCUSTOM, DENY, ALLOW", "proxy"),
        Box("pdp", "external authorizer\n(e.g. meshlab's NGAC PDP)", "control-plane"), Box("server", "server", "app"),
        Box("istiod", "istiod", "control-plane"), Box("policies", "AuthorizationPolicy", "control-plane"),
    )
    groups = (Group("pod", "server pod", ("envoy", "server"), "app"),)
    arrows = (
        Arrow("client", "envoy", "request"), Arrow("envoy", "pdp", "ext_authz check", "control"),
        Arrow("envoy", "server", "allowed"), Arrow("policies", "istiod", "watch", "config"),
        Arrow("istiod", "envoy", "RBAC filter config", "control"),
    )
    return Diagram("Authorization at the sidecar: RBAC filter, or an external decision point", boxes, arrows, groups, "TB")


def gateway_api_roles() -> Diagram:
    """The Gateway API's three roles (gateway-api.sigs.k8s.io, "Roles and personas", v1.0): each owns one kind,
    a controller such as Envoy Gateway translates them all into one proxy's xDS."""
    boxes = (
        Box("provider", "infrastructure provider", "app"), Box("operator", "cluster operator", "app"),
        Box("developer", "application developers", "app"),
        Box("class", "GatewayClass\ncontrollerName", "control-plane"),
        Box("gateway", "Gateway\nlisteners, allowedRoutes", "control-plane"),
        Box("routes", "HTTPRoute, GRPCRoute\nReferenceGrant", "control-plane"),
        Box("controller", "Envoy Gateway: Gateway API\nto IR to xDS translators", "control-plane"),
        Box("envoy", "gateway proxy (Envoy)", "proxy", ports=("80", "443")),
        Box("client", "client", "app"), Box("service", "Services in\nany allowed namespace", "app"),
    )
    groups = (Group("api", "Kubernetes API: one kind per role", ("class", "gateway", "routes"), "control-plane"),)
    arrows = (
        Arrow("provider", "class", "defines"), Arrow("operator", "gateway", "owns"), Arrow("developer", "routes", "own"),
        Arrow("routes", "gateway", "parentRefs attach", "config"), Arrow("gateway", "class", "gatewayClassName", "config"),
        Arrow("class", "controller", "watch", "config", id="class->controller"),
        Arrow("controller", "envoy", "xDS: listeners, routes,\nclusters, endpoints", "control"),
        Arrow("client", "envoy:80", "request"), Arrow("envoy", "service", "routed by host,\npath, headers"),
    )
    return Diagram("The Gateway API: three roles, three kinds, one proxy configured from all of them", boxes, arrows, groups, "TB")


#: The clusters of the tiered-gateway diagram, as the live lab names them.
TIER_CLUSTERS = ("cluster1", "cluster2")


def tiered_gateways() -> Diagram:
    """Tetrate's tiered gateways: a tier-1 at the edge splits by weight (75/25 in Tetrate's blog on tiered gateways) over
    each cluster's tier-2 ingress gateway, which routes to the cluster's own pods."""
    boxes = [Box("client", "client", "app"), Box("tier1", "tier-1 gateway\nhealth checks, outlier detection", "proxy")]
    groups = []
    arrows = [Arrow("client", "tier1", "shop.example.com")]
    for cluster, share in zip(TIER_CLUSTERS, ("75%", "25%")):
        boxes += [Box(f"{cluster}_tier2", "tier-2 gateway", "proxy"), Box(f"{cluster}_pods", "shop pods", "app")]
        groups.append(Group(cluster, cluster, (f"{cluster}_tier2", f"{cluster}_pods")))
        arrows += [Arrow("tier1", f"{cluster}_tier2", share), Arrow(f"{cluster}_tier2", f"{cluster}_pods", "HTTPRoute")]
    return Diagram("Tier-1 splits across clusters by weight; each tier-2 routes inside its cluster", tuple(boxes), tuple(arrows), tuple(groups), "TB")


def tier_path(cluster: str) -> list[str]:
    """The arrows and boxes a request answered in ``cluster`` went through, for ``tiered_gateways().lit``."""
    if cluster not in TIER_CLUSTERS:
        raise ValueError(f"no cluster {cluster!r}; clusters: {', '.join(TIER_CLUSTERS)}")
    return ["client->tier1", f"tier1->{cluster}_tier2", f"{cluster}_tier2->{cluster}_pods"]


def lazy_loading() -> Diagram:
    """NetEase Slime's lazy loading (slime-io/slime, modules/lazyload): a proxy that knows almost nothing
    sends unknown calls to the global sidecar, whose access log teaches the controller what to put in
    the caller's Sidecar."""
    boxes = (
        Box("app", "app A", "app"), Box("proxy", "A's proxy\nscoped: knows B after", "proxy"),
        Box("global", "global sidecar\nfull configuration", "proxy"), Box("service", "service B", "app"),
        Box("controller", "lazyload controller\nlearner, ServiceFence", "control-plane"),
        Box("api", "Kubernetes API\nServiceFence, Sidecar", "control-plane"), Box("istiod", "istiod", "control-plane"),
    )
    groups = (Group("pod", "pod A", ("app", "proxy"), "app"),)
    arrows = (
        Arrow("app", "proxy", "call B"),
        Arrow("proxy", "global", "unknown host:\nfallback route", id="fallback"),
        Arrow("global", "service", "original destination", id="forward"),
        Arrow("global", "controller", "access log: A called B", "control", id="log"),
        Arrow("controller", "api", "ServiceFence A,\nSidecar A += B", "config", id="fence"),
        Arrow("api", "istiod", "watch", "config", id="watch"),
        Arrow("istiod", "proxy", "scoped push", "control", id="push"),
        Arrow("proxy", "service", "later calls: direct", id="direct"),
    )
    return Diagram("Lazy loading: the first call teaches the proxy what it needs", boxes, arrows, groups, "TB")


def multi_network_mesh() -> Diagram:
    """Istio's multi-primary, multi-network model (istio.io "Install Multi-Primary on different networks"):
    each cluster's istiod reads both API servers and sends its proxies split-horizon EDS, in which the
    other network's pods are its east-west gateway; that gateway routes mutual TLS by SNI without
    terminating it (AUTO_PASSTHROUGH on 15443)."""
    boxes, groups, arrows = [], [], []
    for k in (1, 2):
        boxes += [Box(f"istiod{k}", f"istiod {k}\nreads both API servers", "control-plane"),
                  Box(f"api{k}", f"API server {k}", "control-plane"),
                  Box(f"eastwest{k}", "east-west gateway\n:15443 AUTO_PASSTHROUGH", "proxy")]
        members = [f"istiod{k}", f"api{k}", f"eastwest{k}"]
        if k == 1:
            boxes += [Box("sleep", "sleep + sidecar", "proxy"), Box("echo1", "echo pods", "app")]
            members += ["sleep", "echo1"]
        else:
            boxes += [Box("hello", "hello pods", "app"), Box("echo2", "echo pods", "app")]
            members += ["hello", "echo2"]
        groups.append(Group(f"cluster{k}", f"cluster{k} · network{k} · region{k}", tuple(members)))
    arrows += [
        Arrow("api1", "istiod1", "watch", "config"), Arrow("api2", "istiod1", "remote secret", "config", id="remote1"),
        Arrow("api2", "istiod2", "watch", "config"), Arrow("api1", "istiod2", "remote secret", "config", id="remote2"),
        Arrow("istiod1", "sleep", "split-horizon EDS", "control", id="eds"),
        Arrow("sleep", "echo1", "echo: priority 0", id="home"),
        Arrow("sleep", "eastwest2", "mTLS, SNI outbound_.9080_._.hello", id="cross"),
        Arrow("eastwest2", "hello", "by SNI, still encrypted", id="passthrough"),
        Arrow("eastwest2", "echo2", "echo: priority 1 (failover)", id="failover"),
    ]
    return Diagram("Two clusters, two networks, one mesh: what crosses goes through the east-west gateway",
                   tuple(boxes), tuple(arrows), tuple(groups), "TB")


def cross_network_path(crossed: bool, service: str = "hello") -> list[str]:
    """The arrows a call lights in ``multi_network_mesh()``: answered at home, or across the networks
    (``service`` hello: its own pods; echo: the failover to the other cluster's)."""
    if not crossed:
        return ["eds", "home"]
    if service not in ("hello", "echo"):
        raise ValueError(f"no service {service!r} in the diagram; services: hello, echo")
    return ["eds", "cross", "passthrough" if service == "hello" else "failover"]


def lazy_path(first: bool) -> list[str]:
    """What a call lights in ``lazy_loading()``: the first to a service (the detour and the learning
    it starts), or a later one (direct)."""
    if first:
        return ["app->proxy", "fallback", "forward", "log", "fence", "watch", "push"]
    return ["app->proxy", "direct"]


def pilot_agent_jobs() -> Diagram:
    """One meshed pod as Istio 1.30 runs it: the istio-proxy container holds two processes, Envoy and
    pilot-agent, and the agent does every job Envoy does not (ports from Istio's bootstrap and
    istio-iptables: 15000 admin, 15001 and 15006 Envoy's listeners, 15020 and 15021 the agent's status
    server, 15053 its DNS proxy, 15090 Envoy's Prometheus listener)."""
    boxes = (
        Box("istiod", "istiod\nxDS, CA (15012)", "control-plane"),
        Box("kubelet", "kubelet", "control-plane"), Box("prometheus", "Prometheus", "control-plane"),
        Box("collector", "collector", "control-plane"), Box("client", "client pod", "app"),
        Box("agent", "pilot-agent\nbootstrap, SDS, xDS proxy\n:15020 :15021 :15053", "proxy"),
        Box("envoy", "Envoy\n:15001 :15006\nadmin :15000, :15090", "proxy"),
        Box("app", "app :8080", "app"),
    )
    groups = (Group("pod", "pod: istio-proxy container (agent + Envoy) beside the app", ("agent", "envoy", "app"), "app"),)
    arrows = (
        Arrow("istiod", "agent", "xDS, CSR", "control", id="xds"),
        Arrow("agent", "envoy", "bootstrap, xDS, SDS (unix sockets)", "control", id="sds"),
        Arrow("client", "envoy", ":8080 via :15006", id="inbound"),
        Arrow("envoy", "app", "filters, then router", id="to_app"),
        Arrow("kubelet", "agent", "probes /app-health on :15020", "control", id="probe"),
        Arrow("agent", "app", "the app's own probe", "control", id="probe_app"),
        Arrow("prometheus", "agent", "scrape :15020", "control", id="scrape"),
        Arrow("app", "agent", "DNS :53 -> :15053", id="dns"),
        Arrow("envoy", "collector", "ALS, OTLP", "control", id="telemetry"),
    )
    return Diagram("Inside the sidecar container: Envoy moves the bytes, pilot-agent does the rest",
                   boxes, arrows, groups, "TB")


def wasm_plugin_delivery() -> Diagram:
    """How a WasmPlugin reaches a request (Istio 1.30): istiod sends the module's address as an ECDS
    resource, pilot-agent fetches it, checks its sha256 and hands Envoy a local file; the filter runs
    at its phase's place in the inbound HTTP filter chain."""
    boxes = (
        Box("plugin", "WasmPlugin\nurl, sha256, phase", "control-plane"),
        Box("registry", "OCI registry /\nHTTP server", "control-plane"),
        Box("istiod", "istiod", "control-plane"),
        Box("agent", "pilot-agent\nfetch, check, cache", "proxy"),
        Box("authn", "AUTHN plugins\nthen authn filters", "proxy"), Box("authz", "AUTHZ plugins\nthen RBAC", "proxy"),
        Box("stats", "STATS plugins\nthen istio.stats", "proxy"), Box("router", "UNSPECIFIED_PHASE\nplugins, router", "proxy"),
        Box("app", "app", "app"),
    )
    groups = (Group("chain", "Envoy: inbound HTTP filter chain", ("authn", "authz", "stats", "router")),)
    arrows = (
        Arrow("plugin", "istiod", "watch", "config", id="watch"),
        Arrow("istiod", "agent", "ECDS: remote url", "control", id="ecds"),
        Arrow("registry", "agent", "module bytes", "control", id="fetch"),
        Arrow("agent", "authn", "ECDS: local file", "control", id="local"),
        Arrow("authn", "authz", id="a1"), Arrow("authz", "stats", id="a2"), Arrow("stats", "router", id="a3"),
        Arrow("router", "app", id="forward"),
    )
    return Diagram("A WasmPlugin's way: from a resource to a filter in every selected proxy", boxes, arrows, groups, "TB")


#: The diagram each chapter opens with.
CHAPTER_DIAGRAMS = {
    "00": book_map, "01": istio_architecture, "02": sidecar_pod, "03": partial(socket_paths, same_node=False),
    "04": deployment_models, "05": proxyless_vs_sidecar, "06": push_pipeline, "07": pilot_agent_jobs, "08": gateway_api_roles,
    "09": lazy_loading, "10": wasm_plugin_delivery, "11": aeraki_metaprotocol,
    "12": multi_network_mesh,
    "13": spire_and_sds, "14": policy_enforcement,
}

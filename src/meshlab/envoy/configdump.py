"""Envoy's admin ``/config_dump`` made from xDS resources, and read back as ``istioctl proxy-config`` prints it.

What a proxy was sent is what its admin endpoint dumps: an envoy.admin.v3.ConfigDump whose
``configs`` hold one dump per resource type, in Envoy's order (clusters, endpoints, listeners,
routes: admin/v3/config_dump.proto, go-control-plane envoy@v1.38.0), each resource under
``dynamic_active_*`` with the ``version_info`` it came with and when it arrived (``last_updated``).
Endpoints are dumped only when asked (``/config_dump?include_eds``). Routes given inline in a
listener's HTTP connection manager (Istio's inbound routes) are part of the listener, not of the
routes dump.

The tables are istioctl's (istio.io/istio@v0.0.0-20260826214018-9739e10eb9d7,
istioctl/pkg/writer/envoy/configdump: listener.go PrintListenerSummary with ``--verbose`` (the
default), cluster.go PrintClusterSummary, route.go PrintRouteSummary, endpoint.go
PrintEndpointsSummary, which ``proxy-config eds`` prints; ``proxy-config endpoints`` reads Envoy's
``/clusters`` instead, which is not a config dump). They read the dump's JSON, in Envoy's snake_case
or protojson's camelCase, so they render a real Envoy's dump as well; a typed config of a type no
module here defines (one of Istio's own filters, say) is read as a Struct, since no table looks inside. Go's text/tabwriter lays them out (padding 1 for listeners, 5 for the others). Rows are
ordered as istioctl orders them; where istioctl's comparison leaves rows tied (several filter chains
with one destination), Go's sort.Slice keeps their order for up to 12 rows (insertion sort,
sort/zsortfunc.go) and so does this module, whatever the count.

    LAST_UPDATED         the fixed time meshlab stamps on resources (dumps are pinned by the book)
    config_dump          a ConfigDump's JSON from {type URL: {name: Any}} (optionally with EDS)
    known_type           whether a type URL's message can be read, importing its xds-protos package if need be
    tabwriter            Go's text/tabwriter layout of tab-separated rows
    listeners_table      ``istioctl proxy-config listeners -f dump.json``
    clusters_table       ``istioctl proxy-config clusters -f dump.json``
    routes_table         ``istioctl proxy-config routes -f dump.json``
    eds_table            ``istioctl proxy-config eds -f dump.json`` (the endpoints dump)
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2 as shared_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import any_pb2, descriptor_pool, json_format, timestamp_pb2

from meshlab.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE

LAST_UPDATED = datetime(2026, 1, 1, tzinfo=timezone.utc)
DUMP_TYPES = {CLUSTER: "ClustersConfigDump", ENDPOINT: "EndpointsConfigDump", LISTENER: "ListenersConfigDump", ROUTE: "RoutesConfigDump"}
HTTP_CONNECTION_MANAGER = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
BLACKHOLE_CLUSTER = "BlackHoleCluster"
PASSTHROUGH_CLUSTER = "PassthroughCluster"
# istioctl listener.go protDescrs: ALPN lists it names instead of listing them
ALPN_DESCRIPTIONS = {("http/1.0", "http/1.1", "h2c", "istio-http/1.0", "istio-http/1.1", "istio-h2"): "App: HTTP TLS",
                     ("istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"): "App: Istio HTTP Plain",
                     ("istio-peer-exchange", "istio"): "App: TCP TLS",
                     ("http/1.0", "http/1.1", "h2c"): "App: HTTP"}

T = TypeVar("T")


def _stamp(when: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    return stamp


def _checked(type_url: str, resources: Mapping[str, any_pb2.Any]) -> list[tuple[str, any_pb2.Any]]:
    for name, packed in resources.items():
        if not isinstance(packed, any_pb2.Any) or packed.type_url != type_url:
            got = packed.type_url if isinstance(packed, any_pb2.Any) else type(packed).__name__
            raise ValueError(f"resource {name!r} under {type_url} holds {got}; each resource must be an Any of its type URL")
    return sorted(resources.items())


def config_dump(resources: Mapping[str, Mapping[str, any_pb2.Any]], version_info: str = "1", last_updated: datetime = LAST_UPDATED,
                include_eds: bool = False) -> dict:
    """The ConfigDump's JSON as Envoy's admin prints it (proto field names, snake_case) for ``resources``, {type URL: {name: Any}}:
    every resource dynamic and active at ``version_info``; the endpoints only with ``include_eds``."""
    unknown = sorted(set(resources) - set(DUMP_TYPES))
    if unknown:
        raise ValueError(f"type URL {unknown[0]!r}; accepted are {', '.join(DUMP_TYPES)}")
    stamp = _stamp(last_updated)
    dumps: dict[str, Any] = {}
    clusters = _checked(CLUSTER, resources.get(CLUSTER, {}))
    dumps[CLUSTER] = shared_pb2.ClustersConfigDump(version_info=version_info, dynamic_active_clusters=[
        shared_pb2.ClustersConfigDump.DynamicCluster(version_info=version_info, cluster=c, last_updated=stamp) for _, c in clusters])
    if include_eds:
        endpoints = _checked(ENDPOINT, resources.get(ENDPOINT, {}))
        dumps[ENDPOINT] = shared_pb2.EndpointsConfigDump(dynamic_endpoint_configs=[
            shared_pb2.EndpointsConfigDump.DynamicEndpointConfig(version_info=version_info, endpoint_config=e, last_updated=stamp) for _, e in endpoints])
    listeners = _checked(LISTENER, resources.get(LISTENER, {}))
    dumps[LISTENER] = shared_pb2.ListenersConfigDump(version_info=version_info, dynamic_listeners=[
        shared_pb2.ListenersConfigDump.DynamicListener(name=name, active_state=shared_pb2.ListenersConfigDump.DynamicListenerState(
            version_info=version_info, listener=packed, last_updated=stamp)) for name, packed in listeners])
    routes = _checked(ROUTE, resources.get(ROUTE, {}))
    dumps[ROUTE] = shared_pb2.RoutesConfigDump(dynamic_route_configs=[
        shared_pb2.RoutesConfigDump.DynamicRouteConfig(version_info=version_info, route_config=r, last_updated=stamp) for _, r in routes])
    dump = config_dump_pb2.ConfigDump()
    for type_url in DUMP_TYPES:
        if type_url in dumps:
            dump.configs.add().Pack(dumps[type_url])
    return json_format.MessageToDict(dump, preserving_proto_field_name=True)


def known_type(type_url: str) -> bool:
    """Whether the type's message is in the protobuf pool, importing its package's modules from
    xds-protos first if need be (a real Envoy's dump holds types meshlab never imports itself)."""
    name = type_url.rsplit("/", 1)[-1]
    pool = descriptor_pool.Default()
    try:
        pool.FindMessageTypeByName(name)
        return True
    except KeyError:
        pass
    package = name.rsplit(".", 1)[0]
    try:
        found = importlib.import_module(package)
    except ImportError:
        return False
    for module in pkgutil.iter_modules(getattr(found, "__path__", [])):
        if module.name.endswith("_pb2"):
            importlib.import_module(f"{package}.{module.name}")
    try:
        pool.FindMessageTypeByName(name)
        return True
    except KeyError:
        return False


def _readable(value: Any) -> Any:
    """``value`` with every typed config of a type no module here defines (Istio's own filters, say)
    replaced by a Struct of its fields: istioctl's tables never look inside those."""
    if isinstance(value, list):
        return [_readable(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "@type" in value and not known_type(value["@type"]):
        return {"@type": "type.googleapis.com/google.protobuf.Struct", "value": {k: v for k, v in value.items() if k != "@type"}}
    return {key: _readable(item) for key, item in value.items()}


def _admin(dump: Mapping, kind: type[T]) -> T:
    """The dump's ``kind`` (e.g. ClustersConfigDump); the JSON may use Envoy's snake_case field names
    (what Envoy's admin prints) or protojson's camelCase (both are read)."""
    name = kind.DESCRIPTOR.full_name  # type: ignore[attr-defined]
    configs = dump.get("configs") if isinstance(dump, Mapping) else None
    if not isinstance(configs, list):
        raise ValueError("config dump: no 'configs' list (an envoy.admin.v3.ConfigDump's JSON, as /config_dump prints it)")
    for config in configs:
        if isinstance(config, Mapping) and str(config.get("@type", "")).endswith("/" + name):
            try:
                return json_format.ParseDict(_readable({k: v for k, v in config.items() if k != "@type"}), kind(), ignore_unknown_fields=True)
            except json_format.ParseError as error:
                raise ValueError(f"config dump: {name}: {error}") from None
    raise ValueError(f"config dump has no {name.rsplit('.', 1)[-1]} (a dump's 'configs' list holds one entry per type; endpoints need /config_dump?include_eds)")


def _unpacked(packed: any_pb2.Any, kind: type[T]) -> T:
    found = kind()
    if not packed.Unpack(found):  # type: ignore[arg-type]
        raise ValueError(f"the dump holds {packed.type_url} where {kind.DESCRIPTOR.full_name} belongs")  # type: ignore[attr-defined]
    return found


def tabwriter(rows: list[list[str]], padding: int = 1) -> str:
    """Go's text/tabwriter (minwidth 0, tabwidth 8, padchar ' ', no flags) on rows of cells: each cell
    but a row's last is padded to its column block's widest cell plus ``padding``; a column block is
    a run of consecutive rows that have a cell in that column."""
    out: list[str] = []
    widths: list[int] = []

    def write(line0: int, line1: int) -> None:
        for row in rows[line0:line1]:
            out.append("".join(cell.ljust(widths[j]) if j < len(widths) else cell for j, cell in enumerate(row)))

    def layout(line0: int, line1: int) -> int:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(rows[this]) - 1:
                this += 1
                continue
            write(line0, this)
            line0 = this
            width = 0
            while this < line1 and column < len(rows[this]) - 1:
                width = max(width, len(rows[this][column]) + padding)
                this += 1
            widths.append(width)
            line0 = layout(line0, this)
            widths.pop()
        write(line0, line1)
        return line1

    layout(0, len(rows))
    return "".join(line + "\n" for line in out)


def _insertion_sorted(items: list[T], less: Callable[[T, T], bool]) -> list[T]:
    """Go's sort.Slice as it runs on up to 12 elements (insertion sort): ties keep their order."""
    items = list(items)
    for i in range(1, len(items)):
        j = i
        while j > 0 and less(items[j], items[j - 1]):
            items[j], items[j - 1] = items[j - 1], items[j]
            j -= 1
    return items


# listeners ------------------------------------------------------------------------------------

def _listeners(dump: Mapping) -> list[listener_pb2.Listener]:
    body = _admin(dump, shared_pb2.ListenersConfigDump)
    found = [_unpacked(item.active_state.listener, listener_pb2.Listener) for item in body.dynamic_listeners if item.active_state.HasField("listener")]
    found += [_unpacked(item.listener, listener_pb2.Listener) for item in body.static_listeners if item.HasField("listener")]
    if not found:
        raise ValueError("the listeners dump holds no listener")
    return found


def _chains(listener: listener_pb2.Listener) -> list[listener_components_pb2.FilterChain]:
    chains = list(listener.filter_chains)
    if listener.HasField("default_filter_chain"):
        chains.append(listener.default_filter_chain)
    return chains


def _is_blackhole(network_filter: listener_components_pb2.Filter) -> bool:
    """istioctl looks for the name in the tcp_proxy's serialized config."""
    return BLACKHOLE_CLUSTER.encode() in network_filter.typed_config.value


def _listener_type(listener: listener_pb2.Listener) -> str:
    filters = [f for chain in _chains(listener) for f in chain.filters]
    http = sum(f.name == HTTP_CONNECTION_MANAGER for f in filters)
    tcp = sum(f.name == TCP_PROXY and not _is_blackhole(f) for f in filters)
    if http:
        return "HTTP" if not tcp else "HTTP+TCP"
    return "TCP" if tcp else "UNKNOWN"


def _match_all_cluster(route: route_pb2.RouteConfiguration) -> str:
    if len(route.virtual_hosts) != 1 or list(route.virtual_hosts[0].domains) != ["*"] or len(route.virtual_hosts[0].routes) != 1:
        return ""
    only = route.virtual_hosts[0].routes[0]
    if only.match.prefix != "/" or not only.HasField("route") or not only.route.cluster:
        return ""
    return only.route.cluster if "Cluster" in only.route.cluster else f"Cluster: {only.route.cluster}"


def _describe_match(match) -> str:
    conditions = []
    if match.prefix:
        conditions.append(f"{match.prefix}*")
    if match.path_separated_prefix:
        conditions.append(f"PathPrefix:{match.path_separated_prefix}")
    if match.path:
        conditions.append(match.path)
    if match.HasField("safe_regex"):
        conditions.append(f"regex {match.safe_regex.regex}")
    return " ".join(conditions)


def _describe_route_config(route: route_pb2.RouteConfiguration) -> str:
    cluster = _match_all_cluster(route)
    if cluster:
        return cluster
    hosts = []
    for host in route.virtual_hosts:
        domains = "" if list(host.domains) == ["*"] else "/".join(host.domains)
        routes = ", ".join(_describe_match(r.match) for r in host.routes)
        hosts.append(f"{domains} {routes}" if domains else routes)
    return f"Inline Route: {'; '.join(hosts)}"


def _destination(chain: listener_components_pb2.FilterChain) -> str:
    """istioctl getFilterType: the first HCM's route, or the first tcp_proxy's cluster that is not the blackhole."""
    for network_filter in chain.filters:
        if network_filter.name == HTTP_CONNECTION_MANAGER:
            manager = hcm_pb2.HttpConnectionManager()
            network_filter.typed_config.Unpack(manager)
            if manager.HasField("route_config"):
                return _describe_route_config(manager.route_config)
            if manager.rds.route_config_name:
                return f"Route: {manager.rds.route_config_name}"
            return "HTTP"
        if network_filter.name == TCP_PROXY and not _is_blackhole(network_filter):
            proxy = tcp_proxy_pb2.TcpProxy()
            network_filter.typed_config.Unpack(proxy)
            return proxy.cluster if "Cluster" in proxy.cluster else f"Cluster: {proxy.cluster}"
    return "Non-HTTP/Non-TCP"


def _match(match: listener_components_pb2.FilterChainMatch) -> str:
    """istioctl getMatches: SNI, transport, ALPN (named when istioctl knows the list), address and port."""
    parts = []
    if match.server_names:
        parts.append(f"SNI: {','.join(match.server_names)}")
    if match.transport_protocol:
        parts.append(f"Trans: {match.transport_protocol}")
    if match.application_protocols:
        parts.append(ALPN_DESCRIPTIONS.get(tuple(match.application_protocols), f"App: {','.join(match.application_protocols)}"))
    port = f":{match.destination_port.value}" if match.HasField("destination_port") else ""
    if match.prefix_ranges:
        parts.append(f"Addr: {','.join(f'{p.address_prefix}/{p.prefix_len.value}' for p in match.prefix_ranges)}{port}")
    elif port:
        parts.append(f"Addr: *{port}")
    return "; ".join(parts) or "ALL"


def listeners_table(dump: Mapping) -> str:
    """``istioctl proxy-config listeners -f dump.json``: one row per filter chain, listeners by port,
    address and type, each listener's chains by destination, descending."""
    def address(item: listener_pb2.Listener) -> str:
        return item.address.socket_address.address or item.address.pipe.path

    def key(item: listener_pb2.Listener) -> tuple[int, str, str]:
        return item.address.socket_address.port_value, address(item), _listener_type(item)

    rows = [["ADDRESSES", "PORT", "MATCH", "DESTINATION"]]
    for item in _insertion_sorted(_listeners(dump), lambda a, b: key(a) < key(b)):
        addresses = ",".join([address(item)] + [a.address.socket_address.address for a in item.additional_addresses])
        chains = [(_match(c.filter_chain_match), _destination(c)) for c in _chains(item)]
        for match, destination in _insertion_sorted(chains, lambda a, b: a[1] > b[1]):
            rows.append([addresses, str(item.address.socket_address.port_value), match, destination])
    return tabwriter(rows)


# clusters -------------------------------------------------------------------------------------

def _subset_key(name: str) -> tuple[str, str, str, int]:
    """model.ParseSubsetKey for ``direction|port|subset|hostname`` (and ``outbound_.port_.subset_.host``):
    (direction, subset, hostname, port); names of another form are their own hostname."""
    if len(name.split("|")) <= 3:
        return "", "", name, 0
    separator = "_." if name.startswith(("outbound_", "inbound_")) else "|"
    parts = name.split(separator, 3) + ["", "", ""]
    direction, port, subset, hostname = parts[:4]
    return direction, subset, hostname, int(port) if port.isdigit() else 0


def _by_subset_key(a: str, b: str) -> bool:
    (ad, asub, ahost, aport), (bd, bsub, bhost, bport) = _subset_key(a), _subset_key(b)
    return (ahost, asub, aport, ad) < (bhost, bsub, bport, bd)


def _management(metadata) -> str:
    """istioctl describeManagement / renderConfig: the Istio config a resource came from, as name.namespace."""
    if "istio" not in metadata.filter_metadata or "config" not in metadata.filter_metadata["istio"].fields:
        return ""
    path = metadata.filter_metadata["istio"].fields["config"].string_value
    if not path.startswith("/apis/networking.istio.io/"):
        return "<unknown>"
    pieces = path.split("/")
    return f"{pieces[7]}.{pieces[5]}" if len(pieces) == 8 else ""


def clusters_table(dump: Mapping) -> str:
    """``istioctl proxy-config clusters -f dump.json``: clusters by hostname, subset, port, direction."""
    body = _admin(dump, shared_pb2.ClustersConfigDump)
    found = [_unpacked(item.cluster, cluster_pb2.Cluster) for item in list(body.dynamic_active_clusters) + list(body.static_clusters) if item.HasField("cluster")]
    if not found:
        raise ValueError("the clusters dump holds no cluster")
    rows = [["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"]]
    for item in _insertion_sorted(found, lambda a, b: _by_subset_key(a.name, b.name)):
        kind = cluster_pb2.Cluster.DiscoveryType.Name(item.type)
        if len(item.name.split("|")) > 3:
            direction, subset, hostname, port = _subset_key(item.name)
            rows.append([hostname, str(port), subset or "-", direction, kind, _management(item.metadata)])
        else:
            rows.append([item.name, "-", "-", "-", kind, _management(item.metadata)])
    return tabwriter(rows, padding=5)


# routes ---------------------------------------------------------------------------------------

def _unexpand(domains: list[str]) -> list[str]:
    unique = set(domains)
    dropped = {d for d in domains for short in (d.removesuffix(".svc.cluster.local"), d.removesuffix(".svc")) if short != d and short in unique}
    return [d for d in domains if d not in dropped]


def _route_domains(domains: list[str]) -> str:
    """istioctl describeRouteDomains: one domain as is; else those without a port, short forms only, two at most."""
    if len(domains) <= 1:
        return "".join(domains)
    kept = _unexpand([d for d in domains if ":" not in d or (d.count(":") > 2 and d.endswith("]"))])
    if len(kept) > 2:
        return f"{', '.join(kept[:2])} + {len(kept) - 2} more..."
    return ", ".join(kept)


def routes_table(dump: Mapping) -> str:
    """``istioctl proxy-config routes -f dump.json``: a row per route (PassthroughCluster routes left
    out), "/*  404" for a virtual host without routes; route configs with numeric names by number."""
    body = _admin(dump, shared_pb2.RoutesConfigDump)
    found = [_unpacked(item.route_config, route_pb2.RouteConfiguration) for item in list(body.dynamic_route_configs) + list(body.static_route_configs)
             if item.HasField("route_config")]
    if not found:
        raise ValueError("the routes dump holds no route configuration")
    rows = [["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"]]
    numeric = lambda a, b: a.name.isdigit() and b.name.isdigit() and int(a.name) < int(b.name)  # noqa: E731  istioctl: Atoi fails -> not less
    for config in _insertion_sorted(found, numeric):
        for host in config.virtual_hosts:
            domains = _route_domains(list(host.domains))
            for route in host.routes:
                if not (route.HasField("route") and route.route.cluster == PASSTHROUGH_CLUSTER):
                    rows.append([config.name, host.name, domains, _describe_match(route.match), _management(route.metadata)])
            if not host.routes:
                rows.append([config.name, host.name, domains, "/*", "404"])
    return tabwriter(rows, padding=5)


# endpoints ------------------------------------------------------------------------------------

def _endpoint_address(address) -> str:
    if address.HasField("socket_address"):
        return f"{address.socket_address.address}:{address.socket_address.port_value}"
    if address.HasField("pipe"):
        return address.pipe.path
    if address.HasField("envoy_internal_address") and address.envoy_internal_address.server_listener_name:
        return f"envoy://{address.envoy_internal_address.server_listener_name}/{address.envoy_internal_address.endpoint_id}"
    return "unknown"


def _locality(locality) -> str:
    """util.LocalityToString: region, then /zone if set, then /subzone if set."""
    text = locality.region
    if locality.zone:
        text += "/" + locality.zone
        if locality.sub_zone:
            text += "/" + locality.sub_zone
    return text


def eds_table(dump: Mapping) -> str:
    """``istioctl proxy-config eds -f dump.json``: every endpoint with its health, locality and cluster."""
    body = _admin(dump, shared_pb2.EndpointsConfigDump)
    found = [_unpacked(item.endpoint_config, endpoint_pb2.ClusterLoadAssignment) for item in list(body.dynamic_endpoint_configs) + list(body.static_endpoint_configs)
             if item.HasField("endpoint_config")]
    found = [c for c in found if any(group.lb_endpoints for group in c.endpoints)]
    rows = [["NAME", "STATUS", "LOCALITY", "CLUSTER"]]
    for assignment in _insertion_sorted(found, lambda a, b: _by_subset_key(a.cluster_name, b.cluster_name)):
        for group in assignment.endpoints:
            where = _locality(group.locality)
            for endpoint in group.lb_endpoints:
                addresses = [endpoint.endpoint.address] + [a.address for a in endpoint.endpoint.additional_addresses]
                rows.append([",".join(_endpoint_address(a) for a in addresses), health_check_pb2.HealthStatus.Name(endpoint.health_status), where, assignment.cluster_name])
    return tabwriter(rows, padding=5)

"""Which filter chain of a listener takes a connection, as Envoy's FilterChainManager decides.

A listener holds filter chains, each with a FilterChainMatch. Envoy prunes the chains in a fixed
order of the connection's facts, keeping at each step only the chains that match it most
specifically (an exact port before "any port", a longer prefix before a shorter one, an exact server
name before a wildcard); a chain that names a different value never survives a step, and there is no
going back to a less specific branch later. If no chain is left, the listener's
``default_filter_chain`` takes the connection, and without one Envoy closes it. The order and the
rule are the FilterChainMatch comments of Envoy's API (go-control-plane envoy@v1.38.0,
config/listener/v3/listener_components.pb.go): destination port, destination IP, server name,
transport protocol, application protocols, directly connected source IP, source type, source IP,
source port.

Before that, a listener with ``use_original_dst`` (Istio's virtualOutbound and virtualInbound) hands a
redirected connection to the listener bound to its original destination: one bound to that exact
address first, then one bound to the wildcard address on that port; with none, it keeps the
connection itself (listener.proto ``use_original_dst``).

    Connection        a connection's facts as the listener filters left them (addresses, SNI, ALPN)
    ChosenChain       the chain that took a connection: its name, network filters, HTTP filters, route
    as_listener       a Listener message from a message, its protojson dict or its JSON text
    select_filter_chain  the chain Envoy runs for a connection on a listener (None: Envoy closes it)
    hand_off          the listener that takes a connection, following ``use_original_dst``
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from google.protobuf import json_format

HTTP_CONNECTION_MANAGER = "envoy.filters.network.http_connection_manager"
HCM_TYPE_URL = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
#: What Envoy's listener filters report as the transport protocol: tls_inspector sets "tls"; with no
#: inspector, or when it finds no TLS, the socket is "raw_buffer" (listener_components.proto
#: FilterChainMatch.transport_protocol).
TRANSPORT_PROTOCOLS = ("tls", "raw_buffer")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Chains = list[listener_components_pb2.FilterChain]


def _ip(text: str, what: str) -> Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not an IPv4 or IPv6 address") from None


def _port(value: int, what: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"{what} {value!r} is not a port 0-65535")
    return value


@dataclass(frozen=True)
class Connection:
    """A connection's facts once the listener filters ran: ``transport_protocol`` "tls" (tls_inspector
    saw a ClientHello) or "raw_buffer"; ``server_name`` the SNI; ``application_protocols`` the ALPN
    list (from the ClientHello, or http_inspector's "http/1.1"/"h2c"); ``direct_source_ip`` differs
    from ``source_ip`` only behind a PROXY-protocol listener filter (empty: the same)."""

    destination_ip: str
    destination_port: int
    server_name: str = ""
    transport_protocol: str = "raw_buffer"
    application_protocols: tuple[str, ...] = ()
    source_ip: str = "127.0.0.1"
    source_port: int = 0
    direct_source_ip: str = ""

    def __post_init__(self) -> None:
        _ip(self.destination_ip, "destination_ip")
        _ip(self.source_ip, "source_ip")
        if self.direct_source_ip:
            _ip(self.direct_source_ip, "direct_source_ip")
        _port(self.destination_port, "destination_port")
        _port(self.source_port, "source_port")
        if self.transport_protocol not in TRANSPORT_PROTOCOLS:
            raise ValueError(f"transport_protocol {self.transport_protocol!r}: accepted are {', '.join(TRANSPORT_PROTOCOLS)}")
        if isinstance(self.application_protocols, str):
            raise ValueError("application_protocols is a list of ALPN names, e.g. ('h2', 'http/1.1'), not one string")
        object.__setattr__(self, "application_protocols", tuple(self.application_protocols))

    @property
    def is_local(self) -> bool:
        """Envoy's SAME_IP_OR_LOOPBACK: the peer is this host (its address is the destination's, or loopback)."""
        source = _ip(self.direct_source_ip or self.source_ip, "source_ip")
        return source.is_loopback or source == _ip(self.destination_ip, "destination_ip")


@dataclass(frozen=True)
class ChosenChain:
    """The chain that took a connection. ``default``: it was the listener's default_filter_chain.
    For an HTTP connection manager, ``http_filters`` in the order it runs them and ``route_config``
    the RDS name or the inline RouteConfiguration's name."""

    listener: str
    name: str
    default: bool
    network_filters: tuple[str, ...]
    http_filters: tuple[str, ...]
    route_config: str
    chain: listener_components_pb2.FilterChain


def as_listener(listener: listener_pb2.Listener | dict | str) -> listener_pb2.Listener:
    """``listener`` as a Listener message; a dict or JSON text is read as Envoy's protojson."""
    if isinstance(listener, listener_pb2.Listener):
        return listener
    if isinstance(listener, str):
        try:
            listener = json.loads(listener)
        except json.JSONDecodeError as error:
            raise ValueError(f"listener JSON: {error}") from None
    if not isinstance(listener, dict):
        raise ValueError(f"listener: {type(listener).__name__} given; accepted are an envoy.config.listener.v3.Listener, its protojson dict or JSON text")
    body = {key: value for key, value in listener.items() if key != "@type"}
    try:
        return json_format.ParseDict(body, listener_pb2.Listener())
    except json_format.ParseError as error:
        raise ValueError(f"listener: {error} (Envoy's Listener in protojson, e.g. name, address, filterChains)") from None


def _prune(chains: Chains, key: Callable[[listener_components_pb2.FilterChainMatch], int | None]) -> Chains:
    """One step: ``key`` scores a chain's match (None: it cannot match; higher: more specific); the
    chains with the best score go on."""
    scored = [(key(chain.filter_chain_match), chain) for chain in chains]
    best = max((score for score, _ in scored if score is not None), default=None)
    return [chain for score, chain in scored if score is not None and score == best]


def _prefix_score(ranges, address: Address) -> int | None:
    """The longest of ``ranges`` holding ``address`` (0 for no ranges: any address, least specific;
    a specified range scores its length + 1 so that a /0 still beats "none")."""
    if not ranges:
        return 0
    lengths = []
    for cidr in ranges:
        length = cidr.prefix_len.value  # CidrRange.prefix_len: 0 when unset (address.proto)
        try:
            network = ipaddress.ip_network(f"{cidr.address_prefix}/{length}", strict=False)
        except ValueError:
            raise ValueError(f"prefix range {cidr.address_prefix}/{length} is not an IP network") from None
        if network.version == address.version and address in network:
            lengths.append(length + 1)
    return max(lengths, default=None)


def _server_name_score(names, server_name: str) -> int | None:
    """Exact name best, then the wildcard with the longest suffix (``*.b.example.com`` before
    ``*.example.com``), then a chain with no server_names."""
    if not names:
        return 0
    scores = []
    for name in names:
        if name == server_name and server_name:
            scores.append(1 << 20)
        elif name.startswith("*.") and server_name.endswith(name[1:]) and len(server_name) > len(name) - 1:
            scores.append(len(name))
    return max(scores, default=None)


def _application_protocol_score(protocols, offered: tuple[str, ...]) -> int | None:
    """The first of the connection's ALPN names that some chain lists wins (Envoy walks the
    client's list in order); a chain with no application_protocols is the fallback."""
    if not protocols:
        return 0
    ranks = [len(offered) - index for index, name in enumerate(offered) if name in protocols]
    return max(ranks, default=None)


def _source_type_score(source_type: int, local: bool) -> int | None:
    if source_type == listener_components_pb2.FilterChainMatch.ANY:
        return 0
    if source_type == listener_components_pb2.FilterChainMatch.SAME_IP_OR_LOOPBACK:
        return 1 if local else None
    return 1 if not local else None


def _steps(connection: Connection) -> list[Callable[[listener_components_pb2.FilterChainMatch], int | None]]:
    destination = _ip(connection.destination_ip, "destination_ip")
    source = _ip(connection.source_ip, "source_ip")
    direct = _ip(connection.direct_source_ip, "direct_source_ip") if connection.direct_source_ip else source
    return [
        lambda m: 0 if not m.HasField("destination_port") else (1 if m.destination_port.value == connection.destination_port else None),
        lambda m: _prefix_score(m.prefix_ranges, destination),
        lambda m: _server_name_score(m.server_names, connection.server_name),
        lambda m: 0 if not m.transport_protocol else (1 if m.transport_protocol == connection.transport_protocol else None),
        lambda m: _application_protocol_score(m.application_protocols, connection.application_protocols),
        lambda m: _prefix_score(m.direct_source_prefix_ranges, direct),
        lambda m: _source_type_score(m.source_type, connection.is_local),
        lambda m: _prefix_score(m.source_prefix_ranges, source),
        lambda m: 0 if not m.source_ports else (1 if connection.source_port in m.source_ports else None),
    ]


def _http_connection_manager(chain: listener_components_pb2.FilterChain) -> hcm_pb2.HttpConnectionManager | None:
    for network_filter in chain.filters:
        if network_filter.name == HTTP_CONNECTION_MANAGER or network_filter.typed_config.type_url == HCM_TYPE_URL:
            manager = hcm_pb2.HttpConnectionManager()
            if not network_filter.typed_config.Unpack(manager):
                raise ValueError(f"filter chain {chain.name!r}: {network_filter.name} holds {network_filter.typed_config.type_url}, not an HttpConnectionManager")
            return manager
    return None


def _chosen(listener: listener_pb2.Listener, chain: listener_components_pb2.FilterChain, default: bool) -> ChosenChain:
    manager = _http_connection_manager(chain)
    http_filters: tuple[str, ...] = ()
    route = ""
    if manager is not None:
        http_filters = tuple(f.name for f in manager.http_filters)
        route = manager.rds.route_config_name if manager.HasField("rds") else manager.route_config.name
    return ChosenChain(listener.name, chain.name, default, tuple(f.name for f in chain.filters), http_filters, route, chain)


def select_filter_chain(listener: listener_pb2.Listener | dict | str, connection: Connection) -> ChosenChain | None:
    """The chain Envoy runs for ``connection`` on ``listener``; None when no chain matches and the
    listener has no default_filter_chain (Envoy then closes the connection)."""
    built = as_listener(listener)
    chains: Chains = list(built.filter_chains)
    for step in _steps(connection):
        chains = _prune(chains, step)
        if not chains:
            break
    if len(chains) > 1:
        names = ", ".join(repr(c.name) for c in chains)
        raise ValueError(f"listener {built.name!r}: filter chains {names} have the same match; Envoy rejects such a listener (each FilterChainMatch must be unique)")
    if chains:
        return _chosen(built, chains[0], default=False)
    if built.HasField("default_filter_chain"):
        return _chosen(built, built.default_filter_chain, default=True)
    return None


def _bound(listener: listener_pb2.Listener) -> tuple[str, int]:
    socket = listener.address.socket_address
    return socket.address, socket.port_value


def hand_off(listeners: Sequence[listener_pb2.Listener | dict | str], receiving: str, connection: Connection) -> listener_pb2.Listener:
    """The listener that takes ``connection`` arriving on the listener named ``receiving``: with
    ``use_original_dst``, the one bound to the original destination (exact address, then wildcard
    0.0.0.0 or :: on that port); otherwise, or with none bound there, ``receiving`` itself."""
    built = [as_listener(item) for item in listeners]
    by_name = {item.name: item for item in built}
    if receiving not in by_name:
        raise ValueError(f"no listener named {receiving!r}; listeners: {', '.join(sorted(by_name)) or 'none'}")
    first = by_name[receiving]
    if not first.use_original_dst.value:
        return first
    others = [item for item in built if item.name != receiving]
    destination = (connection.destination_ip, connection.destination_port)
    exact = [item for item in others if _bound(item) == destination]
    if exact:
        return exact[0]
    wildcard = [item for item in others if _bound(item) in (("0.0.0.0", connection.destination_port), ("::", connection.destination_port))]
    return wildcard[0] if wildcard else first

"""istio-iptables's configuration: the same fields, defaults and flags, validated up front.

Field names follow Istio's ``tools/istio-iptables/pkg/config.Config`` (1.30.3) in snake case;
``ISTIO_FIELDS`` maps each to Istio's own name, so a JSON object written with Istio's names (as
in the reference cases) can be applied directly. Values stay strings where Istio keeps strings
(comma-separated lists), because the rules print them verbatim.

Validation is meshlab's, and stricter than Istio's: istio-iptables silently skips a CIDR it
cannot parse ("bug compatibility"); meshlab refuses it, naming the field and what it accepts,
so a reader never gets rules that differ from what they asked for without being told.

    ConfigError     one invalid field: its name, the value, and what is accepted
    CaptureConfig   the configuration, with Istio's defaults
    split           Istio's list splitting: commas, empty items dropped, no trimming
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

INTERCEPTION_MODES = ("REDIRECT", "TPROXY")
#: Linux limits interface names to 15 bytes (IFNAMSIZ - 1).
MAX_INTERFACE_NAME = 15


class ConfigError(ValueError):
    """An invalid configuration field; the message names the field and what it accepts."""

    def __init__(self, field_name: str, value: Any, accepted: str) -> None:
        self.field_name, self.value, self.accepted = field_name, value, accepted
        super().__init__(f"{field_name}: {value!r} is not valid; accepted: {accepted}")


def split(text: str) -> list[str]:
    """Split a comma-separated list the way istio-iptables does: drop empty items, trim nothing."""
    return [item for item in text.split(",") if item] if text else []


@dataclass(frozen=True)
class CaptureConfig:
    """What istio-iptables is told (``istio-iptables`` flags, or fields of Istio's Config)."""

    proxy_port: str = "15001"
    inbound_capture_port: str = "15006"
    inbound_tunnel_port: str = "15008"
    proxy_uid: str = "1337"
    proxy_gid: str = "1337"
    inbound_tproxy_mark: str = "1337"
    inbound_tproxy_route_table: str = "133"
    owner_groups_include: str = "*"
    owner_groups_exclude: str = ""
    host_ipv4_loopback_cidr: str = "127.0.0.1/32"
    inbound_interception_mode: str = ""
    inbound_ports_include: str = ""
    inbound_ports_exclude: str = ""
    outbound_ip_ranges_include: str = ""
    outbound_ip_ranges_exclude: str = ""
    outbound_ports_include: str = ""
    outbound_ports_exclude: str = ""
    reroute_virtual_interfaces: str = ""
    exclude_interfaces: str = ""
    enable_ipv6: bool = False
    redirect_dns: bool = False
    dns_servers_v4: tuple[str, ...] = field(default_factory=tuple)
    dns_servers_v6: tuple[str, ...] = field(default_factory=tuple)
    drop_invalid: bool = False
    dry_run: bool = False

    def __post_init__(self) -> None:
        self.validate()

    @property
    def tproxy(self) -> bool:
        return self.inbound_interception_mode == "TPROXY"

    # -- Istio's field names ------------------------------------------------------------
    @classmethod
    def from_istio_fields(cls, values: dict[str, Any], base: CaptureConfig | None = None) -> CaptureConfig:
        """Apply fields named as in Istio's Config (``{"ProxyPort": "15001", ...}``) over ``base`` or the defaults."""
        if not isinstance(values, dict):
            raise ConfigError("configuration", type(values).__name__, "a JSON object of istio-iptables fields")
        changes = {}
        for name, value in values.items():
            if name not in ISTIO_FIELDS:
                raise ConfigError(name, value, f"one of the fields {', '.join(ISTIO_FIELDS)}")
            attribute = ISTIO_FIELDS[name]
            if attribute in LIST_FIELDS:
                if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                    raise ConfigError(name, value, "a list of IP address strings")
                value = tuple(value)
            elif attribute in BOOL_FIELDS:
                if not isinstance(value, bool):
                    raise ConfigError(name, value, "true or false")
            elif not isinstance(value, str):
                raise ConfigError(name, value, "a string, as in istio-iptables (e.g. \"15001\" or \"80,443\")")
            changes[attribute] = value
        return replace(base or cls(), **changes)

    def istio_fields(self) -> dict[str, Any]:
        """This configuration with Istio's field names."""
        return {name: (list(getattr(self, attribute)) if attribute in LIST_FIELDS else getattr(self, attribute)) for name, attribute in ISTIO_FIELDS.items()}

    # -- validation -----------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError for the first invalid field, in Istio's field order."""
        for name in ("proxy_port", "inbound_capture_port", "inbound_tunnel_port"):
            _port(ISTIO_NAME[name], getattr(self, name))
        for name in ("proxy_uid", "proxy_gid"):
            _ids(ISTIO_NAME[name], getattr(self, name))
        for name in ("inbound_tproxy_mark", "inbound_tproxy_route_table"):
            if not getattr(self, name).isdigit():
                raise ConfigError(ISTIO_NAME[name], getattr(self, name), "a non-negative integer")
        for name in ("owner_groups_include", "owner_groups_exclude"):
            for group in split(getattr(self, name)):
                if not re.fullmatch(r"\*|[A-Za-z0-9_.][A-Za-z0-9_.-]*", group):
                    raise ConfigError(ISTIO_NAME[name], group, "\"*\" or comma-separated group names or gids")
        _cidr(ISTIO_NAME["host_ipv4_loopback_cidr"], self.host_ipv4_loopback_cidr, version=4)
        if self.inbound_interception_mode not in ("",) + INTERCEPTION_MODES:
            raise ConfigError(ISTIO_NAME["inbound_interception_mode"], self.inbound_interception_mode, "REDIRECT or TPROXY (empty means REDIRECT)")
        _ports(ISTIO_NAME["inbound_ports_include"], self.inbound_ports_include, wildcard=True)
        for name in ("inbound_ports_exclude", "outbound_ports_include", "outbound_ports_exclude"):
            _ports(ISTIO_NAME[name], getattr(self, name), wildcard=False)
        for name in ("outbound_ip_ranges_include", "outbound_ip_ranges_exclude"):
            value = getattr(self, name)
            if value == "*":
                if name == "outbound_ip_ranges_exclude":
                    raise ConfigError(ISTIO_NAME[name], value, "comma-separated CIDRs (istio-iptables refuses \"*\" here)")
                continue
            for cidr in split(value):
                _cidr(ISTIO_NAME[name], cidr)
        for name in ("reroute_virtual_interfaces", "exclude_interfaces"):
            for interface in split(getattr(self, name)):
                if len(interface.encode()) > MAX_INTERFACE_NAME or not re.fullmatch(r"[^\s/:]+", interface):
                    raise ConfigError(ISTIO_NAME[name], interface, f"interface names of at most {MAX_INTERFACE_NAME} characters, without spaces, '/' or ':'")
        for name, version in (("dns_servers_v4", 4), ("dns_servers_v6", 6)):
            for server in getattr(self, name):
                try:
                    address = ipaddress.ip_address(server)
                except ValueError:
                    address = None
                if address is None or address.version != version:
                    raise ConfigError(ISTIO_NAME[name], server, f"IPv{version} addresses")
        for name in BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(ISTIO_NAME[name], getattr(self, name), "true or false")


def _port(name: str, value: str) -> None:
    if not (value.isdigit() and 0 < int(value) <= 65535):
        raise ConfigError(name, value, "a TCP port, 1-65535")


def _ports(name: str, value: str, wildcard: bool) -> None:
    if wildcard and value == "*":
        return
    for port in split(value):
        if not (port.isdigit() and 0 < int(port) <= 65535):
            accepted = "\"*\" or comma-separated ports 1-65535" if wildcard else "comma-separated ports 1-65535"
            raise ConfigError(name, port, accepted)


def _ids(name: str, value: str) -> None:
    items = split(value)
    if not items or not all(item.isdigit() for item in items):
        raise ConfigError(name, value, "comma-separated numeric ids, e.g. 1337")


def _cidr(name: str, value: str, version: int | None = None) -> None:
    try:
        network = ipaddress.ip_interface(value)
    except ValueError:
        network = None
    if network is None or "/" not in value or (version and network.version != version):
        kind = f"an IPv{version} CIDR" if version else "CIDRs"
        raise ConfigError(name, value, f"{kind} with a prefix length, e.g. 10.0.0.0/8 or 2001:db8::/32")


#: Istio's Config field name -> CaptureConfig attribute.
ISTIO_FIELDS = {
    "ProxyPort": "proxy_port",
    "InboundCapturePort": "inbound_capture_port",
    "InboundTunnelPort": "inbound_tunnel_port",
    "ProxyUID": "proxy_uid",
    "ProxyGID": "proxy_gid",
    "InboundTProxyMark": "inbound_tproxy_mark",
    "InboundTProxyRouteTable": "inbound_tproxy_route_table",
    "OwnerGroupsInclude": "owner_groups_include",
    "OwnerGroupsExclude": "owner_groups_exclude",
    "HostIPv4LoopbackCidr": "host_ipv4_loopback_cidr",
    "InboundInterceptionMode": "inbound_interception_mode",
    "InboundPortsInclude": "inbound_ports_include",
    "InboundPortsExclude": "inbound_ports_exclude",
    "OutboundIPRangesInclude": "outbound_ip_ranges_include",
    "OutboundIPRangesExclude": "outbound_ip_ranges_exclude",
    "OutboundPortsInclude": "outbound_ports_include",
    "OutboundPortsExclude": "outbound_ports_exclude",
    "RerouteVirtualInterfaces": "reroute_virtual_interfaces",
    "ExcludeInterfaces": "exclude_interfaces",
    "EnableIPv6": "enable_ipv6",
    "RedirectDNS": "redirect_dns",
    "DNSServersV4": "dns_servers_v4",
    "DNSServersV6": "dns_servers_v6",
    "DropInvalid": "drop_invalid",
    "DryRun": "dry_run",
}
ISTIO_NAME = {attribute: name for name, attribute in ISTIO_FIELDS.items()}
LIST_FIELDS = frozenset({"dns_servers_v4", "dns_servers_v6"})
BOOL_FIELDS = tuple(f.name for f in fields(CaptureConfig) if f.type in ("bool", bool))

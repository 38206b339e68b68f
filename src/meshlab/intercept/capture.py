"""The rules istio-iptables 1.30.3 installs in a pod, derived from the configuration's meaning.

Follows the order of ``IptablesConfigurator.Run`` in Istio's
``tools/istio-iptables/pkg/capture/run.go``, one function per step, so a reader can hold this
file next to Istio's and find each rule:

 1. interfaces that bypass capture (``-c``), kube-virt interfaces (``-k``) returned early;
 2. ``--drop-invalid``: conntrack INVALID packets dropped in mangle;
 3. the three fixed chains: ISTIO_INBOUND returns the tunnel port (15008), ISTIO_REDIRECT sends
    to the outbound listener (15001), ISTIO_IN_REDIRECT to the inbound one (15006);
 4. inbound capture (``-b``/``-d``), by REDIRECT in nat or TPROXY in mangle;
 5. ISTIO_OUTPUT: excluded ports, the 127.0.0.6 passthrough source, per proxy uid and gid the
    "app calls itself through the VIP" redirect, loopback and proxy-owned traffic returned;
 6. owner groups (ISTIO_OUTBOUND_OWNER_GROUPS[_EXCLUDE]);
 7. DNS capture to the agent's 15053 and conntrack zones (``--redirect-dns``);
 8. localhost returned, excluded CIDRs, included ports, included CIDRs (and virtual interfaces);
 9. TPROXY's mark bookkeeping.

    build_rules     the RuleSet for a CaptureConfig
    NetworkRanges   outbound CIDRs of one family, wildcard and loopback flags
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from meshlab.intercept.config import CaptureConfig, split
from meshlab.intercept.rules import VERSIONED, RuleSet

ISTIO_INBOUND = "ISTIO_INBOUND"
ISTIO_REDIRECT = "ISTIO_REDIRECT"
ISTIO_IN_REDIRECT = "ISTIO_IN_REDIRECT"
ISTIO_OUTPUT = "ISTIO_OUTPUT"
ISTIO_OUTPUT_DNS = "ISTIO_OUTPUT_DNS"
ISTIO_DIVERT = "ISTIO_DIVERT"
ISTIO_TPROXY = "ISTIO_TPROXY"
ISTIO_DROP = "ISTIO_DROP"

#: The inbound passthrough cluster binds to this source when it connects to the app.
INBOUND_PASSTHROUGH_SOURCE = ("127.0.0.6/32", "::6/128")
IPV6_LOOPBACK = "::1/128"
#: pilot-agent's DNS proxy listens here (Istio constants.IstioAgentDNSListenerPort).
AGENT_DNS_PORT = "15053"
#: Mark put on the proxy's own loopback packets in TPROXY mode (Istio constants.OutboundMark).
OUTBOUND_MARK = "1338"


@dataclass
class NetworkRanges:
    """Outbound CIDRs of one family, as istio-iptables separates them."""

    wildcard: bool = False
    cidrs: list[str] = field(default_factory=list)
    has_loopback: bool = False


def separate_v4_v6(cidr_list: str) -> tuple[NetworkRanges, NetworkRanges]:
    """Split a CIDR list into IPv4 and IPv6 ranges; ``*`` is a wildcard for both."""
    if cidr_list == "*":
        return NetworkRanges(wildcard=True), NetworkRanges(wildcard=True)
    v4, v6 = NetworkRanges(), NetworkRanges()
    for text in split(cidr_list):
        interface = ipaddress.ip_interface(text)
        ranges = v4 if interface.version == 4 else v6
        ranges.cidrs.append(str(interface))  # keeps host bits, as Go's netip.Prefix.String() does
        ranges.has_loopback |= interface.ip.is_loopback
    return v4, v6


def build_rules(config: CaptureConfig) -> RuleSet:
    """Every rule istio-iptables would install for ``config``, for IPv4 and (if enabled) IPv6."""
    rules = RuleSet(ipv6=config.enable_ipv6)
    exclude_v4, exclude_v6 = separate_v4_v6(config.outbound_ip_ranges_exclude)
    include_v4, include_v6 = separate_v4_v6(config.outbound_ip_ranges_include)
    dns = redirects_dns(config)

    short_circuit_exclude_interfaces(rules, config)
    for interface in split(config.reroute_virtual_interfaces):
        rules.insert("nat", "PREROUTING", 1, "-i", interface, "-j", "RETURN")
    if config.drop_invalid:
        rules.append("mangle", "PREROUTING", "-m", "conntrack", "--ctstate", "INVALID", "-j", ISTIO_DROP)
        rules.append("mangle", ISTIO_DROP, "-j", "DROP")

    rules.append("nat", ISTIO_INBOUND, "-p", "tcp", "--dport", config.inbound_tunnel_port, "-j", "RETURN")
    rules.append("nat", ISTIO_REDIRECT, "-p", "tcp", "-j", "REDIRECT", "--to-ports", config.proxy_port)
    rules.append("nat", ISTIO_IN_REDIRECT, "-p", "tcp", "-j", "REDIRECT", "--to-ports", config.inbound_capture_port)
    handle_inbound_ports_include(rules, config)

    rules.append("nat", "OUTPUT", "-j", ISTIO_OUTPUT)
    for port in split(config.outbound_ports_exclude):
        rules.append("nat", ISTIO_OUTPUT, "-p", "tcp", "--dport", port, "-j", "RETURN")
        rules.append("nat", ISTIO_OUTPUT, "-p", "udp", "--dport", port, "-j", "RETURN")
    rules.append_versioned(*INBOUND_PASSTHROUGH_SOURCE, "nat", ISTIO_OUTPUT, "-o", "lo", "-s", VERSIONED, "-j", "RETURN")
    loopback_included = include_v4.has_loopback or include_v6.has_loopback
    for owner, ids in (("--uid-owner", config.proxy_uid), ("--gid-owner", config.proxy_gid)):
        for proxy_id in split(ids):
            handle_proxy_owner(rules, config, owner, proxy_id, dns, loopback_included)

    handle_capture_by_owner_group(rules, config)
    if dns:
        setup_dns_redirect(rules, config)

    rules.append_versioned(config.host_ipv4_loopback_cidr, IPV6_LOOPBACK, "nat", ISTIO_OUTPUT, "-d", VERSIONED, "-j", "RETURN")
    for cidr in exclude_v4.cidrs:
        rules.append_v4("nat", ISTIO_OUTPUT, "-d", cidr, "-j", "RETURN")
    for cidr in exclude_v6.cidrs:
        rules.append_v6("nat", ISTIO_OUTPUT, "-d", cidr, "-j", "RETURN")
    for port in split(config.outbound_ports_include):
        rules.append("nat", ISTIO_OUTPUT, "-p", "tcp", "--dport", port, "-j", ISTIO_REDIRECT)
    handle_outbound_include(rules, config, include_v4, rules.append_v4, rules.insert_v4)
    handle_outbound_include(rules, config, include_v6, rules.append_v6, rules.insert_v6)
    if config.tproxy:
        handle_tproxy_marks(rules, config)
    return rules


def redirects_dns(config: CaptureConfig) -> bool:
    """``--redirect-dns`` only takes effect with a DNS server to capture (no capture-all in meshlab)."""
    return config.redirect_dns and bool(config.dns_servers_v4 or config.dns_servers_v6)


def short_circuit_exclude_interfaces(rules: RuleSet, config: CaptureConfig) -> None:
    """Traffic in or out of an excluded interface returns before any capture (mangle too with TPROXY)."""
    tables = ("nat", "mangle") if config.tproxy else ("nat",)
    for table in tables:
        for interface in split(config.exclude_interfaces):
            rules.append(table, "PREROUTING", "-i", interface, "-j", "RETURN")
            rules.append(table, "OUTPUT", "-o", interface, "-j", "RETURN")


def handle_inbound_ports_include(rules: RuleSet, config: CaptureConfig) -> None:
    """Inbound capture: all ports but the excluded (``*``), or the listed ports; REDIRECT or TPROXY."""
    if not config.inbound_ports_include:
        return
    table = "mangle" if config.tproxy else "nat"
    if config.tproxy:
        rules.append("mangle", ISTIO_DIVERT, "-j", "MARK", "--set-mark", config.inbound_tproxy_mark)
        rules.append("mangle", ISTIO_DIVERT, "-j", "ACCEPT")
        rules.append_versioned(
            config.host_ipv4_loopback_cidr, IPV6_LOOPBACK, "mangle", ISTIO_TPROXY, "!", "-d", VERSIONED, "-p", "tcp",
            "-j", "TPROXY", "--tproxy-mark", f"{config.inbound_tproxy_mark}/0xffffffff", "--on-port", config.inbound_capture_port,
        )
    rules.append(table, "PREROUTING", "-p", "tcp", "-j", ISTIO_INBOUND)
    if config.inbound_ports_include == "*":
        for port in split(config.inbound_ports_exclude):
            rules.append(table, ISTIO_INBOUND, "-p", "tcp", "--dport", port, "-j", "RETURN")
        if config.tproxy:
            rules.append("mangle", ISTIO_INBOUND, "-p", "tcp", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", ISTIO_DIVERT)
            rules.append("mangle", ISTIO_INBOUND, "-p", "tcp", "-j", ISTIO_TPROXY)
        else:
            rules.append("nat", ISTIO_INBOUND, "-p", "tcp", "-j", ISTIO_IN_REDIRECT)
        return
    for port in split(config.inbound_ports_include):
        if config.tproxy:
            rules.append("mangle", ISTIO_INBOUND, "-p", "tcp", "--dport", port, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", ISTIO_DIVERT)
            rules.append("mangle", ISTIO_INBOUND, "-p", "tcp", "--dport", port, "-j", ISTIO_TPROXY)
        else:
            rules.append("nat", ISTIO_INBOUND, "-p", "tcp", "--dport", port, "-j", ISTIO_IN_REDIRECT)


def handle_proxy_owner(rules: RuleSet, config: CaptureConfig, owner: str, proxy_id: str, dns: bool, loopback_included: bool) -> None:
    """Three rules per proxy uid or gid.

    An app calling its own service VIP goes app -> proxy (outbound) -> proxy (inbound) -> app: the
    proxy's second connection leaves on ``lo`` to a non-loopback address and is sent to inbound
    capture. The app's own loopback traffic returns (unless a loopback CIDR is explicitly
    included), and everything else the proxy sends returns, so it never loops into itself.
    With DNS capture, port 53 is kept out of the first two (the uid rule only: Istio's gid rule
    never had the exception).
    """
    if dns and owner == "--uid-owner":
        ports = ("-m", "multiport", "!", "--dports", f"53,{config.inbound_tunnel_port}")
    else:
        ports = ("!", "--dport", config.inbound_tunnel_port)
    rules.append_versioned(
        config.host_ipv4_loopback_cidr, IPV6_LOOPBACK, "nat", ISTIO_OUTPUT,
        "-o", "lo", "!", "-d", VERSIONED, "-p", "tcp", *ports, "-m", "owner", owner, proxy_id, "-j", ISTIO_IN_REDIRECT,
    )
    if not loopback_included:
        not_dns = ("-p", "tcp", "!", "--dport", "53") if dns else ()
        rules.append("nat", ISTIO_OUTPUT, "-o", "lo", *not_dns, "-m", "owner", "!", owner, proxy_id, "-j", "RETURN")
    rules.append("nat", ISTIO_OUTPUT, "-m", "owner", owner, proxy_id, "-j", "RETURN")


def handle_capture_by_owner_group(rules: RuleSet, config: CaptureConfig) -> None:
    """``*`` captures every group but the excluded ones; a list captures only those groups."""
    if config.owner_groups_include == "*":
        for group in split(config.owner_groups_exclude):
            rules.append("nat", ISTIO_OUTPUT, "-m", "owner", "--gid-owner", group, "-j", "RETURN")
        return
    none_of = [part for group in split(config.owner_groups_include) for part in ("-m", "owner", "!", "--gid-owner", group)]
    rules.append("nat", ISTIO_OUTPUT, *none_of, "-j", "RETURN")


def setup_dns_redirect(rules: RuleSet, config: CaptureConfig) -> None:
    """DNS to the pod's resolvers goes to the agent's DNS proxy; conntrack zones keep the two legs apart."""
    rules.append("raw", "OUTPUT", "-j", ISTIO_OUTPUT_DNS)
    if config.dns_servers_v4:
        rules.append_v4("nat", ISTIO_OUTPUT, "-j", ISTIO_OUTPUT_DNS)
    if config.dns_servers_v6:
        rules.append_v6("nat", ISTIO_OUTPUT, "-j", ISTIO_OUTPUT_DNS)
    for protocol, to_port in (("tcp", "--to-ports"), ("udp", "--to-port")):
        for server in config.dns_servers_v4:
            rules.append_v4("nat", ISTIO_OUTPUT_DNS, "-p", protocol, "--dport", "53", "-d", f"{server}/32", "-j", "REDIRECT", to_port, AGENT_DNS_PORT)
        for server in config.dns_servers_v6:
            rules.append_v6("nat", ISTIO_OUTPUT_DNS, "-p", protocol, "--dport", "53", "-d", f"{server}/128", "-j", "REDIRECT", to_port, AGENT_DNS_PORT)
    # Zone 1: the agent <-> upstream resolvers; zone 2: apps <-> the agent.
    for owner, ids in (("--uid-owner", config.proxy_uid), ("--gid-owner", config.proxy_gid)):
        for proxy_id in split(ids):
            rules.append("raw", ISTIO_OUTPUT_DNS, "-p", "udp", "--dport", "53", "-m", "owner", owner, proxy_id, "-j", "CT", "--zone", "1")
            rules.append("raw", ISTIO_OUTPUT_DNS, "-p", "udp", "--sport", AGENT_DNS_PORT, "-m", "owner", owner, proxy_id, "-j", "CT", "--zone", "2")
    for servers, append, length in ((config.dns_servers_v4, rules.append_v4, "32"), (config.dns_servers_v6, rules.append_v6, "128")):
        if servers:
            append("raw", "PREROUTING", "-j", ISTIO_INBOUND)
        for server in servers:
            append("raw", ISTIO_OUTPUT_DNS, "-p", "udp", "--dport", "53", "-d", f"{server}/{length}", "-j", "CT", "--zone", "2")
            append("raw", ISTIO_INBOUND, "-p", "udp", "--sport", "53", "-s", f"{server}/{length}", "-j", "CT", "--zone", "1")


def handle_outbound_include(rules: RuleSet, config: CaptureConfig, ranges: NetworkRanges, append, insert) -> None:
    """Outbound capture: everything (``*``) or the listed CIDRs, also from rerouted virtual interfaces."""
    interfaces = split(config.reroute_virtual_interfaces)
    if ranges.wildcard:
        append("nat", ISTIO_OUTPUT, "-j", ISTIO_REDIRECT)
        for interface in interfaces:
            insert("nat", "PREROUTING", 1, "-i", interface, "-j", ISTIO_REDIRECT)
        return
    for cidr in ranges.cidrs:
        for interface in interfaces:
            insert("nat", "PREROUTING", 1, "-i", interface, "-d", cidr, "-j", ISTIO_REDIRECT)
        append("nat", ISTIO_OUTPUT, "-d", cidr, "-j", ISTIO_REDIRECT)


def handle_tproxy_marks(rules: RuleSet, config: CaptureConfig) -> None:
    """TPROXY keeps the client's address, so marks (not NAT) tell the proxy's packets from the app's."""
    mark = config.inbound_tproxy_mark
    rules.append("mangle", "PREROUTING", "-p", "tcp", "-m", "mark", "--mark", mark, "-j", "CONNMARK", "--save-mark")
    rules.append("mangle", "OUTPUT", "-p", "tcp", "-o", "lo", "-m", "mark", "--mark", mark, "-j", "RETURN")
    for owner, ids in (("--uid-owner", config.proxy_uid), ("--gid-owner", config.proxy_gid)):
        for proxy_id in split(ids):
            rules.append_versioned(
                config.host_ipv4_loopback_cidr, IPV6_LOOPBACK, "mangle", "OUTPUT",
                "!", "-d", VERSIONED, "-p", "tcp", "-o", "lo", "-m", "owner", owner, proxy_id, "-j", "MARK", "--set-mark", OUTBOUND_MARK,
            )
    rules.append("mangle", "OUTPUT", "-p", "tcp", "-m", "connmark", "--mark", mark, "-j", "CONNMARK", "--restore-mark")
    rules.insert("mangle", ISTIO_INBOUND, 1, "-p", "tcp", "-m", "mark", "--mark", mark, "-j", "RETURN")
    rules.insert_v4("mangle", ISTIO_INBOUND, 2, "-p", "tcp", "-s", INBOUND_PASSTHROUGH_SOURCE[0], "-i", "lo", "-j", "RETURN")
    rules.insert_v6("mangle", ISTIO_INBOUND, 2, "-p", "tcp", "-s", INBOUND_PASSTHROUGH_SOURCE[1], "-i", "lo", "-j", "RETURN")
    rules.insert("mangle", ISTIO_INBOUND, 3, "-p", "tcp", "-i", "lo", "-m", "mark", "!", "--mark", OUTBOUND_MARK, "-j", "RETURN")

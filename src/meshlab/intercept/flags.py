"""The istio-iptables command line, flag for flag, plus meshlab's ``--config-json``.

The configuration is assembled as istio-iptables assembles it: Istio's defaults, then the
environment variables Istio reads for fields without a flag (ISTIO_OUTBOUND_OWNER_GROUPS,
ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE, ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR), then ``--config-json``
(Istio's field names, as in its test cases), then the flags given on the command line.

    add_arguments   istio-iptables's flags on an argparse parser
    config_from     the CaptureConfig for parsed arguments (raises ConfigError)
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
from dataclasses import replace
from pathlib import Path

from meshlab.intercept.config import ISTIO_NAME, CaptureConfig, ConfigError

#: (short, long, CaptureConfig attribute, help); istio-iptables 1.30.3's flags taking a value.
VALUE_FLAGS = (
    ("-p", "--envoy-port", "proxy_port", "outbound listener port all outbound TCP is redirected to (15001)"),
    ("-z", "--inbound-capture-port", "inbound_capture_port", "inbound listener port captured inbound TCP is redirected to (15006)"),
    ("-e", "--inbound-tunnel-port", "inbound_tunnel_port", "HBONE tunnel port, never captured (15008)"),
    ("-u", "--proxy-uid", "proxy_uid", "comma-separated uids of the proxy, whose traffic is not captured (1337)"),
    ("-g", "--proxy-gid", "proxy_gid", "comma-separated gids of the proxy (1337)"),
    ("-m", "--istio-inbound-interception-mode", "inbound_interception_mode", "REDIRECT or TPROXY"),
    ("-b", "--istio-inbound-ports", "inbound_ports_include", "inbound ports to capture, or '*' for all"),
    ("-d", "--istio-local-exclude-ports", "inbound_ports_exclude", "inbound ports not captured when -b is '*'"),
    ("-c", "--istio-exclude-interfaces", "exclude_interfaces", "interfaces whose traffic is never captured"),
    ("-i", "--istio-service-cidr", "outbound_ip_ranges_include", "outbound CIDRs to capture, or '*' for all"),
    ("-x", "--istio-service-exclude-cidr", "outbound_ip_ranges_exclude", "outbound CIDRs never captured"),
    ("-q", "--istio-outbound-ports", "outbound_ports_include", "outbound ports always captured"),
    ("-o", "--istio-local-outbound-ports-exclude", "outbound_ports_exclude", "outbound ports never captured"),
    ("-k", "--kube-virt-interfaces", "reroute_virtual_interfaces", "virtual interfaces whose traffic is captured as outbound"),
    ("-t", "--istio-inbound-tproxy-mark", "inbound_tproxy_mark", "TPROXY packet mark (1337)"),
    ("-r", "--istio-inbound-tproxy-route-table", "inbound_tproxy_route_table", "TPROXY routing table (133)"),
)
BOOL_FLAGS = (
    ("-n", "--dry-run", "dry_run", "print the commands; apply nothing"),
    (None, "--redirect-dns", "redirect_dns", "send DNS to the agent's DNS proxy on 15053"),
    (None, "--drop-invalid", "drop_invalid", "drop packets conntrack marks INVALID"),
    (None, "--enable-ipv6", "enable_ipv6", "also write ip6tables rules (Istio derives this from the pod's IPs)"),
)
LIST_FLAGS = (
    ("--dns-servers-v4", "dns_servers_v4", "comma-separated IPv4 resolvers to capture (Istio reads resolv.conf)"),
    ("--dns-servers-v6", "dns_servers_v6", "comma-separated IPv6 resolvers to capture"),
)
ENVIRONMENT = {
    "ISTIO_OUTBOUND_OWNER_GROUPS": "OwnerGroupsInclude",
    "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE": "OwnerGroupsExclude",
    "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR": "HostIPv4LoopbackCidr",
}


def _flag_names() -> dict[str, str]:
    names = {ISTIO_NAME[attribute]: "/".join(n for n in (short, long) if n) for short, long, attribute, _ in VALUE_FLAGS + BOOL_FLAGS}
    names.update({ISTIO_NAME[attribute]: long for long, attribute, _ in LIST_FLAGS})
    names.update({field: f"env {variable}" for variable, field in ENVIRONMENT.items()})
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for short, long, attribute, text in VALUE_FLAGS:
        parser.add_argument(short, long, dest=attribute, metavar="VALUE", help=text)
    for short, long, attribute, text in BOOL_FLAGS:
        names = [name for name in (short, long) if name]
        parser.add_argument(*names, dest=attribute, action="store_true", default=None, help=text)
    for long, attribute, text in LIST_FLAGS:
        parser.add_argument(long, dest=attribute, metavar="ADDRESSES", help=text)
    parser.add_argument("--config-json", type=Path, metavar="FILE", help="JSON object of istio-iptables fields (Istio's names), applied over the defaults")


def config_from(args: argparse.Namespace, environ: dict[str, str] | None = None) -> CaptureConfig:
    """The configuration for parsed arguments; a ConfigError names the Istio field and its flag."""
    try:
        return _assemble(args, os.environ if environ is None else environ)
    except ConfigError as error:
        flag = FLAG_OF.get(error.field_name)
        if flag:
            raise ConfigError(f"{error.field_name} ({flag})", error.value, error.accepted) from None
        raise


def _assemble(args: argparse.Namespace, environ) -> CaptureConfig:
    config = CaptureConfig.from_istio_fields({field: environ[name] for name, field in ENVIRONMENT.items() if name in environ})
    if args.config_json is not None:
        try:
            values = json.loads(args.config_json.read_text())
        except OSError as error:
            raise ConfigError("--config-json", str(args.config_json), f"a readable JSON file ({error.strerror})") from None
        except json.JSONDecodeError as error:
            raise ConfigError("--config-json", str(args.config_json), f"valid JSON ({error.msg} at line {error.lineno})") from None
        config = CaptureConfig.from_istio_fields(values, config)
    changes = {}
    for _, _, attribute, _ in VALUE_FLAGS + BOOL_FLAGS:
        if getattr(args, attribute) is not None:
            changes[attribute] = getattr(args, attribute)
    for _, attribute, _ in LIST_FLAGS:
        if getattr(args, attribute) is not None:
            changes[attribute] = tuple(_as_read_from_resolv_conf(item) for item in getattr(args, attribute).split(",") if item)
    return replace(config, **changes)


def _as_read_from_resolv_conf(server: str) -> str:
    """A resolver as istio-iptables has it after reading /etc/resolv.conf, which these flags stand
    for: parsed as an address and printed again (Go's netip), so ``::127.0.0.53`` is ``::7f00:35``.
    (Istio's tests set the field directly, and their goldens keep the text as given.)"""
    try:
        return str(ipaddress.ip_address(server))
    except ValueError:
        return server  # CaptureConfig's validation names the field and what it accepts


#: Istio field name -> the flag (or environment variable) that sets it.
FLAG_OF = _flag_names()

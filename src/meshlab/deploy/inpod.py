"""Ambient mode's in-pod redirection: the rules istio-cni writes inside an enrolled pod's own
network namespace, so that ztunnel (which runs on the node but listens *inside* the pod's
namespace) receives the pod's traffic. Nothing is injected and nothing changes on the node.

The facts are Istio's (cni/pkg/iptables: the in-pod rule builder and its default test golden;
cni/pkg/config constants): ztunnel marks every socket it opens in the pod with 0x539 (1337), so its
own traffic is never captured again; packets meant for ztunnel get the TPROXY mark 0x111, and a
policy route (``ip rule fwmark 0x111/0xfff lookup 100``, table 100 = ``local default dev lo``)
delivers them to ztunnel's transparent sockets. Ports: 15001 outbound, 15006 inbound plain text,
15008 inbound HBONE, 15053 DNS. The kubelet's probes arrive SNATed to 169.254.7.127 by istio-cni
on the node and must bypass ztunnel.

Compared with the sidecar's rules (chapter 02): no uid/gid owner matches (ztunnel is not in the pod's
processes; a mark identifies it), inbound uses TPROXY in mangle instead of REDIRECT in nat (ztunnel
must see the original source to enforce policy), and there is one ISTIO_PRERT/ISTIO_OUTPUT pair.

    InpodRule     one rule, with why it is there
    inpod_rules   the rules, in the order istio-cni appends them
    inpod_ruleset the same as a RuleSet (iptables-restore text, comparison with a pod's iptables-save)
"""

from __future__ import annotations

from dataclasses import dataclass

from meshlab.intercept.rules import RuleSet

ZTUNNEL_MARK = "0x539/0xfff"  # InpodMark 1337 / InpodMask: set by ztunnel on its sockets in the pod
TPROXY_MARK = "0x111/0xfff"  # InpodTProxyMark / InpodTProxyMask: "deliver to ztunnel" (policy route to table 100)
OUTBOUND_PORT, INBOUND_PLAINTEXT_PORT, HBONE_PORT, DNS_PORT = 15001, 15006, 15008, 15053
HOST_PROBE_SNAT = "169.254.7.127"  # istio-cni SNATs the kubelet's probes to this link-local address


@dataclass(frozen=True)
class InpodRule:
    table: str
    chain: str
    params: tuple[str, ...]
    why: str


def inpod_rules(redirect_dns: bool = True) -> list[InpodRule]:
    """The IPv4 in-pod rules; ``redirect_dns`` adds the DNS capture to ztunnel's DNS proxy."""
    rules = [
        InpodRule("mangle", "PREROUTING", ("-j", "ISTIO_PRERT"), "every packet arriving in the pod goes through ISTIO_PRERT"),
        InpodRule("mangle", "OUTPUT", ("-j", "ISTIO_OUTPUT"), "every packet the pod sends goes through mangle ISTIO_OUTPUT"),
        InpodRule("nat", "OUTPUT", ("-j", "ISTIO_OUTPUT"), "and through nat ISTIO_OUTPUT (outbound capture)"),
        InpodRule("mangle", "ISTIO_PRERT", ("-m", "mark", "--mark", ZTUNNEL_MARK, "-j", "CONNMARK", "--set-xmark", TPROXY_MARK),
                  "a packet of ztunnel's own connection: remember it on the connection, so replies find ztunnel again"),
        InpodRule("mangle", "ISTIO_PRERT", ("-s", HOST_PROBE_SNAT, "-p", "tcp", "-m", "tcp", "-j", "ACCEPT"), "the kubelet's probes reach the app directly"),
        InpodRule("nat", "ISTIO_OUTPUT", ("-d", HOST_PROBE_SNAT, "-p", "tcp", "-m", "tcp", "-j", "ACCEPT"), "and the app's answers to them leave directly"),
        InpodRule("mangle", "ISTIO_PRERT", ("!", "-d", "127.0.0.1/32", "-p", "tcp", "-i", "lo", "-j", "ACCEPT"),
                  "traffic on loopback to the pod's own address is the pod talking to itself: not captured"),
        InpodRule("mangle", "ISTIO_PRERT", ("-p", "tcp", "-m", "tcp", "--dport", str(HBONE_PORT), "-m", "mark", "!", "--mark", ZTUNNEL_MARK,
                                            "-j", "TPROXY", "--on-port", str(HBONE_PORT), "--tproxy-mark", TPROXY_MARK),
                  "HBONE (mTLS tunnel from another ztunnel) to 15008: handed to ztunnel's HBONE listener, source kept"),
        InpodRule("mangle", "ISTIO_PRERT", ("-p", "tcp", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"),
                  "packets of connections already decided on pass"),
        InpodRule("mangle", "ISTIO_PRERT", ("!", "-d", "127.0.0.1/32", "-p", "tcp", "-m", "mark", "!", "--mark", ZTUNNEL_MARK,
                                            "-j", "TPROXY", "--on-port", str(INBOUND_PLAINTEXT_PORT), "--tproxy-mark", TPROXY_MARK),
                  "any other inbound TCP (plain text, e.g. from outside the mesh): to ztunnel's 15006, source kept"),
        InpodRule("mangle", "ISTIO_OUTPUT", ("-m", "connmark", "--mark", TPROXY_MARK, "-j", "CONNMARK", "--restore-mark", "--nfmask", "0xffffffff", "--ctmask", "0xffffffff"),
                  "replies on a connection ztunnel accepted carry the mark again, so the policy route sends them to ztunnel"),
    ]
    if redirect_dns:
        rules.append(InpodRule("nat", "ISTIO_OUTPUT", ("!", "-o", "lo", "-p", "udp", "-m", "udp", "--dport", "53", "-j", "REDIRECT", "--to-port", str(DNS_PORT)),
                               "DNS queries leaving the pod go to ztunnel's DNS proxy"))
    rules += [
        InpodRule("nat", "ISTIO_OUTPUT", ("-p", "tcp", "-m", "mark", "--mark", TPROXY_MARK, "-j", "ACCEPT"), "replies to connections ztunnel accepted are not captured again"),
        InpodRule("nat", "ISTIO_OUTPUT", ("!", "-d", "127.0.0.1/32", "-o", "lo", "-j", "ACCEPT"), "the pod calling its own address stays local"),
        InpodRule("nat", "ISTIO_OUTPUT", ("!", "-d", "127.0.0.1/32", "-p", "tcp", "-m", "mark", "!", "--mark", ZTUNNEL_MARK, "-j", "REDIRECT", "--to-ports", str(OUTBOUND_PORT)),
                  "every other outbound TCP connection of the app: to ztunnel's outbound port 15001 (ztunnel's own are marked and skip this)"),
    ]
    return rules


def inpod_ruleset(redirect_dns: bool = True) -> RuleSet:
    ruleset = RuleSet()
    for rule in inpod_rules(redirect_dns):
        ruleset.append_v4(rule.table, rule.chain, *rule.params)
    return ruleset

"""Ambient mode's in-pod redirection: the rules istio-cni writes inside an enrolled pod's own
network namespace, so that ztunnel (which runs once per node but listens *inside* the pod's
namespace) receives the pod's traffic. Nothing is injected and nothing changes on the node except
one SNAT rule for the kubelet's probes.

The facts are Istio 1.30.3's (cni/pkg/iptables/iptables.go, ``AppendInpodRules`` and
``CreateHostRulesForHealthChecks``; cni/pkg/config constants), and ``inpod_ruleset`` reproduces that
builder's output byte for byte, checked against its own test goldens (cni/pkg/iptables/testdata).
ztunnel marks every socket it opens in the pod with 1337 (0x539 under mask 0xfff), so its own
traffic is never captured again. Inbound plain-text TCP is REDIRECTed in nat to ztunnel's 15006;
HBONE to 15008 is not redirected at all, because ztunnel listens on 15008 in the pod itself. A
packet of ztunnel's own connection marks the connection 0x111, and replies on it get that mark back
so the outbound redirect leaves them alone. The kubelet's probes arrive SNATed to 169.254.7.127 by
the node's rule and must bypass ztunnel. With DNS capture on, DNS goes to ztunnel's 15053 and
ztunnel's own DNS traffic gets conntrack zone 1 (istio/istio#33469: port collisions).

Compared with the sidecar's rules (chapter 02): no uid/gid owner matches (ztunnel is not one of the
pod's processes; a mark identifies it) and one ISTIO_PRERT/ISTIO_OUTPUT pair per table.

    InpodRule         one rule, with why it is there
    inpod_rules       the rules for one family, in the order istio-cni appends them
    inpod_ruleset     the same as a RuleSet (iptables-restore text for IPv4 and IPv6)
    host_probe_rules  the node's one rule: SNAT the kubelet's probes to the probe address
"""

from __future__ import annotations

from dataclasses import dataclass

from meshlab.intercept.rules import RuleSet

ZTUNNEL_MARK = "0x539/0xfff"  # InpodMark 1337 / InpodMask: set by ztunnel on its sockets in the pod
CONNECTION_MARK = "0x111/0xfff"  # InpodTProxyMark / InpodTProxyMask: "a connection of ztunnel's own"
OUTBOUND_PORT, INBOUND_PLAINTEXT_PORT, HBONE_PORT, DNS_PORT = 15001, 15006, 15008, 15053
HOST_PROBE_SNAT = "169.254.7.127"  # istio-cni SNATs the kubelet's probes to this link-local address
HOST_PROBE_V6_SNAT = "fd16:9254:7127:1337:ffff:ffff:ffff:ffff"  # and to this one over IPv6
LOOPBACK = {4: "127.0.0.1/32", 6: "::1/128"}
PROBE_IPSET = {4: "istio-inpod-probes-v4", 6: "istio-inpod-probes-v6"}  # pod IPs on this node, kept by istio-cni


@dataclass(frozen=True)
class InpodRule:
    table: str
    chain: str
    params: tuple[str, ...]
    why: str


def inpod_rules(redirect_dns: bool = True, ingress_mode: bool = False, virtual_interfaces: tuple[str, ...] = (),
                family: int = 4, probe_snat: str | None = None) -> list[InpodRule]:
    """The rules for one family (4 or 6). ``ingress_mode`` is a pod that only sends (istio-cni's
    ingress override: nothing inbound is redirected); ``virtual_interfaces`` (e.g. KubeVirt's) carry
    traffic that is outbound for the mesh although it arrives on an interface."""
    if family not in (4, 6):
        raise ValueError(f"family must be 4 or 6, got {family!r}")
    lo, probe = LOOPBACK[family], probe_snat or (HOST_PROBE_SNAT if family == 4 else HOST_PROBE_V6_SNAT)
    rules = [
        InpodRule("mangle", "PREROUTING", ("-j", "ISTIO_PRERT"), "every packet arriving in the pod goes through mangle ISTIO_PRERT"),
        InpodRule("mangle", "OUTPUT", ("-j", "ISTIO_OUTPUT"), "every packet the pod sends goes through mangle ISTIO_OUTPUT"),
        InpodRule("nat", "OUTPUT", ("-j", "ISTIO_OUTPUT"), "and the first packet of each outbound connection through nat ISTIO_OUTPUT"),
    ]
    if redirect_dns:
        rules += [InpodRule("raw", "PREROUTING", ("-j", "ISTIO_PRERT"), "DNS replies pass raw ISTIO_PRERT (conntrack zones)"),
                  InpodRule("raw", "OUTPUT", ("-j", "ISTIO_OUTPUT"), "DNS queries pass raw ISTIO_OUTPUT")]
    rules.append(InpodRule("nat", "PREROUTING", ("-j", "ISTIO_PRERT"), "the first packet of each inbound connection goes through nat ISTIO_PRERT"))
    for interface in virtual_interfaces:
        rules += [InpodRule("nat", "ISTIO_PRERT", ("-i", interface, "-p", "tcp", "-j", "REDIRECT", "--to-ports", str(OUTBOUND_PORT)),
                            f"TCP arriving on the virtual interface {interface} (a VM's) is outbound for the mesh: to ztunnel's 15001"),
                  InpodRule("nat", "ISTIO_PRERT", ("-i", interface, "-p", "tcp", "-j", "RETURN"), "and is decided on: leave the chain")]
    rules.append(InpodRule("mangle", "ISTIO_PRERT", ("-m", "mark", "--mark", ZTUNNEL_MARK, "-j", "CONNMARK", "--set-xmark", CONNECTION_MARK),
                           "a packet of ztunnel's own socket marks its connection 0x111, so replies on it can be told apart"))
    if not ingress_mode:
        rules.append(InpodRule("nat", "ISTIO_PRERT", ("-s", probe, "-p", "tcp", "-m", "tcp", "-j", "ACCEPT"), "the kubelet's probes reach the app directly"))
    rules.append(InpodRule("nat", "ISTIO_OUTPUT", ("-d", probe, "-p", "tcp", "-m", "tcp", "-j", "ACCEPT"), "and the app's answers to them leave directly"))
    if not ingress_mode:
        rules.append(InpodRule("nat", "ISTIO_PRERT", ("!", "-d", lo, "-p", "tcp", "!", "--dport", str(HBONE_PORT), "-m", "mark", "!", "--mark", ZTUNNEL_MARK,
                                                      "-j", "REDIRECT", "--to-ports", str(INBOUND_PLAINTEXT_PORT)),
                               "inbound plain-text TCP (not HBONE, which ztunnel's 15008 in the pod takes as it is): to ztunnel's 15006"))
    rules.append(InpodRule("mangle", "ISTIO_OUTPUT", ("-m", "connmark", "--mark", CONNECTION_MARK, "-j", "CONNMARK", "--restore-mark",
                                                      "--nfmask", "0xffffffff", "--ctmask", "0xffffffff"),
                           "packets on a connection of ztunnel's get the connection's mark 0x111 back"))
    if redirect_dns:
        rules += [
            InpodRule("nat", "ISTIO_OUTPUT", ("!", "-o", "lo", "-p", "udp", "-m", "mark", "!", "--mark", ZTUNNEL_MARK, "-m", "udp", "--dport", "53",
                                              "-j", "REDIRECT", "--to-port", str(DNS_PORT)), "the app's DNS queries over UDP: to ztunnel's DNS proxy"),
            InpodRule("nat", "ISTIO_OUTPUT", ("!", "-d", lo, "-p", "tcp", "--dport", "53", "-m", "mark", "!", "--mark", ZTUNNEL_MARK,
                                              "-j", "REDIRECT", "--to-ports", str(DNS_PORT)), "and over TCP"),
            InpodRule("raw", "ISTIO_OUTPUT", ("-p", "udp", "-m", "mark", "--mark", ZTUNNEL_MARK, "-m", "udp", "--dport", "53", "-j", "CT", "--zone", "1"),
                      "ztunnel's own queries upstream get conntrack zone 1 (istio/istio#33469: no port collision with the app's)"),
            InpodRule("raw", "ISTIO_PRERT", ("-p", "udp", "-m", "mark", "!", "--mark", ZTUNNEL_MARK, "-m", "udp", "--sport", "53", "-j", "CT", "--zone", "1"),
                      "and the upstream's answers too"),
        ]
    rules += [
        InpodRule("nat", "ISTIO_OUTPUT", ("-p", "tcp", "-m", "mark", "--mark", CONNECTION_MARK, "-j", "ACCEPT"),
                  "packets of ztunnel's connections (mark restored above) are not captured again"),
        InpodRule("nat", "ISTIO_OUTPUT", ("!", "-d", lo, "-o", "lo", "-j", "ACCEPT"), "the pod calling its own address stays local"),
        InpodRule("nat", "ISTIO_OUTPUT", ("!", "-d", lo, "-p", "tcp", "-m", "mark", "!", "--mark", ZTUNNEL_MARK, "-j", "REDIRECT", "--to-ports", str(OUTBOUND_PORT)),
                  "every other outbound TCP connection of the app: to ztunnel's 15001 (ztunnel's own are marked and skip this)"),
    ]
    return rules


def inpod_ruleset(redirect_dns: bool = True, ingress_mode: bool = False, virtual_interfaces: tuple[str, ...] = (),
                  ipv6: bool = False, probe_snat: tuple[str, str] = (HOST_PROBE_SNAT, HOST_PROBE_V6_SNAT)) -> RuleSet:
    """The rules of both families as Istio's builder holds them (``restore_text(4)``, ``(6)``)."""
    ruleset = RuleSet(ipv6=ipv6)
    for family, append in ((4, ruleset.append_v4), (6, ruleset.append_v6)):
        for rule in inpod_rules(redirect_dns, ingress_mode, virtual_interfaces, family, probe_snat[family == 6]):
            append(rule.table, rule.chain, *rule.params)
    return ruleset


def host_probe_rules(ipv6: bool = False, probe_snat: tuple[str, str] = (HOST_PROBE_SNAT, HOST_PROBE_V6_SNAT)) -> RuleSet:
    """The node's rule: a connection from a node-local process with a socket (the kubelet's probe)
    to a pod IP in istio-cni's ipset is SNATed to the probe address, so the pod can let it pass."""
    ruleset = RuleSet(ipv6=ipv6)
    for family, insert, append in ((4, ruleset.insert_v4, ruleset.append_v4), (6, ruleset.insert_v6, ruleset.append_v6)):
        insert("nat", "POSTROUTING", 1, "-j", "ISTIO_POSTRT")
        append("nat", "ISTIO_POSTRT", "-m", "owner", "--socket-exists", "-p", "tcp", "-m", "set", "--match-set", PROBE_IPSET[family], "dst",
               "-j", "SNAT", "--to-source", probe_snat[family == 6])
    return ruleset

"""Install and remove the rules for real, in a network namespace, as istio-init does.

``apply`` feeds the restore text to ``iptables-restore --noflush`` (and ``ip6tables-restore``),
and in TPROXY mode adds the policy route that delivers marked packets locally (the
``ip rule`` / ``ip route`` pair for table 133, which the golden files leave out). If the IPv6
half fails, the IPv4 half is removed again (rules in reverse order, then Istio's chains, as
istio-iptables's cleanup does), so nothing is left half-applied.

    ApplyError   a command that failed, with what it printed
    apply        install a configuration's rules
"""

from __future__ import annotations

import subprocess

from meshlab.intercept.capture import build_rules
from meshlab.intercept.config import CaptureConfig
from meshlab.intercept.rules import BUILT_IN_CHAINS, RuleSet

RESTORE = {4: "iptables-restore", 6: "ip6tables-restore"}
IPTABLES = {4: "iptables", 6: "ip6tables"}


class ApplyError(RuntimeError):
    """An iptables or ip command failed; the message has its argv and its stderr."""


def _in_netns(netns: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def _run(argv: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise ApplyError(f"{' '.join(argv)} failed (exit {done.returncode}): {done.stderr.strip()}")
    return done


def _tproxy_routes(config: CaptureConfig, family: int, verb: str) -> list[list[str]]:
    version = f"-{family}"
    return [
        ["ip", version, "rule", verb, "fwmark", config.inbound_tproxy_mark, "lookup", config.inbound_tproxy_route_table],
        ["ip", version, "route", verb, "local", "default" if family == 4 else "::/0", "dev", "lo", "table", config.inbound_tproxy_route_table],
    ]


def apply(config: CaptureConfig, netns: str | None = None) -> RuleSet:
    """Install the rules (in ``netns`` if given, else here); returns what was installed."""
    rules = build_rules(config)
    families = (4, 6) if config.enable_ipv6 else (4,)
    done: list[int] = []
    try:
        for family in families:
            _run(_in_netns(netns, [RESTORE[family], "--noflush"]), rules.restore_text(family))
            done.append(family)
            if config.tproxy:
                for argv in _tproxy_routes(config, family, "add"):
                    _run(_in_netns(netns, argv))
    except ApplyError:
        _remove(rules, config, netns, done)
        raise
    return rules


def _remove(rules: RuleSet, config: CaptureConfig, netns: str | None, families) -> None:
    for family in families:
        installed = rules.rules(family)
        for rule in reversed(installed):
            _run(_in_netns(netns, [IPTABLES[family], "-t", rule.table, "-D", rule.chain, *rule.params]), check=False)
        chains = [(rule.table, rule.chain) for rule in installed if rule.chain not in BUILT_IN_CHAINS]
        chains += [(rule.table, rule.target) for rule in installed if rule.target and rule.target.startswith("ISTIO_")]
        for verb in ("-F", "-X"):  # flush all first: a chain can only be deleted once nothing jumps to it
            for table, chain in dict.fromkeys(chains):
                _run(_in_netns(netns, [IPTABLES[family], "-t", table, verb, chain]), check=False)
        if config.tproxy:
            for argv in _tproxy_routes(config, family, "del"):
                _run(_in_netns(netns, argv), check=False)

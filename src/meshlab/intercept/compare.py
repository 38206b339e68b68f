"""Compare rules a kernel holds (``iptables-save`` output) with the rules istio-iptables would install.

iptables-save does not print rules as they were given: it adds ``-m tcp``/``-m udp``, reorders
options, writes ``--to-ports`` for ``--to-port``, a prefix length after a bare address (``/32``),
TPROXY's default ``--on-ip 0.0.0.0``, lists insertions in their final place, and adds counters and
chain headers. Both sides are therefore reduced to, per table and chain, the ordered
list of each rule's options as a sorted tuple; what differs is reported per chain.

    normalize         one rule's options, iptables-save's rewriting undone, order ignored
    saved_rules       iptables-save (or restore) text -> {(table, chain): [rule tokens, ...]} for ISTIO-related chains
    rule_differences  human-readable differences between two rule texts, empty when identical
    differences       the same between a pod's saved rules and what a CaptureConfig installs
"""

from __future__ import annotations

import re

from meshlab.intercept.capture import build_rules
from meshlab.intercept.config import CaptureConfig
from meshlab.intercept.walk import parse_rules

_IMPLICIT = {("-m", "tcp"), ("-m", "udp"), ("--on-ip", "0.0.0.0"), ("--on-ip", "::")}
_ADDRESS_OPTIONS = {"-s", "-d", "--source", "--destination"}


def _with_prefix(address: str) -> str:
    if "/" in address or "," in address:
        return address
    return f"{address}/128" if ":" in address else f"{address}/32"


def normalize(params: list[str]) -> tuple[str, ...]:
    """A rule's options as iptables-save and the generator would both state them, as a sorted tuple."""
    kept, index = [], 0
    while index < len(params):
        if tuple(params[index : index + 2]) in _IMPLICIT:
            index += 2
            continue
        token = params[index]
        if index > 0 and params[index - 1] in _ADDRESS_OPTIONS:
            token = _with_prefix(token)
        kept.append("--to-ports" if token == "--to-port" else token)
        index += 1
    return tuple(sorted(kept))


def saved_rules(text: str) -> dict[tuple[str, str], list[tuple[str, ...]]]:
    """The rules of every chain that is an ISTIO_* chain or jumps to one, option order ignored."""
    text = re.sub(r"^\[\d+:\d+\] ", "", text, flags=re.M)  # iptables-save -c counters
    tables = parse_rules(text)
    result = {}
    for table, chains in tables.items():
        for chain, rules in chains.items():
            relevant = [rule for rule in rules if chain.startswith("ISTIO_") or any(p.startswith("ISTIO_") for p in rule)]
            if relevant:
                result[(table, chain)] = [normalize(rule) for rule in relevant]
    return result


def differences(saved_text: str, config: CaptureConfig, family: int = 4) -> list[str]:
    """What the saved rules have that ``config`` would not install, or lack, chain by chain."""
    return rule_differences(saved_text, build_rules(config).restore_text(family))


def rule_differences(saved_text: str, expected_text: str) -> list[str]:
    """What ``saved_text`` (iptables-save) has that ``expected_text`` (restore input) lacks, and the reverse."""
    have, want = saved_rules(saved_text), saved_rules(expected_text)
    found = []
    for key in sorted(set(have) | set(want)):
        table, chain = key
        if have.get(key) != want.get(key):
            extra = [r for r in have.get(key, []) if r not in want.get(key, [])]
            missing = [r for r in want.get(key, []) if r not in have.get(key, [])]
            detail = "; ".join([f"unexpected: {' '.join(r)}" for r in extra] + [f"missing: {' '.join(r)}" for r in missing]) or "same rules, other order"
            found.append(f"{table}:{chain}: {detail}")
    return found

"""Compare rules a kernel holds (``iptables-save`` output) with the rules istio-iptables would install.

iptables-save does not print rules as they were given: it adds ``-m tcp``/``-m udp``, reorders
options, writes ``--to-ports`` for ``--to-port``, lists insertions in their final place, and adds
counters and chain headers. Both sides are therefore reduced to, per table and chain, the ordered
list of each rule's options as a sorted tuple; what differs is reported per chain.

    normalize         one rule's options, iptables-save's rewriting undone, order ignored
    saved_rules       iptables-save (or restore) text -> {(table, chain): [rule tokens, ...]} for ISTIO-related chains
    expected_rules    the same for a CaptureConfig, as the kernel will hold them
    differences       human-readable differences, empty when identical
"""

from __future__ import annotations

import re

from meshlab.intercept.capture import build_rules
from meshlab.intercept.config import CaptureConfig
from meshlab.intercept.walk import parse_rules

_IMPLICIT = {("-m", "tcp"), ("-m", "udp")}


def normalize(params: list[str]) -> tuple[str, ...]:
    """A rule's options as iptables-save and the generator would both state them, as a sorted tuple."""
    kept, index = [], 0
    while index < len(params):
        if tuple(params[index : index + 2]) in _IMPLICIT:
            index += 2
            continue
        kept.append("--to-ports" if params[index] == "--to-port" else params[index])
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


def expected_rules(config: CaptureConfig, family: int = 4) -> dict[tuple[str, str], list[tuple[str, ...]]]:
    return saved_rules(build_rules(config).restore_text(family))


def differences(saved_text: str, config: CaptureConfig, family: int = 4) -> list[str]:
    """What the saved rules have that ``config`` would not install, or lack, chain by chain."""
    have, want = saved_rules(saved_text), expected_rules(config, family)
    found = []
    for key in sorted(set(have) | set(want)):
        table, chain = key
        if have.get(key) != want.get(key):
            extra = [r for r in have.get(key, []) if r not in want.get(key, [])]
            missing = [r for r in want.get(key, []) if r not in have.get(key, [])]
            detail = "; ".join([f"unexpected: {' '.join(r)}" for r in extra] + [f"missing: {' '.join(r)}" for r in missing]) or "same rules, other order"
            found.append(f"{table}:{chain}: {detail}")
    return found

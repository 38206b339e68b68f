"""Rules as istio-iptables builds them: appended or inserted per family, rendered as iptables-restore input.

The mental model is Istio's rule builder (``tools/istio-iptables/pkg/builder``): every rule is
recorded for IPv4, and for IPv6 when it is enabled, in the order the capture logic adds it. The
restore text then lists, per table in alphabetical order, a ``-N`` line for each non-built-in
chain (first the chains that receive rules, in order of their first rule, then chains that are
only jumped to), the rules in the order they were added, and ``COMMIT``.

    Rule      one rule: table, chain, its parameters, and ``-I`` position if inserted
    RuleSet   the IPv4 and IPv6 rule lists, with append/insert helpers and restore_text()
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUILT_IN_CHAINS = frozenset({"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"})
#: A placeholder for the address that differs between the IPv4 and IPv6 version of a rule.
VERSIONED = "{address}"


@dataclass(frozen=True)
class Rule:
    table: str
    chain: str
    params: tuple[str, ...]
    position: int | None = None

    @property
    def target(self) -> str | None:
        """The ``-j`` target, if the rule's last-but-one parameter is ``-j``."""
        return self.params[-1] if len(self.params) >= 2 and self.params[-2] == "-j" else None

    def text(self) -> str:
        """The rule as a line of iptables-restore input."""
        head = ["-A", self.chain] if self.position is None else ["-I", self.chain, str(self.position)]
        return " ".join(head + list(self.params))


@dataclass
class RuleSet:
    """IPv4 rules, and IPv6 rules when ``ipv6`` is on, in the order they were added."""

    ipv6: bool = False
    v4: list[Rule] = field(default_factory=list)
    v6: list[Rule] = field(default_factory=list)

    def append_v4(self, table: str, chain: str, *params: str) -> None:
        self.v4.append(Rule(table, chain, params))

    def append_v6(self, table: str, chain: str, *params: str) -> None:
        if self.ipv6:
            self.v6.append(Rule(table, chain, params))

    def append(self, table: str, chain: str, *params: str) -> None:
        self.append_v4(table, chain, *params)
        self.append_v6(table, chain, *params)

    def append_versioned(self, v4_address: str, v6_address: str, table: str, chain: str, *params: str) -> None:
        """Append a dual-stack rule whose ``VERSIONED`` parameter is an address of each family."""
        self.append_v4(table, chain, *(v4_address if p == VERSIONED else p for p in params))
        self.append_v6(table, chain, *(v6_address if p == VERSIONED else p for p in params))

    def insert_v4(self, table: str, chain: str, position: int, *params: str) -> None:
        self.v4.append(Rule(table, chain, params, position))

    def insert_v6(self, table: str, chain: str, position: int, *params: str) -> None:
        if self.ipv6:
            self.v6.append(Rule(table, chain, params, position))

    def insert(self, table: str, chain: str, position: int, *params: str) -> None:
        self.insert_v4(table, chain, position, *params)
        self.insert_v6(table, chain, position, *params)

    def rules(self, family: int) -> list[Rule]:
        if family not in (4, 6):
            raise ValueError(f"family must be 4 or 6, got {family!r}")
        return self.v4 if family == 4 else self.v6

    def restore_text(self, family: int) -> str:
        """iptables-restore input for one family; empty when it has no rules."""
        rules = self.rules(family)
        tables: dict[str, list[str]] = {}
        # Chains that receive rules, then Istio chains that are only jumped to; never built-ins
        # (OUTPUT, PREROUTING, ...) nor targets such as RETURN or REDIRECT.
        chains = [(rule.table, rule.chain) for rule in rules]
        chains += [(rule.table, rule.target) for rule in rules if rule.target and rule.target.startswith("ISTIO_")]
        for table, chain in dict.fromkeys(chains):
            if chain not in BUILT_IN_CHAINS:
                tables.setdefault(table, []).append(f"-N {chain}")
        for rule in rules:
            tables.setdefault(rule.table, []).append(rule.text())
        return "".join(f"* {table}\n" + "".join(f"{line}\n" for line in tables[table]) + "COMMIT\n" for table in sorted(tables))


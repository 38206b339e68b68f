"""Compare two rule texts as iptables does: per table and chain, rules in order, each rule as iptables
stores it.

The kernel keeps a rule as three parts (``struct ipt_entry``): the IP header matches (source,
destination, interfaces, protocol), an *ordered* list of matches (each one module's options) and a
target with its options. ``iptables-save`` prints that structure back, not the command that made it,
so it rewrites what a rule said without changing what it does. A comparison must undo exactly those
rewrites and nothing else, each tested both ways (it joins what iptables joins and keeps apart what
iptables keeps apart, on the real kernel: tests/live/test_compare_kernel.py). The rewrites:

- long option names: ``--destination``, ``--to-port``, ``--destination-port`` print as ``-d``,
  ``--to-ports``, ``--dport``;
- header order: ``-s -d -i -o -p`` fill the IP header part and always print first, in that order;
- addresses: a bare address prints with ``/32`` (``/128``), host bits below the prefix are cleared;
- the implicit tcp/udp match: ``--dport`` after ``-p tcp`` loads it, printed as ``-m tcp --dport``;
- marks are numbers, printed in hex; MARK/CONNMARK ``--set-mark v[/m]`` is stored as ``--set-xmark v/(m|v)``;
- defaults printed: TPROXY's ``--on-ip 0.0.0.0`` (``::``), a mark's mask 0xffffffff, CONNMARK's
  ``--nfmask``/``--ctmask 0xffffffff``;
- ``--ctstate``'s states are a bit set, printed in a fixed order;
- owner names are resolved to numbers when the rule is loaded;
- a module's options fill one structure, printed in the module's order.

What is *not* normalised, because it changes what a rule does: the order of rules in a chain, the
order of matches in a rule (``-m mark`` before or after ``-m owner`` is evaluated in that order),
which option a ``!`` negates, and every value other than the spellings listed.

    Clause       one option of a rule: negated or not, its name, its values
    Match        one match module (or the IP header part) and its clauses
    Rule         a rule as iptables stores it: header, matches in order, target
    parse_rule   a rule's parameters -> Rule, iptables-save's rewriting undone
    ruleset      rule text (restore input or save output) -> {(table, chain): [Rule, ...]}
    Difference   one place where two rule texts differ: chain, position, expected, found
    compare      the differences between an expected and a found rule text (empty when the same rules)
    RuleTextError  a text that is not iptables-restore or iptables-save output
"""

from __future__ import annotations

import dataclasses
import difflib
import grp
import ipaddress
import itertools
import pwd
import re
from dataclasses import dataclass

from meshlab.intercept.walk import parse_rules

#: Long names and the abbreviations iptables' getopt accepts, as iptables-save spells them.
OPTION_NAMES = {
    "--source": "-s", "--src": "-s", "--destination": "-d", "--dst": "-d", "--in-interface": "-i",
    "--out-interface": "-o", "--protocol": "-p", "--jump": "-j", "--match": "-m",
    "--to-port": "--to-ports", "--destination-port": "--dport", "--source-port": "--sport",
}
#: The IP header part, in the order iptables-save prints it (before every match).
HEADER_OPTIONS = ("-s", "-d", "-i", "-o", "-p", "-f")
#: Options of the tcp/udp match that load it implicitly after ``-p tcp``/``-p udp``.
PROTOCOL_OPTIONS = frozenset({"--dport", "--sport", "--tcp-flags", "--syn", "--tcp-option"})
#: Conntrack states in the order iptables-save prints them (libxt_conntrack's print_state).
CTSTATE_ORDER = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
FULL_MASK = 0xFFFFFFFF


@dataclass(frozen=True, order=True)
class Clause:
    """One option as iptables stores it: ``negated`` for a ``!`` in front, then name and values."""

    negated: bool
    option: str
    values: tuple[str, ...] = ()

    def text(self) -> str:
        return " ".join((["!"] if self.negated else []) + [self.option, *self.values])


@dataclass(frozen=True)
class Match:
    """One match module's clauses (``module`` is "" for the IP header part, or the target's name).

    A module's options fill one structure, so their order on the command line means nothing and
    they are kept sorted; the order of the modules themselves is kept."""

    module: str
    clauses: tuple[Clause, ...]

    def text(self) -> str:
        return " ".join(clause.text() for clause in self.clauses)


@dataclass(frozen=True)
class Rule:
    """A rule as the kernel holds it: the IP header matches, the matches in order, the target."""

    header: Match
    matches: tuple[Match, ...]
    target: Match | None

    def text(self) -> str:
        """The rule in iptables-save's order (header, matches with their ``-m``, ``-j`` target)."""
        parts = [self.header.text()] if self.header.clauses else []
        parts += [f"-m {m.module} {m.text()}".strip() for m in self.matches]
        if self.target is not None:
            parts.append(f"-j {self.target.module} {self.target.text()}".strip())
        return " ".join(parts)


class RuleTextError(ValueError):
    """A rule text that cannot be read; the message names the line and what is accepted."""


# --- the rewrites iptables-save makes ------------------------------------------------------------

def _network(value: str) -> str:
    """``-s``/``-d``: a bare address gains ``/32`` (``/128``) and host bits under the prefix are
    cleared (``10.1.2.3/8`` is stored as ``10.0.0.0/8``), which is how the kernel compares it."""
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise RuleTextError(f"{value!r} is not an address or network (e.g. 10.0.0.0/8, 127.0.0.1, ::1/128)") from None


def _hex_mark(value: str) -> str:
    """``--mark 1337`` is stored as a number and printed in hex: ``0x539``; a mask likewise, except
    the full mask, which is the default and not printed (``1/0xffffffff`` is saved as ``0x1``)."""
    mark, slash, mask = value.partition("/")
    try:
        text = hex(int(mark, 0))
        return text + (f"/{hex(int(mask, 0))}" if slash and int(mask, 0) != FULL_MASK else "")
    except ValueError:
        raise RuleTextError(f"mark {value!r} is not a number or number/mask (e.g. 1337, 0x539/0xfff)") from None


def _xmark(value: str, set_mark: bool) -> str:
    """``--set-mark v[/m]`` means "clear m, OR v": iptables stores it as ``--set-xmark v/(m|v)``;
    ``--set-xmark v`` without a mask clears every bit (mask 0xffffffff)."""
    mark, slash, mask = value.partition("/")
    try:
        bits, mask_bits = int(mark, 0), int(mask, 0) if slash else FULL_MASK
    except ValueError:
        raise RuleTextError(f"mark {value!r} is not a number or number/mask (e.g. 1337, 0x1/0xffffffff)") from None
    return f"{hex(bits)}/{hex(mask_bits | bits if set_mark else mask_bits)}"


def _owner_id(option: str, name: str) -> str:
    """A user or group name as the number this machine gives it (what iptables stores); a name this
    machine does not know stays a name, so it can only equal the same name."""
    try:
        return str(pwd.getpwnam(name).pw_uid if option == "--uid-owner" else grp.getgrnam(name).gr_gid)
    except KeyError:
        return name


def _clause_value(module: str, option: str, values: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """One clause's option and values with iptables-save's spelling undone (the module docstring's list)."""
    if option in ("-s", "-d"):
        return option, tuple(_network(v) for v in values)
    if option == "--mark" and module in ("mark", "connmark"):
        return option, tuple(_hex_mark(v) for v in values)
    if option == "--tproxy-mark":
        return option, tuple(_xmark(v, set_mark=False) for v in values)
    if option in ("--set-mark", "--set-xmark") and module in ("MARK", "CONNMARK"):
        return "--set-xmark", tuple(_xmark(v, set_mark=option == "--set-mark") for v in values)
    if option in ("--uid-owner", "--gid-owner") and values and not values[0][0].isdigit():
        return option, (_owner_id(option, values[0]), *values[1:])
    if option == "--ctstate":
        states = values[0].split(",") if values else []
        known = [s for s in CTSTATE_ORDER if s in states] + sorted(s for s in states if s not in CTSTATE_ORDER)
        return option, (",".join(known),)
    return option, values


#: Options a target prints with its default value, which a rule written without them equals.
TARGET_DEFAULTS = {
    "TPROXY": {Clause(False, "--on-ip", ("0.0.0.0",)), Clause(False, "--on-ip", ("::",))},
    "CONNMARK": {Clause(False, "--nfmask", ("0xffffffff",)), Clause(False, "--ctmask", ("0xffffffff",))},
}


def _drop_defaults(module: str, clauses: list[Clause]) -> list[Clause]:
    return [c for c in clauses if c not in TARGET_DEFAULTS.get(module, set())]


# --- reading a rule ------------------------------------------------------------------------------

def _clauses(params: list[str]) -> list[tuple[bool, str, tuple[str, ...]]]:
    """``[! ]option value...`` groups, in order; a value is every token up to the next option."""
    groups, index = [], 0
    while index < len(params):
        negated = params[index] == "!"
        index += negated
        if index >= len(params) or not params[index].startswith("-"):
            raise RuleTextError(f"expected an option at {' '.join(params[index:index + 2]) or 'the end'!r} "
                                f"in {' '.join(params)!r}")
        option = OPTION_NAMES.get(params[index], params[index])
        index += 1
        values = []
        while index < len(params) and params[index] != "!" and not (params[index].startswith("-") and not _negative(params[index])):
            values.append(params[index])
            index += 1
        groups.append((negated, option, tuple(values)))
    return groups


def _negative(token: str) -> bool:
    return token[1:].isdigit()


def parse_rule(params: list[str] | tuple[str, ...]) -> Rule:
    """A rule's parameters (after ``-A CHAIN``) as iptables stores them."""
    header: list[Clause] = []
    matches: list[tuple[str, list[Clause]]] = []
    target: tuple[str, list[Clause]] | None = None
    protocol = ""
    for negated, option, values in _clauses(list(params)):
        if option == "-j":
            if target is not None or len(values) != 1:
                raise RuleTextError(f"a rule has one -j TARGET: {' '.join(params)!r}")
            target = (values[0], [])
        elif target is not None:
            option, values = _clause_value(target[0], option, values)
            target[1].append(Clause(negated, option, values))
        elif option == "-m":
            if len(values) != 1:
                raise RuleTextError(f"-m takes one module name: {' '.join(params)!r}")
            matches.append((values[0], []))
        elif option in HEADER_OPTIONS:
            option, values = _clause_value("", option, values)
            header.append(Clause(negated, option, values))
            protocol = values[0] if option == "-p" and values else protocol
        else:
            if option in PROTOCOL_OPTIONS and (not matches or matches[-1][0] != protocol):
                if protocol not in ("tcp", "udp"):
                    raise RuleTextError(f"{option} needs -p tcp or -p udp first: {' '.join(params)!r}")
                matches.append((protocol, []))  # the implicit tcp/udp match, printed as -m tcp
            if not matches:
                raise RuleTextError(f"{option} belongs to no match module (-m NAME) in {' '.join(params)!r}")
            module = matches[-1][0]
            option, values = _clause_value(module, option, values)
            matches[-1][1].append(Clause(negated, option, values))
    return Rule(
        header=Match("", tuple(sorted(header, key=lambda c: HEADER_OPTIONS.index(c.option)))),
        matches=tuple(Match(name, tuple(sorted(clauses))) for name, clauses in matches),
        target=None if target is None else Match(target[0], tuple(sorted(_drop_defaults(target[0], target[1])))),
    )


_COUNTERS = re.compile(r"^\[\d+:\d+\] ", flags=re.M)


def ruleset(text: str) -> dict[tuple[str, str], list[Rule]]:
    """Every non-empty chain of a rule text (restore input, ``-I`` applied, or iptables-save output,
    counters and comments ignored), its rules in order."""
    try:
        tables = parse_rules(_COUNTERS.sub("", text))
    except (ValueError, IndexError) as error:
        raise RuleTextError(f"not iptables-restore or iptables-save text: {error}") from None
    result = {}
    for table, chains in tables.items():
        for chain, rules in chains.items():
            try:
                parsed = [parse_rule(rule) for rule in rules]
            except RuleTextError as error:
                raise RuleTextError(f"{table}:{chain}: {error}") from None
            if parsed:
                result[(table, chain)] = parsed
    return result


@dataclass(frozen=True)
class Difference:
    """One rule that differs: ``expected`` where the expected text has a rule the found one lacks
    (``position`` in the expected chain), ``found`` for a rule only the found text has (``position``
    in the found chain), both where a rule stands in the place of another."""

    table: str
    chain: str
    position: int
    expected: str | None
    found: str | None

    def __str__(self) -> str:
        where = f"{self.table}:{self.chain} rule {self.position}"
        if self.found is None:
            return f"{where}: missing: {self.expected}"
        if self.expected is None:
            return f"{where}: unexpected: {self.found}"
        return f"{where}: expected: {self.expected}; found: {self.found}"

    def as_json(self) -> dict:
        return dataclasses.asdict(self)


def _chain_differences(table: str, chain: str, want: list[Rule], have: list[Rule]) -> list[Difference]:
    """The two rule lists aligned (difflib), so one extra rule is one difference, not a shifted chain."""
    result = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, want, have, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        for k, (a, b) in enumerate(itertools.zip_longest(want[i1:i2], have[j1:j2])):
            position = (i1 if a is not None else j1) + k + 1
            result.append(Difference(table, chain, position, a and a.text(), b and b.text()))
    return result


def compare(expected_text: str, found_text: str, chains: str | None = None) -> list[Difference]:
    """Where ``found_text`` differs from ``expected_text``, rule by rule in each chain; empty when
    they are the same rules in the same order. ``chains`` (a regular expression searched in
    ``table:chain``) limits the comparison, e.g. to leave out chains another program owns."""
    expected, found = ruleset(expected_text), ruleset(found_text)
    try:
        wanted = re.compile(chains) if chains else None
    except re.error as error:
        raise RuleTextError(f"chains {chains!r} is not a regular expression ({error}); e.g. ISTIO or 'nat:ISTIO_(IN|OUT)'") from None
    result = []
    for table, chain in sorted(set(expected) | set(found)):
        if wanted is None or wanted.search(f"{table}:{chain}"):
            result += _chain_differences(table, chain, expected.get((table, chain), []), found.get((table, chain), []))
    return result

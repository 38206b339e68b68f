"""Walk one connection's first packet through iptables rules, as netfilter would.

Rules come as iptables-restore text (what ``meshlab intercept istio-iptables`` prints, or the
restore part of it). A Connection describes the first packet: the hook it enters (OUTPUT for a
local process's connect(), PREROUTING for a packet arriving on an interface), addresses, ports,
interfaces, the owning socket's uid and gids, and marks. The walk visits, for that hook, the
tables in netfilter's priority order (raw, mangle, nat), follows jumps into ISTIO_* chains, and
records every rule that *matched*, which is exactly what the kernel's TRACE shows.

nat is consulted only for a connection's first packet (conntrack state NEW); its verdicts are
REDIRECT (to a local port), or falling off the built-in chain (the policy, ACCEPT): the packet
goes on untranslated.

    Connection   the first packet of a connection and its socket's owner
    Step         one matched rule (or a policy) and what it did
    Walk         the steps, the verdict and the final port, plus a figure
    parse_rules  iptables-restore text -> {table: {chain: [params...]}}
    walk         the Walk for rules and a connection
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field

HOOK_TABLES = {"OUTPUT": ("raw", "mangle", "nat"), "PREROUTING": ("raw", "mangle", "nat")}
TERMINAL_TARGETS = frozenset({"REDIRECT", "TPROXY", "ACCEPT", "DROP", "DNAT", "REJECT"})
#: Targets that act and let the packet continue to the next rule.
CONTINUING_TARGETS = frozenset({"MARK", "CONNMARK", "CT", "TRACE", "LOG", "NFLOG"})


@dataclass(frozen=True)
class Connection:
    """The first packet of a connection, and who owns the socket that sent it (for OUTPUT)."""

    hook: str
    source: str
    destination: str
    dport: int
    sport: int = 40000
    protocol: str = "tcp"
    in_interface: str | None = None
    out_interface: str | None = None
    uid: int | None = None
    gids: tuple[int | str, ...] = ()  # the socket owner's groups, as numbers or names (e.g. "java")
    mark: int = 0
    connmark: int = 0
    ctstate: str = "NEW"

    def __post_init__(self) -> None:
        if self.hook not in HOOK_TABLES:
            raise ValueError(f"hook {self.hook!r} is not one of {', '.join(HOOK_TABLES)}")
        if self.protocol not in ("tcp", "udp"):
            raise ValueError(f"protocol {self.protocol!r} is not tcp or udp")
        for name in ("source", "destination"):
            try:
                ipaddress.ip_address(getattr(self, name))
            except ValueError:
                raise ValueError(f"{name} {getattr(self, name)!r} is not an IP address") from None
        if self.hook == "OUTPUT" and self.in_interface or self.hook == "PREROUTING" and self.out_interface:
            raise ValueError("OUTPUT packets have only an out_interface, PREROUTING packets only an in_interface")


@dataclass(frozen=True)
class Step:
    """A matched rule: where it is, its text, and its effect (JUMP:X, RETURN, CONTINUE, ACCEPT, DROP,
    or policy:ACCEPT when the packet fell off a built-in chain)."""

    table: str
    chain: str
    rule: str
    effect: str


@dataclass
class Walk:
    connection: Connection
    steps: list[Step] = field(default_factory=list)
    verdict: str = "ACCEPT"
    to_port: int | None = None

    @property
    def chains(self) -> list[str]:
        """``table:chain`` visited, in order, without repeats in a row."""
        visited: list[str] = []
        for step in self.steps:
            name = f"{step.table}:{step.chain}"
            if not visited or visited[-1] != name:
                visited.append(name)
        return visited

    def summary(self) -> str:
        where = f" to port {self.to_port}" if self.to_port else ""
        return f"{self.verdict}{where} via {' -> '.join(self.chains)}"


def parse_rules(text: str) -> dict[str, dict[str, list[list[str]]]]:
    """iptables-restore text -> table -> chain -> rules (parameter lists), ``-I`` insertions applied."""
    tables: dict[str, dict[str, list[list[str]]]] = {}
    table = None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#") or line in ("COMMIT", "iptables-save", "ip6tables-save"):
            continue
        if line.startswith("*"):
            table = line[1:].strip()
            tables.setdefault(table, {})
            continue
        if table is None:
            raise ValueError(f"line {number}: rule {line!r} before any '* table' line")
        if line.startswith(":"):
            tables[table].setdefault(line[1:].split()[0], [])
            continue
        tokens = shlex.split(line)
        if tokens[0] == "-N":
            tables[table].setdefault(tokens[1], [])
        elif tokens[0] == "-A":
            tables[table].setdefault(tokens[1], []).append(tokens[2:])
        elif tokens[0] == "-I":
            position = int(tokens[2]) if len(tokens) > 2 and tokens[2].isdigit() else 1
            params = tokens[3:] if len(tokens) > 2 and tokens[2].isdigit() else tokens[2:]
            tables[table].setdefault(tokens[1], []).insert(position - 1, params)
        else:
            raise ValueError(f"line {number}: cannot read {line!r}; expected -N, -A, -I, COMMIT or '* table'")
    return tables


def _in_network(address: str, cidr: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr, strict=False)


def _interface_matches(name: str | None, pattern: str) -> bool:
    if name is None:
        return False
    return name.startswith(pattern[:-1]) if pattern.endswith("+") else name == pattern


def _mark_matches(value: int, spec: str) -> bool:
    wanted, _, mask = spec.partition("/")
    mask_value = int(mask, 0) if mask else 0xFFFFFFFF
    return value & mask_value == int(wanted, 0)


def _owner_matches(ids: tuple, spec: str) -> bool:
    """``--uid-owner``/``--gid-owner`` take a number or a name; Connection ids may be either."""
    return spec in {str(i) for i in ids}


@dataclass
class _Packet:
    """The mutable view of the packet during a walk (marks change as MARK/CONNMARK rules fire)."""

    connection: Connection
    mark: int
    connmark: int


def _split_target(params: list[str]) -> tuple[list[str], str | None, list[str]]:
    if "-j" in params:
        index = params.index("-j")
        return params[:index], params[index + 1], params[index + 2 :]
    return params, None, []


def _matches(matches: list[str], packet: _Packet) -> bool:
    """Evaluate every match in a rule; ``!`` negates the option after it; ``--mark`` reads the
    packet's mark after ``-m mark`` and the connection's after ``-m connmark``."""
    c = packet.connection
    tokens = iter(matches)
    module = ""
    for token in tokens:
        negate = token == "!"
        if negate:
            token = next(tokens)
        value = next(tokens)
        if token == "-m":
            module = value
            continue
        if token in ("-p", "--protocol"):
            result = c.protocol == value
        elif token in ("-s", "--source"):
            result = _in_network(c.source, value)
        elif token in ("-d", "--destination"):
            result = _in_network(c.destination, value)
        elif token in ("-i", "--in-interface"):
            result = _interface_matches(c.in_interface, value)
        elif token in ("-o", "--out-interface"):
            result = _interface_matches(c.out_interface, value)
        elif token in ("--dport", "--destination-port"):
            result = c.dport == int(value)
        elif token in ("--sport", "--source-port"):
            result = c.sport == int(value)
        elif token == "--dports":
            result = c.dport in {int(port) for port in value.split(",")}
        elif token == "--uid-owner":
            result = c.uid is not None and _owner_matches((c.uid,), value)
        elif token == "--gid-owner":
            result = c.uid is not None and _owner_matches(c.gids, value)
        elif token == "--mark":
            result = _mark_matches(packet.connmark if module == "connmark" else packet.mark, value)
        elif token == "--ctstate":
            result = c.ctstate in value.split(",")
        elif token == "--tcp-flags":
            next(tokens)
            result = c.protocol == "tcp"  # the first packet of a TCP connection is a SYN
        else:
            raise ValueError(f"the walk does not know the match {token!r}")
        if result == negate:
            return False
    return True


def walk(rules_text: str, connection: Connection) -> Walk:
    """The path of ``connection``'s first packet through ``rules_text`` at its hook."""
    tables = parse_rules(rules_text)
    result = Walk(connection)
    packet = _Packet(connection, connection.mark, connection.connmark)
    for table in HOOK_TABLES[connection.hook]:
        chains = tables.get(table, {})
        if connection.hook not in chains or (table == "nat" and connection.ctstate != "NEW"):
            continue
        verdict = _walk_chain(chains, table, connection.hook, packet, result)
        if verdict is None:
            result.steps.append(Step(table, connection.hook, "", "policy:ACCEPT"))
        elif verdict != "ACCEPT":
            result.verdict = verdict
            return result
    return result


def _walk_chain(chains: dict[str, list[list[str]]], table: str, chain: str, packet: _Packet, result: Walk) -> str | None:
    """Walk one chain: the terminal target that fired, or None when a RETURN matched or the chain
    ran out (the kernel's trace shows neither as a step of its own after the RETURN rule)."""
    for params in chains.get(chain, []):
        matches, target, options = _split_target(params)
        if not _matches(matches, packet):
            continue
        text = " ".join(["-A", chain, *params])
        if target is None or target in CONTINUING_TARGETS:
            if target:
                _apply_continuing(target, options, packet)
            result.steps.append(Step(table, chain, text, "CONTINUE"))
        elif target == "RETURN":
            result.steps.append(Step(table, chain, text, "RETURN"))
            return None
        elif target in TERMINAL_TARGETS:
            result.steps.append(Step(table, chain, text, "DROP" if target in ("DROP", "REJECT") else "ACCEPT"))
            if target in ("REDIRECT", "TPROXY"):
                port = next(options[i + 1] for i, o in enumerate(options) if o in ("--to-ports", "--to-port", "--on-port"))
                result.to_port = int(port.split("-")[0])
            return target
        else:
            result.steps.append(Step(table, chain, text, f"JUMP:{target}"))
            verdict = _walk_chain(chains, table, target, packet, result)
            if verdict is not None:
                return verdict
    return None


def _apply_continuing(target: str, options: list[str], packet: _Packet) -> None:
    if target == "MARK" and "--set-mark" in options:
        packet.mark = int(options[options.index("--set-mark") + 1].split("/")[0], 0)
    elif target == "CONNMARK" and "--save-mark" in options:
        packet.connmark = packet.mark
    elif target == "CONNMARK" and "--restore-mark" in options:
        packet.mark = packet.connmark

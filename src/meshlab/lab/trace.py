"""The kernel's own account of a packet's path: a TRACE rule and ``xtables-monitor --trace``.

A raw-table TRACE rule marks the first packet of the connections we care about; netfilter then
reports every rule that packet matched, in every table and chain, with its verdict. Read with
``xtables-monitor --trace`` (iptables' nf_tables backend) inside the pod's namespace, it needs no
host sysctl. ``parse_trace`` turns that report into the same Steps the packet walk produces, so
the two can be compared line by line.

    trace_rule     the raw-table TRACE rule (iptables arguments) for a hook, protocol and port
    comparable     Steps reduced to what the kernel and the walk can both state
    parse_trace    xtables-monitor output -> [Step], one packet id at a time
    kernel_trace   run a trigger with a TRACE rule in place (once the monitor is seen listening) and return the kernel's Steps
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable

from meshlab.intercept.compare import Rule, parse_rule
from meshlab.intercept.walk import Step
from meshlab.lab.netns import LabError, NetNS

#: " TRACE: 2 a3c29c4a nat:ISTIO_OUTPUT:rule:0x15:JUMP:ISTIO_REDIRECT  -4 -t nat -A ISTIO_OUTPUT -j ISTIO_REDIRECT"
TRACE_LINE = re.compile(r"^\s*TRACE: \d+ (?P<id>[0-9a-f]+) (?P<table>\w+):(?P<chain>[\w-]+):(?P<kind>rule|policy|return):(?P<rest>\S*)\s*(?P<rule>.*)$")


#: A line that ends the packet's way through nat: a terminal rule (REDIRECT shows as ACCEPT) or the policy.
NAT_VERDICT = re.compile(r"nat:\w+:(policy:\w+|rule:0x[0-9a-f]+:(ACCEPT|DROP))")


#: nf_tables verdict codes xtables-monitor prints as numbers (include/uapi/linux/netfilter/nf_tables.h).
NFT_VERDICTS = {"0xffffffff": "CONTINUE", "0xfffffffb": "RETURN"}
def traced_rule(text: str) -> Rule:
    """A traced rule (``-4 -t nat -A CHAIN ...``) without its framing, as meshlab.intercept.compare reads it."""
    tokens, params, index = text.split(), [], 0
    while index < len(tokens):
        if tokens[index] in ("-4", "-6"):
            index += 1
        elif tokens[index] in ("-t", "-A"):
            index += 2
        else:
            params.append(tokens[index])
            index += 1
    return parse_rule(params)


def comparable(steps: list[Step]) -> list[tuple[str, str, str, Rule]]:
    """(table, chain, effect, rule tokens) per step, the TRACE rule itself left out."""
    return [(s.table, s.chain, s.effect, traced_rule(s.rule)) for s in steps if not s.rule.endswith("-j TRACE")]


def trace_rule(hook: str, protocol: str, dport: int, owner_uid: int | None = None) -> list[str]:
    """``-t raw -I <hook> 1 ... -j TRACE`` for the first packet (a TCP SYN) of matching connections."""
    rule = ["-t", "raw", "-I", hook, "1", "-p", protocol, "--dport", str(dport)]
    if protocol == "tcp":
        rule += ["--tcp-flags", "SYN,ACK", "SYN"]
    if owner_uid is not None:
        rule += ["-m", "owner", "--uid-owner", str(owner_uid)]
    return rule + ["-j", "TRACE"]


def parse_trace(text: str) -> list[Step]:
    """Steps of the first traced packet; the TRACE rule's own line is left out."""
    steps, packet = [], None
    for line in text.splitlines():
        match = TRACE_LINE.match(line)
        if not match:
            continue
        if packet is None:
            packet = match["id"]
        if match["id"] != packet:
            continue
        rule = match["rule"].strip()
        if rule.endswith("-j TRACE"):
            continue
        if match["kind"] == "rule":
            effect = match["rest"].split(":", 1)[1]  # "0x15:JUMP:ISTIO_REDIRECT" -> "JUMP:ISTIO_REDIRECT"
            effect = NFT_VERDICTS.get(effect, effect)
        elif match["kind"] == "policy":
            effect = f"policy:{match['rest']}"
        else:  # "return:" lines: the kernel left a user chain; the walk does not list these
            continue
        steps.append(Step(match["table"], match["chain"], rule, effect))
    return steps


#: xtables-monitor says nothing when it is ready, so readiness is seen: a TRACE rule for UDP to the
#: discard port on loopback, and datagrams sent there until the monitor reports one of them. The next
#: rule drops them, so they never come back through PREROUTING as packets of their own.
PROBE_MATCH = ["-p", "udp", "-d", "127.0.0.1", "--dport", "9"]
PROBE_SENDER = ("import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                "for _ in range(1000):\n    s.sendto(b'', ('127.0.0.1', 9))\n    time.sleep(0.01)\n")
READY_TIMEOUT_S = 10.0


def _is_probe(match: re.Match) -> bool:
    return match["table"] == "raw" and match["rule"].strip().endswith("-j TRACE") and "-p udp" in match["rule"] and "--dport 9 " in match["rule"]


def _remove_probe(namespace: NetNS) -> None:
    for target in ("TRACE", "DROP"):
        namespace.run(["iptables", "-t", "raw", "-D", "OUTPUT", *PROBE_MATCH, "-j", target], check=False)


def kernel_trace(namespace: NetNS, rule: list[str], trigger: Callable[[], object], timeout: float = 5.0) -> list[Step]:
    """Insert ``rule`` (from trace_rule), watch with xtables-monitor, run ``trigger``, remove the rule.

    The trigger runs once the monitor has reported a probe packet (it is subscribed); the probe's own
    packets are left out. Reading stops at the first verdict that ends the packet's way through nat
    (where Istio's decisions are made), or after ``timeout`` seconds."""
    namespace.run(["iptables", "-t", "raw", "-I", "OUTPUT", "1", *PROBE_MATCH, "-j", "DROP"])
    namespace.run(["iptables", "-t", "raw", "-I", "OUTPUT", "1", *PROBE_MATCH, "-j", "TRACE"])
    namespace.run(["iptables", *rule])
    monitor = subprocess.Popen(namespace.argv(["xtables-monitor", "--trace"]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    listening, done, probes = threading.Event(), threading.Event(), set()

    def read() -> None:
        for line in monitor.stdout:
            match = TRACE_LINE.match(line)
            if match and (match["id"] in probes or _is_probe(match)):
                probes.add(match["id"])
                listening.set()
                continue
            lines.append(line)
            if NAT_VERDICT.search(line):
                done.set()
        listening.set()
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sender = subprocess.Popen(namespace.argv([sys.executable, "-c", PROBE_SENDER]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        heard = listening.wait(READY_TIMEOUT_S)
        sender.kill()
        sender.wait(timeout=5)
        _remove_probe(namespace)
        if not heard or monitor.poll() is not None:
            raise LabError(f"xtables-monitor --trace reported no probe packet within {READY_TIMEOUT_S:.0f} s: {''.join(lines)[-300:]}")
        trigger()
        done.wait(timeout)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(timeout=5)
        monitor.terminate()
        monitor.wait(timeout=5)
        reader.join(timeout=5)
        _remove_probe(namespace)
        hook, match = rule[3], rule[5:]
        namespace.run(["iptables", "-t", "raw", "-D", hook, *match])
    return parse_trace("".join(lines))

"""The packet walk agrees with the kernel: for every connection of the matrix, the chains, rules
and verdict the walk predicts from meshlab's rules are what netfilter's TRACE reports in a live pod.

Pods: pod0 excludes inbound port 9090 from capture; pod1 excludes the CIDR 10.244.0.12/32 and
captures DNS to 10.96.0.53; pod2 has the default capture. All run Istio's rules and a sidecar.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from meshlab.intercept import build_rules
from meshlab.intercept.walk import Connection, walk
from meshlab.lab import Lab, PodSpec
from meshlab.lab.spec import DEFAULT_CAPTURE
from meshlab.lab.trace import comparable, kernel_trace, trace_rule

pytestmark = pytest.mark.live

PREFIX = "mlw"
DNS_SERVER = "10.96.0.53"
CAPTURE = {
    "pod0": replace(DEFAULT_CAPTURE, inbound_ports_exclude="9090"),
    "pod1": replace(DEFAULT_CAPTURE, outbound_ip_ranges_exclude="10.244.0.12/32", redirect_dns=True, dns_servers_v4=(DNS_SERVER,)),
    "pod2": DEFAULT_CAPTURE,
}


@pytest.fixture(scope="module")
def lab():
    with Lab(PREFIX).up([PodSpec(name, capture=capture) for name, capture in CAPTURE.items()]) as running:
        yield running


def connect(lab: Lab, pod: str, uid: int, host: str, port: int, source: str | None = None, protocol: str = "tcp") -> None:
    """Open a connection (or send one datagram) from ``pod`` as ``uid``, with the system Python."""
    if protocol == "udp":
        code = f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ({host!r}, {port}))"
    else:
        bind = f"s.bind(({source!r}, 0)); " if source else ""
        code = f"import socket; s = socket.socket(); s.settimeout(1); {bind}\ntry: s.connect(({host!r}, {port}))\nexcept OSError: pass"
    done = lab.exec(pod, ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "/usr/bin/python3", "-c", code])
    assert done.returncode == 0, done.stderr


#: name -> (pod traced, trace hook, uid filter, connection for the walk, trigger (pod, uid, host, port, source, protocol))
MATRIX = {
    "app outbound is redirected to 15001": ("pod1", Connection("OUTPUT", "10.244.0.11", "10.244.0.10", 8080, out_interface="eth0", uid=0, gids=(0,)), ("pod1", 0, "10.244.0.10", 8080, None, "tcp")),
    "proxy outbound (uid 1337) is returned": ("pod1", Connection("OUTPUT", "10.244.0.11", "10.244.0.10", 8080, out_interface="eth0", uid=1337, gids=(1337,)), ("pod1", 1337, "10.244.0.10", 8080, None, "tcp")),
    "inbound to a captured port is redirected to 15006": ("pod0", Connection("PREROUTING", "10.244.0.12", "10.244.0.10", 8080, in_interface="eth0"), ("pod2", 1337, "10.244.0.10", 8080, None, "tcp")),
    "inbound to an excluded port is returned": ("pod0", Connection("PREROUTING", "10.244.0.12", "10.244.0.10", 9090, in_interface="eth0"), ("pod2", 1337, "10.244.0.10", 9090, None, "tcp")),
    "loopback from the app is returned": ("pod1", Connection("OUTPUT", "127.0.0.1", "127.0.0.1", 8080, out_interface="lo", uid=0, gids=(0,)), ("pod1", 0, "127.0.0.1", 8080, None, "tcp")),
    "the proxy's 127.0.0.6 source is returned": ("pod0", Connection("OUTPUT", "127.0.0.6", "10.244.0.10", 8080, out_interface="lo", uid=1337, gids=(1337,)), ("pod0", 1337, "10.244.0.10", 8080, "127.0.0.6", "tcp")),
    "the proxy calling its own pod IP goes to inbound capture": ("pod0", Connection("OUTPUT", "10.244.0.10", "10.244.0.10", 8080, out_interface="lo", uid=1337, gids=(1337,)), ("pod0", 1337, "10.244.0.10", 8080, None, "tcp")),
    "an excluded CIDR is returned": ("pod1", Connection("OUTPUT", "10.244.0.11", "10.244.0.12", 8080, out_interface="eth0", uid=0, gids=(0,)), ("pod1", 0, "10.244.0.12", 8080, None, "tcp")),
    "DNS to the pod's resolver is redirected to 15053": ("pod1", Connection("OUTPUT", "10.244.0.11", DNS_SERVER, 53, protocol="udp", out_interface="eth0", uid=0, gids=(0,)), ("pod1", 0, DNS_SERVER, 53, None, "udp")),
}


@pytest.mark.parametrize("case", list(MATRIX))
def test_walk_predicts_what_the_kernel_traces(lab, case):
    traced_pod, connection, (pod, uid, host, port, source, protocol) = MATRIX[case]
    rule = trace_rule(connection.hook, connection.protocol, connection.dport, connection.uid)
    kernel = kernel_trace(lab.pod(traced_pod).namespace, rule, lambda: connect(lab, pod, uid, host, port, source, protocol))
    assert kernel, f"{case}: the kernel reported no trace"
    trace_block = "*raw\n-I " + " ".join(rule[3:4] + rule[5:]) + "\nCOMMIT\n"
    predicted = walk(build_rules(CAPTURE[traced_pod]).restore_text(4) + trace_block, connection)
    assert comparable(predicted.steps) == comparable(kernel), f"{case}: walk {predicted.summary()}"

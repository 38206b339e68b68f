"""Checks for lab 03, "Counting the path".

The reader predicts, for one request from app A to app B through both sidecars, how many nat-table
and TCP/IP stack traversals each datapath makes (on one node and across two), and what the
counters read after ``n`` requests: the packet counters of Istio's nat rules in both pods
(``iptables-save -c``) and the eBPF datapath's counters map. The predictions are checked first
against the model, then against the kernel in live labs.

The model of the counters: the four first packets of a request (app A's and sidecar A's in pod
A's OUTPUT, the sidecar-to-sidecar connection arriving at pod B's PREROUTING, sidecar B's
connection to its app in pod B's OUTPUT) walked through the pods' own rules
(``meshlab.intercept.walk``), and the segments of ``meshlab.intercept.paths`` for the eBPF
counters: connect4 rewrites the app's connection, and sk_msg handles a request and a reply per
segment, redirecting them on the segments it short-circuits and passing them on the others.

    MISTAKES          the wrong answers the checks recognise
    LIVE_DATAPATHS    the live lab's datapaths and the model's name for each
    COUNTERS          the counters the reader predicts, and where each is read
    check_traversals  the reader's table of traversals per request, against meshlab.intercept.paths
    model_counters    what the model says the counters read after n requests
    kernel_counters   what the kernel counted in a live lab
    check_counters    the reader's predictions against the model, every datapath and placement
    check_live        the same predictions against the kernel, in live labs
"""

from __future__ import annotations

from collections.abc import Callable

from meshlab.check import CheckFailed, Mistake, answer_of, require_stage
from meshlab.intercept import build_rules
from meshlab.intercept.paths import DATAPATHS, request_segments, traversals
from meshlab.intercept.walk import Connection, walk

#: The lab's datapaths (``Lab.up(datapath=...)``) and the model's name for each.
LIVE_DATAPATHS = {"iptables": "iptables", "ebpf": "ebpf-meshlab"}
PLACEMENTS = (True, False)  # same node, two nodes
SERVER_IP, CLIENT_IP, APP_PORT = "10.244.0.10", "10.244.0.11", 8080
#: counter -> (pod, nat chain, target of the counted rule); the eBPF counters are read from its map.
NAT_COUNTERS = {
    "client OUTPUT": ("client", "OUTPUT", "ISTIO_OUTPUT"),
    "client REDIRECT 15001": ("client", "ISTIO_REDIRECT", "REDIRECT"),
    "server PREROUTING": ("server", "PREROUTING", "ISTIO_INBOUND"),
    "server REDIRECT 15006": ("server", "ISTIO_IN_REDIRECT", "REDIRECT"),
    "server OUTPUT": ("server", "OUTPUT", "ISTIO_OUTPUT"),
}
EBPF_COUNTERS = ("connect_rewrites", "redirected_messages", "passed_messages")
COUNTERS = (*NAT_COUNTERS, *EBPF_COUNTERS)


# -- the wrong answers the checks recognise (check_live gives the counters' hints as check_counters does) --
STACK_ONCE = Mistake("traversals_table", "counts one stack traversal per segment (iptables: 3)",
                     "a segment's bytes go down the sender's stack and up the receiver's: 2 traversals per segment, 3 segments")
MERBRIDGE_CNI_RULES = Mistake("traversals_table", "gives Merbridge 2022 no iptables traversals across nodes",
                              "that is Merbridge's CNI mode; the 2022 design keeps istio-init's rules, so across nodes the middle "
                              "connection still meets sidecar A's OUTPUT and pod B's PREROUTING")
CNI_MODE_RULES = Mistake("traversals_table", "gives Merbridge's CNI mode iptables traversals across nodes",
                         "the CNI mode installs no iptables rules: its TC program (mb_tc.c) sends a connection from another node to 15006")
EBPF_WITHOUT_RULES = Mistake("traversals_table", "gets meshlab's eBPF datapath's nat traversals wrong (it keeps Istio's rules)",
                             "meshlab's eBPF datapath keeps Istio's rules in the pods: connect4 changes where the app's connection goes, "
                             "but its first packet still passes nat OUTPUT, and inbound capture is still PREROUTING's REDIRECT")
EBPF_NO_STACK = Mistake("traversals_table", "gives meshlab's eBPF datapath no stack traversal on one node",
                        "meshlab's sk_msg takes the two loopback segments only; the sidecar-to-sidecar connection crosses the stack "
                        "even on one node (Merbridge 2022's connect4 takes that one too)")
SIDECAR_OUTPUT_FORGOTTEN = Mistake("predict_counters", "client OUTPUT = n: forgets sidecar A's own connection",
                                   "sidecar A's own connection to pod B starts in pod A too: its first packet passes nat OUTPUT "
                                   "(and RETURNs, uid 1337)")
PREROUTING_TWICE = Mistake("predict_counters", "server PREROUTING = 2n: counts sidecar B's connection to its app there",
                           "nat sees a connection's first packet at its first hook only: sidecar B's connection to its app starts in "
                           "OUTPUT, and its trip over lo does not consult nat PREROUTING again")
EBPF_REDIRECT_15001 = Mistake("predict_counters", "eBPF: client REDIRECT 15001 = n",
                              "connect4 rewrote the app's destination before the SYN existed, and with eBPF the pod has no outbound "
                              "REDIRECT rule in use")
MERBRIDGE_ON_ONE_NODE = Mistake("predict_counters", "eBPF on one node: predicts Merbridge 2022's short-circuit of the middle connection",
                                "meshlab's connect4 leaves the sidecar-to-sidecar connection alone on one node as on two (Merbridge "
                                "2022's takes it): it crosses the stack and pod B's PREROUTING redirect")
ONE_MESSAGE_PER_SEGMENT = Mistake("predict_counters", "eBPF: redirected_messages = 2n (one message per segment)",
                                  "each short-circuited segment carries a request and a reply: two sendmsg calls, two sk_msg runs")
EBPF_COUNTERS_ON_IPTABLES = Mistake("predict_counters", "iptables: eBPF counters above 0",
                                    "the iptables datapath loads no eBPF programs: their counters stay 0")
MISTAKES = (STACK_ONCE, MERBRIDGE_CNI_RULES, CNI_MODE_RULES, EBPF_WITHOUT_RULES, EBPF_NO_STACK, SIDECAR_OUTPUT_FORGOTTEN, PREROUTING_TWICE,
            EBPF_REDIRECT_15001, MERBRIDGE_ON_ONE_NODE, ONE_MESSAGE_PER_SEGMENT, EBPF_COUNTERS_ON_IPTABLES)


def _placement(same_node: bool) -> str:
    return "one node" if same_node else "two nodes"


# -- exercise 1: traversals per request ---------------------------------------------------------
def _traversal_hint(datapath: str, same_node: bool, kind: str, got: object) -> str:
    """The usual mistake behind a wrong count, or '' when none is recognised."""
    if kind == "stack" and datapath == "iptables" and got == 3:
        return STACK_ONCE.hint
    if kind == "iptables" and datapath == "merbridge-2022" and not same_node and got == 0:
        return MERBRIDGE_CNI_RULES.hint
    if kind == "iptables" and datapath == "merbridge-cni" and not same_node and got == 2:
        return CNI_MODE_RULES.hint
    if kind == "iptables" and datapath == "ebpf-meshlab":
        return EBPF_WITHOUT_RULES.hint
    if kind == "stack" and datapath == "ebpf-meshlab" and same_node and got == 0:
        return EBPF_NO_STACK.hint
    return ""


def check_traversals(table: Callable[[], dict]) -> None:
    """``table()[(datapath, same_node)] == {"iptables": ..., "stack": ...}`` per request, as the model counts."""
    answer = answer_of(table)
    if not isinstance(answer, dict):
        raise CheckFailed('traversals_table() must return a dict {(datapath, same_node): {"iptables": ..., "stack": ...}}')
    for datapath in DATAPATHS:
        for same_node in PLACEMENTS:
            given = answer.get((datapath, same_node))
            if not isinstance(given, dict):
                raise CheckFailed(f"no entry for ({datapath!r}, {same_node}): give one per datapath and placement")
            expected = traversals(datapath, same_node)
            for kind in ("iptables", "stack"):
                if given.get(kind) != expected[kind]:
                    hint = _traversal_hint(datapath, same_node, kind, given.get(kind))
                    raise CheckFailed(f"{datapath}, {_placement(same_node)}: {kind} traversals {given.get(kind)!r}, the model counts "
                                      f"{expected[kind]}" + (f": {hint}" if hint else ""))


# -- exercise 2: counters after n requests ------------------------------------------------------
def _rules(datapath: str) -> str:
    """A meshed pod's nat rules on this datapath, as Lab.up applies them (meshlab.lab.spec.capture_for)."""
    from meshlab.lab.spec import capture_for

    return build_rules(capture_for(datapath)).restore_text(4)


def _first_packets(datapath: str) -> dict[str, list[Connection]]:
    """The first packet of each connection of one request, by the pod whose nat table sees it."""
    app_to_sidecar = (Connection("OUTPUT", CLIENT_IP, SERVER_IP, APP_PORT, out_interface="eth0", uid=0, gids=(0,)) if datapath == "iptables"
                      else Connection("OUTPUT", "127.0.0.1", "127.128.0.1", 15001, out_interface="lo", uid=0, gids=(0,)))  # after connect4
    return {
        "client": [app_to_sidecar, Connection("OUTPUT", CLIENT_IP, SERVER_IP, APP_PORT, out_interface="eth0", uid=1337, gids=(1337,))],
        "server": [Connection("PREROUTING", CLIENT_IP, SERVER_IP, APP_PORT, in_interface="eth0"),
                   Connection("OUTPUT", "127.0.0.6", SERVER_IP, APP_PORT, out_interface="lo", uid=1337, gids=(1337,))],
    }


def _target(rule: str) -> str:
    words = rule.split()
    return words[words.index("-j") + 1] if "-j" in words else ""


def model_counters(datapath: str, same_node: bool, n: int) -> dict[str, int]:
    """The counters after ``n`` requests (each on a new connection) on the live ``datapath``."""
    rules = _rules(datapath)
    steps = {pod: [step for connection in connections for step in walk(rules, connection).steps if step.table == "nat"]
             for pod, connections in _first_packets(datapath).items()}
    counted = {name: n * sum(1 for step in steps[pod] if step.chain == chain and _target(step.rule) == target)
               for name, (pod, chain, target) in NAT_COUNTERS.items()}
    segments = request_segments(LIVE_DATAPATHS[datapath], same_node)
    ebpf = datapath == "ebpf"
    redirected = sum(segment.redirected for segment in segments)
    counted["connect_rewrites"] = n if ebpf else 0  # connect4 rewrites every app connection
    counted["redirected_messages"] = 2 * n * redirected if ebpf else 0  # a request and a reply per segment
    counted["passed_messages"] = 2 * n * (len(segments) - redirected) if ebpf else 0
    return counted


def _counter_hint(datapath: str, same_node: bool, name: str, got: object, n: int) -> str:
    ebpf = datapath == "ebpf"
    if name == "client OUTPUT" and got == n:
        return SIDECAR_OUTPUT_FORGOTTEN.hint
    if name == "server PREROUTING" and got == 2 * n:
        return PREROUTING_TWICE.hint
    if name == "client REDIRECT 15001" and ebpf and got == n:
        return EBPF_REDIRECT_15001.hint
    merbridge_guess = {"server REDIRECT 15006": 0, "redirected_messages": 6 * n, "passed_messages": 0}
    if ebpf and same_node and got == merbridge_guess.get(name):
        return MERBRIDGE_ON_ONE_NODE.hint
    if name == "redirected_messages" and ebpf and got == n * 2:
        return ONE_MESSAGE_PER_SEGMENT.hint
    if name in EBPF_COUNTERS and not ebpf and got:
        return EBPF_COUNTERS_ON_IPTABLES.hint
    return ""


def _predictions(predict: Callable[[str, bool, int], dict], datapath: str, same_node: bool, n: int) -> dict:
    answer = answer_of(predict, datapath, same_node, n)
    if not isinstance(answer, dict) or set(COUNTERS) - set(answer):
        raise CheckFailed(f"predict_counters() must return a dict with the keys {', '.join(COUNTERS)}")
    return answer


def _compare(answer: dict, counted: dict, datapath: str, same_node: bool, n: int, source: str) -> None:
    for name in COUNTERS:
        if answer[name] != counted[name]:
            hint = _counter_hint(datapath, same_node, name, answer[name], n)
            raise CheckFailed(f"{datapath}, {_placement(same_node)}, {n} requests: you predicted {name} = {answer[name]!r}, {source} "
                              f"{counted[name]}" + (f": {hint}" if hint else ""))


def check_counters(predict: Callable[[str, bool, int], dict], n: int = 10) -> None:
    """The reader's predictions against the model for both live datapaths, on one node and on two."""
    for datapath in LIVE_DATAPATHS:
        for same_node in PLACEMENTS:
            _compare(_predictions(predict, datapath, same_node, n), model_counters(datapath, same_node, n), datapath, same_node, n, "the model says")


def _packets(saved: str, chain: str, target: str) -> int:
    """The packets counted by ``chain``'s rules that jump to ``target``, from ``iptables-save -c``."""
    total = 0
    for line in saved.splitlines():
        if line.startswith("[") and f"] -A {chain} " in line and _target(line) == target:
            total += int(line[1:line.index(":")])
    return total


def kernel_counters(lab) -> dict[str, int]:
    """The kernel's counts in a running lab: each nat rule's packet counter (``iptables-save -c``,
    nat sees one packet per connection) and, with eBPF, the programs' counters map."""
    saved = {pod: lab.iptables_save(pod) for pod in ("client", "server")}
    counted = {name: _packets(saved[pod], chain, target) for name, (pod, chain, target) in NAT_COUNTERS.items()}
    stats = lab.ebpf_stats() if lab.datapath == "ebpf" else {}
    counted.update({name: stats.get(name, 0) for name in EBPF_COUNTERS})
    return counted


def check_live(predict: Callable[[str, bool, int], dict], datapaths: tuple[str, ...] = tuple(LIVE_DATAPATHS), n: int = 10) -> list[dict]:
    """Start a live lab per datapath and placement, send ``n`` requests (a new connection each) from the
    client pod to the server pod's app, and compare the reader's predictions with the kernel's counts.
    Returns one row per lab: datapath, same_node, predicted, counted."""
    require_stage("live")
    from meshlab.lab import Lab, PodSpec

    unknown = [datapath for datapath in datapaths if datapath not in LIVE_DATAPATHS]
    if unknown:
        raise ValueError(f"datapath {unknown[0]!r} is not one of the live lab's: {', '.join(LIVE_DATAPATHS)}")
    if "ebpf" in datapaths:
        require_stage("ebpf")
    check_counters(predict, n)  # a prediction the model already refutes needs no lab
    rows = []
    for datapath in datapaths:
        for same_node in PLACEMENTS:
            predicted = _predictions(predict, datapath, same_node, n)
            nodes = 1 if same_node else 2
            pods = [PodSpec("server", node=0), PodSpec("client", node=nodes - 1)]
            with Lab("ml3l").up(pods, nodes=nodes, datapath=datapath) as lab:
                lab.requests("client", lab.pod("server").ip, APP_PORT, count=n, keepalive=False)
                counted = kernel_counters(lab)
            _compare(predicted, counted, datapath, same_node, n, "the kernel counted")
            rows.append({"datapath": datapath, "same_node": same_node, "predicted": predicted, "counted": counted})
    return rows

"""How often one request crosses the TCP/IP stack and iptables: iptables vs eBPF, same node vs not.

A request from app A to app B through both sidecars is three TCP connections ("segments"):
app A -> sidecar A over loopback in pod A, sidecar A -> sidecar B from pod to pod (a bridge on one
node, the node network between nodes), and sidecar B -> app B over loopback in pod B. Each
segment's bytes cross the sender's and the receiver's stack (2 stack traversals), and the nat
table sees each connection's first packet at the sending pod's OUTPUT and, for the middle segment,
at the receiving pod's PREROUTING.

- ``iptables``: Istio's rules; 6 stack traversals and 4 iptables traversals, on one node or two.
- ``ebpf-merbridge``: Merbridge's design; connect4 replaces REDIRECT, so no iptables at all, and
  sk_msg hands data from socket to socket for every segment whose two ends are on one node: the two
  loopback segments always, the middle one too when both pods share the node.
- ``ebpf-meshlab``: this lab's eBPF datapath; connect4 and sk_msg for the loopback segments, while
  Istio's rules stay for inbound capture, so the nat table still sees every connection.

    Segment          one TCP connection of the request path
    DATAPATHS        the three datapaths
    request_segments the segments for a datapath and placement
    traversals       totals: stack, iptables, and how many of iptables' stack traversals were avoided
"""

from __future__ import annotations

from dataclasses import dataclass

DATAPATHS = ("iptables", "ebpf-meshlab", "ebpf-merbridge")


@dataclass(frozen=True)
class Segment:
    name: str
    local: bool  # both ends on one node
    redirected: bool  # sk_msg hands the bytes from socket to socket
    iptables: int  # nat-table traversals by the connection's first packet

    @property
    def stack(self) -> int:
        return 0 if self.redirected else 2


def request_segments(datapath: str, same_node: bool) -> list[Segment]:
    if datapath not in DATAPATHS:
        raise ValueError(f"unknown datapath {datapath!r}; datapaths are {', '.join(DATAPATHS)}")
    merbridge, ebpf = datapath == "ebpf-merbridge", datapath != "iptables"
    return [
        Segment("app A -> sidecar A", True, ebpf, 0 if merbridge else 1),
        Segment("sidecar A -> sidecar B", same_node, merbridge and same_node, 0 if merbridge else 2),
        Segment("sidecar B -> app B", True, ebpf, 0 if merbridge else 1),
    ]


def traversals(datapath: str, same_node: bool) -> dict[str, int]:
    segments = request_segments(datapath, same_node)
    baseline = request_segments("iptables", same_node)
    stack = sum(s.stack for s in segments)
    return {"stack": stack, "iptables": sum(s.iptables for s in segments), "stack_avoided": sum(s.stack for s in baseline) - stack}

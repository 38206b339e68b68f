"""How often one request crosses the TCP/IP stack and iptables: iptables vs eBPF, same node vs not.

A request from app A to app B through both sidecars is three TCP connections ("segments"):
app A -> sidecar A over loopback in pod A, sidecar A -> sidecar B from pod to pod (a bridge on one
node, the node network between nodes), and sidecar B -> app B over loopback in pod B. Each
segment's bytes cross the sender's and the receiver's stack (2 stack traversals), and the nat
table sees each connection's first packet at the sending pod's OUTPUT and, for the middle segment,
at the receiving pod's PREROUTING.

- ``iptables``: Istio's rules; 6 stack traversals and 4 iptables traversals, on one node or two.
- ``merbridge-2022``: Merbridge as the Istio blog of 2022-03-07 describes it, with Istio's istio-init
  rules still in the pods; connect4 sends the app to its sidecar and the sidecar straight to a peer on
  the same node, and sk_msg hands data from socket to socket for every segment whose two ends share a
  node. Across nodes the middle connection still meets the sidecar's OUTPUT rules and the receiving
  pod's PREROUTING redirect: of the four iptables traversals, the two loopback ones are avoided on
  every path (the seed's "four traversals, two avoidable"), all four only on one node.
- ``merbridge-cni``: Merbridge's later CNI mode, with no istio-init rules at all: a TC program on the
  pod's interface (bpf/mb_tc.c) sends a connection arriving from another node to 15006, so no iptables
  traversal is left; the middle segment's bytes still cross the wire between nodes.
- ``ebpf-meshlab``: this lab's eBPF datapath; connect4 and sk_msg for the loopback segments, while
  Istio's rules stay for inbound capture, so the nat table still sees every connection.

    Segment          one TCP connection of the request path
    DATAPATHS        the four datapaths
    request_segments the segments for a datapath and placement
    traversals       totals: stack, iptables, and how many of iptables' stack traversals were avoided
"""

from __future__ import annotations

from dataclasses import dataclass

DATAPATHS = ("iptables", "ebpf-meshlab", "merbridge-2022", "merbridge-cni")


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
    merbridge, ebpf = datapath.startswith("merbridge"), datapath != "iptables"
    # the middle connection: Merbridge's connect4 takes it on one node, its TC program across nodes in
    # CNI mode; otherwise the sidecar's OUTPUT and the receiving pod's PREROUTING see its first packet
    middle = 0 if merbridge and (same_node or datapath == "merbridge-cni") else 2
    return [
        Segment("app A -> sidecar A", True, ebpf, 0 if merbridge else 1),
        Segment("sidecar A -> sidecar B", same_node, merbridge and same_node, middle),
        Segment("sidecar B -> app B", True, ebpf, 0 if merbridge else 1),
    ]


def traversals(datapath: str, same_node: bool) -> dict[str, int]:
    segments = request_segments(datapath, same_node)
    baseline = request_segments("iptables", same_node)
    stack = sum(s.stack for s in segments)
    return {"stack": stack, "iptables": sum(s.iptables for s in segments), "stack_avoided": sum(s.stack for s in baseline) - stack}

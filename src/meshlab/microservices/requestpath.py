"""The hops of one call from pod A to service B, with and without sidecars.

Without a mesh, kube-proxy (iptables mode) rewrites the Service's ClusterIP to
one pod IP with a DNAT rule on the first packet, and the kernel does the rest:
one TCP connection, no process in the path. A packet from a pod leaves the pod's
network namespace through its veth and enters the node's stack, so it meets
KUBE-SERVICES in the node's nat PREROUTING chain; kube-proxy jumps to
KUBE-SERVICES from nat OUTPUT too, which is where a host-network process's
packets meet it (kubernetes/kubernetes, pkg/proxy/iptables/proxier.go,
``iptablesJumpChains``). With Istio sidecars, the caller's
outbound connection is redirected to its sidecar (port 15001), which picks the
endpoint itself from EDS (so kube-proxy's DNAT never matches), opens its own
connection to the callee's pod, where the inbound rules redirect it to the
callee's sidecar (port 15006), which finally connects to the app from 127.0.0.6.

    Hop             one place a request passes, and what happens there
    RequestPath     the ordered hops plus counts derived from them
    kube_proxy_path the path through a Kubernetes Service (kube-proxy, iptables mode)
    sidecar_path    the path through two Istio sidecars
"""

from __future__ import annotations

from dataclasses import dataclass

#: Hop kinds, in the book's colour legend (meshlab.viz.style.ROLE_COLOURS).
HOP_KINDS = ("app", "netfilter", "proxy", "wire")


@dataclass(frozen=True)
class Hop:
    """One place a request passes: who (``name``), what sort (``kind``), where, and what it does."""

    name: str
    kind: str
    where: str
    action: str

    def __post_init__(self) -> None:
        if self.kind not in HOP_KINDS:
            raise ValueError(f"hop kind {self.kind!r} is not one of {', '.join(HOP_KINDS)}")


@dataclass(frozen=True)
class RequestPath:
    """The hops of one request and what they add up to."""

    mode: str
    hops: tuple[Hop, ...]

    @property
    def user_space_proxies(self) -> int:
        return sum(hop.kind == "proxy" for hop in self.hops)

    @property
    def netfilter_decisions(self) -> int:
        return sum(hop.kind == "netfilter" for hop in self.hops)

    @property
    def tcp_connections(self) -> int:
        """Every proxy terminates the connection it receives and opens a new one."""
        return 1 + self.user_space_proxies


def kube_proxy_path() -> RequestPath:
    """Pod A calls ``reviews:9080`` through a ClusterIP Service."""
    return RequestPath(
        "kube-proxy",
        (
            Hop("app A", "app", "pod A", "connect(10.96.0.20:9080), the Service's ClusterIP"),
            Hop("KUBE-SERVICES", "netfilter", "node A, nat PREROUTING", "DNAT 10.96.0.20:9080 -> 10.244.2.7:9080, one endpoint picked at random"),
            Hop("pod network", "wire", "node A -> node B", "routed to the pod CIDR of node B"),
            Hop("app B", "app", "pod B", "accept(): peer is pod A's IP"),
        ),
    )


def sidecar_path() -> RequestPath:
    """The same call with Istio sidecars in both pods (REDIRECT mode)."""
    return RequestPath(
        "sidecar",
        (
            Hop("app A", "app", "pod A", "connect(10.96.0.20:9080), the Service's ClusterIP"),
            Hop("ISTIO_OUTPUT", "netfilter", "pod A, nat OUTPUT", "not uid 1337 -> ISTIO_REDIRECT: REDIRECT to 127.0.0.1:15001"),
            Hop("sidecar A", "proxy", "pod A, port 15001", "SO_ORIGINAL_DST, route by Host, pick 10.244.2.7 from EDS, mTLS"),
            Hop("ISTIO_OUTPUT", "netfilter", "pod A, nat OUTPUT", "uid 1337 -> RETURN (the proxy's own traffic)"),
            Hop("pod network", "wire", "node A -> node B", "KUBE-SERVICES has no rule for a pod IP; routed to node B"),
            Hop("ISTIO_INBOUND", "netfilter", "pod B, nat PREROUTING", "-> ISTIO_IN_REDIRECT: REDIRECT to 15006"),
            Hop("sidecar B", "proxy", "pod B, port 15006", "terminate mTLS, authorise, record telemetry"),
            Hop("ISTIO_OUTPUT", "netfilter", "pod B, nat OUTPUT", "-o lo -s 127.0.0.6 -> RETURN"),
            Hop("app B", "app", "pod B", "accept(): peer is 127.0.0.6"),
        ),
    )

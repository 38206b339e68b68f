"""The lab's network: nodes with a bridge, pods wired to them, nodes joined by a fabric.

Pods get /32 addresses and a default route via their node's bridge address, so even same-node
traffic is routed by the node (as with Calico or Cilium); that is what lets a per-node proxy
capture it. Several nodes are joined by a bridge in a fabric namespace, each routing to the
others' pod CIDRs. Several *clusters* (``meshlab.lab.clusters``) each get nodes and pods of their own
under a longer prefix (``<prefix>-cluster1``), and meet only on an edge network outside them all.
Only namespaces named with the lab's prefix are created.

    POD_NETWORK, FABRIC_NETWORK, EDGE_NETWORK  the address plan (node N's pods: 10.244.N.0/24)
    node_name         the namespace name of node N
    create_node       a node namespace with its bridge and forwarding
    create_fabric     the fabric joining the nodes, and their routes
    wire_pod          a pod namespace with a veth to its node's bridge, address and routes
    capture_at_node   the per-node proxy's nat rules in a node namespace
    create_edge       the edge network's namespace and bridge, outside every cluster
    wire_to_edge      a veth from the edge bridge into a namespace (new or existing), with an edge address
"""

from __future__ import annotations

from meshlab.lab.netns import Host, NetNS

POD_NETWORK = "10.244"  # node N's pod CIDR is 10.244.N.0/24, as kind numbers its nodes
FABRIC_NETWORK = "10.245.0"  # the nodes' addresses on the fabric that joins them (more than one node)
EDGE_NETWORK = "10.250.0"  # the edge network (a /24) where clusters' gateways meet the tier-1 gateway and clients


def node_name(prefix: str, node: int) -> str:
    return f"{prefix}-node{node}"


def gateway(node: int) -> str:
    return f"{POD_NETWORK}.{node}.1"


def create_node(host: Host, prefix: str, node: int) -> NetNS:
    """A namespace with a bridge whose address is the pods' gateway, forwarding between its pods."""
    namespace = host.create(node_name(prefix, node))
    host.ip_batch(namespace.name, ["link add br0 type bridge", f"addr add {gateway(node)}/24 dev br0", "link set br0 up"])
    # Pods on one bridge still talk through the gateway (their addresses are /32): no ICMP redirects.
    namespace.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.br0.send_redirects=0"])
    return namespace


def create_fabric(host: Host, prefix: str, nodes: int) -> NetNS:
    """Join the nodes through a bridge in a fabric namespace; each node routes to the others' pod CIDRs."""
    fabric = host.create(f"{prefix}-fabric")
    host.ip_batch(fabric.name, ["link add fab0 type bridge", "link set fab0 up"])
    for node in range(nodes):
        name = node_name(prefix, node)
        host.ip_batch(fabric.name, [f"link add n{node} type veth peer name fab netns {name}", f"link set n{node} master fab0 up"])
        routes = [f"route add {POD_NETWORK}.{other}.0/24 via {FABRIC_NETWORK}.{other + 1}" for other in range(nodes) if other != node]
        host.ip_batch(name, [f"addr add {FABRIC_NETWORK}.{node + 1}/24 dev fab", "link set fab up", *routes])
    return fabric


def wire_pod(host: Host, prefix: str, pod: str, node: int, ip: str, index: int) -> NetNS:
    """A pod namespace: ``lo`` up, a veth to the node's bridge, a /32 address, routes via the node."""
    namespace = host.create(f"{prefix}-{pod}")
    host_end = f"veth{index}"
    host.ip_batch(node_name(prefix, node), [f"link add {host_end} type veth peer name eth0 netns {namespace.name}", f"link set {host_end} master br0 up"])
    host.ip_batch(namespace.name, [f"addr add {ip}/32 dev eth0", "link set eth0 up", f"route add {gateway(node)} dev eth0 scope link", f"route add default via {gateway(node)}"])
    return namespace


def capture_at_node(host: Host, prefix: str, node: int) -> None:
    """Per-node proxy: TCP from the node's pods goes to its outbound listener, TCP from other nodes
    to its pods to its inbound listener; the proxy's own connections start in the node (OUTPUT)
    and are not captured. The counterpart of the pod rules, one level up."""
    rules = [
        "*nat",
        ":MESHLAB_NODE_PROXY - [0:0]",
        "-A PREROUTING -p tcp -j MESHLAB_NODE_PROXY",
        "-A MESHLAB_NODE_PROXY -i br0 -p tcp -j REDIRECT --to-ports 15001",
        f"-A MESHLAB_NODE_PROXY -i fab -d {POD_NETWORK}.{node}.0/24 -p tcp -j REDIRECT --to-ports 15006",
        "COMMIT",
    ]
    NetNS(node_name(prefix, node), host).run(["iptables-restore", "--noflush"], stdin="\n".join(rules) + "\n")


def create_edge(host: Host, prefix: str) -> NetNS:
    """The edge network: a bridge in its own namespace, with no address (the edge routes nothing)."""
    edge = host.create(f"{prefix}-edge")
    host.ip_batch(edge.name, ["link add br0 type bridge", "link set br0 up"])
    return edge


def wire_to_edge(host: Host, prefix: str, namespace: str, ip: str, index: int, interface: str = "eth0") -> NetNS:
    """A veth from the edge bridge to ``namespace`` (created unless it exists), named ``interface``
    there, with ``ip`` in the edge's /24: a namespace on the edge reaches every other one on it, and
    nothing behind them."""
    target = NetNS(namespace, host) if namespace in host.with_prefix(prefix) else host.create(namespace)
    edge_end = f"veth{index}"
    host.ip_batch(f"{prefix}-edge", [f"link add {edge_end} type veth peer name {interface} netns {namespace}", f"link set {edge_end} master br0 up"])
    host.ip_batch(namespace, [f"addr add {ip}/24 dev {interface}", f"link set {interface} up"])
    return target

"""What a proxy is sent for a service whose pods live in several clusters and networks: split-horizon EDS.

Pods on two networks cannot reach each other's addresses (the networks may even number their pods
alike). So istiod sends each proxy, per locality, the endpoints it can reach as they are and replaces
the others by their network's **east-west gateway**, weighted by the endpoints it stands for
(pilot/pkg/xds/endpoints/ep_filters.go, EndpointsByNetworkFilter, Istio master of 2026-08-26; the book
pins 1.30.3). For a sidecar:

- with no gateway anywhere, multi-network is off: every endpoint is sent as it is;
- an endpoint is sent as it is when it is on the proxy's network (or either network is unset:
  Proxy.InNetwork), or when its network has no gateway ("directly reachable": istiod sends it and it
  works only if the networks are in fact routed); one without an address is then left out;
- a proxy without a network is sent the gateway for every endpoint on a network that has one;
- otherwise its network's gateways stand for it: those of its own cluster if that network has some,
  else all of the network's (selectNetworkGateways); its weight is split evenly over them
  (splitWeightAmongGateways). Every weight is first multiplied by the least common multiple of the
  gateway counts per network and per network+cluster (GetLBWeightScaleFactor), so the split is whole;
- an endpoint that would cross a gateway without Istio's mutual TLS is dropped ("Cross-network traffic
  relies on mTLS for SNI routing in sidecar mode"): a pod without a sidecar (tlsMode ``disabled``), or
  any pod when the client is told not to send mutual TLS to the service (a DestinationRule ``tls.mode:
  DISABLE`` or PeerAuthentication ``DISABLE``: ``mtls=False``, then every tlsMode sent is ``disabled``);
- a gateway endpoint is the gateway's address and port (15443) with tlsMode ``istio`` and its network
  and cluster as labels; gateways are sorted by address then port, after the direct endpoints;
- localities come sorted by name; their locality (and later priority) is kept for the gateways in them.

Left out: gateways given by hostname (istiod resolves or drops them), IP-family filtering, ambient.

The gateway routes by the SNI a sidecar sets, the cluster's name in DNS SRV form
(pilot/pkg/model/service.go BuildDNSSrvSubsetKey: ``direction_.port_.subset_.hostname``, so an empty
subset gives ``outbound_.9080_._.reviews.default.svc.cluster.local``), to a cluster of that name holding
its own network's endpoints: its ``AUTO_PASSTHROUGH`` server on port 15443 (samples/multicluster/
expose-services.yaml) gets a filter chain per service port and per DestinationRule subset
(pilot/pkg/networking/core/gateway.go builtAutoPassthroughFilterChains).

    sni_name, parse_sni   Istio's SNI / sni-dnat cluster name, and back
    Endpoint              one pod (or VM) port: address, cluster, network, locality, tlsMode, labels
    EastWestGateway       a network's gateway: network, address, port, cluster
    LbEndpoint            an endpoint as EDS carries it to one proxy (a pod, or a gateway standing for several)
    split_horizon         the endpoints a proxy on a given network is sent
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from meshlab.multicluster.locality import Locality

#: The east-west gateway's AUTO_PASSTHROUGH port (Istio samples/multicluster/expose-services.yaml).
AUTO_PASSTHROUGH_PORT = 15443
#: security.istio.io/tlsMode values (pilot/pkg/model/service.go IstioMutualTLSModeLabel, DisabledTLSModeLabel).
ISTIO_MUTUAL, TLS_DISABLED = "istio", "disabled"
#: The topology labels istiod adds to an endpoint's (pilot/pkg/serviceregistry/util/label/label.go AugmentLabels).
NETWORK_LABEL, CLUSTER_LABEL = "topology.istio.io/network", "topology.istio.io/cluster"
REGION_LABEL, ZONE_LABEL, SUBZONE_LABEL = "topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_DNS_LABEL}(\.{_DNS_LABEL})*$")
_SUBSET = re.compile(rf"^{_DNS_LABEL}$")
_SNI_FORM = "outbound_.<port>_.<subset>_.<hostname>, e.g. outbound_.9080_._.reviews.default.svc.cluster.local"


def _check_port(port: object, what: str) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"{what} port {port!r} is not a number 1-65535")


def _check_address(address: object, what: str, empty_ok: bool) -> None:
    if empty_ok and address == "":
        return
    try:
        if not isinstance(address, str):
            raise ValueError
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"{what} address {address!r} is not an IP address" + (" (or '' for none)" if empty_ok else "")) from None


def _check_sni_parts(port: object, hostname: object, subset: object) -> None:
    _check_port(port, "service")
    if not isinstance(hostname, str) or not _HOSTNAME.match(hostname):
        raise ValueError(f"hostname {hostname!r} is not a DNS name (lowercase labels of letters, digits and '-', dot-separated)")
    if subset != "" and (not isinstance(subset, str) or not _SUBSET.match(subset)):
        raise ValueError(f"subset {subset!r} is not a DNS-1123 label, nor '' for the whole service (Istio's validateSubsetName)")


def sni_name(port: int, hostname: str, subset: str = "") -> str:
    """``outbound_.<port>_.<subset>_.<hostname>``: the SNI a sidecar sends and the gateway's cluster name."""
    _check_sni_parts(port, hostname, subset)
    return f"outbound_.{port}_.{subset}_.{hostname}"


def parse_sni(name: str) -> tuple[int, str, str]:
    """(port, subset, hostname) of an outbound SNI: model.ParseSubsetKey cuts at the first three ``_.``
    and refuses a hostname holding another."""
    parts = name.split("_.") if isinstance(name, str) else []
    if len(parts) != 4 or parts[0] != "outbound" or not parts[1].isdigit():
        raise ValueError(f"{name!r} is not Istio's outbound SNI; expected {_SNI_FORM}")
    port, subset, hostname = int(parts[1]), parts[2], parts[3]
    try:
        _check_sni_parts(port, hostname, subset)
    except ValueError as error:
        raise ValueError(f"{name!r} is not Istio's outbound SNI: {error}; expected {_SNI_FORM}") from None
    return port, subset, hostname


@dataclass(frozen=True)
class Endpoint:
    """One pod's (or VM's) port as istiod's registry holds it. ``locality`` is "region/zone/subzone"
    (or ""); ``tls_mode`` the pod's security.istio.io/tlsMode: ``istio`` with a sidecar, else
    ``disabled``; ``address`` may be "" for an endpoint known only through its network's gateway."""

    address: str
    port: int
    cluster: str
    network: str
    locality: str = ""
    tls_mode: str = ISTIO_MUTUAL
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _check_address(self.address, "endpoint", empty_ok=True)
        _check_port(self.port, "endpoint")
        if not isinstance(self.cluster, str) or not isinstance(self.network, str):
            raise ValueError(f"endpoint cluster {self.cluster!r} and network {self.network!r} must be names ('' for unset)")
        Locality.parse(self.locality)
        if self.tls_mode not in (ISTIO_MUTUAL, TLS_DISABLED):
            raise ValueError(f"endpoint tls_mode {self.tls_mode!r} is not {ISTIO_MUTUAL!r} (a sidecar) or {TLS_DISABLED!r}")
        if not isinstance(self.labels, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in self.labels.items()):
            raise ValueError(f"endpoint labels {self.labels!r} are not a mapping of strings to strings")

    @property
    def istio_labels(self) -> dict[str, str]:
        """Its labels as istiod holds them: the pod's plus its region, zone, subzone, cluster and, unless the
        pod sets one, network (AugmentLabels), which failoverPriority can name."""
        locality = Locality.parse(self.locality)
        topology = {REGION_LABEL: locality.region, ZONE_LABEL: locality.zone, SUBZONE_LABEL: locality.subzone, CLUSTER_LABEL: self.cluster}
        out = {**self.labels, **{key: value for key, value in topology.items() if value}}
        if self.network and not out.get(NETWORK_LABEL):
            out[NETWORK_LABEL] = self.network
        return out


@dataclass(frozen=True)
class EastWestGateway:
    """A network's gateway as meshNetworks or its Service (labelled topology.istio.io/network) names it;
    ``cluster`` is where it runs ("" when meshNetworks names it: Istio leaves it unset)."""

    network: str
    address: str
    port: int = AUTO_PASSTHROUGH_PORT
    cluster: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.network, str) or not self.network:
            raise ValueError(f"gateway network {self.network!r} must be the name of the network it serves")
        _check_address(self.address, "gateway", empty_ok=False)
        _check_port(self.port, "gateway")
        if not isinstance(self.cluster, str):
            raise ValueError(f"gateway cluster {self.cluster!r} must be a name ('' for unset)")


@dataclass(frozen=True)
class LbEndpoint:
    """An endpoint as one proxy is sent it; ``gateway`` is set when it stands for another network's pods.
    ``labels`` are those istiod matches failoverPriority against: the pod's (Endpoint.istio_labels),
    or for a gateway only its cluster and network."""

    address: str
    port: int
    weight: int
    locality: str
    network: str
    tls_mode: str
    gateway: EastWestGateway | None = None
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)


def _in_network(proxy_network: str, network: str) -> bool:
    """Proxy.InNetwork: the same network, or either one unset."""
    return not proxy_network or not network or proxy_network == network


def _by_locality(endpoints: Sequence[Endpoint]) -> list[tuple[str, list[Endpoint]]]:
    """istiod's LocalityLbEndpoints: one per locality name, sorted (EndpointBuilder.generate)."""
    groups: dict[str, list[Endpoint]] = {}
    for endpoint in endpoints:
        groups.setdefault(endpoint.locality, []).append(endpoint)
    return sorted(groups.items())


def _as_sent(endpoint: Endpoint, weight: int, mtls: bool) -> LbEndpoint:
    tls_mode = endpoint.tls_mode if mtls else TLS_DISABLED
    return LbEndpoint(endpoint.address, endpoint.port, weight, endpoint.locality, endpoint.network, tls_mode, None, endpoint.istio_labels)


def split_horizon(endpoints: Sequence[Endpoint], proxy_network: str, gateways: Sequence[EastWestGateway],
                  mtls: bool = True) -> list[LbEndpoint]:
    """The endpoints a sidecar on ``proxy_network`` ("" if unset) is sent, locality by locality;
    ``mtls`` whether it would send Istio's mutual TLS to this service (auto mTLS, unless a
    DestinationRule or PeerAuthentication disables it)."""
    if not isinstance(proxy_network, str) or not isinstance(mtls, bool):
        raise ValueError(f"proxy_network {proxy_network!r} must be a name ('' for unset) and mtls {mtls!r} true or false")
    if not all(isinstance(e, Endpoint) for e in endpoints) or not all(isinstance(g, EastWestGateway) for g in gateways):
        raise ValueError("split_horizon takes a sequence of Endpoint and a sequence of EastWestGateway")
    unique = list(dict.fromkeys(gateways))  # istiod keeps a set
    if not unique:
        return [_as_sent(e, 1, mtls) for _, members in _by_locality(endpoints) for e in members if e.address]
    by_network: dict[str, list[EastWestGateway]] = {}
    by_network_cluster: dict[tuple[str, str], list[EastWestGateway]] = {}
    for gateway in unique:
        by_network.setdefault(gateway.network, []).append(gateway)
        by_network_cluster.setdefault((gateway.network, gateway.cluster), []).append(gateway)
    scale = math.lcm(*map(len, [*by_network.values(), *by_network_cluster.values()]))
    sent: list[LbEndpoint] = []
    for locality, members in _by_locality(endpoints):
        weights: dict[EastWestGateway, int] = {}
        for endpoint in members:
            standing_in = by_network_cluster.get((endpoint.network, endpoint.cluster)) or by_network.get(endpoint.network, [])
            force_gateway = not proxy_network and bool(endpoint.network) and bool(standing_in)
            if not force_gateway and (_in_network(proxy_network, endpoint.network) or not standing_in):
                if endpoint.address:
                    sent.append(_as_sent(endpoint, scale, mtls))
            elif mtls and endpoint.tls_mode == ISTIO_MUTUAL:
                for gateway in standing_in:
                    weights[gateway] = weights.get(gateway, 0) + scale // len(standing_in)
        for gateway in sorted(weights, key=lambda g: (g.address, g.port)):  # model.SortGateways
            labels = {CLUSTER_LABEL: gateway.cluster, NETWORK_LABEL: gateway.network} if gateway.cluster else {NETWORK_LABEL: gateway.network}
            sent.append(LbEndpoint(gateway.address, gateway.port, weights[gateway], locality, gateway.network, ISTIO_MUTUAL, gateway, labels))
    return sent

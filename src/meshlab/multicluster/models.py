"""Istio's multi-cluster deployment models, and choosing one for stated constraints.

istio.io documents one mesh over several clusters along two axes (docs/ops/deployment/deployment-models,
"Control plane models" and "Network models"; docs/setup/install/multicluster and its before-you-begin;
docs/setup/install/external-controlplane; read in istio/istio.io's repository):

- **control plane.** *Multi-primary*: an istiod in every (primary) cluster; each reads every cluster's
  API server through a **remote secret** (a kubeconfig for the other cluster, a Secret labelled
  ``istio/multiCluster``: pkg/kube/multicluster/secretcontroller.go) to discover its services and
  endpoints, but takes Istio configuration only from its own cluster, so configuration is applied to
  every primary. Proxies get xDS from their own cluster's istiod; an istiod outage stays in its cluster
  ("the scope of the outage is limited to only workloads in clusters managed by that control plane").
  *Primary-remote*: istiod only in the primary, which reads the remote's API server too (without it, it
  also rejects the remote's workloads: it authenticates them there); the remote's proxies, its sidecar
  injection and its certificates come from the primary's istiod, which the install guides expose through
  the primary's east-west gateway on either network model (samples/multicluster/expose-istiod.yaml:
  15012 xDS and CA, 15017 webhook). While it is down they keep their last configuration, no pod can be created in an injected
  namespace (the injection webhook's ``failurePolicy: Fail``, manifests/charts/istio-control/
  istio-discovery/templates/mutatingwebhook.yaml) and certificates (24 h, security/pkg/cmd/constants.go)
  are not renewed. *External control plane*: the mesh is remote clusters only; istiod runs in a cluster of
  its own, run by the mesh operator, reads the first remote (the config cluster) for configuration and
  is exposed to the remotes by an ingress gateway (with its own istiod to configure that gateway).
- **network.** On a *single network* every pod reaches every other pod's address (no overlapping pod or
  service ranges); on *multiple networks* (``topology.istio.io/network``) pods reach other networks only
  through their east-west gateways: mutual TLS passed through by SNI (``meshlab.multicluster.endpoints``),
  so only pods with sidecars are reachable across networks.

Every model of one mesh needs a common root of trust (each istiod an intermediate CA of one root) and
the API servers reachable by the istiods that read them ("The API Server in each cluster must be
accessible to the other clusters in the mesh"; the east-west gateway can carry it). One mesh also
means namespace sameness: a namespace name is the same namespace in every cluster, and same-named
services merge. Where that cannot hold, istio.io's answer is separate meshes, federated (multi-mesh).

    CONTROL_PLANES, NETWORKS   the two axes' values ("separate meshes" for federation)
    Constraints                what the reader's clusters and organisation are like
    Choice                     a control-plane model and a network model
    recommend                  the choice the constraints call for
    explain                    why a choice does not fit the constraints, one sentence per reason ([] if it fits)
    properties                 the models side by side, as text for the chapter
"""

from __future__ import annotations

from dataclasses import dataclass, fields

CONTROL_PLANES = ("multi-primary", "primary-remote", "external control plane", "separate meshes")
NETWORKS = ("single", "multi")
_ONE_MESH = CONTROL_PLANES[:3]


@dataclass(frozen=True)
class Constraints:
    """What decides the model.

    ``flat_network``: pods of every cluster reach each other's addresses directly, with no overlapping pod
    or service ranges; ``clusters``: how many clusters (at least 2); ``control_plane_per_cluster_failure_domain``:
    a control-plane outage must not stop any other cluster from getting configuration, injection or
    certificates; ``teams_own_clusters``: each cluster's team configures and upgrades its own Istio;
    ``api_servers_reachable``: each control plane can reach every cluster's API server;
    ``fewest_control_planes``: run as few istiods as possible; ``control_plane_outside_clusters``: istiod
    must run apart from the clusters that run workloads (a mesh operator's own cluster, or a vendor's
    managed control plane); ``namespace_sameness``: a namespace name means the same thing in every cluster."""

    flat_network: bool
    clusters: int = 2
    control_plane_per_cluster_failure_domain: bool = False
    teams_own_clusters: bool = False
    api_servers_reachable: bool = True
    fewest_control_planes: bool = False
    control_plane_outside_clusters: bool = False
    namespace_sameness: bool = True

    def __post_init__(self) -> None:
        for name in (f.name for f in fields(self) if f.name != "clusters"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"constraint {name} is true or false, got {getattr(self, name)!r}")
        if isinstance(self.clusters, bool) or not isinstance(self.clusters, int) or self.clusters < 2:
            raise ValueError(f"constraint clusters is a whole number of at least 2 (a multi-cluster mesh), got {self.clusters!r}")
        per_cluster = [name for name in ("control_plane_per_cluster_failure_domain", "teams_own_clusters") if getattr(self, name)]
        for shared in ("fewest_control_planes", "control_plane_outside_clusters"):
            if getattr(self, shared) and per_cluster:
                raise ValueError(f"{shared} contradicts {' and '.join(per_cluster)}: one istiod serving several clusters "
                                 "cannot also be each cluster's own")


@dataclass(frozen=True)
class Choice:
    """One answer: a control-plane model (CONTROL_PLANES) and a network model (NETWORKS)."""

    control_plane: str
    network: str

    def __post_init__(self) -> None:
        if self.control_plane not in CONTROL_PLANES:
            raise ValueError(f"control plane {self.control_plane!r} is not one of {', '.join(CONTROL_PLANES)}")
        if self.network not in NETWORKS:
            raise ValueError(f"network {self.network!r} is not one of {', '.join(NETWORKS)}")

    def __str__(self) -> str:
        return f"{self.control_plane}, {'single network' if self.network == 'single' else 'multi-network'}"


def recommend(constraints: Constraints) -> Choice:
    """The fitting choice; with nothing against it, multi-primary ("having more than one control plane is
    recommended for HA", istio.io's deployment models)."""
    network = "single" if constraints.flat_network else "multi"
    if not constraints.api_servers_reachable or not constraints.namespace_sameness:
        return Choice("separate meshes", network)
    if constraints.control_plane_per_cluster_failure_domain or constraints.teams_own_clusters:
        return Choice("multi-primary", network)
    if constraints.control_plane_outside_clusters:
        return Choice("external control plane", network)
    return Choice("primary-remote" if constraints.fewest_control_planes else "multi-primary", network)


def _network_reasons(choice: Choice, constraints: Constraints) -> list[str]:
    if choice.network == "single" and not constraints.flat_network:
        return ["single network: istiod would send each proxy the other clusters' pod addresses as they are, which it "
                "cannot reach; without a flat network (one with no overlapping pod ranges), calls between clusters must go "
                "through east-west gateways: a multi-network mesh, each cluster labelled topology.istio.io/network"]
    if choice.network == "multi" and constraints.flat_network:
        return ["multi-network on a flat network: every call between clusters would take a detour through an east-west "
                "gateway, and only pods with sidecars could be called across clusters (istiod drops other networks' "
                "endpoints without mutual TLS), where pods could reach each other directly"]
    return []


def _mesh_reasons(choice: Choice, constraints: Constraints) -> list[str]:
    one_mesh = choice.control_plane in _ONE_MESH
    reasons = []
    if one_mesh and not constraints.api_servers_reachable:
        reasons.append(f"{choice.control_plane}: an istiod discovers another cluster's services and endpoints, and "
                       "authenticates its workloads, by reading its API server through a remote secret; without that "
                       "access there is no one mesh: make the API servers reachable (istio.io suggests through the "
                       "east-west gateway) or run separate meshes")
    if one_mesh and not constraints.namespace_sameness:
        reasons.append(f"{choice.control_plane}: one mesh treats a namespace name as one namespace in every cluster "
                       "(namespace sameness) and merges the endpoints of services of the same name; clusters that reuse "
                       "names for different things need separate meshes")
    if not one_mesh and constraints.api_servers_reachable and constraints.namespace_sameness:
        reasons.append("separate meshes: with the API servers reachable one mesh is possible, with one service registry, "
                       "identities and policies across the clusters; separate meshes must export each service and "
                       "exchange trust bundles by hand (mesh federation)")
    return reasons


def _control_plane_reasons(choice: Choice, constraints: Constraints) -> list[str]:
    n, reasons = constraints.clusters, []
    remotes = "the remote cluster's" if n == 2 else f"the {n - 1} remote clusters'"
    if constraints.control_plane_per_cluster_failure_domain:
        if choice.control_plane == "primary-remote":
            reasons.append(f"primary-remote: {remotes} proxies get their configuration from the primary's istiod; while it "
                           "is down they keep their last configuration, no pod can be created in an injected namespace "
                           "(the injection webhook's failurePolicy is Fail) and no certificate (24 h) is renewed, so its "
                           "outage is theirs too")
        if choice.control_plane == "external control plane":
            reasons.append(f"external control plane: {'both' if n == 2 else f'all {n}'} clusters get configuration, sidecar "
                           "injection and certificates from the one external istiod; its outage reaches every one of them")
    if constraints.teams_own_clusters:
        if choice.control_plane == "primary-remote":
            reasons.append("primary-remote: istiod reads Istio configuration from the primary's API server only, so a "
                           "remote cluster's team could not configure its own traffic and would run on the primary team's "
                           "istiod, its version and its upgrades; multi-primary gives each cluster its own")
        if choice.control_plane == "external control plane":
            reasons.append("external control plane: the mesh is configured in one config cluster and its istiod run by "
                           "the mesh operator, so the teams could not configure their own clusters; multi-primary gives "
                           "each cluster its own")
    if constraints.fewest_control_planes:
        if choice.control_plane == "multi-primary":
            reasons.append(f"multi-primary runs an istiod in every cluster: {n} istiods for {n} clusters, reading each "
                           f"other's API servers through {n * (n - 1)} remote secrets; primary-remote runs one, with {n - 1}")
        if choice.control_plane == "external control plane" and not constraints.control_plane_outside_clusters:
            reasons.append("external control plane runs two istiods: the mesh's in a cluster of its own, and one there "
                           "for the ingress gateway that exposes it to the remotes; primary-remote runs one")
    if constraints.control_plane_outside_clusters and choice.control_plane in ("multi-primary", "primary-remote"):
        reasons.append(f"{choice.control_plane} runs istiod in the mesh's own clusters, beside the workloads; an external "
                       "control plane runs it in a cluster of its own, managed apart from the data plane")
    return reasons


def explain(choice: Choice, constraints: Constraints) -> list[str]:
    """Why ``choice`` does not fit ``constraints``, one sentence per reason, with the fact behind it."""
    return _network_reasons(choice, constraints) + _mesh_reasons(choice, constraints) + _control_plane_reasons(choice, constraints)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def properties(clusters: int = 2) -> str:
    """The models side by side for ``clusters`` clusters (istio.io's deployment models and install
    guides), at most 100 columns."""
    if isinstance(clusters, bool) or not isinstance(clusters, int) or clusters < 2:
        raise ValueError(f"clusters is a whole number of at least 2, got {clusters!r}")
    n, every = clusters, "both clusters" if clusters == 2 else f"all {clusters} clusters"
    control_planes = [
        ("", "multi-primary", "primary-remote", "external control plane"),
        ("istiod runs in", "every cluster", "the primary", "a cluster of its own"),
        ("istiods", str(n), "1", "2 (1 for its gateway)"),
        ("remote secrets", str(n * (n - 1)), str(n - 1), str(n)),
        ("Istio config from", "each primary", "the primary", "one remote (config)"),
        ("proxies' xDS from", "own cluster's istiod", "primary's istiod", "external istiod"),
        ("istiod exposed by", "-", "east-west gateway", "ingress gateway"),
        ("istiod outage hits", "its own cluster", every, every),
    ]
    networks = [
        ("", "single network", "multi-network"),
        ("pods reach", "each other directly", "other networks via gateways"),
        ("a proxy is sent", "all pods' addresses", "own network's pods + gateways"),
        ("across networks", "-", "mutual TLS by SNI, port 15443"),
        ("needs", "no overlapping pod ranges", "topology.istio.io/network"),
    ]
    needs = "every model of one mesh: one root of trust; each istiod reaches the API servers it reads"
    return "\n".join(_table(control_planes) + [""] + _table(networks) + ["", needs])

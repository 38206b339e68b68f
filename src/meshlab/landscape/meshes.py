"""Seven service meshes compared as data, each claim with its source and date.

Status lines are as checked in 2026 (meshlab's reference notes, shared/reference/anchors.md,
which name the projects' own announcements); milestones carry the announcement they come from.

    Milestone       a dated event with its source
    Mesh            one mesh: proxy, ingress, governance, licence, milestones, status in 2026
    RelatedProject  SMI, Service Mesh Performance, Network Service Mesh: what they are and are not
    MESHES          the seven meshes, in the book's order
    mesh_table      rows for a comparison table
"""

from __future__ import annotations

from dataclasses import dataclass

STATUS_CHECKED = "2026"
STATUS_SOURCE = "meshlab reference notes, anchors.md (checked 2026)"


@dataclass(frozen=True)
class Milestone:
    """A dated event (``when`` is YYYY-MM) and where it is stated."""

    when: str
    what: str
    source: str
    label: str = ""

    @property
    def short(self) -> str:
        """A few words for a timeline figure."""
        return self.label or self.what


@dataclass(frozen=True)
class Mesh:
    name: str
    data_plane: str
    ingress: str
    governance: str
    licence: str
    milestones: tuple[Milestone, ...]
    status_2026: str
    status_source: str = STATUS_SOURCE


MESHES: tuple[Mesh, ...] = (
    Mesh(
        "Istio (sidecar)",
        "Envoy sidecar per pod",
        "Istio ingress gateway (Envoy); Gateway API",
        "CNCF graduated (July 2023)",
        "Apache-2.0",
        (
            Milestone("2017-05", "Istio 0.1 announced by Google, IBM and Lyft", "istio.io blog, 'Introducing Istio', 24 May 2017", "0.1"),
            Milestone("2018-07", "Istio 1.0", "istio.io release announcement, 31 July 2018", "1.0"),
            Milestone("2020-03", "Istio 1.5: the control plane becomes one binary, istiod; quarterly releases (decided a year before)",
                      "istio.io, Istio 1.5 release announcement, 5 March 2020 ('consolidating our control plane into a single new binary - Istiod'; "
                      "'A year ago we decided to move to quarterly releases')", "1.5 (istiod)"),
            Milestone("2023-07", "graduates in the CNCF", "CNCF announcement, 12 July 2023", "CNCF graduated"),
        ),
        "active; sidecars still supported next to ambient mode",
    ),
    Mesh(
        "Istio (ambient)",
        "ztunnel per node (Rust, L4) + optional Envoy waypoints (L7)",
        "Istio ingress gateway (Envoy); Gateway API",
        "CNCF graduated (July 2023)",
        "Apache-2.0",
        (
            Milestone("2022-09", "ambient mode announced", "istio.io blog, 'Introducing Ambient Mesh', 7 Sep 2022", "announced"),
            Milestone("2024-11", "ambient mode GA in Istio 1.24", "istio.io, Istio 1.24 release announcement, Nov 2024", "GA (1.24)"),
        ),
        "active; ambient mode GA since 1.24 (Nov 2024)",
    ),
    Mesh(
        "Linkerd",
        "linkerd2-proxy sidecar (Rust)",
        "none built in; works behind any ingress controller",
        "CNCF graduated (July 2021); Buoyant",
        "Apache-2.0",
        (
            Milestone("2016-02", "Linkerd 0.1 (Scala, on Finagle)", "Linkerd release notes, Feb 2016", "0.1"),
            Milestone("2018-09", "Linkerd 2.0 with the Rust micro-proxy", "linkerd.io blog, Linkerd 2.0 GA, Sep 2018", "2.0"),
            Milestone("2024-02", "open-source stable releases stop with 2.15", "Buoyant announcement, Feb 2024", "last OSS stable"),
        ),
        "open-source stable releases stopped with 2.15 (Feb 2024); edge releases only",
    ),
    Mesh(
        "Consul service mesh",
        "Envoy sidecar per pod",
        "Consul API gateway (Envoy)",
        "HashiCorp (single vendor)",
        "BSL 1.1 (since Aug 2023; MPL-2.0 before)",
        (
            Milestone("2018-06", "Consul Connect in Consul 1.2", "HashiCorp blog, Consul 1.2 announcement, June 2018", "Connect (1.2)"),
            Milestone("2023-08", "relicensed to the Business Source License 1.1", "HashiCorp licensing announcement, 10 Aug 2023", "BSL 1.1"),
        ),
        "relicensed to BSL 1.1 (Aug 2023): source-available, no longer open source",
    ),
    Mesh(
        "Kuma",
        "Envoy sidecar per pod",
        "built-in gateway (Envoy); Kong as ingress",
        "CNCF sandbox; Kong",
        "Apache-2.0",
        (
            Milestone("2019-09", "Kuma announced by Kong", "Kong announcement, Sep 2019", "announced"),
            Milestone("2020-06", "accepted into the CNCF sandbox", "CNCF sandbox list, June 2020", "CNCF sandbox"),
        ),
        "in the CNCF sandbox",
    ),
    Mesh(
        "Cilium service mesh",
        "eBPF in the kernel + one Envoy per node (no sidecars)",
        "Cilium ingress and Gateway API (per-node Envoy)",
        "CNCF graduated (Oct 2023); Isovalent (Cisco)",
        "Apache-2.0 (eBPF programs dual GPL-2.0/BSD-2)",
        (
            Milestone("2021-12", "Cilium service mesh beta, sidecar-less", "Cilium blog, Dec 2021", "beta"),
            Milestone("2022-07", "service mesh GA in Cilium 1.12", "Cilium 1.12 release blog, July 2022", "GA (1.12)"),
            Milestone("2023-10", "graduates in the CNCF", "CNCF announcement, Oct 2023", "CNCF graduated"),
        ),
        "active; sidecar-less (eBPF + per-node Envoy), SPIFFE-based mutual authentication",
    ),
    Mesh(
        "Traefik Mesh",
        "Traefik proxy per node (DaemonSet)",
        "Traefik proxy",
        "Traefik Labs (single vendor)",
        "Apache-2.0",
        (
            Milestone("2019-09", "announced as Maesh by Containous", "Containous blog, Sep 2019", "Maesh"),
            Milestone("2022-08", "last release, v1.4.8", "Traefik Mesh GitHub releases, Aug 2022", "v1.4.8, last"),
        ),
        "no release since v1.4.8 (Aug 2022)",
    ),
    Mesh(
        "Open Service Mesh",
        "Envoy sidecar per pod",
        "integrates external ingress controllers (e.g. Contour, NGINX)",
        "CNCF sandbox, archived",
        "Apache-2.0",
        (
            Milestone("2020-08", "announced by Microsoft", "Open Service Mesh announcement, Aug 2020", "announced"),
            Milestone("2023-07", "archived by the CNCF", "CNCF TOC archive decision, July 2023", "archived"),
        ),
        "archived by the CNCF (July 2023)",
    ),
)


@dataclass(frozen=True)
class RelatedProject:
    """A project often listed next to meshes that is not itself a service mesh."""

    name: str
    is_: str
    is_not: str
    source: str


RELATED_PROJECTS: tuple[RelatedProject, ...] = (
    RelatedProject(
        "SMI (Service Mesh Interface)",
        "a set of Kubernetes CRDs (traffic access, specs, split, metrics) that several meshes could implement, announced in May 2019",
        "a mesh or a proxy; it was archived by the CNCF in Oct 2023, and its ideas live on in the Gateway API's GAMMA initiative",
        "SMI announcement (KubeCon EU, May 2019); CNCF archive, Oct 2023",
    ),
    RelatedProject(
        "Service Mesh Performance (SMP)",
        "a CNCF specification for describing a mesh performance test and its results in a common format",
        "a benchmark result or a mesh; it says how to record a measurement, not what a mesh costs",
        "Service Mesh Performance project, CNCF sandbox",
    ),
    RelatedProject(
        "Network Service Mesh (NSM)",
        "a CNCF project for L2/L3 network services (virtual wires, VPN-like connections) between workloads across clusters",
        "an L7 service mesh: it does not route HTTP or gRPC requests and works beside meshes such as Istio",
        "Network Service Mesh project, CNCF sandbox",
    ),
)


def mesh_table() -> list[dict[str, str]]:
    """One row per mesh, the columns the chapter's table shows."""
    return [
        {
            "mesh": mesh.name,
            "data plane": mesh.data_plane,
            "ingress": mesh.ingress,
            "governance": mesh.governance,
            "licence": mesh.licence,
            f"status ({STATUS_CHECKED})": mesh.status_2026,
        }
        for mesh in MESHES
    ]

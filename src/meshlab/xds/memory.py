"""A proxy's memory follows the configuration it holds, not the requests it carries.

Envoy keeps every listener, cluster and endpoint it was sent, with their stats, for as long as it
holds them; a request passing through is not buffered, so the request rate does not enter the sum.
istio.io says both ("Performance and Scalability": the 1.22 page, istio.io/v1.23/docs/ops/deployment/
performance-and-scalability, "request rate doesn't affect the memory consumption"; the 1.24 page,
istio.io/docs/ops/deployment/performance-and-scalability, "the memory consumption of the proxy depends
on the total configuration state the proxy holds"). Hence one linear model, shared by chapters 04
and 06: ``resident MB = base + cost per resource x (listeners + clusters + endpoints)``.

The cost per resource is fitted to one mesh measured twice by Huabing Zhao ("如何降低Istio服务网格中
Envoy的内存开销", zhaohuabing.com, 15 Nov 2019, Istio 1.3): an Envoy holding 175 listeners, 325
clusters and 466 endpoints used 105.9 MiB (``docker stats``); a Sidecar resource that kept about 5
outbound services kept it within 15 MB. A check that does not come from the fit: the fitted cost,
times the share Envoy had actually allocated in the same reading (50.3 MB of the 105.9 MiB; the rest
is what tcmalloc kept), gives ~92 kB per listener-and-cluster pair: inside, at the TCP end, Envoy's
own measurement (envoyproxy/envoy#4196, 2018: ~90 kB for TCP, ~135 kB for HTTP). meshlab charges every
resource the same; in Envoy an endpoint costs less than a cluster, so configurations heavy in
endpoints come out a little high.

    ProxyConfig        the xDS resources one proxy holds: listeners, clusters, endpoints
    EnvoyMemory        base + cost per resource -> a proxy's resident memory for a configuration
    HUABING_UNSCOPED   the measured unscoped configuration (175 / 325 / 466)
    HUABING_SCOPED     the same mesh's Envoy scoped to 5 outbound services
    ENVOY_ISTIO_1_3    fitted to those two readings
    ENVOY_ISTIO_1_24   Istio 1.24's published sidecar and waypoint figure as the base, same cost per resource
    ZTUNNEL_MB         Istio 1.24's published ztunnel figure (no per-resource cost is published)
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1.048576  # MB per MiB: docker stats reports MiB, istio.io reports MB


@dataclass(frozen=True)
class ProxyConfig:
    """The configuration one proxy holds, counted as Envoy's admin interface counts it."""

    listeners: int = 0
    clusters: int = 0
    endpoints: int = 0

    def __post_init__(self) -> None:
        for name in ("listeners", "clusters", "endpoints"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")

    @property
    def resources(self) -> int:
        return self.listeners + self.clusters + self.endpoints

    def for_services(self, services: int, of_services: int) -> ProxyConfig:
        """This configuration's mix for ``services`` services, when it holds ``of_services``: fewer
        (a Sidecar resource keeping some of them) or more (a mesh that grows), every kind of
        resource in the same proportion."""
        if isinstance(services, bool) or not isinstance(services, int) or services < 0 or of_services < 1:
            raise ValueError(f"services must be a whole number >= 0 of a configuration holding >= 1, got {services!r} of {of_services!r}")
        share = services / of_services
        return ProxyConfig(round(self.listeners * share), round(self.clusters * share), round(self.endpoints * share))


@dataclass(frozen=True)
class EnvoyMemory:
    """``base_mb`` is an Envoy holding (almost) nothing; each resource it holds adds ``per_resource_kb``."""

    base_mb: float
    per_resource_kb: float
    source: str

    def resident_mb(self, config: ProxyConfig) -> float:
        return self.base_mb + self.per_resource_kb / 1000 * config.resources


#: Huabing Zhao's unscoped Envoy (zhaohuabing.com, 15 Nov 2019; the same listener and cluster counts in
#: istio/istio#18954): 175 listeners, 325 clusters, 466 endpoints; 466 is also the number of instances
#: in that mesh, each with its own Envoy (466 x ~100 MB = 46.6 GB in the post).
HUABING_UNSCOPED = ProxyConfig(listeners=175, clusters=325, endpoints=466)
HUABING_UNSCOPED_MIB = 105.9  # docker stats of the istio-proxy container
#: "about 5 related outbound services" kept by a Sidecar resource. The post gives no service count for
#: the mesh; meshlab takes the clusters as the services (one outbound cluster each), so 5 of 325, with
#: listeners and endpoints in the mesh's proportions.
HUABING_SCOPED = HUABING_UNSCOPED.for_services(5, HUABING_UNSCOPED.clusters)
HUABING_SCOPED_MB = 15.0  # "kept within 15M"
#: The two /memory readings of that mesh's Envoy, as published (bytes): what Envoy had allocated, and
#: the heap tcmalloc had reserved for it.
HUABING_BLOG_READING = {"allocated": 50_315_720, "heap_size": 102_637_568}  # the post, 15 Nov 2019
ISSUE_18954_READING = {"allocated": 50_992_288, "heap_size": 137_240_576}  # istio/istio#18954, 14 Nov 2019
#: envoyproxy/envoy#4196 (2018, --concurrency 1): allocated per listener-and-cluster pair, TCP and HTTP.
ENVOY_4196_PAIR_KB = (90.0, 135.0)


def _fit() -> EnvoyMemory:
    """The line through Huabing Zhao's two readings."""
    unscoped_mb = HUABING_UNSCOPED_MIB * MIB
    per_resource_mb = (unscoped_mb - HUABING_SCOPED_MB) / (HUABING_UNSCOPED.resources - HUABING_SCOPED.resources)
    return EnvoyMemory(HUABING_SCOPED_MB - per_resource_mb * HUABING_SCOPED.resources, per_resource_mb * 1000,
                       "fitted to Huabing Zhao's Envoy, Istio 1.3 (zhaohuabing.com, 15 Nov 2019)")


ENVOY_ISTIO_1_3 = _fit()

#: istio.io "Performance and Scalability", Istio 1.24 (1000 rps, 1 KB payloads, 2 worker threads): a
#: sidecar ~60 MB, a waypoint ~60 MB, a ztunnel ~12 MB. The page does not say what configuration those
#: proxies held; meshlab reads 60 MB as a 1.24 Envoy holding little, takes it as the base, and adds the
#: 2019 cost per resource for what a proxy holds: no per-resource figure is published for 1.24.
ENVOY_ISTIO_1_24 = EnvoyMemory(60.0, ENVOY_ISTIO_1_3.per_resource_kb,
                               "istio.io Performance and Scalability, Istio 1.24 (base); cost per resource fitted to Huabing Zhao's 2019 Envoy")
ZTUNNEL_MB = 12.0

"""Many clusters: one mesh over several clusters and networks, and what sits above and beside it.

    endpoints   split-horizon EDS: what a proxy is sent for pods on other networks; Istio's SNI names
    locality    locality failover priorities (by locality or by labels), and Envoy's priority load
    models      Istio's deployment models (multi-primary, primary-remote, external; networks) and choosing one
    management  a management plane (TSB's hierarchy) translated into each cluster's Istio resources; fan-out
    workloads   VMs in the mesh: WorkloadGroup, auto-registered WorkloadEntry, endpoints of pods and VMs alike
    trust       several trust domains: SPIFFE bundles and federation, Istio's shared root and trust domain aliases

The first three are re-exported here; import the others from their modules.
"""

from __future__ import annotations

from meshlab.multicluster.endpoints import EastWestGateway, Endpoint, LbEndpoint, parse_sni, sni_name, split_horizon
from meshlab.multicluster.locality import (FAILOVER_NEEDS, Locality, failover_priorities, failover_priority_by_labels,
                                           priority_load)
from meshlab.multicluster.models import CONTROL_PLANES, NETWORKS, Choice, Constraints, explain, properties, recommend

__all__ = ["CONTROL_PLANES", "FAILOVER_NEEDS", "NETWORKS", "Choice", "Constraints", "EastWestGateway", "Endpoint", "LbEndpoint",
           "Locality", "explain", "failover_priorities", "failover_priority_by_labels", "parse_sni", "priority_load", "properties",
           "recommend", "sni_name", "split_horizon"]

"""Configuration at scale: Istio's Sidecar resource, the scope it gives each proxy, and lazy loading.

    sidecar    the Sidecar resource: parsed from YAML, checked with Istio's rules and messages
    scope      what a proxy is sent given the services and the Sidecars in force (PushContext)
    lazyload   Slime's lazy loading: global sidecar, access-log learner, ServiceFence controller
    sizes      the model's measurements against mesh size: unscoped, hand-written, lazy loading
"""

from meshlab.scoping.lazyload import FenceController, LazyLoading, ServiceFence
from meshlab.scoping.scope import PushContext, Service, SidecarScope, Workload
from meshlab.scoping.sidecar import Sidecar, analyze, parse_resources, validate

__all__ = ["FenceController", "LazyLoading", "PushContext", "Service", "ServiceFence", "Sidecar", "SidecarScope", "Workload", "analyze",
           "parse_resources", "validate"]

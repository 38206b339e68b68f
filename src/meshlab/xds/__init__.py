"""The control plane's push pipeline, as Istio 1.30.3 runs it, on a simulated or a real clock.

    clock        SimClock (simpy) and AsyncioClock: the only place time comes from
    pushrequest  PushRequest and its merge
    debounce     DebounceOptions and the Debouncer
    pushqueue    PushQueue (enqueue, dequeue, mark_done, pending) and the push throttle
    simulate     a timeline of changes -> pushes; a fleet of proxies at scale; PushCost, calibrated
    cores        istiod's cores shared by the pushes in flight (the simulator's CPU)
    memory       an Envoy's memory from the configuration it holds (shared with meshlab.deploy)
    outbound     Istio's outbound listeners, clusters and endpoints for a ClusterIP service (and east-west gateways)
    inbound      Istio's inbound listener virtualInbound and its clusters, Wasm extensions placed by phase
    resources, server, harness, echo   the live ADS server, its resources and gRPC's own clients
"""

from meshlab.xds.debounce import DebounceOptions, Debouncer
from meshlab.xds.pushqueue import AsyncPushQueue, PushQueue, SimPushQueue, push_throttle
from meshlab.xds.pushrequest import PushRequest

__all__ = ["AsyncPushQueue", "DebounceOptions", "Debouncer", "PushQueue", "PushRequest", "SimPushQueue", "push_throttle"]

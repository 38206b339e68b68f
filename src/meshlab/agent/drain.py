"""Graceful drain on SIGTERM: what pilot-agent does between the kubelet's SIGTERM and the proxy's end.

The agent tells the proxy to drain (POST admin ``/drain_listeners?inboundonly&graceful`` for a sidecar:
inbound listeners stop taking new connections, outbound ones keep working so the app can finish its
own calls; ``?graceful`` without ``inboundonly`` for a gateway), then either waits
``terminationDrainDuration`` (ProxyConfig, default 5s) and kills the proxy, or, with
EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true, waits MINIMUM_DRAIN_DURATION (default 5s) and then polls the
proxy's ``downstream_cx_active`` every second, ending the proxy when it reaches zero; five failed polls
in a row, or no such stat at all, end it at once. Whatever the agent plans, the kubelet SIGKILLs the
pod at terminationGracePeriodSeconds (Kubernetes' default 30s). Facts from Istio 1.30: pkg/envoy/agent.go
(terminate, activeProxyConnections, activeConnectionCheckDelay 1s, the retry limit), pkg/envoy/admin.go
(DrainListeners), pilot/cmd/pilot-agent/options/options.go (the env vars' defaults), and Istio's
ProxyConfig docs (istio.io/api mesh/v1alpha1/proxy.proto terminationDrainDuration 5s).

    DrainSettings   the knobs with Istio's defaults
    drain_path      the admin call that starts a drain (sidecar: inbound only)
    active_connections  Envoy's ``/stats?usedonly&filter=downstream_cx_active$`` text -> the count the agent uses
    drain_timeline  settings + the proxy's active connections over time -> when the proxy is ended, and why
    after_check     one active-connections check -> end now (and why) or keep waiting
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

CHECK_INTERVAL = 1.0  # pkg/envoy/agent.go activeConnectionCheckDelay
MAX_FAILED_CHECKS = 5  # agent.go: "Max retry 5 times"
KUBERNETES_GRACE_PERIOD = 30.0  # Pod.spec.terminationGracePeriodSeconds default (k8s.io/api core/v1 types.go)
#: Istio's own listeners, whose connections do not hold a drain open (agent.go knownIstioListeners).
KNOWN_ISTIO_LISTENERS = ("listener.0.0.0.0_15090.downstream_cx_active", "listener.0.0.0.0_15021.downstream_cx_active",
                         "listener.admin.downstream_cx_active", "listener.admin.main_thread.downstream_cx_active")


@dataclass(frozen=True)
class DrainSettings:
    termination_drain_duration: float = 5.0  # ProxyConfig.terminationDrainDuration
    exit_on_zero_active_connections: bool = False  # EXIT_ON_ZERO_ACTIVE_CONNECTIONS
    minimum_drain_duration: float = 5.0  # MINIMUM_DRAIN_DURATION
    grace_period: float = KUBERNETES_GRACE_PERIOD
    sidecar: bool = True

    def __post_init__(self) -> None:
        for name in ("termination_drain_duration", "minimum_drain_duration", "grace_period"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} is {getattr(self, name)}: a duration in seconds, 0 or more")


def drain_path(settings: DrainSettings, skip_exit: bool = False) -> str:
    """admin.go DrainListeners: inbound only for a sidecar; ``skip_exit`` when draining without shutting down."""
    path = "/drain_listeners?inboundonly&graceful" if settings.sidecar else "/drain_listeners?graceful"
    return path + ("&skip_exit" if skip_exit else "")


def active_connections(stats_text: str | None) -> int:
    """The sum the agent checks: per-listener ``downstream_cx_active``, without per-worker copies, Envoy's
    internal listeners or Istio's own; -1 when Envoy printed nothing (no listener had a connection yet)."""
    if not stats_text or not stats_text.strip():
        return -1
    total = 0
    for line in stats_text.splitlines():
        name, sep, value = line.partition(":")
        if not sep or not name.startswith("listener.") or "worker_" in name or name.startswith("listener.envoy_internal_"):
            continue
        if name in KNOWN_ISTIO_LISTENERS:
            continue
        try:
            total += int(value.strip())
        except ValueError:
            continue
    return total


def drain_timeline(settings: DrainSettings, connections_at: Callable[[float], int | None] = lambda t: 0) -> list[tuple[float, str]]:
    """The agent's steps after SIGTERM at t=0, as (seconds, what happens). ``connections_at(t)`` is the proxy's
    active connection count when the agent asks at time t (None: the stats call failed)."""
    steps = [(0.0, f"POST {drain_path(settings)}")]
    end = settings.grace_period
    if not settings.exit_on_zero_active_connections:
        t = settings.termination_drain_duration
        if t >= end:
            return steps + [(end, "kubelet SIGKILL: the grace period ended before terminationDrainDuration")]
        return steps + [(t, "terminationDrainDuration over: proxy killed")]
    t, failures = settings.minimum_drain_duration + CHECK_INTERVAL, 0
    while t < end:
        outcome, failures = after_check(connections_at(t), failures)
        if outcome:
            return steps + [(t, outcome)]
        t += CHECK_INTERVAL
    return steps + [(end, "kubelet SIGKILL: connections still open at the end of the grace period")]


def after_check(count: int | None, failures: int) -> tuple[str | None, int]:
    """One active-connections check (count None: the stats call failed): why the proxy ends now, or None
    to keep waiting, and the consecutive failures so far."""
    if count is None:
        failures += 1
        return (f"{MAX_FAILED_CHECKS} failed stats checks: proxy killed" if failures >= MAX_FAILED_CHECKS else None), failures
    if count == -1:
        return "no downstream_cx_active stats: proxy killed", 0
    if count == 0:
        return "no active connections: proxy killed", 0
    return None, 0

"""The drain model: Istio's defaults give drain then kill at 5s; EXIT_ON_ZERO_ACTIVE_CONNECTIONS waits the
minimum, then polls each second; Envoy's stats text is read as the agent reads it."""

from __future__ import annotations

import pytest

from meshlab.agent.drain import DrainSettings, active_connections, drain_path, drain_timeline

#: Envoy's admin /stats?usedonly&filter=downstream_cx_active$ (text: "name: value" lines)
STATS = """http.inbound_0.0.0.0_8080.downstream_cx_active: 4
listener.0.0.0.0_15006.downstream_cx_active: 2
listener.0.0.0.0_15006.worker_0.downstream_cx_active: 1
listener.0.0.0.0_15006.worker_1.downstream_cx_active: 1
listener.0.0.0.0_15001.downstream_cx_active: 1
listener.0.0.0.0_15090.downstream_cx_active: 1
listener.0.0.0.0_15021.downstream_cx_active: 1
listener.admin.downstream_cx_active: 1
listener.envoy_internal_connect_originate.downstream_cx_active: 3
"""


def test_by_default_the_agent_drains_inbound_and_kills_the_proxy_after_5s():
    assert drain_timeline(DrainSettings()) == [(0.0, "POST /drain_listeners?inboundonly&graceful"), (5.0, "terminationDrainDuration over: proxy killed")]


def test_a_gateway_drains_every_listener():
    assert drain_path(DrainSettings(sidecar=False)) == "/drain_listeners?graceful"
    assert drain_path(DrainSettings(), skip_exit=True) == "/drain_listeners?inboundonly&graceful&skip_exit"


def test_a_drain_longer_than_the_grace_period_ends_in_the_kubelets_sigkill():
    assert drain_timeline(DrainSettings(termination_drain_duration=45))[-1] == (30.0, "kubelet SIGKILL: the grace period ended before terminationDrainDuration")


def test_exit_on_zero_waits_the_minimum_then_polls_until_no_connection_is_left():
    open_until = 9.0
    steps = drain_timeline(DrainSettings(exit_on_zero_active_connections=True), lambda t: 3 if t < open_until else 0)
    assert steps[-1] == (9.0, "no active connections: proxy killed")
    assert drain_timeline(DrainSettings(exit_on_zero_active_connections=True))[-1] == (6.0, "no active connections: proxy killed")


def test_exit_on_zero_gives_up_after_five_failed_checks_or_without_stats():
    assert drain_timeline(DrainSettings(exit_on_zero_active_connections=True), lambda t: None)[-1] == (10.0, "5 failed stats checks: proxy killed")
    assert drain_timeline(DrainSettings(exit_on_zero_active_connections=True), lambda t: -1)[-1] == (6.0, "no downstream_cx_active stats: proxy killed")


def test_long_lived_connections_hold_the_drain_until_the_grace_period():
    assert drain_timeline(DrainSettings(exit_on_zero_active_connections=True), lambda t: 1)[-1] == (30.0, "kubelet SIGKILL: connections still open at the end of the grace period")


def test_the_count_is_per_listener_without_workers_internal_or_istios_own_listeners():
    assert active_connections(STATS) == 3  # 15006's 2 + 15001's 1
    assert active_connections("") == -1


def test_a_negative_duration_is_refused():
    with pytest.raises(ValueError, match="termination_drain_duration is -1"):
        DrainSettings(termination_drain_duration=-1)

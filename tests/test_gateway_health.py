"""Envoy's load balancing, active health checking and outlier detection as meshlab's gateway runs them
(``meshlab.gateway.balance``, ``meshlab.gateway.health``), each rule a case: the EDF locality schedule,
availability with the overprovisioning factor, panic mode, the health checker's thresholds and the
outlier detector's ejections, guard and backoff. Driven by the caller's clock: no sleeping, no timing."""

from __future__ import annotations

from collections import Counter

import pytest

from meshlab.gateway.balance import Cluster, EdfScheduler, Host, effective_locality_weight
from meshlab.gateway.envoy import Backend
from meshlab.gateway.health import HealthCheck, HealthChecker, OutlierDetection, OutlierDetector, seconds

ONE = Backend("edge", "cluster1-gateway", 80, 75)
TWO = Backend("edge", "cluster2-gateway", 80, 25)


def hosts_of(backend: Backend, count: int = 1, first: int = 1) -> list[Host]:
    return [Host((f"10.0.0.{first + i}", 80), backend) for i in range(count)]


def picks(cluster: Cluster, count: int) -> Counter:
    return Counter(cluster.choose().backend.name for _ in range(count))


# --- balancing ------------------------------------------------------------------------------------


def test_edf_picks_each_entry_in_proportion_to_its_weight_and_ties_go_to_the_earlier():
    scheduler: EdfScheduler[str] = EdfScheduler()
    weights = {"a": 2.0, "b": 1.0}
    for name, weight in weights.items():
        scheduler.add(weight, name)
    order = [scheduler.pick_and_add(weights.__getitem__) for _ in range(8)]
    # due a: 0.5, 1.0, 1.5, 2.0 ...; b: 1.0, 2.0 ...: at 1.0 and 2.0 b was added before a's entry
    assert order == ["a", "b", "a", "a", "b", "a", "a", "b"]


def test_a_75_25_split_is_exact_over_2000_requests():
    cluster = Cluster("tier1", [(ONE, hosts_of(ONE)), (TWO, hosts_of(TWO, first=2))])
    assert picks(cluster, 2000) == {"cluster1-gateway": 1500, "cluster2-gateway": 500}


@pytest.mark.parametrize("healthy, total, expected", [
    (72, 100, 100.0),  # 1.4 x 0.72 = 1.008: the whole weight until fewer than 72% are healthy
    (71, 100, 99.4),   # 1.4 x 0.71 = 0.994
    (1, 2, 70.0),
    (0, 3, 0.0),
])
def test_a_localitys_weight_shrinks_only_below_the_overprovisioning_factor(healthy, total, expected):
    hosts = [Host(("10.0.0.1", 80), ONE, failed_active_hc=i >= healthy) for i in range(total)]
    assert effective_locality_weight(100, hosts) == pytest.approx(expected)


def test_a_locality_whose_only_host_is_ejected_gets_no_traffic():
    one, two = hosts_of(ONE), hosts_of(TWO, first=2)
    cluster = Cluster("tier1", [(ONE, one), (TWO, two)])
    one[0].failed_outlier_check = True
    cluster.refresh()
    assert not cluster.in_panic()  # 1 of 2 healthy is not below 50%
    assert picks(cluster, 100) == {"cluster2-gateway": 100}


def test_partly_healthy_localities_share_by_weight_times_availability():
    a, b = Backend("edge", "a", 80, 1), Backend("edge", "b", 80, 1)
    one, two = hosts_of(a, 2), hosts_of(b, 2, first=10)
    cluster = Cluster("tier1", [(a, one), (b, two)])
    one[0].failed_active_hc = True  # a: 1.4 x 1/2 = 0.7 of its weight
    cluster.refresh()
    assert picks(cluster, 1700) == {"a": 700, "b": 1000}
    assert all(cluster.choose() is not one[0] for _ in range(50)), "an unhealthy host is never chosen"


def test_below_the_panic_threshold_every_host_is_used_again():
    backends = [Backend("edge", name, 80, 1) for name in "abc"]
    hosts = [hosts_of(backend, first=i) for i, backend in enumerate(backends)]
    cluster = Cluster("c", list(zip(backends, hosts)), lb_policy="ROUND_ROBIN")
    hosts[0][0].failed_outlier_check = hosts[1][0].failed_outlier_check = True  # 1 of 3 healthy: 33% < 50%
    cluster.refresh()
    assert cluster.in_panic()
    assert picks(cluster, 30) == {"a": 10, "b": 10, "c": 10}


def test_least_request_prefers_the_host_with_fewer_requests_in_flight():
    hosts = hosts_of(ONE, 2)
    cluster = Cluster("c", [(ONE, hosts)], lb_policy="LEAST_REQUEST", seed=3)
    hosts[0].active_requests = 5
    chosen = Counter(id(cluster.choose()) for _ in range(400))
    # two random draws: the busy host wins only when both draws are it (about a quarter of the time)
    assert chosen[id(hosts[1])] > 2 * chosen[id(hosts[0])] > 0


def test_an_unknown_policy_is_refused_with_the_accepted_ones():
    with pytest.raises(ValueError, match="'MAGLEV' is not one of ROUND_ROBIN, LEAST_REQUEST, RANDOM"):
        Cluster("c", [(ONE, hosts_of(ONE))], lb_policy="MAGLEV")


# --- active health checking -----------------------------------------------------------------------


def checker(events: list, hosts: list[Host], **fields) -> HealthChecker:
    config = HealthCheck(**{"timeout": 1.0, "interval": 1.0, "unhealthy_threshold": 3, "healthy_threshold": 2, "path": "/healthz", **fields})

    async def never(host):  # record() is driven directly here
        raise AssertionError

    return HealthChecker(config, "c", hosts, never, lambda host, event: events.append(event["action"]))


def test_a_host_is_unhealthy_until_its_first_check_passes_and_one_pass_is_enough_then():
    events: list = []
    (host,) = hosts_of(ONE)
    health = checker(events, [host])
    assert host.failed_active_hc
    health.record(host, 200)
    assert not host.failed_active_hc and events == ["add_healthy"]


def test_failures_without_an_answer_count_up_to_the_unhealthy_threshold():
    events: list = []
    (host,) = hosts_of(ONE)
    health = checker(events, [host])
    health.record(host, 200)
    health.record(host, None)
    health.record(host, None, "NETWORK_TIMEOUT")
    assert not host.failed_active_hc
    health.record(host, None)
    assert host.failed_active_hc and events == ["add_healthy", "eject_unhealthy"]


def test_an_unexpected_status_marks_the_host_unhealthy_at_once_but_a_retriable_one_counts():
    events: list = []
    hosts = hosts_of(ONE, 2)
    health = checker(events, hosts, retriable_statuses=((503, 504),))
    for host in hosts:
        health.record(host, 200)
    health.record(hosts[0], 500)
    health.record(hosts[1], 503)
    assert hosts[0].failed_active_hc and not hosts[1].failed_active_hc


def test_after_startup_a_host_needs_the_healthy_threshold_of_passes_in_a_row():
    events: list = []
    (host,) = hosts_of(ONE)
    health = checker(events, [host], unhealthy_threshold=1)
    health.record(host, 200)
    health.record(host, None)
    health.record(host, 200)
    assert host.failed_active_hc, "one pass of two"
    health.record(host, None)
    health.record(host, 200)
    health.record(host, 200)
    assert not host.failed_active_hc and events == ["add_healthy", "eject_unhealthy", "add_healthy"]


def test_no_traffic_interval_applies_until_the_cluster_carried_traffic():
    (host,) = hosts_of(ONE)
    traffic = []
    health = HealthChecker(HealthCheck(1.0, 2.0, 1, 1, "/", unhealthy_interval=0.5), "c", [host], None, lambda *a: None, lambda: bool(traffic))
    assert health.next_interval(host) == 60.0
    traffic.append(1)
    assert health.next_interval(host) == 0.5  # still unhealthy: unhealthyInterval
    health.record(host, 200)
    assert health.next_interval(host) == 2.0


def test_a_health_check_is_read_from_envoys_protojson():
    check = HealthCheck.from_envoy({"timeout": "0.5s", "interval": "3s", "unhealthyThreshold": 3, "healthyThreshold": 1,
                                    "httpHealthCheck": {"path": "/healthz", "host": "shop.example.com", "expectedStatuses": [{"start": 200, "end": 300}]}})
    assert (check.timeout, check.interval, check.host, check.expected(204), check.expected(300)) == (0.5, 3.0, "shop.example.com", True, False)
    assert check.no_traffic_interval == 60.0


@pytest.mark.parametrize("config, message", [
    ({"timeout": "1s", "interval": "1s", "unhealthyThreshold": 1, "healthyThreshold": 1, "tcpHealthCheck": {}}, "tcpHealthCheck are not run"),
    ({"interval": "1s", "unhealthyThreshold": 1, "healthyThreshold": 1, "httpHealthCheck": {"path": "/"}}, "timeout is required"),
    ({"timeout": "1000ms", "interval": "1s", "unhealthyThreshold": 1, "healthyThreshold": 1, "httpHealthCheck": {"path": "/"}}, "protojson Duration"),
    ({"timeout": "1s", "interval": "1s", "unhealthyThreshold": 1, "healthyThreshold": 1, "httpHealthCheck": {}}, "path is required"),
])
def test_a_bad_health_check_names_the_field(config, message):
    with pytest.raises(ValueError, match=message):
        HealthCheck.from_envoy(config)


# --- outlier detection ----------------------------------------------------------------------------


def detector(hosts: list[Host], events: list, **fields) -> OutlierDetector:
    return OutlierDetector(OutlierDetection(**fields), "c", hosts, lambda host, event: events.append(event))


def test_five_5xx_in_a_row_eject_a_host_and_a_success_restarts_the_count():
    events: list = []
    hosts = hosts_of(ONE, 2)
    outliers = detector(hosts, events, max_ejection_percent=50)
    for status in (503, 503, 503, 503, 200, 503, 503, 503, 503):
        outliers.responded(hosts[0], status, now=0.0)
    assert not hosts[0].failed_outlier_check
    outliers.responded(hosts[0], 500, now=0.0)
    assert hosts[0].failed_outlier_check
    assert [(e["action"], e["type"], e["enforced"]) for e in events] == [("EJECT", "CONSECUTIVE_5XX", True)]


def test_envoys_default_max_ejection_percent_refuses_to_eject_one_of_two_hosts():
    events: list = []
    hosts = hosts_of(ONE, 2)
    outliers = detector(hosts, events)  # maxEjectionPercent 10: one of two is 50%
    for _ in range(5):
        outliers.failed(hosts[0], "connect_failed", now=0.0)
    assert not hosts[0].failed_outlier_check
    assert events[0]["enforced"] is False and events[0]["overflow"] is True
    outliers.config = OutlierDetection(always_eject_one_host=True)
    for _ in range(5):
        outliers.failed(hosts[0], "connect_failed", now=0.0)
    assert hosts[0].failed_outlier_check


def test_gateway_failures_are_detected_but_not_enforced_by_default():
    events: list = []
    hosts = hosts_of(ONE, 2)
    outliers = detector(hosts, events, consecutive_5xx=100, consecutive_gateway_failure=3, max_ejection_percent=50)
    for _ in range(3):
        outliers.responded(hosts[0], 502, now=0.0)
    assert not hosts[0].failed_outlier_check and events[0]["type"] == "CONSECUTIVE_GATEWAY_FAILURE" and events[0]["enforced"] is False
    outliers.config = OutlierDetection(consecutive_5xx=100, consecutive_gateway_failure=3, enforcing_consecutive_gateway_failure=100, max_ejection_percent=50)
    for _ in range(3):
        outliers.responded(hosts[0], 504, now=0.0)
    assert hosts[0].failed_outlier_check


def test_ejection_time_grows_with_each_ejection_and_the_sweep_returns_hosts():
    events: list = []
    hosts = hosts_of(ONE, 2)
    outliers = detector(hosts, events, max_ejection_percent=50, base_ejection_time=30.0, interval=10.0)

    def eject(now: float) -> None:
        for _ in range(5):
            outliers.failed(hosts[0], "connect_failed", now)

    eject(0.0)
    outliers.sweep(29.0)
    assert hosts[0].failed_outlier_check
    outliers.sweep(30.0)
    assert not hosts[0].failed_outlier_check
    eject(31.0)
    assert outliers.ejection_time(hosts[0]) == 60.0
    outliers.sweep(90.0)
    assert hosts[0].failed_outlier_check, "the second ejection lasts 2 x 30 s"
    outliers.sweep(91.0)
    assert not hosts[0].failed_outlier_check
    outliers.sweep(101.0)  # in for an interval since: the multiplier goes down by one
    eject(102.0)
    assert outliers.ejection_time(hosts[0]) == 60.0
    # (each run of five refused connections is also five gateway failures: detected, not enforced)
    assert [e["action"] for e in events if e.get("enforced", True)] == ["EJECT", "UNEJECT", "EJECT", "UNEJECT", "EJECT"]


def test_ejection_time_is_capped_by_max_ejection_time():
    hosts = hosts_of(ONE, 2)
    outliers = detector(hosts, [], max_ejection_percent=50, base_ejection_time=100.0)
    now = 0.0
    for _ in range(6):
        for _ in range(5):
            outliers.responded(hosts[0], 503, now)
        now += outliers.ejection_time(hosts[0])
        outliers.sweep(now)
    assert outliers.ejection_time(hosts[0]) == 300.0


def test_a_passed_active_check_returns_an_ejected_host():
    events: list = []
    hosts = hosts_of(ONE, 2)
    outliers = detector(hosts, events, max_ejection_percent=50)
    for _ in range(5):
        outliers.responded(hosts[0], 503, 0.0)
    outliers.health_check_passed(hosts[0], 1.0)
    assert not hosts[0].failed_outlier_check and events[-1]["why"] == "active health check passed"


def test_split_local_origin_errors_count_apart_from_5xx():
    hosts = hosts_of(ONE, 2)
    outliers = detector(hosts, [], split_external_local_origin_errors=True, consecutive_local_origin_failure=2, max_ejection_percent=50)
    outliers.failed(hosts[0], "connect_failed", 0.0)
    outliers.connected(hosts[0])  # a connection made ends the run
    outliers.failed(hosts[0], "timeout", 0.0)
    assert not hosts[0].failed_outlier_check
    outliers.failed(hosts[0], "connect_failed", 0.0)
    assert hosts[0].failed_outlier_check


def test_outlier_detection_is_read_from_envoys_protojson_with_envoys_defaults():
    config = OutlierDetection.from_envoy({"consecutive5xx": 3, "interval": "1s", "baseEjectionTime": "5s", "maxEjectionPercent": 50})
    assert (config.consecutive_5xx, config.interval, config.base_ejection_time, config.max_ejection_percent) == (3, 1.0, 5.0, 50)
    assert (config.consecutive_gateway_failure, config.enforcing_consecutive_gateway_failure, config.ejection_cap) == (5, 0, 300.0)
    with pytest.raises(ValueError, match="successRateMinimumHosts are not run"):
        OutlierDetection.from_envoy({"successRateMinimumHosts": 3})
    with pytest.raises(ValueError, match="maxEjectionPercent must be a whole number 0-100"):
        OutlierDetection.from_envoy({"maxEjectionPercent": 150})
    with pytest.raises(ValueError, match="max_ejection_time cannot be smaller than base_ejection_time"):
        OutlierDetection.from_envoy({"baseEjectionTime": "60s", "maxEjectionTime": "30s"})


def test_durations_are_protojson():
    assert seconds("0.250s", "x") == 0.25
    with pytest.raises(ValueError, match='x must be a protojson Duration such as "1s"'):
        seconds("1m", "x")

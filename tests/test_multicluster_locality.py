"""Locality failover as istiod computes it, against Istio's loadbalancer_test.go (TestApplyLocalitySetting)
and its locality failover task, Envoy's priority load against Envoy's load_balancer_impl_test.cc
(LoadBalancerBaseTest), and the DestinationRules Istio refuses or warns about against istioctl itself."""

from __future__ import annotations

import subprocess

import pytest
from upstream_programs import program_path

from meshlab.multicluster.locality import (FAILOVER_NEEDS, FAILOVER_WARNING, Locality, failover_priorities, failover_priority_by_labels,
                                           priority_load)

PROXY = "region1/zone1/subzone1"  # TestApplyLocalitySetting's locality
FAKE_CLUSTER = ["region1/zone1/subzone1", "region1/zone1/subzone2", "region1/zone1/subzone3", "region1/zone2", "region2", "region3"]
TASK = ["region1/zone1", "region1/zone2", "region2/zone3", "region3/zone4"]
# buildWrappedLocalityLbEndpoints: the six endpoints' labels (1.1.1.1, 1.2.3.4 | 3.3.3.3, 4.4.4.4 | 2.3.4.5 ...), in its order.
NETWORK, CLUSTER = "topology.istio.io/network", "topology.istio.io/cluster"
ISTIO_ENDPOINTS = {"1.1.1.1": {NETWORK: "n1", CLUSTER: "c1"}, "2.2.2.2": {"key": "value", NETWORK: "n2", CLUSTER: "c2"},
                   "3.3.3.3": {"key": "value", NETWORK: "n1", CLUSTER: "c3"}, "4.4.4.4": {"key": "value", NETWORK: "n2", CLUSTER: "c4"},
                   "1.2.3.4": {"key": "value", NETWORK: "n1", CLUSTER: "c1"}, "2.3.4.5": {"key": "value", NETWORK: "n2", CLUSTER: "c2"}}


def by_name(priorities):
    return {str(locality): priority for locality, priority in priorities.items()}


def test_istios_all_priorities_case():
    """"Failover: all priorities": subzone 0, zone 1, region 2, the failover target region2 3, region3 4."""
    got = by_name(failover_priorities(PROXY, FAKE_CLUSTER, failover=[("region1", "region2")]))
    assert [got[name] for name in FAKE_CLUSTER] == [0, 1, 1, 2, 3, 4]


def test_istios_priorities_with_gaps_and_nil_localities_cases():
    """"Failover: priorities with gaps" (1 and 3 become 0 and 1) and "... with some nil localities" (none: 4 -> 2)."""
    assert by_name(failover_priorities(PROXY, ["region1/zone1/subzone2", "region2/zone1/subzone2"], [("region1", "region2")])) == \
        {"region1/zone1/subzone2": 0, "region2/zone1/subzone2": 1}
    assert by_name(failover_priorities(PROXY, ["region1/zone1/subzone2", "", "region2/zone1/subzone2"], [("region1", "region2")])) == \
        {"region1/zone1/subzone2": 0, "": 2, "region2/zone1/subzone2": 1}


def test_the_locality_failover_tasks_table_renumbered_without_gaps():
    """istio.io's task lists region1.zone1 0, region1.zone2 2, region2.zone3 3, region3.zone4 4 (1 unused: no
    subzones); istiod renumbers 0..N ("Priorities should range from 0 (highest) to N (lowest) without skipping")."""
    assert by_name(failover_priorities("region1/zone1", TASK, failover=[("region1", "region2")])) == \
        {"region1/zone1": 0, "region1/zone2": 1, "region2/zone3": 2, "region3/zone4": 3}


def test_other_regions_share_a_priority_unless_a_rule_from_the_proxys_region_names_one():
    assert by_name(failover_priorities("region1/zone1", TASK)) == {"region1/zone1": 0, "region1/zone2": 1, "region2/zone3": 2, "region3/zone4": 2}
    assert by_name(failover_priorities("region1/zone1", TASK, [("region2", "region3")])) == by_name(failover_priorities("region1/zone1", TASK))
    assert by_name(failover_priorities("region1/zone1", TASK, [("region1", "region3"), ("region1", "region2")]))["region3/zone4"] == 2, \
        "the first rule from the proxy's region decides"


@pytest.mark.parametrize("case, labels, proxy, expected", [
    ("match none label", [NETWORK, CLUSTER], {NETWORK: "test", CLUSTER: "test"}, dict.fromkeys(ISTIO_ENDPOINTS, 0)),
    ("match network label", [NETWORK, CLUSTER], {NETWORK: "n1", CLUSTER: "test"},
     {"1.1.1.1": 0, "2.2.2.2": 1, "3.3.3.3": 0, "4.4.4.4": 1, "1.2.3.4": 0, "2.3.4.5": 1}),
    ("not match the first n label", [NETWORK, CLUSTER], {NETWORK: "test", CLUSTER: "c1"}, dict.fromkeys(ISTIO_ENDPOINTS, 0)),
    ("match all labels", ["key", NETWORK, CLUSTER], {"key": "value", NETWORK: "n2", CLUSTER: "c2"},
     {"1.1.1.1": 3, "2.2.2.2": 0, "3.3.3.3": 2, "4.4.4.4": 1, "1.2.3.4": 2, "2.3.4.5": 0}),
    ("priority assignment as per the overridden value", [f"{NETWORK}=n1"], {NETWORK: "n2", CLUSTER: "test"},
     {"1.1.1.1": 0, "2.2.2.2": 1, "3.3.3.3": 0, "4.4.4.4": 1, "1.2.3.4": 0, "2.3.4.5": 1}),
    ("no endpoints with overridden value", [f"{NETWORK}=n3"], {NETWORK: "n1", CLUSTER: "test"}, dict.fromkeys(ISTIO_ENDPOINTS, 0)),
])
def test_istios_failover_priority_cases(case, labels, proxy, expected):
    """TestApplyLocalitySetting/FailoverPriority: the first mismatching label of N at index j gives N - j."""
    assert dict(zip(ISTIO_ENDPOINTS, failover_priority_by_labels(proxy, list(ISTIO_ENDPOINTS.values()), labels))) == expected, case


def test_the_destination_rule_references_failover_priority_example():
    """destination_rule.proto: [version=v1, topology.istio.io/cluster=clusterA] -> v1 in clusterA 0, other v1 1, the rest 2."""
    endpoints = [{"version": "v1", CLUSTER: "clusterA"}, {"version": "v1", CLUSTER: "clusterB"}, {"version": "v2", CLUSTER: "clusterA"}]
    assert failover_priority_by_labels({"app": "x"}, endpoints, ["version=v1", f"{CLUSTER}=clusterA"]) == [0, 1, 2]


def test_a_proxy_without_labels_leaves_every_endpoint_at_priority_zero():
    assert failover_priority_by_labels({}, list(ISTIO_ENDPOINTS.values()), [NETWORK]) == [0] * 6


@pytest.mark.parametrize("labels", [[], "topology.istio.io/network", ["a=b=c"], ["=v"]])
def test_bad_failover_priority_labels_are_refused(labels):
    with pytest.raises(ValueError, match="failoverPriority"):
        failover_priority_by_labels({"a": "b"}, [{}], labels)


@pytest.mark.parametrize("text", ["a//b", "a/b/c/d", "/z", "r/z/"])
def test_a_bad_locality_is_refused(text):
    with pytest.raises(ValueError, match=r"is not region\[/zone\[/subzone\]\]"):
        Locality.parse(text)


def test_localities_parse_and_print_as_istio_writes_them():
    assert Locality.parse("us-east1/us-east1-b") == Locality("us-east1", "us-east1-b") and str(Locality("r", "z", "s")) == "r/z/s"
    assert Locality.parse("") == Locality("")
    with pytest.raises(ValueError, match="a subzone only with a zone"):
        Locality("r", "", "s")


BAD_RULES = [(("region1", "region1"), "locality lb failover settings must specify different regions"),
             (("region1/zone1", "region2"), "locality lb failover only specify region"),
             (("region1", "region2*"), "locality lb failover region should not contain '*' wildcard")]


@pytest.mark.parametrize("rule, reason", BAD_RULES)
def test_failover_rules_istio_refuses_are_refused_in_its_words(rule, reason):
    with pytest.raises(ValueError, match=reason.replace("*", r"\*")):
        failover_priorities("region1/zone1", TASK, [rule])


def destination_rule(name: str, failover: tuple[str, str], outlier_detection: bool) -> str:
    outlier = "    outlierDetection: {consecutive5xxErrors: 1}\n" if outlier_detection else ""
    return (f"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: sample}}\n"
            f"spec:\n  host: helloworld.sample.svc.cluster.local\n  trafficPolicy:\n{outlier}"
            f"    loadBalancer:\n      localityLbSetting:\n        failover: [{{from: '{failover[0]}', to: '{failover[1]}'}}]\n")


def istioctl_validate(text: str) -> subprocess.CompletedProcess:
    return subprocess.run([program_path("istioctl"), "validate", "-f", "-"], input=text, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.upstream
def test_istioctl_refuses_the_rules_meshlab_refuses_with_the_same_words():
    done = istioctl_validate("---\n".join(destination_rule(f"bad-{i}", rule, True) for i, (rule, _) in enumerate(BAD_RULES)))
    assert done.returncode != 0
    for index, (rule, reason) in enumerate(BAD_RULES):
        assert f"DestinationRule/sample/bad-{index}: {reason}" in done.stdout + done.stderr
    assert istioctl_validate(destination_rule("good", ("region1", "region2"), True)).returncode == 0


@pytest.mark.upstream
def test_istioctl_warns_that_failover_needs_outlier_detection_as_meshlab_says():
    said = istioctl_validate(destination_rule("helloworld", ("region1", "region2"), False))
    assert f"DestinationRule/sample/helloworld: {FAILOVER_WARNING}" in said.stdout + said.stderr
    assert FAILOVER_WARNING in FAILOVER_NEEDS


@pytest.mark.parametrize("shares, loads", [
    ([1.0, 1.0], [1.0, 0.0]), ([0.5, 1.0], [0.7, 0.3]), ([0.0, 1.0], [0.0, 1.0]),  # the brief's
    ([1 / 2, 1 / 2], [0.7, 0.3]), ([1 / 4, 2 / 2], [0.35, 0.65]),  # Envoy's GentleFailover
    ([1 / 2, 1 / 2, 1 / 2], [0.7, 0.3, 0.0]), ([1 / 4, 1.0, 1 / 2], [0.35, 0.65, 0.0]), ([1 / 4, 1 / 4, 1 / 4], [0.35, 0.35, 0.30]),  # ...WithExtraLevels
    ([2 / 3, 1.0], [0.93, 0.07]), ([0.8, 0.5], [1.0, 0.0]),  # whole percents; 80% healthy is still 100% health
    ([0.5, 0.2], [0.72, 0.28]),  # healths 70 + 28 < 100: scaled to 71 + 28, the rounding's 1 to the first level
    ([1 / 3, 1 / 4], [0.57, 0.43]),  # whole-percent healths 46 and 35 (not 46.7 and 35), scaled to 56 + 43, +1
    ([0.0, 0.0], [0.0, 0.0]),  # no health anywhere: Envoy's panic mode, not modelled
])
def test_envoys_priority_load(shares, loads):
    assert priority_load(shares) == pytest.approx(loads)


def test_an_overprovisioning_factor_of_one_follows_the_healthy_share():
    """Envoy's OverProvisioningFactor test: with factor 100, 2 of 4 healthy on both levels splits 50/50."""
    assert priority_load([0.5, 0.5], overprovisioning=1.0) == [0.5, 0.5]


@pytest.mark.parametrize("shares, overprovisioning, message", [([1.5], 1.4, "healthy shares are fractions 0..1"),
                                                               ([True], 1.4, "healthy shares are fractions 0..1"),
                                                               ([0.5], 0, "overprovisioning 0 is not a positive whole percentage"),
                                                               ([0.5], 1.405, "overprovisioning 1.405 is not a positive whole percentage")])
def test_bad_priority_load_input_is_refused(shares, overprovisioning, message):
    with pytest.raises(ValueError, match=message):
        priority_load(shares, overprovisioning)

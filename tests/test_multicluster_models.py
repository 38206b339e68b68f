"""Choosing a multi-cluster model: the recommendation fits, every other choice is explained by the
constraint it breaks (istio.io's deployment models and install guides), and bad input is refused."""

from __future__ import annotations

import itertools

import pytest

from meshlab.multicluster.models import CONTROL_PLANES, NETWORKS, Choice, Constraints, explain, properties, recommend

FLAGS = ("control_plane_per_cluster_failure_domain", "teams_own_clusters", "api_servers_reachable", "fewest_control_planes",
         "control_plane_outside_clusters", "namespace_sameness")
CHOICES = [Choice(c, n) for c, n in itertools.product(CONTROL_PLANES, NETWORKS)]


def all_constraints():
    for flat, clusters, *flags in itertools.product((False, True), (2, 3), *[(False, True)] * len(FLAGS)):
        try:
            yield Constraints(flat, clusters, **dict(zip(FLAGS, flags)))
        except ValueError:
            continue


ALL = list(all_constraints())


def test_every_combination_that_is_not_contradictory_is_accepted():
    """6 flags, flat or not, 2 sizes: 256 combinations. The contradictory ones ask one istiod to serve several
    clusters (fewest, or outside them) and to be each cluster's own: 9 of the 16 settings of those four flags."""
    assert len(ALL) == 2 * 2 * 2 * 2 * 7


@pytest.mark.parametrize("constraints", ALL, ids=lambda c: "-".join(f"{k[:8]}={int(v)}" for k, v in vars(c).items()))
def test_the_recommendation_fits_and_only_its_network_does(constraints):
    best = recommend(constraints)
    assert explain(best, constraints) == []
    fitting = [choice for choice in CHOICES if not explain(choice, constraints)]
    assert {choice.network for choice in fitting} == {best.network}


def test_a_wrong_choice_gets_one_sentence_per_broken_constraint():
    shop = Constraints(flat_network=False, clusters=3, control_plane_per_cluster_failure_domain=True, teams_own_clusters=True)
    assert recommend(shop) == Choice("multi-primary", "multi")
    reasons = explain(Choice("primary-remote", "single"), shop)
    assert len(reasons) == 3
    assert reasons[0].startswith("single network: istiod would send each proxy the other clusters' pod addresses")
    assert "the 2 remote clusters' proxies get their configuration from the primary's istiod" in reasons[1]
    assert "failurePolicy is Fail" in reasons[1] and "configure its own traffic" in reasons[2]


def test_the_numbers_in_the_reasons_follow_the_cluster_count():
    (reason,) = explain(Choice("multi-primary", "single"), Constraints(True, clusters=4, fewest_control_planes=True))
    assert "4 istiods for 4 clusters" in reason and "12 remote secrets" in reason and "primary-remote runs one, with 3" in reason


@pytest.mark.parametrize("constraints, best, forbidden, words", [
    (Constraints(False, api_servers_reachable=False), Choice("separate meshes", "multi"), Choice("multi-primary", "multi"),
     "reading its API server through a remote secret"),
    (Constraints(True, namespace_sameness=False), Choice("separate meshes", "single"), Choice("primary-remote", "single"),
     "namespace sameness"),
    (Constraints(True, control_plane_outside_clusters=True), Choice("external control plane", "single"), Choice("primary-remote", "single"),
     "runs istiod in the mesh's own clusters"),
    (Constraints(True, fewest_control_planes=True), Choice("primary-remote", "single"), Choice("external control plane", "single"),
     "runs two istiods"),
    (Constraints(True), Choice("multi-primary", "single"), Choice("separate meshes", "single"), "one mesh is possible"),
    (Constraints(True, control_plane_per_cluster_failure_domain=True), Choice("multi-primary", "single"),
     Choice("external control plane", "single"), "its outage reaches every one of them"),
])
def test_what_each_constraint_calls_for_and_why_not_the_other(constraints, best, forbidden, words):
    assert recommend(constraints) == best
    assert any(words in reason for reason in explain(forbidden, constraints))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="control plane 'primary' is not one of multi-primary, primary-remote, external control plane"):
        Choice("primary", "single")
    with pytest.raises(ValueError, match="network 'flat' is not one of single, multi"):
        Choice("multi-primary", "flat")
    with pytest.raises(ValueError, match="constraint flat_network is true or false"):
        Constraints(flat_network="yes")
    with pytest.raises(ValueError, match="constraint clusters is a whole number of at least 2"):
        Constraints(True, clusters=1)
    with pytest.raises(ValueError, match="fewest_control_planes contradicts teams_own_clusters"):
        Constraints(True, fewest_control_planes=True, teams_own_clusters=True)
    with pytest.raises(ValueError, match="clusters is a whole number of at least 2"):
        properties(True)


def test_the_table_fits_100_columns_and_counts_by_clusters():
    table = properties(5)
    assert max(map(len, table.splitlines())) <= 100
    assert table.splitlines()[3].split()[2:5] == ["20", "4", "5"], "remote secrets: n(n-1), n-1, n"

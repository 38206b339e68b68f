"""Envoy Gateway's own translator (``egctl experimental translate``, v1.9.0, built by the upstream stage)
on a Gateway API route set: what a gateway chapter states about the translation, read off the real
translator's xDS rather than asserted from memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from upstream_programs import program_path

from meshlab.upstream.egctl import TranslateError, translate

pytestmark = pytest.mark.upstream

ROUTES = (Path(__file__).parent / "data" / "gateway" / "shop-canary.yaml").read_text()


@pytest.fixture(scope="module")
def egctl():
    return program_path("egctl")


def test_a_header_match_is_tried_before_the_plain_prefix_and_prefix_matches_whole_segments(egctl):
    dump = translate(egctl, ROUTES, "route")["xds"]["default/eg"]["dynamicRouteConfigs"][0]["routeConfig"]
    (host,) = dump["virtualHosts"]
    assert host["domains"] == ["shop.example.com"]
    first, second = host["routes"]
    assert first["match"] == {"headers": [{"name": "x-canary", "stringMatch": {"exact": "true"}}], "pathSeparatedPrefix": "/api"}
    assert second["match"] == {"pathSeparatedPrefix": "/api"}  # PathPrefix /api matches /api/x, not /apix
    assert (first["route"]["cluster"], second["route"]["cluster"]) == ("httproute/default/shop/rule/0", "httproute/default/shop/rule/1")


def test_backend_weights_become_locality_weights_of_one_cluster(egctl):
    endpoints = translate(egctl, ROUTES, "endpoint")["xds"]["default/eg"]["dynamicEndpointConfigs"]
    weights = {e["endpointConfig"]["clusterName"]: [locality["loadBalancingWeight"] for locality in e["endpointConfig"]["endpoints"]] for e in endpoints}
    assert weights == {"httproute/default/shop/rule/0": [1], "httproute/default/shop/rule/1": [75, 25]}


def test_input_without_a_gateway_class_is_refused_with_egctls_words(egctl):
    with pytest.raises(TranslateError, match="egctl experimental translate failed"):
        translate(egctl, ROUTES.split("---", 1)[1])

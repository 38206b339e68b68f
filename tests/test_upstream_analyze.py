"""Istio's own analyzers (``istioctl analyze --use-kube=false``, the pinned istioctl) on the book's
configuration: what meshlab applies on a cluster is clean, and a broken route is reported with
Istio's codes."""

from __future__ import annotations

import pytest
import yaml
from upstream_programs import program_path

from meshlab.kind.manifests import service_entries
from meshlab.upstream.analyze import BROKEN_ROUTE, Finding, analyze

pytestmark = pytest.mark.upstream




@pytest.fixture(scope="module")
def istioctl():
    return program_path("istioctl")


def test_the_service_entries_chapter_06_applies_are_clean(istioctl):
    assert [f for f in analyze(istioctl, yaml.safe_dump_all(service_entries(5, "meshlab-sidecar"))) if f.level == "Error"] == []


def test_a_route_to_a_missing_gateway_and_subset_is_reported_with_istios_codes(istioctl):
    errors = {f for f in analyze(istioctl, BROKEN_ROUTE) if f.level == "Error"}  # istioctl's order varies from run to run
    assert errors == {Finding("Error", "IST0101", "VirtualService default/reviews", 'Referenced gateway not found: "missing-gateway"'),
                      Finding("Error", "IST0101", "VirtualService default/reviews", 'Referenced host+subset in destinationrule not found: "reviews+v9"')}


def test_outside_the_default_namespace_only_all_namespaces_finds_anything(istioctl):
    """istioctl analyze looks at ``default`` unless given -A: a broken Sidecar in ``shop`` is found only then."""
    broken = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: broken, namespace: shop}\nspec:\n  egress:\n  - hosts: [reviews]\n"
    assert analyze(istioctl, broken) == []
    assert [(f.code, f.resource, f.message) for f in analyze(istioctl, broken, all_namespaces=True)] == [
        ("IST0106", "Sidecar shop/broken", "Schema validation error: host must be of form namespace/dnsName")]

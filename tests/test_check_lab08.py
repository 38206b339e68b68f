"""Lab 08's checks: the solution's routes pass (through meshlab and, where egctl is built, through Envoy
Gateway's translator too); each usual mistake fails with the hint that names it."""

from __future__ import annotations

import re

import pytest

from lab_solutions import solution

from meshlab.check import CheckFailed, lab08

CANARY, SPLIT, REDIRECT = (solution("08-writing-routes", f) for f in ("canary_route", "split_route", "redirect_route"))


def answer(text):
    return lambda: text


def test_the_solution_passes_every_check():
    lab08.check_canary(answer(CANARY))
    lab08.check_split(answer(SPLIT))
    lab08.check_redirect(answer(REDIRECT))
    lab08.check_together(answer(CANARY), answer(SPLIT), answer(REDIRECT))


def test_weights_nine_and_one_are_the_same_split():
    lab08.check_split(answer(SPLIT.replace("weight: 90", "weight: 9").replace("weight: 10", "weight: 1")))


@pytest.mark.parametrize(
    ("check", "text", "hint"),
    [
        ("check_canary", CANARY.replace("value: always", "value: \"true\""), "check the header's name and value"),
        ("check_canary", CANARY.replace("type: PathPrefix", "type: Exact"), "a path match of type Exact takes only /catalog itself"),
        ("check_canary", CANARY.split("  - matches: [{path: {type: PathPrefix, value: /catalog}}]\n    backendRefs: [{name: catalog, port: 8080}]\n")[0]
         + CANARY.split("backendRefs: [{name: catalog, port: 8080}]\n")[1], "requests without the header need a rule of their own"),
        ("check_canary", CANARY.replace("{type: PathPrefix, value: /catalog}", "{type: RegularExpression, value: /catalog.*}"),
         "/catalogue is not under /catalog"),
        ("check_canary", CANARY.replace("namespace: infra", "namespace: shop"), "Accepted is False (NoMatchingParent)"),
        ("check_canary", CANARY.replace("hostnames: [shop.example.com]", "hostnames: [www.example.com]"), "NoMatchingListenerHostname"),
        ("check_canary", CANARY.replace("name: catalog-canary", "name: catalog-beta"), "ResolvedRefs is False (BackendNotFound)"),
        ("check_canary", CANARY.replace("name: catalog,", "name: products,"), "no HTTPRoute named 'catalog'"),
        ("check_canary", CANARY.replace("hostnames:", "hostname:"), "the Gateway API refuses your YAML: HTTPRoute shop/catalog: spec.hostname"),
        ("check_split", SPLIT.replace("weight: 90", "weight: 10").replace("weight: 10}]", "weight: 90}]"), "a weight is a share of the rule's total"),
        ("check_split", SPLIT.replace(", weight: 90", "").replace(", weight: 10", ""), "a weight is a share of the rule's total"),
        ("check_split", SPLIT.replace("PathPrefix", "Exact"), "everything under /checkout is split"),
        ("check_redirect", REDIRECT.replace("ReplacePrefixMatch, replacePrefixMatch", "ReplaceFullPath, replaceFullPath"),
         "ReplacePrefixMatch replaces the matched prefix"),
        ("check_redirect", REDIRECT.replace(", statusCode: 301", ""), "statusCode defaults to 302"),
    ],
)
def test_a_usual_mistake_gets_its_hint(check, text, hint):
    with pytest.raises(CheckFailed, match=re.escape(hint)):
        getattr(lab08, check)(answer(text))


def test_an_unanswered_exercise_says_so():
    def canary_route():
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="canary_route is not answered yet"):
        lab08.check_canary(canary_route)

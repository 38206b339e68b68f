"""MetaRouter: Aeraki's route semantics on codec metadata — first match wins, weights, mirror
percentages, mutations, and the local rate limit's conditions and buckets."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from meshlab.metaprotocol.router import MetaRouterError, TokenBucket, load_metarouter

ROUTER = """
apiVersion: metaprotocol.aeraki.io/v1alpha1
kind: MetaRouter
metadata: {name: orders}
spec:
  hosts: [orders.shop.svc.cluster.local]
  routes:
  - name: canary-header
    match:
      attributes:
        x-canary: {exact: "true"}
    route:
    - destination: {host: orders.shop.svc.cluster.local, subset: v2}
  - name: place
    match:
      attributes:
        interface: {prefix: com.shop.}
        method: {regex: "place|cancel"}
    route:
    - destination: {host: orders.shop.svc.cluster.local, subset: v1}
      weight: 80
    - destination: {host: orders.shop.svc.cluster.local, subset: v2, port: {number: 20880}}
      weight: 20
    mirror: {host: orders-shadow.shop.svc.cluster.local}
    mirrorPercentage: {value: 25}
    requestMutation:
    - {key: x-routed-by, value: meshlab}
  - name: tenant-present
    match:
      attributes:
        tenant:
    route:
    - destination: {host: orders.shop.svc.cluster.local, subset: v1}
  localRateLimit:
    tokenBucket: {maxTokens: 1000, tokensPerFill: 1000, fillInterval: 1s}
    conditions:
    - match:
        attributes:
          method: {exact: cancel}
      tokenBucket: {maxTokens: 2, tokensPerFill: 1, fillInterval: 10s}
"""


def test_first_match_wins_and_weights_split():
    router = load_metarouter(ROUTER, rng=random.Random(11))
    assert router.route({"x-canary": "true", "interface": "com.shop.Orders", "method": "place"}).route == "canary-header"
    decisions = [router.route({"interface": "com.shop.Orders", "method": "place"}) for _ in range(800)]
    assert {d.route for d in decisions} == {"place"}
    subsets = Counter(d.destination.subset for d in decisions)
    assert 0.75 < subsets["v1"] / 800 < 0.85
    mirrored = sum(d.mirror is not None for d in decisions) / 800
    assert 0.20 < mirrored < 0.30 and decisions[0].mutation == {"x-routed-by": "meshlab"}
    assert {d.destination.port for d in decisions if d.destination.subset == "v2"} == {20880}


def test_regex_matches_the_whole_value_and_presence():
    router = load_metarouter(ROUTER)
    assert router.route({"interface": "com.shop.Orders", "method": "placeOrder"}).refused == "no route"
    assert router.route({"tenant": ""}).route == "tenant-present"
    assert router.route({}).refused == "no route"


def test_rate_limit_conditions_first_then_the_default():
    now = [0.0]
    router = load_metarouter(ROUTER, clock=lambda: now[0])
    cancel = {"interface": "com.shop.Orders", "method": "cancel"}
    assert [router.route(cancel).refused for _ in range(3)] == [None, None, "rate limited"]
    assert router.route({"interface": "com.shop.Orders", "method": "place"}).refused is None, "other requests use the default bucket"
    now[0] = 10.0
    assert router.route(cancel).refused is None and router.route(cancel).refused == "rate limited", "one token per 10 s"


def test_token_bucket_refills_up_to_its_maximum():
    now = [0.0]
    bucket = TokenBucket(3, 2, 1.0, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 5.0
    assert [bucket.take() for _ in range(4)] == [True, True, True, False], "never more than max_tokens"


@pytest.mark.parametrize(("change", "error"), [
    (("kind: MetaRouter", "kind: VirtualService"), "expected apiVersion: metaprotocol.aeraki.io/v1alpha1 and kind: MetaRouter"),
    (("x-canary: {exact: \"true\"}", "x-canary: {suffix: \"true\"}"), r"spec.routes\[0\].match.attributes.x-canary: give exactly one of exact, prefix, regex"),
    (('method: {regex: "place|cancel"}', 'method: {regex: "place("}'), r"spec.routes\[1\].match.attributes.method.regex"),
    (("weight: 80", "weight: -1"), r"spec.routes\[1\].route\[0\].destination: weight -1 must be a whole number >= 0"),
    (("port: {number: 20880}", "port: {number: 70000}"), r"spec.routes\[1\].route\[1\].destination.port: 70000 is not a port number"),
    (("mirrorPercentage: {value: 25}", "mirrorPercentage: {value: 250}"), r"mirrorPercentage.value: 250 must be between 0 and 100"),
    (("fillInterval: 10s", "fillInterval: soon"), r"conditions\[0\].tokenBucket.fillInterval: 'soon' must be a duration"),
    (("maxTokens: 2,", "maxTokens: 0,"), r"conditions\[0\].tokenBucket.maxTokens: 0 must be a whole number >= 1"),
])
def test_bad_metarouters_name_the_field(change, error):
    with pytest.raises(MetaRouterError, match=error):
        load_metarouter(ROUTER.replace(*change))

"""Checks for lab 08 (writing the routes): the reader's HTTPRoutes, loaded beside the platform team's
Gateway and Services, translated, and asked the policy's requests.

Each check first reads the route's status (a route the Gateway does not accept serves nothing, and the
condition's reason says why), then sends the requests that tell a right route from the usual wrong
ones and names the first that gets the wrong answer, with the reason it usually has. Where Envoy
Gateway's ``egctl`` is built (the upstream stage), the same YAML goes through its translator too and
every request must get the same answer from both (``meshlab.upstream.egctl_compare``).

    PLATFORM        the platform team's GatewayClass, Gateway and Services
    MISTAKES        the wrong answers the checks recognise: a route not served, and each request answered wrongly
    check_canary    exercise 1: a canary by header
    check_split     exercise 2: 90/10 by weight
    check_redirect  exercise 3: a permanent redirect keeping the rest of the path
    check_together  the three routes at once
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from meshlab.check import CheckFailed, Mistake, answer_of
from meshlab.gateway import GatewayAPIError, Request, load, match, translate
from meshlab.gateway.match import Decision

HOST = "shop.example.com"
GATEWAY = "infra/shop"
PLATFORM = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: eg}
spec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: shop, namespace: infra}
spec:
  gatewayClassName: eg
  listeners:
  - name: http
    protocol: HTTP
    port: 80
    hostname: shop.example.com
    allowedRoutes: {namespaces: {from: All}}
"""
SERVICES = ("catalog", "catalog-canary", "checkout", "checkout-v2", "cart")
_SERVICE = "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: shop}}\nspec: {{clusterIP: 10.96.8.{i}, ports: [{{port: 8080}}]}}\n"
WORLD = PLATFORM + "".join(_SERVICE.format(name=name, i=i) for i, name in enumerate(SERVICES, start=1))


@dataclass(frozen=True)
class Expect:
    """A request, what the policy wants for it (Services and their shares, a redirect's status and
    path, or None for "not this route's business": no route), and the hint when it is not so."""

    request: Request
    wanted: object
    hint: str


def _canary(path: str, header: str | None = None) -> Request:
    return Request(HOST, path, headers={"x-canary": header} if header else {})


CANARY = (
    Expect(_canary("/catalog", "always"), {"shop/catalog-canary": 1},
           "a request with `x-canary: always` must reach catalog-canary: check the header's name and value (an Exact header match compares the whole value)"),
    Expect(_canary("/catalog/items/7", "always"), {"shop/catalog-canary": 1},
           "everything below /catalog counts too: a path match of type Exact takes only /catalog itself; PathPrefix takes what is below it"),
    Expect(_canary("/catalog"), {"shop/catalog": 1}, "requests without the header need a rule of their own, sending them to catalog"),
    Expect(_canary("/catalog/items/7"), {"shop/catalog": 1},
           "every request under /catalog without the header goes to catalog: PathPrefix, not Exact"),
    Expect(_canary("/catalog", "true"), {"shop/catalog": 1}, "only the value `always` selects the canary; another value is a plain request"),
    Expect(_canary("/catalogue", "always"), None,
           "/catalogue is not under /catalog: PathPrefix matches whole path segments, a regular expression or a bare prefix does not"),
    Expect(_canary("/checkout"), None, "this route answers only under /catalog"),
)
SPLIT = (
    Expect(Request(HOST, "/checkout"), {"shop/checkout": Fraction(9, 10), "shop/checkout-v2": Fraction(1, 10)},
           "/checkout goes 90% to checkout and 10% to checkout-v2: a weight is a share of the rule's total, so 90 and 10 (or 9 and 1)"),
    Expect(Request(HOST, "/checkout/pay", "POST"), {"shop/checkout": Fraction(9, 10), "shop/checkout-v2": Fraction(1, 10)},
           "everything under /checkout is split, every method: PathPrefix, and no method match"),
    Expect(Request(HOST, "/checkouts"), None, "/checkouts is not under /checkout: PathPrefix matches whole path segments"),
)
REDIRECT = (
    Expect(Request(HOST, "/basket/items/7"), (301, "/cart/items/7"),
           "the rest of the path is kept: ReplacePrefixMatch replaces the matched prefix, ReplaceFullPath the whole path; "
           "and a permanent redirect is 301 (RequestRedirect's statusCode defaults to 302)"),
    Expect(Request(HOST, "/basket"), (301, "/cart"), "/basket itself moves to /cart, with status 301"),
    Expect(Request(HOST, "/basketball"), None, "/basketball is not under /basket: PathPrefix matches whole path segments"),
)

REFUSED = Mistake("canary_route, split_route, redirect_route", "writes YAML the Gateway API refuses (e.g. a misspelt field)",
                  "the Gateway API refuses your YAML")
MISNAMED = Mistake("canary_route, split_route, redirect_route", "names the HTTPRoute otherwise, or puts it in another namespace",
                   "give it the name the exercise asks for (metadata.name) and put it in namespace shop")
NOT_ACCEPTED = Mistake("canary_route, split_route, redirect_route",
                       "a parentRef, hostname or backendRef that does not resolve: the route is not Accepted or not ResolvedRefs",
                       f"The Gateway is {GATEWAY} (parentRefs: name shop, namespace infra), for {HOST}; Services are in shop")


def _described(expect: Expect) -> str:
    headers = "".join(f" with {k}: {v}" for k, v in expect.request.headers.items())
    return f"{expect.request.method} {expect.request.path}{headers}: answered otherwise than {_show(expect.wanted)}"


def _request_mistakes() -> tuple[Mistake, ...]:
    """One row per hint: the first request that gets it (several requests share some hints)."""
    rows: dict[str, Mistake] = {}
    for exercise, expectations in (("canary_route", CANARY), ("split_route", SPLIT), ("redirect_route", REDIRECT)):
        for expect in expectations:
            rows.setdefault(expect.hint, Mistake(exercise, _described(expect), expect.hint))
    return tuple(rows.values())


def _got(decision: Decision) -> object:
    """What a Decision amounts to, in the terms of ``Expect.wanted``."""
    if decision.route is None:
        return None
    if decision.redirect is not None:
        return (decision.redirect["statusCode"], decision.redirect["path"])
    if decision.direct_response is not None:
        return f"direct response {decision.direct_response}"
    total = sum(backend.weight for backend in decision.backends)
    return {f"{b.namespace}/{b.name}": Fraction(b.weight, total) for b in decision.backends}


def _show(value: object) -> str:
    if value is None:
        return "no route (404)"
    if isinstance(value, tuple):
        return f"redirect {value[0]} to {value[1]}"
    if isinstance(value, dict):
        return ", ".join(f"{name} {share}" for name, share in value.items()) if len(value) > 1 else next(iter(value))
    return str(value)


MISTAKES = (REFUSED, MISNAMED, NOT_ACCEPTED, *_request_mistakes())


def _translated(routes: dict[str, str]):
    """The platform plus the reader's routes, translated; each route's status must say it is served."""
    text = WORLD + "".join(f"---\n{yaml.strip()}\n" for yaml in routes.values())
    try:
        translation = translate(load(text))
    except GatewayAPIError as error:
        raise CheckFailed(f"{REFUSED.hint}: {error}") from None
    for name in routes:
        found = [s for s in translation.statuses if s.kind == "HTTPRoute" and s.name == name and s.namespace == "shop"]
        if not found:
            elsewhere = sorted({s.namespace for s in translation.statuses if s.kind == "HTTPRoute" and s.name == name})
            where = f" (it is in namespace {', '.join(elsewhere)})" if elsewhere else ""
            raise CheckFailed(f"no HTTPRoute named {name!r} in namespace shop{where}: {MISNAMED.hint}")
        for status in found:
            for condition in status.conditions:
                if condition.status != "True":
                    raise CheckFailed(f"HTTPRoute shop/{name}: {condition.type} is False ({condition.reason}): {condition.message}. "
                                      f"{NOT_ACCEPTED.hint}")
    return translation, text


def _check(routes: dict[str, str], expectations: tuple[Expect, ...]) -> None:
    translation, text = _translated(routes)
    for expect in expectations:
        got = _got(match(translation, expect.request, port=80))
        if got != expect.wanted:
            headers = "".join(f" with {k}: {v}" for k, v in expect.request.headers.items())
            raise CheckFailed(f"{expect.request.method} {expect.request.path}{headers}: got {_show(got)}, wanted {_show(expect.wanted)}. "
                              f"{expect.hint}")
    _check_with_envoy_gateway(text, expectations)


def _check_with_envoy_gateway(text: str, expectations: tuple[Expect, ...]) -> None:
    """Where egctl is built, its translation must answer every request as meshlab's does."""
    from meshlab.upstream import build
    from meshlab.upstream.versions import PROGRAMS

    egctl = build.find(PROGRAMS["egctl"])
    if egctl is None:
        return
    from meshlab.upstream.egctl_compare import Probe, compare

    report = compare(egctl.path, text, [Probe(GATEWAY, 80, expect.request) for expect in expectations])
    if not report.agreed:
        raise CheckFailed(f"Envoy Gateway's translator answers differently: {report}")


def check_canary(canary_route: Callable[[], str]) -> None:
    _check({"catalog": answer_of(canary_route)}, CANARY)


def check_split(split_route: Callable[[], str]) -> None:
    _check({"checkout": answer_of(split_route)}, SPLIT)


def check_redirect(redirect_route: Callable[[], str]) -> None:
    _check({"basket": answer_of(redirect_route)}, REDIRECT)


def check_together(canary_route: Callable[[], str], split_route: Callable[[], str], redirect_route: Callable[[], str]) -> None:
    routes = {"catalog": answer_of(canary_route), "checkout": answer_of(split_route), "basket": answer_of(redirect_route)}
    # each policy's own "not my business" requests are another route's business now: keep the others
    _check(routes, tuple(expect for expect in CANARY + SPLIT + REDIRECT if expect.wanted is not None))

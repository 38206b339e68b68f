"""MetaRouter: Aeraki's routing for any MetaProtocol, on the metadata a codec extracted.

A MetaRouter (``metaprotocol.aeraki.io/v1alpha1``, fields as in Aeraki's metaprotocol_metarouter.proto)
lists routes; the first whose attribute matches all hold wins. A match on a key is ``exact``,
``prefix`` or ``regex`` (the whole value); a key given with no condition only has to be present. A
route sends to weighted destinations (``host``, ``subset``, ``port``; a lone destination weighs 100,
a missing weight among several is 0), may mirror a percentage of requests (all when no
``mirrorPercentage``), and may mutate requests and responses (key/values the codec writes back). A
local rate limit checks its conditions first (first match, its own bucket; a condition without a
match matches everything) and then the default bucket; without a default bucket, unmatched
requests are not limited.

    load_metarouter  YAML (or an already parsed dict) -> MetaRouter, errors naming the field
    MetaRouter       route(metadata) -> Decision
    Decision         the route taken, the destination, the mirror (if sampled), the mutation, or why not
    TokenBucket      max_tokens, tokens_per_fill, fill_interval; take() on a clock
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

API_VERSION = "metaprotocol.aeraki.io/v1alpha1"
MATCH_KINDS = ("exact", "prefix", "regex")  # and "present", for a key given without a condition


class MetaRouterError(ValueError):
    """A MetaRouter that cannot be used; the message names the field and what it accepts."""


@dataclass(frozen=True)
class AttributeMatch:
    key: str
    kind: str
    value: str
    pattern: re.Pattern | None = field(default=None, compare=False)

    def matches(self, metadata: dict[str, str]) -> bool:
        actual = metadata.get(self.key)
        if actual is None:
            return False
        if self.kind == "present":
            return True
        if self.kind == "exact":
            return actual == self.value
        if self.kind == "prefix":
            return actual.startswith(self.value)
        return self.pattern.fullmatch(actual) is not None


@dataclass(frozen=True)
class Destination:
    host: str
    subset: str = ""
    port: int | None = None
    weight: int = 100

    @property
    def cluster(self) -> str:
        """The name the proxy's endpoints are given under: ``host`` or ``host|subset``."""
        return f"{self.host}|{self.subset}" if self.subset else self.host


@dataclass(frozen=True)
class MetaRoute:
    name: str
    matches: tuple[AttributeMatch, ...]
    destinations: tuple[Destination, ...]
    mirror: Destination | None = None
    mirror_percentage: float = 100.0
    request_mutation: tuple[tuple[str, str], ...] = ()
    response_mutation: tuple[tuple[str, str], ...] = ()

    def applies(self, metadata: dict[str, str]) -> bool:
        return all(match.matches(metadata) for match in self.matches)


class TokenBucket:
    """Envoy's local rate limit bucket: starts full; every fill interval adds tokens up to the maximum."""

    def __init__(self, max_tokens: int, tokens_per_fill: int, fill_interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_tokens, self.tokens_per_fill, self.fill_interval_s, self.clock = max_tokens, tokens_per_fill, fill_interval_s, clock
        self.tokens, self.last_fill = max_tokens, clock()

    def take(self) -> bool:
        fills = int((self.clock() - self.last_fill) // self.fill_interval_s)
        if fills:
            self.tokens = min(self.max_tokens, self.tokens + fills * self.tokens_per_fill)
            self.last_fill += fills * self.fill_interval_s
        if self.tokens <= 0:
            return False
        self.tokens -= 1
        return True


@dataclass
class Decision:
    route: str | None
    destination: Destination | None = None
    mirror: Destination | None = None
    mutation: dict[str, str] = field(default_factory=dict)
    response_mutation: dict[str, str] = field(default_factory=dict)
    refused: str | None = None  # "rate limited" or "no route"


class MetaRouter:
    def __init__(self, hosts: list[str], routes: list[MetaRoute], rate_limit: tuple[TokenBucket | None, list[tuple[tuple[AttributeMatch, ...], TokenBucket]]] = (None, []),
                 rng: random.Random | None = None) -> None:
        self.hosts, self.routes = hosts, routes
        self.default_bucket, self.conditions = rate_limit
        self.rng = rng or random.Random()

    def _admitted(self, metadata: dict[str, str]) -> bool:
        for matches, bucket in self.conditions:
            if all(match.matches(metadata) for match in matches):
                return bucket.take()
        return self.default_bucket.take() if self.default_bucket else True

    def route(self, metadata: dict[str, str]) -> Decision:
        if not self._admitted(metadata):
            return Decision(None, refused="rate limited")
        for route in self.routes:
            if route.applies(metadata):
                pick = self.rng.uniform(0, sum(d.weight for d in route.destinations))
                destination = next((d for d in route.destinations if (pick := pick - d.weight) < 0), route.destinations[-1])
                mirrored = route.mirror if route.mirror and self.rng.uniform(0, 100) < route.mirror_percentage else None
                return Decision(route.name, destination, mirrored, dict(route.request_mutation), dict(route.response_mutation))
        return Decision(None, refused="no route")


# -- loading -----------------------------------------------------------------------------------------
def _matches(spec: object, where: str) -> tuple[AttributeMatch, ...]:
    if spec is None:
        return ()
    if not isinstance(spec, dict) or set(spec) - {"attributes"}:
        raise MetaRouterError(f"{where}: a match is {{attributes: {{KEY: {{exact|prefix|regex: VALUE}}}}}}")
    found = []
    for key, condition in (spec.get("attributes") or {}).items():
        if not condition:
            found.append(AttributeMatch(str(key), "present", ""))
            continue
        if not isinstance(condition, dict) or len(condition) != 1 or next(iter(condition)) not in MATCH_KINDS:
            raise MetaRouterError(f"{where}.attributes.{key}: give exactly one of {', '.join(MATCH_KINDS)} (or nothing, to require its presence)")
        kind, value = next(iter(condition.items()))
        pattern = None
        if kind == "regex":
            try:
                pattern = re.compile(str(value))
            except re.error as error:
                raise MetaRouterError(f"{where}.attributes.{key}.regex: {error}") from None
        found.append(AttributeMatch(str(key), kind, str(value), pattern))
    return tuple(found)


def _destination(spec: object, where: str, weight: object = 100) -> Destination:
    if not isinstance(spec, dict) or not isinstance(spec.get("host"), str) or not spec["host"]:
        raise MetaRouterError(f"{where}: a destination needs a host")
    port = spec.get("port", {}).get("number") if isinstance(spec.get("port"), dict) else spec.get("port")
    if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
        raise MetaRouterError(f"{where}.port: {port!r} is not a port number (1-65535)")
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
        raise MetaRouterError(f"{where}: weight {weight!r} must be a whole number >= 0")
    return Destination(spec["host"], str(spec.get("subset", "")), port, weight)


def _key_values(spec: object, where: str) -> tuple[tuple[str, str], ...]:
    if spec is None:
        return ()
    if not isinstance(spec, list) or not all(isinstance(m, dict) and {"key", "value"} <= set(m) for m in spec):
        raise MetaRouterError(f"{where}: a list of {{key, value}}")
    return tuple((str(m["key"]), str(m["value"])) for m in spec)


def _bucket(spec: object, where: str, clock: Callable[[], float]) -> TokenBucket:
    if not isinstance(spec, dict):
        raise MetaRouterError(f"{where}: a tokenBucket is {{maxTokens, tokensPerFill, fillInterval}}")
    values = {}
    for name in ("maxTokens", "tokensPerFill"):
        value = spec.get(name, 1 if name == "tokensPerFill" else None)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MetaRouterError(f"{where}.{name}: {value!r} must be a whole number >= 1")
        values[name] = value
    interval = spec.get("fillInterval")
    matched = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", str(interval))
    if not matched or float(matched[1]) <= 0:
        raise MetaRouterError(f"{where}.fillInterval: {interval!r} must be a duration such as 1s, 500ms or 1m")
    seconds = float(matched[1]) * {"ms": 0.001, "s": 1, "m": 60}[matched[2]]
    return TokenBucket(values["maxTokens"], values["tokensPerFill"], seconds, clock)


def load_metarouter(source: str | dict, rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic) -> MetaRouter:
    """A MetaRouter from its YAML (or the parsed document); every problem names the field."""
    try:
        document = yaml.safe_load(source) if isinstance(source, str) else source
    except yaml.YAMLError as error:
        raise MetaRouterError(f"not YAML: {error}") from None
    if not isinstance(document, dict) or document.get("kind") != "MetaRouter" or document.get("apiVersion") != API_VERSION:
        raise MetaRouterError(f"expected apiVersion: {API_VERSION} and kind: MetaRouter")
    spec = document.get("spec") or {}
    hosts = spec.get("hosts")
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
        raise MetaRouterError("spec.hosts: a non-empty list of host names")
    routes = []
    for index, item in enumerate(spec.get("routes") or []):
        where = f"spec.routes[{index}]"
        if not isinstance(item, dict):
            raise MetaRouterError(f"{where}: a route is an object")
        targets = item.get("route")
        if not isinstance(targets, list) or not targets:
            raise MetaRouterError(f"{where}.route: a non-empty list of {{destination, weight}}")
        lone = 100 if len(targets) == 1 else 0
        destinations = tuple(_destination(t.get("destination") if isinstance(t, dict) else None, f"{where}.route[{i}].destination",
                                          t.get("weight", lone) if isinstance(t, dict) else lone) for i, t in enumerate(targets))
        if sum(d.weight for d in destinations) <= 0:
            raise MetaRouterError(f"{where}.route: the weights add up to 0")
        mirror = _destination(item["mirror"], f"{where}.mirror") if item.get("mirror") else None
        percentage = (item.get("mirrorPercentage") or {}).get("value", 100.0)
        if not isinstance(percentage, (int, float)) or not 0 <= percentage <= 100:
            raise MetaRouterError(f"{where}.mirrorPercentage.value: {percentage!r} must be between 0 and 100")
        mutations = [_key_values(item.get(name), f"{where}.{name}") for name in ("requestMutation", "responseMutation")]
        routes.append(MetaRoute(str(item.get("name", f"route-{index}")), _matches(item.get("match"), f"{where}.match"), destinations,
                                mirror, float(percentage), *mutations))
    if not routes:
        raise MetaRouterError("spec.routes: at least one route")
    limit = spec.get("localRateLimit")
    rate_limit: tuple = (None, [])
    if limit:
        default = _bucket(limit["tokenBucket"], "spec.localRateLimit.tokenBucket", clock) if limit.get("tokenBucket") else None
        conditions = [(_matches(c.get("match"), f"spec.localRateLimit.conditions[{i}].match"),
                       _bucket(c.get("tokenBucket"), f"spec.localRateLimit.conditions[{i}].tokenBucket", clock)) for i, c in enumerate(limit.get("conditions") or [])]
        rate_limit = (default, conditions)
    return MetaRouter(hosts, routes, rate_limit, rng)

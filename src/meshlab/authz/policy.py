"""AuthorizationPolicy (security.istio.io/v1) read from its manifest and checked as istiod checks it.

A policy is a namespace, an optional ``selector``, an ``action`` and a list of ``rules``. A rule
matches when at least one ``from`` source, at least one ``to`` operation and every ``when``
condition match (an absent list matches anything); inside a source or an operation the fields are
ANDed; inside a field the values are ORed and the ``not...`` values must all miss
(istio/api v1.30.3, security/v1beta1/authorization_policy.proto). Istio folds each ``when`` condition
into every source or operation (pilot/pkg/security/authz/model/model.go), which is the same AND.

Validation follows istiod's webhook (pkg/config/validation/validation.go, ValidateAuthorizationPolicy,
and pkg/config/security/security.go, Istio 1.30.3) for everything this model evaluates; its messages
start like istiod's, ``invalid policy NAME.NAMESPACE:``. Unknown fields are refused as the CRD's
structural schema refuses them.

    PolicyInvalid        a manifest istiod would reject, or one this model does not evaluate
    FieldMatch           one field's values and notValues, under the attribute they match
    Rule                 sources, operations and conditions, each a tuple of FieldMatch conjunctions
    AuthorizationPolicy  name, namespace, selector, action, provider, rules; applies_to(workload)
    load                 policies from YAML text, a manifest dict, or a list of them
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from meshlab.authz.match import WHEN_KEYS, bracketed
from meshlab.authz.request import Workload

ACTIONS = ("ALLOW", "DENY", "AUDIT", "CUSTOM")
API_VERSIONS = ("security.istio.io/v1", "security.istio.io/v1beta1")
#: Istio's default root namespace: a policy there applies to every namespace.
ROOT_NAMESPACE = "istio-system"

#: Source fields and the attribute each matches (authorization_policy.proto, message Source).
SOURCE_FIELDS = {"principals": "source.principal", "requestPrincipals": "request.auth.principal", "namespaces": "source.namespace",
                 "serviceAccounts": "source.serviceAccount", "ipBlocks": "source.ip", "remoteIpBlocks": "remote.ip",
                 "trustDomains": "source.trustDomain"}
#: Operation fields and the attribute each matches (message Operation).
OPERATION_FIELDS = {"hosts": "request.host", "ports": "destination.port", "methods": "request.method", "paths": "request.url_path"}
SPEC_FIELDS = ("selector", "targetRef", "targetRefs", "rules", "action", "provider")
RULE_FIELDS = ("from", "to", "when")
CONDITION_FIELDS = ("key", "values", "notValues")
#: ``when`` keys istiod refuses with a reason of its own (security.go, ValidateAttribute).
RETIRED_KEYS = {"destination.namespace": "is replaced by the metadata.namespace", "destination.name": "is only supported in v1alpha1",
                "destination.user": "is only supported in v1alpha1"}
#: CUSTOM rules cannot match these, nor ``request.auth.*`` (validation.go: "currently not supported with CUSTOM action").
IDENTITY_ATTRIBUTES = ("source.namespace", "source.serviceAccount", "source.trustDomain", "source.principal")


class PolicyInvalid(ValueError):
    """A manifest istiod would reject, or one this model does not evaluate; the message says which field."""


@dataclass(frozen=True)
class FieldMatch:
    """One field of a source, operation or condition: any of ``values`` (when given) and none of ``not_values``."""

    attribute: str
    values: tuple[str, ...]
    not_values: tuple[str, ...]


Conjunction = tuple[FieldMatch, ...]


@dataclass(frozen=True)
class Rule:
    sources: tuple[Conjunction, ...] | None  # None: no ``from``, any source
    operations: tuple[Conjunction, ...] | None  # None: no ``to``, any operation
    conditions: Conjunction

    def field_matches(self) -> list[FieldMatch]:
        return [f for group in (self.sources or ()) + (self.operations or ()) for f in group] + list(self.conditions)


@dataclass(frozen=True)
class AuthorizationPolicy:
    name: str
    namespace: str
    action: str
    rules: tuple[Rule, ...]
    match_labels: tuple[tuple[str, str], ...] = ()
    provider: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def applies_to(self, workload: Workload, root_namespace: str = ROOT_NAMESPACE) -> bool:
        """Same namespace (or the root namespace), and every selector label on the workload."""
        if self.namespace not in (workload.namespace, root_namespace):
            return False
        return all(workload.labels.get(key) == value for key, value in self.match_labels)


def load(source: str | Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[AuthorizationPolicy]:
    """Policies from YAML text (several documents allowed), one manifest, or a list of manifests."""
    if isinstance(source, str):
        try:
            manifests = [doc for doc in yaml.safe_load_all(source) if doc is not None]
        except yaml.YAMLError as error:
            raise PolicyInvalid(f"not valid YAML: {error}") from None
    elif isinstance(source, Mapping):
        manifests = [source]
    else:
        manifests = list(source)
    if not manifests:
        raise PolicyInvalid("no AuthorizationPolicy manifests given")
    return [_parse(manifest) for manifest in manifests]


def _parse(manifest: Mapping[str, Any]) -> AuthorizationPolicy:
    if not isinstance(manifest, Mapping):
        raise PolicyInvalid(f"a manifest is a mapping with apiVersion, kind, metadata and spec, not {type(manifest).__name__}")
    if manifest.get("kind") != "AuthorizationPolicy" or manifest.get("apiVersion") not in API_VERSIONS:
        raise PolicyInvalid(f"expected kind AuthorizationPolicy with apiVersion {' or '.join(API_VERSIONS)}, "
                            f"got {manifest.get('kind')!r} {manifest.get('apiVersion')!r}")
    metadata = manifest.get("metadata") or {}
    name, namespace = metadata.get("name"), metadata.get("namespace", "default")
    if not name:
        raise PolicyInvalid("metadata.name is required")
    where = f"invalid policy {name}.{namespace}:"
    if str((metadata.get("annotations") or {}).get("istio.io/dry-run", "false")).lower() == "true":
        raise PolicyInvalid(f"{where} istio.io/dry-run policies are only logged by Envoy (shadow rules); this model evaluates enforced policies")
    spec = manifest.get("spec") or {}
    _known(spec, SPEC_FIELDS, "spec", where)
    if "targetRef" in spec or "targetRefs" in spec:
        raise PolicyInvalid(f"{where} targetRefs attach a policy to a Gateway, waypoint or ServiceEntry; this model evaluates "
                            "sidecar enforcement, so use selector")
    action = spec.get("action", "ALLOW")
    if action not in ACTIONS:
        raise PolicyInvalid(f"{where} action {action!r} is not one of {', '.join(ACTIONS)}")
    raw_rules = spec.get("rules")
    if "provider" in spec:
        _known(spec["provider"], ("name",), "provider", where)
    provider = (spec.get("provider") or {}).get("name")
    if action == "CUSTOM":
        if raw_rules is None:
            raise PolicyInvalid(f"{where} CUSTOM action without `rules` is meaningless as it will never be triggered, "
                                "add an empty rule `{}` if you want it be triggered for every request")
        if not provider:
            raise PolicyInvalid(f"{where} `provider.name` must not be empty")
    elif "provider" in spec:
        raise PolicyInvalid(f"{where} `provider` must not be with non CUSTOM action, found {action}")
    if action == "DENY" and raw_rules is None:
        raise PolicyInvalid(f"{where} DENY action without `rules` is meaningless as it will never be triggered, "
                            "add an empty rule `{}` if you want it be triggered for every request")
    selector = spec.get("selector") or {}
    _known(selector, ("matchLabels",), "selector", where)
    labels = tuple(sorted((selector.get("matchLabels") or {}).items()))
    rules = tuple(_rule(raw, index, action, namespace, where) for index, raw in enumerate(raw_rules or []))
    return AuthorizationPolicy(name, namespace, action, rules, labels, provider)


def _known(mapping: Any, accepted: Iterable[str], what: str, where: str) -> None:
    accepted = tuple(accepted)
    if not isinstance(mapping, Mapping):
        raise PolicyInvalid(f"{where} {what} must be a mapping, not {type(mapping).__name__}")
    unknown = sorted(set(mapping) - set(accepted))
    if unknown:
        raise PolicyInvalid(f"{where} unknown field {unknown[0]!r} in {what}; accepted: {', '.join(accepted)}")


def _values(raw: Any, field: str, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(value, str) for value in raw):
        raise PolicyInvalid(f"{where} {field} must be a list of strings, not {raw!r}")
    if any(value == "" for value in raw):
        raise PolicyInvalid(f"{where} empty value not allowed, found in {field[0].upper()}{field[1:]}")
    return tuple(raw)


def _check_values(attribute: str, values: tuple[str, ...], field: str, where: str) -> None:
    """The value formats istiod checks: IPs and CIDRs, ports, service accounts, trust domains, paths."""
    for value in values:
        if attribute in ("source.ip", "remote.ip", "destination.ip"):
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise PolicyInvalid(f"{where} bad IP address or CIDR range ({value}) in {field}") from None
        elif attribute == "destination.port":
            if not value.isdigit() or int(value) > 65535:
                raise PolicyInvalid(f"{where} bad port ({value}) in {field}")
        elif attribute == "source.serviceAccount":
            if "*" in value:
                raise PolicyInvalid(f"{where} wildcard not allowed, found in {field}")
            if value.count("/") > 1 or value.startswith("/") or value.endswith("/"):
                raise PolicyInvalid(f"{where} expected format 'serviceAccount' or 'namespace/serviceAccount', found {value!r} in {field}")
        elif attribute == "source.trustDomain":
            stars = value.count("*")
            if stars > 1 or (stars == 1 and value != "*" and not value.startswith("*") and not value.endswith("*")):
                raise PolicyInvalid(f"{where} wildcard is only allowed once, at the start or end, found in {field}: {value!r}")
            if "/" in value:
                raise PolicyInvalid(f"{where} trust domain must not contain '/', found in {field}: {value!r}")
        elif attribute == "request.url_path" and ("{*}" in value or "{**}" in value):
            raise PolicyInvalid(f"{where} {value!r} is an Envoy URI template ({{*}}, {{**}}); this model matches exact, "
                                "prefix, suffix and presence paths only")


def _field_matches(raw: Mapping[str, Any], fields: Mapping[str, str], what: str, index: int, where: str) -> Conjunction:
    accepted = [name for field in fields for name in (field, "not" + field[0].upper() + field[1:])]
    _known(raw, accepted, what, where)
    if not raw:
        raise PolicyInvalid(f"{where} `{what}` must not be empty, found at rule {index}")
    matches = []
    for field, attribute in fields.items():
        negated = "not" + field[0].upper() + field[1:]
        values = _values(raw[field], field, where) if field in raw else ()
        not_values = _values(raw[negated], negated, where) if negated in raw else ()
        _check_values(attribute, values, field, where)
        _check_values(attribute, not_values, negated, where)
        if values or not_values:
            matches.append(FieldMatch(attribute, values, not_values))
    return tuple(matches)


def _entries(raw: Any, key: str, inner: str, fields: Mapping[str, str], index: int, where: str) -> tuple[Conjunction, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise PolicyInvalid(f"{where} `{key}` must not be empty, found at rule {index}")
    entries = []
    for entry in raw:
        _known(entry, (inner,), key, where)
        if entry.get(inner) is None:
            raise PolicyInvalid(f"{where} `{key}.{inner}` must not be nil, found at rule {index}")
        entries.append(_field_matches(entry[inner], fields, f"{key}.{inner}", index, where))
    return tuple(entries)


def _condition(raw: Any, index: int, where: str) -> FieldMatch:
    _known(raw, CONDITION_FIELDS, "when", where)
    key = raw.get("key") or ""
    if not key:
        raise PolicyInvalid(f"{where} `key` must not be empty")
    values = _values(raw["values"], "values", where) if "values" in raw else ()
    not_values = _values(raw["notValues"], "notValues", where) if "notValues" in raw else ()
    if not values and not not_values:
        raise PolicyInvalid(f"{where} at least one of `values` or `notValues` must be set for key {key}")
    if key in RETIRED_KEYS or key.startswith("destination.labels"):
        reason = RETIRED_KEYS.get(key, "is replaced by the workload selector")
        raise PolicyInvalid(f"{where} invalid `value` for `key` {key}: attribute {key} {reason}")
    if key.startswith("experimental.envoy.filters."):
        raise PolicyInvalid(f"{where} {key} matches Envoy filter metadata, which this model does not have")
    known = next((k for k in WHEN_KEYS if key == k or (k.endswith("[") and key.startswith(k))), None)
    if known is None:
        raise PolicyInvalid(f"{where} invalid `value` for `key` {key}: unknown attribute: {key}; "
                            f"accepted: {', '.join(k + 'NAME]' if k.endswith('[') else k for k in WHEN_KEYS)}")
    if known.endswith("["):  # request.headers[x and the like are refused here, as istiod does, not when evaluated
        try:
            bracketed(key, known[:-1])
        except ValueError as error:
            raise PolicyInvalid(f"{where} {error}") from None
    for field, given in (("values", values), ("notValues", not_values)):
        _check_values(key, given, f"{field} of {key}", where)
    return FieldMatch(key, values, not_values)


def _rule(raw: Any, index: int, action: str, namespace: str, where: str) -> Rule:
    if raw is None:
        raise PolicyInvalid(f"{where} `rule` must not be nil, found at rule {index}")
    _known(raw, RULE_FIELDS, f"rule {index}", where)
    sources = _entries(raw.get("from"), "from", "source", SOURCE_FIELDS, index, where)
    operations = _entries(raw.get("to"), "to", "operation", OPERATION_FIELDS, index, where)
    when = raw.get("when") or []
    if not isinstance(when, list):
        raise PolicyInvalid(f"{where} `when` must be a list of conditions, found at rule {index}")
    conditions = tuple(_condition(condition, index, where) for condition in when)
    for source in sources or ():
        attributes = {match.attribute for match in source}
        if "source.serviceAccount" in attributes and attributes & {"source.principal", "source.namespace"}:
            raise PolicyInvalid(f"{where} cannot set serviceAccounts with namespaces or principals, found at rule {index}")
    if action == "CUSTOM":
        for match in [m for source in sources or () for m in source] + list(conditions):
            if match.attribute in IDENTITY_ATTRIBUTES or match.attribute.startswith("request.auth."):
                raise PolicyInvalid(f"{where} {match.attribute} is currently not supported with CUSTOM action")
    return Rule(sources, operations, conditions)

"""Validation of a document by its CustomResourceDefinition, as a Kubernetes API server does it.

The API server decodes an object, fills in the schema's defaults, checks it against the version's
openAPIV3Schema (types, enums, limits, patterns, required fields; with strict field validation, the
kubectl default since Kubernetes 1.27, an unknown field is an error), checks list-type map and set
uniqueness, and then evaluates the CEL rules (x-kubernetes-validations) with ``self`` bound to each
node. Here the schema is checked by ``jsonschema`` and the CEL rules by ``cel-python`` (celpy), with
the few Kubernetes CEL library functions the Gateway API's CRDs call (``isIP``, ``split``) added and
field names that are CEL reserved words reachable as ``__name__``, as Kubernetes escapes them
(apiextensions-apiserver pkg/apiserver/schema/cel/model/escaping.go). Rules on ``oldSelf``
(transition rules) need a previous object and are skipped.

    validate        CRD + document -> the problems, as (field path, message), in the server's order
    with_defaults   a copy of a value with the schema's defaults filled in
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
from collections.abc import Iterator, Mapping
from typing import Any

import celpy
import jsonschema
from celpy import celtypes

#: CEL reserved words (cel-spec langdef.md) a field may be named, reached in a rule as __word__.
CEL_RESERVED = ("as", "break", "const", "continue", "else", "false", "for", "function", "if", "import", "in", "let", "loop",
                "package", "namespace", "null", "return", "true", "var", "void", "while")


def validate(crd: Mapping, document: Mapping) -> list[tuple[str, str]]:
    """The problems the API server would report for ``document`` under ``crd``: schema errors
    first; CEL rules only when the schema holds (as the server skips them on an invalid object)."""
    schema = _version_schema(crd, str(document.get("apiVersion", "")))
    if schema is None:
        served = ", ".join(f"{crd['spec']['group']}/{v['name']}" for v in crd["spec"]["versions"] if v.get("served"))
        return [("apiVersion", f"{document.get('apiVersion')!r} is not served by the CRD; served: {served}")]
    value = with_defaults(schema, _pruned(document))
    problems = [(_path(error.absolute_path), error.message) for error in _validator(json.dumps(schema)).iter_errors(value)]
    problems += list(_duplicates(schema, value, ""))
    if problems:
        return sorted(problems)
    return list(_rules(schema, value, ""))


def with_defaults(schema: Mapping, value: Any) -> Any:
    """``value`` with the defaults of ``schema`` filled in where fields are absent, recursively
    (defaults themselves are defaulted), as structural-schema defaulting does."""
    value = copy.deepcopy(value)
    _default(schema, value)
    return value


def _default(schema: Mapping, value: Any) -> None:
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default(sub, value[key])
        if isinstance(schema.get("additionalProperties"), Mapping):
            for key in value:
                _default(schema["additionalProperties"], value[key])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default(schema["items"], item)


def _pruned(value: Any) -> Any:
    """Nulls dropped, as the server prunes them from non-nullable fields."""
    if isinstance(value, Mapping):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _version_schema(crd: Mapping, api_version: str) -> Mapping | None:
    group, _, version = api_version.partition("/")
    if group != crd["spec"]["group"]:
        return None
    for candidate in crd["spec"]["versions"]:
        if candidate["name"] == version and candidate.get("served"):
            return candidate["schema"]["openAPIV3Schema"]
    return None


@functools.lru_cache(maxsize=32)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    """A Draft 7 validator for a structural schema made strict: every object that lists its
    properties refuses others (unknown fields), except metadata, which the server checks apart."""
    strict = _strict(json.loads(schema_json), top=True)
    return jsonschema.Draft7Validator(strict)


def _strict(schema: Any, top: bool = False) -> Any:
    if not isinstance(schema, dict):
        return schema
    strict = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-") and k not in ("default", "format", "nullable")}
    if "properties" in schema:
        strict["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
            strict["additionalProperties"] = False
    if "items" in schema:
        strict["items"] = _strict(schema["items"])
    if schema.get("x-kubernetes-int-or-string"):
        strict["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        strict.pop("type", None)
    if top:
        strict["properties"]["metadata"] = {"type": "object"}
    return strict


def _duplicates(schema: Mapping, value: Any, path: str) -> Iterator[tuple[str, str]]:
    """x-kubernetes-list-type map (unique keys) and set (unique items), which JSON Schema does not check."""
    if isinstance(value, list):
        kind = schema.get("x-kubernetes-list-type")
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen: list[Any] = []
        for i, item in enumerate(value):
            key = tuple(item.get(k) for k in keys) if kind == "map" and isinstance(item, dict) else item if kind == "set" else None
            if kind in ("map", "set") and key in seen:
                yield f"{path}[{i}]", f"Duplicate value: {key if kind == 'set' else dict(zip(keys, key))}"
            seen.append(key)
            yield from _duplicates(schema.get("items", {}), item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                yield from _duplicates(sub, value[key], f"{path}.{key}" if path else key)


# --- CEL -------------------------------------------------------------------------------------------

def _rules(schema: Mapping, value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Each x-kubernetes-validations rule evaluated on its node, depth first."""
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"]:
            continue
        try:
            result = _program(rule["rule"]).evaluate({"self": celpy.json_to_cel(_escaped(value))})
        except celpy.CELEvalError as error:
            result = error
        if result is not True and result != celtypes.BoolType(True):
            detail = f" (CEL evaluation error: {result})" if isinstance(result, Exception) else ""
            yield path, rule.get("message") or f"failed rule: {rule['rule']}" + detail
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                yield from _rules(sub, value[key], f"{path}.{key}" if path else key)
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key, item in value.items():
                yield from _rules(extra, item, f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from _rules(schema["items"], item, f"{path}[{i}]")


def _escaped(value: Any) -> Any:
    """Maps whose keys are CEL reserved words also carry them as __word__, as Kubernetes names them in rules."""
    if isinstance(value, dict):
        escaped = {k: _escaped(v) for k, v in value.items()}
        escaped.update({f"__{k}__": escaped[k] for k in value if k in CEL_RESERVED})
        return escaped
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def _is_ip(text: Any) -> celtypes.BoolType:
    """Kubernetes' CEL ``isIP`` (k8s.io/apiserver/pkg/cel/library/ip.go): an IPv4 or IPv6 address, no zone."""
    try:
        ipaddress.ip_address(str(text))
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType("%" not in str(text))


def _split(text: Any, separator: Any) -> celtypes.ListType:
    """cel-go's strings extension ``split`` (ext/strings.go), which Kubernetes' CEL environment includes."""
    return celtypes.ListType([celtypes.StringType(part) for part in str(text).split(str(separator))])


@functools.lru_cache(maxsize=1024)
def _program(rule: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule), functions={"isIP": _is_ip, "split": _split})


def _path(parts: Any) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path

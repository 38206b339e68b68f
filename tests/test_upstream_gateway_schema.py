"""meshlab's own parse refuses what the Gateway API's CRDs refuse, so the two cannot drift.

The CRDs and the documented examples come from the Gateway API module in Go's module cache
(sigs.k8s.io/gateway-api v1.6.1, read through meshlab.upstream.gatewayapi). The corpus: every
standard example of a kind meshlab reads (all valid), and from each, documents made invalid by
walking its CRD's openAPIV3Schema: every enum, limit, length, item count, pattern, type and
required field meshlab models gets a value on the wrong side of it, and every object an unknown
field. For each, ``meshlab.gateway.schema.validate`` (the CRD's schema and CEL rules) and
``meshlab.gateway.load`` without CRDs must agree, and meshlab must name the field. The CEL rules
are checked on hand-made documents, one rule each, message for message. Where egctl is built, the
CRD validation itself is checked against Envoy Gateway's (egctl runs Kubernetes' own validators on
its input, internal/gatewayapi/resource/load.go).
"""

from __future__ import annotations

import copy
import functools
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from upstream_programs import program_path

from meshlab.gateway import GatewayAPIError, load
from meshlab.gateway.fields import model_fields
from meshlab.gateway.resources import KINDS
from meshlab.gateway.schema import validate
from meshlab.upstream import gatewayapi

pytestmark = pytest.mark.upstream


@functools.cache
def crds() -> dict:
    return gatewayapi.crds()


@functools.cache
def examples() -> list[dict]:
    """The standard examples' documents of the kinds and versions meshlab reads."""
    found = []
    for path in gatewayapi.examples():
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and (document.get("apiVersion"), document.get("kind")) in KINDS and document["kind"] in crds():
                found.append(document)
    return found


def test_every_standard_example_passes_both_its_crd_and_meshlab():
    assert len(examples()) > 60
    for document in examples():
        assert validate(crds()[document["kind"]], document) == [], document["metadata"]["name"]
        load(yaml.safe_dump(document))


def test_load_with_the_crds_also_checks_the_fields_meshlab_accepts_without_modelling_them():
    """meshlab's own parse restates the CRDs for what it models; a field it only notes (a rule's
    timeouts) is checked by the CRD's schema when the CRDs are given."""
    bad = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n  - timeouts: {request: forever}\n"
    assert "timeouts is not modelled" in load(bad).notes[0]
    with pytest.raises(GatewayAPIError, match=r"HTTPRoute default/r: spec.rules\[0\].timeouts.request: 'forever' does not match .* \(the HTTPRoute CRD's schema\)"):
        load(bad, crds=crds())


# --- mutations from the schema ---------------------------------------------------------------------

def _schema(document: dict) -> dict:
    version = document["apiVersion"].split("/")[1]
    crd = crds()[document["kind"]]
    return next(v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v["name"] == version)


def _modelled(document: dict, keys: list) -> bool:
    """Whether meshlab's model reads the field at ``keys`` (not inside a field it accepts unmodelled)."""
    cls = KINDS[document["apiVersion"], document["kind"]]
    for key in keys:
        if isinstance(key, int):
            continue
        fields = {name: hint for _, name, hint, _ in model_fields(cls)}
        if key not in fields:
            return False
        hint = fields[key]
        for candidate in (*getattr(hint, "__args__", ()), hint):
            inner = getattr(candidate, "__args__", (candidate,))[0] if getattr(candidate, "__origin__", None) is tuple else candidate
            if hasattr(inner, "__dataclass_fields__"):
                cls = inner
                break
        else:
            cls = None  # a scalar, a map or a list of scalars: nothing below it to model
    return True


def _path(keys: list) -> str:
    return "".join(f"[{k}]" if isinstance(k, int) else (f".{k}" if i else k) for i, k in enumerate(keys))


def _mutations(schema: dict, value, keys: list):
    """(keys of the field to change, new value or REMOVE, what was broken) for one node, then its children."""
    kind = schema.get("type")
    if kind == "object" and isinstance(value, dict) and "properties" in schema:
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            yield keys + ["meshlabUnknownField"], "x", "an unknown field"
        for required in schema.get("required", []):
            if required in value:
                yield keys + [required], REMOVE, "a required field left out"
        for key, sub in schema["properties"].items():
            if key in value:
                yield from _mutations(sub, value[key], keys + [key])
    elif kind == "array" and isinstance(value, list):
        if "maxItems" in schema and value:
            yield keys, [copy.deepcopy(value[-1]) for _ in range(schema["maxItems"] + 1)], "one item over maxItems"
        if schema.get("minItems", 0) >= 1:
            yield keys, [], "fewer items than minItems"
        yield keys, "not a list", "a string for a list"
        for i, item in enumerate(value[:1]):
            yield from _mutations(schema.get("items", {}), item, keys + [i])
    elif kind == "string" and isinstance(value, str):
        if "enum" in schema:
            yield keys, "NotInTheEnum", "a value off the enum"
        if "pattern" in schema:
            yield keys, "Not A Valid Value!", "a value off the pattern"
        if "maxLength" in schema:
            yield keys, "a" * (schema["maxLength"] + 1), "one character over maxLength"
        if schema.get("minLength", 0) >= 1:
            yield keys, "", "shorter than minLength"
        yield keys, 12345, "a number for a string"
    elif kind == "integer" and isinstance(value, int):
        if "maximum" in schema:
            yield keys, schema["maximum"] + 1, "one over the maximum"
        if "minimum" in schema:
            yield keys, schema["minimum"] - 1, "one under the minimum"
        if "enum" in schema:
            yield keys, 999, "a value off the enum"
        yield keys, "12", "a string for a number"


REMOVE = object()


def _mutated(document: dict, keys: list, new) -> dict:
    changed = copy.deepcopy(document)
    parent = changed
    for key in keys[:-1]:
        parent = parent[key]
    if new is REMOVE:
        del parent[keys[-1]]
    else:
        parent[keys[-1]] = new
    return changed


@functools.cache
def corpus() -> list[tuple[str, dict, str, str]]:
    """(case, document, field path, what was broken), one per kind, field (indices aside) and breakage."""
    seen, found = set(), []
    for document in examples():
        spec = document.get("spec")
        if not isinstance(spec, dict):
            continue
        for keys, new, broken in _mutations(_schema(document)["properties"]["spec"], spec, ["spec"]):
            key = (document["kind"], _path([k if isinstance(k, str) else 0 for k in keys]), broken)
            if key in seen or not _modelled(document, keys[:-1] if broken == "an unknown field" else keys):
                continue
            seen.add(key)
            found.append((f"{document['kind']} {key[1]}: {broken}", _mutated(document, keys, new), _path(keys), broken))
    return found


def test_the_mutated_corpus_covers_the_modelled_constraints():
    broken = {case[3] for case in corpus()}
    assert len(corpus()) > 250
    assert broken >= {"an unknown field", "a required field left out", "one item over maxItems", "a value off the enum", "a value off the pattern",
                      "one character over maxLength", "one over the maximum", "one under the minimum", "a number for a string"}


def test_meshlab_refuses_every_document_its_crd_refuses_and_names_the_field():
    disagreements = []
    for case, document, path, _ in corpus():
        refused_by_crd = bool(validate(crds()[document["kind"]], document))
        try:
            load(yaml.safe_dump(document))
            refused, where = False, None
        except GatewayAPIError as error:
            refused, where = True, error.path
        if refused != refused_by_crd:
            disagreements.append(f"{case}: CRD {'refuses' if refused_by_crd else 'accepts'}, meshlab {'refuses' if refused else 'accepts'}")
        elif refused and not (where == path or where.startswith(path + ".") or where.startswith(path + "[") or path.startswith(where)):
            disagreements.append(f"{case}: meshlab names {where}, not {path}")
    assert disagreements == []


# --- CEL rules, message for message ----------------------------------------------------------------

def _doc(kind: str, spec: str) -> dict:
    return yaml.safe_load(f"apiVersion: gateway.networking.k8s.io/v1\nkind: {kind}\nmetadata: {{name: x, namespace: default}}\nspec:\n{spec}")


RULE = "  rules:\n  - "
CEL = [
    ("HTTPRoute", RULE + "matches: [{path: {type: PathPrefix, value: api}}]\n", "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"),
    ("HTTPRoute", RULE + "matches: [{path: {type: Exact, value: '/a/../b'}}]\n", "must not contain '/../' when type one of ['Exact', 'PathPrefix']"),
    ("HTTPRoute", RULE + "matches: [{path: {type: Exact, value: '/a/.'}}]\n", "must not end with '/.' when type one of ['Exact', 'PathPrefix']"),
    ("HTTPRoute", RULE + "matches: [{path: {type: Exact, value: '/a b'}}]\n", "must only contain valid characters"),
    ("HTTPRoute", RULE + "filters: [{type: URLRewrite}]\n", "filter.urlRewrite must be specified for URLRewrite filter.type"),
    ("HTTPRoute", RULE + "filters: [{type: RequestHeaderModifier, urlRewrite: {hostname: a.b}, requestHeaderModifier: {}}]\n",
     "filter.urlRewrite must be nil if the filter.type is not URLRewrite"),
    ("HTTPRoute", RULE + "filters: [{type: RequestHeaderModifier, requestHeaderModifier: {}}, {type: RequestHeaderModifier, requestHeaderModifier: {}}]\n",
     "RequestHeaderModifier filter cannot be repeated"),
    ("HTTPRoute", RULE + "filters: [{type: RequestRedirect, requestRedirect: {}}, {type: URLRewrite, urlRewrite: {}}]\n",
     "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both"),
    ("HTTPRoute", RULE + "filters: [{type: RequestRedirect, requestRedirect: {}}]\n    backendRefs: [{name: a, port: 80}]\n",
     "RequestRedirect filter must not be used together with backendRefs"),
    ("HTTPRoute", RULE + "matches: [{path: {type: Exact, value: /a}}]\n    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]\n",
     "When using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified"),
    ("HTTPRoute", RULE + "filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath}}}]\n",
     "replaceFullPath must be specified when type is set to 'ReplaceFullPath'"),
    ("HTTPRoute", RULE + "filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /b, replacePrefixMatch: /a}}}]\n",
     "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set"),
    ("HTTPRoute", RULE + "filters: [{type: RequestMirror, requestMirror: {backendRef: {name: a, port: 80}, percent: 5, fraction: {numerator: 1}}}]\n    backendRefs: [{name: a, port: 80}]\n",
     "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter"),
    ("HTTPRoute", RULE + "filters: [{type: RequestMirror, requestMirror: {backendRef: {name: a, port: 80}, fraction: {numerator: 5, denominator: 2}}}]\n    backendRefs: [{name: a, port: 80}]\n",
     "numerator must be less than or equal to denominator"),
    ("HTTPRoute", RULE + "backendRefs: [{name: a}]\n", "Must have port for Service reference"),
    ("HTTPRoute", "  parentRefs: [{name: eg}, {name: eg}]\n", "sectionName must be unique when parentRefs includes 2 or more references to the same parent"),
    ("HTTPRoute", "  parentRefs: [{name: eg}, {name: eg, sectionName: a}]\n", "sectionName must be specified when parentRefs includes 2 or more references to the same parent"),
    ("HTTPRoute", "  rules:\n" + "".join("  - matches: [" + ", ".join(["{path: {value: /a}}"] * 60) + "]\n" for _ in range(3)),
     "the total number of matches across all rules in a route must be less than 128"),
    ("GRPCRoute", RULE + "matches: [{method: {type: Exact, service: 'a-b'}}]\n", "service must only contain valid characters"),
    ("GRPCRoute", RULE + "matches: [{method: {type: Exact, method: 'do-it'}}]\n", "method must only contain valid characters"),
    ("GRPCRoute", RULE + "matches: [{method: {type: RegularExpression}}]\n", "One or both of 'service' or 'method' must be specified"),
    ("Gateway", "  gatewayClassName: eg\n  listeners: [{name: a, protocol: HTTP, port: 80}, {name: b, protocol: HTTP, port: 80}]\n",
     "Combination of port, protocol and hostname must be unique for each listener"),
    ("Gateway", "  gatewayClassName: eg\n  listeners: [{name: a, protocol: TCP, port: 80, hostname: a.example.com}]\n",
     "hostname must not be specified for protocols ['TCP', 'UDP']"),
    ("Gateway", "  gatewayClassName: eg\n  listeners: [{name: a, protocol: HTTPS, port: 443, tls: {mode: Passthrough}}]\n",
     "tls mode must be Terminate for protocol HTTPS"),
    ("Gateway", "  gatewayClassName: eg\n  listeners: [{name: a, protocol: TLS, port: 443}]\n", "tls mode must be set for protocol TLS"),
    ("Gateway", "  gatewayClassName: eg\n  listeners: [{name: a, protocol: HTTPS, port: 443, tls: {mode: Terminate}}]\n",
     "certificateRefs or options must be specified when mode is Terminate"),
]


@pytest.mark.parametrize(("kind", "spec", "message"), CEL, ids=[message[:80] for _, _, message in CEL])
def test_meshlab_refuses_what_a_cel_rule_refuses_in_the_rules_own_words(kind, spec, message):
    document = _doc(kind, spec)
    assert any(message in problem for _, problem in validate(crds()[kind], document)), validate(crds()[kind], document)
    with pytest.raises(GatewayAPIError) as raised:
        load(yaml.safe_dump(document))
    assert message in str(raised.value)


# --- the CRD validation itself, against Envoy Gateway's ---------------------------------------------

def _egctl_refuses(document: dict) -> bool:
    head = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "eg"},
            "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"}}
    with tempfile.TemporaryDirectory(prefix="meshlab-test-") as folder:
        source = Path(folder) / "in.yaml"
        source.write_text(yaml.safe_dump_all([head, document]))
        done = subprocess.run([program_path("egctl"), "experimental", "translate", "--from", "gateway-api", "--to", "gateway-api",
                               "--add-missing-resources", "-f", str(source)], capture_output=True, text=True, timeout=120)
    if done.returncode and "local validation error" not in done.stderr:
        raise AssertionError(f"egctl failed for another reason: {done.stderr[-400:]}")
    return done.returncode != 0


def test_the_crd_validation_agrees_with_envoy_gateways_own_on_a_sample():
    sample = [case for i, case in enumerate(corpus()) if case[1]["kind"] != "GatewayClass" and i % 25 == 0][:10]
    sample += [(message, _doc(kind, spec), "", "CEL") for kind, spec, message in CEL[::6]]
    for case, document, _, _ in sample:
        assert _egctl_refuses(document) == bool(validate(crds()[document["kind"]], document)), case

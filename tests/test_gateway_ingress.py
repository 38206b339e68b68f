"""meshlab.gateway.ingress: Ingresses converted to Gateway API resources route sampled requests to
the same Services as the Ingress API's own rules say (k8s.io/api networking/v1 types.go: host
precision, Exact and element-wise Prefix paths, longest path first, the default backend), except
where the module says a meaning cannot be carried over, which is checked to be so."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from meshlab.gateway import GatewayAPIError, Request, match, translate
from meshlab.gateway.ingress import backend_for, convert, load_ingresses

SHOP = (Path(__file__).parents[1] / "src" / "meshlab" / "data" / "ingress" / "shop.yaml").read_text()


def ingress(name: str, spec: str, namespace: str = "default", annotations: str = "") -> str:
    return f"---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: {namespace}{annotations}}}\nspec:\n{spec}"


def path(value: str, kind: str, service: str, port: int = 80) -> str:
    return f"      - {{path: {value}, pathType: {kind}, backend: {{service: {{name: {service}, port: {{number: {port}}}}}}}}}\n"


CATALOG = ingress("catalog", "  ingressClassName: nginx\n  defaultBackend: {service: {name: fallback, port: {number: 8080}}}\n"
                  "  tls: [{hosts: [shop.example.com], secretName: shop-tls}]\n  rules:\n"
                  "  - host: shop.example.com\n    http:\n      paths:\n" + path("/foo", "Prefix", "foo") + path("/foo/", "Prefix", "foo-slash")
                  + path("/foo/bar", "Exact", "foo-bar-exact") + path("/foo/bar", "Prefix", "foo-bar") + path("/exact", "Exact", "exact")
                  + path("/shadow", "Exact", "shadowed") + path("/shadow/", "Prefix", "shadow-prefix")
                  + "  - host: '*.example.com'\n    http:\n      paths:\n" + path("/", "Prefix", "wildcard")
                  + "  - http:\n      paths:\n" + path("/any", "Prefix", "hostless"),
                  annotations=", annotations: {nginx.ingress.kubernetes.io/ssl-redirect: 'true'}") + ingress(
    "second", "  ingressClassName: nginx\n  rules:\n  - host: shop.example.com\n    http:\n      paths:\n" + path("/foo/bar/baz", "Prefix", "deep")
    + path("/impl", "ImplementationSpecific", "impl"))


def gateway_answer(translation, host: str, target: str):
    decision = match(translation, Request(host, target), 80)
    if decision.route is None:
        return None
    (backend,) = decision.backends
    return (backend.namespace, backend.name, backend.port)


def sampled(paths: list[str]) -> list[str]:
    """Each path, a character off, one segment deeper, with a trailing slash, and its parent."""
    found = {"/", "/nothing"}
    for value in paths:
        base = value.rstrip("/") or "/"
        found |= {value, base, base + "/", base + "x", base + "/sub", base.rsplit("/", 1)[0] or "/"}
    return sorted(found)


@pytest.mark.parametrize("text", [SHOP, CATALOG], ids=["the chapter's shop", "hosts, prefixes with and without slash, exact, shadowed and default"])
def test_converted_routes_send_every_sampled_request_where_the_ingress_does(text):
    ingresses, services = load_ingresses(text)
    translation = translate(convert(ingresses, services).resources(), add_missing_resources=True)
    paths = [p.path for i in ingresses for r in i.spec.rules for p in (r.http.paths if r.http else ())]
    hosts = ["shop.example.com", "shop.example.com:80", "www.example.com", "other.org"]
    compared = 0
    for host in hosts:
        for target in sampled(paths):
            assert gateway_answer(translation, host, target) == backend_for(ingresses, host, target), f"{host}{target}"
            compared += 1
    assert compared > 40


def random_ingresses(seed: int) -> str:
    rng = random.Random(seed)
    segments = ["a", "b", "ab", "c"]
    entries = []
    for i in range(rng.randint(3, 8)):
        value = "/" + "/".join(rng.choice(segments) for _ in range(rng.randint(1, 3))) + rng.choice(["", "/"])
        entries.append(path(value, rng.choice(["Exact", "Prefix"]), f"s{i}"))
    default = "  defaultBackend: {service: {name: fallback, port: {number: 80}}}\n" if rng.random() < 0.5 else ""
    return ingress("random", f"{default}  rules:\n  - host: shop.example.com\n    http:\n      paths:\n" + "".join(entries))


@pytest.mark.parametrize("seed", range(12))
def test_converted_random_path_sets_agree_with_the_ingress_on_sampled_requests(seed):
    text = random_ingresses(seed)
    ingresses, services = load_ingresses(text)
    translation = translate(convert(ingresses, services).resources(), add_missing_resources=True)
    paths = [p.path for p in ingresses[0].spec.rules[0].http.paths]
    for target in sampled(paths) + [f"/{a}/{b}" for a in ("a", "ab", "b") for b in ("a", "b", "c")]:
        assert gateway_answer(translation, "shop.example.com", target) == backend_for(ingresses, "shop.example.com", target), (text, target)


def test_what_cannot_be_carried_over_is_said_in_notes():
    ingresses, services = load_ingresses(CATALOG)
    notes = "\n".join(convert(ingresses, services).notes)
    assert "annotation nginx.ingress.kubernetes.io/ssl-redirect has no Gateway API equivalent" in notes
    assert "host *.example.com matches one label in an Ingress; in the Gateway API it matches any number" in notes
    assert "Exact /shadow is shadowed by a longer Prefix of the same path" in notes
    assert "pathType ImplementationSpecific is the controller's to interpret; converted as PathPrefix" in notes


def test_a_wildcard_host_differs_as_the_note_says_one_label_against_any_number():
    ingresses, services = load_ingresses(CATALOG)
    translation = translate(convert(ingresses, services).resources(), add_missing_resources=True)
    assert backend_for(ingresses, "a.b.example.com", "/") == ("default", "fallback", 8080)
    assert gateway_answer(translation, "a.b.example.com", "/") == ("default", "wildcard", 80)


def test_tls_hosts_become_https_listeners_with_the_secret_as_certificate():
    ingresses, services = load_ingresses(CATALOG)
    (gateway,) = convert(ingresses, services).resources().gateways
    https = [listener for listener in gateway.spec.listeners if listener.protocol == "HTTPS"]
    assert [(l.port, l.hostname, l.tls.certificate_refs[0].name) for l in https] == [(443, "shop.example.com", "shop-tls")]


def test_a_named_service_port_needs_the_service_to_resolve_it():
    text = ingress("named", "  rules:\n  - http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}\n")
    with pytest.raises(GatewayAPIError, match=r"Ingress default/named: spec.rules\[0\].http.paths\[0\].backend.service.port.name: port 'http' is named"):
        convert(*load_ingresses(text))
    resolved = convert(*load_ingresses(text + "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{name: http, port: 8080}]}\n"))
    assert resolved.resources().http_routes[0].spec.rules[0].backend_refs[0].port == 8080


def test_a_bad_ingress_is_refused_naming_the_field():
    text = ingress("bad", "  rules:\n  - http:\n      paths:\n      - {path: /, pathType: Regex, backend: {service: {name: web, port: {number: 80}}}}\n")
    with pytest.raises(GatewayAPIError, match=r"Ingress default/bad: spec.rules\[0\].http.paths\[0\].pathType: 'Regex' is not accepted; one of: Exact, Prefix, ImplementationSpecific"):
        load_ingresses(text)

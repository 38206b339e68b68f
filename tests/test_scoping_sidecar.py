"""The Sidecar resource: read from YAML, checked with Istio 1.30.3's rules and words.

The expected messages are Istio's (pkg/config/validation/validation.go ValidateSidecar and
pkg/config/validation/agent/validation.go; the analyzer templates in
pkg/config/analysis/msg/messages.yaml); tests/test_upstream_sidecar_analyze.py checks the same
corpus against the real istioctl.
"""

from __future__ import annotations

import pytest
import yaml

from meshlab.scoping.sidecar import Finding, Pod, Sidecar, SidecarError, analyze, parse_resources, validate


def sidecar(spec: str, name: str = "s", namespace: str = "shop") -> Sidecar:
    text = f"apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n"
    text += "\n".join("  " + line for line in spec.strip("\n").splitlines())
    sidecars, _ = parse_resources(text)
    return sidecars[0]


def messages(spec: str) -> list[str]:
    return [f.message for f in validate(sidecar(spec))]


ERROR, WARNING = "Schema validation error: ", "Schema validation warning: "


#: (spec, the messages Istio gives, in its order): shared with tests/test_upstream_sidecar_analyze.py
CASES = [
    pytest.param("egress:\n- hosts: ['./*', 'istio-system/*']", [], id="should accept the namespace's own services and istio-system's"),
    pytest.param("egress:\n- hosts: ['~/*']", [], id="should accept ~ (import nothing)"),
    pytest.param("egress:\n- hosts: ['*/reviews.shop.svc.cluster.local', 'Shop/x.example.com']", [],
                 id="should accept any namespace and upper-case letters, as Istio's DNS-1123 check does"),
    pytest.param("egress:\n- hosts: [reviews.shop.svc.cluster.local]", [ERROR + "host must be of form namespace/dnsName"],
                 id="should refuse a host without a namespace"),
    pytest.param("egress:\n- hosts: [shop/reviews]", [ERROR + "short names (non FQDN) are not allowed"], id="should refuse a short name"),
    pytest.param("egress:\n- hosts: ['/x.example.com']", [ERROR + "config namespace and dnsName in host entry cannot be empty",
                                                          ERROR + 'invalid namespace value "" in sidecar'], id="should refuse an empty namespace"),
    pytest.param("egress:\n- hosts: ['./a*.example.com']", [ERROR + 'domain name "a*.example.com" invalid (label "a*" invalid)',
                                                             ERROR + 'partial wildcard "a*.example.com" not allowed'], id="should refuse a partial wildcard"),
    pytest.param("egress:\n- hosts: ['./foo.123']", [ERROR + 'domain name "123" invalid (top level domain "123" cannot be all-numeric)'],
                 id="should refuse an all-numeric top-level domain"),
    pytest.param("egress:\n- hosts: ['./*', './*']", [WARNING + "duplicated egress host: ./*"], id="should warn of a duplicated host"),
    pytest.param("egress:\n- hosts: ['*/*', './*']", [WARNING + "`*/*` host select all resources, no other hosts can be added"],
                 id="should warn that */* leaves nothing to add"),
    pytest.param("egress:\n- hosts: []", [ERROR + "sidecar: egress listener must contain at least one host"], id="should refuse a listener without hosts"),
    pytest.param("egress:\n- hosts: ['./*']\n- port: {number: 9080, protocol: HTTP}\n  hosts: ['./*']",
                 [ERROR + "sidecar: the egress listener with empty port should be the last listener in the list"], id="should want the catch-all last"),
    pytest.param("egress:\n- port: {number: 9080, protocol: HTTP}\n  hosts: ['./*']\n- port: {number: 9080, protocol: TCP}\n  hosts: ['./*']",
                 [ERROR + "sidecar: ports on IP bound listeners must be unique"], id="should refuse two listeners on one port"),
    pytest.param("egress:\n- port: {number: 0, protocol: HTTP}\n  hosts: ['./*']",
                 [ERROR + "sidecar: ports with 0 value must have a unix domain socket bind address"], id="should want a socket for port 0"),
    pytest.param("egress:\n- port: {number: 9080, protocol: FOO, name: Bad_Name}\n  bind: not-an-ip\n  hosts: ['./*']",
                 [ERROR + "invalid port name: Bad_Name", ERROR + "unsupported protocol: FOO", ERROR + "not-an-ip is not a valid IP"],
                 id="should check the port's name, protocol and bind"),
    pytest.param("ingress:\n- port: {number: 70000, protocol: HTTP}\n  defaultEndpoint: 10.0.0.1:8080",
                 [ERROR + "port number 70000 must be in the range 1..65535",
                  ERROR + "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset"],
                 id="should check an ingress port and its default endpoint"),
    pytest.param("ingress:\n- port: {number: 9080, protocol: HTTP}\n  defaultEndpoint: 127.0.0.1",
                 [ERROR + "address 127.0.0.1: missing port in address",
                  ERROR + 'sidecar: defaultEndpoint port () is not a number: strconv.Atoi: parsing "": invalid syntax'],
                 id="should report Go's own words for an endpoint without a port"),
    pytest.param("ingress:\n- defaultEndpoint: 127.0.0.1:8080", [ERROR + "sidecar: port is required for ingress listeners"],
                 id="should want a port on an ingress listener"),
    pytest.param("workloadSelector: {labels: {app: '*'}}\negress:\n- hosts: [shop/reviews]", [ERROR + 'wildcard is not supported in selector: "app=*"'],
                 id="should refuse a wildcard selector and check nothing else"),
    pytest.param("workloadSelector: {}\negress:\n- hosts: ['./*']",
                 [WARNING + "sidecar: workload selector specified without labels, will be applied to all services in namespace"],
                 id="should warn of a selector without labels"),
    pytest.param("workloadSelector: {}", [ERROR + "sidecar: empty configuration provided"], id="should refuse an empty Sidecar, dropping the warning"),
    pytest.param("outboundTrafficPolicy: {mode: REGISTRY_ONLY}", [], id="should accept a policy alone"),
    pytest.param("outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: proxy.example.com, port: {number: 80}}}",
                 [ERROR + "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode",
                  "Deprecated: OutboundTrafficPolicy.EgressProxy ignored"], id="should refuse an egress proxy without ALLOW_ANY"),
    pytest.param("outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: proxy.example.com}}",
                 ["Schema validation error: sidecar: egress_proxy port must be non-nil", "Deprecated: OutboundTrafficPolicy.EgressProxy ignored"],
                 id="should want the egress proxy's port"),
    pytest.param("egress:\n- port: {number: 0, protocol: HTTP}\n  bind: unix:///var/run/app.sock\n  captureMode: IPTABLES\n  hosts: ['./*']",
                 [ERROR + "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners"], id="should refuse iptables capture on a socket"),
    pytest.param("egress:\n- port: {number: 0, protocol: HTTP}\n  bind: unix://relative.sock\n  hosts: ['./*']",
                 [ERROR + "relative.sock is not an absolute path to a file"], id="should want an absolute socket path"),
    pytest.param("ingress:\n- port: {number: 9080, protocol: HTTP, name: http}\n  bind: 0.0.0.0\n  defaultEndpoint: 127.0.0.1:8080\n"
                 "- port: {number: 9080, protocol: GRPC}\n  defaultEndpoint: unix:///var/run/app.sock", [ERROR + "sidecar: ports on IP bound listeners must be unique"],
                 id="should refuse two ingress listeners on one port"),
    pytest.param("egress:\n- hosts: ['./*', './reviews.shop.svc.cluster.local', '*/*.example.com']", [WARNING + "duplicated egress host: ./reviews.shop.svc.cluster.local"],
                 id="should warn of a host the namespace's * already imports"),
]


@pytest.mark.parametrize(("spec", "expected"), CASES)
def test_validation(spec, expected):
    assert messages(spec) == expected


def test_each_finding_carries_istioctls_code_and_resource_name():
    findings = validate(sidecar("workloadSelector: {}\negress:\n- hosts: [nope]", name="reviews", namespace="shop"))
    assert findings == [Finding("Error", "IST0106", "Sidecar shop/reviews", ERROR + "host must be of form namespace/dnsName"),
                        Finding("Warning", "IST0133", "Sidecar shop/reviews", WARNING + "sidecar: workload selector specified without labels, "
                                "will be applied to all services in namespace")]
    assert str(findings[0]) == "Error [IST0106] (Sidecar shop/reviews) Schema validation error: host must be of form namespace/dnsName"


def test_a_namespace_left_out_is_default_as_istioctl_takes_it():
    sidecars, pods = parse_resources("apiVersion: networking.istio.io/v1beta1\nkind: Sidecar\nmetadata: {name: a}\nspec: {egress: [{hosts: ['./*']}]}\n"
                                     "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: a}}\n")
    assert (sidecars[0].namespace, sidecars[0].egress[0].hosts) == ("default", ("./*",)) and pods == [Pod("default", "p", {"app": "a"})]


def test_the_selector_analyzer_reports_conflicts_in_istios_words():
    text = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: one, namespace: shop}
spec: {egress: [{hosts: ['./*']}]}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: two, namespace: shop}
spec: {outboundTrafficPolicy: {mode: REGISTRY_ONLY}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: by-app, namespace: shop}
spec: {workloadSelector: {labels: {app: reviews}}, egress: [{hosts: ['./*']}]}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: by-version, namespace: shop}
spec: {workloadSelector: {labels: {version: v1}}, egress: [{hosts: ['./*']}]}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: nobody, namespace: shop}
spec: {workloadSelector: {labels: {tier: x, app: nobody}}, egress: [{hosts: ['./*']}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1, namespace: shop, labels: {app: reviews, version: v1}}
"""
    sidecars, pods = parse_resources(text)
    found = {(f.code, f.resource, f.message) for f in analyze(sidecars, pods)}
    assert found == {
        ("IST0111", "Sidecar shop/one", 'The Sidecars [one two] in namespace "shop" have no workload selector, which can lead to undefined behavior.'),
        ("IST0111", "Sidecar shop/two", 'The Sidecars [one two] in namespace "shop" have no workload selector, which can lead to undefined behavior.'),
        ("IST0110", "Sidecar shop/by-app",
         'The Sidecars [by-app by-version] in namespace "shop" select the same workload pod "reviews-v1", which can lead to undefined behavior.'),
        ("IST0110", "Sidecar shop/by-version",
         'The Sidecars [by-app by-version] in namespace "shop" select the same workload pod "reviews-v1", which can lead to undefined behavior.'),
        ("IST0101", "Sidecar shop/nobody", 'Referenced selector not found: "app=nobody,tier=x"'),
    }
    assert {f.code for f in analyze(sidecars)} == {"IST0111"}, "without pods, only the namespace-wide check runs"


@pytest.mark.parametrize(("text", "message"), [
    ("kind: Service\nmetadata: {name: a}", "kind 'Service' is not read here; accepted: Sidecar (networking.istio.io/v1), Pod"),
    ("kind: Sidecar\napiVersion: v2\nmetadata: {name: a}", "apiVersion 'v2' is not one of networking.istio.io/v1"),
    ("kind: Sidecar\napiVersion: networking.istio.io/v1\nmetadata: {}", "metadata.name is required"),
    ("kind: Sidecar\napiVersion: networking.istio.io/v1\nmetadata: {name: a}\nspec: {egres: []}", "unknown field 'egres'; accepted: workloadSelector"),
    ("kind: Sidecar\napiVersion: networking.istio.io/v1\nmetadata: {name: a}\nspec: {inboundConnectionPool: {}}",
     "inboundConnectionPool is an Istio field meshlab does not model"),
    ("kind: Sidecar\napiVersion: networking.istio.io/v1\nmetadata: {name: a}\nspec: {egress: [{hosts: ./*}]}", "spec.egress[0].hosts: expected a list"),
    ("kind: Sidecar\napiVersion: networking.istio.io/v1\nmetadata: {name: a}\nspec: {outboundTrafficPolicy: {mode: DENY}}",
     "outboundTrafficPolicy.mode: 'DENY' is not one of ALLOW_ANY, REGISTRY_ONLY"),
    ("kind: Sidecar\napiVersion: networking.istio.io/v1\nmetadata: {name: a}\nspec: {egress: [{port: {number: -1}, hosts: []}]}",
     "port.number: expected a whole number 0..4294967295, got -1"),
    ("a: [b", "not valid YAML"),
])
def test_what_cannot_be_read_as_a_sidecar_is_named(text, message):
    with pytest.raises(SidecarError) as caught:
        parse_resources(text)
    assert message in str(caught.value)


def test_a_sidecar_written_back_to_yaml_reads_the_same():
    original = sidecar("workloadSelector: {labels: {app: reviews}}\negress:\n- port: {number: 9080, protocol: HTTP, name: http}\n  captureMode: NONE\n"
                       "  hosts: ['./*']\n- hosts: ['istio-system/*']\ningress:\n- port: {number: 8080, protocol: HTTP}\n  defaultEndpoint: 127.0.0.1:8080\n"
                       "outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: proxy.example.com, port: {number: 3128}}}")
    assert parse_resources(yaml.safe_dump(original.to_yaml()))[0] == [original]


def test_an_unquoted_creation_timestamp_reads_as_kubernetes_writes_it():
    text = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: a, creationTimestamp: 2026-03-01T10:00:00Z}\nspec: {egress: [{hosts: ['./*']}]}"
    assert parse_resources(text)[0][0].creation_timestamp == "2026-03-01T10:00:00Z"

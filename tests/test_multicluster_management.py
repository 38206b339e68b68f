"""A management plane's hierarchy (Tetrate Service Bridge's names) translated into Istio resources per cluster.

What the generated resources do is checked with meshlab's own Istio models (AuthorizationPolicy decisions
with meshlab.authz, Sidecar validation with meshlab.scoping.sidecar) and, in the upstream test, by the
pinned ``istioctl analyze``; expectations come from TSB's documented meaning of each mode.
"""

from __future__ import annotations

import pytest
import yaml
from upstream_programs import program_path

from meshlab.authz import Request, Workload, evaluate
from meshlab.authz import load as load_policies
from meshlab.multicluster.management import (EXAMPLE, Cluster, Hierarchy, HierarchyError, TranslateError, fan_out, fleet,
                                             translate)
from meshlab.scoping.sidecar import parse_resources, validate
from meshlab.upstream.analyze import analyze

NAMESPACES = ("payments", "ledger", "shop", "web")

#: The example's first four documents: the organization, the tenant and two workspaces, which other tests build on.
HEAD = "---\n".join(EXAMPLE.split("---\n")[:4])


def workspace_setting(security: str = "", traffic: str = "", workspace: str = "payments") -> str:
    text = ("---\napiVersion: api.tsb.tetrate.io/v2\nkind: WorkspaceSetting\n"
            f"metadata: {{organization: acme, tenant: retail, workspace: {workspace}, name: s}}\nspec:\n")
    if security:
        text += "  defaultSecuritySetting:\n" + "".join(f"    {line}\n" for line in security.strip("\n").splitlines())
    if traffic:
        text += "  defaultTrafficSetting:\n" + "".join(f"    {line}\n" for line in traffic.strip("\n").splitlines())
    return text


def group(concern: str, name: str, names: str) -> str:
    return (f"---\napiVersion: {concern}.tsb.tetrate.io/v2\nkind: Group\n"
            f"metadata: {{organization: acme, tenant: retail, workspace: payments, name: {name}}}\n"
            f"spec:\n  namespaceSelector: {{names: {names}}}\n")


def of_kind(resources: list[dict], kind: str, namespace: str | None = None) -> list[dict]:
    return [r for r in resources if r["kind"] == kind and namespace in (None, r["metadata"]["namespace"])]


def decision(resources: list[dict], namespace: str, principal: str | None) -> bool:
    """What Istio decides (meshlab.authz's model of it) for a call from ``principal`` to a workload in ``namespace``."""
    manifests = of_kind(resources, "AuthorizationPolicy")
    policies = load_policies(manifests) if manifests else []  # load validates each as istiod does
    return evaluate(policies, Request(principal=principal), Workload(namespace)).allowed


@pytest.fixture(scope="module")
def example() -> Hierarchy:
    return Hierarchy.parse(EXAMPLE)


def test_the_example_reads_as_tsbs_hierarchy(example):
    assert example.organization == "acme" and example.tenants == ("retail",)
    assert [w.name for w in example.workspaces] == ["payments", "storefront", "edge"]
    assert [(g.concern, g.name) for g in example.groups] == [("gateway", "edge-gateways")]
    assert example.written == 9
    assert example.fqn("retail", "payments") == "organizations/acme/tenants/retail/workspaces/payments"


def test_strict_mtls_for_a_workspace_is_a_peer_authentication_in_each_of_its_namespaces_in_each_cluster(example):
    out = translate(example, fleet(3, NAMESPACES))
    for cluster in ("c01", "c02", "c03"):
        modes = {(r["metadata"]["namespace"], r["spec"]["mtls"]["mode"]) for r in of_kind(out[cluster], "PeerAuthentication")}
        assert modes == {(ns, "STRICT") for ns in NAMESPACES}
    assert of_kind(out["tier1"], "PeerAuthentication") == []  # the edge workspace asked for nothing


def test_reachable_from_one_workspace_only_admits_its_workloads_in_every_cluster_and_trust_domain(example):
    out = translate(example, fleet(2, NAMESPACES, shared_trust_domain=False))
    policy = of_kind(out["c01"], "AuthorizationPolicy", "payments")[0]
    assert policy["spec"]["rules"][0]["from"][0]["source"]["principals"] == [
        "c01.example/ns/shop/sa/*", "c01.example/ns/web/sa/*", "c02.example/ns/shop/sa/*", "c02.example/ns/web/sa/*"]
    assert decision(out["c01"], "payments", "c02.example/ns/shop/sa/frontend")
    assert decision(out["c01"], "ledger", "c01.example/ns/web/sa/default")
    assert not decision(out["c01"], "payments", "c01.example/ns/ledger/sa/default"), "payments' own namespaces are not the storefront"
    assert not decision(out["c01"], "payments", "elsewhere.example/ns/shop/sa/frontend"), "another trust domain's shop is another shop"
    assert not decision(out["c01"], "payments", None), "plaintext proves no identity"


def test_principals_are_written_as_istio_expects_them_without_the_spiffe_scheme(example):
    out = translate(example, fleet(2, NAMESPACES))
    principals = [p for r in of_kind(out["c02"], "AuthorizationPolicy") for rule in r["spec"]["rules"] for f in rule["from"]
                  for p in f["source"]["principals"]]
    assert principals and all(not p.startswith("spiffe://") and p.split("/")[1::2] == ["ns", "sa"] for p in principals)
    assert set(principals) == {"cluster.local/ns/shop/sa/*", "cluster.local/ns/web/sa/*"}, "one trust domain: one principal per namespace"


def test_reachability_becomes_sidecar_egress_hosts_that_istio_accepts(example):
    out = translate(example, fleet(2, NAMESPACES))
    hosts = {r["metadata"]["namespace"]: r["spec"]["egress"][0]["hosts"] for r in of_kind(out["c01"], "Sidecar")}
    assert hosts == {"payments": ["ledger/*", "payments/*"], "ledger": ["ledger/*", "payments/*"], "shop": ["./*", "payments/*"],
                     "web": ["./*", "payments/*"]}
    sidecars, _ = parse_resources(yaml.safe_dump_all(of_kind(out["c01"], "Sidecar")))
    assert [finding for sidecar in sidecars for finding in validate(sidecar)] == []


def test_generated_objects_carry_tsbs_annotations_naming_their_source(example):
    resource = of_kind(translate(example, fleet(1, NAMESPACES))["c01"], "AuthorizationPolicy", "ledger")[0]
    assert resource["metadata"]["annotations"] == {"tsb.tetrate.io/organization": "acme", "tsb.tetrate.io/tenant": "retail",
                                                   "tsb.tetrate.io/workspace": "payments"}


def test_a_tier1_gateway_spreads_a_hostname_over_the_clusters_from_the_tier1_cluster_only(example):
    clusters = fleet(2, NAMESPACES)
    out = translate(example, clusters)
    kinds = [r["kind"] for r in out["tier1"]]
    assert kinds == ["Gateway", "VirtualService", "DestinationRule", "ServiceEntry"]
    gateway, route, rule, entry = out["tier1"]
    assert gateway["spec"]["servers"] == [{"port": {"number": 443, "name": "https-shop", "protocol": "HTTPS"}, "hosts": ["shop.example.com"],
                                           "tls": {"mode": "SIMPLE", "credentialName": "shop-certificate"}}]
    assert [d["destination"]["subset"] for d in route["spec"]["http"][0]["route"]] == ["c01", "c02"]
    assert rule["spec"]["trafficPolicy"] == {"tls": {"mode": "ISTIO_MUTUAL"}}
    assert [e["address"] for e in entry["spec"]["endpoints"]] == [c.gateway_address for c in clusters[1:]]
    assert not any(r["kind"] in ("Gateway", "ServiceEntry") for c in ("c01", "c02") for r in out[c])


def test_listed_clusters_and_weights_are_kept(example):
    text = EXAMPLE.replace("    tls: {mode: SIMPLE, secretName: shop-certificate}\n",
                           "    clusters: [{name: c02, weight: 75}, {name: c01, weight: 25}]\n")
    route = of_kind(translate(Hierarchy.parse(text), fleet(3, NAMESPACES))["tier1"], "VirtualService")[0]
    assert [(d["destination"]["subset"], d["weight"]) for d in route["spec"]["http"][0]["route"]] == [("c02", 75), ("c01", 25)]


def test_a_group_setting_replaces_the_workspace_default_field_by_field():
    text = HEAD + group("security", "ledger-group", '["*/ledger"]')
    text += workspace_setting(security="authenticationSettings: {trafficMode: REQUIRED}\nauthorization: {mode: WORKSPACE}")
    text += ("---\napiVersion: security.tsb.tetrate.io/v2\nkind: SecuritySetting\n"
             "metadata: {organization: acme, tenant: retail, workspace: payments, group: ledger-group, name: relaxed}\n"
             "spec:\n  authenticationSettings: {trafficMode: OPTIONAL}\n")
    out = translate(Hierarchy.parse(text), fleet(1, NAMESPACES))["c01"]
    assert {(r["metadata"]["namespace"], r["metadata"]["name"], r["spec"]["mtls"]["mode"]) for r in of_kind(out, "PeerAuthentication")} == {
        ("payments", "payments", "STRICT"), ("ledger", "payments-ledger-group", "PERMISSIVE")}
    assert [r["metadata"]["name"] for r in of_kind(out, "AuthorizationPolicy", "ledger")] == ["payments"], "authorization still the workspace's"


#: (authorization, caller principal, allowed) for a workload in namespace ``payments`` of cluster c01 (trust domain cluster.local).
MODES = [
    pytest.param("mode: NAMESPACE", "cluster.local/ns/payments/sa/x", True, id="NAMESPACE admits its own namespace"),
    pytest.param("mode: NAMESPACE", "cluster.local/ns/ledger/sa/x", False, id="NAMESPACE refuses the workspace's other namespace"),
    pytest.param("mode: WORKSPACE", "cluster.local/ns/ledger/sa/x", True, id="WORKSPACE admits the workspace"),
    pytest.param("mode: WORKSPACE", "cluster.local/ns/shop/sa/x", False, id="WORKSPACE refuses another workspace"),
    pytest.param("mode: GROUP", "cluster.local/ns/ledger/sa/x", False, id="GROUP refuses a namespace outside the group"),
    pytest.param("mode: CLUSTER", "cluster.local/ns/shop/sa/x", True, id="CLUSTER admits any workload of the trust domain"),
    pytest.param("mode: CLUSTER", "other.example/ns/shop/sa/x", False, id="CLUSTER refuses another trust domain"),
    pytest.param("mode: CUSTOM\nserviceAccounts: [shop/checkout, ./*]", "cluster.local/ns/shop/sa/checkout", True, id="CUSTOM admits a listed account"),
    pytest.param("mode: CUSTOM\nserviceAccounts: [shop/checkout, ./*]", "cluster.local/ns/shop/sa/cart", False, id="CUSTOM refuses another"),
    pytest.param("mode: CUSTOM\nserviceAccounts: [shop/checkout, ./*]", "cluster.local/ns/payments/sa/any", True, id="CUSTOM ./* is the own namespace"),
    pytest.param("mode: DISABLED", None, True, id="DISABLED writes no policy"),
    pytest.param("mode: RULES\nrules: {denyAll: true}", "cluster.local/ns/payments/sa/x", False, id="RULES denyAll allows nothing"),
    pytest.param("mode: RULES\nrules:\n  deny:\n  - from: {fqn: organizations/acme/tenants/retail/workspaces/storefront}\n"
                 "    to: {fqn: organizations/acme/tenants/retail/workspaces/payments}", "cluster.local/ns/web/sa/x", False, id="RULES deny refuses"),
    pytest.param("mode: RULES\nrules:\n  deny:\n  - from: {fqn: organizations/acme/tenants/retail/workspaces/storefront}\n"
                 "    to: {fqn: organizations/acme/tenants/retail/workspaces/payments}", "cluster.local/ns/ledger/sa/x", True,
                 id="RULES with deny only allows the rest"),
]


@pytest.mark.parametrize("authorization, caller, allowed", MODES)
def test_each_authorization_mode_decides_as_tsb_documents_it(authorization, caller, allowed):
    text = HEAD + group("security", "core", '["*/payments"]') + workspace_setting(security="authorization:\n" + "".join(
        f"  {line}\n" for line in authorization.splitlines()))
    out = translate(Hierarchy.parse(text), fleet(1, NAMESPACES))["c01"]
    assert decision(out, "payments", caller) is allowed


@pytest.mark.parametrize("reachability, hosts", [
    ("{mode: NAMESPACE}", ["./*"]),
    ("{mode: WORKSPACE}", ["ledger/*", "payments/*"]),
    ("{mode: GROUP}", ["payments/*"]),
    ("{mode: CUSTOM, hosts: ['./*', 'db/*', '*/svc1.example.com']}", ["./*", "db/*", "*/svc1.example.com"]),
    ("{mode: CLUSTER}", None),
])
def test_each_reachability_mode_becomes_the_sidecar_tsb_documents(reachability, hosts):
    text = HEAD + group("traffic", "core", '["*/payments"]') + workspace_setting(traffic=f"reachability: {reachability}")
    sidecars = of_kind(translate(Hierarchy.parse(text), fleet(1, NAMESPACES))["c01"], "Sidecar", "payments")
    assert (sidecars[0]["spec"]["egress"][0]["hosts"] if sidecars else None) == hosts


def test_reachability_is_also_read_under_outbound_as_tsb_writes_it_from_1_11():
    text = HEAD + workspace_setting(traffic="outbound:\n  reachability: {mode: NAMESPACE}")
    assert of_kind(translate(Hierarchy.parse(text), fleet(1, NAMESPACES))["c01"], "Sidecar", "ledger")[0]["spec"]["egress"][0]["hosts"] == ["./*"]
    with pytest.raises(HierarchyError, match="reachability is given twice, directly and under outbound"):
        Hierarchy.parse(HEAD + workspace_setting(traffic="reachability: {mode: NAMESPACE}\noutbound: {reachability: {mode: CLUSTER}}"))


def test_fan_out_grows_with_the_clusters_and_the_trust_domains(example):
    """Per cluster: 4 PeerAuthentications, 2 AuthorizationPolicies, 4 Sidecars; each policy names the
    storefront's 2 namespaces once per trust domain, so with one trust domain per cluster the
    principals grow with the square of the fleet."""
    for count in (1, 5, 20):
        shared, separate = fan_out(example, fleet(count, NAMESPACES)), fan_out(example, fleet(count, NAMESPACES, shared_trust_domain=False))
        assert shared.written == 9 and shared.total == 10 * count + 4 and separate.total == shared.total
        assert shared.by_kind == {"PeerAuthentication": 4 * count, "AuthorizationPolicy": 2 * count, "Sidecar": 4 * count, "Gateway": 1,
                                  "VirtualService": 1, "DestinationRule": 1, "ServiceEntry": 1}
        assert shared.principals == 2 * 2 * count and separate.principals == 2 * 2 * count * count
    assert fan_out(example, fleet(7, NAMESPACES)) == fan_out(example, fleet(7, NAMESPACES)), "deterministic"


BAD = [
    pytest.param(HEAD.replace("kind: Tenant", "kind: TenantSetting"), "kind TenantSetting is TSB's but not translated", id="an unmodelled kind"),
    pytest.param(HEAD.replace("api.tsb.tetrate.io/v2\nkind: Workspace", "traffic.tsb.tetrate.io/v2\nkind: Workspace", 1),
                 "apiVersion 'traffic.tsb.tetrate.io/v2' kind 'Workspace' is not read here", id="a kind under the wrong API group"),
    pytest.param(HEAD.replace("{organization: acme, tenant: retail, name: payments}", "{organization: acme, name: payments}"),
                 "Workspace payments (document 3): metadata.tenant is required", id="a missing parent"),
    pytest.param(HEAD.replace("tenant: retail, name: storefront", "tenant: wholesale, name: storefront"),
                 "Workspace storefront: metadata.tenant 'wholesale' names no Tenant; tenants: retail", id="a parent that does not exist"),
    pytest.param(HEAD.replace('"*/payments", "*/ledger"', '"payments"'), "'payments' is not cluster/namespace", id="a namespace name without cluster"),
    pytest.param(HEAD + workspace_setting(security="authorization: {mode: EVERYONE}"),
                 "spec.defaultSecuritySetting.authorization.mode: 'EVERYONE' is not one of UNSET, NAMESPACE", id="an unknown mode"),
    pytest.param(HEAD + workspace_setting(traffic="reachability: {mode: NAMESPACE, hosts: ['db/*']}"),
                 "reachability.hosts: only read when mode is CUSTOM, mode is NAMESPACE", id="hosts without CUSTOM"),
    pytest.param(HEAD + workspace_setting(traffic="reachability: {mode: CUSTOM, hosts: ['db']}"),
                 "reachability.hosts: 'db': host must be of form namespace/dnsName", id="a host Istio would refuse"),
    pytest.param(HEAD + workspace_setting(security="authorization: {mode: CUSTOM, serviceAccounts: ['shop']}"),
                 "'shop' is not ns/sa", id="a service account without namespace"),
    pytest.param(HEAD + workspace_setting(security="authorization:\n  mode: RULES\n  rules: {allow: [{from: {fqn: storefront}, to: {fqn: payments}}]}"),
                 "from.fqn: 'storefront' is not the FQN of a tenant, workspace or security group", id="a rule naming a resource by its short name"),
    pytest.param(HEAD + workspace_setting(security="authenticationSettings: {trafficMode: REQUIRED}") + workspace_setting(),
                 "defined twice", id="two settings for one workspace"),
    pytest.param(HEAD + group("traffic", "t", '["*/payments"]').replace("spec:\n", "spec:\n  configMode: DIRECT\n"),
                 "meshlab translates BRIDGED groups only", id="a DIRECT group"),
    pytest.param(HEAD + workspace_setting(traffic="resilience: {circuitBreakerSensitivity: MEDIUM}"),
                 "untranslated field 'resilience'; accepted: reachability", id="a TSB field meshlab does not translate"),
    pytest.param(HEAD.split("---\n", 1)[1], "exactly one Organization", id="no organization"),
    pytest.param("kind: [", "not valid YAML", id="not YAML"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_bad_hierarchies_are_refused_naming_the_resource_the_field_and_what_is_accepted(text, message):
    with pytest.raises(HierarchyError, match=None) as refused:
        Hierarchy.parse(text)
    assert message in str(refused.value)


@pytest.mark.parametrize("text, clusters, message", [
    (HEAD.replace('"*/shop", "*/web"', '"*/shop", "*/payments"'), fleet(1, NAMESPACES),
     "namespace payments of cluster c01 is selected by workspaces payments and storefront"),
    (EXAMPLE.replace("    tls: {mode: SIMPLE", "    clusters: [{name: c09, weight: 1}]\n    tls: {mode: SIMPLE"), fleet(2, NAMESPACES),
     "cluster 'c09' is not among the clusters; clusters with one: c01, c02"),
    (EXAMPLE, [Cluster("c01", NAMESPACES + ("tier1",), gateway_address="192.0.2.1")], "no tier-1 cluster (tier1Cluster: true) has namespace 'tier1'"),
    (HEAD + workspace_setting(security="authorization: {mode: CUSTOM, serviceAccounts: ['db/reader']}"), fleet(1, NAMESPACES),
     "names namespace 'db', which no cluster has"),
])
def test_intents_that_cannot_be_placed_are_refused_with_nothing_returned(text, clusters, message):
    with pytest.raises(TranslateError) as refused:
        translate(Hierarchy.parse(text), clusters)
    assert message in str(refused.value)


@pytest.mark.parametrize("arguments, message", [
    (("East", ("a",)), "a cluster name is a lower-case DNS-1123 label"),
    (("east", ("a",), "East.Example"), "trustDomain 'East.Example': trust domain characters are limited"),
    (("east", ("a",), "cluster.local", "", False, "not-an-ip"), "gateway address 'not-an-ip' is not an IP address"),
])
def test_bad_clusters_are_refused(arguments, message):
    with pytest.raises(TranslateError, match=None) as refused:
        Cluster(*arguments)
    assert message in str(refused.value)


@pytest.mark.upstream
def test_istioctl_finds_nothing_wrong_in_any_clusters_resources(example):
    """The pinned istioctl analyses each cluster's output (all namespaces); a Gateway without a port name
    in the same file proves the file was read: it is the only finding."""
    istioctl = program_path("istioctl")
    control = ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: control, namespace: default}\n"
               "spec: {selector: {app: x}, servers: [{port: {number: 80, protocol: HTTP}, hosts: [a.example.com]}]}\n")
    modes = HEAD + group("security", "core", '["*/payments"]') + workspace_setting(
        security="authenticationSettings: {trafficMode: OPTIONAL}\nauthorization:\n  mode: RULES\n  rules:\n    deny:\n"
                 "    - from: {fqn: organizations/acme/tenants/retail}\n      to: {fqn: organizations/acme/tenants/retail/workspaces/payments}",
        traffic="reachability: {mode: CUSTOM, hosts: ['./*', 'istio-system/*']}")
    for hierarchy in (example, Hierarchy.parse(modes)):
        for cluster, resources in translate(hierarchy, fleet(2, NAMESPACES, shared_trust_domain=False)).items():
            findings = analyze(istioctl, yaml.safe_dump_all(resources) + "---\n" + control, all_namespaces=True)
            assert [(f.code, f.resource) for f in findings] == [("IST0106", "Gateway default/control")], cluster

"""meshlab.authz against the examples of Istio's own documentation, each cited where it is used.

Sources (Istio 1.30.3 / istio/api v1.30.3 unless said otherwise):
- REF:  istio.io/latest/docs/reference/config/security/authorization-policy/ (generated from
        istio/api security/v1beta1/authorization_policy.proto)
- CONCEPTS: istio.io/latest/docs/concepts/security/#authorization (istio/istio.io
        content/en/docs/concepts/security/index.md)
- TASK-DENY, TASK-TCP, TASK-JWT, TASK-CUSTOM: istio.io/latest/docs/tasks/security/authorization/
        authz-deny/, authz-tcp/, authz-jwt/, authz-custom/
"""

from __future__ import annotations

import pytest

from meshlab.authz import ExtensionProvider, PolicyInvalid, Request, Workload, evaluate, load, string_matches
from meshlab.authz.policy import OPERATION_FIELDS, SOURCE_FIELDS

HTTPBIN = Workload("foo", {"app": "httpbin", "version": "v1"})
SLEEP = "cluster.local/ns/foo/sa/sleep"
GOOGLE = {"iss": "https://accounts.google.com", "sub": "alice"}


def policy(spec: str, name: str = "p", namespace: str = "foo") -> str:
    """A manifest around ``spec`` (YAML, indented by two)."""
    return f"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{spec}"


def decide(policies: str, request: Request, workload: Workload = HTTPBIN, **kwargs) -> bool:
    return evaluate(load(policies), request, workload, **kwargs).allowed


# REF, the first example: sleep or namespace test; GET /info* or POST /data; a Google-issued JWT.
HTTPBIN_POLICY = policy("""  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
    - source:
        namespaces: ["test"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/info*"]
    - operation:
        methods: ["POST"]
        paths: ["/data"]
    when:
    - key: request.auth.claims[iss]
      values: ["https://accounts.google.com"]
""", "httpbin")


@pytest.mark.parametrize(("request_", "allowed"), [
    (Request("cluster.local/ns/default/sa/sleep", method="GET", path="/info/1", claims=GOOGLE), True),
    (Request("cluster.local/ns/test/sa/anyone", method="POST", path="/data", claims=GOOGLE), True),
    (Request("cluster.local/ns/default/sa/sleep", method="POST", path="/info", claims=GOOGLE), False),  # POST only at /data
    (Request("cluster.local/ns/default/sa/sleep", method="GET", path="/info", claims=None), False),  # no JWT: the when fails
    (Request("cluster.local/ns/default/sa/sleep", method="GET", path="/info", claims={"iss": "https://evil.example"}), False),
    (Request("cluster.local/ns/prod/sa/sleep", method="GET", path="/info", claims=GOOGLE), False),  # neither source
    (Request(None, method="GET", path="/info", claims=GOOGLE), False),  # plaintext: no principal, no namespace
])
def test_reference_example_sources_or_operations_or_and_conditions_and(request_, allowed):
    assert decide(HTTPBIN_POLICY, request_) is allowed


def test_reference_deny_example_denies_only_dev_posts_and_leaves_the_rest_open():
    """REF: 'denies requests from the dev namespace to the POST method'; no ALLOW policy, so allow-all otherwise."""
    deny_dev_posts = policy("""  action: DENY
  rules:
  - from:
    - source:
        namespaces: ["dev"]
    to:
    - operation:
        methods: ["POST"]
""")
    assert not decide(deny_dev_posts, Request("cluster.local/ns/dev/sa/x", method="POST"))
    assert decide(deny_dev_posts, Request("cluster.local/ns/dev/sa/x", method="GET"))
    decision = evaluate(load(deny_dev_posts), Request("cluster.local/ns/foo/sa/x", method="POST"), HTTPBIN)
    assert decision.allowed and decision.layer == "default" and "no ALLOW policy" in decision.reason


def test_reference_deny_on_port_8080_denies_all_tcp_there():
    """REF: 'For a DENY rule, missing attributes are treated as matches. This means all TCP traffic on
    port 8080 would be denied'; without the port, all TCP traffic would be."""
    deny_post_8080 = policy("""  action: DENY
  rules:
  - to:
    - operation:
        methods: ["POST"]
        ports: ["8080"]
""")
    assert not decide(deny_post_8080, Request(SLEEP, protocol="tcp", port=8080))
    assert decide(deny_post_8080, Request(SLEEP, protocol="tcp", port=9090))
    assert decide(deny_post_8080, Request(SLEEP, method="GET", port=8080))
    assert not decide(deny_post_8080, Request(SLEEP, method="POST", port=8080))
    deny_post = deny_post_8080.replace('        ports: ["8080"]\n', "")
    assert not decide(deny_post, Request(SLEEP, protocol="tcp", port=9090))


def test_reference_audit_marks_without_deciding():
    """REF, the AUDIT example: GET under /user/profile/ is audited; the decision comes from the others."""
    audit = policy("""  selector:
    matchLabels:
      app: myapi
  action: AUDIT
  rules:
  - to:
    - operation:
        methods: ["GET"]
        paths: ["/user/profile/*"]
""", "anyname", "ns1")
    myapi = Workload("ns1", {"app": "myapi"})
    decision = evaluate(load(audit), Request(SLEEP, method="GET", path="/user/profile/7"), myapi)
    assert decision.allowed and decision.audited == ("ns1/anyname",)
    assert evaluate(load(audit), Request(SLEEP, method="POST", path="/user/profile/7"), myapi).audited == ()
    assert evaluate(load(audit), Request(SLEEP, method="GET", path="/user/profile/7"), Workload("ns1", {"app": "other"})).audited == ()


def test_allow_nothing_deny_all_allow_all():
    """CONCEPTS, 'allow-nothing, deny-all and allow-all policy'; REF: 'spec: {}' allows nothing."""
    allow_nothing = policy("  action: ALLOW\n", "allow-nothing")
    allow_all = policy("  action: ALLOW\n  rules:\n  - {}\n", "allow-all")
    deny_all = policy("  action: DENY\n  rules:\n  - {}\n", "deny-all")
    anything = Request(SLEEP, method="DELETE", path="/anything")
    assert not decide(allow_nothing, anything)
    assert not decide(policy("  {}\n"), anything)
    assert decide(allow_all, anything)
    assert decide(allow_nothing + "\n---\n" + allow_all, anything)  # ALLOW policies add up
    both = evaluate(load(allow_all + "\n---\n" + deny_all), anything, HTTPBIN)
    assert not both and both.layer == "DENY" and both.policy == "foo/deny-all"


@pytest.mark.parametrize(("pattern", "value", "matches"), [
    ("test.abc.*", "test.abc.com", True), ("test.abc.*", "test.abc.com.cn", True), ("test.abc.*", "test.abc.org", True),
    ("*.abc.com", "eng.abc.com", True), ("*.abc.com", "test.eng.abc.com", True), ("*.abc.com", "abc.com", False),
    ("*", "x", True), ("*", "", False), ("abc", "abcd", False), ("abc*", "abc", True), ("*abc", "abc", True),
])
def test_value_matching_forms(pattern, value, matches):
    """CONCEPTS, 'Value matching' (the test.abc.* and *.abc.com examples); REF, message Rule (abc, abc*, *abc, *)."""
    assert string_matches(pattern, value) is matches


def test_tester_policy_prefix_or_suffix_paths():
    """CONCEPTS: paths ["/test/*", "*/info"]; Envoy matches the path without its query string."""
    tester = policy('  selector:\n    matchLabels:\n      app: products\n  action: ALLOW\n  rules:\n  - to:\n    - operation:\n'
                    '        paths: ["/test/*", "*/info"]\n', "tester", "default")
    products = Workload("default", {"app": "products"})
    for path, allowed in (("/test/a/b", True), ("/api/info", True), ("/info?debug=1", True), ("/tests", False), ("/info/x", False)):
        assert decide(tester, Request(SLEEP, path=path), products) is allowed, path


def test_exclusion_matching_examples():
    """CONCEPTS, 'Exclusion matching': a JWT required except at /healthz (ALLOW with notPaths), and
    /admin refused without one (DENY with notRequestPrincipals: ["*"])."""
    products = Workload("default", {"app": "products"})
    healthz = policy('  selector:\n    matchLabels:\n      app: products\n  action: ALLOW\n  rules:\n  - to:\n    - operation:\n'
                     '        notPaths: ["/healthz"]\n    from:\n    - source:\n        requestPrincipals: ["*"]\n',
                     "disable-jwt-for-healthz", "default")
    assert decide(healthz, Request(path="/api", claims=GOOGLE), products)
    assert not decide(healthz, Request(path="/api"), products)
    # on its own the policy does not open /healthz: no ALLOW rule matches it, so deny-by-default applies
    assert not decide(healthz, Request(path="/healthz"), products)
    admin = policy('  selector:\n    matchLabels:\n      app: products\n  action: DENY\n  rules:\n  - to:\n    - operation:\n'
                   '        paths: ["/admin"]\n    from:\n    - source:\n        notRequestPrincipals: ["*"]\n', "enable-jwt-for-admin", "default")
    assert not decide(admin, Request(path="/admin"), products)
    assert decide(admin, Request(path="/admin", claims=GOOGLE), products)
    assert decide(admin, Request(path="/public"), products)


def test_custom_condition_on_a_header():
    """CONCEPTS, 'Custom conditions': request.headers[version] in v1, v2, from sleep, GET."""
    versioned = policy('  selector:\n    matchLabels:\n      app: httpbin\n      version: v1\n  action: ALLOW\n  rules:\n  - from:\n'
                       '    - source:\n        principals: ["cluster.local/ns/default/sa/sleep"]\n    to:\n    - operation:\n'
                       '        methods: ["GET"]\n    when:\n    - key: request.headers[version]\n      values: ["v1", "v2"]\n', "httpbin")
    sleep = "cluster.local/ns/default/sa/sleep"
    assert decide(versioned, Request(sleep, headers={"Version": "v2"}))  # header names are case-insensitive
    assert not decide(versioned, Request(sleep, headers={"version": "v3"}))
    assert not decide(versioned, Request(sleep))
    assert decide(versioned, Request(sleep), Workload("foo", {"app": "httpbin", "version": "v2"}))  # selector misses: no policy


def test_authenticated_only_and_the_plaintext_pitfall():
    """CONCEPTS: principals ["*"] admits only mTLS peers; 'httpbin-deny' (DENY notNamespaces foo) also
    denies plaintext, which has no namespace at all ('Dependency on mutual TLS')."""
    authenticated = policy('  action: ALLOW\n  rules:\n  - from:\n    - source:\n        principals: ["*"]\n')
    assert decide(authenticated, Request("cluster.local/ns/bar/sa/x"))
    assert not decide(authenticated, Request(None))
    deny_others = policy('  action: DENY\n  rules:\n  - from:\n    - source:\n        notNamespaces: ["foo"]\n', "httpbin-deny")
    assert decide(deny_others, Request(SLEEP))
    assert not decide(deny_others, Request("cluster.local/ns/bar/sa/x"))
    assert not decide(deny_others, Request(None))


def test_task_explicit_deny_step_by_step():
    """TASK-DENY: deny GET; then deny GET unless x-token is admin; then an ALLOW for /ip. Status codes as the task shows."""
    deny_get = policy('  selector:\n    matchLabels:\n      app: httpbin\n  action: DENY\n  rules:\n  - to:\n    - operation:\n'
                      '        methods: ["GET"]\n', "deny-method-get")
    assert not decide(deny_get, Request(SLEEP, method="GET", path="/get"))  # 403
    assert decide(deny_get, Request(SLEEP, method="POST", path="/post"))  # 200
    unless_admin = deny_get + '    when:\n    - key: request.headers[x-token]\n      notValues: ["admin"]\n'
    assert decide(unless_admin, Request(SLEEP, method="GET", path="/get", headers={"x-token": "admin"}))  # 200
    assert not decide(unless_admin, Request(SLEEP, method="GET", path="/get", headers={"x-token": "guest"}))  # 403
    allow_ip = policy('  selector:\n    matchLabels:\n      app: httpbin\n  action: ALLOW\n  rules:\n  - to:\n    - operation:\n'
                      '        paths: ["/ip"]\n', "allow-path-ip")
    both = unless_admin + "---\n" + allow_ip
    assert not decide(both, Request(SLEEP, method="GET", path="/ip", headers={"x-token": "guest"}))  # 403: DENY first
    assert decide(both, Request(SLEEP, method="GET", path="/ip", headers={"x-token": "admin"}))  # 200
    assert not decide(both, Request(SLEEP, method="GET", path="/get", headers={"x-token": "admin"}))  # 403: no ALLOW matches


def test_task_tcp_http_only_fields():
    """TASK-TCP: ports 9000 and 9001 allowed, 9002 refused; an ALLOW rule with methods is ignored on TCP;
    a DENY rule with only methods denies every TCP port; with ports as well, only that port."""
    tcp_echo = Workload("foo", {"app": "tcp-echo"})

    def connect(spec: str, port: int) -> bool:
        return decide(policy('  selector:\n    matchLabels:\n      app: tcp-echo\n' + spec, "tcp-policy"),
                      Request(SLEEP, protocol="tcp", port=port), tcp_echo)

    ports = '  action: ALLOW\n  rules:\n  - to:\n    - operation:\n        ports: ["9000", "9001"]\n'
    assert [connect(ports, port) for port in (9000, 9001, 9002)] == [True, True, False]
    with_methods = '  action: ALLOW\n  rules:\n  - to:\n    - operation:\n        methods: ["GET"]\n        ports: ["9000"]\n'
    assert [connect(with_methods, port) for port in (9000, 9001)] == [False, False]
    deny_methods = '  action: DENY\n  rules:\n  - to:\n    - operation:\n        methods: ["GET"]\n'
    assert [connect(deny_methods, port) for port in (9000, 9001)] == [False, False]
    deny_methods_port = '  action: DENY\n  rules:\n  - to:\n    - operation:\n        methods: ["GET"]\n        ports: ["9000"]\n'
    assert [connect(deny_methods_port, port) for port in (9000, 9001)] == [False, True]


def test_task_jwt_request_principal_and_list_claim():
    """TASK-JWT: requestPrincipals is iss/sub; then the groups claim (a list) must contain group1."""
    demo = {"iss": "testing@secure.istio.io", "sub": "testing@secure.istio.io", "foo": "bar"}
    groups = {**demo, "groups": ["group1", "group2"], "scope": ["scope1", "scope2"]}
    require_jwt = policy('  selector:\n    matchLabels:\n      app: httpbin\n  action: ALLOW\n  rules:\n  - from:\n    - source:\n'
                         '       requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]\n', "require-jwt")
    assert decide(require_jwt, Request(SLEEP, path="/headers", claims=demo))  # 200
    assert not decide(require_jwt, Request(SLEEP, path="/headers"))  # 403
    with_group = require_jwt + '    when:\n    - key: request.auth.claims[groups]\n      values: ["group1"]\n'
    assert decide(with_group, Request(SLEEP, path="/headers", claims=groups))  # 200
    assert not decide(with_group, Request(SLEEP, path="/headers", claims=demo))  # 403


def test_task_custom_ext_authz_is_asked_only_for_matching_requests():
    """TASK-CUSTOM: requests to /headers go to sample-ext-authz-grpc, which allows x-ext-authz: allow;
    /ip does not trigger it. The provider must be declared in meshConfig.extensionProviders."""
    ext_authz = policy('  selector:\n    matchLabels:\n      app: httpbin\n  action: CUSTOM\n  provider:\n    name: sample-ext-authz-grpc\n'
                       '  rules:\n  - to:\n    - operation:\n        paths: ["/headers"]\n', "ext-authz")
    asked = []

    def sample_ext_authz(request: Request) -> bool:
        asked.append(request.path)
        return request.headers.get("x-ext-authz") == "allow"

    providers = {"sample-ext-authz-grpc": sample_ext_authz}
    assert not decide(ext_authz, Request(SLEEP, path="/headers", headers={"x-ext-authz": "deny"}), providers=providers)
    assert decide(ext_authz, Request(SLEEP, path="/headers", headers={"x-ext-authz": "allow"}), providers=providers)
    assert decide(ext_authz, Request(SLEEP, path="/ip"), providers=providers)
    assert asked == ["/headers", "/headers"]
    undeclared = evaluate(load(ext_authz), Request(SLEEP, path="/headers", headers={"x-ext-authz": "allow"}), HTTPBIN)
    assert not undeclared and "not in meshConfig.extensionProviders" in undeclared.reason


def test_layers_custom_then_deny_then_allow():
    """REF, the five evaluation rules: a CUSTOM deny is final; an allowing CUSTOM still meets DENY and ALLOW."""
    layered = "\n---\n".join([
        policy('  action: CUSTOM\n  provider:\n    name: opa\n  rules:\n  - to:\n    - operation:\n        paths: ["/admin*"]\n', "c"),
        policy('  action: DENY\n  rules:\n  - to:\n    - operation:\n        methods: ["DELETE"]\n', "d"),
        policy('  action: ALLOW\n  rules:\n  - from:\n    - source:\n        namespaces: ["foo"]\n', "a"),
    ])
    opa = {"opa": lambda request: request.headers.get("x-approved") == "yes"}
    layers = [evaluate(load(layered), r, HTTPBIN, providers=opa) for r in (
        Request(SLEEP, path="/admin/x"), Request(SLEEP, path="/admin/x", headers={"x-approved": "yes"}),
        Request(SLEEP, method="DELETE", path="/admin/x", headers={"x-approved": "yes"}), Request("cluster.local/ns/bar/sa/x", path="/"))]
    assert [(d.allowed, d.layer) for d in layers] == [(False, "CUSTOM"), (True, "ALLOW"), (False, "DENY"), (False, "default")]
    two_providers = layered + "\n---\n" + policy('  action: CUSTOM\n  provider:\n    name: other\n  rules:\n  - {}\n', "c2")
    decision = evaluate(load(two_providers), Request(SLEEP, path="/"), HTTPBIN, providers={**opa, "other": lambda r: True})
    assert not decision and "PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS" in decision.reason


def test_root_namespace_policies_apply_everywhere_and_selectors_narrow():
    """REF, 'Authorization Policy scope': metadata/namespace, the root namespace, and the selector."""
    mesh_wide = policy('  selector:\n    matchLabels:\n      version: v1\n', "allow-nothing", "istio-system")
    assert not decide(mesh_wide, Request(SLEEP), Workload("bar", {"version": "v1"}))
    assert decide(mesh_wide, Request(SLEEP), Workload("bar", {"version": "v2"}))
    assert decide(policy("  {}\n", "allow-nothing", "bar"), Request(SLEEP), HTTPBIN)  # another namespace's policy


@pytest.mark.parametrize(("pattern", "claims", "matches"), [
    ("*", {"iss": "a", "sub": "b"}, True),
    ("https://example.com/*", {"iss": "https://example.com", "sub": "x"}, True),  # issuer exact, any subject
    ("https://example.com/*", {"iss": "https://example.com/x", "sub": "y"}, False),
    ("*/alice", {"iss": "anything", "sub": "alice"}, True),  # any issuer, exact subject
    ("*.com/alice", {"iss": "https://example.com", "sub": "alice"}, True),  # issuer suffix
    # an issuer URL has slashes: "https://ex*" splits into issuer "https:/" and subject prefix "ex", so it misses
    ("https://ex*", {"iss": "https://example.com", "sub": "z"}, False),
    ("accounts*", {"iss": "accounts.example.com", "sub": "z"}, True),  # no "/": an issuer prefix, any subject
    ("issuer-only", {"iss": "issuer-only", "sub": ""}, True),
    ("issuer-only", {"iss": "issuer-only", "sub": "s"}, False),
])
def test_request_principals_split_issuer_and_subject_at_the_last_slash(pattern, claims, matches):
    """generator.go, requestPrincipalGenerator (Istio 1.30.3)."""
    rule = policy(f'  action: ALLOW\n  rules:\n  - from:\n    - source:\n        requestPrincipals: ["{pattern}"]\n')
    assert decide(rule, Request(claims=claims)) is matches


def test_namespaces_wildcards_service_accounts_and_trust_domains():
    """generator.go: namespaces become '.*/ns/<ns>/.*' over the SPIFFE ID; serviceAccounts default to the
    policy's namespace; trustDomains match the ID's first segment."""
    def allowed(source: str, principal: str | None) -> bool:
        return decide(policy(f"  action: ALLOW\n  rules:\n  - from:\n    - source:\n        {source}\n"), Request(principal))

    assert allowed('namespaces: ["team-*"]', "cluster.local/ns/team-a/sa/x")
    assert not allowed('namespaces: ["team-*"]', "cluster.local/ns/ops/sa/x")
    assert allowed('serviceAccounts: ["sleep"]', SLEEP)
    assert not allowed('serviceAccounts: ["sleep"]', "cluster.local/ns/bar/sa/sleep")
    assert allowed('serviceAccounts: ["bar/sleep"]', "cluster.local/ns/bar/sa/sleep")
    assert not allowed('serviceAccounts: ["bar/sleep"]', "cluster.local/ns/bar/sa/sleep-2")
    assert allowed('trustDomains: ["*.local"]', SLEEP)
    assert not allowed('trustDomains: ["example.org"]', SLEEP)
    assert allowed('ipBlocks: ["10.0.0.0/24"]', None) and not allowed('notIpBlocks: ["10.0.0.10"]', None)


@pytest.mark.parametrize(("spec", "message"), [
    ("  action: DENY\n", "DENY action without `rules` is meaningless"),
    ("  action: CUSTOM\n  rules:\n  - {}\n", "`provider.name` must not be empty"),
    ("  action: ALLOW\n  provider:\n    name: x\n  rules:\n  - {}\n", "`provider` must not be with non CUSTOM action, found ALLOW"),
    ("  action: PERMIT\n", "action 'PERMIT' is not one of ALLOW, DENY, AUDIT, CUSTOM"),
    ("  rules:\n  - from:\n    - source:\n        principal: [\"a\"]\n", "unknown field 'principal' in from.source; accepted: principals"),
    ("  rules:\n  - from:\n    - source: {}\n", "`from.source` must not be empty, found at rule 0"),
    ("  rules:\n  - from: []\n", "`from` must not be empty, found at rule 0"),
    ("  rules:\n  - when:\n    - key: request.time\n      values: [\"1\"]\n", "unknown attribute: request.time"),
    ("  rules:\n  - when:\n    - key: request.headers[x]\n", "at least one of `values` or `notValues` must be set for key request.headers"),
    ("  rules:\n  - when:\n    - key: destination.labels[app]\n      values: [\"a\"]\n", "replaced by the workload selector"),
    ("  rules:\n  - when:\n    - key: request.headers[x\n      values: [\"a\"]\n", r"bad key \(request.headers\[x\): should have format request.headers\[name\]"),
    ("  rules:\n  - from:\n    - source:\n        serviceAccounts: [\"a\"]\n        namespaces: [\"b\"]\n", "cannot set serviceAccounts"),
    ("  rules:\n  - from:\n    - source:\n        principals: [\"\"]\n", "empty value not allowed, found in Principals"),
    ("  rules:\n  - to:\n    - operation:\n        ports: [\"http\"]\n", r"bad port \(http\)"),
    ("  rules:\n  - from:\n    - source:\n        ipBlocks: [\"10.0.0.0/33\"]\n", r"bad IP address or CIDR range \(10.0.0.0/33\)"),
    ("  rules:\n  - to:\n    - operation:\n        paths: [\"/foo/{*}\"]\n", "Envoy URI template"),
    ("  action: CUSTOM\n  provider:\n    name: x\n  rules:\n  - from:\n    - source:\n        principals: [\"a\"]\n",
     "source.principal is currently not supported with CUSTOM action"),
    ("  targetRefs:\n  - kind: Gateway\n    group: gateway.networking.k8s.io\n    name: gw\n", "use selector"),
])
def test_invalid_policies_are_refused_with_istiods_reason(spec, message):
    with pytest.raises(PolicyInvalid, match=message):
        load(policy(spec))


def test_messages_name_the_policy_and_non_manifests_are_refused():
    with pytest.raises(PolicyInvalid, match=r"^invalid policy p\.foo: DENY action"):
        load(policy("  action: DENY\n"))
    with pytest.raises(PolicyInvalid, match="expected kind AuthorizationPolicy"):
        load({"apiVersion": "rbac.istio.io/v1alpha1", "kind": "ServiceRole", "metadata": {"name": "x"}})
    with pytest.raises(PolicyInvalid, match="dry-run"):
        load(policy("  {}\n").replace("  name: p\n", "  name: p\n  annotations:\n    istio.io/dry-run: \"true\"\n"))
    with pytest.raises(ValueError, match="protocol 'udp' is not one of http, tcp"):
        Request(protocol="udp")


def test_field_names_are_the_protos():
    """istio/api v1.30.3 security/v1beta1/authorization_policy.proto, messages Source and Operation (json names)."""
    source = {"principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces", "notNamespaces",
              "serviceAccounts", "notServiceAccounts", "ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks",
              "trustDomains", "notTrustDomains"}
    operation = {"hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths"}

    def with_negations(fields):
        return {name for field in fields for name in (field, "not" + field[0].upper() + field[1:])}

    assert with_negations(SOURCE_FIELDS) == source
    assert with_negations(OPERATION_FIELDS) == operation


def test_custom_on_tcp_asks_only_a_grpc_provider():
    """builder.go (buildTCP): 'ignored CUSTOM action with HTTP provider on TCP filter chain'; a gRPC
    provider gets the TCP ext_authz filter, and the rule's HTTP-only paths are left out, so it matches."""
    custom = policy('  action: CUSTOM\n  provider:\n    name: authz\n  rules:\n  - to:\n    - operation:\n        paths: ["/admin/*"]\n')
    refuse = ExtensionProvider(lambda request: False, api="grpc")
    assert not decide(custom, Request(SLEEP, protocol="tcp"), providers={"authz": refuse})
    assert decide(custom, Request(SLEEP, protocol="tcp"), providers={"authz": ExtensionProvider(lambda request: False, api="http")})
    assert decide(custom, Request(SLEEP, path="/public"), providers={"authz": refuse})
    with pytest.raises(ValueError, match="ext_authz api 'rest' is not one of grpc, http"):
        ExtensionProvider(lambda request: True, api="rest")


def test_custom_allow_does_not_bypass_allow_policies():
    """The chapter's third self-check question: CUSTOM allows, DENY and ALLOW miss -> deny; drop the ALLOW -> allow."""
    custom = policy('  action: CUSTOM\n  provider:\n    name: authz\n  rules:\n  - {}\n', "c")
    deny = policy('  action: DENY\n  rules:\n  - to:\n    - operation:\n        methods: ["DELETE"]\n', "d")
    allow = policy('  action: ALLOW\n  rules:\n  - to:\n    - operation:\n        paths: ["/other"]\n', "a")
    providers = {"authz": lambda request: True}
    assert not decide("---\n".join([custom, deny, allow]), Request(SLEEP, path="/x"), providers=providers)
    assert decide("---\n".join([custom, deny]), Request(SLEEP, path="/x"), providers=providers)


def test_paths_match_without_query_and_fragment():
    """Envoy's type.matcher.v3.PathMatcher: the path /data matches the :path /data#fragment?param=value."""
    data = policy('  rules:\n  - to:\n    - operation:\n        paths: ["/data"]\n')
    assert decide(data, Request(SLEEP, path="/data#fragment?param=value"))
    assert not decide(data, Request(SLEEP, path="/data/x"))

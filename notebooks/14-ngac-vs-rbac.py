# %% [markdown]
# # 14 · NGAC vs RBAC: what an identity may do
#
# Chapter 13 answered *who* is calling: a SPIFFE ID proven over mutual TLS. This chapter is about *what
# that identity may do*. Meshes usually express it as roles or as allow-lists of identities per service
# (Istio's AuthorizationPolicy). Role-based access control (RBAC) is simple until permissions depend on
# several attributes at once; then roles multiply. NIST's Next Generation Access Control (NGAC, ANSI/INCITS
# 565) keeps policy as a graph of attributes in which independent policies combine by construction, and
# whose decision is a reachability question anyone can audit.
#
# **After this chapter you can**
# - name NGAC's policy elements, assignments and associations, and compute its access decision by hand;
# - explain why "every policy class must grant" combines policies without writing their product down;
# - quantify RBAC's role explosion as attribute dimensions grow, and check that NGAC decides the same;
# - express time- and location-bounded permissions, which plain RBAC cannot;
# - read an Istio AuthorizationPolicy and compute its CUSTOM, DENY, ALLOW decision, TCP and mTLS gaps included;
# - state a policy as an ABAC predicate, and count what RBAC, NGAC, AuthorizationPolicy and ABAC each need
#   for one requirement;
# - put an NGAC decision behind mutual TLS, with the caller's SPIFFE ID as the user.

# %%
from meshlab.viz.architectures import policy_enforcement

policy_enforcement()

# %%
import datetime as dt
import random

import ipywidgets as widgets
import matplotlib.pyplot as plt

from meshlab.ngac import ContextAttribute, Policy, equivalent_pair, hospital_example, role_explosion
from meshlab.viz import new_axes, use_book_style

use_book_style()
rng = random.Random(14)

# %% [markdown]
# ## 1 · RBAC in one paragraph
#
# Users are assigned roles; roles hold permissions (an operation on an object). A decision asks whether
# any of the user's roles holds the permission. There is nothing else: no attribute of the object, no
# context of the request. When access depends on *department and region*, the only way to say "sales
# people in the EU read EU sales documents" is a role for that combination, and one for every other.
#
# Istio began this way. Its first authorization API, `rbac.istio.io/v1alpha1`, had a `ServiceRole`
# (permissions on services), a `ServiceRoleBinding` (who holds the role) and a `ClusterRbacConfig` (where
# enforcement was on). Istio 1.4 replaced all three with one kind, `AuthorizationPolicy`, and deprecated
# them; Istio 1.6 removed them (istio.io blog, "Migrate pre-Istio 1.4 Alpha security policy to the current
# APIs", 2021; Istio 1.6 change notes). Today's policy is not built on roles: section 5 takes it apart.
#
# ## 2 · Model: NGAC's graph
#
# Policy elements: **users** (u), **user attributes** (ua), **objects** (o), **object attributes** (oa),
# **policy classes** (pc). **Assignments** form a DAG (u → ua → … → pc, o → oa → … → pc); **associations**
# (ua, rights, oa) grant rights. The decision:
#
# > *u* may exercise *r* on *o* iff for **every** policy class containing *o* there is an association
# > (ua, rights, oa) with *r* ∈ rights, *u* reaching ua, *o* reaching oa, and oa reaching that policy class.
#
# A cardiology record belongs to two policy classes: the ward policy (who works on which ward) and the
# confidentiality policy (who may read or write medical notes). Both must grant.

# %%
policy = hospital_example()  # meshlab.ngac: the policy classes, attributes, associations and users described above
from meshlab.viz.figures import draw_ngac_graph  # boxes sized to their names, associations labelled with their rights
from meshlab.viz.text import fit

print(fit("assignments:  " + ", ".join(f"{child} -> {parent}" for child, parent in policy.graph.edges), indent=" " * 14))
print(fit("associations: " + "; ".join(f"({a.user_attribute}, {sorted(a.rights)}, {a.object_attribute})" for a in policy.associations), indent=" " * 14))

draw_ngac_graph(policy, "The hospital policy: assignments (solid), associations with their rights (dashed)")
plt.show()

for user in ("alice", "bob", "carol"):
    for right in ("read", "write"):
        decision = policy.decide(user, right, "record-17")
        why = ", ".join(f"{pc}: {'granted' if a else 'no association'}" for pc, a in decision.granted_by.items())
        print(f"{user:<6} {right:<6} record-17 -> {'ALLOW' if decision else 'deny ':<5}  ({why})")

# %% [markdown]
# ## 3 · Role explosion
#
# Suppose access requires user and object to agree on several attribute dimensions (department, region,
# clearance, ...). RBAC needs a role per *combination* of values; NGAC needs one user attribute and one
# object attribute per *value*, one policy class per dimension and one association per value. Move the
# sliders:

# %%
def explosion(dimensions, values_per_dimension):
    counts = [role_explosion({f"d{i}": values_per_dimension for i in range(k)}) for k in range(1, dimensions + 1)]
    ax = new_axes("Roles vs attributes as dimensions are added", "attribute dimensions", "policy elements (log scale)")
    ax.plot(range(1, dimensions + 1), [c["rbac_roles"] for c in counts], "o-", label="RBAC roles")
    ax.plot(range(1, dimensions + 1), [c["ngac_attributes"] + c["ngac_policy_classes"] for c in counts], "s-", label="NGAC attributes + policy classes")
    ax.plot(range(1, dimensions + 1), [c["ngac_associations"] for c in counts], "^-", label="NGAC associations")
    ax.set_yscale("log")
    ax.legend()
    plt.show()
    print(f"{dimensions} dimensions x {values_per_dimension} values: RBAC {counts[-1]['rbac_roles']} roles; "
          f"NGAC {counts[-1]['ngac_attributes']} attributes, {counts[-1]['ngac_policy_classes']} policy classes, {counts[-1]['ngac_associations']} associations")


explosion(4, 5)

# %% tags=["nbval-ignore-output"]
widgets.interact(explosion, dimensions=widgets.IntSlider(value=4, min=1, max=6, description="dimensions"),
                 values_per_dimension=widgets.IntSlider(value=5, min=2, max=10, description="values each"));
small, large = (role_explosion({f"d{i}": 5 for i in range(n)}) for n in (4, 5))
assert large["rbac_roles"] == 5 * small["rbac_roles"] and large["ngac_associations"] == small["ngac_associations"] + 5

# %% [markdown]
# Fewer elements would mean nothing if the two policies decided differently. Write the same attribute
# policy both ways for a seeded population and compare every decision:

# %%
dimensions = {"department": ["sales", "ops", "hr", "legal"], "region": ["eu", "us", "apac"], "clearance": ["low", "high"]}
users = {f"user{i:02}": {d: rng.choice(v) for d, v in dimensions.items()} for i in range(30)}
documents = {f"doc{i:02}": {d: rng.choice(v) for d, v in dimensions.items()} for i in range(30)}
ngac, rbac = equivalent_pair(dimensions, users, documents)
agree = sum(bool(ngac.decide(u, "read", d)) == rbac.decide(u, "read", d) for u in users for d in documents)
allowed = sum(rbac.decide(u, "read", d) for u in users for d in documents)
print(f"{len(users) * len(documents)} decisions, {agree} identical, {allowed} allowed")
print(f"RBAC: {len(rbac.roles)} roles with permissions (of {4 * 3 * 2} combinations); NGAC: {len(ngac.associations)} associations, "
      f"{sum(1 for _, k in ngac.graph.nodes(data='kind') if k in ('ua', 'oa'))} attributes")
assert agree == len(users) * len(documents)

# %% [markdown]
# ## 4 · Time and place
#
# "Dan may write medical notes only on shift (08:00-20:00) and only from the ward." NGAC assigns Dan to an
# *on duty* attribute while the condition holds (its obligations do the assigning; meshlab evaluates the
# same membership at decision time). RBAC has no place to put the condition: a role is held or it is not,
# so someone must grant and revoke it twice a day, outside the policy.

# %%
on_duty = ContextAttribute("on duty", lambda c: 8 <= c["hour"] < 20 and c["location"] == "ward")
policy.add_context_attribute(on_duty, "confidentiality")
policy.add("u", "dan")
policy.assign("dan", "cardiology staff")
policy.assign("dan", "on duty")
policy.associate("on duty", {"write"}, "medical notes")


def dans_write(hour, location):
    decision = policy.decide("dan", "write", "record-17", {"hour": hour, "location": location})
    print(f"{hour:02}:00 from the {location}: dan write record-17 -> {'ALLOW' if decision else 'deny'}")


for hour, location in ((7, "ward"), (10, "ward"), (10, "home"), (21, "ward")):
    dans_write(hour, location)

# %% tags=["nbval-ignore-output"]
widgets.interact(dans_write, hour=widgets.IntSlider(value=10, min=0, max=23, description="hour"),
                 location=widgets.Dropdown(options=["ward", "home", "cafeteria"], description="location"));
assert policy.decide("dan", "write", "record-17", {"hour": 10, "location": "ward"})
assert not policy.decide("dan", "write", "record-17", {"hour": 10, "location": "home"})

# %% [markdown]
# ## 5 · Istio's AuthorizationPolicy, as it is today
#
# **Stage: model.** An `AuthorizationPolicy` (`security.istio.io/v1`) lives in a namespace, picks
# workloads with an optional `selector`, names an `action` and lists `rules`. Its meaning, from Istio's own
# API and translator (istio/api v1.30.3, `security/v1beta1/authorization_policy.proto`, which is the
# istio.io "Authorization Policy" reference; istio/istio 1.30.3, `pilot/pkg/security/authz/model` and
# `builder`, which compile it into Envoy's RBAC filter):
#
# - **A rule** matches when one of its `from` sources, one of its `to` operations and *all* of its
#   `when` conditions match; a missing list matches anything. Inside a source or operation the fields are
#   ANDed, inside a field the values are ORed, and every `not...` value must miss.
# - **`from.source`**: `principals` (the peer's identity from its mTLS certificate,
#   `cluster.local/ns/NS/sa/SA`), `namespaces` and `serviceAccounts` (read from that same identity, so
#   they need mTLS), `ipBlocks` (`source.ip`), `remoteIpBlocks` (the client from X-Forwarded-For or PROXY
#   protocol), `requestPrincipals` (a verified JWT's `iss/sub`); each with a `not...` twin.
# - **`to.operation`**: `hosts` (case-insensitive), `ports`, `methods`, `paths` (without the query).
# - **`when`**: `key` with `values` and/or `notValues`, over attributes such as `request.headers[...]`,
#   `request.auth.claims[...]` (a list claim matches when one element does), `source.ip`, `remote.ip`,
#   `source.namespace`, `source.principal`, `destination.ip`, `destination.port`, `connection.sni`
#   (istio.io, "Authorization Policy Conditions"). There is no clock among them.
# - **Values** are exact `abc`, prefix `abc*`, suffix `*abc` or presence `*` (not empty).
# - **Actions, in this order**: (1) if a `CUSTOM` policy matches, its extension provider decides and a deny
#   is final; (2) if a `DENY` policy matches, deny; (3) if no `ALLOW` policy applies to the workload,
#   allow; (4) if an `ALLOW` policy matches, allow; (5) deny. `AUDIT` only marks the request for logging.
#   `CUSTOM` names a provider declared in `meshConfig.extensionProviders` (`envoyExtAuthzHttp` or
#   `envoyExtAuthzGrpc`): an ext_authz service that sees the request and answers; its rules only choose
#   *which* requests are sent there, and its allow cannot bypass `DENY` or `ALLOW`.
# - **On TCP** the HTTP-only fields (methods, paths, hosts, headers, JWT) cannot be evaluated: an `ALLOW`
#   rule that uses any is dropped, while in a `DENY` rule they are left out, so it matches *more* (the
#   proto's own warning: "for a DENY rule, missing attributes are treated as matches").
#
# `meshlab.authz` evaluates policies with exactly these semantics, checking manifests as istiod's webhook
# does; `tests/test_authz.py` pins it to the examples of Istio's documentation (the reference page, the
# security concepts page and the authz-deny, authz-tcp, authz-jwt and authz-custom tasks). Here is a
# shop's `orders` service with one policy of each enforcing action:

# %%
from meshlab.authz import ExtensionProvider, Request, Workload, evaluate, load

SHOP_POLICIES = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: admin-ext-authz, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  action: CUSTOM
  provider: {name: shop-opa}
  rules:
  - to:
    - operation: {paths: ["/admin/*"]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-debug, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  action: DENY
  rules:
  - to:
    - operation: {paths: ["/debug/*"]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: orders, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  action: ALLOW
  rules:
  - from:
    - source: {namespaces: ["shop"]}
    to:
    - operation: {methods: ["GET"]}
  - from:
    - source: {principals: ["cluster.local/ns/shop/sa/checkout"]}
    to:
    - operation: {methods: ["POST"], paths: ["/orders"]}
    when:
    - key: request.auth.claims[scope]
      values: ["orders:write"]
"""
shop_policies = load(SHOP_POLICIES)
orders = Workload("shop", {"app": "orders"})
# meshConfig.extensionProviders: "shop-opa" is an envoyExtAuthzHttp service that admits admins only
extension_providers = {"shop-opa": ExtensionProvider(lambda request: (request.claims or {}).get("role") == "admin", api="http")}
CALLERS = {"frontend": "cluster.local/ns/shop/sa/frontend", "checkout": "cluster.local/ns/shop/sa/checkout",
           "frontend@staging": "cluster.local/ns/staging/sa/frontend", "plaintext": None}
TOKENS = {"no JWT": None, "scope=orders:write": {"iss": "https://login.shop.example", "sub": "u1", "scope": ["orders:write"]},
          "scope=orders:read": {"iss": "https://login.shop.example", "sub": "u1", "scope": ["orders:read"]},
          "role=admin": {"iss": "https://login.shop.example", "sub": "u2", "role": "admin"}}


def shop_request(caller, method, path, token="no JWT"):
    if method == "TCP":
        return Request(CALLERS[caller], protocol="tcp", port=8000)
    return Request(CALLERS[caller], method=method, path=path, claims=TOKENS[token])


def decide_line(caller, method, path, token="no JWT"):
    decision = evaluate(shop_policies, shop_request(caller, method, path, token), orders, extension_providers)
    what = "TCP :8000" if method == "TCP" else f"{method} {path} {'' if token == 'no JWT' else token}"
    return decision, f"{caller:<17} {what:<34} -> {'ALLOW' if decision else 'deny '} {decision.layer:<7} {decision.policy or ''}"


shop_cases = [("frontend", "GET", "/orders/17"), ("frontend@staging", "GET", "/orders/17"), ("plaintext", "GET", "/orders/17"),
              ("checkout", "POST", "/orders", "scope=orders:write"), ("checkout", "POST", "/orders", "scope=orders:read"),
              ("frontend", "POST", "/orders", "scope=orders:write"), ("frontend", "GET", "/debug/pprof"),
              ("frontend", "GET", "/admin/users", "role=admin"), ("frontend", "GET", "/admin/users"),
              ("frontend@staging", "GET", "/admin/users", "role=admin"), ("frontend", "TCP", "")]
shop_decisions = []
for case in shop_cases:
    decision, line = decide_line(*case)
    shop_decisions.append((decision.allowed, decision.layer))
    print(line)
assert shop_decisions == [(True, "ALLOW"), (False, "default"), (False, "default"), (True, "ALLOW"), (False, "default"),
                          (False, "default"), (False, "DENY"), (True, "ALLOW"), (False, "CUSTOM"), (False, "default"), (False, "DENY")]

# %% [markdown]
# Read the table against the five steps. The plaintext caller has no namespace (no certificate), so the
# `namespaces` rule cannot match it. The admin's request from staging passed the ext_authz service and was
# still denied: no `ALLOW` rule admits staging. On the TCP connection the `CUSTOM` policy was skipped
# (Envoy's TCP ext_authz filter speaks gRPC, and `shop-opa` is an HTTP provider), the `DENY` policy's
# `paths`, which TCP does not have, was left out so that rule matched everything, and the `ALLOW` rules,
# which use `methods`, would have been dropped. Try other requests (the second line names the rule that
# decided):

# %%
def ask(caller, method, path, token):
    decision, line = decide_line(caller, method, path, token)
    print(line)
    print(f"{'':<17} {decision.reason}")


ask("checkout", "POST", "/orders", "scope=orders:read")

# %% tags=["nbval-ignore-output"]
widgets.interact(ask, caller=widgets.Dropdown(options=list(CALLERS), description="caller"),
                 method=widgets.Dropdown(options=["GET", "POST", "DELETE", "TCP"], description="method"),
                 path=widgets.Dropdown(options=["/orders", "/orders/17", "/debug/pprof", "/admin/users"], description="path"),
                 token=widgets.Dropdown(options=list(TOKENS), description="JWT"));
assert not evaluate(shop_policies, shop_request("checkout", "DELETE", "/orders/17"), orders, extension_providers)

# %% [markdown]
# AuthorizationPolicy is richer than RBAC (conditions on headers, JWT claims, addresses; a DENY layer; a
# hook to an external decision point), yet every condition compares *one request attribute with
# constants*. "Caller and callee in the same tenant" compares two attributes with each other, and "only
# from 08:00 to 18:00" needs the clock: neither is in the language, which section 7 counts.
#
# ## 6 · ABAC: the policy as a predicate
#
# Attribute-based access control (NIST SP 800-162, "Guide to Attribute Based Access Control (ABAC)
# Definition and Considerations", 2014, updated 2019, https://doi.org/10.6028/NIST.SP.800-162) decides an
# operation by evaluating attributes of the **subject**, the **object**, the requested **operation** and
# the **environment** against rules. In `meshlab.abac` a rule is a Boolean expression over those four, and
# it may compare a subject's attribute with an object's. A request is allowed when a `permit` rule holds
# and no `deny` rule does; a rule that reads an attribute the request lacks never permits (and a deny
# rule that cannot be decided denies). Here is section 4's hospital, ward and duty hours included, as
# three rules, checked against the NGAC graph on every user, right and context:

# %%
from meshlab.abac import AbacPolicy, AbacRequest, Rule, action, environment, object_, subject

same_ward = subject.ward == object_.ward
on_shift = (environment.hour >= 8) & (environment.hour < 20) & (environment.location == "ward")
hospital_abac = AbacPolicy([
    Rule("ward staff read notes", same_ward & subject.profession.is_in({"doctor", "nurse"}) & (action == "read")),
    Rule("doctors write notes", same_ward & (subject.profession == "doctor") & (action == "write")),
    Rule("rostered staff write on shift", same_ward & subject.rostered & (action == "write") & on_shift),
])
print(hospital_abac)
staff = {"alice": {"ward": "cardiology", "profession": "doctor", "rostered": False},
         "bob": {"ward": "cardiology", "profession": "nurse", "rostered": False},
         "carol": {"ward": "oncology", "profession": "doctor", "rostered": False},
         "dan": {"ward": "cardiology", "profession": "clerk", "rostered": True}}
record_17 = {"ward": "cardiology", "kind": "medical notes"}
contexts = [{"hour": 7, "location": "ward"}, {"hour": 10, "location": "ward"}, {"hour": 10, "location": "home"}, {"hour": 21, "location": "ward"}]
compared = [(user, right, ctx["hour"], ctx["location"], bool(policy.decide(user, right, "record-17", ctx)),
             hospital_abac.decide(AbacRequest(staff[user], right, record_17, ctx)).allowed)
            for user in staff for right in ("read", "write") for ctx in contexts]
print(f"{len(compared)} decisions, NGAC and ABAC agree on {sum(n == a for *_, n, a in compared)}; "
      f"NGAC: {len(policy.associations)} associations and a context attribute, ABAC: {len(hospital_abac.rules)} rules")
assert all(n == a for *_, n, a in compared)

# %% [markdown]
# The two say the same thing differently. NGAC keeps the facts as a graph (who is on which ward, which
# object is in which class) and the policy as a few associations, so "what can Bob reach?" is a graph
# query. ABAC keeps the facts as attributes carried by the request and the policy as a formula, so it is
# the shortest to write and the hardest to review: the only way to learn what a formula allows is to
# evaluate it.
#
# ## 7 · One requirement, four models
#
# A mesh hosts tenants in regions, one namespace per tenant and region (`acme-eu`, `acme-us`, ...). The
# requirement: *a caller may GET a service of its own tenant and region; a POST only from 08:00 to
# 18:00*. `meshlab.tenancy` writes it in each model, decides every (caller, service, method, hour) case
# with each, compares with the requirement, and counts what each encoding needed:

# %%
from meshlab import tenancy


def four_ways(tenants, regions):
    mesh = tenancy.Mesh.of(tenants, regions)
    result = tenancy.compare(mesh)
    ax = new_axes(f"What the requirement costs with {regions} region(s)", "tenants", "policy elements")
    xs = range(1, len(tenancy.TENANTS) + 1)
    for model, marker in zip(result, "os^D"):
        ax.plot(xs, [tenancy.sizes(*tenancy.encodings(tenancy.Mesh.of(t, regions)))[model][0] for t in xs], f"{marker}-",
                label=f"{model} ({result[model]['unit']})")
    ax.axvline(tenants, color="0.6", linestyle=":")
    ax.legend()
    plt.show()
    print(f"{tenants} tenants x {regions} regions, {len(tenancy.cases(mesh))} cases:")
    for model, figures in result.items():
        print(f"  {model:<20} {figures['unit']:>12}: {figures['size']:>3}   wrong on {figures['wrong']:>3} cases")
        print(f"      {figures['note']}")
    return result


four_ways_result = four_ways(4, 3)

# %% tags=["nbval-ignore-output"]
widgets.interact(four_ways, tenants=widgets.IntSlider(value=4, min=1, max=len(tenancy.TENANTS), description="tenants"),
                 regions=widgets.IntSlider(value=3, min=1, max=len(tenancy.REGIONS), description="regions"));
assert [four_ways_result[m]["wrong"] for m in ("NGAC", "AuthorizationPolicy", "ABAC")] == [0, 0, 0]

# %% [markdown]
# - **RBAC** needs a role per (tenant, region), and is wrong on every out-of-hours write in a caller's own
#   cell: the window is not a role.
# - **AuthorizationPolicy** needs a policy per namespace, because no condition can say "the caller's
#   namespace is mine"; the window needs a `CUSTOM` policy and an ext_authz service that reads its own
#   clock (the sole place a mesh can put such a condition).
# - **NGAC** needs an attribute and an association per *value*, a policy class per dimension, and a
#   context attribute for the window: it grows with tenants *plus* regions.
# - **ABAC** needs one rule whatever the size, because it can compare the subject's attributes with the
#   object's; the price is that the rule is code to be read, not a graph to be queried.
#
# Lab 14 asks you to write two such policies yourself, and checks them on every case.

# %% [markdown]
# ## 8 · Live, on loopback: NGAC behind mutual TLS
#
# **Stage: live, on loopback** (any machine with the Python packages; no root). The user is no longer a
# name typed into a policy: it is the SPIFFE ID the client *proved* in a real TLS 1.3 handshake (chapter 13's
# SVIDs). The server's authorization callback asks the NGAC policy whether that ID may `call` the orders
# service, with the request's context; a batch job is allowed only during its night window.

# %% tags=["nbval-ignore-output"]
from cryptography.hazmat.primitives import serialization

from meshlab.identity.authority import TrustDomainAuthority
from meshlab.identity.mtls import LoopbackServer, call, context
from meshlab.identity.spiffeid import TrustDomain, parse_id

ORDERS, FRONTEND, BATCH = (f"spiffe://meshlab.test/ns/shop/sa/{name}" for name in ("orders", "frontend", "batch"))
mesh = Policy()
mesh.add("pc", "shop")
mesh.assign(mesh.add("ua", "shop callers"), "shop")
mesh.add_context_attribute(ContextAttribute("night window", lambda c: c["hour"] < 6), "shop")
mesh.assign(mesh.add("oa", "order services"), "shop")
mesh.associate("shop callers", {"call"}, "order services")
mesh.associate("night window", {"call"}, "order services")
mesh.assign(mesh.add("o", ORDERS), "order services")
mesh.assign(mesh.add("u", FRONTEND), "shop callers")
mesh.assign(mesh.add("u", BATCH), "night window")

authority = TrustDomainAuthority(TrustDomain("meshlab.test"))
roots = authority.ca_certificate.public_bytes(serialization.Encoding.PEM)
svids = {name: authority.sign_x509_svid(parse_id(name), dt.timedelta(minutes=10)) for name in (ORDERS, FRONTEND, BATCH)}


def tls_for(name, server_side=False):
    return context(*svids[name].pem_files(), roots, server_side=server_side)


results = []
for caller, hour in ((FRONTEND, 14), (BATCH, 14), (BATCH, 3)):
    def authorize(peer, hour=hour):
        return peer is not None and mesh.kind(peer) == "u" and mesh.decide(peer, "call", ORDERS, {"hour": hour}).allowed

    server = LoopbackServer(authorize, 1, tls_for(ORDERS, server_side=True), ORDERS)
    record = call("127.0.0.1", server.port, ORDERS, tls_for(caller), caller)
    served = server.join()[0]
    results.append((caller.rsplit("/", 1)[1], hour, served["peer"] == caller, record["allowed"]))
    print(f"{caller.rsplit('/', 1)[1]:<9} at {hour:02}:00 -> proven {served['peer']}, NGAC: {'ALLOW' if record['allowed'] else 'deny'}")
assert results == [("frontend", 14, True, True), ("batch", 14, True, False), ("batch", 3, True, True)]

# %% [markdown]
# ## Stage of this chapter
#
# Sections 1-7 run on the **model** stage, in this process and deterministic: the NGAC graphs, the RBAC
# roles, Istio's AuthorizationPolicy evaluated by `meshlab.authz` with the semantics of Istio 1.30.3's
# translator, and the ABAC rules. Section 8 runs **live** on loopback: real mutual TLS handshakes whose
# proven SPIFFE IDs feed the NGAC decision. On the **kind** stage the same NGAC or ABAC decision would sit
# in an ext_authz service that Envoy consults per request (a `CUSTOM` AuthorizationPolicy naming a provider
# from `meshConfig.extensionProviders`), with the caller's SPIFFE ID taken from the peer certificate.
#
# ## What to remember
#
# - RBAC decides on one attribute, the role; policies over several attributes multiply roles (the
#   explosion above), and context has nowhere to live.
# - NGAC decides by reachability in one graph; each policy class must grant, so independent policies
#   combine without their product being written down, and "who can access what, and why not" is a graph
#   query.
# - Istio's ServiceRole RBAC API is gone (deprecated in 1.4, removed in 1.6). AuthorizationPolicy matches
#   sources, operations and `when` conditions on request attributes (headers, JWT claims, IPs, ports) and
#   decides CUSTOM, then DENY, then ALLOW; with no ALLOW policy a workload allows everything, with one it
#   denies what no ALLOW rule matches. Identity fields need mTLS, and on TCP an ALLOW rule with HTTP fields
#   is dropped while a DENY rule with them matches more.
# - ABAC writes policy as a predicate over subject, object, action and environment attributes; it can
#   compare a caller's attribute with the object's, which neither roles nor AuthorizationPolicy's
#   constant-valued conditions can. A clock-bounded rule needs NGAC's context attributes, ABAC's
#   environment, or, in Istio, an ext_authz service behind a CUSTOM policy.
# - In a mesh the user is the caller's proven SPIFFE ID and the object is the service or API; the decision
#   can sit behind mTLS as here, or in an external authorization service the proxy consults.
#
# ## Check yourself
#
# 1. Four tenants in three regions; a caller may reach services of its own tenant and region. How many
#    RBAC roles, NGAC associations, AuthorizationPolicies and ABAC rules does that take?
#
#    <details><summary>Answer</summary>
#
#    12 roles (one per combination); 7 NGAC associations (one per value: 4 + 3) in 2 policy classes; 12
#    AuthorizationPolicies (one per namespace: no condition compares the caller's namespace with the
#    callee's); 1 ABAC rule. Section 7's writes-only-in-hours half adds 2 NGAC associations and 1 CUSTOM
#    policy, and RBAC cannot state it at all.
#
#    </details>
#
# 2. An object is in two policy classes. One grants read, the other does not. Is read allowed?
#
#    <details><summary>Answer</summary>
#
#    No: every policy class containing the object must grant.
#
#    </details>
#
# 3. A workload has three AuthorizationPolicies: a CUSTOM one whose ext_authz service allows the request,
#    a DENY one that does not match it, and an ALLOW one that does not match it. Is it allowed? And if the
#    ALLOW policy is deleted?
#
#    <details><summary>Answer</summary>
#
#    Denied: CUSTOM's allow only lets the request go on to DENY and ALLOW, and since an ALLOW policy applies
#    but none matches, deny is the default. Without the ALLOW policy no ALLOW policy applies, so the request
#    is allowed.
#
#    </details>

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
# - put an NGAC decision behind mutual TLS, with the caller's SPIFFE ID as the user.

# %%
import datetime as dt
import random

import ipywidgets as widgets
import matplotlib.pyplot as plt
import networkx as nx

from meshlab.ngac import ContextAttribute, Policy, equivalent_pair, hospital_example, role_explosion
from meshlab.viz import ROLE_COLOURS, new_axes, use_book_style

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
print("assignments: ", ", ".join(f"{child} -> {parent}" for child, parent in policy.graph.edges))
print("associations:", "; ".join(f"({a.user_attribute}, {sorted(a.rights)}, {a.object_attribute})" for a in policy.associations))

COLOURS = {"u": ROLE_COLOURS["app"], "ua": "#8fb3d9", "o": ROLE_COLOURS["wire"], "oa": "#9fd1a8", "pc": ROLE_COLOURS["control-plane"]}
layers = {"u": 0, "ua": 1, "pc": 2, "oa": 3, "o": 4}
graph = policy.graph
for name in graph:
    graph.nodes[name]["layer"] = layers[graph.nodes[name]["kind"]]
position = nx.multipartite_layout(graph, subset_key="layer")
fig, ax = plt.subplots(figsize=(8, 3.8))
nx.draw_networkx(graph, position, ax=ax, node_color=[COLOURS[graph.nodes[n]["kind"]] for n in graph], node_size=900, font_size=7, arrows=True)
for association in policy.associations:
    ax.annotate("", position[association.object_attribute], position[association.user_attribute],
                arrowprops={"arrowstyle": "->", "linestyle": "--", "color": ROLE_COLOURS["proxy"], "connectionstyle": "arc3,rad=0.25"})
ax.set_title("Assignments (solid) and associations (dashed, orange)")
ax.axis("off")
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
assert role_explosion({f"d{i}": 5 for i in range(4)})["rbac_roles"] == 5 ** 4, "one role per combination of values"

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
# ## 5 · Live, on loopback: NGAC behind mutual TLS
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
# Sections 1-4 run on the **model** stage (the policy graphs and their decisions, in this process, seeded).
# Section 5 runs **live** on loopback: real mutual TLS handshakes whose proven SPIFFE IDs feed the NGAC
# decision. On the **kind** stage the same decision would sit in an external authorization service that
# Envoy consults per request (Istio's `CUSTOM` AuthorizationPolicy action), with the caller's SPIFFE ID
# taken from the peer certificate.
#
# ## What to remember
#
# - RBAC decides on one attribute, the role; policies over several attributes multiply roles (the
#   explosion above), and context has nowhere to live.
# - NGAC decides by reachability in one graph; each policy class must grant, so independent policies
#   combine without their product being written down, and "who can access what, and why not" is a graph
#   query.
# - In a mesh the user is the caller's proven SPIFFE ID and the object is the service or API; the decision
#   can sit behind mTLS as here, or in an external authorization service the proxy consults.
#
# ## Check yourself
#
# 1. Four attributes of five values each: how many RBAC roles to cover every combination?
#
#    <details><summary>Answer</summary>
#
#    625 (5^4), against 40 NGAC attributes, 4 policy classes and 20 associations (the chapter's count).
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
# 3. Where does a mesh enforce such decisions?
#
#    <details><summary>Answer</summary>
#
#    After mTLS proves the caller's SPIFFE ID: in the workload (as in this chapter's live section) or in an
#    external authorization service the proxy consults (Istio's CUSTOM action).
#
#    </details>

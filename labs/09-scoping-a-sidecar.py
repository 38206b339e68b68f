# %% [markdown]
# # Lab 09 · Scoping a Sidecar
#
# Without a Sidecar resource, istiod tells every proxy about every service of the mesh, and pushes to every
# proxy whenever any of them changes. The shop's mesh below is small, but checkout's proxy already holds
# nearly twice what it needs. You write the Sidecar that gives checkout exactly what it calls, then predict what
# lazy loading (NetEase's Slime, chapter 09) would have learned and written for another workload on its own.
#
# The checks ask meshlab.scoping what the proxy would be sent, computed by Istio 1.30.3's rules, and name
# what is missing or too much; a Sidecar Istio refuses is refused with Istio's own message. Where istioctl
# is built (the upstream stage), `istioctl analyze` reads your YAML too and must say the same.
#
# Stage: **model** (everywhere), and **upstream** where `istioctl` is built (`make upstream`).
#
# The registry: 17 services in six namespaces, one pod each (labels `app: <service>, version: v1`). A
# service's hostname is `<service>.<namespace>.svc.cluster.local`; `exportTo .` means only its own
# namespace may import it.

# %%
from meshlab.check import lab09

print(lab09.registry_table())

# %% [markdown]
# ## Exercise 1 · checkout's Sidecar
#
# Workload `checkout` runs in namespace `shop` (pod `checkout-0`, labels `app: checkout, version: v1`). It
# calls:
#
# - `cart` and `catalog`, in its own namespace `shop`;
# - `payments`, in namespace `payments` (not `fraud` or `ledger`: they are the payments team's own);
# - every service the platform team's namespace `shared` offers the mesh, **including those added later**;
# - the mesh's own services in `istio-system`, as every proxy does;
#
# and nothing else. The security team also wants a call to any host checkout was not told about refused,
# not passed through. Write the Sidecar (in namespace `shop`) that gives checkout's proxy exactly that,
# and nothing to any other workload. Egress hosts are `namespace/dnsName`: `.` is the Sidecar's own
# namespace, `*` any namespace (or, as a dnsName, every service of that namespace).

# %% nbgrader={"grade": false, "grade_id": "checkout_sidecar", "locked": false, "schema_version": 3, "solution": true}
def checkout_sidecar():
    ### BEGIN SOLUTION
    return """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: checkout, namespace: shop}
spec:
  workloadSelector:
    labels: {app: checkout}
  egress:
  - hosts:
    - ./cart.shop.svc.cluster.local
    - ./catalog.shop.svc.cluster.local
    - payments/payments.payments.svc.cluster.local
    - shared/*
    - istio-system/*
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_sidecar", "locked": true, "points": 1, "schema_version": 3, "solution": false}
print(lab09.check_sidecar(checkout_sidecar))

# %% [markdown]
# `shared/*` imports three services today, not `config-db`: it is exported to `shared` alone, and no
# Sidecar can import what a service does not export. The check also asked tomorrow's registry, where
# `shared/quota` is new (checkout gets it without anyone editing the Sidecar) and `shop/wishlist` and
# `payments/refunds` are new too (checkout does not get them, nor the pushes when they change). That is
# why `./*` and `payments/*` are too broad even though they look tidy: a namespace's `*` is a promise
# about services nobody has written yet.
#
# ## Exercise 2 · What lazy loading learns
#
# Now lazy loading is on: every workload starts with a Sidecar that imports only `istio-system` and
# `mesh-operator`, and a call to anything else goes to the global sidecar, which forwards it and logs it.
# Here is the global sidecar's access log for the first ten seconds (all of its inbound side: upstream
# cluster `inbound|80||`); the learner maps each source address to the service its pod backs.

# %%
print(lab09.access_log_table())

# %% [markdown]
# **a.** At its first refresh (10 s), which dependencies has the learner recorded for service `reports`
# (namespace `analytics`)? Give them as the full hostnames the learner records.

# %% nbgrader={"grade": false, "grade_id": "learned_dependencies", "locked": false, "schema_version": 3, "solution": true}
def learned_dependencies():
    ### BEGIN SOLUTION
    return {"tracker.analytics.svc.cluster.local", "catalog.shop.svc.cluster.local", "payments.payments.svc.cluster.local",
            "api.fx-rates.example"}
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_learned_dependencies", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab09.check_learned_dependencies(learned_dependencies)

# %% [markdown]
# **b.** From that, the fence controller writes the Sidecar for `reports`. What are its egress hosts?
# (Order does not matter.)

# %% nbgrader={"grade": false, "grade_id": "sidecar_hosts", "locked": false, "schema_version": 3, "solution": true}
def sidecar_hosts():
    ### BEGIN SOLUTION
    return {"istio-system/*", "mesh-operator/*", "*/tracker.analytics.svc.cluster.local", "*/catalog.shop.svc.cluster.local",
            "*/payments.payments.svc.cluster.local", "*/api.fx-rates.example"}
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_sidecar_hosts", "locked": true, "points": 1, "schema_version": 3, "solution": false}
import yaml

lab09.check_sidecar_hosts(sidecar_hosts)
print(yaml.safe_dump(lab09.written_sidecar().to_yaml(), sort_keys=False), end="")

# %% [markdown]
# Each of those dependencies cost reports one detour through the global sidecar. The same mesh under
# meshlab's lazy loading, on a simulated clock: reports calls tracker at 3 s, before anything is known,
# and again at 15 s, after the refresh at 10 s wrote its Sidecar and istiod pushed it.

# %%
from meshlab.scoping import LazyLoading

mesh = LazyLoading(lab09.SERVICES, lab09.WORKLOADS)
for time_s in (3.0, 15.0):
    call = mesh.call(time_s, "analytics/reports-0", "tracker.analytics.svc.cluster.local")
    print(f"{call.time_s:>5} s  {call.source} -> {call.destination}: {call.via}")

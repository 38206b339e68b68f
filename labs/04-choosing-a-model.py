# %% [markdown]
# # Lab 04 · Choosing where the proxy lives
#
# A platform team runs the cluster below: 3 nodes, 30 pods in 3 namespaces. Proxy memory is chapter 04's
# model: an Envoy costs Istio 1.24's published 60 MB plus about 0.1 MB for every listener, cluster and
# endpoint it holds; a ztunnel costs 12 MB (`meshlab.xds.memory`). Request rate does not change memory.
#
# Stage: **model**. Two exercises: the first has one answer; the second has several.

# %%
from meshlab.check import lab04
from meshlab.deploy import compare, evaluate

cluster = lab04.cluster()
for model, figures in compare(cluster)["models"].items():
    print(f"{model:<20} {figures['memory_mb']:>7.0f} MB  blast radius {figures['blast_radius_max_pods']:>2} pods  L7 on {figures['l7_fraction']:.0%} of requests")

# %% [markdown]
# ## Exercise 1 · Your choice, with numbers
#
# The team's constraints:
#
# 1. all proxies together may use at most **150 MB**;
# 2. no single proxy failure may cut off more than **10 pods**;
# 3. the payments namespace **ns0** needs HTTP (L7) authorization policy on every call into it.
#
# Pick a deployment model (for ambient, also the namespaces that get a waypoint) and return
# `{"model": ..., "waypoints": [...], "memory_mb": ..., "blast_radius_max_pods": ...}`, where the two
# figures are what `evaluate(model, cluster, waypoints)` computes for your choice (`waypoints` only
# matters for ambient; `None` means one per namespace).

# %% nbgrader={"grade": false, "grade_id": "choose", "locked": false, "schema_version": 3, "solution": true}
def choose():
    ### BEGIN SOLUTION
    result = evaluate("ambient", cluster, {"ns0"})
    return {"model": "ambient", "waypoints": ["ns0"], "memory_mb": result.memory_mb, "blast_radius_max_pods": result.blast_radius_max_pods}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_choice", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab04.check_choice(choose)
choice = choose()
print(f"your choice meets all three constraints: {choice['model']}, waypoints {choice.get('waypoints')}, "
      f"{choice['memory_mb']:.1f} MB, blast radius {choice['blast_radius_max_pods']}")

# %% [markdown]
# ## Exercise 2 · A second team, more than one right answer
#
# Another team shares the cluster's design review. Its constraints:
#
# 1. all proxies together may use at most **250 MB**;
# 2. no single proxy failure may cut off more than **11 pods**;
# 3. the orders namespace **ns2** needs L7 policy on every call into it.
#
# Several choices meet all three; any of them passes. You may also give every Envoy a Sidecar resource
# that lists only what its pods call: add `"scoped": True` and quote the figures of
# `evaluate(model, cluster, waypoints, scoped=True)`. Return the same dict as in exercise 1 (with
# `"scoped"` if you use it). Then find a second choice that also passes, and compare the two in the table
# below: which would you defend to the team, and on which figure?

# %% nbgrader={"grade": false, "grade_id": "choose_open", "locked": false, "schema_version": 3, "solution": true}
def choose_open():
    ### BEGIN SOLUTION
    result = evaluate("ambient", cluster, {"ns2"}, scoped=True)
    return {"model": "ambient", "waypoints": ["ns2"], "scoped": True, "memory_mb": result.memory_mb,
            "blast_radius_max_pods": result.blast_radius_max_pods}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_open_choice", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab04.check_open_choice(choose_open)
choice = choose_open()
print(f"meets the second team's constraints: {choice['model']}, waypoints {choice.get('waypoints')}, "
      f"{'scoped' if choice.get('scoped') else 'unscoped'}, {choice['memory_mb']:.1f} MB, blast radius {choice['blast_radius_max_pods']}")

# %% [markdown]
# Three placements that pass, and the sidecar model with and without scoping. Scoping does not rescue
# the sidecars here: in a cluster this small an Envoy's base (60 MB) outweighs the configuration it
# holds, and the shared proxies already serve pods that call every service. In a mesh of hundreds of
# services the configuration dominates (chapter 06, section 3).

# %%
for model, waypoints, scoped in (("per-node", None, False), ("ambient", {"ns2"}, False), ("ambient", {"ns0", "ns2"}, False),
                                 ("sidecar", None, False), ("sidecar", None, True)):
    result = evaluate(model, cluster, waypoints, scoped=scoped)
    label = f"{model} {sorted(waypoints) if waypoints else ''}".strip()
    print(f"{label:<24} {'scoped' if scoped else 'unscoped':<9} {result.memory_mb:>7.1f} MB  blast radius {result.blast_radius_max_pods:>2}  "
          f"hops/request {result.hops_per_request:.2f}  keys/node {result.keys_per_node_max:>2}")

# %% [markdown]
# # Lab 04 · Choosing where the proxy lives
#
# A platform team runs the cluster below: 3 nodes, 30 pods in 3 namespaces. Its constraints:
#
# 1. all proxies together may use at most **150 MB** (Istio 1.24's published per-proxy figures);
# 2. no single proxy failure may cut off more than **10 pods**;
# 3. the payments namespace **ns0** needs HTTP (L7) authorization policy on every call into it.
#
# Pick a deployment model (for ambient, also the namespaces that get a waypoint) and back it with the
# model's numbers. Stage: **model**.

# %%
from meshlab.check import lab04
from meshlab.deploy import compare, evaluate

cluster = lab04.cluster()
for model, figures in compare(cluster)["models"].items():
    print(f"{model:<20} {figures['memory_mb']:>7.0f} MB  blast radius {figures['blast_radius_max_pods']:>2} pods  L7 on {figures['l7_fraction']:.0%} of requests")

# %% [markdown]
# ## Exercise · Your choice, with numbers
#
# Return `{"model": ..., "waypoints": [...], "memory_mb": ..., "blast_radius_max_pods": ...}`, where the
# two figures are what `evaluate(model, cluster, waypoints)` computes for your choice (`waypoints` only
# matters for ambient; `None` means one per namespace).

# %%
def choose():
    ### BEGIN SOLUTION
    result = evaluate("ambient", cluster, {"ns0"})
    return {"model": "ambient", "waypoints": ["ns0"], "memory_mb": result.memory_mb, "blast_radius_max_pods": result.blast_radius_max_pods}
    ### END SOLUTION


# %%
lab04.check_choice(choose)
print("your choice meets all three constraints:", choose())

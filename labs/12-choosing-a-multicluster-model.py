# %% [markdown]
# # Lab 12 · Choosing a multi-cluster model
#
# Chapter 12 laid out Istio's models along two axes: the control plane (multi-primary: an istiod in every
# cluster; primary-remote: one istiod for several clusters) and the network (one network where pods reach
# each other, or several joined by east-west gateways). Here you choose for two organisations, then
# predict where a proxy's traffic goes when its home pods fail. Each check says which constraint a wrong
# choice breaks, and why.
#
# Stage: **model** (`meshlab.multicluster`). Return your answers from the functions; leave the checks as
# they are.

# %%
from meshlab.check import lab12
from meshlab.multicluster.models import properties

print(properties())

# %% [markdown]
# ## Exercise 1 · Two clouds, two teams
#
# A retailer runs `storefront` in one cloud and `payments` in another. There is no peering between the
# clouds: pods of one cannot reach the other's pod addresses; each cluster's API server is reachable on its
# public endpoint. Each team runs its own cluster and upgrades it on its own schedule, and an outage of
# one team's control plane must not leave the other team's new pods without configuration. Return
# `{"control_plane": "multi-primary" | "primary-remote" | "separate meshes", "network": "single" | "multi"}`.

# %% nbgrader={"grade": false, "grade_id": "choose_retail", "locked": false, "schema_version": 3, "solution": true}
def choose_retail():
    ### BEGIN SOLUTION
    return {"control_plane": "multi-primary", "network": "multi"}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_choose_retail", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab12.check_choice(choose_retail, lab12.RETAIL)
print("fits:", choose_retail())

# %% [markdown]
# ## Exercise 2 · One centre, many small edges
#
# A logistics company runs one central cluster and a dozen small clusters in its depots, all in one VPC
# with routed pod networks. A single small platform team runs everything and wants as few istiods as it
# can; a depot keeping its last configuration while the centre is down is acceptable.

# %% nbgrader={"grade": false, "grade_id": "choose_edge", "locked": false, "schema_version": 3, "solution": true}
def choose_edge():
    ### BEGIN SOLUTION
    return {"control_plane": "primary-remote", "network": "single"}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_choose_edge", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab12.check_choice(choose_edge, lab12.EDGE)
print("fits:", choose_edge())

# %% [markdown]
# ## Exercise 3 · Where does the traffic go?
#
# A proxy in `eu-west/eu-west-1a` calls a service with pods in four localities. The DestinationRule sets
# outlier detection and `localityLbSetting.failover: [{from: eu-west, to: eu-central}]`. Predict the
# priority istiod gives each locality (as Envoy receives them), then: with 1 of the 4 pods at priority 0
# healthy (and priority 1 fully healthy), what share of requests leaves priority 0?

# %% nbgrader={"grade": false, "grade_id": "predict_priorities", "locked": false, "schema_version": 3, "solution": true}
print("proxy:", lab12.FAILOVER_PROXY)
print("localities:", ", ".join(lab12.FAILOVER_LOCALITIES))


def predict_priorities():
    ### BEGIN SOLUTION
    return {"eu-west/eu-west-1a": 0, "eu-west/eu-west-1b": 1, "eu-central/eu-central-1a": 2, "us-east/us-east-1a": 3}
    ### END SOLUTION


def predict_spill():
    ### BEGIN SOLUTION
    return 1 - min(1.0, 1.4 * 1 / 4)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_priorities_and_check_spill", "locked": true, "points": 2, "schema_version": 3, "solution": false}
lab12.check_priorities(predict_priorities)
lab12.check_spill(predict_spill)
for locality, priority in predict_priorities().items():
    print(f"{locality:<26} priority {priority}")
print(f"leaves home with 1 of 4 healthy: {predict_spill():.0%}")

# %% [markdown]
# Priority 0 keeps 1.4 x 25% = 35% of the requests even with three of its four pods gone: Envoy
# overprovisions, so a locality is drained gradually, not at the first failure. Try exercise 1 again with
# `"primary-remote"` and read the reasons the check gives.

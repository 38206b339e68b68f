# %% [markdown]
# # Lab 13 · Who gets an identity
#
# The shop runs two pods in namespace `shop`: `server` (service account `server`, label `app=server`) and
# `client` (service account `client`, label `app=client`). Each pod has the app container and a sidecar
# (`istio-proxy`, uid 1337). Other things run on the same node: an `intruder` pod in `default` whose app is
# also uid 0, a copy of the server image someone started in `default` with the label `app=server`, and
# root processes outside any pod. Write the registration entries so that **only** the two apps get
# identities, then prove it live, impersonation attempt included.
#
# Stage: **model** for exercise 1, **live** (Linux; root, or unprivileged user namespaces) for exercise 2.
#
# Selectors you can use (chapter 13, section 4): `unix:uid:N`, `unix:gid:N`, `k8s:ns:NAME`, `k8s:sa:NAME`,
# `k8s:pod-name:NAME`, `k8s:pod-label:KEY:VALUE`, `k8s:container-name:NAME`, ... An entry applies when all
# its selectors are among the workload's.

# %%
from meshlab.check import lab13

SERVER = "spiffe://meshlab.test/ns/shop/sa/server"
CLIENT = "spiffe://meshlab.test/ns/shop/sa/client"

# %% [markdown]
# ## Exercise 1 · The entries
#
# Return a list of entries, each `{"spiffe_id": ..., "selectors": [...], "ttl": seconds}`: one giving the
# server app `SERVER`, one giving the client app `CLIENT`. The check matches them against what the agent
# finds for every workload above and names the first one that gets the wrong identity.

# %% nbgrader={"grade": false, "grade_id": "entries", "locked": false, "schema_version": 3, "solution": true}
def entries():
    ### BEGIN SOLUTION
    return [
        {"spiffe_id": SERVER, "selectors": ["k8s:ns:shop", "k8s:sa:server", "k8s:container-name:app"], "ttl": 600},
        {"spiffe_id": CLIENT, "selectors": ["k8s:ns:shop", "k8s:sa:client", "k8s:container-name:app"], "ttl": 600},
    ]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_entries", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab13.check_entries(entries)
print("every workload gets exactly its intended identity")

# %% [markdown]
# ## Exercise 2 · Whom the server accepts, live
#
# Return the SPIFFE IDs the server accepts callers from. The check starts a live lab with your entries and
# the agent; each workload fetches its SVID with the real `spiffe` client; the client calls the server over
# mutual TLS; the intruder (given an identity of its own) calls too; and the intruder asks the agent for
# the server's JWT-SVID.

# %% nbgrader={"grade": false, "grade_id": "allowed_callers", "locked": false, "schema_version": 3, "solution": true}
def allowed_callers():
    ### BEGIN SOLUTION
    return [CLIENT]
    ### END SOLUTION


# %% tags=["nbval-ignore-output"] nbgrader={"grade": true, "grade_id": "check_live", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab13.check_live(entries, allowed_callers)
print("both checks passed")

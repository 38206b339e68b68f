# %% [markdown]
# # Lab 01 · What a growing call graph costs
#
# Chapter 01 grew a call graph and counted what a platform team must manage. Here you compute two of
# those numbers yourself, on the same seeded graphs (`meshlab.microservices.grow_call_graph`; edges point
# from caller to callee). Write each answer where it says `# YOUR CODE HERE`, then run the check under it;
# a failing check names the mistake it recognises.
#
# Stage: **model** (runs anywhere).

# %%
import networkx as nx

from meshlab.check import lab01
from meshlab.microservices import grow_call_graph

graph = grow_call_graph(12, seed=1)
for caller in sorted(graph):
    if callees := sorted(graph.successors(caller)):
        print(f"{caller:<8} calls {', '.join(callees)}")

# %% [markdown]
# ## Exercise 1 · Blast radius
#
# When a service fails, every request that needs it fails too. Write `blast_radius(graph, service)`:
# the set of services (names) whose requests can fail because `service` failed. Think about direction:
# an edge `a -> b` means *a calls b*.

# %% nbgrader={"grade": false, "grade_id": "blast_radius", "locked": false, "schema_version": 3, "solution": true}
def blast_radius(graph, service):
    ### BEGIN SOLUTION
    return set(nx.ancestors(graph, service))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_blast_radius", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab01.check_blast_radius(blast_radius)
print("blast_radius: all checks passed")

# %% [markdown]
# ## Exercise 2 · The chance that a request succeeds
#
# Every service is up with probability `availability`, independently, and nothing retries. Write
# `request_success(graph, service, availability)`: the probability that a request to `service`
# succeeds, given that it needs `service` and everything `service` calls, directly or indirectly.

# %% nbgrader={"grade": false, "grade_id": "request_success", "locked": false, "schema_version": 3, "solution": true}
def request_success(graph, service, availability):
    ### BEGIN SOLUTION
    needed = 1 + len(nx.descendants(graph, service))
    return availability**needed
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_request_success", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab01.check_request_success(request_success)
print("request_success: all checks passed")
print(f"frontend of the 12-service graph at 99.9%: {request_success(graph, 'frontend', 0.999):.4f}")

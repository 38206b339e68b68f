# %% [markdown]
# # Lab 08 · Writing the routes
#
# The shop's platform team runs one Gateway, `shop` in namespace `infra`, for `shop.example.com` on port
# 80, and admits routes from the `shop` namespace. You are the shop's developer. Three changes are due
# this week; each is one HTTPRoute in namespace `shop` that you write as YAML. Each check loads your route
# with the platform's resources, translates them, reads your route's status conditions, and sends
# requests through the result, naming the first thing that does not do what the policy says. Where Envoy
# Gateway's translator is built (the upstream stage), the check also runs your YAML through `egctl` and
# requires the same answers from it.
#
# Stage: **model** (everywhere), and **upstream** where `egctl` is built (`make upstream`).

# %%
from meshlab.check import lab08

print(lab08.PLATFORM)

# %% [markdown]
# ## Exercise 1 · A canary by header
#
# Requests under `/catalog` (`/catalog` itself and everything below it) that carry the header
# `x-canary: always` go to Service `catalog-canary`, port 8080; every other request under `/catalog` goes to
# `catalog`, port 8080. Nothing else is this route's business. Write the HTTPRoute (name it `catalog`).

# %% nbgrader={"grade": false, "grade_id": "canary_route", "locked": false, "schema_version": 3, "solution": true}
def canary_route():
    ### BEGIN SOLUTION
    return """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catalog, namespace: shop}
spec:
  parentRefs: [{name: shop, namespace: infra}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /catalog}}]
    backendRefs: [{name: catalog, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /catalog}, headers: [{name: x-canary, value: always}]}]
    backendRefs: [{name: catalog-canary, port: 8080}]
"""
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_canary", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab08.check_canary(canary_route)

# %% [markdown]
# The solution lists the plain rule first: it does not matter. The rule with a header match is more
# specific, so the Gateway API puts it first in Envoy's route list whatever the order you wrote.
#
# ## Exercise 2 · 90/10 by weight
#
# A new checkout (`checkout-v2`, port 8080) takes 10% of the requests under `/checkout`; `checkout`, port
# 8080, keeps 90%. Name the route `checkout`.

# %% nbgrader={"grade": false, "grade_id": "split_route", "locked": false, "schema_version": 3, "solution": true}
def split_route():
    ### BEGIN SOLUTION
    return """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: checkout, namespace: shop}
spec:
  parentRefs: [{name: shop, namespace: infra}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /checkout}}]
    backendRefs: [{name: checkout, port: 8080, weight: 90}, {name: checkout-v2, port: 8080, weight: 10}]
"""
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_split", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab08.check_split(split_route)

# %% [markdown]
# ## Exercise 3 · A redirect
#
# The basket moved: every request under `/basket` is redirected permanently (HTTP 301) to the same place
# under `/cart`: `/basket` to `/cart`, `/basket/items/7` to `/cart/items/7`. Name the route `basket`.

# %% nbgrader={"grade": false, "grade_id": "redirect_route", "locked": false, "schema_version": 3, "solution": true}
def redirect_route():
    ### BEGIN SOLUTION
    return """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: basket, namespace: shop}
spec:
  parentRefs: [{name: shop, namespace: infra}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /basket}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /cart}, statusCode: 301}
"""
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_redirect", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab08.check_redirect(redirect_route)

# %% [markdown]
# ## All three together
#
# Your three routes attach to the same listener. With all of them in place, every request of the three
# policies still gets the answer its own exercise asked for:

# %% nbgrader={"grade": true, "grade_id": "check_together", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab08.check_together(canary_route, split_route, redirect_route)

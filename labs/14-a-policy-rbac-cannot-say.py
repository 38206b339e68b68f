# %% [markdown]
# # Lab 14 · A policy RBAC cannot say compactly
#
# Two access requirements that roles alone cannot state, written in the models of chapter 14 and checked
# on every request case: the check names the first case your answer decides wrongly and the usual mistake
# behind it. Stage: **model** (meshlab.authz evaluates AuthorizationPolicy as Istio 1.30.3 compiles it to
# Envoy's RBAC filter; meshlab.abac and meshlab.ngac decide ABAC and NGAC).

# %%
from meshlab import abac, ngac
from meshlab.abac import action, environment, object_, subject
from meshlab.check import lab14

for case in lab14.ORDERS_CASES:
    print(f"{'allow' if case.allowed else 'deny ':<5}  {case}")

# %% [markdown]
# ## Exercise 1 · The orders service, in Istio's AuthorizationPolicy
#
# The `orders` workload runs in namespace `shop` with label `app: orders`. Its requirement:
#
# 1. every workload of namespace `shop` may `GET` the orders under `/orders/` (such as `/orders/17`),
#    except the debug endpoints under `/orders/debug/`, which nobody may call;
# 2. `POST /orders` is for `checkout` (service account `checkout` in `shop`) only, and only when the end
#    user's JWT (already verified by RequestAuthentication) has `orders:write` in its `scope` claim, a list;
# 3. nothing else.
#
# The cases the check asks are listed above. Return your policies as YAML (several documents separated by
# `---` if you like); write them as you would for `kubectl apply`.

# %% nbgrader={"grade": false, "grade_id": "orders_policies", "locked": false, "schema_version": 3, "solution": true}
def orders_policies():
    ### BEGIN SOLUTION
    return """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: orders
  namespace: shop
spec:
  selector:
    matchLabels:
      app: orders
  action: ALLOW
  rules:
  - from:
    - source:
        namespaces: ["shop"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/orders/*"]
        notPaths: ["/orders/debug/*"]
  - from:
    - source:
        principals: ["cluster.local/ns/shop/sa/checkout"]
    to:
    - operation:
        methods: ["POST"]
        paths: ["/orders"]
    when:
    - key: request.auth.claims[scope]
      values: ["orders:write"]
"""
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_orders_policies", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab14.check_orders_policies(orders_policies)
print(f"your policies decide all {len(lab14.ORDERS_CASES)} cases as the requirement does")

# %% [markdown]
# Both rules had to be *combinations*: "GET **and** from shop **and** not debug", "POST **and** from
# checkout **and** the claim". In the ServiceRole era each combination was a role and a binding; today
# it is a rule, and rules in one ALLOW policy add up (OR).
#
# ## Exercise 2 · The records service, compactly (open: several answers pass)
#
# Twelve workloads, one per team and clearance, read and write twelve records, one per team and
# classification (`lab14.SUBJECTS`, `lab14.RECORDS`; levels `public` < `internal` < `secret`):
#
# - a workload may **read** a record of its own team whose classification is at most its clearance;
# - it may **write** such a record only from 08:00 to 18:00.
#
# RBAC needs a role per (team, clearance) for the first half and cannot say the second:

# %%
rbac = ngac.RbacPolicy()
for who in lab14.SUBJECTS:
    for record in lab14.RECORDS:
        if record.team == who.team and record.level <= who.level:
            for verb in lab14.ACTIONS:
                rbac.grant(who.name, verb, record.name)
    rbac.assign(who.name, who.name)
rbac_wrong = [case for case in lab14.RECORDS_CASES if rbac.decide(case.subject.name, case.action, case.record.name) != case.allowed]
print(f"RBAC: {len(rbac.roles)} roles; wrong on {len(rbac_wrong)} of {len(lab14.RECORDS_CASES)} cases, e.g. {rbac_wrong[0]}")

# %% [markdown]
# Write the requirement in **ABAC** (return an `abac.AbacPolicy`; a request carries
# `subject.team`, `subject.clearance`, `object_.team`, `object_.classification` (levels as 0, 1, 2),
# `action` (`"read"` or `"write"`) and `environment.hour`) **or** in **NGAC** (return an `ngac.Policy`
# whose users are the names in `lab14.SUBJECTS` and whose objects are the names in `lab14.RECORDS`; the
# context is `{"hour": h}`; `ngac.ContextAttribute` holds a user attribute only while a condition on the
# context is true). Any policy passes that decides all 864 cases right with fewer rules (ABAC) or
# associations (NGAC) than RBAC's 12 roles.

# %% nbgrader={"grade": false, "grade_id": "records_policy", "locked": false, "schema_version": 3, "solution": true}
def records_policy():
    ### BEGIN SOLUTION
    in_office = (environment.hour >= lab14.OFFICE_HOURS[0]) & (environment.hour < lab14.OFFICE_HOURS[1])
    return abac.AbacPolicy([abac.Rule(
        "same team, cleared, writes in office hours",
        (subject.team == object_.team) & (subject.clearance >= object_.classification) & ((action == "read") | in_office),
    )])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_records_policy", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab14.check_records_policy(records_policy)
print("your policy decides every case right:")
print(records_policy())

# %% [markdown]
# With NGAC the same requirement takes a policy class per concern (teams, clearance, office hours), an
# association per value, and an assignment chain `secret -> internal -> public` so that a clearance
# contains the levels below it: nine associations, whatever the number of workloads.

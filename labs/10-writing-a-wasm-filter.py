# %% [markdown]
# # Lab 10 · Writing a Wasm filter
#
# Chapter 10 ran real proxy-wasm modules in meshlab's sidecar and applied them with Istio's WasmPlugin.
# Here you write the WasmPlugin that puts a security filter in the right place, predict where three
# plugins land in a sidecar's HTTP filter chain, and write a filter of your own in AssemblyScript: the
# check compiles it with the real AssemblyScript compiler, runs it in meshlab's proxy-wasm host, and,
# where the live lab runs, applies it to a pod and sends requests through the sidecar.
#
# Stage: **model** for exercises 1 and 2 (`meshlab.wasm.plugin`, `meshlab.xds.inbound`); exercise 3 runs
# on the model stage and then **live** (Node.js and npm compile the filter; the live check needs root or
# user namespaces). Return your answers from the functions; leave the checks as they are.

# %%
from meshlab.check import lab10
from meshlab.viz.text import fit
from meshlab.wasm.build import build

DENY_MODULE = build("deny_by_header")
print("the module to deploy:", DENY_MODULE.name.split("-")[0], "(deny_by_header, built from meshlab's AssemblyScript source)")

# %% [markdown]
# ## Exercise 1 · A WasmPlugin in the right place
#
# The `payments` pods (label `app: payments`, namespace `shop`) must refuse any request that carries
# `x-debug: "true"` on their port 8080, before any authentication or authorization filter sees it. Only
# what arrives at payments (inbound) is concerned; other pods of `shop` and other ports are not. If the
# module cannot be fetched, nothing may pass unchecked. The module is `DENY_MODULE`, served at
# `http://modules.shop.svc:8000/deny_by_header.wasm`; its root id is `deny_by_header` and it takes
# `{"header": ..., "value": ...}` as its configuration. Return the WasmPlugin as YAML; `lab10.module_sha256(path)`
# gives a file's sha256.

# %% nbgrader={"grade": false, "grade_id": "write_plugin", "locked": false, "schema_version": 3, "solution": true}
def write_plugin():
    ### BEGIN SOLUTION
    return f"""
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: deny-debug
  namespace: shop
spec:
  selector:
    matchLabels: {{app: payments}}
  url: http://modules.shop.svc:8000/deny_by_header.wasm
  sha256: {lab10.module_sha256(DENY_MODULE)}
  pluginName: deny_by_header
  pluginConfig: {{header: x-debug, value: "true"}}
  phase: AUTHN
  failStrategy: FAIL_CLOSE
  match:
  - mode: SERVER
    ports: [{{number: 8080}}]
"""
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_plugin", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab10.check_plugin(write_plugin, DENY_MODULE)
print("the WasmPlugin fits")

# %% [markdown]
# ## Exercise 2 · Where do they run?
#
# Three WasmPlugins in `shop` select every pod. Return their names in the order a request meets them in
# a sidecar's inbound HTTP filter chain.

# %% nbgrader={"grade": false, "grade_id": "predict_order", "locked": false, "schema_version": 3, "solution": true}
for name, phase, priority in lab10.ORDERING:
    print(f"{name:<13} phase {phase:<6} priority {priority}")


def predict_order():
    ### BEGIN SOLUTION
    return ["tenant-check", "audit", "metrics"]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_order", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab10.check_order(predict_order)
print(fit(" -> ".join(lab10.expected_order())))

# %% [markdown]
# ## Exercise 3 · A quota filter
#
# Write the body of the filter's `onRequestHeaders`: when the request header named by the plugin's
# configuration key `header` has the value `exceeded`, answer 429 yourself; otherwise let the request
# go on. The template's comment lists what the SDK offers; your code goes between its two marker lines.

# %%
from meshlab.wasm.build import TEMPLATE

print(TEMPLATE.read_text()[TEMPLATE.read_text().index("class MyFilter "):].split("registerRootContext")[0])


# %% nbgrader={"grade": false, "grade_id": "quota_code", "locked": false, "schema_version": 3, "solution": true}
def quota_code():
    ### BEGIN SOLUTION
    return """
    const header = root.config.get("header");
    if (stream_context.headers.request.get(header) == "exceeded") {
      send_local_response(429, "quota_exceeded", String.UTF8.encode("quota exceeded\\n"), [], GrpcStatusValues.InvalidCode);
      return FilterHeadersStatusValues.StopIteration;
    }
"""
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_filter", "locked": true, "points": 1, "schema_version": 3, "solution": false}
module = lab10.check_filter(quota_code)
print("compiled, and answers", [want for _, want in lab10.QUOTA_TESTS], "in meshlab's proxy-wasm host")

# %% [markdown]
# Now live: the check starts a lab (prefix `ml10`) with a `payments` pod whose sidecar has its HTTP
# side, applies your module as a WasmPlugin, and sends the three requests from a client pod through both
# sidecars (the live stage: Linux, root or unprivileged user namespaces).

# %% tags=["nbval-ignore-output"] nbgrader={"grade": true, "grade_id": "check_filter_live", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab10.check_filter_live(quota_code)
print("through the live sidecar: the same answers")

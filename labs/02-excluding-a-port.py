# %% [markdown]
# # Lab 02 · Excluding a port from capture
#
# Your app serves its API on 8080 and Prometheus metrics on 9090. The scraper should reach 9090
# directly, without going through the sidecar; everything else stays captured. In Istio you would
# annotate the pod with `traffic.sidecar.istio.io/excludeInboundPorts: "9090"`, which becomes
# istio-iptables's `-d 9090`. Here you write the configuration yourself, check it on the model stage,
# then prove it in the live lab.
#
# Stage: **model** for exercise 1, **live** (Linux; root, or unprivileged user namespaces) for exercise 2.

# %%
from meshlab.check import lab02
from meshlab.intercept import CaptureConfig, render_commands

# %% [markdown]
# ## Exercise 1 · The configuration
#
# Return a `CaptureConfig` that captures all outbound traffic (`outbound_ip_ranges_include="*"`) and
# all inbound ports except 9090. The fields are istio-iptables's (see chapter 02).

# %% nbgrader={"grade": false, "grade_id": "capture_config", "locked": false, "schema_version": 3, "solution": true}
def capture_config():
    ### BEGIN SOLUTION
    return CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*", inbound_ports_exclude="9090")
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_rules", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab02.check_rules(capture_config)
print("\n".join(line for line in render_commands(capture_config()).splitlines() if "ISTIO_INBOUND" in line))

# %% [markdown]
# ## Exercise 2 · Prove it live
#
# The check below starts a lab with your rules, sends one request to each port from another pod, and
# hands you each reply (`reply.body` is the echo app's JSON: `pod`, `peer`, `local`, `path`). Write
# `bypassed(reply)`: `True` when the app saw its caller directly, `False` when the request came
# through the sidecar. Remember what the sidecar's inbound side connects from.

# %% nbgrader={"grade": false, "grade_id": "bypassed", "locked": false, "schema_version": 3, "solution": true}
def bypassed(reply):
    ### BEGIN SOLUTION
    return not reply.body["peer"].startswith("127.0.0.6:")
    ### END SOLUTION


# %% tags=["nbval-ignore-output"] nbgrader={"grade": true, "grade_id": "check_live", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab02.check_live(capture_config, bypassed)
print("both checks passed")

# %% [markdown]
# # Lab 03 · Counting the path
#
# App A calls app B through both sidecars: three TCP connections (app A → sidecar A over loopback,
# sidecar A → sidecar B between the pods, sidecar B → app B over loopback). Chapter 03 counted what
# that costs on each datapath. Here you predict the counts yourself, then the kernel counts them.
#
# Stage: **model** for exercise 1 and the first check of exercise 2; **live** for the second (Linux,
# root; the eBPF datapath also needs clang, libbpf-dev and bpftool: `meshlab doctor` says which you
# have). The live labs are real: pods are network namespaces with Istio's rules applied by
# iptables-restore, and the eBPF datapath is chapter 03's programs attached to a real cgroup.

# %%
import os

from meshlab import doctor
from meshlab.check import lab03
from meshlab.intercept.paths import DATAPATHS, traversals

print("datapaths of the model:", ", ".join(DATAPATHS))

# %% [markdown]
# ## Exercise 1 · Traversals per request
#
# For every datapath of `meshlab.intercept.paths` (`iptables`, `ebpf-meshlab`, `merbridge-2022`,
# `merbridge-cni`), on one node (`True`) and across two (`False`), give per request:
#
# - `iptables`: how many times a connection's first packet passes the nat table (nat sees only first
#   packets: OUTPUT for a connection a pod opens, PREROUTING for one arriving at a pod);
# - `stack`: how many TCP/IP stack traversals the request's bytes make (a segment that goes through
#   the stack crosses the sender's and the receiver's).
#
# Work them out from chapter 03's sections 1 and 2 rather than calling the model: the check does
# that.

# %% nbgrader={"grade": false, "grade_id": "traversals_table", "locked": false, "schema_version": 3, "solution": true}
def traversals_table():
    ### BEGIN SOLUTION
    return {
        ("iptables", True): {"iptables": 4, "stack": 6},
        ("iptables", False): {"iptables": 4, "stack": 6},
        ("ebpf-meshlab", True): {"iptables": 4, "stack": 2},
        ("ebpf-meshlab", False): {"iptables": 4, "stack": 2},
        ("merbridge-2022", True): {"iptables": 0, "stack": 0},
        ("merbridge-2022", False): {"iptables": 2, "stack": 2},
        ("merbridge-cni", True): {"iptables": 0, "stack": 0},
        ("merbridge-cni", False): {"iptables": 0, "stack": 2},
    }
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_traversals", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab03.check_traversals(traversals_table)
print("all eight rows agree with the model")

# %% [markdown]
# ## Exercise 2 · The counters after n requests
#
# The live lab has two datapaths: `iptables` (Istio's rules) and `ebpf` (meshlab's programs; the
# model's `ebpf-meshlab`). The client pod sends `n` requests to the server pod's app port 8080, each
# on a new connection. Predict what these counters read afterwards:
#
# - `client OUTPUT`: packets counted by the client pod's `-A OUTPUT -j ISTIO_OUTPUT`;
# - `client REDIRECT 15001`: the client pod's `-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports
#   15001`;
# - `server PREROUTING`: the server pod's `-A PREROUTING -p tcp -j ISTIO_INBOUND`;
# - `server REDIRECT 15006`: the server pod's `-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports
#   15006`;
# - `server OUTPUT`: the server pod's `-A OUTPUT -j ISTIO_OUTPUT`;
# - `connect_rewrites`, `redirected_messages`, `passed_messages`: the eBPF datapath's counters map
#   (chapter 03, section 3); 0 on the iptables datapath, which loads no programs.
#
# Three facts to use: the eBPF lab removes Istio's outbound capture rules (connect4 does that job)
# and keeps its inbound ones; the app and each sidecar write a request or a reply with one `sendmsg`
# each; and in the live lab one node and two differ only in where the pods are wired.

# %% nbgrader={"grade": false, "grade_id": "predict_counters", "locked": false, "schema_version": 3, "solution": true}
def predict_counters(datapath, same_node, n):
    ### BEGIN SOLUTION
    ebpf = datapath == "ebpf"
    return {
        "client OUTPUT": 2 * n,  # the app's connection, and sidecar A's (RETURN: uid 1337)
        "client REDIRECT 15001": 0 if ebpf else n,  # with eBPF, connect4 took the app's connection
        "server PREROUTING": n,  # the sidecar-to-sidecar connection arriving
        "server REDIRECT 15006": n,  # inbound capture is Istio's rule on both datapaths
        "server OUTPUT": n,  # sidecar B to its app, from 127.0.0.6 (RETURN)
        "connect_rewrites": n if ebpf else 0,
        "redirected_messages": 4 * n if ebpf else 0,  # request and reply on both loopback segments
        "passed_messages": 2 * n if ebpf else 0,  # request and reply between the sidecars
    }
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_counters", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab03.check_counters(predict_counters)
print("your predictions agree with the model on both datapaths, one node and two")

# %% [markdown]
# Now the kernel. For each datapath and placement the check starts a live lab (a server pod and a
# client pod, on one node or on two), sends 10 requests, and reads the counters: `iptables-save -c
# -t nat` in each pod, and the eBPF counters map with bpftool. Your prediction must match what the
# kernel counted. Without the eBPF tools only the iptables datapath runs.

# %% tags=["nbval-ignore-output", "machine-specific"]
reports = doctor.diagnose(("live", "ebpf"))
for stage, report in reports.items():
    print(f"{stage}: {'available' if report.available else 'NOT available: ' + report.reason}")
datapaths = tuple(datapath for datapath in ("iptables", "ebpf") if reports["live"].available and (datapath == "iptables" or reports["ebpf"].available))
assert len(datapaths) == 2 or os.environ.get("MESHLAB_REQUIRE_LIVE") != "1", reports

# %% tags=["nbval-ignore-output"] nbgrader={"grade": true, "grade_id": "check_live", "locked": true, "points": 1, "schema_version": 3, "solution": false}
rows = lab03.check_live(predict_counters, datapaths)
print(f"{'the kernel counted':<22}" + "".join(f"{row['datapath'] + (' 1 node' if row['same_node'] else ' 2 nodes'):>18}" for row in rows))
for name in lab03.COUNTERS:
    print(f"{name:<22}" + "".join(f"{row['counted'][name]:>18}" for row in rows))
assert [row["predicted"] for row in rows] == [row["counted"] for row in rows]

# %% [markdown]
# The total of the three nat counters that open a chain (`client OUTPUT`, `server PREROUTING`,
# `server OUTPUT`) is n times exercise 1's `iptables` column: 4 per request on both live datapaths.
# meshlab's eBPF datapath takes the loopback segments' bytes off the stack (`redirected_messages`)
# but no nat traversal; Merbridge's 2022 design also takes the middle connection on one node, and
# only its CNI mode takes the nat table out everywhere. The lab has no Merbridge: those two rows of
# exercise 1 stay on the model stage.

# %%
for datapath, model_name in lab03.LIVE_DATAPATHS.items():
    model = lab03.model_counters(datapath, True, 10)
    opened = model["client OUTPUT"] + model["server PREROUTING"] + model["server OUTPUT"]
    print(f"{datapath:<8} nat traversals after 10 requests: {opened}")
    assert opened == 10 * traversals(model_name, True)["iptables"]

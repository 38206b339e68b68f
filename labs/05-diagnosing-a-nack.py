# %% [markdown]
# # Lab 05 · Diagnosing a NACK
#
# `greeter` runs proxyless: gRPC's own xDS client (grpcio, in its own process) gets its
# configuration from meshlab's control plane and splits calls 75/25 between `greeter-v1` and
# `greeter-v2`. An operator meant to drain v2 before upgrading it; the script set v2's weight to 0,
# and by a slip v1's too. The control plane served that RouteConfiguration. Nothing broke, and
# nothing changed: the client refused it. You read the refusal, a NACK, from the exchange as it
# crossed the wire, then serve a fix the client accepts.
#
# Stage: **live, on loopback** (any Linux or macOS with the Python packages; no root): a real ADS
# server and gRPC's real xDS client, as in chapter 05, section 5. Each exercise's check runs its own
# exchange.

# %%
from meshlab.check import lab05
from meshlab.xds.resources import SHORT

# %% [markdown]
# ## The incident
#
# `lab05.incident()` starts the control plane and backends v1 and v2, a client calling
# `xds:///greeter` every 10 ms on the good 75/25 route, then serves the bad route and waits until
# the client has answered every response. `requests` and `responses` are what crossed the wire after
# the change, with the proto's field names (`version_info`, `response_nonce`, `resource_names`,
# `error_detail`) and none of meshlab's labels: telling an ACK from a NACK is your job.

# %% tags=["nbval-ignore-output"]
INCIDENT = lab05.incident()
for response in INCIDENT.responses:
    print(f"response  {SHORT[response['type_url']]}  version_info={response['version_info']}  nonce={response['nonce']:<3} "
          f"{response['resources']}")
for request in INCIDENT.requests:
    error = "  + error_detail" if "error_detail" in request else ""
    print(f"request   {SHORT[request['type_url']]}  version_info={request['version_info']}  response_nonce={request['response_nonce']:<3} "
          f"{request['resource_names']}{error}")
print("calls once the client had answered the change:", dict(sorted(INCIDENT.calls.items())))
assert set(INCIDENT.calls) == {"v1", "v2"}, "the client kept calling both backends: it stayed on its last good route"

# %% [markdown]
# Every response is answered by a request that repeats its nonce. Three say "applied" (their
# `version_info` is the response's). One carries `error_detail` and an older `version_info`: the
# NACK. The full error, in gRPC's words:

# %% tags=["nbval-ignore-output"]
nack = next(request for request in INCIDENT.requests if "error_detail" in request)
print(nack["error_detail"]["message"].replace(": [", ":\n  [").replace("; ", ";\n  "))
assert "RouteConfiguration" in nack["error_detail"]["message"] and nack["version_info"] != INCIDENT.responses[0]["version_info"]

# %% [markdown]
# How gRPC writes it (its C core, under grpcio: grpc/grpc `src/core/xds/xds_client/xds_client.cc`):
# it validates every resource of a response; each invalid one adds `resource index N: NAME: ...` to
# the error, and a field path with what is wrong (`field:PATH error:WHAT`). A NACK is per response,
# not per resource: the request names the type and repeats the response's nonce. Its `version_info`
# is the last version of that type the client accepted, which is the configuration it stays on
# (versions are per type: the other three types moved on). That holds when nothing in the rejected
# response was valid, as here; the last section shows the other case.
#
# ## Exercise 1 · Read the NACK
#
# Write `diagnose(requests, responses)` returning a dict:
#
# - `type`: "LDS", "RDS", "CDS" or "EDS" (`SHORT[type_url]`);
# - `resources`: the names of the rejected resources, as the error names them;
# - `fields`: the field paths the error names;
# - `rejected_version`: the `version_info` of the response the client rejected;
# - `version_kept`: the version the client stays on for this type;
# - `nonce`: the nonce of the rejected response.
#
# Read them from the arguments, not from the printout: the check also gives your function a second
# real incident (clusters of type STATIC, which gRPC refuses), with other nonces. `re` helps.

# %% nbgrader={"grade": false, "grade_id": "diagnose", "locked": false, "schema_version": 3, "solution": true}
import re


def diagnose(requests, responses):
    ### BEGIN SOLUTION
    nack = next(request for request in requests if "error_detail" in request)
    message = nack["error_detail"]["message"]
    rejected = next(response for response in responses if response["nonce"] == nack["response_nonce"])
    return {
        "type": SHORT[nack["type_url"]],
        "resources": sorted(set(re.findall(r"resource index \d+: ([^:\s]+): ", message))),
        "fields": sorted(set(re.findall(r"field:(\S+) error:", message))),
        "rejected_version": rejected["version_info"],
        "version_kept": nack["version_info"],
        "nonce": nack["response_nonce"],
    }
    ### END SOLUTION


# %% tags=["nbval-ignore-output"] nbgrader={"grade": true, "grade_id": "check_diagnosis", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab05.check_diagnosis(diagnose, INCIDENT)
for key, value in diagnose(INCIDENT.requests, INCIDENT.responses).items():
    print(f"{key:<17} {value}")

# %% [markdown]
# ## Exercise 2 · Fix it
#
# Write `fix(greeter)` returning the Service the operator meant: all of greeter's calls to v1, none
# to v2. `greeter.service("greeter", {backend: weight, ...})` builds one (it is what the lab served,
# with its weights). The check serves the bad route, then yours, on one stream: gRPC must ACK your
# RouteConfiguration (its nonce and *its* version in the next request), and a fresh client's 100
# calls must all reach v1.

# %% nbgrader={"grade": false, "grade_id": "fix", "locked": false, "schema_version": 3, "solution": true}
def fix(greeter):
    ### BEGIN SOLUTION
    return greeter.service("greeter", {"v1": 100})
    ### END SOLUTION


# %% tags=["nbval-ignore-output"] nbgrader={"grade": true, "grade_id": "check_fix", "locked": true, "points": 1, "schema_version": 3, "solution": false}
FIXED = lab05.check_fix(fix)
first = FIXED.records[0]["connection"]  # the client that NACKed; a fresh client connects afterwards
for record in FIXED.records[FIXED.fix_mark:]:
    if record["type"] == "RDS" and record["connection"] == first:
        print(f"{record['direction']:<9} RDS  version {record['version']}  nonce {record['nonce']:<3} {record['kind']}")
print("a fresh client's calls:", dict(FIXED.after_fix))

# %% [markdown]
# ## When a NACK carries the new version
#
# Since gRFC A46 ("xDS NACK Semantics Improvement"), gRPC uses the *valid* resources of a response
# it NACKs and ignores only the invalid ones; and it moves its version for the type when at least
# one resource was valid, or the response had no error (`OnRecvMessage` in `xds_client.cc`). So
# `version_info` alone does not say which copy of a resource the client runs. Below, greeter-v2's
# endpoint becomes a DNS name, which gRPC cannot parse as an address; greeter-v1's, in the same EDS
# response, is fine. The NACK carries the new version, and calls still reach v2: its old endpoint
# stays in use.

# %% tags=["nbval-ignore-output"]
def dns_endpoint(greeter):
    service = greeter.service("greeter", lab05.GOOD)
    service.clusters["greeter-v2"] = ["greeter-v2.default.svc.cluster.local:50051"]
    return service


partial = lab05.incident(dns_endpoint)
seen = lab05.truth(partial.records)
print(f"NACK of {seen['type']} {seen['resources']}: version_info {seen['version_kept']}, rejected version {seen['rejected_version']}")
print("calls once the client had answered the change:", dict(sorted(partial.calls.items())))
assert seen["type"] == "EDS" and seen["version_kept"] == seen["rejected_version"] and partial.calls["v2"] > 0

# %% [markdown]
# To see per resource what a client holds (acked, nacked, nacked but cached, each with its version),
# ask the client itself over CSDS, the Client Status Discovery Service, which gRPC's xDS client can
# serve (gRFC A40, "xDS Configuration Dump via Client Status Discovery Service").

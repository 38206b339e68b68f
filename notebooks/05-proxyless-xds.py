# %% [markdown]
# # 05 · Proxyless: xDS without a sidecar
#
# Envoy learns everything from its control plane over xDS. So can a gRPC client: gRPC has its own xDS
# client, and with a bootstrap file it resolves `xds:///greeter` by asking a control plane for listeners,
# routes, clusters and endpoints, then balances its calls itself, with no sidecar in the path. This chapter
# builds those resources, explains the protocol's versions, nonces, ACKs and NACKs, and then runs meshlab's
# own control plane, and then Istio's istiod, against gRPC's real xDS client.
#
# **After this chapter you can**
# - write the bootstrap a proxyless client needs and say what each field is for;
# - follow the LDS → RDS → CDS → EDS chain a client walks, and build each resource;
# - read an ADS exchange: subscriptions, responses, ACKs, NACKs, stale nonces;
# - explain what pilot-agent does for a sidecar and why a proxyless client still needs an agent;
# - point the same client at the real istiod, out of cluster, and read the names Istio gives the chain.

# %%
from meshlab.viz.architectures import proxyless_vs_sidecar

proxyless_vs_sidecar()

# %%
import json
from collections import Counter

import ipywidgets as widgets
from google.protobuf import json_format

from meshlab.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, MeshConfig, Service, build
from meshlab.xds.server import bootstrap
import matplotlib.pyplot as plt

from meshlab.viz import slider, use_book_style
from meshlab.viz.text import fit, say

use_book_style()

# %% [markdown]
# ## 1 · Model: the bootstrap
#
# gRPC reads the file named by `GRPC_XDS_BOOTSTRAP` when it creates its first xDS channel: where the
# control plane is (`xds_servers`), how to reach it, and who this client is (`node`), which the control
# plane uses to decide what to send. Istio's agent writes this file for proxyless pods
# (`/etc/istio/proxy/grpc-bootstrap.json`) and points gRPC at its own local xDS proxy,
# `unix:///etc/istio/proxy/XDS`; the agent talks to istiod on port 15012 over TLS, authenticated with the
# pod's service-account token (istio/istio, pkg/istio-agent). The plaintext port 15010 below is this lab's
# shortcut: no agent, no certificates.

# %%
print(json.dumps(bootstrap(15010, node_id="sidecar~10.244.0.12~greeter-client.default~default.svc.cluster.local"), indent=2))

# %% [markdown]
# ## 2 · Model: the chain of resources
#
# For `xds:///greeter` the client asks for the **Listener** `greeter` (an `api_listener` holding an
# HttpConnectionManager that names its routes), then that **RouteConfiguration** (a virtual host whose
# domains match `greeter`), then each **Cluster** it routes to (type EDS: endpoints come over ADS too),
# then each **ClusterLoadAssignment**. Here is the chain for a greeter with a 75/25 split:

# %%
def demo(v1_percent: int = 75) -> MeshConfig:
    return MeshConfig({"greeter": Service("greeter", {"greeter-v1": v1_percent, "greeter-v2": 100 - v1_percent},
                                          {"greeter-v1": ["10.244.0.10:50051"], "greeter-v2": ["10.244.0.11:50051"]})})


DEMO = demo()


def show(type_url, name):
    resource = build(type_url, DEMO)[name]
    message = json_format.MessageToDict(resource)
    print(fit(json.dumps(message, indent=1)))


for type_url, name in ((LISTENER, "greeter"), (ROUTE, "greeter"), (CLUSTER, "greeter-v1"), (ENDPOINT, "greeter-v1")):
    print(f"--- {type_url.rsplit('.', 1)[1]} {name}")
    show(type_url, name)

# %% [markdown]
# Move the slider to change the split; the route's weighted clusters follow.

# %% tags=["nbval-ignore-output"]
def split(v1_percent):
    route = json_format.MessageToDict(build(ROUTE, demo(v1_percent))["greeter"])
    print(json.dumps(route["virtualHosts"][0]["routes"][0]["route"], indent=1))


widgets.interact(split, v1_percent=slider("greeter-v1 %", 75, 1, 99));
clusters = json_format.MessageToDict(build(ROUTE, demo(30))["greeter"])["virtualHosts"][0]["routes"][0]["route"]["weightedClusters"]["clusters"]
assert {c["name"]: c["weight"] for c in clusters} == {"greeter-v1": 30, "greeter-v2": 70}

# %% [markdown]
# ## 3 · The protocol: versions, nonces, ACK and NACK
#
# Everything travels on one bidirectional stream (ADS). In the state-of-the-world protocol:
# - a request **without a nonce** subscribes to resource names of one type; the server answers with a
#   response carrying a `version_info` and a fresh `nonce`;
# - the client answers every response: an **ACK** repeats its nonce and version; a **NACK** repeats the nonce
#   with an `error_detail` naming what it rejected, and keeps its last good copy of each rejected resource.
#   When nothing in the response was valid, the NACK carries the *previous* version. gRPC also keeps the
#   valid resources of a partly bad response, and then its NACK carries the new version (gRFC A46; grpc/grpc
#   `src/core/xds/xds_client/xds_client.cc`, as lab 05 shows live);
# - a request whose nonce is not the latest one sent is **stale**: a newer response is already on its way, and
#   the server ignores it (Istio does; gRPC pipelines subscription changes, so stale requests are common);
# - when a route starts naming a new cluster the client re-sends the latest nonce with a longer name list: a
#   subscription change the server must answer again.
#
# One stream, drawn as a sequence: the client subscribes to the listener, ACKs it, and later refuses a
# cluster at version 2, so its NACK repeats nonce 4 with version 1, the last version it accepted.

# %%
from meshlab.viz.figures import draw_sequence
from meshlab.viz.sequence import ads_messages

STREAM = [
    {"direction": "request", "kind": "subscribe", "type": "LDS", "version": "", "nonce": "", "resources": ["greeter"]},
    {"direction": "response", "kind": "response", "type": "LDS", "version": "1", "nonce": "1", "resources": ["greeter"]},
    {"direction": "request", "kind": "ACK", "type": "LDS", "version": "1", "nonce": "1", "resources": ["greeter"]},
    {"direction": "request", "kind": "subscribe", "type": "CDS", "version": "", "nonce": "", "resources": ["greeter-v1"]},
    {"direction": "response", "kind": "response", "type": "CDS", "version": "1", "nonce": "2", "resources": ["greeter-v1"]},
    {"direction": "request", "kind": "ACK", "type": "CDS", "version": "1", "nonce": "2", "resources": ["greeter-v1"]},
    {"direction": "response", "kind": "response", "type": "CDS", "version": "2", "nonce": "4", "resources": ["greeter-v1"]},
    {"direction": "request", "kind": "NACK", "type": "CDS", "version": "1", "nonce": "4", "resources": ["greeter-v1"]},
]
messages = ads_messages(STREAM)
draw_sequence(["gRPC xDS client", "control plane"], messages, "ADS: subscribe, respond, ACK; then a NACK keeps version 1")
plt.show()
assert messages[-1].role == "failure" and "version 1, nonce 4" in messages[-1].label

# %% [markdown]
# ## 4 · What pilot-agent does, and why proxyless still needs an agent
#
# In a sidecar pod, pilot-agent bootstraps and supervises Envoy (and drains it), serves it certificates over
# SDS on a Unix socket (fetched from istiod), proxies its xDS stream to istiod, runs a DNS proxy on 15053,
# answers readiness on 15021 and rewrites application probes on 15020, and merges metrics on
# `:15020/stats/prometheus`. A proxyless gRPC pod has no Envoy, but still needs the bootstrap file (the
# agent writes it, with the node identity istiod expects) and, for mTLS, certificates on disk for gRPC's
# file-watcher provider: so Istio runs the agent without Envoy in proxyless pods.
#
# ## 5 · Live: meshlab's control plane and gRPC's own xDS client
#
# **Stage: live, on loopback** (any Linux or macOS with the Python packages; no root). `meshlab.xds.server`
# is an ADS server (grpc.aio, Envoy's protos from xds-protos) whose pushes go through the Debouncer and
# PushQueue of chapter 06. Two backends answer with their names; the client is a separate process using
# grpcio's built-in xDS client, exactly as a proxyless application would.

# %% tags=["nbval-ignore-output"]
from meshlab.xds.harness import Greeter, collect, run_clients

greeter = Greeter()
greeter.control_plane.set_service(greeter.service("greeter", {"v1": 75, "v2": 25}))
(records,) = run_clients(greeter.bootstrap, ["greeter"], 1000)
shares = Counter(r.get("backend") or r.get("error") for r in records)
print("1000 calls:", dict(shares))
assert 0.70 <= shares["v1"] / 1000 <= 0.80, "the client follows the 75/25 route"

# %% [markdown]
# The exchange, as the control plane recorded it: the client walks the chain, ACKing each response.

# %% tags=["nbval-ignore-output"]
draw_sequence(["gRPC xDS client", "control plane"], ads_messages(greeter.control_plane.exchanges[:16]),
              "The first 16 messages of the real stream, as the control plane recorded them")
plt.show()
assert {e["type"] for e in greeter.control_plane.exchanges if e["kind"].startswith("ACK")} == {"LDS", "RDS", "CDS", "EDS"}

# %% [markdown]
# A live shift while a client keeps calling, then an invalid cluster (type STATIC, which gRPC refuses):
# the client NACKs it and keeps serving from its last good configuration.

# %% tags=["nbval-ignore-output"]
(client,) = run_clients(greeter.bootstrap, ["greeter"], 300, interval_ms=5, wait=False)
greeter.control_plane.wait_for_clients(1)  # the client has its whole configuration and is calling
greeter.control_plane.set_service(greeter.service("greeter", {"v2": 1}))
print(f"shift pushed and answered in {greeter.control_plane.wait_settled() * 1000:.1f} ms")
greeter.control_plane.set_service(greeter.service("greeter", {"v2": 1}, cluster_type="STATIC"))
greeter.control_plane.wait_settled()
(records,) = collect([client])
nacks = [e for e in greeter.control_plane.exchanges if e["kind"] == "NACK"]
print("calls:", dict(Counter(r.get("backend") or r.get("error") for r in records)))
say(f"NACK of {nacks[0]['type']}, staying on version {nacks[0]['version']}", nacks[0]["error"])
assert "error" not in Counter(r.get("backend") or r.get("error") for r in records) and nacks
assert nacks[0]["type"] == "CDS" and records[-1]["backend"] == "v2", "CDS was refused; calls went on to v2"
greeter.close()

# %% [markdown]
# ## 6 · The same client, the real istiod, in a pod
#
# **Stage: upstream and live, as root** (Go; `meshlab upstream install kube-apiserver etcd kubectl
# kube-controller-manager pilot-discovery pilot-agent istioctl`). istiod runs out of cluster against a real Kubernetes API server (etcd and
# kube-apiserver v1.35.4, no kubelet; chapter 06 §7 says how), and the live lab's pods are its pods: the lab
# creates each Pod with the real kubectl before it makes the pod, and reports its IP as a kubelet would
# (`meshlab.lab.istiod`). Three pods in namespace `shop`, all proxyless: `client`, and `greet1` and
# `greet2`, gRPC servers answering with their names, labelled `app: greeter` and `version: v1` or `v2`; a
# Service `greeter` (port named `grpc`) selects them, and Kubernetes' own EndpointSlice controller lists
# them (kube-controller-manager, running that controller alone). A pod annotated
# `inject.istio.io/templates: grpc-agent` comes back from the API server with Istio's proxyless template:
# an `istio-proxy` container that runs pilot-agent without Envoy, `GRPC_XDS_BOOTSTRAP` set in the app, and
# no istio-init (no traffic is captured).
#
# That agent writes the client's bootstrap (pkg/istio-agent/grpcxds/grpc_bootstrap.go): node id
# `sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`, metadata `GENERATOR: grpc` (istiod then answers
# with its gRPC generator), the pod's namespace and ProxyConfig, and as the server its own Unix socket
# `./etc/istio/proxy/XDS`, which it relays to istiod. The lab writes the same bootstrap and runs that socket
# as a byte relay on the host (`meshlab.lab.xdsrelay`): istiod listens on the host's loopback, which no pod
# reaches, and a socket is a file both sides can open. The target is `xds:///HOST:PORT`, the listener name
# istiod builds for each service port. A DestinationRule names a subset per version and a VirtualService
# weights them, written with the real kubectl; `istioctl proxy-status` then asks istiod, over TLS on its
# 15012 and with a service-account token istiod has the API server review, which proxies it serves.

# %% tags=["nbval-ignore-output"]
import os
import time

import yaml

from meshlab import doctor
from meshlab.lab import Lab, PodSpec
from meshlab.lab.istiod import LAB_PROGRAMS
from meshlab.upstream import build
from meshlab.upstream.istiod import version_routing
from meshlab.upstream.versions import PROGRAMS
from meshlab.xds.pushcount import settle
from meshlab.xds.walk import walk

CONTROL_PLANE = {name: build.find(PROGRAMS[name]) for name in LAB_PROGRAMS}
MISSING = [name for name, program in CONTROL_PLANE.items() if program is None]
NAMESPACE, HOST = "shop", "greeter.shop.svc.cluster.local"
TARGET = f"{HOST}:7070"
REAL = {}
if MISSING or not (doctor.check_live().available and os.geteuid() == 0):
    print(f"needs the upstream stage ({', '.join(MISSING) or 'built'}) and the live stage as root: nothing run here")
    assert os.environ.get("MESHLAB_REQUIRE_UPSTREAM") != "1" or os.environ.get("MESHLAB_REQUIRE_LIVE") != "1"
else:
    from meshlab.lab.istiod import LabIstiod

    pods = [PodSpec("client", sidecar=False, proxyless=True, k8s_namespace=NAMESPACE, ports=()),
            *(PodSpec(f"greet{n}", sidecar=False, proxyless=True, k8s_namespace=NAMESPACE, app="grpc", ports=(7070,),
                      labels={"app": "greeter", "version": f"v{n}"}) for n in (1, 2))]
    with LabIstiod(Lab("ml05i"), {name: program.path for name, program in CONTROL_PLANE.items()}).up(pods) as plane:
        plane.add_service("greeter", NAMESPACE, 7070, {"app": "greeter"}, target_port=7070, protocol="grpc")
        route = version_routing(HOST, NAMESPACE, ["v1", "v2"], {"v1": 75, "v2": 25})
        plane.kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(route))
        settle(plane.istiod, quiet_s=1.0)  # istiod has debounced the changes and pushed them
        stored, in_client = plane.pod("client"), plane.lab.pod("client").namespace.argv
        BOOT = json.loads(plane.bootstrap_path("client").read_text())
        NODE = BOOT["node"]
        REAL["chain"] = walk(BOOT["xds_servers"][0]["server_uri"], NODE["id"], TARGET, NODE["metadata"])
        (REAL["weighted"],) = run_clients(plane.bootstrap_path("client"), [TARGET], 1000, within=in_client)
        shift = version_routing(HOST, NAMESPACE, ["v1", "v2"], {"v1": 0, "v2": 100})[1]  # the VirtualService alone
        plane.kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(shift))
        settle(plane.istiod, quiet_s=1.0)
        (client,) = run_clients(plane.bootstrap_path("client"), [TARGET], 40, interval_ms=50, wait=False, within=in_client)
        time.sleep(1.0)  # connected and calling
        status = plane.istiod.proxy_status()  # over TLS, with a service-account token istiod reviews
        (REAL["shifted"],) = collect([client])
        pod_ips = {name: pod.ip for name, pod in plane.lab.pods.items()}
    containers = {c["name"]: c for c in stored["spec"]["containers"]}
    print("pod client from the API server: containers", list(containers), "| init containers",
          [c["name"] for c in stored["spec"].get("initContainers", [])])
    print(fit(f"  app env: {({e['name']: e['value'] for e in containers['app'].get('env', []) if 'value' in e})}"))
    print("bootstrap: node id", NODE["id"])
    print(fit(f"  server_uri {BOOT['xds_servers'][0]['server_uri']}, metadata {json.dumps(NODE['metadata'])}"))
    for label in ("weighted", "shifted"):
        print(f"{label}: {len(REAL[label])} calls:", dict(Counter(r.get("backend") or r.get("error") for r in REAL[label])))
    print(status)
    weighted, shifted = (Counter(r.get("backend") for r in REAL[label]) for label in ("weighted", "shifted"))
    assert "istio-proxy" in containers and "initContainers" not in stored["spec"], "the grpc-agent template: an agent, no istio-init"
    assert 0.70 <= weighted["greet1"] / 1000 <= 0.80 and set(shifted) == {"greet2"}, "the client follows istiod's routes"
    assert [line.split()[0] for line in status.splitlines()[1:]] == [f"client.{NAMESPACE}"], "istiod lists the client"
    assert REAL["chain"][-1].next_names == tuple(f"{pod_ips[name]}:7070" for name in ("greet1", "greet2")), "v1 then v2"

# %% [markdown]
# The chain the client walked, asked of both control planes for the same two backends weighted 75/25
# (`meshlab.xds.walk` requests each type in turn, as gRPC does): the structure is the same, a listener
# whose HTTP connection manager names a route configuration, weighted clusters, their endpoints. The names
# are Istio's own: the listener is `HOST:PORT`, the route configuration `outbound|PORT||HOST`, a subset's
# cluster `outbound|PORT|SUBSET|HOST` (pilot/pkg/networking/grpcgen), where meshlab names them after the
# service.

# %% tags=["nbval-ignore-output"]
if REAL:
    greeter = Greeter()
    greeter.control_plane.set_service(greeter.service("greeter", {"v1": 75, "v2": 25}))
    greeter.control_plane.wait_settled()  # the change is pushed (no client yet to answer it)
    ours = walk(f"127.0.0.1:{greeter.port}", "meshlab-client", "greeter")
    greeter.close()
    for real, mine in zip(REAL["chain"], ours):
        print(f"{real.kind}  istiod:  {real.names[0]}" + "".join(f"\n              {name}" for name in real.names[1:]))
        print(f"     meshlab: {', '.join(mine.names)}")
    assert [step.kind for step in REAL["chain"]] == [step.kind for step in ours] == ["LDS", "RDS", "CDS", "EDS"]
    assert REAL["chain"][0].names == (f"{HOST}:7070",) and REAL["chain"][1].names == (f"outbound|7070||{HOST}",)
    assert len(REAL["chain"][3].next_names) == len(ours[3].next_names) == 2

# %% [markdown]
# ## Stage of this chapter
#
# Sections 1-4 run on the **model** stage (resources built and printed, no network). Section 5 runs
# **live**: a real ADS server and gRPC's real xDS client, on loopback. Section 6 runs on the **upstream**
# and **live** stages, as root: the same client in a lab pod, against istiod itself, whose configuration the
# real kubectl writes into a real API server and whose injector gave the pod Istio's `grpc-agent` template.
# What is not Istio's there: the pods are network namespaces (no kubelet, no containers), and the agent's
# xDS socket is a byte relay rather than pilot-agent's gRPC proxy. On the **kind** stage, the same template
# runs the real agent in a cluster.
#
# ## What to remember
#
# - A proxyless gRPC client reads a bootstrap (control plane, node identity) and asks for Listener, Route,
#   Cluster and ClusterLoadAssignment over ADS.
# - Every response is ACKed or NACKed with its nonce; a NACK keeps the last good configuration.
# - In Istio the agent writes the bootstrap and proxies xDS over a Unix socket; istiod listens on 15012 (TLS).
#
# ## Check yourself
#
# 1. A route's clusters are weighted 75/25. Where does that live in xDS?
#
#    <details><summary>Answer</summary>
#
#    In the RouteConfiguration's route action: weighted clusters greeter-v1 75 and greeter-v2 25.
#
#    </details>
#
# 2. A Cluster arrives with an unknown discovery type. What does the client do?
#
#    <details><summary>Answer</summary>
#
#    NACKs the CDS response (error detail, the last accepted version) and keeps calling with the old cluster.
#
#    </details>
#
# 3. Why do the chapter's clients talk plaintext to port 15010?
#
#    <details><summary>Answer</summary>
#
#    It is the lab's shortcut: no agent and no certificates. In Istio the agent's connection to istiod is
#    TLS on 15012.
#
#    </details>
#
# **Lab 05** (`labs/05-diagnosing-a-nack.ipynb`): read a real NACK, then serve a fix gRPC ACKs.

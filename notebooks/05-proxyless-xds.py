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
# ## 6 · The same client, the real istiod
#
# **Stage: upstream** (Go; `meshlab upstream install kube-apiserver etcd kubectl pilot-discovery istioctl`).
# istiod runs out of cluster against a real Kubernetes API server on loopback (etcd and kube-apiserver
# v1.35.4, no nodes; chapter 06 §7 says how). The service is a ServiceEntry whose two endpoints are the
# backends on loopback, labelled v1 and v2; a DestinationRule names a subset per label and a
# VirtualService weights them, all written with the real kubectl. The client's bootstrap is what Istio's
# agent writes for a proxyless pod (pkg/istio-agent/grpcxds/grpc_bootstrap.go): node id
# `sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`, metadata `GENERATOR: grpc` (istiod then answers
# with its gRPC generator), the pod's namespace and its ProxyConfig. The target is `xds:///HOST:PORT`, the
# listener name istiod builds for each service port. `istioctl proxy-status` then asks istiod, over TLS on
# its 15012 and with a service-account token istiod has the API server review, which proxies it serves.

# %% tags=["nbval-ignore-output"]
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from meshlab.upstream import build
from meshlab.upstream.istiod import PROGRAM_NAMES
from meshlab.upstream.versions import PROGRAMS
from meshlab.xds.echo import start_backend
from meshlab.xds.pushcount import settle
from meshlab.xds.walk import walk

CONTROL_PLANE = {name: build.find(PROGRAMS[name]) for name in PROGRAM_NAMES}
MISSING = [name for name, program in CONTROL_PLANE.items() if program is None]
HOST, NAMESPACE = "greeter.example.com", "shop"
REAL = {}
if MISSING:
    print(f"upstream stage: {', '.join(MISSING)} not built here (meshlab upstream install {' '.join(MISSING)})")
    assert os.environ.get("MESHLAB_REQUIRE_UPSTREAM") != "1", "the upstream stage is required here"
else:
    from meshlab.upstream.istiod import Istiod, loopback_service, proxyless_node
    from meshlab.upstream.kube import KubeControlPlane

    NODE, METADATA = proxyless_node("client", NAMESPACE)
    print("node id:", NODE)
    print(fit(f"metadata: {json.dumps(METADATA)}"))

    paths = {name: program.path for name, program in CONTROL_PLANE.items()}
    folder = Path(tempfile.mkdtemp(prefix="meshlab-istiod-"))
    backends = {v: start_backend(v) for v in ("v1", "v2")}
    ports = {v: port for v, (_, port) in backends.items()}
    with KubeControlPlane(paths["kube-apiserver"], paths["etcd"], paths["kubectl"], folder / "kube") as kube, \
            Istiod(paths["pilot-discovery"], paths["istioctl"], kube, folder / "istiod") as istiod:
        kube.kubectl("create", "namespace", NAMESPACE)
        kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(loopback_service(HOST, NAMESPACE, 7070, ports, {"v1": 75, "v2": 25})))
        settle(istiod, quiet_s=1.0)  # istiod has debounced the change and pushed it
        bootstrap(int(istiod.xds_address.rsplit(":", 1)[1]), NODE, folder / "bootstrap.json", METADATA)
        REAL["chain"] = walk(istiod.xds_address, NODE, f"{HOST}:7070", METADATA)
        (REAL["weighted"],) = run_clients(folder / "bootstrap.json", [f"{HOST}:7070"], 1000)
        kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(loopback_service(HOST, NAMESPACE, 7070, ports, {"v1": 0, "v2": 100})[2:]))
        settle(istiod, quiet_s=1.0)
        (client,) = run_clients(folder / "bootstrap.json", [f"{HOST}:7070"], 40, interval_ms=50, wait=False)
        time.sleep(1.0)  # connected and calling
        status = istiod.proxy_status()  # over TLS, with a service-account token istiod reviews
        (REAL["shifted"],) = collect([client])
    for server, _ in backends.values():
        server.stop(grace=None)
    shutil.rmtree(folder)  # the client's bootstrap file
    for label in ("weighted", "shifted"):
        print(f"{label}: {len(REAL[label])} calls:", dict(Counter(r.get("backend") or r.get("error") for r in REAL[label])))
    print(status)
    weighted, shifted = (Counter(r.get("backend") for r in REAL[label]) for label in ("weighted", "shifted"))
    assert 0.70 <= weighted["v1"] / 1000 <= 0.80 and set(shifted) == {"v2"}, "the client follows istiod's routes"
    assert [line.split()[0] for line in status.splitlines()[1:]] == [f"client.{NAMESPACE}"], "istiod lists the client"

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
        print(f"{real.kind}  istiod:  {', '.join(real.names)}")
        print(f"     meshlab: {', '.join(mine.names)}")
    assert [step.kind for step in REAL["chain"]] == [step.kind for step in ours] == ["LDS", "RDS", "CDS", "EDS"]
    assert REAL["chain"][0].names == (f"{HOST}:7070",) and REAL["chain"][1].names == (f"outbound|7070||{HOST}",)
    assert len(REAL["chain"][3].next_names) == len(ours[3].next_names) == 2

# %% [markdown]
# ## Stage of this chapter
#
# Sections 1-4 run on the **model** stage (resources built and printed, no network). Section 5 runs
# **live**: a real ADS server and gRPC's real xDS client, on loopback. Section 6 runs on the **upstream**
# stage: the same client against istiod itself, whose configuration the real kubectl writes into a real API
# server. On the **kind** stage, Istio's proxyless gRPC (`inject.istio.io/templates: grpc-agent`) uses the
# same protocol with istiod in a cluster.
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

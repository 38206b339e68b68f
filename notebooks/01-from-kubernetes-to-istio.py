# %% [markdown]
# # 01 · From Kubernetes to Istio
#
# Kubernetes gives every pod an address and every Service a stable name. It does not tell you which
# call failed, retry it, encrypt it, or decide who may make it. Once a system is a few dozen services,
# those questions are asked on every one of hundreds of edges, and answering them in each service's own
# code stops scaling. A service mesh answers them once, in a proxy beside every workload.
#
# **After this chapter you can**
# - explain, with numbers from a growth model, why dependencies, call paths and failure domains outgrow
#   the number of services;
# - draw the path of one call through a Kubernetes Service (kube-proxy) and through two Istio sidecars,
#   and count the processes, connections and netfilter decisions on each;
# - state the three things any mesh needs (interception, a way to run the proxies, a programmable proxy)
#   and the four claims this book tests, each in the chapter that argues it;
# - show, with real gRPC, why the library-based mesh (interceptors, Spring Cloud/Netflix OSS) lost to the
#   sidecar although both retry the same failures;
# - place a proxy in one of five eras, from configuration files to the xDS-driven cloud-native proxies;
# - compare seven meshes (Istio in two rows: sidecar and ambient) by data plane, ingress, governance and
#   licence, and say where each stands in 2026;
# - say what SMI, Service Mesh Performance and Network Service Mesh are, and what they are not.

# %%
from meshlab.viz.architectures import istio_architecture

istio_architecture()

# %%
import inspect
import os
from contextlib import closing

# gRPC's C core logs connection events on stderr, e.g. a GOAWAY when §3's test servers stop with calls
# still open; only its errors belong in this chapter's output. (Read when grpc is first imported.)
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
import grpc
import matplotlib.pyplot as plt
import networkx as nx
from IPython.display import Markdown, display

from meshlab.landscape import ERAS, MESHES, RELATED_PROJECTS, mesh_table
from meshlab.microservices import blast_radius, call_graph_stats, grow_call_graph, kube_proxy_path, request_success, sidecar_path
from meshlab.microservices.retries import FlakyBackend, RetryingProxy, RetryInterceptor, RetryPolicy, call_many
from meshlab.viz import draw_call_graph, draw_request_path, interactive_figure, new_axes, plot_timeline, slider, use_book_style
from meshlab.viz.text import fit

use_book_style()
SEED = 7

# %% [markdown]
# ## The frame: three requirements, four claims
#
# The article this book follows ("Beyond Istio OSS", 2022) asks three things of any service mesh, and
# every chapter is about one of them:
#
# 1. **Interception**: the app's traffic must reach the proxy without the app's help (iptables in
#    chapter 02, eBPF in chapter 03).
# 2. **Running the proxies**: something must put a proxy beside every workload and keep it alive: a
#    sidecar injected into each pod, or a shared proxy per node or per service account (chapter 04).
# 3. **A programmable proxy**: its routes, endpoints, certificates and policies change at run time over
#    an API (xDS, chapters 05 and 06), not by editing a file and restarting.
#
# And it makes four claims, which the book states here and argues where the evidence is:
#
# | The seed's claim (2022) | Argued in |
# |---|---|
# | Meshes rose because microservices multiplied the calls to secure, observe and make reliable | §1 and §3 below |
# | A mesh is Kubernetes plus a programmable proxy: Kubernetes runs and addresses the workloads, the proxy does the rest | §2 below; chapters 02, 05, 06 |
# | eBPF can shorten the path, but cannot replace the sidecar's layer-7 work | chapter 03 (§4), chapter 04; the closing note below revisits it for 2026 |
# | The future is zero trust and hybrid cloud | chapters 13 and 14 (identity, authorisation); chapter 12 on the map (many clusters) |

# %% [markdown]
# ## 1 · Model: what grows when services multiply
#
# `meshlab.microservices.grow_call_graph` adds services one at a time. Each newcomer is called by two
# existing services, chosen with probability proportional to how many calls they already make: the
# frontend and other aggregators keep attracting calls (preferential attachment). Edges point from
# caller to callee. For each size we count:
#
# - **dependencies**: caller → callee edges, each one a place for timeouts, retries, mTLS and policy;
# - **call paths**: distinct paths a request from the frontend can take;
# - **longest chain**: the deepest synchronous call chain;
# - **blast radius**: how many services can fail when one fails (all its direct and indirect callers).

# %%
print(f"{'services':>8} {'dependencies':>12} {'call paths':>10} {'longest chain':>13} {'max blast radius':>16} {'full-mesh pairs':>15}")
growth = {}
for services in (5, 10, 20, 50, 100, 200):
    stats = call_graph_stats(grow_call_graph(services, seed=SEED))
    growth[services] = stats
    print(f"{stats.services:>8} {stats.dependencies:>12} {stats.call_paths:>10} {stats.longest_chain:>13} {stats.max_blast_radius:>16} {stats.full_mesh_pairs:>15}")

# %%
sizes = list(growth)
ax = new_axes("What grows with the number of services", "services", "count (log scale)")
ax.plot(sizes, sizes, "--", color="0.6", label="services (linear)")
ax.plot(sizes, [growth[n].dependencies for n in sizes], "o-", label="dependencies")
ax.plot(sizes, [growth[n].call_paths for n in sizes], "o-", label="call paths from the frontend")
ax.plot(sizes, [growth[n].full_mesh_pairs for n in sizes], "o-", label="service pairs (any may call any)")
ax.set_xscale("log")
ax.set_yscale("log")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Dependencies grow about twice as fast as services here (two callers per newcomer); call paths grow
# faster still, and if policy is written per pair of services ("may A call B?") the space of pairs
# grows with the square. A request to the frontend also needs *everything below it* to be up: with
# every service at 99.9% availability and no retries, success is 0.999 to the power of the services
# it touches.

# %%
for services in (5, 20, 100, 200):
    graph = grow_call_graph(services, seed=SEED)
    print(f"{services:>4} services: a frontend request needs {1 + len(nx.descendants(graph, 'frontend')):>3} services up, "
          f"succeeds with p = {request_success(graph, 'frontend', 0.999):.4f}")

# %% [markdown]
# Move the slider to grow the system. The figure marks the service whose failure reaches the most
# callers (red) and those callers (orange). That orange set is the blast radius a mesh's timeouts,
# retries and circuit breakers are meant to contain.

# %% tags=["nbval-ignore-output"]
def show_call_graph(services):
    graph = grow_call_graph(services, seed=SEED)
    worst = max(sorted(graph), key=lambda node: len(blast_radius(graph, node)))
    affected = blast_radius(graph, worst)
    stats = call_graph_stats(graph)
    draw_call_graph(graph, failed=worst, affected=affected, title=f"{services} services: {worst} fails, {len(affected)} callers affected")
    plt.show()
    print(f"dependencies {stats.dependencies}, call paths {stats.call_paths}, longest chain {stats.longest_chain}")


small, large = call_graph_stats(grow_call_graph(12, seed=SEED)), call_graph_stats(grow_call_graph(80, seed=SEED))
assert large.call_paths / small.call_paths > 80 / 12, "call paths grow faster than services"
interactive_figure(show_call_graph, services=slider("services", 12, 3, 80))

# %% [markdown]
# ## 2 · Model: one call, with and without sidecars
#
# Pod A calls `reviews:9080`. Through a plain Kubernetes Service, kube-proxy's iptables rules DNAT the
# ClusterIP to one pod IP on the connection's first packet; the kernel does everything else. The packet
# leaves pod A's network namespace through its veth and enters the node's stack, so it meets
# KUBE-SERVICES in the **node's nat PREROUTING** chain; kube-proxy also jumps to KUBE-SERVICES from nat
# OUTPUT, which is where the node's own (host-network) processes meet it (kubernetes/kubernetes,
# `pkg/proxy/iptables/proxier.go`, `iptablesJumpChains`). With
# Istio's sidecars, the caller's connection is redirected to its own proxy (port 15001), which picks the
# endpoint itself (so kube-proxy's DNAT never matches), and the callee's inbound rules redirect it again
# to the callee's proxy (port 15006), which connects to the app from 127.0.0.6. Chapter 02 runs exactly
# these rules in your kernel.

# %%
for path in (kube_proxy_path(), sidecar_path()):
    print(f"{path.mode:>10}: {len(path.hops)} hops, {path.user_space_proxies} user-space proxies, "
          f"{path.tcp_connections} TCP connections, {path.netfilter_decisions} netfilter decisions")
    for hop in path.hops:
        print(fit(f"{'':>12}{hop.name:<14} {hop.where:<22} {hop.action}", indent=" " * 38))

# %%
draw_request_path(kube_proxy_path().hops, "Through a Kubernetes Service (kube-proxy, iptables mode)")
plt.show()
draw_request_path(sidecar_path().hops, "Through two Istio sidecars (read the second row right to left)")
plt.show()

# %% [markdown]
# What the extra hops cost is measured live in chapter 02, next to Istio's published figures: Istio
# 1.20 reports two sidecars adding 0.228 ms at p90 and 0.298 ms at p99, where Istio 1.3 reported about
# 7 ms at p90 (istio.io, "Performance and Scalability" pages of those releases).

# %% [markdown]
# ## 3 · Live, on loopback: the mesh as a library, before sidecars
#
# Retries, timeouts, circuit breaking, service discovery and client-side load balancing existed before
# meshes, as **libraries** linked into each service: Netflix OSS (Ribbon, Hystrix, Eureka) under Spring
# Cloud on the JVM, interceptors around gRPC's stubs elsewhere. The logic was the same as a mesh's;
# *where it ran* was different. Below, one retry policy (`meshlab.microservices.retries.RetryPolicy`,
# Istio's default of 2 retries on UNAVAILABLE or CANCELLED, from Istio's
# `pilot/pkg/networking/core/route/retry/retry.go`) runs in both places, against a real gRPC server
# (grpcio) that fails a seeded 30% of the attempts it receives:
#
# - **library**: a `grpc.UnaryUnaryClientInterceptor` wrapped around the client's channel;
# - **proxy**: a gRPC proxy between client and server that forwards any method and retries; the client
#   is a plain channel. (Here the client dials the proxy's port; chapter 02 makes that transparent.)

# %%
POLICY = RetryPolicy()  # Istio's default retry policy
CALLS, FAILURE_RATE = 300, 0.3


def through_library(policy, linked=True):
    """CALLS calls from one client; ``linked`` False is a client that does not carry the library."""
    with FlakyBackend(FAILURE_RATE, seed=SEED) as backend:
        channel = grpc.insecure_channel(f"127.0.0.1:{backend.port}")
        channel = grpc.intercept_channel(channel, RetryInterceptor(policy)) if linked else channel
        with closing(channel):
            return call_many(channel, CALLS), backend.attempts


def through_proxy(policy, change_to=None):
    """The same calls through a retrying proxy; ``change_to`` swaps its policy half-way, clients untouched."""
    with FlakyBackend(FAILURE_RATE, seed=SEED) as backend, RetryingProxy(f"127.0.0.1:{backend.port}", policy) as proxy:
        with closing(grpc.insecure_channel(f"127.0.0.1:{proxy.port}")) as channel:
            statuses = call_many(channel, CALLS // 2)
            proxy.policy = change_to or policy
            return statuses + call_many(channel, CALLS - CALLS // 2), backend.attempts


runs = {"client without the library": through_library(POLICY, linked=False),
        "library (interceptor)": through_library(POLICY),
        "proxy in between": through_proxy(POLICY),
        "proxy, 4 retries from call 151": through_proxy(POLICY, change_to=RetryPolicy(retries=4))}
for name, (statuses, attempts) in runs.items():
    print(f"{name:<31} {statuses.count('OK'):>3}/{CALLS} calls succeeded, {attempts} attempts reached the server")
library, proxy = runs["library (interceptor)"], runs["proxy in between"]
assert library == proxy, "the same policy recovers the same calls wherever it runs"
assert runs["client without the library"][0].count("OK") < library[0].count("OK") < runs["proxy, 4 retries from call 151"][0].count("OK")

# %% [markdown]
# Both places recover exactly the same calls, call for call, and send the server the same attempts: the
# policy is the same code. The difference is what each service must carry and who can change it:

# %%
carried = sum(len(inspect.getsourcelines(part)[0]) for part in (RetryPolicy, RetryInterceptor))
print(f"{'':<36}{'library':<34}proxy")
print(f"{'code linked into every client':<36}{f'{carried} lines of Python, per language':<34}none")
print(f"{'a client that did not link it':<36}{'no retries (first row above)':<34}retried like the others")
print(f"{'changing the policy':<36}{'rebuild and redeploy each client':<34}one change at the proxy")
print(f"{'extra hop per call':<36}{'none':<34}a proxy hop (chapter 02)")

# %% [markdown]
# **Why the library lost.** Every service had to link it, in its own language (Hystrix and Ribbon were
# Java; a Go or Node service got nothing, or a different library with different semantics); every fix
# or policy change waited for every team to rebuild and redeploy; and resilience code sat inside business
# code. Netflix itself put Hystrix into maintenance mode in 2018 (github.com/Netflix/Hystrix, README). The
# proxy costs a hop (chapter 02 measures it) and buys one implementation, for every language, changed at
# run time by a control plane. The library is not dead: **proxyless gRPC** (chapter 05) is the library
# again, but configured over xDS by the same control plane as the proxies, which removes most of the old
# objection: gRPC has had retries built in, in every language, since gRFC A6 (a `retryPolicy` in the
# channel's service config), and a proxyless client receives that policy from istiod (gRFC A44).
#
# ## 4 · Where the proxies came from
#
# The mesh's data plane is the latest step in a long line of proxies. What changed from era to era is
# *how the proxy is told what to do*.

# %%
for number, era in enumerate(ERAS, start=1):
    print(f"{number}. {era.name}: {era.idea}")
    for proxy in era.proxies:
        print(fit(f"     {proxy.year}  {proxy.name:<26} {proxy.note}   [{proxy.source}]", indent=" " * 28))

# %%
tracks = {era.name: [(proxy.year, proxy.name) for proxy in era.proxies] for era in ERAS}
plot_timeline(tracks, "year of first release", "Five eras of proxies", xlim=(1993, 2024))
plt.show()

# %% [markdown]
# ## 5 · Seven meshes (eight rows: Istio twice, sidecar and ambient), as data
#
# The comparison lives in `meshlab.landscape.MESHES`: every status line and milestone carries its source
# and date, so the table can be checked and kept current rather than copied from a blog.

# %%
rows = mesh_table()
header = list(rows[0])
lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
lines += ["| " + " | ".join(row[column] for column in header) + " |" for row in rows]
display(Markdown("\n".join(lines)))

# %%
for mesh in MESHES:
    print(fit(f"{mesh.name}: {mesh.status_2026}  [{mesh.status_source}]"))
    for milestone in mesh.milestones:
        print(fit(f"    {milestone.when}  {milestone.what}  [{milestone.source}]", indent=" " * 9))


# %%
def as_year(when):
    year, month = when.split("-")
    return int(year) + (int(month) - 1) / 12


tracks = {mesh.name: [(as_year(m.when), m.short) for m in mesh.milestones] for mesh in MESHES}
plot_timeline(tracks, "year", "Service meshes: milestones to 2026", xlim=(2015.5, 2026.5))
plt.show()

# %% [markdown]
# Three names often appear in such tables that are not meshes at all:

# %%
for project in RELATED_PROJECTS:
    print(fit(f"{project.name}\n  is:     {project.is_}\n  is not: {project.is_not}\n  [{project.source}]", indent=" " * 8))

# %% [markdown]
# ## 6 · Who should adopt Istio, in what steps, and the stack around it
#
# The seed's advice, in short: a mesh pays off when there are many services, several languages and
# teams, and requirements that cut across all of them (mutual TLS everywhere, uniform telemetry, traffic
# shifting for releases); a handful of services in one language is often better served by a library or
# by Kubernetes alone. Adopt in steps, each useful on its own and reversible:
#
# 1. **Observe**: inject sidecars (or enrol namespaces in ambient mode) with permissive mTLS and no
#    routing rules; get golden-signal telemetry and a service graph for free.
# 2. **Secure**: move namespaces to STRICT mutual TLS, then add AuthorizationPolicy (chapters 13, 14).
# 3. **Control traffic**: VirtualService/DestinationRule (or Gateway API routes) for canaries, retries,
#    timeouts, outlier detection; an ingress gateway at the edge (chapter 08 on the map).
# 4. **Scale and extend**: Sidecar scoping (chapter 06 shows why), Wasm or MetaProtocol where HTTP is not
#    enough (chapter 11), multi-cluster last.
#
# Around the mesh sits the rest of the cloud-native stack: Kubernetes runs the workloads, the mesh
# connects them, and application-level models sit above both. The seed names the **Open Application
# Model** (OAM, oam.dev; its Kubernetes implementation is KubeVela, a CNCF project): developers describe
# an application as components plus *traits* (scaling, ingress, rollout), and platform teams map traits
# onto mechanisms, for instance a canary trait onto Istio routing rules, so application teams never write
# mesh configuration themselves.

# %% [markdown]
# ## 2022's view, from 2026
#
# The seed argued in 2022 that eBPF and per-node proxies cannot replace the sidecar: eBPF cannot
# terminate TLS or parse HTTP/2 in the kernel, and a shared layer-7 proxy per node mixes tenants'
# configuration and failures. Four years on, half of that held and half moved:
#
# - **Held**: no mesh does layer-7 work in eBPF. Chapter 03 shows what eBPF does take over (the
#   redirects and the loopback stack traversals) and what stays in a proxy.
# - **Moved**: Istio's **ambient mode** reached GA in Istio 1.24 (November 2024; see the table in §5). It
#   splits the sidecar's work instead of moving it into the kernel: a per-node **ztunnel** (Rust) does
#   only layer 4 (mTLS, identity, telemetry, L4 policy), which shares safely because it keeps no layer-7
#   configuration, and optional **waypoint** proxies (Envoy, one per namespace or per service) do layer 7
#   where it is needed. The seed's objection was to a shared *layer-7* proxy; ambient shares only
#   layer 4. Chapter 04 puts both models side by side, with their memory and failure domains.
#
# So the seed's "Kubernetes plus a programmable proxy" still stands; what changed is how many proxies,
# where, and at which layer.
#
# ## Stage of this chapter
#
# The growth model, the two request paths and the landscape data run on the **model** stage: Python you
# can read in `meshlab.microservices` and `meshlab.landscape`. §3 is **live on loopback**: a real gRPC
# server, client, interceptor and proxy (grpcio), no root needed. The **live lab** proper starts in
# chapter 02, where the sidecar path above runs in your own kernel with Istio's own iptables rules, and
# its hops are counted and timed.
#
# **Lab 01** (`labs/01-call-graphs.ipynb`) asks you to write the blast radius and the request success
# probability yourself.
#
# ## What to remember
#
# - A mesh needs three things: interception, a way to run proxies beside every workload, and a proxy
#   programmable at run time (xDS).
# - Dependencies and call paths grow faster than services; a failure's blast radius is every caller upstream.
# - Kubernetes routes a call (kube-proxy's DNAT on the first packet, in the node's nat PREROUTING for pod
#   traffic); a mesh adds a programmable proxy on each side that retries, encrypts, authorises and reports.
# - A retry library and a retrying proxy recover the same failures; the library must be linked into every
#   client in every language and redeployed to change, the proxy is changed once. That is why sidecars won.
# - 2026: ambient mode (GA in 1.24) keeps the proxy but shares its layer-4 half per node; eBPF still does
#   no layer-7 work.
# - Seven meshes in 2026, Istio in two data-plane modes; proxies evolved from configuration files to
#   xDS-driven cloud-native proxies.
#
# ## Check yourself
#
# 1. Through a plain Service, how many netfilter decisions does one call take, and where?
#
#    <details><summary>Answer</summary>
#
#    One: kube-proxy's DNAT on the connection's first packet, in KUBE-SERVICES, which the packet from the
#    pod meets in the client node's nat PREROUTING chain (OUTPUT is for the node's own processes);
#    conntrack translates the rest.
#
#    </details>
#
# 2. A gRPC interceptor and a sidecar apply the same retry policy. Why did meshes move retries into the
#    proxy, and what did it cost?
#
#    <details><summary>Answer</summary>
#
#    Both recover the same calls (§3 shows it call for call). The interceptor must be linked into every
#    client, in each language, and every policy change means rebuilding and redeploying them; a client
#    without it gets nothing. The proxy serves every client unchanged and is reconfigured at run time. It
#    costs one more hop, and TCP connection, per call (three connections per request with two sidecars).
#
#    </details>
#
# 3. Why are Istio's sidecar and ambient modes two rows in the comparison?
#
#    <details><summary>Answer</summary>
#
#    They are different data planes (an Envoy per pod vs a ztunnel per node plus optional waypoints) with
#    different costs and failure domains, under one control plane.
#
#    </details>

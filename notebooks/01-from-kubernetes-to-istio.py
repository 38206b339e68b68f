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
# - place a proxy in one of five eras, from configuration files to the xDS-driven cloud-native proxies;
# - compare seven meshes (Istio in two rows: sidecar and ambient) by data plane, ingress, governance and
#   licence, and say where each stands in 2026;
# - say what SMI, Service Mesh Performance and Network Service Mesh are, and what they are not.

# %%
import matplotlib.pyplot as plt
import networkx as nx
from IPython.display import Markdown, display

from meshlab.landscape import ERAS, MESHES, RELATED_PROJECTS, mesh_table
from meshlab.microservices import blast_radius, call_graph_stats, grow_call_graph, kube_proxy_path, request_success, sidecar_path
from meshlab.viz import draw_call_graph, draw_request_path, interactive_figure, new_axes, plot_timeline, slider, use_book_style

use_book_style()
SEED = 7

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
# ClusterIP to one pod IP on the connection's first packet; the kernel does everything else. With
# Istio's sidecars, the caller's connection is redirected to its own proxy (port 15001), which picks the
# endpoint itself (so kube-proxy's DNAT never matches), and the callee's inbound rules redirect it again
# to the callee's proxy (port 15006), which connects to the app from 127.0.0.6. Chapter 02 runs exactly
# these rules in your kernel.

# %%
for path in (kube_proxy_path(), sidecar_path()):
    print(f"{path.mode:>10}: {len(path.hops)} hops, {path.user_space_proxies} user-space proxies, "
          f"{path.tcp_connections} TCP connections, {path.netfilter_decisions} netfilter decisions")
    for hop in path.hops:
        print(f"{'':>12}{hop.name:<14} {hop.where:<22} {hop.action}")

# %%
fig, (top, bottom) = plt.subplots(2, 1, figsize=(9.5, 3.6))
draw_request_path(kube_proxy_path().hops, "Through a Kubernetes Service (kube-proxy, iptables mode)", ax=top)
draw_request_path(sidecar_path().hops, "Through two Istio sidecars", ax=bottom)
plt.show()

# %% [markdown]
# What the extra hops cost is measured live in chapter 02, next to Istio's published figures: Istio
# 1.20 reports two sidecars adding 0.228 ms at p90 and 0.298 ms at p99, where Istio 1.3 reported about
# 7 ms at p90 (istio.io, "Performance and Scalability" pages of those releases).
#
# ## 3 · Where the proxies came from
#
# The mesh's data plane is the latest step in a long line of proxies. What changed from era to era is
# *how the proxy is told what to do*.

# %%
for number, era in enumerate(ERAS, start=1):
    print(f"{number}. {era.name}: {era.idea}")
    for proxy in era.proxies:
        print(f"     {proxy.year}  {proxy.name:<26} {proxy.note}   [{proxy.source}]")

# %%
tracks = {era.name: [(proxy.year, proxy.name) for proxy in era.proxies] for era in ERAS}
ax = plot_timeline(tracks, "year of first release", "Five eras of proxies")
ax.set_xlim(1993, 2024)
plt.show()

# %% [markdown]
# ## 4 · Seven meshes (eight rows: Istio twice, sidecar and ambient), as data
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
    print(f"{mesh.name}: {mesh.status_2026}  [{mesh.status_source}]")
    for milestone in mesh.milestones:
        print(f"    {milestone.when}  {milestone.what}  [{milestone.source}]")


# %%
def as_year(when):
    year, month = when.split("-")
    return int(year) + (int(month) - 1) / 12


tracks = {mesh.name: [(as_year(m.when), m.short) for m in mesh.milestones] for mesh in MESHES}
ax = plot_timeline(tracks, "year", "Service meshes: milestones to 2026")
ax.set_xlim(2015.5, 2026.5)
plt.show()

# %% [markdown]
# Three names often appear in such tables that are not meshes at all:

# %%
for project in RELATED_PROJECTS:
    print(f"{project.name}\n  is:     {project.is_}\n  is not: {project.is_not}\n  [{project.source}]")

# %% [markdown]
# ## Stage of this chapter
#
# This chapter runs on the **model** stage only: the growth model, the two request paths and the
# landscape data are Python you can read in `meshlab.microservices` and `meshlab.landscape`. The
# **live** stage starts in chapter 02, where the sidecar path above runs in your own kernel with Istio's
# own iptables rules, and its hops are counted and timed.
#
# **Lab 01** (`labs/01-call-graphs.ipynb`) asks you to write the blast radius and the request success
# probability yourself.
#
# ## What to remember
#
# - Dependencies and call paths grow faster than services; a failure's blast radius is every caller upstream.
# - Kubernetes routes a call (kube-proxy's DNAT on the first packet); a mesh adds a programmable proxy on
#   each side that retries, encrypts, authorises and reports, configured over xDS.
# - Seven meshes in 2026, Istio in two data-plane modes; proxies evolved from configuration files to
#   xDS-driven cloud-native proxies.
#
# ## Check yourself
#
# 1. Through a plain Service, how many netfilter decisions does one call take, and where?
#
#    <details><summary>Answer</summary>
#
#    One: kube-proxy's DNAT (its KUBE-SERVICES rules on the client's node) on the connection's first
#    packet; conntrack translates the rest.
#
#    </details>
#
# 2. With two sidecars, how many TCP connections carry one request?
#
#    <details><summary>Answer</summary>
#
#    Three: app to its sidecar, sidecar to sidecar, sidecar to the callee's app.
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

# %% [markdown]
# # 04 · Where the proxy lives
#
# A mesh needs a proxy on every request path. Where that proxy runs is a design decision with four
# classic answers: beside every pod (sidecar), one per node, one per service account, or a split between
# a small per-node proxy and shared L7 proxies (Istio's ambient mode). The usual comparison is a table of
# adjectives. This chapter computes it instead, for a cluster you can change, and then runs two of the
# models side by side in the live lab.
#
# **After this chapter you can**
# - count, for a topology, the proxies each model runs and where, and what they cost in memory and CPU
#   (Istio 1.24's published figures, with an Envoy's memory growing with the configuration it holds);
# - say whose keys one proxy and one node hold in each model, and how many pods one proxy failure or
#   upgrade cuts off;
# - count the proxy hops on a request path and whether an L7 proxy sees it;
# - describe ambient mode (ztunnel, HBONE on 15008, waypoints, enrolment by namespace label) as today's form
#   of the shared-proxy model, and Cilium's per-node Envoy as a variant of the per-node one;
# - read the rules istio-cni writes inside an ambient pod, and say how each one brings the pod's traffic
#   to ztunnel (and keeps ztunnel's own traffic out);
# - show live that a shared proxy saves memory and widens the failure domain, and on a kind cluster that
#   a real ambient pod holds exactly those rules.

# %%
from meshlab.viz.architectures import deployment_models

deployment_models()

# %%
import ipywidgets as widgets
import matplotlib.pyplot as plt

from meshlab import doctor
from meshlab.deploy import MODELS, compare, evaluate, generate_topology, simulate
from meshlab.deploy.models import CALIBRATION_SOURCE, compromised_node_exposes, config_held
from meshlab.viz import new_axes, slider, use_book_style

use_book_style()
SEED = 1

# %% [markdown]
# ## 1 · Model: the four models for one cluster
#
# A seeded cluster: 3 nodes with 10 pods each, 3 namespaces with 2 service accounts each, every pod
# sending 100 requests per second to two other pods. Each (namespace, service account) is one service
# whose endpoints are its pods: 6 services, 30 endpoints.
#
# **CPU** follows the requests a proxy handles, at Istio 1.24's published rates (istio.io "Performance
# and Scalability", 1000 rps with 1 KB payloads): per 1000 rps about 0.20 vCPU for an Envoy, 0.25 for a
# waypoint, 0.06 for a ztunnel. **Memory** follows the configuration a proxy holds, not its requests
# (the same page): `meshlab.xds.memory`, the model chapter 06 uses too, charges an Envoy the 60 MB Istio
# 1.24 publishes for a sidecar (read as an Envoy holding little: the page does not say what it held),
# plus about 0.1 MB for every listener, cluster and endpoint it holds (fitted to Huabing Zhao's 2019 measurement; chapter 06, section
# 3). An unscoped Envoy (Istio's default) holds every service in the mesh; one scoped by a Sidecar
# resource, only what its pods call. A ztunnel costs its published 12 MB: no per-workload figure exists.

# %%
import textwrap

cluster = generate_topology(nodes=3, pods_per_node=10, namespaces=3, service_accounts=2, rps=100, seed=SEED)
print(textwrap.fill(f"calibration: {CALIBRATION_SOURCE}", 100), end="\n\n")
COLUMNS = {"proxies": "proxies", "memory_mb": "MB", "cpu_cores": "vCPU", "blast_radius_max_pods": "blast", "pod_restarts_for_upgrade": "restart",
           "keys_per_node_max": "keys/nd", "identities_per_proxy_max": "ids/px", "hops_per_request": "hops", "l7_fraction": "L7",
           "config_resources_max": "config"}


def print_table(results):
    lines = [f"{'':<20}" + "".join(f"{label:>8}" for label in COLUMNS.values())]
    lines += [f"{model:<20}" + "".join(f"{figures[key]:>8}" for key in COLUMNS) for model, figures in results["models"].items()]
    print("\n".join(lines))


table = compare(cluster)
print_table(table)
print("\n" + textwrap.fill("blast: most pods one proxy failure cuts off; restart: pods restarted to upgrade the proxies; "
                           "keys/nd: private keys on the busiest node; ids/px: identities in one proxy; L7: share of requests "
                           "an L7 proxy sees; config: most listeners + clusters + endpoints one Envoy holds (unscoped)", 100))

# %% [markdown]
# How to read it:
# - **memory**: the sidecar model pays one Envoy per pod; the shared models pay per node or per account.
#   In a cluster this small an Envoy's base outweighs its configuration. The configuration grows with the
#   mesh: every unscoped Envoy holds every service and endpoint, whatever its traffic.
# - **CPU** barely moves: it follows the requests, not the number of proxies. Ambient shifts some of it to
#   the cheaper ztunnel, but adds a waypoint pass on every request that needs L7.
# - **blast radius**: one sidecar failing cuts off one pod; one per-node proxy or ztunnel cuts off its whole
#   node; a waypoint, its namespace.
# - **upgrades**: only the sidecar model restarts every pod to upgrade the data plane.
# - **identities per proxy**: a shared proxy must hold the keys of every account it serves; one compromised
#   proxy yields all of them. A compromised *node* yields the same accounts in every model (its sidecars'
#   keys are on it too), which is why ambient's designers argued the per-node split costs little security:

# %%
for model in MODELS:
    print(textwrap.fill(f"{model:<20} root on node0 exposes: {', '.join(sorted(compromised_node_exposes(model, cluster, 'node0')))}", 100,
                        subsequent_indent=" " * 21))

# %% [markdown]
# **Scoping.** Give every Envoy a Sidecar resource that lists only what its pods call: a sidecar then
# holds only the services its pod calls (one or two here) instead of all six. The per-node proxies gain nothing here (their
# ten pods between them call every service), and waypoints hold their namespace's services either way.
# What one sidecar holds, unscoped and scoped, and what each model costs:

# %%
sidecar = evaluate("sidecar", cluster).proxies[0]
print(f"{sidecar.name}: unscoped {config_held(sidecar, cluster)}\n{'':<{len(sidecar.name)}}  scoped   {config_held(sidecar, cluster, scoped=True)}")
scoped = compare(cluster, scoped=True)
for model in MODELS:
    print(f"{model:<20} {table['models'][model]['memory_mb']:>7.1f} MB unscoped  {scoped['models'][model]['memory_mb']:>7.1f} MB scoped")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(8.8, 3.4))
names = list(table["models"])
new_axes("Proxy memory (unscoped)", "", "MB (60 MB + config per Envoy)", left).bar(names, [table["models"][m]["memory_mb"] for m in names], color="#e08a2c")
new_axes("One proxy fails", "", "pods cut off (max)", right).bar(names, [table["models"][m]["blast_radius_max_pods"] for m in names], color="#c0392b")
for ax in (left, right):
    ax.tick_params(axis="x", labelrotation=15)
plt.show()

# %% [markdown]
# Change the cluster and see the trade-off move. The table is recomputed for every change; memory moves
# with pods and services (accounts), and with scoping, but not with the request rate.

# %% tags=["nbval-ignore-output"]
def explore(pods_per_node, service_accounts, rps, scoped):
    print_table(compare(generate_topology(nodes=3, pods_per_node=pods_per_node, namespaces=3, service_accounts=service_accounts, rps=rps, seed=SEED), scoped=scoped))


widgets.interact(explore, pods_per_node=slider("pods per node", 10, 2, 60), service_accounts=slider("accounts per namespace", 2, 1, 10),
                 rps=slider("rps per pod", 100, 10, 2000, 10), scoped=widgets.Checkbox(value=False, description="Sidecar scoping"));
memory = {model: figures["memory_mb"] for model, figures in compare(generate_topology(nodes=3, pods_per_node=10, namespaces=3, service_accounts=2, rps=100, seed=SEED))["models"].items()}
assert memory["sidecar"] > memory["per-service-account"] > memory["ambient"] > memory["per-node"]
busy = compare(generate_topology(nodes=3, pods_per_node=10, namespaces=3, service_accounts=2, rps=2000, seed=SEED))["models"]
assert all(busy[m]["memory_mb"] == memory[m] for m in MODELS), "twenty times the requests, the same memory"

# %% [markdown]
# ## 2 · Model: proxies fail
#
# Every proxy fails on average once every two hours and takes 30 s to come back; requests arrive along the
# cluster's calls over a simulated week (simpy, seeded). A request fails if any proxy on its path is down.

# %%
runs = {model: simulate(model, cluster, failures_per_hour=0.5, restart_s=30, seed=SEED) for model in MODELS}
print("\n".join(f"{m:<20} failed requests {r.failed_fraction:.3%}   worst moment: {r.max_pods_cut_off} pods cut off at once" for m, r in runs.items()))

# %% [markdown]
# The failed fraction follows the number of proxies on a path (each is one more thing that can be down);
# the worst moment follows the blast radius. Same failure rate per proxy, very different incidents: many
# small ones with sidecars, fewer and larger ones with shared proxies. Move the failure rate:

# %% tags=["nbval-ignore-output"]
def failures(per_hour, restart_s):
    for model in MODELS:
        run = simulate(model, cluster, failures_per_hour=per_hour, restart_s=restart_s, requests=5000, seed=SEED)
        print(f"{model:<20} failed {run.failed_fraction:.3%}  worst {run.max_pods_cut_off} pods")


widgets.interact(failures, per_hour=slider("failures per proxy per hour", 0.5, 0.0, 5.0, 0.1), restart_s=slider("restart (s)", 30, 1, 300));
worst = {model: simulate(model, cluster, failures_per_hour=0.5, restart_s=30, requests=5000, seed=SEED).max_pods_cut_off for model in ("sidecar", "per-node")}
assert worst["per-node"] > worst["sidecar"], "one node proxy down cuts off all its pods; one sidecar only its own"

# %% [markdown]
# ## 3 · Today's forms of the shared model
#
# **Istio ambient mode** (GA in Istio 1.24, November 2024) is the per-node model split in two. A **ztunnel**
# per node (a Rust L4 proxy, a DaemonSet) does mTLS, identity and L4 authorization and carries node-to-node
# traffic over HBONE (HTTP CONNECT on port 15008), never parsing HTTP. For L7 (routing, HTTP authorization,
# retries) a namespace gets a **waypoint**, an Envoy deployed per namespace (or per service with
# `istio.io/use-waypoint`); the alpha had per-service-account waypoints. A namespace is enrolled with the
# label `istio.io/dataplane-mode=ambient`, without restarting its pods.
#
# **Ambient is not the seed's fourth model.** The seed article's fourth model puts a small L4
# *micro-proxy in every pod* and moves L7 to shared remote proxies. Ambient keeps the shared L7 proxies
# (waypoints) but runs its L4 proxy once per *node*. So for L4 it takes the per-node model's figures, not
# a per-pod proxy's: one ztunnel holds the identities of every account with pods on its node (5 in the
# table's ids/px, as a per-node proxy; a per-pod micro-proxy would hold 1, as a sidecar), and when it
# fails its whole node (10 pods) is cut off, not one pod (ambient's blast radius of 13 is a waypoint's
# namespace). What it gains over a per-node Envoy: the L4 proxy is small (12 MB against 60 MB plus
# configuration), parses no HTTP, and L7 is paid only where a waypoint is deployed. meshlab's fourth
# column is ambient as Istio ships it, not the micro-proxy design. In the table, ambient is computed with
# a waypoint for every namespace; `evaluate("ambient", cluster, {"ns0"})` puts one only where L7 is
# needed:

# %%
for waypoints in (None, {"ns0"}, set()):
    result = evaluate("ambient", cluster, waypoints)
    label = "every namespace" if waypoints is None else (", ".join(sorted(waypoints)) or "none")
    print(f"waypoints for {label:<16} {result.memory_mb:>5.0f} MB  {result.hops_per_request:.2f} hops/request  L7 on {result.l7_fraction:.0%} of requests")

# %% [markdown]
# Ambient across two nodes, as a diagram: the L4 path always goes through ztunnel; only calls that need L7
# pass a waypoint.

# %%
from meshlab.viz.architectures import ambient_mesh

ambient_mesh()

# %% [markdown]
# **How a pod's traffic reaches ztunnel.** ztunnel runs once per node, yet it listens *inside* each enrolled
# pod's network namespace. The istio-cni node agent hands ztunnel the pod's network-namespace file
# descriptor over a Unix socket (the ZDS protocol), and ztunnel opens its listeners in that namespace
# itself. What steers the pod's packets to them is a short set of rules istio-cni writes into the pod's
# own namespace (Istio 1.30.3's `cni/pkg/iptables`; nothing is injected, and on the node only the
# kubelet's probes get a rule). Compared with the sidecar's rules of chapter 02: ztunnel is not one of
# the pod's processes, so a **mark** (0x539 on every socket ztunnel opens in the pod) instead of a uid
# tells its traffic apart, and packets of ztunnel's own connections mark their connection 0x111 so that
# replies are not captured again. Inbound plain text is REDIRECTed to 15006; HBONE to 15008 is not
# redirected at all, since ztunnel listens on 15008 in the pod. Ports: 15001 outbound, 15006 inbound
# plain text, 15008 HBONE, 15053 DNS. meshlab's rules are Istio's byte for byte: a test holds them
# against istio-cni's own test goldens, read from the pinned istio.io/istio module.

# %%
from meshlab.deploy.inpod import inpod_rules

for rule in inpod_rules():
    print(textwrap.fill(f"{rule.table:<6} {rule.chain:<12} {' '.join(rule.params)}", 100, subsequent_indent=" " * 22, break_on_hyphens=False))
    print(textwrap.fill(rule.why, 100, initial_indent=" " * 19 + "-> ", subsequent_indent=" " * 22))

# %% [markdown]
# **Cilium's service mesh** is a per-node variant: eBPF in the kernel handles L3/L4 and one Envoy per node
# handles L7 for all its pods. eBPF can shorten the path between a pod and its proxy (chapter 03), but it
# cannot replace the proxy: it has no place to terminate TLS with a workload's key, parse HTTP, retry or
# route by header. The per-node proxy also brings the per-node model's risks: keys of every workload on the
# node in one process, noisy neighbours sharing one proxy's CPU, and a larger blast radius.
#
# ## 4 · Live: sidecars vs one proxy per node
#
# **Stage: live lab** (Linux; root, or unprivileged user namespaces). Two nodes (two bridges joined by a routed fabric), three pods on each.
# First every pod gets a sidecar; then the same pods get one shared proxy per node instead: the *same proxy
# code*, running in the node's namespace, capturing the node's pod traffic with two nat rules. For each we
# measure the proxies' resident memory, kill one proxy, and see which pods lose traffic.

# %% tags=["nbval-ignore-output"]
import itertools
import os

LIVE = doctor.check_live()
assert LIVE.available or os.environ.get("MESHLAB_REQUIRE_LIVE") != "1", LIVE.reason
print("live stage:", "available" if LIVE.available else f"NOT available: {LIVE.reason}")


def reachability(lab):
    ok = {}
    for source, target in itertools.permutations(lab.pods, 2):
        try:
            lab.request(source, lab.pod(target).ip)
            ok[(source, target)] = True
        except OSError:
            ok[(source, target)] = False
    return ok


live = {}
if LIVE.available:
    from meshlab.lab import Lab

    for mode, victim in (("sidecar", "pod0"), ("per-node", "node0")):
        lab = Lab("ml04").up(6, nodes=2, proxy_mode=mode, down_at_exit=True)
        try:
            assert all(reachability(lab).values())
            memory = lab.proxy_memory()
            lab.kill_proxy(victim)
            after = reachability(lab)
            cut_off = sorted(p for p in lab.pods if not any(ok for pair, ok in after.items() if p in pair))
            live[mode] = {"proxies": len(memory), "rss_mb": sum(m["rss_kb"] for m in memory.values()) / 1024, "pss_mb": sum(m["pss_kb"] for m in memory.values()) / 1024,
                          "failing_pairs": sum(not ok for ok in after.values()), "pairs": len(after), "cut_off": cut_off}
        finally:
            lab.down()
    for mode, figures in live.items():
        print(f"{mode:<9} {figures['proxies']} proxies, RSS {figures['rss_mb']:.1f} MB (PSS {figures['pss_mb']:.1f} MB)\n"
              f"{'':<9} after killing one: {figures['failing_pairs']}/{figures['pairs']} pod pairs fail, pods cut off: {figures['cut_off']}")
    assert live["per-node"]["rss_mb"] < live["sidecar"]["rss_mb"], "shared proxies use less memory"
    assert live["sidecar"]["cut_off"] == ["pod0"] and len(live["per-node"]["cut_off"]) == 3, "one sidecar cuts off one pod; a node proxy its node's three"

# %% [markdown]
# The lab's proxy is a small Python process (about 20 MB resident, most of it the interpreter shared with
# its siblings, hence the lower PSS), not Envoy, so the absolute figures are the lab's own; the ratios are
# the point: six sidecars against two node proxies, one pod against three cut off. `meshlab.deploy` predicts
# exactly those pods, and the live tests check the prediction against the observed failures.
#
# ## 5 · On a real cluster
#
# **Stage: kind** (Docker, kind >= v0.33.0, kubectl, istioctl 1.30.3; `meshlab doctor --stage kind`).
# Istio 1.30.3 is installed with the `ambient` profile (istiod, istio-cni, the ztunnel DaemonSet), a
# namespace is labelled `istio.io/dataplane-mode=ambient`, and httpbin is deployed into it: no container
# is injected. The pod's rules are then read from the kernel, by entering its network namespace on its
# kind node, and compared, chain by chain, with the in-pod rules printed in section 3. The commands, in
# order:

# %%
from meshlab.kind import stage

print(stage.plan_script("04"))

# %% tags=["nbval-ignore-output"]
KIND = stage.run("04")
print(KIND.text())
if KIND.ran:
    assert KIND.agreed, "a real ambient pod's rules differ from section 3's: see the differences above"
else:
    assert KIND.agreed is None, "no verdict without a run"

# %% [markdown]
# On the cluster, `kubectl top pod -n istio-system` also gives ztunnel's and istiod's memory to set
# against the model's calibration of section 1.
#
# ## Stage of this chapter
#
# Sections 1-3 run on the **model** stage (`meshlab.deploy`: topology, models, availability simulation,
# the in-pod rules). Section 4 runs on the **live** stage: two nodes, real proxies carrying real traffic,
# one of them killed. Section 5 runs on the **kind** stage: a real ambient pod's rules against section 3's.
#
# **Lab 04** (`labs/04-choosing-a-model.ipynb`): choose a model under a memory budget, a blast-radius limit
# and an L7 requirement, and back the choice with numbers; then a second team's constraints, which several
# choices meet (scoped or not).
#
# ## What to remember
#
# - Sidecar, per-node, per-service-account and ambient trade memory against blast radius, key exposure
#   and L7 reach; the model computes each for a topology.
# - A proxy's memory follows the configuration it holds (listeners, clusters, endpoints), not the request
#   rate: an unscoped Envoy grows with the mesh; a Sidecar resource keeps it to what its pods call.
# - Ambient is not the seed's micro-proxy-per-pod model: its L4 proxy, ztunnel, runs per node (the per-node
#   model's key exposure and blast radius, at 12 MB), its L7 proxies, waypoints, per namespace or service.
# - Ambient's in-pod rules (Istio 1.30.3) redirect to ztunnel listening inside the pod: 15001 out, 15006 in,
#   HBONE on 15008 untouched; a mark (0x539) tells ztunnel's own traffic apart.
#
# ## Check yourself
#
# 1. One node proxy crashes. Which pods lose traffic, compared with one sidecar crashing?
#
#    <details><summary>Answer</summary>
#
#    Every pod on that node, instead of one pod: the per-node model's blast radius.
#
#    </details>
#
# 2. A mesh doubles its services while the request rate stays the same. What happens to an unscoped
#    sidecar's memory, and to one scoped to the two services its pod calls?
#
#    <details><summary>Answer</summary>
#
#    The unscoped sidecar holds every service's listener, cluster and endpoints, so its configuration
#    (and the memory above its base) doubles; the scoped one holds the same two services and does not
#    change. The request rate enters neither.
#
#    </details>
#
# 3. How does ztunnel, one process per node, listen inside a pod's network namespace?
#
#    <details><summary>Answer</summary>
#
#    The istio-cni node agent hands it the pod's netns file descriptor over ZDS, and ztunnel opens its
#    listeners in that namespace.
#
#    </details>

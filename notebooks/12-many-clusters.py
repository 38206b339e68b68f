# %% [markdown]
# # 12 · Many clusters: multi-cluster meshes, hybrid cloud, management planes, and Dapr
#
# One cluster is a failure domain, a network and usually a team. Sooner or later a mesh spans several:
# for availability (a region goes down, its traffic goes elsewhere), for locality (serve users near
# them), for ownership (each team its cluster), and because not everything runs on Kubernetes (VMs).
# Istio stretches one mesh over several clusters in a few documented ways; above that, a management
# plane such as Tetrate Service Bridge writes one intent into many meshes; and application runtimes such
# as Dapr sit beside the mesh rather than replace it. This chapter builds the mechanisms on the model,
# then runs a two-cluster, two-network mesh with an east-west gateway, locality failover and a VM live.
#
# **After this chapter you can**
# - name Istio's multi-cluster models (primary-remote and multi-primary, one network or several), say what
#   each control plane reads and what crosses the networks, and choose one for stated constraints;
# - explain split-horizon EDS and the east-west gateway's AUTO_PASSTHROUGH routing by SNI
#   (`outbound_.PORT_._.HOST`), and why only mutual TLS crosses networks;
# - compute locality failover priorities and Envoy's priority load, and predict when traffic leaves home;
# - read what a management plane writes into each cluster for one intent, and how that grows with clusters;
# - bring a VM into the mesh (WorkloadGroup, auto-registered WorkloadEntry) and several trust domains
#   (a shared root, SPIFFE federation, trust domain aliases);
# - place Dapr beside a mesh: what each does, where they overlap, what to switch off.

# %%
from meshlab.viz.architectures import multi_network_mesh

multi_network_mesh()

# %%
import os

import ipywidgets as widgets
import matplotlib.pyplot as plt
import yaml

from meshlab.viz import new_axes, use_book_style
from meshlab.viz.architectures import cross_network_path
from meshlab.viz.text import fit

use_book_style()

# %% [markdown]
# ## 1 · Istio's multi-cluster models
#
# Istio documents its multi-cluster installs along two axes (istio.io, "Deployment models" and "Install
# Multicluster"). **Control plane**: in *multi-primary* every cluster runs istiod, and each istiod reads
# every cluster's API server (through a *remote secret*: a kubeconfig for the other cluster) to discover
# all services and endpoints; in *primary-remote* only the primary runs istiod, and the remote cluster's
# proxies get their configuration from it. **Network**: on a *single network* every pod can reach every
# other pod's address; on *multiple networks* (clusters labelled with `topology.istio.io/network`) they
# cannot, and traffic between networks goes through each network's **east-west gateway**. All clusters of
# one mesh must trust one root (each istiod an intermediate CA of a common root), so a workload's
# certificate is accepted on the other side. The table is `meshlab.multicluster.models`' own summary.

# %%
from meshlab.multicluster.models import CONTROL_PLANES, NETWORKS, Choice, Constraints, explain, recommend
from meshlab.multicluster.models import properties as model_properties

print(model_properties())

# %% [markdown]
# Which one fits depends on a few facts about your clusters. Describe them and read the recommendation, and
# the reasons each other choice breaks a constraint (lab 12 asks you to choose before you look):

# %% tags=["nbval-ignore-output"]
def advise(flat_network, api_servers_reachable, isolate_failures, teams_own_clusters, fewest_istiods):
    try:
        constraints = Constraints(flat_network, api_servers_reachable=api_servers_reachable, control_plane_per_cluster_failure_domain=isolate_failures,
                                  teams_own_clusters=teams_own_clusters, fewest_control_planes=fewest_istiods)
    except ValueError as error:
        print("contradictory:", error)
        return
    best = recommend(constraints)
    print("fits:", best)
    for control_plane in CONTROL_PLANES:
        for network in NETWORKS:
            reasons = explain(Choice(control_plane, network), constraints)
            if reasons and Choice(control_plane, network) != best:
                print(fit(f"{Choice(control_plane, network)}: {reasons[0]}", indent="    "))


widgets.interact(advise, flat_network=False, api_servers_reachable=True, isolate_failures=True, teams_own_clusters=False,
                 fewest_istiods=False);
assert recommend(Constraints(False, control_plane_per_cluster_failure_domain=True)) == Choice("multi-primary", "multi")

# %% [markdown]
# ## 2 · Endpoints across networks: split-horizon EDS and the east-west gateway
#
# The control plane that knows every cluster's endpoints still cannot send a proxy an address it cannot
# reach. So istiod's EDS is *split-horizon*: a proxy is sent the endpoints on its own network as they are
# and, for each other network, that network's east-west gateway in their place, weighted by how many
# endpoints it stands for. The sidecar then opens mutual TLS to the gateway with the SNI
# `outbound_.<port>_._.<hostname>` (the cluster's name in DNS SRV form); the gateway, configured with an
# `AUTO_PASSTHROUGH` server on port 15443, reads the SNI from the ClientHello and passes the still-encrypted
# connection to one of its own network's endpoints of that service. It never terminates the TLS: the
# caller's identity reaches the destination's sidecar intact. This is also why only mutual TLS crosses
# networks: a pod without a sidecar originates no SNI, and istiod drops such endpoints on other networks.
#
# The `echo` Service has two pods in each of two clusters on two networks, plus one pod in cluster2 that
# has no sidecar. What a proxy in cluster1 is sent:

# %%
from meshlab.multicluster.endpoints import EastWestGateway, Endpoint, parse_sni, sni_name, split_horizon

ECHO = [Endpoint("10.244.0.12", 8080, "cluster1", "network1", "region1/zone1"), Endpoint("10.244.0.13", 8080, "cluster1", "network1", "region1/zone1"),
        Endpoint("10.244.0.12", 8080, "cluster2", "network2", "region2/zone2"), Endpoint("10.244.0.13", 8080, "cluster2", "network2", "region2/zone2"),
        Endpoint("10.244.0.14", 8080, "cluster2", "network2", "region2/zone2", tls_mode="disabled")]
GATEWAYS = [EastWestGateway("network1", "10.250.0.11", cluster="cluster1"), EastWestGateway("network2", "10.250.0.12", cluster="cluster2")]
SENT = split_horizon(ECHO, "network1", GATEWAYS)
for endpoint in SENT:
    via = f"east-west gateway of {endpoint.gateway.cluster}" if endpoint.gateway else "a pod"
    print(f"{endpoint.address}:{endpoint.port:<6} weight {endpoint.weight}  {endpoint.locality:<14} tlsMode {endpoint.tls_mode:<9} {via}")
SNI = sni_name(9080, "echo.default.svc.cluster.local")
print("SNI to the gateway:", SNI)
print("read back (port, subset, hostname):", parse_sni(SNI))
assert [e.weight for e in SENT] == [1, 1, 2], "cluster2's two meshed pods are one gateway endpoint of weight 2; the unmeshed one is dropped"

# %% [markdown]
# The two pods of cluster2 with the same addresses as cluster1's are no conflict: nobody in network1 is
# ever sent them. Their pod without a sidecar is gone from cluster1's view altogether.

# %% [markdown]
# ## 3 · Locality failover
#
# Which endpoints a proxy prefers comes from locality (region, zone, subzone: Kubernetes' topology labels).
# istiod gives each locality a *priority* relative to the proxy's own: 0 for the same subzone, 1 for
# another subzone of its zone, 2 for another zone of its region, 3 for another region; a DestinationRule's
# `localityLbSetting.failover` (from one region to another) pushes every other region to 4; priorities are
# then renumbered without gaps. It does so only when the DestinationRule also sets `outlierDetection`:
# without it nothing ever marks an endpoint unhealthy, and Envoy would never leave priority 0. Envoy then
# sends each priority its *health* (1.4 x its healthy share, at most 100%) of what the priorities before it
# left. The priorities Istio's locality failover task lists for its `curl` pod in region1/zone1:

# %%
from meshlab.multicluster.locality import FAILOVER_NEEDS, failover_priorities, priority_load

TASK = ["region1/zone1", "region1/zone2", "region2/zone3", "region3/zone4"]
for locality, priority in failover_priorities("region1/zone1", TASK, failover=[("region1", "region2")]).items():
    print(f"{str(locality):<14} priority {priority}")
print(fit(FAILOVER_NEEDS))
assert list(failover_priorities("region1/zone1", TASK, failover=[("region1", "region2")]).values()) == [0, 1, 2, 3]

# %% [markdown]
# Istio's task table lists priority 1 as unused (it has no subzones) and region3 at 4; renumbered without
# gaps, Envoy sees 0 to 3. Now the spill: three pods at priority 0 (home), the other cluster's gateway at
# priority 1. Drag the number of healthy home pods:

# %% tags=["nbval-ignore-output"]
def spill(healthy):
    loads = priority_load([healthy / 3, 1.0])
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    new_axes(f"{healthy} of 3 home pods healthy: where the traffic goes", "", "share of requests", ax)
    ax.bar(["priority 0: home", "priority 1: other cluster"], loads, color=["#3b6ea5", "#e08a2c"])
    ax.set_ylim(0, 1)
    plt.show()
    print(f"home {loads[0]:.0%}, other cluster {loads[1]:.0%}")


widgets.interact(spill, healthy=widgets.IntSlider(value=3, min=0, max=3, description="healthy", continuous_update=False));
assert priority_load([2 / 3, 1.0]) == [0.93, 0.07], "2/3 healthy x 1.4, in Envoy's whole percents: 93% stays home"
assert priority_load([1.0, 1.0]) == [1.0, 0.0] and priority_load([0.0, 1.0]) == [0.0, 1.0]

# %% [markdown]
# With one of three home pods down, 2/3 x 1.4 = 93% (Envoy counts whole percents) stays home and 7% already leaves: failover is gradual,
# not a switch. All traffic leaves only when no home pod is healthy.

# %% [markdown]
# ## 4 · A management plane over many meshes
#
# Kubernetes federation (KubeFed) tried to make many clusters look like one and was archived; what teams
# run instead is a *management plane* above many meshes, which keeps one model of the organisation and
# writes each cluster's Istio resources from it. Tetrate Service Bridge (TSB) is the example the article
# uses: an **Organization** holds **Tenants**, a Tenant holds **Workspaces**, each owning namespaces
# across clusters (`*/payments` is namespace payments in every cluster), and a Workspace holds **groups**
# (traffic, security, gateway) for one concern each. Intent is written once as settings: a
# WorkspaceSetting's security (mTLS REQUIRED, who may call) and traffic (reachability) defaults; a
# Tier1Gateway spreads a hostname over clusters (chapter 08's tier-1). `meshlab.multicluster.management`
# reads TSB's YAML and writes the smallest valid Istio resources that enforce each intent (TSB's own
# generator is not public: what its resources look like exactly is meshlab's choice, said in the
# module). The book's organisation, onto a tier-1 cluster and two application clusters:

# %%
from meshlab.multicluster.management import EXAMPLE, Hierarchy, fan_out, fleet, translate

HIERARCHY = Hierarchy.parse(EXAMPLE)
NAMESPACES = ("shop", "web", "payments", "ledger")
PLACED = translate(HIERARCHY, fleet(2, NAMESPACES))
for cluster, resources in PLACED.items():
    kinds = {}
    for resource in resources:
        kinds[resource["kind"]] = kinds.get(resource["kind"], 0) + 1
    print(f"{cluster:<6} " + ", ".join(f"{count} {kind}" for kind, count in kinds.items()))
policy = next(r for r in PLACED["c01"] if r["kind"] == "AuthorizationPolicy")
print(fit(yaml.safe_dump(policy["spec"], sort_keys=False, width=96), width=100))
assert {r["kind"] for r in PLACED["c01"]} == {"PeerAuthentication", "AuthorizationPolicy", "Sidecar"}

# %% [markdown]
# Nine TSB resources, written once. Each application cluster gets a PeerAuthentication STRICT per
# namespace of a REQUIRED workspace, an AuthorizationPolicy letting storefront's identities (in Istio's
# principal form, `trust-domain/ns/NS/sa/SA`) call payments, and a Sidecar per namespace for the
# reachability intent (chapter 09). Grow the fleet: the written intent stays the same size, what lands in
# the clusters grows with them, and with one trust domain per cluster every AuthorizationPolicy must list
# the callers' identities in every trust domain, so the principals grow with the square.

# %% tags=["nbval-ignore-output"]
FLEETS = [1, 2, 5, 10, 20, 35, 50]
SHARED = {n: fan_out(HIERARCHY, fleet(n, NAMESPACES)) for n in FLEETS}
SEPARATE = {n: fan_out(HIERARCHY, fleet(n, NAMESPACES, shared_trust_domain=False)) for n in FLEETS}


def fan_out_at(clusters):
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    new_axes("One intent, many clusters: what the management plane writes", "application clusters", "count", ax)
    ax.plot(FLEETS, [SHARED[n].written for n in FLEETS], marker="o", label="TSB resources written")
    ax.plot(FLEETS, [SHARED[n].total for n in FLEETS], marker="o", label="Istio resources generated")
    ax.plot(FLEETS, [SEPARATE[n].principals for n in FLEETS], marker="o", label="principals, a trust domain per cluster")
    ax.axvline(clusters, color="#999999", linestyle=":")
    ax.set_yscale("log")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=9, frameon=False)
    plt.show()
    shared, separate = SHARED[clusters], SEPARATE[clusters]
    print(f"{clusters} clusters: {shared.written} written -> {shared.total} Istio resources; principals listed: "
          f"{shared.principals} with one trust domain, {separate.principals} with one per cluster")


widgets.interact(fan_out_at, clusters=widgets.SelectionSlider(options=FLEETS, value=10, description="clusters", continuous_update=False));
assert all(SHARED[n].written == SHARED[1].written for n in FLEETS) and SHARED[50].total > 10 * SHARED[2].total
assert SHARED[50].principals == 5 * SHARED[10].principals, "one trust domain: principals grow with the clusters"
assert SEPARATE[50].principals == 25 * SEPARATE[10].principals, "a trust domain each: with their square"

# %% [markdown]
# ## 5 · VMs in the mesh
#
# Hybrid cloud means workloads that are not pods. Istio brings a VM into the mesh with two resources: a
# **WorkloadGroup**, a template for the VMs of one application (labels, service account, network, ports,
# a readiness probe), and a **WorkloadEntry** per VM, which istiod writes itself when the VM's proxy
# connects and names its group (auto-registration; `PILOT_ENABLE_WORKLOAD_ENTRY_AUTOREGISTRATION`, on by
# default). The proxy's certificate must prove the group's namespace and service account. A Service's
# selector then selects pods and WorkloadEntries alike. When the proxy disconnects, the entry is kept for a
# grace period (`PILOT_WORKLOAD_ENTRY_GRACE_PERIOD`, 10 s) in case it comes back, then deleted. The live lab
# below registers its VM this way; here on the model (`meshlab.multicluster.workloads`, read from istiod's
# autoregistration controller):

# %%
import datetime as dt

from meshlab.lab.multicluster import VM_GROUP
from meshlab.multicluster.workloads import Controller, Pod, RegistrationError, Service, ServicePort, WorkloadGroup, endpoints_of

GROUP = WorkloadGroup.parse(VM_GROUP)
ISTIOD = Controller()
T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
ENTRY = ISTIOD.register(GROUP, "10.250.0.50", T0, network="network1", identity=("vm", "vmapp"))
print(yaml.safe_dump(ENTRY.to_yaml(), sort_keys=False), end="")
SERVICE = Service("vmapp", "vm", {"app": "vmapp"}, (ServicePort(9080, "http", "TCP", "http"),))
PODS = [Pod("vmapp-7d4", "vm", "10.244.0.30", {"app": "vmapp"}, ports={"http": 8080})]
for endpoint in endpoints_of(SERVICE, PODS, list(ISTIOD.entries.values())):
    print(f"endpoint {endpoint.kind:<13} {endpoint.workload:<32} {endpoint.address}:{endpoint.port}")
try:
    ISTIOD.register(GROUP, "10.250.0.51", T0, network="network1", identity=("vm", "intruder"))
except RegistrationError as error:
    print("refused:", error)
ISTIOD.disconnect("vm", ENTRY.name, T0 + dt.timedelta(seconds=1))
print("after 5 s away:", ISTIOD.cleanup(T0 + dt.timedelta(seconds=6)), "; after 11 s:", ISTIOD.cleanup(T0 + dt.timedelta(seconds=12)))
assert ENTRY.name == "vmapp-10.250.0.50-network1" and not ISTIOD.entries

# %% [markdown]
# ## 6 · Several trust domains
#
# Mutual TLS across clusters needs each side to verify the other's certificate. Istio's usual answer is
# one root: each cluster's istiod gets an intermediate CA of a common root (Secret `istio-system/cacerts`,
# istio.io "Plug in CA Certificates"), so nothing has to be exchanged, and usually one trust domain. When
# clusters keep their own roots and trust domains (two companies, two meshes), SPIFFE's answer is
# **federation**: each trust domain publishes its bundle at a bundle endpoint, and the other side fetches
# it (one-way: each must fetch the other's), keeping each bundle bound to its own trust domain. Istio can
# take extra roots (`meshConfig.caCertificates`, a PEM or a SPIFFE bundle URL) and
# `trustDomainAliases` (identities of an alias count as its own in AuthorizationPolicies). Real handshakes
# (`meshlab.multicluster.trust`, Python's OpenSSL on loopback) between an east and a west trust domain:

# %%
from meshlab.identity.authority import TrustDomainAuthority
from meshlab.identity.mtls import LoopbackServer, call
from meshlab.identity.spiffeid import TrustDomain, parse_id
from meshlab.multicluster.trust import TrustStore, svid_context

EAST, WEST = TrustDomainAuthority(TrustDomain("east.example")), TrustDomainAuthority(TrustDomain("west.example"))
SERVER = WEST.sign_x509_svid(parse_id("spiffe://west.example/ns/payments/sa/api"), dt.timedelta(hours=1))
CLIENT = EAST.sign_x509_svid(parse_id("spiffe://east.example/ns/shop/sa/web"), dt.timedelta(hours=1))


def holding(*authorities):
    store = TrustStore()
    for authority in authorities:
        store.add(authority.trust_domain, authority.x509_bundle())
    return store


def exchange(server_holds, client_holds):
    listening = LoopbackServer(lambda peer: True, 1, svid_context(SERVER, holding(*server_holds), server_side=True), str(SERVER.spiffe_id))
    answer = call("127.0.0.1", listening.port, str(SERVER.spiffe_id), svid_context(CLIENT, holding(*client_holds), server_side=False), str(CLIENT.spiffe_id))
    record = listening.join()[0]
    why = (answer.get("refused") or record.get("refused") or "").removeprefix("TLS failed: ").split(":")[0]
    return "allowed" if record["allowed"] and answer["allowed"] else f"refused: {why}"


STEPS = {"each holds only its own bundle": ((WEST,), (EAST,)), "east fetched west's bundle": ((WEST,), (EAST, WEST)),
         "both fetched the other's": ((WEST, EAST), (EAST, WEST))}
RESULTS = {step: exchange(*holds) for step, holds in STEPS.items()}
for step, result in RESULTS.items():
    print(f"{step:<32} {result}")
assert list(RESULTS.values())[-1] == "allowed" and all(r.startswith("refused") for r in list(RESULTS.values())[:2])

# %% [markdown]
# ## 7 · Dapr beside the mesh
#
# Dapr also puts a process beside each app, `daprd`, but the app calls it by name on localhost (an HTTP or
# gRPC API: `v1.0/invoke/<app-id>/method/<m>`, `v1.0/state/<store>`, `v1.0/publish/<pubsub>/<topic>`, ...)
# and gets *building blocks* the mesh does not have: state, pub/sub, bindings, actors. The mesh is
# transparent and moves any TCP; Dapr is an API and moves what the app asks it to. A few concerns both
# can handle (mutual TLS, retries, tracing) should be handled once: docs.dapr.io's "Dapr and service
# meshes" says as much. `meshlab.dapr` holds what each does, read in daprd v1.14.0's source and Istio's:

# %%
from meshlab import dapr

print(dapr.overlap_table())

# %% [markdown]
# And the road one call takes on each of four setups: the app's own call, through a mesh, through Dapr,
# and through Dapr inside a mesh (where daprd's own gRPC to the other daprd is captured by the sidecars,
# unless its port 50002 is excluded). "mTLS" is Istio's between its sidecars:

# %%
print(dapr.path_table())
assert dapr.proxies(dapr.request_path("dapr+mesh")) == ["checkout daprd", "checkout sidecar", "orders sidecar", "orders daprd"]

# %% [markdown]
# **Stage: upstream and live.** Where the upstream stage has built Dapr's own `daprd` (v1.14.0, from its
# Go module), `meshlab.lab.dapr` runs it self-hosted in two lab pods, `checkout` and `orders`, beside
# each pod's app, with in-memory state and pub/sub (they live inside each daprd) and no placement or
# Sentry service: actors and Dapr's own mTLS are left out. Calls are made with Dapr's Python SDK. The
# same lab is run twice: plain, then with meshlab's sidecar and Istio's rules in both pods (this lab's
# sidecars do not encrypt; the multi-cluster lab of section 8 does). Which connections one call really
# took is read from the kernel (`ss`) and compared with the model's legs.

# %% tags=["nbval-ignore-output"]
from meshlab import doctor
from meshlab.upstream import build
from meshlab.upstream.versions import PROGRAMS

LIVE = doctor.check_live()
RUN_LIVE = LIVE.available and os.geteuid() == 0
DAPRD = build.find(PROGRAMS["daprd"])
print("live stage:", "available" if RUN_LIVE else f"NOT available here: {LIVE.reason or 'these labs need root'}")
print("upstream daprd:", DAPRD.version if DAPRD else "not built here (meshlab upstream install daprd)")
assert RUN_LIVE or os.environ.get("MESHLAB_REQUIRE_LIVE") != "1", "the live stage is required here"
assert DAPRD or os.environ.get("MESHLAB_REQUIRE_UPSTREAM") != "1", "the upstream stage is required here"
if RUN_LIVE and DAPRD:
    from meshlab.lab.dapr import DaprLab, hop_legs

    for meshed in (False, True):
        with DaprLab(DAPRD.path, prefix="ml12d").up(meshed=meshed, down_at_exit=True) as lab:
            answer = lab.invoke("new", {"item": "book"})
            lab.save_state("cart", {"items": 1})
            print(f"{'with sidecars' if meshed else 'no mesh':<14} invoke -> {answer['status']}, the orders app saw caller "
                  f"{answer['body']['headers'].get('dapr-caller-app-id')!r}; state: {lab.get_state('cart')['value']}")
            measured = lab.measure(repeats=100)
            print(measured)
            legs = lab.legs(via_dapr=True)
            assert legs == hop_legs(dapr.request_path(lab.paths[1])), f"the kernel saw {legs}"
            print(fit("one call via Dapr, as the kernel saw it: " + "; ".join(f"{a} -> {b}:{port}" for a, b, port in sorted(legs)), indent="    "))
            assert answer["status"] == 200 and measured.ratio > 1

# %% [markdown]
# ## 8 · Live: two clusters, two networks, one mesh
#
# **Stage: live lab** (Linux, as root). `meshlab.lab.multicluster` builds Istio's multi-primary,
# multi-network model out of network namespaces: two clusters whose pods have the *same* addresses
# (10.244.0.0/24 each: only an east-west gateway joins them), each with its own control plane (meshlab's
# xDS server, reading both clusters' registries and sending split-horizon EDS with failover priorities for
# its cluster's locality) and its own east-west gateway (meshlab's proxy in AUTO_PASSTHROUGH mode on
# 15443). Every sidecar holds an SVID of `cluster.local` from one authority (chapter 13's), speaks mutual
# TLS with Istio's SNI and ALPN `istio`, and terminates it inbound (it peeks at the first bytes, as Envoy's
# tls_inspector does). The `hello` Service has pods only in cluster2; `echo` in both, with the
# DestinationRule's outlier detection (consecutive5xxErrors 1, interval 1s, baseEjectionTime 5s,
# maxEjectionPercent 100); a VM outside both clusters joins on network1. Latencies are the lab's own
# (Python proxies, not Envoy): compare them with each other.

# %% tags=["nbval-ignore-output"]
MESH = None
assert RUN_LIVE or os.environ.get("MESHLAB_REQUIRE_LIVE") != "1", "the live stage is required here (section 7 checked it)"
if RUN_LIVE:
    from meshlab.lab.multicluster import MultiClusterMesh

    MESH = MultiClusterMesh("ml12").up(clusters=2, pods=2, down_at_exit=True)
    ACROSS = MESH.call("hello", "cluster1")
    for hop in ACROSS.hops:
        print(fit(f"{hop['pod']:<18} {hop['direction']:<8} {hop['downstream']} -> {hop['upstream']}  sni={hop['sni'] or '-'}  "
                  f"peer={hop['peer_identity'] or '-'}", indent=" " * 28))
    outbound, gateway, inbound = ACROSS.hops
    assert ACROSS.crossed and gateway["pod"] == "cluster2-eastwest" and gateway["sni"] == outbound["sni"] == sni_name(9080, "hello.default.svc.cluster.local")
    assert gateway["peer_identity"] is None and inbound["peer_identity"] == "spiffe://cluster.local/ns/default/sa/sleep"

# %% [markdown]
# Three proxies logged the one connection: cluster1's sidecar sent it to cluster2's gateway (edge address,
# port 15443) with the SNI naming `hello`, and proved `hello`'s identity in the handshake; the gateway read
# the SNI and passed the bytes to a `hello` pod without ever decrypting them (it has no peer identity);
# `hello`'s sidecar terminated the TLS and saw `sleep`'s SPIFFE ID, from the other network. The diagram with
# the path that really happened lit:

# %% tags=["nbval-ignore-output"]
LIT = cross_network_path(ACROSS.crossed, "hello") if MESH else []
assert not MESH or LIT == ["eds", "cross", "passthrough"], "a call that crossed lights the gateway's arrows"
multi_network_mesh().lit(*LIT)

# %% [markdown]
# Now `echo`, which lives in both clusters. While cluster1's pods are healthy every call stays home
# (priority 0). Then they are killed (SIGKILL, app and sidecar, as a zone outage would), left dead two
# seconds, and started again, while `sleep` sends a request every 20 ms on a new connection:

# %% tags=["nbval-ignore-output"]
if MESH:
    HOME = [MESH.call("echo", "cluster1").answered_by for _ in range(6)]
    print(fit("six calls answered by: " + ", ".join(HOME)))
    assert all(pod.startswith("cluster1-") for pod in HOME)
    FAILOVER = MESH.failover("echo", "cluster1", before_s=1.0, down_s=2.0, after_s=7.0, pace_ms=20)
    print(fit(str(FAILOVER)))
    for event in FAILOVER.events:
        print(f"  {event['t']:6.2f} s  {event['action']:<7} {event['upstream_url']}")
    assert FAILOVER.failed_over_s is not None and FAILOVER.back_s is not None and 1 <= FAILOVER.requests_lost <= 3
    fig, ax = plt.subplots(figsize=(7.5, 2.6))
    new_axes("Who answered each request", "seconds", "", ax)
    lanes = {"cluster1": 2, "cluster2": 1, None: 0}
    ax.scatter([x.t for x in FAILOVER.samples], [lanes[x.cluster] for x in FAILOVER.samples], s=4, color="#3b6ea5")
    ax.set_yticks([0, 1, 2], ["failed", "cluster2", "cluster1"])
    for x, label in ((FAILOVER.kill_at, "killed"), (FAILOVER.restart_at, "restarted")):
        ax.axvline(x, color="#b03a2e", linestyle=":")
        ax.text(x + 0.05, 2.3, label, fontsize=9, color="#b03a2e")
    ax.set_ylim(-0.5, 2.7)
    plt.show()

# %% [markdown]
# The first request to each dead pod fails (`consecutive5xxErrors: 1`: one refused connection is a 5xx
# for Envoy's outlier detection) and ejects it; with both home pods ejected priority 0 has no health left
# and the next request already goes to cluster2 through its gateway. The restarted pods get traffic back
# only when their ejection time (5 s here; 1 minute in Istio's task) is over: outlier detection decides,
# not the registry, which never learned the pods had died.
#
# Last, the VM. When its proxy connected to cluster1's control plane, the lab did what istiod's
# auto-registration does and the `vmapp` Service selected the WorkloadEntry. From cluster1 it is on the
# same network, so the call is direct; from cluster2 it goes through cluster1's east-west gateway; and the
# VM reaches cluster2's `hello` through cluster2's.

# %% tags=["nbval-ignore-output"]
if MESH:
    (REGISTERED,) = MESH.registrar.entries.values()
    print("WorkloadEntry", REGISTERED.name, "address", REGISTERED.address, "network", REGISTERED.network)
    for service, caller in (("vmapp", "cluster1"), ("vmapp", "cluster2"), ("hello", "vm")):
        made = MESH.call(service, caller)
        path = " -> ".join(hop["pod"] for hop in made.hops)
        print(f"{caller:>8} -> {service:<6} {'across networks' if made.crossed else 'same network  '}  {path}")
        assert made.crossed == (caller == "cluster2" or service == "hello")
    MESH.down()

# %% [markdown]
# ## Stage of this chapter
#
# Sections 1 to 6 run on the **model** stage: `meshlab.multicluster` (Istio's deployment models,
# split-horizon EDS and SNI names from istiod's sources, locality priorities and Envoy's priority load,
# TSB's hierarchy translated into Istio resources, istiod's WorkloadEntry auto-registration, SPIFFE
# federation with real handshakes on loopback). Section 7 runs Dapr's own `daprd` on the **upstream**
# stage where it is built. Section 8 runs **live**: two clusters of network namespaces, meshlab's control
# planes, sidecars with mutual TLS, east-west gateways and a VM.
#
# **Lab 12** (`labs/12-choosing-a-multicluster-model.ipynb`): choose the control-plane and network model
# for two organisations (the check names every constraint a wrong choice breaks), then predict a proxy's
# failover priorities and how much traffic leaves home.
#
# ## What to remember
#
# - One mesh over several clusters needs three things: every control plane reads every cluster's API
#   server (remote secrets), one root of trust, and a way for traffic to cross: directly on one network,
#   through east-west gateways on several.
# - Multi-primary keeps a control-plane outage inside its cluster; primary-remote runs fewer istiods and
#   makes the remotes depend on the primary's.
# - Across networks a proxy is sent the other network's gateway in place of its pods (split-horizon EDS);
#   the gateway routes by the SNI `outbound_.PORT_._.HOST` of the sidecar's mutual TLS without terminating
#   it, so only meshed workloads cross, and identities survive the crossing.
# - Locality failover is Envoy's priority levels, set by istiod only when outlier detection is on; a
#   level is drained gradually (1.4 x its healthy share), and comes back when its ejections expire.
# - A management plane writes one intent into many meshes; what it generates grows with the clusters, and
#   with one trust domain per cluster, every policy grows with the square. VMs join as WorkloadEntries;
#   separate trust domains need federation or a shared root.
# - Dapr sits beside the mesh: the mesh moves and secures bytes between workloads; Dapr gives the app APIs
#   (state, pub/sub, bindings, actors). Where both offer mTLS, retries or tracing, switch one off.
#
# ## Check yourself
#
# 1. Cluster1's proxies are sent `10.250.0.12:15443` with weight 3 for the `reviews` service. What is that
#    address, and what does the weight say?
#
#    <details><summary>Answer</summary>
#
#    The east-west gateway of the other network, standing for that network's pods of `reviews`: istiod
#    replaced them by their gateway (split-horizon EDS) with a weight equal to their number, three.
#
#    </details>
#
# 2. Why can a pod without a sidecar in cluster2 not be called from cluster1 on a multi-network mesh, even
#    though the same pod is reachable from inside cluster2?
#
#    <details><summary>Answer</summary>
#
#    The east-west gateway routes by the SNI of Istio's mutual TLS, which only a sidecar originates, and it
#    passes the TLS to the pod untouched, so only a sidecar can terminate it. istiod therefore drops such
#    endpoints from other networks' EDS altogether.
#
#    </details>
#
# 3. A DestinationRule sets `localityLbSetting` with a failover rule but no `outlierDetection`. A zone goes
#    down. What happens to its traffic?
#
#    <details><summary>Answer</summary>
#
#    istiod does not apply the failover priorities without outlier detection, and nothing marks the dead
#    endpoints unhealthy: Envoy keeps sending to them (until Kubernetes removes them from the endpoints), so
#    requests fail instead of moving to the next locality.
#
#    </details>

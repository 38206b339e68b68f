# %% [markdown]
# # 02 · Transparent interception
#
# An app in a meshed pod calls `reviews:9080` exactly as it would without a mesh, yet the call goes
# through its sidecar, and the callee's sidecar receives it before the callee does. Nobody configured
# a proxy in the app. The trick is a handful of iptables rules that `istio-init` (or the Istio CNI
# plugin) writes into the pod's network namespace before the app starts. This chapter generates those
# rules exactly as Istio 1.30.3 does, walks packets through them, and then runs them in your kernel.
#
# **After this chapter you can**
# - say what Istio's sidecar injector adds to a pod and how a traffic annotation becomes an istio-init flag;
# - read the rules `istio-iptables` installs and say what each of ISTIO_INBOUND, ISTIO_IN_REDIRECT,
#   ISTIO_OUTPUT, ISTIO_REDIRECT (and ISTIO_OUTPUT_DNS) is for;
# - predict, for a given connection, which rules match and where it ends up, and check the prediction
#   against the kernel's own trace;
# - explain why the proxy's traffic is not captured again (uid 1337), why the app sees 127.0.0.6 as
#   its peer, and what TPROXY changes about that;
# - exclude a port from capture and prove it live;
# - measure what the extra hops cost, and compare it with Istio's published figures;
# - read a real injected pod's rules (istio-init's log, the kernel on a kind node) and compare them with
#   meshlab's rendering for the same arguments.

# %%
from meshlab.viz.architectures import sidecar_pod

sidecar_pod()

# %%
import os
from dataclasses import replace

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from meshlab import doctor
from meshlab.intercept import CaptureConfig, build_rules, render_commands
from meshlab.intercept.walk import Connection, walk
from meshlab.viz import draw_packet_walk, plot_latency_cdf, use_book_style
from meshlab.viz.text import command, fit, say

use_book_style()

# %% [markdown]
# ## 1 · Model: what istio-init runs
#
# The sidecar injector gives `istio-init` these arguments for a default pod: capture every outbound
# destination (`-i '*'`), every inbound port (`-b '*'`) except the proxy's own telemetry and health
# ports (`-d 15090,15021,15020`), redirect mode, and proxy uid 1337. `meshlab intercept istio-iptables`
# takes the same flags; its `--dry-run` prints what istio-iptables executes, in the format of Istio's own
# golden test files (meshlab's tests compare all 27 of Istio's cases byte for byte).

# %%
POD = CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*", inbound_ports_exclude="15090,15021,15020")
print(render_commands(POD))

# %% [markdown]
# Read it top to bottom; it is the whole mechanism:
#
# | chain | table, hook | what it does |
# |---|---|---|
# | `ISTIO_INBOUND` | nat, PREROUTING (packets arriving on `eth0`) | returns the HBONE tunnel port 15008 and the excluded ports, sends the rest to ISTIO_IN_REDIRECT |
# | `ISTIO_IN_REDIRECT` | nat | `REDIRECT --to-ports 15006`: the sidecar's inbound listener |
# | `ISTIO_OUTPUT` | nat, OUTPUT (connections this pod opens) | returns what must not be captured, sends the rest to ISTIO_REDIRECT |
# | `ISTIO_REDIRECT` | nat | `REDIRECT --to-ports 15001`: the sidecar's outbound listener |
#
# The order inside ISTIO_OUTPUT matters. First `-o lo -s 127.0.0.6/32 -j RETURN`: the sidecar's inbound
# side connects to the app from 127.0.0.6, and that must reach the app. Then, per proxy uid (and gid),
# three rules: the proxy's connections to its *own* pod IP over `lo` go to inbound capture (an app
# calling its own service through the VIP: app → outbound proxy → inbound proxy → app); the app's own
# loopback traffic returns; every other connection of the proxy returns, so the proxy never captures
# itself. Only then does everything else (`-j ISTIO_REDIRECT`) go to the sidecar.

# %% [markdown]
# **Where those arguments come from: injection.** Nobody writes istio-init into a pod. When a pod is created
# in a namespace labelled `istio-injection=enabled`, the API server sends it to istiod's admission webhook
# (the `MutatingWebhookConfiguration` named `istio-sidecar-injector`), which renders Istio's injection
# template with the pod, the install's values and the mesh config, and answers with a patch: an
# `istio-init` init container (or nothing, with istio-cni), an `istio-proxy` container, volumes for the
# certificates and the agent's sockets, and annotations saying what was injected. Traffic annotations on
# the pod (`traffic.sidecar.istio.io/excludeInboundPorts`, `includeOutboundIPRanges`, ...) become
# istio-init's flags. `istioctl kube-inject` runs the same template offline.
#
# **Stage: upstream** (Go; `make upstream` builds Istio's own `istioctl` and `pilot-agent` from the
# istio.io/istio module; the proxy does not serve 1.30.3's own commit, so they are built from release-1.30
# commit 9739e10eb9d7, whose istio-iptables is 1.30.3's and whose injection template differs only in
# quoting annotation values; they say `1.30.3+9739e10eb9d7`). Here a plain
# pod, with one port kept out of capture, goes through the real injector; meshlab reads the injected
# istio-init arguments back, and, where the live stage is there too, Istio's own istio-iptables and
# meshlab render the same rules for them.

# %% tags=["nbval-ignore-output"]
from meshlab.kind import observe
from meshlab.upstream import build
from meshlab.upstream.versions import PROGRAMS

ISTIOCTL, PILOT_AGENT = build.find(PROGRAMS["istioctl"]), build.find(PROGRAMS["pilot-agent"])
PLAIN_POD = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "reviews", "namespace": "default", "labels": {"app": "reviews"},
                          "annotations": {"traffic.sidecar.istio.io/excludeInboundPorts": "9090"}},
             "spec": {"serviceAccountName": "reviews", "containers": [{"name": "reviews", "image": "reviews:v1", "ports": [{"containerPort": 9080}]}]}}
INJECTED = None
if ISTIOCTL is None:
    print(f"upstream stage: istioctl {PROGRAMS['istioctl'].version} is not built here (meshlab upstream install istioctl)")
    assert os.environ.get("MESHLAB_REQUIRE_UPSTREAM") != "1", "the upstream stage is required here"
else:
    from meshlab.upstream.injection import Injector

    with Injector(ISTIOCTL.path) as injector:
        injected = injector.inject(PLAIN_POD)
    print(f"istioctl {ISTIOCTL.version} kube-inject:")
    print("  containers before:", [c["name"] for c in PLAIN_POD["spec"]["containers"]])
    print("  after: init containers", [c["name"] for c in injected["spec"]["initContainers"]],
          "containers", [c["name"] for c in injected["spec"]["containers"]])
    added = sorted(set(injected["metadata"]["annotations"]) - set(PLAIN_POD["metadata"]["annotations"]))
    print(f"  {len(injected['spec']['volumes'])} volumes added; annotations added:")
    print("\n".join(f"    {name}" for name in added))
    args, env = observe.init_container(injected)
    print("  istio-init runs:")
    print(command(args))
    INJECTED = observe.capture_config_from_init(args, env)
    assert INJECTED.inbound_ports_exclude == "15090,15021,9090,15020", "the annotation became -d"
    assert [c["name"] for c in injected["spec"]["containers"]] == ["reviews", "istio-proxy"]

# %% tags=["nbval-ignore-output"]
if INJECTED is not None and PILOT_AGENT is not None and doctor.check_live().available and os.geteuid() == 0:
    from meshlab.upstream.iptables import IstioIptables, meshlab_rendering

    with IstioIptables(PILOT_AGENT.path, "ml02u") as real:
        theirs = real.dry_run(INJECTED)
    ours = meshlab_rendering(INJECTED)
    print(f"pilot-agent {PILOT_AGENT.version} istio-iptables --dry-run: {len(theirs.text.splitlines())} lines")
    print(f"meshlab: {len(ours.splitlines())} lines; identical: {theirs.text == ours}")
    print("\n".join(line for line in ours.splitlines() if "9090" in line))
    assert theirs.returncode == 0 and theirs.text == ours
else:
    print("needs the upstream stage (pilot-agent) and the live stage as root: nothing compared here")
    assert os.environ.get("MESHLAB_REQUIRE_UPSTREAM") != "1" or os.environ.get("MESHLAB_REQUIRE_LIVE") != "1"

# %% [markdown]
# ## 2 · Model: walking packets through the rules
#
# `meshlab.intercept.walk` follows a connection's first packet through the rules as netfilter does (nat
# sees only that first packet; conntrack applies the same translation to the rest). Each row below is
# one connection from pod 10.244.0.11 and where it ends up; under it, the last rule its packet matched.

# %%
POD_IP, PEER_IP = "10.244.0.11", "10.244.0.10"
MATRIX = {
    "app -> a service VIP": Connection("OUTPUT", POD_IP, "10.96.0.10", 80, out_interface="eth0", uid=0, gids=(0,)),
    "sidecar -> the endpoint": Connection("OUTPUT", POD_IP, PEER_IP, 8080, out_interface="eth0", uid=1337, gids=(1337,)),
    "peer -> app port 8080": Connection("PREROUTING", PEER_IP, POD_IP, 8080, in_interface="eth0"),
    "peer -> 15020 (excluded)": Connection("PREROUTING", PEER_IP, POD_IP, 15020, in_interface="eth0"),
    "app -> localhost": Connection("OUTPUT", "127.0.0.1", "127.0.0.1", 8080, out_interface="lo", uid=0, gids=(0,)),
    "sidecar (127.0.0.6) -> app": Connection("OUTPUT", "127.0.0.6", POD_IP, 8080, out_interface="lo", uid=1337, gids=(1337,)),
    "sidecar -> own pod IP": Connection("OUTPUT", POD_IP, POD_IP, 8080, out_interface="lo", uid=1337, gids=(1337,)),
}


def walk_table(config):
    restore = build_rules(config).restore_text(4)
    for name, connection in MATRIX.items():
        result = walk(restore, connection)
        verdict = f"{result.verdict} :{result.to_port}" if result.to_port else "not captured"
        last = result.steps[-2] if result.steps[-1].effect.startswith("policy") else result.steps[-1]
        print(f"{name:<28} {verdict}")
        print(fit(f"    last rule: {last.rule}", indent="               "))


walk_table(POD)

# %%
first = walk(build_rules(POD).restore_text(4), MATRIX["app -> a service VIP"])
draw_packet_walk(first.steps, first.verdict, first.to_port, title="app -> 10.96.0.10:80: the first packet's walk")
plt.show()

# %% [markdown]
# The same walks on the pod's diagram: pick a connection and the arrows its first packet took light up.

# %% tags=["nbval-ignore-output"]
from IPython.display import display

from meshlab.viz.architectures import interception_path


def show_walk(connection):
    taken = walk(build_rules(POD).restore_text(4), MATRIX[connection])
    display(sidecar_pod().lit(*interception_path(MATRIX[connection], taken.steps), title=connection))


assert interception_path(MATRIX["peer -> app port 8080"], walk(build_rules(POD).restore_text(4), MATRIX["peer -> app port 8080"]).steps)[-1] == "ISTIO_IN_REDIRECT->envoy:15006"
widgets.interact(show_walk, connection=widgets.Dropdown(options=list(MATRIX), description="connection"));

# %% [markdown]
# Change the flags and watch the rules and the walk change. Try: inbound ports `8080` only; remove the
# exclusions; switch to TPROXY; turn on DNS capture; limit outbound capture to `10.96.0.0/12`.

# %% tags=["nbval-ignore-output"]
def explore(inbound_ports, exclude_inbound, outbound_cidrs, mode, redirect_dns):
    try:
        config = CaptureConfig(inbound_ports_include=inbound_ports, inbound_ports_exclude=exclude_inbound, outbound_ip_ranges_include=outbound_cidrs,
                               inbound_interception_mode=mode, redirect_dns=redirect_dns, dns_servers_v4=("10.96.0.10",) if redirect_dns else ())
    except ValueError as error:
        print(f"not a valid configuration: {error}")
        return
    rules = build_rules(config).rules(4)
    print(f"{len(rules)} IPv4 rules in {', '.join(sorted({rule.table for rule in rules}))}\n")
    walk_table(config)


widgets.interact(
    explore,
    inbound_ports=widgets.Text("*", description="-b inbound"),
    exclude_inbound=widgets.Text("15090,15021,15020", description="-d exclude"),
    outbound_cidrs=widgets.Text("*", description="-i outbound"),
    mode=widgets.Dropdown(options=["REDIRECT", "TPROXY"], description="-m mode"),
    redirect_dns=widgets.Checkbox(False, description="--redirect-dns"),
);
assert walk(build_rules(POD).restore_text(4), MATRIX["peer -> app port 8080"]).to_port == 15006  # the controls' starting point

# %% [markdown]
# ## 3 · Model: DNS capture, and REDIRECT vs TPROXY
#
# With `--redirect-dns` (the agent's DNS proxy, `ISTIO_META_DNS_CAPTURE`), queries to the pod's
# resolvers go to pilot-agent on port 15053, and raw-table rules put the two legs (app ↔ agent, agent ↔
# upstream resolver) in different conntrack zones so their UDP entries cannot collide. Note the port 53
# exceptions that appear in ISTIO_OUTPUT, so the agent's own queries are not captured again:

# %%
DNS = replace(POD, redirect_dns=True, dns_servers_v4=("10.96.0.10",))
dns_rules = [rule.text() for rule in build_rules(DNS).rules(4) if "53" in rule.text() or rule.table == "raw"]
print("\n".join(dns_rules))
query = walk(build_rules(DNS).restore_text(4), Connection("OUTPUT", POD_IP, "10.96.0.10", 53, protocol="udp", out_interface="eth0", uid=0, gids=(0,)))
print()
say("an app's DNS query", query.summary())

# %% [markdown]
# REDIRECT rewrites the destination to a local port, and the sidecar learns the original one from
# conntrack (`SO_ORIGINAL_DST`). The price: the inbound proxy must open its own connection to the app,
# so the app sees 127.0.0.6, not the client. TPROXY (`-m TPROXY`) instead marks inbound packets in the
# mangle table and delivers them, unchanged, to a socket listening with `IP_TRANSPARENT`; the proxy can
# then connect to the app *from the client's address* (Envoy's original_src filter), and marks (1337,
# 1338) plus a policy route (table 133) keep the return traffic on the right path.

# %%
TPROXY = replace(POD, inbound_interception_mode="TPROXY")
print("\n".join(rule.text() for rule in build_rules(TPROXY).rules(4) if rule.table == "mangle"))
inbound = walk(build_rules(TPROXY).restore_text(4), MATRIX["peer -> app port 8080"])
print()
say("inbound in TPROXY mode", inbound.summary())

# %% [markdown]
# ## 4 · Live: the same rules in your kernel
#
# **Stage: live lab** (Linux; root, or unprivileged user namespaces). `meshlab.lab.Lab` makes each pod a
# network namespace on a bridge (pod CIDR 10.244.0.0/24), writes the rules above into it with
# `iptables-restore` (what istio-init does), and starts meshlab's sidecar, running as uid 1337 and
# listening on 15001 and 15006, next to a small echo app that reports the peer address it saw. Pod `pod0`
# and `pod1` are meshed; `plain` has no sidecar. Without root the lab lives in a user namespace where
# only your own uid exists: the sidecar then marks its sockets (0x539) and the rules match that mark
# exactly where Istio's match `--uid-owner 1337`; the walk below shows which you got.
# The printed numbers differ from run to run, so these cells check what must hold instead of pinning text.

# %% tags=["nbval-ignore-output"]
LIVE = doctor.check_live()
print("live stage:", "available" if LIVE.available else f"NOT available: {LIVE.reason} (fix: {LIVE.fix})")
assert LIVE.available or os.environ.get("MESHLAB_REQUIRE_LIVE") != "1", LIVE.reason
if LIVE.available:
    from meshlab.lab import Lab, PodSpec
    from meshlab.lab.trace import comparable, kernel_trace, trace_rule

    lab = Lab("ml02").up([PodSpec("pod0", capture=POD), PodSpec("pod1", capture=POD), PodSpec("plain", sidecar=False)], down_at_exit=True)
    for pod in lab.status()["pods"]:
        print(pod)
    assert [pod["sidecar"] for pod in lab.status()["pods"]] == [True, True, False]

# %% [markdown]
# A request from pod1 to pod0's app port. The reply says who the app saw; each sidecar logged a hop.

# %% tags=["nbval-ignore-output"]
if LIVE.available:
    reply = lab.request("pod1", lab.pod("pod0").ip, 8080, "/hello")
    say("the app saw", reply.body)
    outbound, inbound = lab.sidecar_hops(reply, client="pod1", server="pod0")  # chained by socket addresses
    for hop in (outbound, inbound):
        print(f"{hop['pod']} sidecar, {hop['direction']:>8}: accepted {hop['downstream']} (original destination {hop['original_dst']})")
        print(f"{'':>24}connected {hop['upstream_source']} -> {hop['upstream']}")
    assert outbound["direction"] == "outbound" and inbound["direction"] == "inbound", "the request must cross both sidecars"
    assert reply.body["peer"].startswith("127.0.0.6:"), "behind a REDIRECT-mode sidecar the app sees 127.0.0.6"

# %% [markdown]
# The kernel's own account of the same kind of connection: a TRACE rule in the raw table marks the
# first packet, and `xtables-monitor --trace` reports every rule it matched. It is exactly the walk.

# %% tags=["nbval-ignore-output"]
if LIVE.available:
    app_out = Connection("OUTPUT", lab.pod("pod1").ip, lab.pod("pod0").ip, 8080, out_interface="eth0", uid=0, gids=(0,))
    rule = trace_rule("OUTPUT", "tcp", 8080, owner_uid=0)
    kernel = kernel_trace(lab.pod("pod1").namespace, rule, lambda: lab.request("pod1", lab.pod("pod0").ip, 8080))
    for step in kernel:
        print(f"kernel: {step.table}:{step.chain:<16} {step.effect}")
        if step.rule:
            print(fit(f"    {step.rule}"))
    predicted = walk(build_rules(POD).restore_text(4) + "*raw\n-I " + " ".join(rule[3:4] + rule[5:]) + "\nCOMMIT\n", app_out)
    assert comparable(predicted.steps) == comparable(kernel), "the walk must predict the kernel's path"
    print()
    say("the walk predicted", predicted.summary())
    traced = interception_path(app_out, kernel)  # the arrows the kernel says the packet took
    assert traced == interception_path(app_out, predicted.steps) and traced[-1] == "ISTIO_REDIRECT->envoy:15001"
    display(sidecar_pod().lit(*traced, title="pod1 -> pod0:8080 as the kernel traced it"))

# %% [markdown]
# The kernel also counts: each nat rule's counter grows by one per connection (nat sees first packets only).

# %% tags=["nbval-ignore-output"]
if LIVE.available:
    counted = [line for line in lab.iptables_save("pod1").splitlines() if line.startswith("[") and not line.startswith("[0:0]")]
    print("\n".join(counted))
    assert any("REDIRECT --to-ports 15001" in line for line in counted)

# %% [markdown]
# The 127.0.0.6 effect, side by side: pod0 has a sidecar, so its app sees 127.0.0.6 whoever calls;
# the plain pod has none, so its app sees the caller's pod IP (here pod1's, as pod1's sidecar connects
# from it). Lab 02 shows a third case: a port excluded from inbound capture.

# %% tags=["nbval-ignore-output"]
if LIVE.available:
    behind_sidecar = lab.request("plain", lab.pod("pod0").ip, 8080).body["peer"]
    without_sidecar = lab.request("pod1", lab.pod("plain").ip, 8080).body["peer"]
    print(f"plain -> pod0:8080   pod0's app saw  {behind_sidecar}")
    print(f"pod1  -> plain:8080  plain's app saw {without_sidecar}")
    assert behind_sidecar.startswith("127.0.0.6:") and without_sidecar.startswith(lab.pod("pod1").ip + ":")

# %% [markdown]
# ## 5 · Live: what the extra hops cost
#
# 2,000 requests over one keep-alive connection, and 300 on a new connection each, from a pod without
# sidecar to the plain pod ("direct") and from pod1 to pod0 through both sidecars. meshlab's sidecar is a
# Python L4 splice, not Envoy; what the figure shows is the *shape* of the cost: two extra user-space
# processes, two extra connections and two extra netfilter decisions per request.

# %% tags=["nbval-ignore-output"]
if LIVE.available:
    direct_target, meshed_target = lab.pod("plain").ip, lab.pod("pod0").ip
    lab.requests("plain", direct_target, count=200), lab.requests("pod1", meshed_target, count=200)  # warm up
    samples = {
        "direct (keep-alive)": [r.latency_us for r in lab.requests("plain", direct_target, count=2000)],
        "two sidecars (keep-alive)": [r.latency_us for r in lab.requests("pod1", meshed_target, count=2000)],
    }
    fresh = {
        "direct (new connection)": [r.latency_us for r in lab.requests("plain", direct_target, count=300, keepalive=False)],
        "two sidecars (new connection)": [r.latency_us for r in lab.requests("pod1", meshed_target, count=300, keepalive=False)],
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.8, 3.6))
    plot_latency_cdf(samples, title="One keep-alive connection", ax=left)
    plot_latency_cdf(fresh, title="A new connection per request", ax=right)
    plt.show()
    p50 = {name: np.percentile(values, 50) for name, values in {**samples, **fresh}.items()}
    print(f"p50 ratio two sidecars / direct: keep-alive {p50['two sidecars (keep-alive)'] / p50['direct (keep-alive)']:.2f}, "
          f"new connection {p50['two sidecars (new connection)'] / p50['direct (new connection)']:.2f}")
    assert p50["two sidecars (keep-alive)"] > p50["direct (keep-alive)"], "two more hops cannot be free"

# %% [markdown]
# **Where "each hop costs milliseconds" stands today.** Istio's own measurements (istio.io, "Performance
# and Scalability", per release) put two sidecars at about 7 ms added at p90 in Istio 1.3 and 2.8 ms in
# 1.5. The pages for 1.8.3, 1.9.5 and 1.10.3 all give 2.65 ms at p90 and 2.91 ms at p99 for the two
# proxies, measured the old way; Istio 1.7 introduced measuring with `jitter`, which on the same pages
# gives 1.7 ms and 2.69 ms. Those are two methods, not one series. Later pages give 0.228 ms at p90 /
# 0.298 ms at p99 in 1.20, and two ztunnels (ambient mode) 0.17 ms p90 / 0.20 ms p99 in 1.22. No release
# publishes p50. So the cost of the hops is now well under a
# millisecond for Envoy; what the mesh costs you is mostly CPU and memory per proxy (chapter 04). The
# benchmark `benchmarks/bench_interception.py` measures this lab's figures with more samples.

# %% tags=["nbval-ignore-output"]
if LIVE.available:
    lab.down()
    from meshlab.lab.netns import MACHINE

    assert MACHINE.with_prefix("ml02") == [], "the lab removed its namespaces"
    print("lab ml02 is down")

# %% [markdown]
# ## 6 · Injected by the API server, without a cluster
#
# **Stage: upstream and live as root** (`meshlab upstream install kube-apiserver etcd kubectl
# kube-controller-manager pilot-discovery pilot-agent istioctl`). In a cluster nobody runs `istioctl kube-inject`: the API server sends every
# new pod to istiod's injection webhook before storing it. Here that happens for real with no cluster: etcd
# and kube-apiserver v1.35.4 on loopback, istiod out of cluster with the chart's MutatingWebhookConfiguration
# pointed at its webhook port, and a live lab whose pods exist in the API server before the lab makes them,
# as in Kubernetes (`meshlab.lab.istiod`: its Node with its kubelet version, each pod created in a namespace
# labelled `istio-injection=enabled`, then its IP reported as a kubelet would; `meshlab lab up
# --control-plane istiod` does the same from a shell). The lab's pod `web` came back injected, and the lab
# made it as a kubelet would: its injected istio-init ran first, in the pod's namespace, as itself (Istio's
# `pilot-agent istio-iptables` with the injected arguments), and its log ends, as `kubectl logs -c
# istio-init` shows, with the kernel's state. meshlab's rendering of the same arguments is then compared
# with what the kernel holds. Then the pod of section 1 is created with the real kubectl and read back: the
# API server stored it injected too.

# %% tags=["nbval-ignore-output"]
import json

import yaml

from meshlab.lab.istiod import LAB_PROGRAMS

CONTROL_PLANE = {name: build.find(PROGRAMS[name]) for name in LAB_PROGRAMS}
MISSING = [name for name, program in CONTROL_PLANE.items() if program is None]
if MISSING or not (doctor.check_live().available and os.geteuid() == 0):
    print(f"needs the upstream stage ({', '.join(MISSING) or 'built'}) and the live stage as root: nothing run here")
    assert os.environ.get("MESHLAB_REQUIRE_UPSTREAM") != "1" or os.environ.get("MESHLAB_REQUIRE_LIVE") != "1"
else:
    from meshlab.intercept.compare import compare
    from meshlab.lab import Lab, PodSpec
    from meshlab.lab.istiod import LabIstiod

    paths = {name: program.path for name, program in CONTROL_PLANE.items()}
    with LabIstiod(Lab("ml02i"), paths).up([PodSpec("web", k8s_namespace="default")]) as plane:
        plane.kube.kubectl("create", "-f", "-", stdin=yaml.safe_dump(PLAIN_POD))
        stored = json.loads(plane.kube.kubectl("-n", "default", "get", "pod", "reviews", "-o", "json"))
        web_rules, web_kernel = plane.injected_rules("web"), plane.lab.iptables_save("web")
        web_logged = observe.iptables_state_from_init_log(plane.lab.logs("web", "init"))
    print(fit(f"kubectl create, then get: init containers "
              f"{[(c['name'], c.get('restartPolicy', '-')) for c in stored['spec']['initContainers']]}, "
              f"containers {[c['name'] for c in stored['spec']['containers']]}"))
    webhook_args, _ = observe.init_container(stored)
    print("  istio-init runs:")
    print(command(webhook_args))
    same = INJECTED is not None and observe.injected_capture(stored) == INJECTED
    print("  the same capture as istioctl kube-inject's in section 1:", same)
    beyond = compare(build_rules(PodSpec("web").capture).restore_text(4), web_rules)
    print("pod web, injected: its rules beyond those of the lab's default sidecar pod:")
    print("\n".join(f"  {d.table}:{d.chain} {d.found}" for d in beyond))
    print("pod web's istio-init log ends with the kernel's state:", compare(web_logged, web_kernel) == [])
    print("meshlab's rendering of its arguments is what the kernel holds:", compare(web_rules, web_kernel) == [])
    assert [c["name"] for c in stored["spec"]["initContainers"]] == ["istio-init", "istio-proxy"]
    assert stored["spec"]["initContainers"][1]["restartPolicy"] == "Always" and same
    assert compare(web_logged, web_kernel) == [] and compare(web_rules, web_kernel) == [] and {d.found.split("--dport ")[1].split()[0] for d in beyond} == {"15090", "15021", "15020"}

# %% [markdown]
# The arguments are the ones `istioctl kube-inject` gave offline, but the pod is not: istio-proxy comes
# back as an **init container with `restartPolicy: Always`**, a Kubernetes native sidecar (stable since
# 1.33), started after istio-init and before the app, and stopped after it. istiod decides that per pod
# from the kubelet version of the pod's node (`DetectNativeSidecar`, pkg/kube/inject/webhook.go;
# ENABLE_NATIVE_SIDECARS defaults to `auto`); offline, with no nodes to ask, kube-inject keeps the older
# layout, istio-proxy as an ordinary container. The injected rules differ from the lab's default sidecar
# pod by three RETURN rules: Istio keeps the proxy's own ports (15090 Envoy's Prometheus, 15021 health,
# 15020 merged metrics) out of inbound capture, so the kubelet and Prometheus reach them directly.

# %% [markdown]
# ## 7 · On a real cluster
#
# **Stage: kind** (Docker, kind >= v0.33.0, kubectl, istioctl 1.30.3; `meshlab doctor --stage kind` says
# what is missing). Everything above used meshlab's rendering of Istio's rules. Here a real Istio 1.30.3
# injects a real pod on a kind cluster, and its rules are read back three ways: from the **istio-init
# container's log**, which ends with the kernel's state after the restore (Istio 1.25+ logs it as "Final
# iptables state (IPv4):", 1.24 as the output of `iptables-save`); from an **ephemeral debug container**
# in the pod (`kubectl debug --profile=netadmin` with Istio's proxyv2 image, which has iptables); and from
# the **kernel itself**, by entering the pod's network namespace on its kind node (`crictl inspect` for
# the PID, then `nsenter -t PID -n iptables-save`). The last two try the nft and the legacy backend, which
# hide each other's rules. The injected istio-init arguments are read from the pod spec and handed to
# `meshlab intercept`; all three rule sets must be identical to its rendering, chain by chain. Then one request from the
# `curl` pod to `httpbin` shows that it crossed both sidecars: the server's sidecar adds an
# `X-Forwarded-Client-Cert` header naming the client's SPIFFE ID, which only a mutual-TLS connection
# from the client's sidecar can give it.
#
# The commands this section runs, in order (the same code, run with a runner that only records), as a
# shell script: each step's name, then its command. A command too long for the page continues with `\`;
# the inline `sh -c` script is cut into quoted pieces that the shell joins back into one argument.
# `--config=-` and `-f -` read what meshlab writes to the command's standard input (the cluster's
# config, the manifests), which the script does not show; `<node>` and the like stand for names a real
# run reads from the cluster.

# %%
from meshlab.kind import stage

print(stage.plan_script("02"))

# %% [markdown]
# Where the kind stage is available this cell creates the cluster `meshlab` (or reuses it; `meshlab kind
# down` deletes it) and runs the comparison; elsewhere it says plainly why it is skipped.

# %% tags=["nbval-ignore-output"]
KIND = stage.run("02")
print(fit(KIND.text()))
if KIND.ran:
    assert KIND.agreed, "the cluster disagrees with meshlab's rendering: see the differences above"
else:
    assert KIND.agreed is None, "no verdict without a run"

# %% [markdown]
# ## Stage of this chapter
#
# Sections 1-3 run on the **model** stage (the rule generator and the packet walk, anywhere); section 1's
# injection runs on the **upstream** stage (Istio's own istioctl and pilot-agent, built from their Go
# module). Sections 4-5 run on the **live** stage: real network namespaces, Istio's rules applied with
# iptables-restore, real sidecar processes as uid 1337, and netfilter's own trace. Section 6 runs on the
# **upstream and live** stages together: a real API server has istiod's webhook inject the live lab's pods.
# Section 7 runs on the **kind** stage: a real injected pod's rules, from istio-init's log, a debug
# container and the kernel, against `meshlab intercept` for the same istio-init arguments.
#
# **Lab 02** (`labs/02-excluding-a-port.ipynb`) asks you to exclude a metrics port from inbound capture
# and prove it in the live lab.
#
# ## What to remember
#
# - istio-init's rules send an app's outbound TCP to 15001 (ISTIO_REDIRECT) and inbound to 15006
#   (ISTIO_IN_REDIRECT); the proxy's own traffic (uid 1337) and 127.0.0.6 are returned early, or it would loop.
# - The injector turns traffic annotations into istio-init's flags; `istioctl kube-inject` shows it offline.
# - Order matters inside ISTIO_OUTPUT; the packet walk and the kernel's TRACE agree rule by rule.
#
# ## Check yourself
#
# 1. Why does the app behind a sidecar see 127.0.0.6 as its peer in REDIRECT mode?
#
#    <details><summary>Answer</summary>
#
#    The inbound sidecar connects to the app from 127.0.0.6, a source ISTIO_OUTPUT returns early for, so
#    the connection is not captured again; TPROXY keeps the client's address instead.
#
#    </details>
#
# 2. A pod is annotated `traffic.sidecar.istio.io/excludeInboundPorts: "9090"`. What changes in its rules?
#
#    <details><summary>Answer</summary>
#
#    istio-init gets `-d 15090,15021,9090,15020`, and ISTIO_INBOUND gains `-p tcp --dport 9090 -j RETURN`.
#
#    </details>
#
# 3. Which connections does `-m owner --uid-owner 1337 -j RETURN` let through uncaptured?
#
#    <details><summary>Answer</summary>
#
#    Every connection the proxy itself opens (uid 1337) that an earlier rule did not send to inbound
#    capture, e.g. sidecar to a remote pod.
#
#    </details>

# %% [markdown]
# # 03 · Shortening the path
#
# Chapter 02 sent every request through three TCP connections and four iptables decisions. Two of those
# connections never leave the pod: app ↔ its own sidecar, over loopback. Their bytes still go down one
# TCP/IP stack and up another. Merbridge, an open-source project, replaces
# Istio's iptables rules with eBPF programs that decide at `connect()` time and hand data from socket to
# socket. This chapter counts what that removes, then runs meshlab's own version of it in the live lab.
#
# **After this chapter you can**
# - count stack and iptables traversals on a request path, with iptables or eBPF, on one node or two;
# - explain what each of Merbridge's programs does: `cgroup/connect4`, `sockops`, `sk_msg`,
#   `cgroup/getsockopt`, and why the proxy's own connections must be left alone;
# - show live that redirected messages never appear on `lo` and that a process outside the mesh's cgroup
#   keeps the normal path;
# - say what eBPF cannot take over from the proxy, and what the ebpf stage needs from a kernel.

# %%
from IPython.display import display

from meshlab.viz.architectures import segment_path, socket_paths

socket_paths(same_node=False)

# %%
import os
import re
import sys
from importlib import resources

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from meshlab import doctor
from meshlab.intercept.paths import DATAPATHS, request_segments, traversals
from meshlab.viz import new_axes, use_book_style

use_book_style()

# %% [markdown]
# ## 1 · Model: what a request crosses
#
# `meshlab.intercept.paths` counts, for the three connections of one request, the stack traversals (a
# segment's bytes go down the sender's stack and up the receiver's: 2) and the nat-table traversals of
# each connection's first packet.

# %%
for same_node in (True, False):
    print("same node" if same_node else "two nodes")
    for datapath in DATAPATHS:
        counts = traversals(datapath, same_node)
        print(f"  {datapath:<15} stack {counts['stack']}  iptables {counts['iptables']}  stack traversals avoided {counts['stack_avoided']}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(8.8, 3.2), sharey=True)
for ax, same_node in zip(axes, (True, False)):
    new_axes("one node" if same_node else "two nodes", "", "traversals per request", ax)
    x = np.arange(len(DATAPATHS))
    ax.bar(x - 0.2, [traversals(d, same_node)["stack"] for d in DATAPATHS], 0.4, label="TCP/IP stack")
    ax.bar(x + 0.2, [traversals(d, same_node)["iptables"] for d in DATAPATHS], 0.4, label="iptables (nat)")
    ax.set_xticks(x, DATAPATHS)
axes[0].legend()
plt.show()

# %% [markdown]
# The four iptables traversals are the ones chapter 02's trace showed: app A's OUTPUT (REDIRECT to 15001),
# sidecar A's OUTPUT (RETURN, uid 1337), pod B's PREROUTING (REDIRECT to 15006) and sidecar B's OUTPUT
# towards the app (RETURN, source 127.0.0.6). The first and the last sit on the loopback segments: with
# eBPF they are avoidable on every path, which is the seed's "four traversals, two of them avoidable".
#
# Merbridge comes in two forms, and the counts differ only across nodes. **`merbridge-2022`** is the design
# the Istio blog described on 2022-03-07 ("Merbridge - Accelerate your mesh with eBPF"): the pods keep
# Istio's istio-init rules, and on one node connect4 also sends sidecar A straight to pod B's inbound
# port, so all four traversals go; across nodes the middle connection still meets sidecar A's OUTPUT and
# pod B's PREROUTING redirect: two of four avoided. **`merbridge-cni`**, the later CNI mode, installs no
# iptables rules at all: a TC program on the pod's interface (Merbridge's `bpf/mb_tc.c`) sends a connection
# arriving from another node to 15006 and restores the port on the way back. Either way the middle
# segment's bytes cross the wire between nodes: eBPF shortens the local hops, not the network.
#
# Pick a datapath and placement to see the segments, and the route each connection takes:

# %% tags=["nbval-ignore-output"]
def show_segments(datapath, same_node):
    for segment in request_segments(datapath, same_node):
        how = "socket to socket (sk_msg)" if segment.redirected else "through the TCP/IP stack"
        print(f"{segment.name:<24} {how:<28} iptables traversals: {segment.iptables}")
    display(socket_paths(same_node).lit(*segment_path(datapath, same_node), title=f"{datapath}, {'one node' if same_node else 'two nodes'}"))


widgets.interact(show_segments, datapath=widgets.Dropdown(options=DATAPATHS, description="datapath"), same_node=widgets.Checkbox(True, description="same node"));
assert traversals("ebpf-meshlab", True)["stack_avoided"] == 4 and traversals("iptables", True)["stack_avoided"] == 0

# %% [markdown]
# ## Primer · eBPF in one page
#
# eBPF lets a program written by you run inside the kernel, at a **hook** the kernel offers, on the
# kernel's own data (a socket, a packet), without a kernel module. Four ideas are enough for this chapter:
#
# - **Program types and hooks.** A program's type fixes where it can attach, what context it receives
#   and which helper functions it may call. Those used in this book, with libbpf's section names
#   (docs.kernel.org, "Program Types and ELF Sections"):
#
#   | Section | Program type | Runs when | Used for |
#   |---|---|---|---|
#   | `cgroup/connect4` | `BPF_PROG_TYPE_CGROUP_SOCK_ADDR` | a process in the cgroup calls `connect()` on IPv4 | rewrite the destination to the sidecar, no NAT |
#   | `sockops` | `BPF_PROG_TYPE_SOCK_OPS` | TCP events of the cgroup's sockets (e.g. established) | put sockets in a sockhash |
#   | `sk_msg` | `BPF_PROG_TYPE_SK_MSG` | `sendmsg()` on a socket in that sockhash | hand bytes to the peer socket |
#   | `cgroup/getsockopt` | `BPF_PROG_TYPE_CGROUP_SOCKOPT` | `getsockopt()` in the cgroup | answer `SO_ORIGINAL_DST` |
#   | `tc` | `BPF_PROG_TYPE_SCHED_CLS` | a packet passes a device's traffic-control ingress/egress | Merbridge's CNI mode (`mb_tc.c`), across nodes |
#
#   The cgroup hooks see only processes in the cgroup they are attached to: that is how the lab limits
#   them to its meshed pods.
# - **Maps.** Programs keep no state between runs; they share it through maps, kernel data structures
#   that user space can read and write too (docs.kernel.org, "BPF maps"). Here: a hash (original
#   destinations by socket cookie), an array (counters), and a **sockhash**, whose values are sockets, so
#   that `bpf_msg_redirect_hash` can look up the peer and deliver to it (docs.kernel.org,
#   "BPF_MAP_TYPE_SOCKMAP and BPF_MAP_TYPE_SOCKHASH").
# - **The verifier.** Before a program loads, the kernel's verifier walks every path through it and
#   refuses it unless it provably terminates, reads only initialised memory, checks every pointer before
#   dereferencing it and calls only the helpers its type allows (docs.kernel.org, "eBPF verifier"). This
#   is why a buggy eBPF program is refused at load time instead of crashing the node, and why eBPF
#   programs are small: loops must be bounded (since Linux 5.3) and the verifier gives up on programs
#   whose analysis exceeds one million instructions (since 5.2). It is also why eBPF cannot be a proxy:
#   an HTTP/2 parser or a TLS handshake does not fit those limits (§4).
# - **Portability: BTF and CO-RE.** BTF is compact type information for the kernel (in
#   `/sys/kernel/btf/vmlinux`) and for programs (emitted by `clang -g`). With it libbpf can relocate a
#   program's field accesses to the running kernel's layout at load time, "Compile Once, Run Everywhere"
#   (docs.kernel.org, "BPF Type Format" and "libbpf overview"), instead of compiling on every node
#   against its headers as BCC does. The context structures of the hooks above (`bpf_sock_addr`,
#   `bpf_sock_ops`, `sk_msg_md`, `bpf_sockopt`) are part of the kernel's stable ABI, so meshlab's
#   programs need BTF only for their maps (the `-g` in the build); tracing programs that read internal
#   structures need CO-RE proper. Cilium's "BPF and XDP Reference Guide" (docs.cilium.io) covers all four
#   in depth.
#
# The live cell below compiles meshlab's `mesh.bpf.c` (as the lab does) and asks two questions: which
# programs and context types its BTF describes, and whether this kernel offers the program and map types
# the table names (`bpftool feature probe`).

# %% tags=["nbval-ignore-output"]
import subprocess
import tempfile
from pathlib import Path

EBPF = doctor.diagnose(("live", "ebpf"))  # read again by section 3's live cells
available = all(report.available for report in EBPF.values())
if available:
    from meshlab.ebpf.datapath import compile_object

    with tempfile.TemporaryDirectory() as folder:
        obj = compile_object(Path(folder) / "mesh.bpf.o")
        btf = subprocess.run(["bpftool", "btf", "dump", "file", str(obj)], capture_output=True, text=True, check=True).stdout
    functions = re.findall(r"FUNC '(\w+)'", btf)
    contexts = [name for name in re.findall(r"STRUCT '(\w+)'", btf) if name.startswith(("bpf_", "sk_"))]
    print("programs in the object's BTF:", ", ".join(functions))
    print("their context types:         ", ", ".join(contexts))
    probe = subprocess.run(["bpftool", "feature", "probe", "kernel"], capture_output=True, text=True).stdout
    wanted = ["program_type cgroup_sock_addr", "program_type sock_ops", "program_type sk_msg", "program_type cgroup_sockopt",
              "program_type sched_cls", "map_type sockhash", "map_type hash", "map_type array"]
    for feature in wanted:
        print(f"{feature:<34} {'available' if f'eBPF {feature} is available' in probe else 'NOT available'}")
    assert set(functions) >= {"mesh_connect4", "mesh_sockops", "mesh_sk_msg", "mesh_getsockopt"}
    assert all(f"eBPF {feature} is available" in probe for feature in wanted[:4]), "the ebpf stage said yes, so the kernel must offer these"
else:
    print("the ebpf stage is not available here (meshlab doctor says why); the table above is what it would check")

# %% [markdown]
# ## 2 · How Merbridge replaces iptables
#
# - **`cgroup/connect4`** runs when a process in the cgroup calls `connect()`. If the destination is in the
#   mesh and the caller is not the proxy (uid 1337), meshlab rewrites the destination to the sidecar's
#   port 15001 on a loopback address of the connection's own in 127.128.0.0/12 (its CPU and a per-CPU
#   counter: distinct for up to 16 CPUs), and remembers
#   the original by socket cookie. No NAT, no conntrack entry.
# - **`sockops`** sees connections become ESTABLISHED. It moves the original destination to a key the
#   sidecar can name (the app socket's address and that loopback address: the sidecar's peer and its own
#   local address), and puts the socket in a **sockhash** keyed by its 4-tuple.
# - **`sk_msg`** runs on every `sendmsg()` of a socket in the sockhash. If the peer socket (the same 4-tuple,
#   ends swapped) is there too, `bpf_msg_redirect_hash` puts the data straight into the peer's receive queue.
# - **`cgroup/getsockopt`** answers the sidecar's `getsockopt(SOL_IP, SO_ORIGINAL_DST)`, which no longer has a
#   conntrack entry to read, from the map. The proxy is unchanged.
#
# **Why not simply 127.0.0.1:15001.** The maps are one per node, not one per pod, and two pods' apps can
# pick the same ephemeral port: two connections "127.0.0.1:40001 → 127.0.0.1:15001" at once would share
# a 4-tuple, and one pod's bytes could be handed to the other pod's sidecar. With one loopback address
# per connection every 4-tuple is distinct; the whole of 127.0.0.0/8 is local, and the sidecar listens on
# 0.0.0.0. Merbridge met the same problem: its early connect4 (`bpf/mb_connect.c`, 0.5.0) took the address
# from a rolling counter in 127.128.0.0 "to avoid conflicts between the quaternions of different Pods"
# (the counter is 20 bits wide, so the range is in fact 127.128.0.0/12, not the /20 its comment says);
# later versions bind the pod's IP as the source and keep the counter as a fallback. meshlab's live tests
# (`tests/live/test_ebpf.py`) call from one source port in two pods at once: with 127.0.0.1 both apps got
# the same server's answer; with an address per connection each gets its own. Merbridge decides
# *whether* to redirect differently, too: it checks that the caller's network
# namespace has a listener on 15001 (the caller is in a meshed pod) and, for the proxy's own
# connections, consults its `local_pod_ips` map; meshlab's programs are attached only to the cgroup of
# the lab's meshed pods, so "the caller is meshed" holds by construction, and the proxy is told apart by
# its uid.
#
# The **same-node loop problem**: a proxy connecting to its own pod's IP (an app calling itself through a
# service) would be rewritten again to its own 15001 and loop. Merbridge detects that case and drops the
# first connection once; meshlab's connect4 never rewrites the proxy's own connections (uid 1337), and its
# inbound capture stays Istio's PREROUTING rules, which handle that path as in chapter 02.
#
# meshlab's programs are in `meshlab/ebpf/mesh.bpf.c`, compiled on first use with `clang -O2 -g -target bpf`
# and loaded with bpftool. Its programs and maps:

# %%
source = (resources.files("meshlab.ebpf") / "mesh.bpf.c").read_text()
for section, name in re.findall(r'SEC\("([^"]+)"\)\s*\nint (\w+)', source):
    print(f"program  {name:<16} section {section}")
for kind, name in re.findall(r"__uint\(type, (BPF_MAP_TYPE_\w+)\);.*?\} (\w+) SEC", source, re.S):
    print(f"map      {name:<20} {kind}")

# %% [markdown]
# ## 3 · Live: the eBPF datapath
#
# **Stage: live lab with eBPF** (Linux, root, clang, libbpf-dev, bpftool; `meshlab doctor` checks). The
# lab mounts its own bpffs and cgroup2 under `/run/meshlab/<prefix>/`, puts the meshed pods' processes in
# the cgroup `<prefix>-pods`, and attaches the four programs. Outbound capture is connect4's; inbound stays
# Istio's PREROUTING rules.

# %% tags=["nbval-ignore-output"]
for stage, report in EBPF.items():
    print(f"{stage}: {'available' if report.available else 'NOT available: ' + report.reason}")
assert available or os.environ.get("MESHLAB_REQUIRE_LIVE") != "1", EBPF
if available:
    from meshlab.lab import Lab
    from meshlab.viz.text import say

    lab = Lab("ml03").up(2, datapath="ebpf", down_at_exit=True)
    print("attached to the lab's cgroup:", lab.ebpf.attached())
    reply = lab.request("pod1", lab.pod("pod0").ip, 8080)
    hop, _ = lab.sidecar_hops(reply, client="pod1", server="pod0")
    print(f"pod1's sidecar: accepted from {hop['downstream']}, original destination {hop['original_dst']}")
    say("counters", lab.ebpf_stats())
    assert hop["downstream"].startswith("127.0.0.1:") and hop["original_dst"] == f"{lab.pod('pod0').ip}:8080"

# %% [markdown]
# The packet capture: tcpdump on pod0's `lo` while pod1 sends 20 requests. The sidecar → app connection's
# handshake and FIN cross `lo`; its bytes do not. The control: the same app, called over the same `lo` by
# a process outside the cgroup.

# %% tags=["nbval-ignore-output"]
if available:
    target = lab.pod("pod0").ip
    before = lab.ebpf_stats()["redirected_messages"]
    packets, payload = lab.loopback_packets("pod0", 8080, lambda: lab.requests("pod1", target, 8080, count=20))
    assert lab.ebpf_stats()["redirected_messages"] - before >= 2 * 20, "each request and each reply crossed by sk_msg"
    print(f"redirected: {packets} packets on lo, {payload} with payload")
    outside = [sys.executable, "-m", "meshlab.lab.client", "127.0.0.1", "8080", "--count", "20"]
    control_packets, control_payload = lab.loopback_packets("pod0", 8080, lambda: lab.exec("pod0", outside))
    print(f"outside the cgroup: {control_packets} packets on lo, {control_payload} with payload")
    assert payload == 0 and control_payload >= 20

# %% [markdown]
# The cost of the stack: a 64-byte ping-pong over loopback, the normal path against sk_msg redirection,
# both ends pinned to one CPU. `benchmarks/bench_ebpf.py` measures it with more rounds.

# %% tags=["nbval-ignore-output"]
if available:
    import json

    argv = [sys.executable, "-m", "meshlab.ebpf.pingpong", "--count", "5000", "--cpu", "0"]
    normal = json.loads(lab.exec("pod0", argv).stdout)
    redirected = json.loads(lab.exec("pod0", lab.in_cgroup_argv(argv)).stdout)
    print(f"normal path: p50 {normal['p50_us']:.1f} µs, p99 {normal['p99_us']:.1f} µs")
    print(f"redirected:  p50 {redirected['p50_us']:.1f} µs, p99 {redirected['p99_us']:.1f} µs  (p50 ratio {normal['p50_us'] / redirected['p50_us']:.2f}x)")
    lab.down()
    assert redirected["count"] == normal["count"] == 5000

# %% [markdown]
# ## 4 · What eBPF does not replace
#
# eBPF moves bytes and makes per-connection decisions in the kernel; it cannot be the proxy:
# - **L7 needs a proxy.** Routing by header, retries, HTTP authorization and telemetry need the request
#   parsed; the kernel has no place to terminate TLS with the workload's key.
# - **Keys on the node.** Doing mTLS for pods without sidecars means a per-node component holding every
#   local workload's key (Cilium's per-node Envoy, Istio's ztunnel): the per-node model of chapter 04, with
#   its identities per proxy and its blast radius.
# - **Noisy neighbours.** Work moved into the kernel or a shared node proxy is no longer accounted to the pod
#   that caused it.
# - **Blast radius.** A bad program attached to a cgroup or a node affects every pod there at once.
#
# **What the ebpf stage needs**: Linux with BTF (`/sys/kernel/btf/vmlinux`), cgroup v2, and the program types
# used here (Merbridge documents kernel 5.7 or newer; 5.10 or newer is the safer floor); clang, libbpf-dev and
# bpftool; root (CAP_BPF, CAP_NET_ADMIN). WSL2 and custom kernels may lack the options (`bpftool feature
# probe` tells); macOS and Windows need a Linux VM; containers need `--privileged`. `meshlab doctor` checks the
# kernel version, BTF, the tools and root.
#
# ## Stage of this chapter
#
# Section 1 runs on the **model** stage. Section 3 runs on the **live** stage with eBPF: real programs
# attached to a real cgroup, real counters, a real packet capture. On the **kind** stage, Merbridge or
# Cilium can be installed in the cluster; meshlab's model gives the counts to look for.
#
# ## What to remember
#
# - Of the four iptables traversals of a request, the two on the loopback segments can always go with eBPF;
#   the two in the middle go only on one node (Merbridge 2022) or with a TC program (its CNI mode).
# - connect4 rewrites the destination at connect(), sockops files sockets in a sockhash, sk_msg hands
#   bytes socket to socket, getsockopt answers SO_ORIGINAL_DST from a map.
# - Maps are per node: each app connection needs a distinct 4-tuple, hence a loopback address of its own.
# - eBPF shortens the path to the proxy; it cannot terminate TLS or route by header in its place.
#
# ## Check yourself
#
# 1. Two pods on different nodes, Merbridge's 2022 design: which iptables traversals remain?
#
#    <details><summary>Answer</summary>
#
#    Two: sidecar A's OUTPUT (RETURN) and pod B's PREROUTING (REDIRECT to 15006) on the middle connection.
#
#    </details>
#
# 2. Why would rewriting every app connection to 127.0.0.1:15001 be unsafe with node-wide maps?
#
#    <details><summary>Answer</summary>
#
#    Two pods using the same ephemeral port give two connections one 4-tuple: one pod's bytes can reach the
#    other pod's sidecar. A distinct loopback address per connection keeps them apart.
#
#    </details>
#
# 3. What does tcpdump on lo show for a redirected exchange?
#
#    <details><summary>Answer</summary>
#
#    The handshakes and FINs, but no payload: sk_msg put the bytes into the peer socket directly.
#
#    </details>
#
# **Lab 03** (`labs/03-counting-the-path.ipynb`): predict the counts; the kernel then counts.

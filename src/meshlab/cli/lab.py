"""``meshlab lab``: the embedded live lab, one handler per subcommand.

    up       create pods (network namespaces) with Istio's rules and sidecars; or, with --clusters N,
             several clusters with tier-2 gateways behind a tier-1 gateway (meshlab.lab.clusters)
    multicluster  one mesh over several clusters and networks (meshlab.lab.multicluster), run in the
             foreground (its control planes live in this process): a call across networks, a failover
    wasm     apply, list and remove WasmPlugins on a lab started with --dataplane (meshlab.lab.proxyconfig)
    status   the lab's pods (and clusters and gateways)
    exec     a command in a pod's network namespace
    logs     a pod's sidecar or app log, a node proxy's, or a gateway's
    ebpf     the eBPF datapath's counters
    down     stop the lab and remove what it created (also after a crash: ``cleanup``)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from meshlab.cli.common import UsageError
from meshlab.lab.spec import DATAPATHS, DEFAULT_PREFIX, LOG_ROLES, MAX_NODES, MAX_PODS, PROXY_MODES, PodSpec

#: What ``lab up`` does unless told otherwise; with --clusters, only --pods (per cluster) applies.
UP_DEFAULTS = {"nodes": 1, "proxy_mode": "sidecar", "datapath": "iptables", "control_plane": "none"}


def _pod_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_PODS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a pod count; use 1-{MAX_PODS}")
    return int(text)


def _go_duration_ms(text: str) -> float:
    """A --debounce-* value, written as istiod's PILOT_DEBOUNCE_* take it (a Go duration), in ms."""
    from meshlab import goduration

    try:
        return goduration.seconds(text) * 1000
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _up(args: argparse.Namespace) -> int:
    from meshlab.lab import Lab

    debounce = {name: value for name, value in (("debounce_after_ms", args.debounce_after), ("debounce_max_ms", args.debounce_max))
                if value is not None}
    if debounce and args.control_plane != "istiod":
        raise UsageError("--debounce-after and --debounce-max are istiod's PILOT_DEBOUNCE_AFTER and _MAX: they need --control-plane istiod")
    if args.clusters is not None:
        return _up_clusters(args)
    if args.dataplane and args.proxy_mode != "sidecar":
        raise UsageError("--dataplane gives each pod's sidecar its HTTP side and an agent: it needs --proxy-mode sidecar")
    programs = _istiod_programs(args) if args.control_plane == "istiod" else None
    pods = [PodSpec(f"pod{i}", node=i % args.nodes, dataplane=args.dataplane) for i in range(args.pods)]
    options = {"nodes": args.nodes, "proxy_mode": args.proxy_mode, "datapath": args.datapath, "collector": args.collector}
    if programs is None:
        Lab(args.prefix).up(pods, **options)
    else:  # its control plane outlives this command: `lab down` stops it
        from meshlab.lab.istiod import LabIstiod
        from meshlab.xds.debounce import DebounceOptions

        LabIstiod(Lab(args.prefix), programs, DebounceOptions(**debounce)).up(pods, **options)
    proxies = "a sidecar each" if args.proxy_mode == "sidecar" else "one proxy per node"
    extras = (", HTTP side and pilot-agent in every pod" if args.dataplane else "") + (", a telemetry collector" if args.collector else "")
    extras += ", served by the real istiod (its kubeconfig: `meshlab lab status`)" if programs is not None else ""
    print(f"lab {args.prefix!r} is up: {args.pods} pods on {args.nodes} node(s), {proxies}, {args.datapath} datapath{extras}; "
          f"`meshlab lab status --prefix {args.prefix}`")
    return 0


def _istiod_programs(args: argparse.Namespace) -> dict[str, str]:
    """The upstream programs a lab served by istiod runs, checked before anything is made."""
    from meshlab.lab.istiod import LAB_PROGRAMS
    from meshlab.upstream import build
    from meshlab.upstream.versions import PROGRAMS

    if args.proxy_mode != "sidecar" or args.datapath != "iptables":
        raise UsageError("--control-plane istiod injects sidecars and applies istio-init's iptables rules: "
                         "it needs --proxy-mode sidecar and --datapath iptables")
    found = {name: build.find(PROGRAMS[name]) for name in LAB_PROGRAMS}
    missing = [name for name, program in found.items() if program is None]
    if missing:
        raise UsageError(f"--control-plane istiod runs upstream programs not built here: {', '.join(missing)}; "
                         f"fix: meshlab upstream install {' '.join(missing)}")
    return {name: program.path for name, program in found.items()}


def _wasm_apply(args: argparse.Namespace) -> int:
    """Apply WasmPlugins to a running lab's data-plane pods and say, per plugin, what each selected pod runs."""
    from meshlab.lab import Lab
    from meshlab.lab.proxyconfig import apply_plugins

    text = sys.stdin.read() if args.file == "-" else _read(args.file)
    for applied in apply_plugins(Lab.attach(args.prefix), text):
        _print_applied(applied)
    return 0


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None


#: What a failStrategy does to requests when the module could not be had (pilot-agent's RBAC fallback).
FALLBACK_EFFECT = {"allow": "requests pass as if the plugin were not there (FAIL_OPEN)",
                   "deny": "requests to the selected pods are denied with 403 RBAC: access denied (fail closed)"}


def _print_applied(applied) -> None:
    pods = ", ".join(applied.pods) or "no pod (its selector or match selects none)"
    print(f"{applied.namespace}/{applied.name}: phase {applied.phase}, priority {applied.priority}, {applied.fail_strategy}; pods: {pods}")
    if applied.outcome == "local":
        print(f"  module fetched and its sha256 checked: {applied.url}")
    else:
        print(f"  module refused: {applied.reason}")
        print(f"  effect: {FALLBACK_EFFECT.get(applied.outcome, applied.outcome)}")


def _wasm_list(args: argparse.Namespace) -> int:
    from meshlab.lab import Lab
    from meshlab.lab.proxyconfig import applied_plugins

    applied = applied_plugins(Lab.attach(args.prefix))
    if args.json:
        print(json.dumps([asdict(plugin) for plugin in applied], indent=1))
        return 0
    if not applied:
        print("no WasmPlugin applied")
    for plugin in applied:
        _print_applied(plugin)
    return 0


def _wasm_remove(args: argparse.Namespace) -> int:
    from meshlab.lab import Lab
    from meshlab.lab.proxyconfig import remove_plugin

    namespace, _, name = args.plugin.rpartition("/")
    remove_plugin(Lab.attach(args.prefix), namespace or "default", name)
    print(f"removed WasmPlugin {namespace or 'default'}/{name}")
    return 0


def _up_clusters(args: argparse.Namespace) -> int:
    from meshlab.lab.clusters import Clusters

    changed = [f"--{name.replace('_', '-')}" for name, default in UP_DEFAULTS.items() if getattr(args, name) != default]
    if changed:
        raise UsageError(f"{', '.join(changed)} cannot be combined with --clusters (its clusters have one node and no sidecars)")
    clusters = Clusters(args.prefix).up(args.clusters, pods=args.pods)
    print(f"lab {args.prefix!r} is up: {args.clusters} cluster(s) of {args.pods} pod(s), each behind a tier-2 gateway; the tier-1 gateway "
          f"{clusters.status()['tier1']['ip']}:80 splits {clusters.hostname} {clusters.weights}; `meshlab lab status --prefix {args.prefix}`")
    return 0


def _multicluster(args: argparse.Namespace) -> int:
    """Up, one call per service from cluster1 with the path it took, a failover if asked, then down
    (or, with --serve, serve until interrupted)."""
    import signal
    import threading

    from meshlab.lab.multicluster import MultiClusterMesh

    with MultiClusterMesh(args.prefix).up(args.clusters, pods=args.pods) as mesh:
        print(f"mesh {args.prefix!r} is up: {args.clusters} clusters, each its own network, control plane and east-west gateway")
        for service in ("hello", "echo"):
            call = mesh.call(service, "cluster1")
            print(f"cluster1-sleep -> {service}: answered by {call.answered_by}" + (" across networks" if call.crossed else " at home"))
            for hop in call.hops:
                print(f"  {hop['pod']:<18} {hop['direction']:<8} {hop['downstream']:>19} -> {hop['upstream']:<19} sni={hop.get('sni') or '-'}"
                      f" peer={hop.get('peer_identity') or '-'}")
        if args.failover:
            print(mesh.failover("echo", "cluster1"))
        if args.serve:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            print(f"serving; `meshlab lab status --prefix {args.prefix}` from another shell; Ctrl-C stops it")
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
    print(f"mesh {args.prefix!r} is down")
    return 0


def _print_clusters(status: dict) -> None:
    tier1 = status["tier1"]
    print(f"lab {status['prefix']}: tier-1 gateway {tier1['ip']}:{tier1['port']} ({'running' if tier1['running'] else 'NOT running'}) "
          f"for {status['hostname']}, weights {tier1['weights']}; client {status['client']['ip']}")
    for cluster in status["clusters"]:
        gateway = cluster["gateway"]
        print(f"  {cluster['name']}: tier-2 gateway {gateway['edge_ip']}:80 on the edge, {gateway['ip']} inside "
              f"({'running' if gateway['running'] else 'NOT running'})")
        for pod in cluster["pods"]:
            print(f"    {pod['name']:<16} {pod['ip']}")


def _status(args: argparse.Namespace) -> int:
    """What runs under the prefix, whichever composition made it (its state file says)."""
    from meshlab.lab import Lab
    from meshlab.lab.state import read_state, state_dir

    state = read_state(state_dir(args.prefix))
    if state is not None and state.clusters and "mesh" in state.clusters:
        from meshlab.lab.multicluster import MultiClusterMesh

        status, show = MultiClusterMesh.attach(args.prefix).status(), _print_mesh
    elif state is not None and state.clusters:
        from meshlab.lab.clusters import Clusters

        status, show = Clusters.attach(args.prefix).status(), _print_clusters
    else:
        status, show = Lab.attach(args.prefix).status(), _print_lab
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        show(status)
    return 0


def _print_lab(status: dict) -> None:
    print(f"lab {status['prefix']} (datapath {status['datapath']}, proxies: {status['proxy_mode']})")
    for pod in status["pods"]:
        print(f"  {pod['name']:<8} {pod['node']:<6} {pod['ip']:<15} app :{pod['app_port']}  sidecar: {'yes' if pod['sidecar'] else 'no'}")
    if plane := status.get("control_plane"):
        print(f"  control plane: istiod, xDS {plane['xds']}, metrics {plane['metrics']}")
        print(f"  API server {plane['api_server']}: kubectl --kubeconfig {plane['kubeconfig']} get pods -A")


def _print_mesh(status: dict) -> None:
    print(f"mesh {status['prefix']}: {status['model']}")
    for cluster in status["clusters"]:
        running = sum(pod["running"] for pod in cluster["pods"])
        print(f"  {cluster['name']}: {cluster['network']}, {cluster['locality']}, east-west gateway {cluster['eastwest_gateway']}, "
              f"{running}/{len(cluster['pods'])} pods running")


def _exec(args: argparse.Namespace) -> int:
    from meshlab.lab import Lab

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UsageError("exec needs a command after --, e.g. meshlab lab exec pod0 -- ip addr")
    done = Lab.attach(args.prefix).exec(args.pod, command)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


def _logs(args: argparse.Namespace) -> int:
    from meshlab.lab import Lab

    sys.stdout.write(Lab.attach(args.prefix).logs(args.pod, args.role))
    return 0


def _ebpf_stats(args: argparse.Namespace) -> int:
    from meshlab.lab import Lab

    stats = Lab.attach(args.prefix).ebpf_stats()
    print(json.dumps(stats, indent=2) if args.json else "\n".join(f"{name:<22} {value}" for name, value in stats.items()))
    return 0


def _down(args: argparse.Namespace) -> int:
    """``down`` and ``cleanup`` are one operation: the state file names what to stop, and what
    carries the prefix is removed even without it; running it twice is harmless."""
    from meshlab.lab import cleanup

    removed = cleanup(args.prefix)
    deleted = removed["namespaces_deleted"]
    print(f"lab {args.prefix!r} is down: {removed['processes_stopped']} processes stopped, {len(deleted)} namespaces deleted"
          + (f" ({', '.join(deleted)})" if deleted else ""))
    return 0


def _lab_errors(handler):
    """A LabError is the reader's to fix: one line, exit 2 for a usage error, 1 otherwise."""

    def run(args: argparse.Namespace) -> int:
        from meshlab.lab import LabError, LabUsageError

        try:
            return handler(args)
        except LabError as error:
            print(f"meshlab lab: error: {error}", file=sys.stderr)
            return 2 if isinstance(error, LabUsageError) else 1

    return run


def register(commands: argparse._SubParsersAction) -> None:
    lab = commands.add_parser("lab", help="the embedded live lab: pods as network namespaces with Istio's rules and sidecars")
    lab_commands = lab.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)
    prefix = argparse.ArgumentParser(add_help=False)
    prefix.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"prefix of everything the lab creates (default {DEFAULT_PREFIX})")

    up = lab_commands.add_parser("up", parents=[prefix], help="create pods with sidecars")
    up.add_argument("--pods", type=_pod_count, default=2, help=f"number of pods (1-{MAX_PODS}, default 2), spread over the nodes; with --clusters, per cluster")
    up.add_argument("--clusters", type=int, choices=range(1, 9), metavar="N",
                    help="several clusters (1-8), each with its pods and a tier-2 gateway, behind a tier-1 gateway on an edge network")
    up.add_argument("--nodes", type=int, choices=range(1, MAX_NODES + 1), default=1, metavar="N", help=f"number of nodes (1-{MAX_NODES}, default 1)")
    up.add_argument("--proxy-mode", choices=PROXY_MODES, default="sidecar", help="a sidecar per pod, or one shared proxy per node")
    up.add_argument("--datapath", choices=DATAPATHS, default="iptables",
                    help="outbound capture by Istio's iptables rules (default) or by eBPF (connect4 + sockops + sk_msg)")
    up.add_argument("--dataplane", action="store_true",
                    help="each sidecar serves HTTP by Envoy's inbound listener (filters, Wasm, access logs), with a pilot-agent beside it")
    up.add_argument("--collector", action="store_true", help="a collector pod for access logs (ALS) and spans (OTLP)")
    up.add_argument("--control-plane", choices=("none", "istiod"), default="none",
                    help="istiod: a real API server and Istio's istiod (upstream stage) with the pods registered and injected")
    up.add_argument("--debounce-after", type=_go_duration_ms, metavar="DURATION",
                    help="with --control-plane istiod: its PILOT_DEBOUNCE_AFTER, a Go duration (Istio's default 100ms)")
    up.add_argument("--debounce-max", type=_go_duration_ms, metavar="DURATION",
                    help="with --control-plane istiod: its PILOT_DEBOUNCE_MAX (Istio's default 10s)")
    up.set_defaults(run=_lab_errors(_up))

    wasm = lab_commands.add_parser("wasm", help="WasmPlugins on a lab started with --dataplane (chapter 10)")
    wasm_commands = wasm.add_subparsers(dest="wasm_command", metavar="COMMAND", required=True)
    apply = wasm_commands.add_parser("apply", parents=[prefix], help="apply WasmPlugins from a YAML file (- for standard input)")
    apply.add_argument("file")
    apply.set_defaults(run=_lab_errors(_wasm_apply))
    listed = wasm_commands.add_parser("list", parents=[prefix], help="the applied WasmPlugins, their pods and modules")
    listed.add_argument("--json", action="store_true")
    listed.set_defaults(run=_lab_errors(_wasm_list))
    remove = wasm_commands.add_parser("remove", parents=[prefix], help="remove a WasmPlugin: [NAMESPACE/]NAME")
    remove.add_argument("plugin")
    remove.set_defaults(run=_lab_errors(_wasm_remove))

    mesh = lab_commands.add_parser("multicluster", parents=[prefix], help="one mesh over several clusters and networks, in the foreground")
    mesh.add_argument("--clusters", type=int, choices=range(2, 5), default=2, metavar="N", help="clusters (2-4, default 2), each its own network")
    mesh.add_argument("--pods", type=int, choices=range(1, 9), default=2, metavar="N", help="echo pods per cluster (1-8, default 2)")
    mesh.add_argument("--failover", action="store_true", help="kill cluster1's echo pods and measure the failover to another cluster")
    mesh.add_argument("--serve", action="store_true", help="keep the mesh up until interrupted (else it goes down at the end)")
    mesh.set_defaults(run=_lab_errors(_multicluster))

    ebpf = lab_commands.add_parser("ebpf", help="the eBPF datapath of a lab started with --datapath ebpf")
    ebpf_commands = ebpf.add_subparsers(dest="ebpf_command", metavar="COMMAND", required=True)
    stats = ebpf_commands.add_parser("stats", parents=[prefix], help="the datapath's counters")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(run=_lab_errors(_ebpf_stats))

    status = lab_commands.add_parser("status", parents=[prefix], help="the lab's pods")
    status.add_argument("--json", action="store_true", help='print {"prefix", "datapath", "pods": [{"name", "ip", "app_port", "sidecar"}]} '
                        '(several clusters: {"prefix", "hostname", "tier1", "client", "clusters"})')
    status.set_defaults(run=_lab_errors(_status))

    run_in = lab_commands.add_parser("exec", parents=[prefix], help="run a command in a pod's network namespace")
    run_in.add_argument("pod")
    run_in.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ...")
    run_in.set_defaults(run=_lab_errors(_exec))

    logs = lab_commands.add_parser("logs", parents=[prefix], help="a pod's sidecar or app log, or a gateway's")
    logs.add_argument("pod", help="a pod, a node (node0, ...) for node-proxy, or a gateway (tier1, cluster1-gateway, ...)")
    logs.add_argument("role", choices=LOG_ROLES)
    logs.set_defaults(run=_lab_errors(_logs))

    for name, text in (("down", "stop the lab and remove everything it created"), ("cleanup", "the same after a crash: remove everything carrying the prefix")):
        lab_commands.add_parser(name, parents=[prefix], help=text).set_defaults(run=_lab_errors(_down))

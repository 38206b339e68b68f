"""The ``meshlab`` command: one subcommand per job, bad arguments answered with exit code 2.

    meshlab doctor [--json] [--stage S]   which stages run here, why not, and the fix
    meshlab labs release --out DIR        student copies of the labs
    meshlab book [--ip IP] [--port N]     open the textbook in JupyterLab (make lab)
    meshlab intercept istio-iptables ...  Istio's capture rules (--dry-run prints them)
    meshlab lab up|status|exec|logs|down|cleanup   the embedded live lab
    meshlab deploy compare --topology FILE  the four deployment models, computed
    meshlab xds simulate --timeline FILE    Istio's debounce on a timeline of changes
    meshlab metaprotocol decode --codec NAME (--hex HEX | --file F)   one frame's metadata
    meshlab metaprotocol proxy --config METAROUTER.yaml --codec NAME --cluster NAME=HOST:PORT ...
    meshlab spiffe parse ID                 a SPIFFE ID checked with go-spiffe's rules
    meshlab spire agent --trust-domain TD --socket PATH --entries FILE   the SPIFFE Workload API
    meshlab kind plan|run CHAPTER | down    the kind stage: a chapter's comparison on a real cluster

Errors the reader can fix (a busy port, a malformed lab) are printed as one line
naming what was wrong and what is accepted, with exit code 2, like argparse's own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from meshlab import __version__, book, doctor, labs
from meshlab.intercept import ConfigError, render_commands
from meshlab.intercept import apply as capture_apply
from meshlab.intercept import flags as istio_flags


class UsageError(Exception):
    """Something the reader asked for that cannot be done as asked."""


def _doctor(args: argparse.Namespace) -> int:
    reports = doctor.diagnose(tuple(args.stage) if args.stage else doctor.STAGES)
    if args.json:
        print(json.dumps({"stages": {name: report.as_dict() for name, report in reports.items()}}, indent=2))
    else:
        print(doctor.render_text(reports))
    return 0


def _labs_release(args: argparse.Namespace) -> int:
    try:
        written = labs.release(args.source, args.out)
    except labs.LabFormatError as error:
        raise UsageError(str(error)) from None
    for path in written:
        print(f"wrote {path}")
    return 0


def _book(args: argparse.Namespace) -> int:
    try:
        book.serve(args.root, args.ip, args.port)
    except book.BookError as error:
        raise UsageError(str(error)) from None
    return 0


def _in_host_network_namespace() -> bool:
    """True unless this process runs in a named network namespace (``ip netns``, as the lab's pods).

    Conservative on purpose: applying Istio's rules where they do not belong captures every
    outbound connection of the machine, so anything that is not provably a pod counts as the host."""
    try:
        here = os.stat("/proc/self/ns/net").st_ino
        return not any(os.stat(path).st_ino == here for path in Path("/run/netns").glob("*"))
    except OSError:
        return True


def _pod_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 200:
        raise argparse.ArgumentTypeError(f"{text!r} is not a pod count; use 1-200")
    return int(text)


def _istio_iptables(args: argparse.Namespace) -> int:
    try:
        config = istio_flags.config_from(args)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    if not config.dry_run and _in_host_network_namespace() and not args.allow_host:
        raise UsageError("this would change the host's own iptables rules (this is not a named network namespace); run it inside a pod "
                         "(meshlab lab exec POD -- meshlab intercept istio-iptables ...), use --dry-run, or pass --allow-host")
    print(render_commands(config))
    if not config.dry_run:
        try:
            capture_apply.apply(config)
        except capture_apply.ApplyError as error:
            print(f"meshlab intercept: {error}", file=sys.stderr)
            return 1
    return 0


def _lab(args: argparse.Namespace) -> int:
    from meshlab.lab import Lab, LabError, LabUsageError, cleanup

    try:
        if args.lab_command == "up":
            lab = Lab(args.prefix).up(args.pods, nodes=args.nodes, proxy_mode=args.proxy_mode, datapath=args.datapath)
            proxies = "a sidecar each" if args.proxy_mode == "sidecar" else "one proxy per node"
            print(f"lab {args.prefix!r} is up: {len(lab.pods)} pods on {args.nodes} node(s), {proxies}, {args.datapath} datapath; `meshlab lab status --prefix {args.prefix}`")
        elif args.lab_command == "ebpf":
            stats = Lab.attach(args.prefix).ebpf_stats()
            print(json.dumps(stats, indent=2) if args.json else "\n".join(f"{name:<22} {value}" for name, value in stats.items()))
        elif args.lab_command == "status":
            status = Lab.attach(args.prefix).status()
            if args.json:
                print(json.dumps(status, indent=2))
            else:
                print(f"lab {status['prefix']} (datapath {status['datapath']}, proxies: {status['proxy_mode']})")
                for pod in status["pods"]:
                    print(f"  {pod['name']:<8} {pod['node']:<6} {pod['ip']:<15} app :{pod['app_port']}  sidecar: {'yes' if pod['sidecar'] else 'no'}")
        elif args.lab_command == "exec":
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not command:
                raise UsageError("exec needs a command after --, e.g. meshlab lab exec pod0 -- ip addr")
            done = Lab.attach(args.prefix).exec(args.pod, command)
            sys.stdout.write(done.stdout)
            sys.stderr.write(done.stderr)
            return done.returncode
        elif args.lab_command == "logs":
            sys.stdout.write(Lab.attach(args.prefix).logs(args.pod, args.role))
        elif args.lab_command == "down":
            removed = cleanup(args.prefix)  # the state file names what to stop; idempotent
            print(f"lab {args.prefix!r} is down ({removed['processes_stopped']} processes stopped, {len(removed['namespaces_deleted'])} namespaces deleted)")
        else:
            removed = cleanup(args.prefix)
            print(f"cleanup {args.prefix!r}: stopped {removed['processes_stopped']} processes, deleted namespaces: {', '.join(removed['namespaces_deleted']) or 'none'}")
    except LabError as error:
        print(f"meshlab lab: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, LabUsageError) else 1
    return 0


def _deploy_compare(args: argparse.Namespace) -> int:
    from meshlab.deploy import MODELS, TopologyError, compare, load_topology, simulate

    try:
        topology = load_topology(args.topology)
        waypoints = set(filter(None, args.waypoints.split(","))) if args.waypoints is not None else None
        result = compare(topology, waypoints)
        for model in MODELS:
            run = simulate(model, topology, args.failures_per_hour, args.restart_s, seed=args.seed, waypoint_namespaces=waypoints if model == "ambient" else None)
            result["models"][model]["failed_request_fraction"] = round(run.failed_fraction, 5)
    except (TopologyError, ValueError) as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    columns = ("proxies", "memory_mb", "cpu_cores", "blast_radius_max_pods", "keys_per_node_max", "hops_per_request", "l7_fraction", "failed_request_fraction")
    print(f"{'model':<20}" + "".join(f"{c:>{len(c) + 2}}" for c in columns))
    for model, figures in result["models"].items():
        print(f"{model:<20}" + "".join(f"{figures[c]:>{len(c) + 2}}" for c in columns))
    print(f"calibration: {result['calibration']}")
    return 0


def _xds_simulate(args: argparse.Namespace) -> int:
    from meshlab.xds.simulate import TimelineError, simulate_timeline

    try:
        timeline = json.loads(args.timeline.read_text())
        result = simulate_timeline(timeline)
    except OSError as error:
        raise UsageError(f"cannot read {args.timeline}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{args.timeline} is not valid JSON: {error.msg} at line {error.lineno}") from None
    except (TimelineError, ValueError) as error:
        raise UsageError(f"{args.timeline}: {error}") from None
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for push in result["pushes"]:
            kind = "full" if push["full"] else "eds"
            print(f"{push['start_ms']:>10} -> {push['end_ms']:<10} {kind:<4} {push['merged_events']:>3} events  {', '.join(push['configs'])}  {push['reasons']}")
    return 0


def _xds_serve(args: argparse.Namespace) -> int:
    import asyncio

    from meshlab.xds.debounce import DebounceOptions
    from meshlab.xds.server import ControlPlane, bootstrap, load_config

    try:
        services = load_config(json.loads(args.config.read_text()))
    except OSError as error:
        raise UsageError(f"cannot read {args.config}: {error.strerror}") from None
    except (json.JSONDecodeError, ValueError) as error:
        raise UsageError(f"{args.config}: {error}") from None

    async def serve() -> None:
        plane = ControlPlane(DebounceOptions(args.debounce_after_ms, args.debounce_max_ms), args.push_throttle)
        plane.on_exchange = lambda record: print(json.dumps(record), flush=True)
        port = await plane.start(args.port)
        for service in services:
            plane.set_service(service)
        bootstrap(port, path=args.bootstrap)
        print(f"meshlab xds: ADS on 127.0.0.1:{port}; clients: GRPC_XDS_BOOTSTRAP={args.bootstrap}, target xds:///<service>", file=sys.stderr, flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


def _metaprotocol_decode(args: argparse.Namespace) -> int:
    from meshlab.metaprotocol import CODECS, FrameError

    try:
        data = bytes.fromhex(args.hex) if args.hex is not None else args.file.read_bytes()
    except ValueError as error:
        raise UsageError(f"--hex: {error}; give the frame as hexadecimal digits, e.g. 80010001") from None
    except OSError as error:
        raise UsageError(f"cannot read {args.file}: {error.strerror}") from None
    try:
        message = CODECS[args.codec](max_frame_size=args.max_frame_size).decode(data)
    except (FrameError, ValueError) as error:
        raise UsageError(str(error)) from None
    print(json.dumps({"wait_for_data": True} if message is None else message.summary()))
    return 0


def _metaprotocol_proxy(args: argparse.Namespace) -> int:
    """The proxy on ``--listen`` until interrupted; one JSON line when ready, the counters at the end."""
    import asyncio
    import signal

    from meshlab.metaprotocol import CODECS, DirectedCodec
    from meshlab.metaprotocol.proxy import Cluster, MetaProtocolProxy
    from meshlab.metaprotocol.router import MetaRouterError, load_metarouter

    try:
        router = load_metarouter(args.config.read_text())
    except OSError as error:
        raise UsageError(f"cannot read {args.config}: {error.strerror}") from None
    except MetaRouterError as error:
        raise UsageError(f"{args.config}: {error}") from None
    clusters = {}
    for spec in args.cluster:
        name, _, endpoints = spec.partition("=")
        try:
            clusters[name] = Cluster(name, [(host, int(port)) for host, _, port in (e.rpartition(":") for e in endpoints.split(","))])
        except ValueError:
            raise UsageError(f"--cluster {spec!r}: give NAME=HOST:PORT[,HOST:PORT...], NAME being host or host|subset as in the MetaRouter") from None
    host, _, port = args.listen.rpartition(":")
    codec = CODECS[args.codec]

    def make_codec(direction: str):
        return codec(direction=direction) if issubclass(codec, DirectedCodec) else codec()

    async def serve() -> None:
        proxy = MetaProtocolProxy(make_codec, router, clusters, log=lambda record: print(json.dumps(record), flush=True) if args.verbose else None)
        bound = await proxy.start(host or "127.0.0.1", int(port))
        print(json.dumps({"event": "ready", "codec": args.codec, "listen": f"{host or '127.0.0.1'}:{bound}", "clusters": sorted(clusters)}), flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await stop.wait()
        await proxy.stop()
        print(json.dumps({"event": "stopped", "stats": dict(proxy.stats)}), flush=True)

    asyncio.run(serve())
    return 0


def _kind(args: argparse.Namespace) -> int:
    from meshlab.kind import stage
    from meshlab.kind.runner import KindError

    try:
        if args.kind_command == "plan":
            print("\n".join(stage.plan(args.chapter)))
            return 0
        if args.kind_command == "down":
            stage.teardown()
            print(f"kind cluster {stage.CLUSTER_NAME} deleted")
            return 0
        run = stage.run(args.chapter)
    except KindError as error:
        raise UsageError(str(error)) from None
    print(run.text())
    if not run.ran:
        return 1
    return 0 if run.agreed else 1


def _spiffe_parse(args: argparse.Namespace) -> int:
    from meshlab.identity.spiffeid import SpiffeIdError, parse_id

    try:
        spiffe_id = parse_id(args.id)
    except SpiffeIdError as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps({"trust_domain": spiffe_id.trust_domain.name, "path": spiffe_id.path}))
    else:
        print(f"trust domain: {spiffe_id.trust_domain}\npath: {spiffe_id.path or '(none: this is the trust domain ID)'}")
    return 0


def _spire_agent(args: argparse.Namespace) -> int:
    """A SPIRE server and one agent in this process: the agent attests with a join token, then
    serves the Workload API until interrupted, printing each attestation decision as JSON."""
    import asyncio
    import signal

    from meshlab.identity.agent import Agent
    from meshlab.identity.attestation import LabPods
    from meshlab.identity.entries import EntryError, load_entries
    from meshlab.identity.server import SpireServer
    from meshlab.identity.spiffeid import SpiffeIdError, parse_trust_domain

    try:
        server = SpireServer(parse_trust_domain(args.trust_domain))
    except SpiffeIdError as error:
        raise UsageError(f"--trust-domain {args.trust_domain!r}: {error}") from None
    pods = None
    if args.lab:
        from meshlab.lab import Lab, LabError

        try:
            pods = LabPods(Lab.attach(args.lab))
        except LabError as error:
            raise UsageError(f"--lab {args.lab}: {error}") from None
    agent = Agent(server, args.socket, pods)
    agent.attest(server.create_join_token())
    try:
        server.entries = load_entries(args.entries, agent.id)
    except EntryError as error:
        raise UsageError(str(error)) from None

    async def serve() -> None:
        await agent.start()
        print(json.dumps({"event": "ready", "agent": str(agent.id), "socket": str(args.socket), "entries": len(server.entries),
                          "client": f"SPIFFE_ENDPOINT_SOCKET=unix://{args.socket.resolve()}"}), flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        shown = 0
        while not stop.is_set():
            for decision in agent.decisions[shown:]:
                print(json.dumps({"event": "attestation", **decision.__dict__}), flush=True)
            shown = len(agent.decisions)
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except asyncio.TimeoutError:
                pass
        await agent.stop()

    asyncio.run(serve())
    return 0


def _codec_names() -> list[str]:
    from meshlab.metaprotocol import CODECS

    return list(CODECS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshlab", description="How service meshes work inside: the textbook's helper command.")
    parser.add_argument("--version", action="version", version=f"meshlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser("doctor", help="which stages (model, live, ebpf, browser, kind) this machine can run")
    check.add_argument("--json", action="store_true", help="print {\"stages\": {name: {available, reason, fix}}}")
    check.add_argument("--stage", action="append", choices=doctor.STAGES, help="check only this stage (repeatable)")
    check.set_defaults(run=_doctor)

    lab_notebooks = commands.add_parser("labs", help="lab notebooks")
    lab_commands = lab_notebooks.add_subparsers(dest="labs_command", metavar="COMMAND", required=True)
    release = lab_commands.add_parser("release", help="write student copies (solutions replaced by stubs)")
    release.add_argument("--out", type=Path, required=True, help="folder for the student copies")
    release.add_argument("--source", type=Path, default=Path("labs"), help="folder of the solution notebooks (default: labs)")
    release.set_defaults(run=_labs_release)

    intercept = commands.add_parser("intercept", help="transparent interception: Istio's iptables rules")
    intercept_commands = intercept.add_subparsers(dest="intercept_command", metavar="COMMAND", required=True)
    istio_iptables = intercept_commands.add_parser(
        "istio-iptables",
        help="the rules istio-iptables 1.30.3 installs; --dry-run prints them in Istio's golden format",
        description="Generate (and unless --dry-run, apply in the current network namespace) the rules of istio-iptables 1.30.3.",
    )
    istio_flags.add_arguments(istio_iptables)
    istio_iptables.add_argument("--allow-host", action="store_true", help="apply even outside a named network namespace (meshlab refuses by default)")
    istio_iptables.set_defaults(run=_istio_iptables)

    deploy = commands.add_parser("deploy", help="deployment models: sidecar, per-node, per-service-account, ambient")
    deploy_commands = deploy.add_subparsers(dest="deploy_command", metavar="COMMAND", required=True)
    compare = deploy_commands.add_parser("compare", help="compute every model for a topology")
    compare.add_argument("--topology", type=Path, required=True, help='JSON: {"nodes": [{"name"}], "pods": [{"name", "node", "namespace", "service_account", "rps"}], "calls": [{"from", "to", "rps"}]}')
    compare.add_argument("--json", action="store_true")
    compare.add_argument("--waypoints", help="ambient: namespaces that get a waypoint, comma-separated (default: all)")
    compare.add_argument("--failures-per-hour", type=float, default=0.5, help="per proxy, for the availability simulation (default 0.5)")
    compare.add_argument("--restart-s", type=float, default=30.0, help="seconds a failed proxy stays down (default 30)")
    compare.add_argument("--seed", type=int, default=0)
    compare.set_defaults(run=_deploy_compare)

    xds = commands.add_parser("xds", help="the control plane's push pipeline (debounce, push queue) and xDS")
    xds_commands = xds.add_subparsers(dest="xds_command", metavar="COMMAND", required=True)
    simulate = xds_commands.add_parser("simulate", help="simulate Istio's debounce for a timeline of changes")
    simulate.add_argument("--timeline", type=Path, required=True, help='JSON: {"debounce_after_ms", "debounce_max_ms", "enable_eds_debounce", "push_ms", "events": [{"t_ms", "full", "configs", "reason"}]}')
    simulate.add_argument("--json", action="store_true", help='print {"pushes": [{"start_ms", "end_ms", "full", "configs", "reasons", "merged_events"}]}')
    simulate.set_defaults(run=_xds_simulate)
    serve_xds = xds_commands.add_parser("serve", help="run the live ADS control plane (gRPC xDS clients connect to it)")
    serve_xds.add_argument("--config", type=Path, required=True, help='JSON: {"services": [{"name", "routes": {cluster: weight}, "clusters": {cluster: ["host:port"]}}]}')
    serve_xds.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    serve_xds.add_argument("--bootstrap", type=Path, default=Path("xds-bootstrap.json"), help="where to write the clients' bootstrap file")
    serve_xds.add_argument("--debounce-after-ms", type=float, default=100.0)
    serve_xds.add_argument("--debounce-max-ms", type=float, default=10_000.0)
    serve_xds.add_argument("--push-throttle", type=int, default=0, help="0: automatic, as PILOT_PUSH_THROTTLE")
    serve_xds.set_defaults(run=_xds_serve)

    lab = commands.add_parser("lab", help="the embedded live lab: pods as network namespaces with Istio's rules and sidecars")
    lab_commands = lab.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)
    prefix = argparse.ArgumentParser(add_help=False)
    prefix.add_argument("--prefix", default="ml", help="prefix of everything the lab creates (default ml)")
    up = lab_commands.add_parser("up", parents=[prefix], help="create pods with sidecars")
    up.add_argument("--pods", type=_pod_count, default=2, help="number of pods (1-200, default 2), spread over the nodes")
    up.add_argument("--nodes", type=int, choices=range(1, 9), default=1, metavar="N", help="number of nodes (1-8, default 1)")
    up.add_argument("--proxy-mode", choices=("sidecar", "per-node"), default="sidecar", help="a sidecar per pod, or one shared proxy per node")
    up.add_argument("--datapath", choices=("iptables", "ebpf"), default="iptables", help="outbound capture by Istio's iptables rules (default) or by eBPF (connect4 + sockops + sk_msg)")
    ebpf = lab_commands.add_parser("ebpf", help="the eBPF datapath of a lab started with --datapath ebpf")
    ebpf_commands = ebpf.add_subparsers(dest="ebpf_command", metavar="COMMAND", required=True)
    stats = ebpf_commands.add_parser("stats", parents=[prefix], help="the datapath's counters")
    stats.add_argument("--json", action="store_true")
    status = lab_commands.add_parser("status", parents=[prefix], help="the lab's pods")
    status.add_argument("--json", action="store_true", help='print {"prefix", "datapath", "pods": [{"name", "ip", "app_port", "sidecar"}]}')
    run_in = lab_commands.add_parser("exec", parents=[prefix], help="run a command in a pod's network namespace")
    run_in.add_argument("pod")
    run_in.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ...")
    logs = lab_commands.add_parser("logs", parents=[prefix], help="a pod's sidecar or app log")
    logs.add_argument("pod", help="a pod, or a node (node0, ...) for node-proxy")
    logs.add_argument("role", choices=("sidecar", "app", "node-proxy"))
    lab_commands.add_parser("down", parents=[prefix], help="stop the lab and remove everything it created")
    lab_commands.add_parser("cleanup", parents=[prefix], help="remove everything carrying the prefix (after a crash)")
    lab.set_defaults(run=_lab)

    meta = commands.add_parser("metaprotocol", help="MetaProtocol codecs")
    meta_commands = meta.add_subparsers(dest="metaprotocol_command", metavar="COMMAND", required=True)
    decode = meta_commands.add_parser("decode", help="decode one frame: message type, request id, metadata, bytes consumed")
    decode.add_argument("--codec", required=True, choices=sorted(_codec_names()))
    frame = decode.add_mutually_exclusive_group(required=True)
    frame.add_argument("--hex", help="the frame as hexadecimal digits")
    frame.add_argument("--file", type=Path, help="a file holding the frame's bytes")
    decode.add_argument("--max-frame-size", type=int, default=16 * 1024 * 1024, help="larger frames are refused (default 16 MiB)")
    decode.set_defaults(run=_metaprotocol_decode)
    proxy = meta_commands.add_parser("proxy", help="run the MetaProtocol proxy with a MetaRouter")
    proxy.add_argument("--config", type=Path, required=True, help="a MetaRouter YAML (metaprotocol.aeraki.io/v1alpha1)")
    proxy.add_argument("--codec", required=True, choices=sorted(_codec_names()))
    proxy.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default 127.0.0.1 and a free port)")
    proxy.add_argument("--cluster", action="append", default=[], metavar="NAME=HOST:PORT[,...]", help="endpoints of host or host|subset (repeat)")
    proxy.add_argument("--verbose", action="store_true", help="print every local answer and error as JSON")
    proxy.set_defaults(run=_metaprotocol_proxy)

    spiffe = commands.add_parser("spiffe", help="SPIFFE IDs")
    spiffe_commands = spiffe.add_subparsers(dest="spiffe_command", metavar="COMMAND", required=True)
    parse = spiffe_commands.add_parser("parse", help="validate a SPIFFE ID (go-spiffe's rules) and show its parts")
    parse.add_argument("id")
    parse.add_argument("--json", action="store_true", help='print {"trust_domain", "path"}')
    parse.set_defaults(run=_spiffe_parse)

    spire = commands.add_parser("spire", help="a SPIRE-style server and agent")
    spire_commands = spire.add_subparsers(dest="spire_command", metavar="COMMAND", required=True)
    agent = spire_commands.add_parser("agent", help="serve the SPIFFE Workload API on a Unix socket")
    agent.add_argument("--trust-domain", required=True, help="e.g. meshlab.test")
    agent.add_argument("--socket", type=Path, required=True, help="the Workload API's Unix socket path")
    agent.add_argument("--entries", type=Path, required=True, help='JSON list of {"spiffe_id", "selectors": ["unix:uid:0", ...], "ttl"}')
    agent.add_argument("--lab", metavar="PREFIX", help="also attest live-lab pods (k8s:* selectors) of this running lab")
    agent.set_defaults(run=_spire_agent)

    kind = commands.add_parser("kind", help="the kind stage: real Kubernetes and Istio (needs Docker, kind, kubectl, istioctl)")
    kind_commands = kind.add_subparsers(dest="kind_command", metavar="COMMAND", required=True)
    for name, text in (("plan", "print the commands a chapter's kind section runs"), ("run", "run a chapter's comparison on the kind cluster 'meshlab'")):
        command = kind_commands.add_parser(name, help=text)
        command.add_argument("chapter", help="02, 04 or 06: the chapters with an 'On a real cluster' section")
        command.set_defaults(run=_kind)
    kind_commands.add_parser("down", help="delete the kind cluster 'meshlab'").set_defaults(run=_kind)

    serve = commands.add_parser("book", help="open the textbook in JupyterLab (what make lab runs)")
    serve.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8888, help="port to listen on (default 8888)")
    serve.add_argument("--root", type=Path, default=Path("."), help="repository root (default: the current folder)")
    serve.set_defaults(run=_book)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UsageError as error:
        print(f"meshlab {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

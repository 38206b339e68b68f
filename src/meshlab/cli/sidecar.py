"""``meshlab sidecar validate|scope`` (Istio's Sidecar resource: its checks, what a proxy is sent) and
``meshlab lazyload simulate`` (the model's sizes: unscoped, hand-written Sidecars, lazy loading)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from meshlab.cli.common import UsageError, read_text

MAX_SERVICES = 10_000  # growing the call graph is quadratic in its size: 5,000 services take seconds


def _resources(paths: list[Path]):
    from meshlab.scoping.sidecar import SidecarError, parse_resources

    sidecars, pods = [], []
    for path in paths:
        try:
            found = parse_resources(read_text(path))
        except SidecarError as error:
            raise UsageError(f"{path}: {error}") from None
        sidecars += found[0]
        pods += found[1]
    return sidecars, pods


def _validate(args: argparse.Namespace) -> int:
    from meshlab.scoping.sidecar import analyze

    sidecars, pods = _resources(args.files)
    findings = analyze(sidecars, pods or None)
    if args.json:
        print(json.dumps([vars(f) for f in findings], indent=2))
    else:
        for finding in findings:
            print(finding)
        if not findings:
            print(f"no validation issues in {len(sidecars)} Sidecar(s)")
    return 2 if any(f.level == "Error" for f in findings) else 0


def _workload_name(text: str) -> tuple[str, str]:
    namespace, slash, name = text.partition("/")
    if not slash or not namespace or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAMESPACE/NAME, e.g. shop/reviews-v1")
    return namespace, name


def _scope(args: argparse.Namespace) -> int:
    from meshlab.scoping.scope import PushContext, RegistryError, Workload, load_registry
    from meshlab.scoping.sidecar import validate

    try:
        services, workloads = load_registry(json.loads(read_text(args.services)))
    except json.JSONDecodeError as error:
        raise UsageError(f"{args.services} is not valid JSON: {error.msg} at line {error.lineno}") from None
    except RegistryError as error:
        raise UsageError(f"{args.services}: {error}") from None
    sidecars, pods = _resources(args.sidecars)
    errors = [f for s in sidecars for f in validate(s) if f.level == "Error"]
    if errors:
        raise UsageError(f"istiod would refuse {errors[0].resource}: {errors[0].message}")
    known = {(w.namespace, w.name): w for w in workloads} | {(p.namespace, p.name): Workload(p.namespace, p.name, p.labels) for p in pods}
    workload = known.get(args.workload)
    if workload is None:
        names = ", ".join(f"{ns}/{name}" for ns, name in sorted(known)) or "none (list them under \"workloads\", or give their Pods)"
        raise UsageError(f"no workload {args.workload[0]}/{args.workload[1]}; workloads: {names}")
    context = PushContext(services, sidecars, args.root_namespace)
    sidecar = context.sidecar_for(workload)
    scope = context.scope_of(sidecar, workload.namespace)
    config = scope.proxy_config()
    if args.json:
        print(json.dumps({"workload": f"{workload.namespace}/{workload.name}", "sidecar": None if sidecar is None else f"{sidecar.namespace}/{sidecar.name}",
                          "outboundTrafficPolicy": scope.outbound_traffic_policy, "services": [s.hostname for s in scope.services],
                          "clusters": scope.clusters(), "routes": scope.routes(), "listeners": scope.listeners(),
                          "counts": {"listeners": config.listeners, "clusters": config.clusters, "endpoints": config.endpoints}}, indent=2))
        return 0
    labels = ", ".join(f"{k}={v}" for k, v in sorted(workload.labels.items())) or "no labels"
    if sidecar is None:
        source = "no Sidecar applies: the default scope (every service exported to its namespace)"
    elif sidecar.namespace != workload.namespace:
        source = f"Sidecar {sidecar.namespace}/{sidecar.name} (the root namespace's, for every namespace without its own)"
    else:
        source = f"Sidecar {sidecar.namespace}/{sidecar.name}"
    print(f"workload {workload.namespace}/{workload.name} ({labels}): {source}; outboundTrafficPolicy {scope.outbound_traffic_policy}")
    print(f"services ({len(scope.services)}): {', '.join(s.hostname for s in scope.services) or 'none'}")
    print(f"clusters ({config.clusters}):")
    for name, endpoints in scope.clusters().items():
        print(f"  {name}  {endpoints} endpoint(s)")
    print(f"routes ({len(scope.routes())}):")
    for name, hosts in scope.routes().items():
        print(f"  {name}: {', '.join(hosts)}")
    print(f"listeners ({config.listeners}): {', '.join(scope.listeners()) or 'none'}")
    print(f"total: {config.listeners} listeners, {config.clusters} clusters, {config.endpoints} endpoints")
    return 0


def _service_count(text: str) -> int:
    if not text.isdigit() or not 2 <= int(text) <= MAX_SERVICES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of services 2-{MAX_SERVICES}")
    return int(text)


def _simulate(args: argparse.Namespace) -> int:
    from meshlab.scoping.sizes import WARMUP_S, measure, mesh_model

    model = mesh_model(args.services, args.seed)
    figures = measure(model, args.seed)
    if args.json:
        print(json.dumps({"services": args.services, "seed": args.seed, "strategies": [f.as_dict() for f in figures]}, indent=2))
        return 0
    lazy = figures[-1]
    print(f"{args.services} services (chapter 01's call graph, seed {args.seed}), {model.dependencies} dependencies")
    print(f"lazy loading's warm-up: {lazy.detours} first calls within {WARMUP_S:.0f} s went through the global sidecar")
    print(f"{'strategy':<13} {'proxies':>7} {'services':>8} {'resources':>9} {'Envoy MB':>8} {'push MB/change':>14} {'push ms/change':>14} {'istiod MB':>9}")
    for f in figures:
        print(f"{f.strategy:<13} {f.proxies:>7} {f.services_per_proxy:>8.1f} {f.resources_per_proxy:>9.0f} {f.envoy_mb:>8.1f} "
              f"{f.push_bytes_per_change / 1e6:>14.2f} {f.push_ms_per_change:>14.0f} {f.istiod_mb:>9.0f}")
    print("per proxy (mean): services, resources, Envoy MB; per change to one service (mean): push MB, ms")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    sidecar = commands.add_parser("sidecar", help="Istio's Sidecar resource: its checks, and what a proxy is sent")
    sidecar_commands = sidecar.add_subparsers(dest="sidecar_command", metavar="COMMAND", required=True)
    validate = sidecar_commands.add_parser("validate", help="check Sidecars with Istio's rules and messages (exit 2 if one is invalid)")
    validate.add_argument("files", type=Path, nargs="+", metavar="FILE", help="YAML: Sidecars, and Pods for the selector checks")
    validate.add_argument("--json", action="store_true", help='print [{"level", "code", "resource", "message"}]')
    validate.set_defaults(run=_validate)
    scope = sidecar_commands.add_parser("scope", help="what one workload's proxy would be sent")
    scope.add_argument("--services", type=Path, required=True,
                       help='JSON: {"services": [{"hostname", "namespace", "ports": [{"number", "protocol", "name"}], "endpoints", "exportTo"}], '
                            '"workloads": [{"namespace", "name", "labels"}]}')
    scope.add_argument("--sidecars", type=Path, nargs="*", default=[], metavar="FILE", help="YAML: the Sidecars in force (and Pods)")
    scope.add_argument("--workload", type=_workload_name, required=True, metavar="NS/NAME", help="the workload whose proxy to show")
    scope.add_argument("--root-namespace", default="istio-system", help="the mesh's root namespace (default istio-system)")
    scope.add_argument("--json", action="store_true", help='print {"workload", "sidecar", "services", "clusters", "routes", "listeners", "counts"}')
    scope.set_defaults(run=_scope)
    lazyload = commands.add_parser("lazyload", help="lazy loading (Slime) on the model: what each way of scoping costs")
    lazyload_commands = lazyload.add_subparsers(dest="lazyload_command", metavar="COMMAND", required=True)
    simulate = lazyload_commands.add_parser("simulate", help="unscoped vs hand-written Sidecars vs lazy loading, for one mesh size")
    simulate.add_argument("--services", type=_service_count, required=True, help=f"services in the mesh, 2-{MAX_SERVICES}")
    simulate.add_argument("--seed", type=int, default=0, help="the call graph's seed (default 0)")
    simulate.add_argument("--json", action="store_true", help='print {"services", "seed", "strategies": [...]}')
    simulate.set_defaults(run=_simulate)

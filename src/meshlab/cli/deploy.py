"""``meshlab deploy compare``: the four deployment models computed for a topology."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from meshlab.cli.common import UsageError

COLUMNS = ("proxies", "memory_mb", "cpu_cores", "blast_radius_max_pods", "keys_per_node_max", "hops_per_request", "l7_fraction", "failed_request_fraction")


def _compare(args: argparse.Namespace) -> int:
    from meshlab.deploy import MODELS, TopologyError, compare, load_topology, simulate

    try:
        topology = load_topology(args.topology)
        waypoints = set(filter(None, args.waypoints.split(","))) if args.waypoints is not None else None
        result = compare(topology, waypoints)
        for model in MODELS:
            run = simulate(model, topology, args.failures_per_hour, args.restart_s, seed=args.seed,
                           waypoint_namespaces=waypoints if model == "ambient" else None)
            result["models"][model]["failed_request_fraction"] = round(run.failed_fraction, 5)
    except (TopologyError, ValueError) as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'model':<20}" + "".join(f"{c:>{len(c) + 2}}" for c in COLUMNS))
    for model, figures in result["models"].items():
        print(f"{model:<20}" + "".join(f"{figures[c]:>{len(c) + 2}}" for c in COLUMNS))
    print(f"calibration: {result['calibration']}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    deploy = commands.add_parser("deploy", help="deployment models: sidecar, per-node, per-service-account, ambient")
    deploy_commands = deploy.add_subparsers(dest="deploy_command", metavar="COMMAND", required=True)
    compare = deploy_commands.add_parser("compare", help="compute every model for a topology")
    compare.add_argument("--topology", type=Path, required=True,
                         help='JSON: {"nodes": [{"name"}], "pods": [{"name", "node", "namespace", "service_account", "rps"}], "calls": [{"from", "to", "rps"}]}')
    compare.add_argument("--json", action="store_true")
    compare.add_argument("--waypoints", help="ambient: namespaces that get a waypoint, comma-separated (default: all)")
    compare.add_argument("--failures-per-hour", type=float, default=0.5, help="per proxy, for the availability simulation (default 0.5)")
    compare.add_argument("--restart-s", type=float, default=30.0, help="seconds a failed proxy stays down (default 30)")
    compare.add_argument("--seed", type=int, default=0)
    compare.set_defaults(run=_compare)

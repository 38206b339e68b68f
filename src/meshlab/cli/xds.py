"""``meshlab xds simulate`` (Istio's debounce on a timeline) and ``meshlab xds serve`` (the live ADS
control plane, until SIGINT or SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from meshlab.cli.common import UsageError, port_number, read_text, until_stopped


def _simulate(args: argparse.Namespace) -> int:
    from meshlab.xds.simulate import TimelineError, simulate_timeline

    try:
        result = simulate_timeline(json.loads(read_text(args.timeline)))
    except json.JSONDecodeError as error:
        raise UsageError(f"{args.timeline} is not valid JSON: {error.msg} at line {error.lineno}") from None
    except (TimelineError, ValueError) as error:
        raise UsageError(f"{args.timeline}: {error}") from None
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for push in result["pushes"]:
        kind = "full" if push["full"] else "eds"
        print(f"{push['start_ms']:>10} -> {push['end_ms']:<10} {kind:<4} {push['merged_events']:>3} events  {', '.join(push['configs'])}  {push['reasons']}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from meshlab.xds.debounce import DebounceOptions
    from meshlab.xds.server import ControlPlane, bootstrap, load_config

    try:
        services = load_config(json.loads(read_text(args.config)))
    except (json.JSONDecodeError, ValueError) as error:
        raise UsageError(f"{args.config}: {error}") from None

    async def serve() -> None:
        plane = ControlPlane(DebounceOptions(args.debounce_after_ms, args.debounce_max_ms), args.push_throttle)
        plane.on_exchange = lambda record: print(json.dumps(record), flush=True)
        stop = until_stopped()
        port = await plane.start(args.port)
        for service in services:
            plane.set_service(service)
        bootstrap(port, path=args.bootstrap)
        print(f"meshlab xds: ADS on 127.0.0.1:{port}; clients: GRPC_XDS_BOOTSTRAP={args.bootstrap}, target xds:///<service>", file=sys.stderr, flush=True)
        await stop.wait()
        await plane.stop()
        print("meshlab xds: stopped", file=sys.stderr, flush=True)

    asyncio.run(serve())
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    xds = commands.add_parser("xds", help="the control plane's push pipeline (debounce, push queue) and xDS")
    xds_commands = xds.add_subparsers(dest="xds_command", metavar="COMMAND", required=True)
    simulate = xds_commands.add_parser("simulate", help="simulate Istio's debounce for a timeline of changes")
    simulate.add_argument("--timeline", type=Path, required=True,
                          help='JSON: {"debounce_after_ms", "debounce_max_ms", "enable_eds_debounce", "push_ms", "events": [{"t_ms", "full", "configs", "reason"}]}')
    simulate.add_argument("--json", action="store_true", help='print {"pushes": [{"start_ms", "end_ms", "full", "configs", "reasons", "merged_events"}]}')
    simulate.set_defaults(run=_simulate)
    serve = xds_commands.add_parser("serve", help="run the live ADS control plane (gRPC xDS clients connect to it)")
    serve.add_argument("--config", type=Path, required=True, help='JSON: {"services": [{"name", "routes": {cluster: weight}, "clusters": {cluster: ["host:port"]}}]}')
    serve.add_argument("--port", type=port_number, default=0, help="port on 127.0.0.1 (default: any free port)")
    serve.add_argument("--bootstrap", type=Path, default=Path("xds-bootstrap.json"), help="where to write the clients' bootstrap file")
    serve.add_argument("--debounce-after-ms", type=float, default=100.0)
    serve.add_argument("--debounce-max-ms", type=float, default=10_000.0)
    serve.add_argument("--push-throttle", type=int, default=0, help="0: automatic, as PILOT_PUSH_THROTTLE")
    serve.set_defaults(run=_serve)

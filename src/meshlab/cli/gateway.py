"""``meshlab gateway``: the Gateway API translated into Envoy's terms, one request matched, and the
gateway proxy served, one handler per subcommand.

    translate   -f FILE [--json]: the routes (route configurations, virtual hosts, routes) and every resource's status
    match       -f FILE --host H --path P [--method M] [--header K=V ...] [--port N] [--json]: the backends
                with weights, or "no route" and why (exit 1)
    serve       -f FILE --listen ADDR --backend NAME=HOST:PORT ...: the gateway proxy, until SIGINT or SIGTERM

A file that is not valid YAML, or holds a field the Gateway API does not know, exits 2 naming the
resource and the field, like every usage error. Where the Gateway API's Go module is in Go's module
cache (the upstream stage), files are validated by its CRDs too, their CEL rules included.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from meshlab.cli.common import UsageError, host_port, port_number, read_text, until_stopped


def _load(path: Path):
    from meshlab.gateway import GatewayAPIError, load, translate
    from meshlab.upstream.gatewayapi import cached_crds

    try:
        resources = load(read_text(path), crds=cached_crds())
        return resources, translate(resources)
    except GatewayAPIError as error:
        raise UsageError(f"{path}: {error}") from None


def _listener_port(resources, asked: int | None) -> int:
    """The Gateway listener port requests arrive on: ``--port``, or the only one the file has."""
    ports = sorted({listener.port for gateway in resources.gateways for listener in gateway.spec.listeners})
    if asked is not None and asked not in ports:
        raise UsageError(f"no Gateway listener on port {asked}; the file's listeners use {', '.join(map(str, ports)) or 'no port'}")
    if asked is None and len(ports) != 1:
        raise UsageError(f"the file's Gateways listen on ports {', '.join(map(str, ports)) or '(none)'}; choose one with --port")
    port = ports[0] if asked is None else asked
    gateways = sorted(str(g) for g in resources.gateways if any(listener.port == port for listener in g.spec.listeners))
    if len(gateways) > 1:
        raise UsageError(f"several Gateways listen on port {port} ({', '.join(gateways)}); meshlab gateway takes one Gateway per port: "
                         f"put each in its own file")
    return port


def _matcher_text(name: str, matcher: dict) -> str:
    """A header or query matcher as ``name=value``, ``name~regex``, ``name=prefix*`` ... or ``name present``."""
    string = matcher.get("stringMatch")
    if string is None:
        text = f"{name} {'present' if matcher.get('presentMatch', True) else 'absent'}"
    elif "safeRegex" in string:
        text = f"{name}~{string['safeRegex']['regex']}"
    else:
        kind, value = next((k, v) for k, v in string.items() if k != "ignoreCase")
        text = name + "=" + {"exact": value, "prefix": f"{value}*", "suffix": f"*{value}", "contains": f"*{value}*"}[kind]
    return f"not {text}" if matcher.get("invertMatch") else text


def _match_text(match: dict) -> str:
    """An Envoy RouteMatch in a few words: path specifier, then headers and query parameters."""
    path = next((f"{key} {match[key]}" if key != "safeRegex" else f"regex {match[key]['regex']}"
                 for key in ("path", "prefix", "pathSeparatedPrefix", "safeRegex") if key in match), "any path")
    headers = [_matcher_text(header["name"], header) for header in match.get("headers", [])]
    query = ["?" + _matcher_text(parameter["name"], parameter) for parameter in match.get("queryParameters", [])]
    return " ".join([path, *headers, *query])


def _action_text(route: dict, endpoints: list[dict]) -> str:
    from meshlab.gateway.envoy import backends_of

    if "redirect" in route:
        return "redirect " + json.dumps(route["redirect"], separators=(",", ":"))
    if "directResponse" in route:
        return f"direct response {route['directResponse'].get('status')}"
    backends = backends_of(route, endpoints)
    return ", ".join(str(backend) for backend in backends) or "no backends"


def _translate(args: argparse.Namespace) -> int:
    _, translation = _load(args.file)
    if args.json:
        print(json.dumps({"listeners": translation.listeners, "route_configs": translation.route_configs, "clusters": translation.clusters,
                          "endpoints": translation.endpoints, "statuses": [asdict(status) for status in translation.statuses]}, indent=1))
        return 0
    for config in translation.route_configs:
        print(f"route configuration {config['name']}")
        for virtual_host in config.get("virtualHosts", []):
            print(f"  virtual host {virtual_host.get('name', '')}: {', '.join(virtual_host.get('domains', []))}")
            for route in virtual_host.get("routes", []):
                print(f"    {_match_text(route.get('match', {}))} -> {_action_text(route, translation.endpoints)}")
    print("status")
    for status in translation.statuses:
        where = "".join(f" {label} {value}" for label, value in (("parent", status.parent), ("listener", status.listener)) if value)
        conditions = ", ".join(f"{c.type}={c.status} ({c.reason})" for c in status.conditions)
        print(f"  {status.kind} {status.namespace + '/' if status.namespace else ''}{status.name}{where}: {conditions}")
    return 0


def _header(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not a header as NAME=VALUE, e.g. x-canary=true")
    return name, value


def _match(args: argparse.Namespace) -> int:
    from meshlab.gateway import Request, match

    resources, translation = _load(args.file)
    try:
        request = Request(args.host, args.path, args.method, dict(args.header))
    except ValueError as error:
        raise UsageError(str(error)) from None
    decision = match(translation, request, port=_listener_port(resources, args.port))
    if args.json:
        print(json.dumps({"backends": [asdict(backend) for backend in decision.backends], "route": decision.route, "redirect": decision.redirect,
                          "direct_response": decision.direct_response, "filters": decision.filters, "reason": decision.reason}, indent=1))
    else:
        print(decision if decision.route or decision.backends else f"no route: {decision.reason}")
    return 0 if decision.route or decision.backends or decision.redirect or decision.direct_response else 1


def _backend(text: str) -> tuple[str, str]:
    name, equals, address = text.partition("=")
    host, colon, port = address.rpartition(":")
    if not equals or not name or not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=HOST:PORT (NAME a Service as name or namespace/name), e.g. default/web=127.0.0.1:8080")
    return name, address


def _envoy_json(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error.msg}); give Envoy's protojson, e.g. '{{\"consecutive5xx\": 3}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("give a JSON object in Envoy's protojson")
    return value


def _serve(args: argparse.Namespace) -> int:
    from meshlab.gateway.health import HealthCheck, OutlierDetection
    from meshlab.gateway.proxy import GatewayProxy
    from meshlab.lab.sidecar import new_event_loop

    resources, translation = _load(args.file)
    endpoints: dict[str, list[str]] = {}
    for name, address in args.backend:
        endpoints.setdefault(name, []).append(address)
    try:
        health_check = HealthCheck.from_envoy(args.health_check) if args.health_check else None
        outlier_detection = OutlierDetection.from_envoy(args.outlier_detection) if args.outlier_detection else None
        proxy = GatewayProxy(translation, endpoints, _listener_port(resources, args.port), health_check=health_check, outlier_detection=outlier_detection)
    except ValueError as error:
        raise UsageError(str(error)) from None

    async def serve() -> None:
        stop = until_stopped()
        try:
            port = await proxy.start(*args.listen)
        except OSError as error:
            raise UsageError(f"cannot listen on {args.listen[0]}:{args.listen[1]}: {error.strerror}") from None
        print(f"meshlab gateway: listening on {args.listen[0]}:{port}; one JSON record per request on standard output", file=sys.stderr, flush=True)
        for service in proxy.upstreams.unresolved():
            print(f"meshlab gateway: no endpoints for {service} (add --backend {service.rpartition(':')[0]}=HOST:PORT): no request goes there",
                  file=sys.stderr, flush=True)
        await stop.wait()
        await proxy.stop()
        print("meshlab gateway: stopped", file=sys.stderr, flush=True)

    loop = new_event_loop()  # uvloop where installed, as the lab's gateways run
    try:
        loop.run_until_complete(serve())
    finally:
        loop.close()
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    gateway = commands.add_parser("gateway", help="the Gateway API in Envoy's terms: translate, match a request, serve the gateway proxy")
    gateway_commands = gateway.add_subparsers(dest="gateway_command", metavar="COMMAND", required=True)
    source = argparse.ArgumentParser(add_help=False)
    source.add_argument("-f", "--file", type=Path, required=True, help="Gateway API YAML: GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant, Service")
    listener = argparse.ArgumentParser(add_help=False)
    listener.add_argument("--port", type=port_number, help="the Gateway listener port requests arrive on (default: the file's only one)")

    translate = gateway_commands.add_parser("translate", parents=[source], help="the route configurations Envoy gets, and every resource's status")
    translate.add_argument("--json", action="store_true", help='print {"listeners", "route_configs", "clusters", "endpoints", "statuses"} in protojson')
    translate.set_defaults(run=_translate)

    match = gateway_commands.add_parser("match", parents=[source, listener], help="which backends one request goes to (exit 1: no route)")
    match.add_argument("--host", required=True, help="the request's Host (:authority), e.g. shop.example.com")
    match.add_argument("--path", required=True, help="the request's path, query included, e.g. /api/cart?id=1")
    match.add_argument("--method", default="GET")
    match.add_argument("--header", type=_header, action="append", default=[], metavar="K=V", help="a request header (repeat for more)")
    match.add_argument("--json", action="store_true", help='print {"backends", "route", "redirect", "direct_response", "filters", "reason"}')
    match.set_defaults(run=_match)

    serve = gateway_commands.add_parser("serve", parents=[source, listener], help="run the gateway proxy on the file's routes")
    serve.add_argument("--listen", type=host_port, required=True, metavar="ADDR", help="HOST:PORT to listen on (port 0: any free port)")
    serve.add_argument("--backend", type=_backend, action="append", default=[], metavar="NAME=HOST:PORT",
                       help="an endpoint of a Service the routes name (name or namespace/name; repeat for more endpoints and Services)")
    serve.add_argument("--health-check", type=_envoy_json, metavar="JSON",
                       help='Envoy\'s HealthCheck for every cluster, e.g. \'{"timeout": "1s", "interval": "3s", "unhealthyThreshold": 3, '
                            '"healthyThreshold": 1, "httpHealthCheck": {"path": "/healthz", "host": "shop.example.com"}}\'')
    serve.add_argument("--outlier-detection", type=_envoy_json, metavar="JSON",
                       help='Envoy\'s OutlierDetection for every cluster (Envoy\'s defaults otherwise), e.g. \'{"consecutive5xx": 3, "maxEjectionPercent": 50}\'')
    serve.set_defaults(run=_serve)

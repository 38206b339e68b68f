"""``meshlab spiffe parse`` (a SPIFFE ID under go-spiffe's rules) and ``meshlab spire agent`` (a
SPIRE-style server and agent serving the Workload API, until SIGINT or SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from meshlab.cli.common import UsageError, until_stopped


def _parse(args: argparse.Namespace) -> int:
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


def _lab_pods(prefix: str):
    from meshlab.lab import Lab, LabError
    from meshlab.lab.identity import LabPods

    try:
        return LabPods(Lab.attach(prefix))
    except LabError as error:
        raise UsageError(f"--lab {prefix}: {error}") from None


def _agent(args: argparse.Namespace) -> int:
    """A SPIRE server and one agent in this process: the agent attests with a join token, then
    serves the Workload API, printing each attestation decision as JSON."""
    from meshlab.identity.agent import attested_agent
    from meshlab.identity.entries import EntryError
    from meshlab.identity.spiffeid import SpiffeIdError, parse_trust_domain

    try:
        trust_domain = parse_trust_domain(args.trust_domain)
    except SpiffeIdError as error:
        raise UsageError(f"--trust-domain {args.trust_domain!r}: {error}") from None
    try:
        agent = attested_agent(trust_domain, args.socket, args.entries, _lab_pods(args.lab) if args.lab else None)
    except EntryError as error:
        raise UsageError(str(error)) from None
    server = agent.server

    async def serve() -> None:
        stop = until_stopped()
        await agent.start()
        print(json.dumps({"event": "ready", "agent": str(agent.id), "socket": str(args.socket), "entries": len(server.entries),
                          "client": f"SPIFFE_ENDPOINT_SOCKET=unix://{args.socket.resolve()}"}), flush=True)
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


def register(commands: argparse._SubParsersAction) -> None:
    spiffe = commands.add_parser("spiffe", help="SPIFFE IDs")
    spiffe_commands = spiffe.add_subparsers(dest="spiffe_command", metavar="COMMAND", required=True)
    parse = spiffe_commands.add_parser("parse", help="validate a SPIFFE ID (go-spiffe's rules) and show its parts")
    parse.add_argument("id")
    parse.add_argument("--json", action="store_true", help='print {"trust_domain", "path"}')
    parse.set_defaults(run=_parse)

    spire = commands.add_parser("spire", help="a SPIRE-style server and agent")
    spire_commands = spire.add_subparsers(dest="spire_command", metavar="COMMAND", required=True)
    agent = spire_commands.add_parser("agent", help="serve the SPIFFE Workload API on a Unix socket")
    agent.add_argument("--trust-domain", required=True, help="e.g. meshlab.test")
    agent.add_argument("--socket", type=Path, required=True, help="the Workload API's Unix socket path")
    agent.add_argument("--entries", type=Path, required=True, help='JSON list of {"spiffe_id", "selectors": ["unix:uid:0", ...], "ttl"}')
    agent.add_argument("--lab", metavar="PREFIX", help="also attest live-lab pods (k8s:* selectors) of this running lab")
    agent.set_defaults(run=_agent)

"""The ``meshlab`` command: one module per domain, each registering its subcommands, one handler each.

    meshlab doctor [--json] [--stage S]   which stages run here, why not, and the fix     (cli.book)
    meshlab labs release --out DIR        student copies of the labs                      (cli.book)
    meshlab labs course DIR               the labs as an nbgrader course (nbgrader's copies)  (cli.book)
    meshlab book [--ip IP] [--port N]     open the textbook in JupyterLab (make lab)      (cli.book)
    meshlab classroom up|status|down|preflight  a workshop's JupyterHub; what the room can run  (cli.classroom)
    meshlab intercept istio-iptables ...  Istio's capture rules (--dry-run prints them)   (cli.intercept)
    meshlab intercept compare A B         two rule texts compared as iptables holds them  (cli.intercept)
    meshlab lab up|status|exec|logs|ebpf|down|cleanup   the embedded live lab              (cli.lab)
    meshlab gateway translate|match|serve the Gateway API in Envoy's terms; the gateway proxy  (cli.gateway)
    meshlab deploy compare --topology FILE  the four deployment models, computed          (cli.deploy)
    meshlab xds simulate|serve            Istio's debounce on a timeline; the live ADS server  (cli.xds)
    meshlab sidecar validate|scope, lazyload simulate   Sidecar checks, a proxy's scope, lazy loading's sizes  (cli.sidecar)
    meshlab metaprotocol decode|proxy     one frame's metadata; the MetaProtocol proxy    (cli.metaprotocol)
    meshlab spiffe parse ID | spire agent ...   SPIFFE IDs; the Workload API               (cli.identity)
    meshlab upstream source|install|path|list   the upstream programs, built from pinned modules  (cli.upstream)
    meshlab kind plan|run CHAPTER | down  the kind stage: a chapter's comparison on a real cluster  (cli.kind)

Errors the reader can fix (a busy port, a malformed file, a bad value) are printed as one line
naming what was wrong and what is accepted, with exit code 2, like argparse's own. Servers run until
SIGINT or SIGTERM and then stop what they started.
"""

from __future__ import annotations

import argparse
import sys

from meshlab import __version__
from meshlab.cli import book, classroom, deploy, gateway, identity, intercept, kind, lab, metaprotocol, sidecar, upstream, xds
from meshlab.cli.common import UsageError

DOMAINS = (book, classroom, intercept, lab, gateway, deploy, xds, sidecar, metaprotocol, identity, upstream, kind)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshlab", description="How service meshes work inside: the textbook's helper command.")
    parser.add_argument("--version", action="version", version=f"meshlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for domain in DOMAINS:
        domain.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as error:
        print(f"meshlab {args.command}: error: {error}", file=sys.stderr)
        return 2


__all__ = ["UsageError", "build_parser", "main"]

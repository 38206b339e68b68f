"""``meshlab upstream source MODULE``: where a pinned upstream module's source is (downloaded
through the Go module proxy into Go's module cache if needed)."""

from __future__ import annotations

import argparse

from meshlab.cli.common import UsageError


def _source(args: argparse.Namespace) -> int:
    from meshlab.upstream import source
    from meshlab.upstream.versions import MODULES

    module = MODULES[args.module]
    try:
        print(source.source(module))
    except source.UpstreamError as error:
        raise UsageError(str(error)) from None
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    from meshlab.upstream.versions import MODULES

    upstream = commands.add_parser("upstream", help="the upstream projects' own sources, at the versions the book pins")
    upstream_commands = upstream.add_subparsers(dest="upstream_command", metavar="COMMAND", required=True)
    where = upstream_commands.add_parser("source", help="print a pinned module's source folder (go mod download if needed)")
    where.add_argument("module", choices=sorted(MODULES), help="the module path")
    where.set_defaults(run=_source)

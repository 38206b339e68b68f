"""``meshlab upstream``: the upstream projects' own programs and sources at the versions the book pins.

    install [NAME...]   build what is missing (all by default) into the cache, with progress
    path NAME           the program's path (built or on PATH), or exit 1 with the command that builds it
    list [--json]       name, version, path and source (built/PATH) of each program
    source MODULE       a pinned module's source folder (go mod download if needed)
"""

from __future__ import annotations

import argparse
import json
import sys

from meshlab.cli.common import UsageError


def _programs(names: list[str]) -> list:
    from meshlab.upstream.versions import PROGRAMS

    unknown = [name for name in names if name not in PROGRAMS]
    if unknown:
        raise UsageError(f"no upstream program {unknown[0]!r}; programs are {', '.join(PROGRAMS)}")
    return [PROGRAMS[name] for name in names] if names else list(PROGRAMS.values())


def _install(args: argparse.Namespace) -> int:
    from meshlab.upstream import build
    from meshlab.upstream.source import UpstreamError

    for program in _programs(args.names):
        try:
            found = build.install(program, progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
        except UpstreamError as error:
            print(f"meshlab upstream: {error}", file=sys.stderr)
            return 1
        print(f"{found.name} {found.version} ({found.source}): {found.path}")
    return 0


def _path(args: argparse.Namespace) -> int:
    from meshlab.upstream import build

    (program,) = _programs([args.name])
    found = build.find(program)
    if found is None:
        print(f"meshlab upstream: {program.name} {program.version} is not built; build it with `meshlab upstream install {program.name}` "
              f"(or `make upstream`)", file=sys.stderr)
        return 1
    print(found.path)
    return 0


def _list(args: argparse.Namespace) -> int:
    from meshlab.upstream import build

    rows = []
    for program in _programs([]):
        found = build.find(program)
        rows.append(found.as_dict() if found else {"name": program.name, "version": program.version, "path": None, "source": None})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for row in rows:
            print(f"{row['name']:<12} {row['version']:<22} {row['source'] or 'not built':<9} {row['path'] or ''}")
    return 0


def _source(args: argparse.Namespace) -> int:
    from meshlab.upstream import source
    from meshlab.upstream.versions import MODULES

    try:
        print(source.source(MODULES[args.module]))
    except source.UpstreamError as error:
        raise UsageError(str(error)) from None
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    from meshlab.upstream.versions import MODULES

    upstream = commands.add_parser("upstream", help="the upstream projects' own programs and sources, at the versions the book pins")
    upstream_commands = upstream.add_subparsers(dest="upstream_command", metavar="COMMAND", required=True)
    install = upstream_commands.add_parser("install", help="build missing programs with go build into the cache (minutes the first time)")
    install.add_argument("names", nargs="*", metavar="NAME", help="programs to build (default: all)")
    install.set_defaults(run=_install)
    path = upstream_commands.add_parser("path", help="print a program's path")
    path.add_argument("name", metavar="NAME")
    path.set_defaults(run=_path)
    listing = upstream_commands.add_parser("list", help="each program: version, path, built here or found on PATH")
    listing.add_argument("--json", action="store_true", help='print [{"name", "version", "path", "source"}]')
    listing.set_defaults(run=_list)
    where = upstream_commands.add_parser("source", help="print a pinned module's source folder (go mod download if needed)")
    where.add_argument("module", choices=sorted(MODULES), help="the module path")
    where.set_defaults(run=_source)

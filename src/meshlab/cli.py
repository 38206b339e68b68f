"""The ``meshlab`` command: one subcommand per job, bad arguments answered with exit code 2.

    meshlab doctor [--json] [--stage S]   which stages run here, why not, and the fix
    meshlab labs release --out DIR        student copies of the labs
    meshlab book [--ip IP] [--port N]     open the textbook in JupyterLab (make lab)
    meshlab intercept istio-iptables ...  Istio's capture rules (--dry-run prints them)

Errors the reader can fix (a busy port, a malformed lab) are printed as one line
naming what was wrong and what is accepted, with exit code 2, like argparse's own.
"""

from __future__ import annotations

import argparse
import json
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


def _istio_iptables(args: argparse.Namespace) -> int:
    try:
        config = istio_flags.config_from(args)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    print(render_commands(config))
    if not config.dry_run:
        try:
            capture_apply.apply(config)
        except capture_apply.ApplyError as error:
            print(f"meshlab intercept: {error}", file=sys.stderr)
            return 1
    return 0


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
    istio_iptables.set_defaults(run=_istio_iptables)

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

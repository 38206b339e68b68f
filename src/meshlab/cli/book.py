"""``meshlab doctor``, ``meshlab labs release`` and ``meshlab book``: the reader's way in."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from meshlab import book, doctor, labs
from meshlab.cli.common import UsageError


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


def register(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser("doctor", help=f"which stages ({', '.join(doctor.STAGES)}) this machine can run")
    check.add_argument("--json", action="store_true", help="print {\"stages\": {name: {available, reason, fix}}}")
    check.add_argument("--stage", action="append", choices=doctor.STAGES, help="check only this stage (repeatable)")
    check.set_defaults(run=_doctor)

    lab_notebooks = commands.add_parser("labs", help="lab notebooks")
    lab_commands = lab_notebooks.add_subparsers(dest="labs_command", metavar="COMMAND", required=True)
    release = lab_commands.add_parser("release", help="write student copies (solutions replaced by stubs)")
    release.add_argument("--out", type=Path, required=True, help="folder for the student copies")
    release.add_argument("--source", type=Path, default=Path("labs"), help="folder of the solution notebooks (default: labs)")
    release.set_defaults(run=_labs_release)

    serve = commands.add_parser("book", help="open the textbook in JupyterLab (what make lab runs)")
    serve.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8888, help="port to listen on (default 8888)")
    serve.add_argument("--root", type=Path, default=Path("."), help="repository root (default: the current folder)")
    serve.set_defaults(run=_book)

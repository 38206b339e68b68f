"""``meshlab classroom up|status|down|preflight``: a workshop's JupyterHub on one host, and what the room can run
(``meshlab.classroom``). Imported when a command runs: the ``meshlab`` command must start where JupyterHub
is not installed (a rootless lab's stdlib-only copy runs it)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from meshlab.cli.common import UsageError


def _up(args: argparse.Namespace) -> int:
    from meshlab.classroom import hub

    try:
        room, passwords = hub.up(args.students, args.port, args.ip, args.checkout)
    except hub.ClassroomError as error:
        raise UsageError(str(error)) from None
    print(f"classroom up at {room.url}/ ({len(room.students)} students, instructor {room.instructor}, admin page {room.url}/hub/admin)")
    print("passwords, shown this once (the hub keeps only their hashes): print them and hand each student theirs")
    for name, password in passwords.items():
        print(f"  {name:<14} {password}")
    print("end the class with: meshlab classroom down --archive FILE.tar.gz (saves every home first)")
    return 0


def _status(args: argparse.Namespace) -> int:
    from meshlab.classroom import hub

    try:
        report = hub.status()
    except hub.ClassroomError as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"hub {report['url']}/ ({'running' if report['hub_running'] else 'NOT running'}, pid {report['hub_pid']})")
    print(f"  {'account':<14} {'server':<8} {'processes':>9} {'RSS MB':>8}  live labs   last activity")
    for account in report["accounts"]:
        print(f"  {account['name']:<14} {account['server']:<8} {account['processes']:>9} {account['rss_mb']:>8.1f}  "
              f"{','.join(account['live_labs']) or '-':<11} {account['last_activity'] or '-'}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from meshlab.classroom import hub

    try:
        archive = hub.down(args.archive)
    except hub.ClassroomError as error:
        raise UsageError(str(error)) from None
    print(f"classroom down: the homes are in {archive}; accounts, servers, labs and the hub's state removed")
    return 0


def _preflight(args: argparse.Namespace) -> int:
    from meshlab.classroom import preflight

    try:
        room = preflight.summarise(preflight.read_reports(args.files))
    except preflight.PreflightError as error:
        raise UsageError(str(error)) from None
    print(preflight.to_json(room) if args.json else preflight.render(room))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    room = commands.add_parser("classroom", help="a workshop on one host: JupyterHub, an account per student")
    verbs = room.add_subparsers(dest="classroom_command", metavar="COMMAND", required=True)
    start = verbs.add_parser("up", help="accounts, homes with the book and labs, passwords, and the hub (as root)")
    start.add_argument("--students", type=int, required=True, help="how many student accounts (mlstudent01..)")
    start.add_argument("--port", type=int, default=8000, help="the hub's port (default 8000)")
    start.add_argument("--ip", default="127.0.0.1", help="the address students connect to (default 127.0.0.1; the room's LAN address)")
    start.add_argument("--checkout", type=Path, default=Path("."), help="the meshlab repository (default: the current folder)")
    start.set_defaults(run=_up)
    show = verbs.add_parser("status", help="who is logged in, whose server runs, memory per account")
    show.add_argument("--json", action="store_true", help="print the report as JSON")
    show.set_defaults(run=_status)
    stop = verbs.add_parser("down", help="stop everything, archive the homes, remove the accounts")
    stop.add_argument("--archive", type=Path, required=True, help="the .tar.gz file for the students' work")
    stop.set_defaults(run=_down)
    check = verbs.add_parser("preflight", help="what the room can run, from the students' `meshlab doctor --json` files")
    check.add_argument("files", type=Path, nargs="+", help="one doctor --json report per machine")
    check.add_argument("--json", action="store_true", help="print the summary as JSON")
    check.set_defaults(run=_preflight)

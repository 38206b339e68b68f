"""``meshlab intercept istio-iptables`` (Istio's capture rules) and ``meshlab intercept compare``
(two rule texts, compared as iptables holds them)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from meshlab.cli.common import UsageError, read_text
from meshlab.intercept import ConfigError, render_commands
from meshlab.intercept import apply as capture_apply
from meshlab.intercept import flags as istio_flags
from meshlab.intercept.compare import RuleTextError, compare


def _in_host_network_namespace() -> bool:
    """True unless this process runs in a named network namespace (``ip netns``, as the lab's pods).

    Conservative on purpose: applying Istio's rules where they do not belong captures every
    outbound connection of the machine, so anything that is not provably a pod counts as the host."""
    try:
        here = os.stat("/proc/self/ns/net").st_ino
        return not any(os.stat(path).st_ino == here for path in Path("/run/netns").glob("*"))
    except OSError:
        return True


def _istio_iptables(args: argparse.Namespace) -> int:
    try:
        config = istio_flags.config_from(args)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    if not config.dry_run and _in_host_network_namespace() and not args.allow_host:
        raise UsageError("this would change the host's own iptables rules (this is not a named network namespace); run it inside a pod "
                         "(meshlab lab exec POD -- meshlab intercept istio-iptables ...), use --dry-run, or pass --allow-host")
    print(render_commands(config))
    if not config.dry_run:
        try:
            capture_apply.apply(config)
        except capture_apply.ApplyError as error:
            print(f"meshlab intercept: {error}", file=sys.stderr)
            return 1
    return 0


def _compare(args: argparse.Namespace) -> int:
    expected, found = read_text(args.expected), read_text(args.found)
    try:
        differences = compare(expected, found, chains=args.chains)
    except RuleTextError as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps({"same": not differences, "differences": [d.as_json() for d in differences]}))
    elif differences:
        print("\n".join(map(str, differences)))
    else:
        print(f"same rules: {args.found} holds exactly the rules of {args.expected}")
    return 1 if differences else 0


def register(commands: argparse._SubParsersAction) -> None:
    intercept = commands.add_parser("intercept", help="transparent interception: Istio's iptables rules")
    intercept_commands = intercept.add_subparsers(dest="intercept_command", metavar="COMMAND", required=True)
    istio_iptables = intercept_commands.add_parser(
        "istio-iptables",
        help="the rules istio-iptables 1.30.3 installs; --dry-run prints them in Istio's golden format",
        description="Generate (and unless --dry-run, apply in the current network namespace) the rules of istio-iptables 1.30.3.",
    )
    istio_flags.add_arguments(istio_iptables)
    istio_iptables.add_argument("--allow-host", action="store_true", help="apply even outside a named network namespace (meshlab refuses by default)")
    istio_iptables.set_defaults(run=_istio_iptables)

    rules = intercept_commands.add_parser(
        "compare", help="are two rule texts the same rules? (exit 0 yes, 1 no with each difference, 2 unreadable)",
        description="Compare two iptables-restore/iptables-save texts chain by chain, rules in order, undoing only "
                    "what iptables-save rewrites (e.g. /32 on bare addresses, -m tcp, marks in hex).")
    rules.add_argument("expected", type=Path, help="the rules expected (e.g. meshlab intercept istio-iptables --dry-run's restore input)")
    rules.add_argument("found", type=Path, help="the rules found (e.g. a pod's iptables-save)")
    rules.add_argument("--chains", metavar="REGEX", help="compare only table:chain names matching this (e.g. ISTIO)")
    rules.add_argument("--json", action="store_true", help='print {"same", "differences": [{"table", "chain", "position", "expected", "found"}]}')
    rules.set_defaults(run=_compare)

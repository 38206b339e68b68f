"""``meshlab kind plan|run CHAPTER`` and ``meshlab kind down``: the kind stage from a shell."""

from __future__ import annotations

import argparse

from meshlab.cli.common import UsageError


def _plan(args: argparse.Namespace) -> int:
    from meshlab.kind import stage
    from meshlab.kind.runner import KindError

    try:
        print(stage.plan_script(args.chapter))
    except KindError as error:
        raise UsageError(str(error)) from None
    return 0


def _run(args: argparse.Namespace) -> int:
    """Exit 0 only for a run that happened and agreed with meshlab's predictions."""
    from meshlab.kind import stage
    from meshlab.kind.runner import KindError

    try:
        run = stage.run(args.chapter)
    except KindError as error:
        raise UsageError(str(error)) from None
    print(run.text())
    return 0 if run.ran and run.agreed else 1


def _down(args: argparse.Namespace) -> int:
    from meshlab.kind import stage
    from meshlab.kind.runner import KindError

    try:
        stage.teardown()
    except KindError as error:
        raise UsageError(str(error)) from None
    print(f"kind cluster {stage.CLUSTER_NAME} deleted")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    kind = commands.add_parser("kind", help="the kind stage: real Kubernetes and Istio (needs Docker, kind, kubectl, istioctl)")
    kind_commands = kind.add_subparsers(dest="kind_command", metavar="COMMAND", required=True)
    for name, text, handler in (("plan", "print the commands a chapter's kind section runs, as a shell script", _plan),
                                ("run", "run a chapter's comparison on the kind cluster 'meshlab'", _run)):
        command = kind_commands.add_parser(name, help=text)
        command.add_argument("chapter", help="02, 04 or 06: the chapters with an 'On a real cluster' section")
        command.set_defaults(run=handler)
    kind_commands.add_parser("down", help="delete the kind cluster 'meshlab'").set_defaults(run=_down)

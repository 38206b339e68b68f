"""What every subcommand shares: the usage error, argument types, reading the reader's files, and
running a server until SIGINT or SIGTERM.

    UsageError      something asked for that cannot be done as asked (exit 2, one line)
    port_number     argparse type for a port 0-65535 (0: any free port)
    host_port       argparse type for HOST:PORT
    read_text       a file's text, or a UsageError naming the file and the reason
    until_stopped   an asyncio.Event set by SIGINT or SIGTERM, so a server stops cleanly either way
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path


class UsageError(Exception):
    """Something the reader asked for that cannot be done as asked."""


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port 0-65535 (0: any free port)")
    return int(text)


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``:PORT`` means 127.0.0.1), as argparse type: a bad port is a usage error."""
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT with a port 0-65535 (0: any free port), e.g. 127.0.0.1:9000")
    return host or "127.0.0.1", int(port)


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None


def until_stopped() -> asyncio.Event:
    """An event the running loop sets on SIGINT or SIGTERM: ``await until_stopped().wait()``, then
    stop what was started. (Without it SIGTERM ends the process before any cleanup runs.)"""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop

"""TCP ports for the servers meshlab starts: whether one is free, and a free one on loopback.

    port_is_free  can a server listen on (ip, port)? A closed server's connections in TIME_WAIT do not
                  count as taking it (SO_REUSEADDR, as servers bind)
    free_port     a port nobody listens on, on 127.0.0.1, for a program that takes a number, not a socket
"""

from __future__ import annotations

import socket


def port_is_free(ip: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Should another process take it before the program binds it, that program fails to start and says so."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

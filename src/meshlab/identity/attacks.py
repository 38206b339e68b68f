"""The connection hand-over: the attack SPIRE's PID-reuse guard exists for.

A process that may not have an identity gets one that may: a child connects to the agent's socket
(the kernel records *the child's* PID, uid and gid for that connection), passes the connected
socket to its parent over SCM_RIGHTS and exits. The parent then speaks over the child's
connection. If the agent looked the PID up only when the call arrives, the PID could by then name
another process, one with a better identity, recycled by the kernel. SPIRE notes the process's
start time at connect and refuses when it no longer matches; so does meshlab's agent, which then
answers that the caller has exited.

    hand_over_connection   child connects, hands the socket over, exits; a local relay socket
                           lets any gRPC client (the real spiffe client) use the inherited connection
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path


def _copy(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass


def hand_over_connection(agent_socket: Path, relay_socket: Path) -> int:
    """Fork a child that connects to ``agent_socket`` and passes the connection back before it exits;
    serve that connection at ``relay_socket`` (one client). Returns the PID the agent recorded."""
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        try:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.connect(str(agent_socket))
            socket.send_fds(child_end, [b"x"], [connection.fileno()])
        finally:
            os._exit(0)
    _, fds, _, _ = socket.recv_fds(parent_end, 1, 1)
    os.waitpid(pid, 0)  # the process the kernel named as the caller is gone
    parent_end.close()
    child_end.close()
    inherited = socket.socket(fileno=fds[0])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(relay_socket))
    listener.listen(1)

    def relay() -> None:
        local, _ = listener.accept()
        listener.close()
        for source, target in ((local, inherited), (inherited, local)):
            threading.Thread(target=_copy, args=(source, target), daemon=True).start()

    threading.Thread(target=relay, daemon=True).start()
    return pid

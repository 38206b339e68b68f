"""The connection hand-over: the attack SPIRE's PID-reuse guard exists for.

A process that may not have an identity gets one that may: another process connects to the agent's
socket (the kernel records *its* PID, uid and gid for that connection), passes the connected socket
over SCM_RIGHTS and exits. The parent then speaks over the child's
connection. If the agent looked the PID up only when the call arrives, the PID could by then name
another process, one with a better identity, recycled by the kernel. SPIRE notes the process's
start time at connect and refuses when it no longer matches; so does meshlab's agent, which then
answers that the caller has exited.

    hand_over_connection   a child connects, hands the socket over, exits; a local relay socket
                           lets any gRPC client (the real spiffe client) use the inherited connection
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path


def _copy(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass


#: The child: connect to the agent, pass the connected socket over the hand-off socket, exit.
_CHILD = """
import socket, sys
agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
agent.connect(sys.argv[1])
handoff = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
handoff.connect(sys.argv[2])
socket.send_fds(handoff, [b"x"], [agent.fileno()])
"""


def hand_over_connection(agent_socket: Path, relay_socket: Path) -> int:
    """Start a child process that connects to ``agent_socket`` and passes the connection to this
    process before it exits; serve that connection at ``relay_socket`` (one client). Returns the
    child's PID, the one the agent recorded. (A separate process, not a fork: forking a process that
    runs gRPC threads is unsafe.)"""
    handoff_path = relay_socket.with_name(relay_socket.name + ".handoff")
    handoff = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    handoff.bind(str(handoff_path))
    handoff.listen(1)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(agent_socket), str(handoff_path)])
    channel, _ = handoff.accept()
    _, fds, _, _ = socket.recv_fds(channel, 1, 1)
    child.wait(timeout=10)  # the process the kernel named as the caller is gone
    for closing in (channel, handoff):
        closing.close()
    handoff_path.unlink()
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
    return child.pid

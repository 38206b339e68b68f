"""A 64-byte TCP ping-pong over loopback, timed per round trip: the benchmark of chapter 03.

Both ends live in one process tree (the echo side is a forked child), so whatever cgroup the
command starts in holds both sockets: started inside the lab's eBPF cgroup, sockops puts both in
the sockhash and sk_msg hands every message straight to the peer; started outside, the same bytes
cross the TCP/IP stack twice per round trip. Run ``python -m meshlab.ebpf.pingpong --count N``;
it prints ``{"count", "p50_us", "p99_us"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("peer closed during ping-pong")
        data += chunk
    return data


def ping_pong(count: int, size: int = 64) -> list[float]:
    """Round-trip times in microseconds for ``count`` messages of ``size`` bytes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    child = os.fork()
    if child == 0:
        peer, _ = listener.accept()
        peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                peer.sendall(_recv_exactly(peer, size))
        except ConnectionError:
            os._exit(0)
    client = socket.create_connection(listener.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    message, times = b"x" * size, []
    try:
        for _ in range(count):
            start = time.perf_counter()
            client.sendall(message)
            _recv_exactly(client, size)
            times.append((time.perf_counter() - start) * 1e6)
    finally:
        client.close()
        os.waitpid(child, 0)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshlab.ebpf.pingpong", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--cpu", type=int, help="pin both ends to this CPU: on small VMs a wake-up on another CPU costs more than the path being measured")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    times = sorted(ping_pong(args.count, args.size))
    print(json.dumps({"count": len(times), "p50_us": times[len(times) // 2], "p99_us": times[int(len(times) * 0.99)]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

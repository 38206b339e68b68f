"""A proxyless pod's xDS socket: the Unix socket pilot-agent listens on for the pod's gRPC clients
(``./etc/istio/proxy/XDS`` in the istio-proxy container, the ``server_uri`` of the gRPC bootstrap the agent
writes: pkg/istio-agent/grpcxds/grpc_bootstrap.go), here relaying each connection byte for byte to
istiod's plaintext xDS port.

The lab runs it on the host, not in the pod: istiod listens on the host's loopback, which no pod can
reach, and a Unix socket, being a file, is reachable from both sides. Where the real agent's xDS proxy
ends the client's stream and opens its own to istiod (over TLS, with the pod's token), this relay passes
the client's HTTP/2 through untouched: istiod sees the client's own node and requests.

Run as ``python -m meshlab.lab.xdsrelay SOCKET HOST:PORT``; it prints one JSON line ``{"event":
"ready"}`` once the socket listens (as the lab's other processes do) and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def relay(socket_path: str, host: str, port: int) -> None:
    async def connected(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            istiod_reader, istiod_writer = await asyncio.open_connection(host, port)
        except OSError as error:
            print(json.dumps({"event": "refused", "error": str(error)}), flush=True)
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, istiod_writer), _pipe(istiod_reader, client_writer))

    server = await asyncio.start_unix_server(connected, socket_path)
    os.chmod(socket_path, 0o660)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    print(json.dumps({"event": "ready", "socket": socket_path, "to": f"{host}:{port}", "pid": os.getpid()}), flush=True)
    async with server:
        await stopped.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshlab.lab.xdsrelay", description="Relay a pod's xDS socket to istiod.")
    parser.add_argument("socket", help="the Unix socket to listen on (made here; must not exist)")
    parser.add_argument("to", help="istiod's plaintext xDS address, HOST:PORT")
    args = parser.parse_args(argv)
    host, _, port = args.to.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"{args.to!r} is not HOST:PORT (istiod's xDS address, e.g. 127.0.0.1:15010)")
    asyncio.run(relay(args.socket, host, int(port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

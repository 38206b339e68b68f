"""Real peers for the MetaProtocol proxy on loopback: what chapter 11, lab 11 and the tests run.

The Thrift side is the ``thrift`` library itself: its threaded server with a processor answering
every call with the backend's name, and its client. Backends for other protocols are small loopback
servers that decode with a meshlab codec and answer with a function (``codec_backend``).

    ProxyThread      a MetaProtocolProxy on its own loop thread
    thrift_backend   thrift's TThreadedServer (framed, binary) answering with its name; counts calls
    thrift_call      one call with thrift's client: the backend's name, or "exception: <message>"
    codec_backend    a loopback server answering decoded requests with ``await respond(request)``

Run as ``python -m meshlab.metaprotocol.demo thrift-backend --name v1 --port 9090`` to serve a thrift
backend in a live-lab pod until stopped (it prints one JSON line when listening).
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter

from meshlab.loopthread import LoopThread
from meshlab.metaprotocol.proxy import Cluster, MetaProtocolProxy, decode
from meshlab.metaprotocol.router import load_metarouter


class ProxyThread:
    """A proxy with a MetaRouter and clusters of endpoints, on its own loop thread."""

    def __init__(self, make_codec, router_yaml: str, clusters: dict[str, list[tuple[str, int]]], seed: int = 3) -> None:
        self.proxy = MetaProtocolProxy(make_codec, load_metarouter(router_yaml, rng=random.Random(seed)),
                                       {name: Cluster(name, endpoints) for name, endpoints in clusters.items()})
        self.runner = LoopThread("meshlab-metaprotocol")
        self.runner.start()
        self.port = self.runner.call(self.proxy.start())

    def stats(self) -> dict:
        return self.runner.call(lambda: dict(self.proxy.stats))

    def stop(self) -> None:
        self.runner.call(self.proxy.stop())
        self.runner.stop()


class NamedProcessor:
    """A thrift processor answering every call with the backend's name."""

    def __init__(self, name: str) -> None:
        self.name, self.calls = name, Counter()

    def process(self, iprot, oprot) -> None:
        from thrift.Thrift import TMessageType, TType

        method, _, seqid = iprot.readMessageBegin()
        iprot.skip(TType.STRUCT)
        iprot.readMessageEnd()
        self.calls[method] += 1
        oprot.writeMessageBegin(method, TMessageType.REPLY, seqid)
        oprot.writeStructBegin("result")
        oprot.writeFieldBegin("success", TType.STRING, 0)
        oprot.writeString(self.name)
        oprot.writeFieldEnd()
        oprot.writeFieldStop()
        oprot.writeStructEnd()
        oprot.writeMessageEnd()
        oprot.trans.flush()


def thrift_backend(name: str, host: str = "127.0.0.1", port: int = 0) -> tuple[NamedProcessor, tuple[str, int]]:
    """thrift's own threaded server (on a free loopback port by default; daemon threads: it ends with the process)."""
    from thrift.protocol import TBinaryProtocol
    from thrift.server import TServer
    from thrift.transport import TSocket, TTransport

    processor = NamedProcessor(name)
    listening = TSocket.TServerSocket(host=host, port=port)
    server = TServer.TThreadedServer(processor, listening, TTransport.TFramedTransportFactory(), TBinaryProtocol.TBinaryProtocolFactory(), daemon=True)
    listening.listen()
    listening.listen = lambda: None  # serve() calls listen() again; the socket already listens on its port
    threading.Thread(target=server.serve, daemon=True).start()
    return processor, (host, listening.handle.getsockname()[1])


def thrift_call(port: int, method: str, host: str = "127.0.0.1") -> str:
    """One framed binary call with thrift's client; the answer, or "exception: <message>"."""
    from thrift.protocol import TBinaryProtocol
    from thrift.Thrift import TApplicationException, TMessageType
    from thrift.transport import TSocket, TTransport

    transport = TTransport.TFramedTransport(TSocket.TSocket(host, port))
    protocol = TBinaryProtocol.TBinaryProtocol(transport)
    transport.open()
    try:
        protocol.writeMessageBegin(method, TMessageType.CALL, 0)
        protocol.writeStructBegin("args")
        protocol.writeFieldStop()
        protocol.writeStructEnd()
        protocol.writeMessageEnd()
        transport.flush()
        _, kind, _ = protocol.readMessageBegin()
        if kind == TMessageType.EXCEPTION:
            error = TApplicationException()
            error.read(protocol)
            return f"exception: {error.message}"
        protocol.readStructBegin()
        protocol.readFieldBegin()
        return protocol.readString()
    finally:
        transport.close()


def codec_backend(codec, respond) -> tuple[LoopThread, asyncio.AbstractServer, tuple[str, int]]:
    """A loopback server decoding requests with ``codec`` and writing ``await respond(request)`` (if not None)."""

    async def serve(reader, writer):
        buffer = bytearray()
        while data := await reader.read(65536):
            buffer += data
            while (request := decode(codec, buffer)) is not None:
                del buffer[:request.consumed]
                if (answer := await respond(request)) is not None:
                    writer.write(answer)

    runner = LoopThread("meshlab-backend")
    runner.start()
    server = runner.call(asyncio.start_server(serve, "127.0.0.1", 0))
    return runner, server, ("127.0.0.1", server.sockets[0].getsockname()[1])


def stop_backend(backend) -> None:
    runner, server, _ = backend
    runner.call(server.close)
    runner.stop()


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m meshlab.metaprotocol.demo")
    commands = parser.add_subparsers(dest="command", required=True)
    backend = commands.add_parser("thrift-backend", help="thrift's threaded server answering every call with its name")
    backend.add_argument("--name", required=True)
    backend.add_argument("--host", default="0.0.0.0")
    backend.add_argument("--port", type=int, default=9090)
    args = parser.parse_args(argv)
    _, (host, port) = thrift_backend(args.name, args.host, args.port)
    print(json.dumps({"event": "ready", "name": args.name, "listen": f"{host}:{port}"}), flush=True)
    threading.Event().wait()  # until SIGTERM ends the process (the server's threads are daemons)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

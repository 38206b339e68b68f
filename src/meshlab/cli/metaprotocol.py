"""``meshlab metaprotocol decode`` (one frame's metadata) and ``meshlab metaprotocol proxy`` (the
MetaProtocol proxy with a MetaRouter, until SIGINT or SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from meshlab.cli.common import UsageError, host_port, read_text, until_stopped


def _codec_names() -> list[str]:
    from meshlab.metaprotocol import CODECS

    return sorted(CODECS)


def _decode(args: argparse.Namespace) -> int:
    from meshlab.metaprotocol import CODECS, FrameError

    try:
        data = bytes.fromhex(args.hex) if args.hex is not None else args.file.read_bytes()
    except ValueError as error:
        raise UsageError(f"--hex: {error}; give the frame as hexadecimal digits, e.g. 80010001") from None
    except OSError as error:
        raise UsageError(f"cannot read {args.file}: {error.strerror}") from None
    try:
        message = CODECS[args.codec](max_frame_size=args.max_frame_size).decode(data)
    except (FrameError, ValueError) as error:
        raise UsageError(str(error)) from None
    print(json.dumps({"wait_for_data": True} if message is None else message.summary()))
    return 0


def _clusters(specs: list[str]) -> dict:
    from meshlab.metaprotocol.proxy import Cluster

    clusters = {}
    for spec in specs:
        name, _, endpoints = spec.partition("=")
        try:
            clusters[name] = Cluster(name, [host_port(endpoint) for endpoint in endpoints.split(",")])
        except argparse.ArgumentTypeError:
            raise UsageError(f"--cluster {spec!r}: give NAME=HOST:PORT[,HOST:PORT...], NAME being host or host|subset as in the MetaRouter") from None
    return clusters


def _proxy(args: argparse.Namespace) -> int:
    """The proxy on ``--listen`` until stopped; one JSON line when ready, the counters at the end."""
    from meshlab.metaprotocol import CODECS, DirectedCodec
    from meshlab.metaprotocol.proxy import MetaProtocolProxy
    from meshlab.metaprotocol.router import MetaRouterError, load_metarouter

    try:
        router = load_metarouter(read_text(args.config))
    except MetaRouterError as error:
        raise UsageError(f"{args.config}: {error}") from None
    clusters = _clusters(args.cluster)
    host, port = args.listen
    codec = CODECS[args.codec]

    def make_codec(direction: str):
        return codec(direction=direction) if issubclass(codec, DirectedCodec) else codec()

    async def serve() -> None:
        proxy = MetaProtocolProxy(make_codec, router, clusters, log=lambda record: print(json.dumps(record), flush=True) if args.verbose else None)
        stop = until_stopped()
        bound = await proxy.start(host, port)
        print(json.dumps({"event": "ready", "codec": args.codec, "listen": f"{host}:{bound}", "clusters": sorted(clusters)}), flush=True)
        await stop.wait()
        await proxy.stop()
        print(json.dumps({"event": "stopped", "stats": dict(proxy.stats)}), flush=True)

    asyncio.run(serve())
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    meta = commands.add_parser("metaprotocol", help="MetaProtocol codecs")
    meta_commands = meta.add_subparsers(dest="metaprotocol_command", metavar="COMMAND", required=True)
    decode = meta_commands.add_parser("decode", help="decode one frame: message type, request id, metadata, bytes consumed")
    decode.add_argument("--codec", required=True, choices=_codec_names())
    frame = decode.add_mutually_exclusive_group(required=True)
    frame.add_argument("--hex", help="the frame as hexadecimal digits")
    frame.add_argument("--file", type=Path, help="a file holding the frame's bytes")
    decode.add_argument("--max-frame-size", type=int, default=16 * 1024 * 1024, help="larger frames are refused (default 16 MiB)")
    decode.set_defaults(run=_decode)
    proxy = meta_commands.add_parser("proxy", help="run the MetaProtocol proxy with a MetaRouter")
    proxy.add_argument("--config", type=Path, required=True, help="a MetaRouter YAML (metaprotocol.aeraki.io/v1alpha1)")
    proxy.add_argument("--codec", required=True, choices=_codec_names())
    proxy.add_argument("--listen", type=host_port, default=("127.0.0.1", 0), metavar="HOST:PORT", help="default 127.0.0.1 and a free port")
    proxy.add_argument("--cluster", action="append", default=[], metavar="NAME=HOST:PORT[,...]", help="endpoints of host or host|subset (repeat)")
    proxy.add_argument("--verbose", action="store_true", help="print every local answer and error as JSON")
    proxy.set_defaults(run=_proxy)

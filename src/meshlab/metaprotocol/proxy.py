"""The MetaProtocol proxy: one asyncio L7 proxy for any protocol a codec can decode.

For every request on a downstream connection: decode, ask the MetaRouter, then either answer
locally in the protocol's own format (rate limited, no route: the codec's ``error_reply``) or
re-encode with the route's mutation, pick an endpoint of the destination's cluster (round robin),
send it, and copy it to the mirror when sampled (the mirror's replies are read and dropped).

Replies go back in the order the requests came. Each downstream connection has its own upstream
connections, so a reply is matched to its request within one upstream connection: by request id
when the protocol has one (Dubbo, Thrift, Kafka), in order when it has none (Redis). Because
upstream connections are never shared between clients, request ids never collide and need no
rewriting (a proxy that multiplexed clients onto one connection would have to rewrite them).
Oneway requests and heartbeats get no reply slot.

    Cluster      a name and its endpoints, picked round robin
    MetaProtocolProxy   start(host, port), stop(), stats
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from meshlab.metaprotocol.codec import Codec, CodecError, FrameError, Message, MessageType
from meshlab.metaprotocol.router import MetaRouter

READ_SIZE = 65536


@dataclass
class Cluster:
    name: str
    endpoints: list[tuple[str, int]]
    _next: itertools.cycle = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError(f"cluster {self.name!r} has no endpoints")
        self._next = itertools.cycle(self.endpoints)

    def pick(self) -> tuple[str, int]:
        return next(self._next)


class _Slot:
    """A place in the downstream's reply order, filled by a local answer or an upstream reply."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | None = None) -> None:
        self.data = data


class _Session:
    """One downstream connection: its reply order and its upstream connections."""

    def __init__(self, proxy: MetaProtocolProxy, writer: asyncio.StreamWriter) -> None:
        self.proxy, self.writer = proxy, writer
        self.slots: list[_Slot] = []
        self.upstreams: dict[tuple[tuple[str, int], bool], _Upstream] = {}

    def answer(self, data: bytes) -> None:
        self.slots.append(_Slot(data))
        self.flush()

    def flush(self) -> None:
        while self.slots and self.slots[0].data is not None:
            self.writer.write(self.slots.pop(0).data)

    async def upstream(self, endpoint: tuple[str, int], mirror: bool = False) -> _Upstream:
        key = (endpoint, mirror)
        if key not in self.upstreams:
            reader, writer = await asyncio.open_connection(*endpoint)
            self.upstreams[key] = _Upstream(self, reader, writer, mirror)
        return self.upstreams[key]

    def close(self) -> None:
        for upstream in self.upstreams.values():
            upstream.close()


class _Upstream:
    def __init__(self, session: _Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mirror: bool) -> None:
        self.session, self.writer, self.mirror = session, writer, mirror
        self.pending: list[tuple[int | None, _Slot]] = []
        self.codec = session.proxy.make_codec("response")
        self.task = asyncio.get_running_loop().create_task(self._read(reader))

    def send(self, data: bytes, request_id: int | None, slot: _Slot | None) -> None:
        if slot is not None:
            self.pending.append((request_id, slot))
        self.writer.write(data)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        buffer = bytearray()
        try:
            while data := await reader.read(READ_SIZE):
                buffer += data
                while (reply := self.codec.decode(bytes(buffer))) is not None:
                    del buffer[:reply.consumed]
                    self._matched(reply)
        except (FrameError, ConnectionError) as error:
            self.session.proxy.stats["upstream_errors"] += 1
            self.session.proxy.log({"event": "upstream error", "error": str(error)})
        finally:
            self.writer.close()

    def _matched(self, reply: Message) -> None:
        if self.mirror:
            self.session.proxy.stats["mirror_replies_dropped"] += 1
            return
        if reply.request_id is None:  # no request ids: replies come in request order
            index = 0 if self.pending else None
        else:
            index = next((i for i, (request_id, _) in enumerate(self.pending) if request_id == reply.request_id), None)
        if index is None:
            self.session.proxy.stats["unexpected_replies"] += 1
            return
        _, slot = self.pending.pop(index)
        slot.data = reply.raw
        self.session.proxy.stats["replies"] += 1
        self.session.flush()

    def close(self) -> None:
        self.task.cancel()
        self.writer.close()


class MetaProtocolProxy:
    def __init__(self, make_codec: Callable[[str], Codec], router: MetaRouter, clusters: dict[str, Cluster], log: Callable[[dict], None] | None = None) -> None:
        """``make_codec(direction)`` gives a fresh codec for "request" or "response" decoding."""
        self.make_codec, self.router, self.clusters = make_codec, router, clusters
        self.log = log or (lambda record: None)
        self.stats: Counter = Counter()
        self._server: asyncio.AbstractServer | None = None
        self._sessions: set[_Session] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server:
            self._server.close()
        for session in list(self._sessions):
            session.close()
            session.writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, writer)
        self._sessions.add(session)
        codec, buffer = self.make_codec("request"), bytearray()
        try:
            while data := await reader.read(READ_SIZE):
                buffer += data
                while (message := codec.decode(bytes(buffer))) is not None:
                    del buffer[:message.consumed]
                    await self._handle(codec, session, message)
                await writer.drain()
        except FrameError as error:
            self.stats["bad_frames"] += 1
            self.log({"event": "bad frame, connection closed", "error": str(error)})
        except (CodecError, ConnectionError, OSError) as error:
            self.stats["closed_on_error"] += 1
            self.log({"event": "connection closed", "error": str(error)})
        finally:
            session.close()
            writer.close()
            self._sessions.discard(session)

    async def _handle(self, codec: Codec, session: _Session, message: Message) -> None:
        if message.message_type is MessageType.HEARTBEAT:  # answered by the proxy itself, as Aeraki does
            reply = codec.heartbeat_reply(message) if hasattr(codec, "heartbeat_reply") else None
            if reply:
                session.answer(reply)
            self.stats["heartbeats"] += 1
            return
        self.stats["requests"] += 1
        expects_reply = message.message_type is MessageType.REQUEST
        decision = self.router.route(message.metadata)
        if decision.refused:
            self.stats[decision.refused.replace(" ", "_")] += 1
            self.log({"event": decision.refused, "metadata": message.metadata})
            if expects_reply:
                session.answer(codec.error_reply(message, f"meshlab metaprotocol proxy: {decision.refused}"))
            return
        cluster = self.clusters.get(decision.destination.cluster)
        if cluster is None:
            self.stats["no_endpoints"] += 1
            if expects_reply:
                session.answer(codec.error_reply(message, f"meshlab metaprotocol proxy: no endpoints for {decision.destination.cluster}"))
            return
        try:
            data = codec.encode(message, decision.mutation)
        except CodecError:
            self.stats["mutation_skipped_route_only"] += 1
            data = message.raw
        slot = _Slot() if expects_reply else None
        if slot is not None:
            session.slots.append(slot)
        (await session.upstream(cluster.pick())).send(data, message.request_id, slot)
        self.stats[f"routed:{decision.route}:{cluster.name}"] += 1
        if decision.mirror and decision.mirror.cluster in self.clusters:
            (await session.upstream(self.clusters[decision.mirror.cluster].pick(), mirror=True)).send(data, None, None)
            self.stats["mirrored"] += 1

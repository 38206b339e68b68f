"""The MetaProtocol proxy: one asyncio L7 proxy for any protocol a codec can decode.

For every request on a downstream connection: decode, ask the MetaRouter, then either answer
locally in the protocol's own format (rate limited, no route: the codec's ``error_reply``) or
re-encode with the route's mutation, pick an endpoint of the destination's cluster (round robin),
send it, and copy it to the mirror when sampled (the mirror's replies are read and dropped).

Upstream connections are shared: one per endpoint, carrying every client's requests, as Envoy's
connection pools do. Request ids are unique only per client, so the proxy gives each request an id
of its own on the way up (``rewrite_request_id``: Dubbo's request id, Thrift's seqid, Kafka's
correlation id) and puts the client's id back on the reply. Protocols without ids (Redis), and codecs
that cannot rewrite theirs, are matched in order: an upstream connection answers in the order it
was asked. Each downstream gets its
replies in the order it sent its requests, whichever upstream answers first. Oneway requests and
heartbeats get no reply slot; heartbeats are answered by the proxy.

    decode             the codec's decode, with the buffer bounded by the frame-size limit
    Cluster            a name and its endpoints, picked round robin
    MetaProtocolProxy  start(host, port), stop(), stats
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


def decode(codec: Codec, buffer: bytearray) -> Message | None:
    """The next message, or None; a buffer that has outgrown the frame-size limit without yielding a
    frame (an unframed message announcing a huge collection, say) is refused rather than kept."""
    message = codec.decode(bytes(buffer))
    if message is None and len(buffer) > codec.max_frame_size:
        raise FrameError(f"{codec.name}: {len(buffer)} bytes buffered without a whole frame (maximum frame size {codec.max_frame_size})")
    return message


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
    """A place in a downstream's reply order, filled by a local answer or an upstream reply."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | None = None) -> None:
        self.data = data


class _Session:
    """One downstream connection and its reply order."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.slots: list[_Slot] = []
        self.closed = False

    def answer(self, data: bytes) -> None:
        self.slots.append(_Slot(data))
        self.flush()

    def flush(self) -> None:
        while self.slots and self.slots[0].data is not None:
            data = self.slots.pop(0).data
            if not self.closed:
                self.writer.write(data)


@dataclass
class _Pending:
    session: _Session
    slot: _Slot
    client_id: int | None
    request: Message
    codec: Codec  # the client side's codec, for an error reply if the upstream goes away


class _Upstream:
    """One shared connection to an endpoint: requests of every session, each under an id of the
    proxy's own when the protocol has ids, replies matched back by that id (or in order)."""

    def __init__(self, proxy: MetaProtocolProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mirror: bool) -> None:
        self.proxy, self.writer, self.mirror = proxy, writer, mirror
        self.by_id: dict[int, _Pending] = {}
        self.in_order: list[_Pending] = []
        self.ids = itertools.count(1)
        self.codec = proxy.make_codec("response")
        self.closed = False
        self.task = asyncio.get_running_loop().create_task(self._read(reader))

    def send(self, data: bytes, codec: Codec, request: Message, session: _Session | None, slot: _Slot | None) -> None:
        if slot is not None:
            pending = _Pending(session, slot, request.request_id, request, codec)
            try:
                upstream_id = next(self.ids) % (1 << 31)
                data = codec.rewrite_request_id(data, upstream_id)
                self.by_id[upstream_id] = pending
            except CodecError:  # no ids, or a codec that cannot rewrite them: matched in order instead
                pending.client_id = None
                self.in_order.append(pending)
        self.writer.write(data)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        buffer = bytearray()
        try:
            while data := await reader.read(READ_SIZE):
                buffer += data
                while (reply := decode(self.codec, buffer)) is not None:
                    del buffer[:reply.consumed]
                    self._matched(reply)
        except (FrameError, ConnectionError) as error:
            self.proxy.stats["upstream_errors"] += 1
            self.proxy.log({"event": "upstream error", "error": str(error)})
        finally:
            self._lost()

    def _matched(self, reply: Message) -> None:
        if self.mirror:
            self.proxy.stats["mirror_replies_dropped"] += 1
            return
        pending = self.by_id.pop(reply.request_id, None) if reply.request_id is not None else None
        if pending is None and self.in_order:
            pending = self.in_order.pop(0)
        if pending is None:
            self.proxy.stats["unexpected_replies"] += 1
            return
        data = reply.raw if pending.client_id is None else self.codec.rewrite_request_id(reply.raw, pending.client_id)
        pending.slot.data = data
        self.proxy.stats["replies"] += 1
        pending.session.flush()

    def _lost(self) -> None:
        """The connection ended: answer what it still owed, in each protocol's own format."""
        self.closed = True
        self.writer.close()
        for pending in [*self.by_id.values(), *self.in_order]:
            try:
                pending.slot.data = pending.codec.error_reply(pending.request, "meshlab metaprotocol proxy: upstream connection lost")
            except CodecError:  # no error reply in this protocol: the client's connection is closed instead
                pending.session.closed = True
                pending.session.writer.close()
                continue
            pending.session.flush()
        self.by_id.clear()
        self.in_order.clear()

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
        self._upstreams: dict[tuple[tuple[str, int], bool], _Upstream] = {}
        self._connecting: dict[tuple[tuple[str, int], bool], asyncio.Lock] = {}

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server:
            self._server.close()
        for session in list(self._sessions):
            session.writer.close()
        for upstream in list(self._upstreams.values()):
            upstream.close()

    async def _upstream(self, endpoint: tuple[str, int], mirror: bool = False) -> _Upstream:
        """The shared connection to ``endpoint`` (a mirror's is kept apart: its replies are dropped)."""
        key = (endpoint, mirror)
        async with self._connecting.setdefault(key, asyncio.Lock()):
            upstream = self._upstreams.get(key)
            if upstream is None or upstream.closed:
                reader, writer = await asyncio.open_connection(*endpoint)
                upstream = self._upstreams[key] = _Upstream(self, reader, writer, mirror)
                self.stats["upstream_connections"] += 1
        return upstream

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(writer)
        self._sessions.add(session)
        codec, buffer = self.make_codec("request"), bytearray()
        try:
            while data := await reader.read(READ_SIZE):
                buffer += data
                while (message := decode(codec, buffer)) is not None:
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
            session.closed = True
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
        (await self._upstream(cluster.pick())).send(data, codec, message, session, slot)
        self.stats[f"routed:{decision.route}:{cluster.name}"] += 1
        if decision.mirror and decision.mirror.cluster in self.clusters:
            (await self._upstream(self.clusters[decision.mirror.cluster].pick(), mirror=True)).send(data, codec, message, None, None)
            self.stats["mirrored"] += 1

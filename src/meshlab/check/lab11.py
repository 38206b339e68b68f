"""Checks for lab 11, "A codec of your own".

The reader writes a codec for MLKV, a small key/value RPC protocol whose spec the lab gives. The
model check feeds it frames built here: a whole frame, every truncation of it, frames that can never
be valid, and asks for an error reply that the reference codec must read. The live check puts the
reader's codec into the MetaProtocol proxy, routes ``user:*`` keys to one backend and the rest to
another, and pushes real traffic through it one byte at a time, pipelined.

MLKV frame (big-endian): magic ``b"KV"``, version ``1``, type (1 request, 2 response, 3 error), a 4-byte
request id, a 2-byte key length and the key (UTF-8), a 4-byte value length and the value.

    MISTAKES          the wrong answers the checks recognise
    frame             an MLKV frame, built from the spec
    ReferenceKvCodec  the reference codec the checks compare with, and the backends use
    check_codec       exercise 1: the reader's codec on built frames
    check_live        exercise 2: real traffic through the MetaProtocol proxy with the reader's codec
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

from meshlab.check import CheckFailed, Mistake, answer_of
from meshlab.metaprotocol.codec import Codec, CodecError, FrameError, Message, MessageType

MAGIC, VERSION = b"KV", 1
TYPES = {1: MessageType.REQUEST, 2: MessageType.RESPONSE, 3: MessageType.ERROR}
FIXED = struct.Struct(">2sBBIH")  # magic, version, type, request id, key length
#: Frames that can never become valid, and why.
INVALID = ("bad magic", "unknown version", "a value length over max_frame_size (1024)")

WHOLE_AS_WAIT = Mistake("codec_class", "waits on a whole frame followed by another", "a whole frame (followed by another) decoded as 'wait for data'")
GREEDY = Mistake("codec_class", "consumes the next frame's bytes too (or misreads a field)", "only this frame's bytes, not the next one's")
IMPATIENT = Mistake("codec_class", "raises FrameError on an incomplete frame", "an incomplete frame means wait (return None)")
EARLY = Mistake("codec_class", "decodes a frame before its value has arrived", "wait until the value has arrived")
BUFFERS_INVALID = tuple(Mistake("codec_class", f"buffers a frame with {why}", f"a frame with {why} was not refused with FrameError")
                        for why in INVALID)
MUTE = Mistake("codec_class", "an error reply that is not a type-3 frame with the request's id and the text",
               "error_reply must be a type-3 frame with the request's id and the error text as its value")
MISTAKES = (WHOLE_AS_WAIT, GREEDY, IMPATIENT, EARLY, *BUFFERS_INVALID, MUTE)


def frame(kind: int, request_id: int, key: str, value: bytes) -> bytes:
    encoded = key.encode()
    return FIXED.pack(MAGIC, VERSION, kind, request_id, len(encoded)) + encoded + struct.pack(">I", len(value)) + value


class ReferenceKvCodec(Codec):
    """The reference MLKV codec: what the checks compare the reader's with, and what the backends use."""

    name = "mlkv"

    def decode(self, buffer: bytes) -> Message | None:
        """Grows ``need`` field by field: each stage either has its bytes or waits."""
        if len(buffer) >= 2 and buffer[:2] != MAGIC:
            raise FrameError(f"mlkv: bad magic {bytes(buffer[:2]).hex()}")
        need = FIXED.size
        if len(buffer) < need:
            return None
        _, version, kind, request_id, key_length = FIXED.unpack_from(buffer)
        if version != VERSION or kind not in TYPES:
            raise FrameError(f"mlkv: version {version} / type {kind} unknown")
        need += key_length + 4
        if len(buffer) < need:
            return None
        (value_length,) = struct.unpack_from(">I", buffer, need - 4)
        self.check_size(value_length, "value length")
        header, need = need, need + value_length
        if len(buffer) < need:
            return None
        key = bytes(buffer[FIXED.size:header - 4]).decode(errors="replace")
        return Message(TYPES[kind], request_id, {"key": key}, header, value_length, need, bytes(buffer[:need]))

    def encode(self, message: Message, mutation: dict[str, str]) -> bytes:
        if mutation:
            raise CodecError("mlkv is route-only")
        return message.raw

    def error_reply(self, message: Message, error: str) -> bytes:
        return frame(3, message.request_id, "", error.encode())


def check_codec(codec_class: Callable[[], type]) -> None:
    """The reader's codec on frames built from the spec: decode, wait, refuse, answer."""
    cls = answer_of(codec_class)
    codec = cls(max_frame_size=1024)
    whole = frame(1, 42, "user:7", b"hello")
    decoded = codec.decode(whole + frame(1, 43, "x", b""))
    if decoded is None:
        raise CheckFailed(WHOLE_AS_WAIT.hint)
    if (decoded.message_type, decoded.request_id, decoded.metadata.get("key"), decoded.consumed) != (MessageType.REQUEST, 42, "user:7", len(whole)):
        raise CheckFailed(f"decoded {decoded.message_type}, request id {decoded.request_id}, key {decoded.metadata.get('key')!r}, consumed "
                          f"{decoded.consumed}; expected REQUEST, 42, 'user:7', {len(whole)} ({GREEDY.hint})")
    for cut in range(len(whole)):
        try:
            early = codec.decode(whole[:cut])
        except FrameError as error:
            raise CheckFailed(f"the first {cut} bytes of a valid frame raised FrameError ({error}): {IMPATIENT.hint}") from None
        if early is not None:
            raise CheckFailed(f"the first {cut} of {len(whole)} bytes decoded as a message: {EARLY.hint}")
    bad_frames = (b"XX" + whole[2:], frame(1, 1, "k", b"")[:2] + bytes([9]) + whole[3:], whole[:FIXED.size + 6] + struct.pack(">I", 10_000))
    for bad, mistake in zip(bad_frames, BUFFERS_INVALID, strict=True):
        try:
            codec.decode(bad)
        except FrameError:
            continue
        raise CheckFailed(f"{mistake.hint} (it must never be buffered: it can never become valid)")
    reply = ReferenceKvCodec().decode(codec.error_reply(decoded, "rate limited"))
    if reply is None or (reply.message_type, reply.request_id) != (MessageType.ERROR, 42) or reply.raw[-12:] != b"rate limited":
        raise CheckFailed(MUTE.hint)


def check_live(codec_class: Callable[[], type]) -> dict:
    """Real traffic through the proxy with the reader's codec: routed by key, replies in order."""
    from meshlab.metaprotocol.demo import ProxyThread, codec_backend, stop_backend

    check_codec(codec_class)
    cls = answer_of(codec_class)

    def backend(name):
        async def respond(request):
            return frame(2, request.request_id, "", f"{name}:{request.metadata['key']}".encode())

        return codec_backend(ReferenceKvCodec(), respond)

    users, rest = backend("users"), backend("rest")
    router = """
apiVersion: metaprotocol.aeraki.io/v1alpha1
kind: MetaRouter
metadata: {name: kv}
spec:
  hosts: [kv]
  routes:
  - name: users
    match: {attributes: {key: {prefix: "user:"}}}
    route: [{destination: {host: kv, subset: users}}]
  - name: rest
    route: [{destination: {host: kv, subset: rest}}]
"""
    proxy = ProxyThread(lambda direction: cls(), router, {"kv|users": [users[2]], "kv|rest": [rest[2]]})
    keys = ["user:1", "cart:9", "user:2", "stock:3"]
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as connection:
            for byte in b"".join(frame(1, index, key, b"") for index, key in enumerate(keys)):
                connection.sendall(bytes([byte]))  # one byte at a time: the codec must wait for the rest
            replies, buffer, reference = [], b"", ReferenceKvCodec()
            while len(replies) < len(keys):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                while (reply := reference.decode(buffer)) is not None:
                    buffer = buffer[reply.consumed:]
                    replies.append((reply.request_id, reply.raw[reply.header_size:].decode()))
        stats = proxy.stats()
    finally:
        proxy.stop()
        stop_backend(users)
        stop_backend(rest)
    expected = [(index, f"{'users' if key.startswith('user:') else 'rest'}:{key}") for index, key in enumerate(keys)]
    if replies != expected:
        raise CheckFailed(f"through the proxy the replies were {replies}, expected {expected}")
    return stats

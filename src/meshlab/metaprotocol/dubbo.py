"""The Dubbo2 codec: a 16-byte header for the fast path, Hessian 2 for the attachments.

Header (big-endian): magic ``0xdabb``; flags (0x80 request, 0x40 two-way, 0x20 event/heartbeat, low
five bits the serialization, 2 = hessian2); status (responses: 20 OK, 30/31 timeouts, 40 bad
request, 50 bad response, 60 service not found, 70 service error, 80 server error, 90 client
error); an 8-byte request id that pairs a response with its request; a 4-byte body length.

A request body is Hessian values in order: dubbo version, service path (the interface), service
version, method, parameter-type descriptor (``Ljava/lang/String;I``), one value per parameter, and
the attachments map. Metadata is ``interface``, ``method`` and every string attachment, as in
Aeraki. A mutation rewrites the attachments map and nothing else: every earlier byte of the body is
kept, and attachments the mutation does not touch keep their original encoding.

    DubboCodec   decode, encode (attachment mutations), error_reply (a response with the error status), heartbeat_reply
"""

from __future__ import annotations

import re
import struct

from meshlab.metaprotocol.codec import Codec, CodecError, FrameError, Message, MessageType
from meshlab.metaprotocol.hessian2 import Decoder, HessianError, encode_map, encode_string

MAGIC = 0xDABB
HEADER = struct.Struct(">HBBqi")
FLAG_REQUEST, FLAG_TWO_WAY, FLAG_EVENT = 0x80, 0x40, 0x20
HESSIAN2 = 2
OK, SERVICE_NOT_FOUND, SERVER_ERROR = 20, 60, 80
STATUSES = {20: "OK", 30: "CLIENT_TIMEOUT", 31: "SERVER_TIMEOUT", 40: "BAD_REQUEST", 50: "BAD_RESPONSE", 60: "SERVICE_NOT_FOUND",
            70: "SERVICE_ERROR", 80: "SERVER_ERROR", 90: "CLIENT_ERROR"}
#: one JVM parameter type: primitives, class references, and arrays of either
DESCRIPTOR = re.compile(r"\[*(?:[ZBCDFIJS]|L[^;]+;)")


def parameter_count(descriptor: str) -> int:
    """How many arguments a JVM descriptor such as ``Ljava/lang/String;[II`` describes."""
    types = DESCRIPTOR.findall(descriptor)
    if "".join(types) != descriptor:
        raise FrameError(f"dubbo: parameter descriptor {descriptor!r} is not a JVM type list")
    return len(types)


class DubboCodec(Codec):
    name = "dubbo"

    def decode(self, buffer: bytes) -> Message | None:
        if len(buffer) >= 2 and struct.unpack(">H", buffer[:2])[0] != MAGIC:
            raise FrameError(f"dubbo: bad magic {buffer[:2].hex()} (expected dabb)")
        if len(buffer) < HEADER.size:
            return None
        _, flags, status, request_id, length = HEADER.unpack_from(buffer)
        self.check_size(length, "body length")
        if len(buffer) < HEADER.size + length:
            return None
        body = bytes(buffer[HEADER.size:HEADER.size + length])
        envelope = {"flags": flags, "status": status, "serialization": flags & 0x1F}
        if flags & FLAG_EVENT:
            kind = MessageType.HEARTBEAT
        elif flags & FLAG_REQUEST:
            kind = MessageType.REQUEST if flags & FLAG_TWO_WAY else MessageType.ONEWAY
        else:
            kind = MessageType.RESPONSE if status == OK else MessageType.ERROR
        metadata = {} if flags & FLAG_REQUEST else {"status": STATUSES.get(status, str(status))}
        if kind in (MessageType.REQUEST, MessageType.ONEWAY) and envelope["serialization"] == HESSIAN2:
            metadata.update(self._request_metadata(body, envelope))
        return Message(kind, request_id, metadata, HEADER.size, length, HEADER.size + length, bytes(buffer[:HEADER.size + length]), envelope)

    @staticmethod
    def _request_metadata(body: bytes, envelope: dict) -> dict[str, str]:
        decoder = Decoder(body)
        try:
            _version, path, service_version, method, descriptor = (decoder.value() for _ in range(5))
            if not all(isinstance(text, str) for text in (path, method, descriptor)):
                raise FrameError("dubbo: the request body does not start with version, path, service version, method, descriptor")
            for _ in range(parameter_count(descriptor)):
                decoder.value()
            attachments_at = decoder.position
            attachments = decoder.value() if decoder.position < len(body) else {}
        except HessianError as error:
            raise FrameError(f"dubbo: request body: {error}") from None
        if not isinstance(attachments, dict):
            raise FrameError(f"dubbo: the attachments are a {type(attachments).__name__}, not a map")
        envelope.update(attachments_at=attachments_at, attachments_end=decoder.position)
        metadata = {key: value for key, value in attachments.items() if isinstance(key, str) and isinstance(value, str)}
        metadata.update(interface=path, method=method)
        if isinstance(service_version, str) and service_version:
            metadata.setdefault("version", service_version)
        return metadata

    def encode(self, message: Message, mutation: dict[str, str]) -> bytes:
        if not mutation:
            return message.raw
        envelope = message.envelope
        if "attachments_at" not in envelope:
            raise CodecError("dubbo: only hessian2 requests carry attachments to mutate")
        body = message.raw[HEADER.size:]
        start, end = envelope["attachments_at"], envelope["attachments_end"]
        pairs = self._attachment_pairs(body, start, end)
        for key, value in mutation.items():
            pairs[key] = encode_string(key) + encode_string(value)
        new_body = body[:start] + encode_map(list(pairs.values())) + body[end:]
        return HEADER.pack(MAGIC, envelope["flags"], envelope["status"], message.request_id, len(new_body)) + new_body

    @staticmethod
    def _attachment_pairs(body: bytes, start: int, end: int) -> dict[str, bytes]:
        """Each attachment's original bytes (key and value), by key, in order: untouched ones are
        copied as they were, so a value that refers back to an earlier object stays valid."""
        if start == end:
            return {}
        decoder = Decoder(body, start)
        if decoder.byte() != 0x48:  # a typed map ('M'): rewrite it as an untyped one, keeping its pairs
            decoder.position = start + 1
            decoder.value(1)  # its type
        pairs: dict[str, bytes] = {}
        while decoder.position < end - 1:
            begin = decoder.position
            key = decoder.value()
            decoder.value()
            pairs[str(key)] = body[begin:decoder.position]
        return pairs

    def rewrite_request_id(self, data: bytes, request_id: int) -> bytes:
        return data[:4] + struct.pack(">q", request_id) + data[12:]

    def heartbeat_reply(self, message: Message) -> bytes | None:
        """The answer to a heartbeat request: an event response, status OK, same id, a null body."""
        if not message.envelope["flags"] & FLAG_REQUEST:
            return None
        return HEADER.pack(MAGIC, FLAG_EVENT | HESSIAN2, OK, message.request_id, 1) + b"N"

    def error_reply(self, message: Message, error: str) -> bytes:
        """A response to the request, status SERVER_ERROR, whose body is the error text (as Dubbo
        providers answer failed calls); a heartbeat or a response gets no reply."""
        if message.message_type not in (MessageType.REQUEST, MessageType.ONEWAY):
            raise CodecError(f"dubbo: no error reply to a {message.message_type.value}")
        body = encode_string(error[:0xFFFF])
        return HEADER.pack(MAGIC, HESSIAN2, SERVER_ERROR, message.request_id, len(body)) + body

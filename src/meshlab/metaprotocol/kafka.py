"""The Kafka codec: the request header, and the correlation id as the stream id.

Every Kafka message is an int32 size and a header. A request header holds ``api_key`` (int16: 0
Produce, 1 Fetch, 3 Metadata, 18 ApiVersions, ...), ``api_version`` (int16), ``correlation_id``
(int32, echoed by the broker, so replies may be matched out of order) and ``client_id`` (nullable
int16-length string); header v2 (flexible versions) adds tagged fields after it, which routing does
not need. A response header is just the correlation id (v1 adds tagged fields).

Metadata: ``api_key`` (number), ``api`` (name, for the common ones), ``api_version``, ``client_id``.
Kafka errors are per-API fields inside response bodies, so there is no generic error reply: the
proxy closes the connection instead (``error_reply`` says so). Route-only.

    KafkaCodec   decode (requests or responses), encode (route-only), error_reply (refused)
"""

from __future__ import annotations

import struct

from meshlab.metaprotocol.codec import CodecError, DirectedCodec, FrameError, Message, MessageType

APIS = {0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator",
        11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup", 18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics"}
MAX_API_KEY = 1000


class KafkaCodec(DirectedCodec):
    name = "kafka"

    def decode(self, buffer: bytes) -> Message | None:
        if len(buffer) < 4:
            return None
        size = struct.unpack(">i", buffer[:4])[0]
        self.check_size(size, "message size")
        minimum = 4 if self.direction == "response" else 10
        if size < minimum:
            raise FrameError(f"kafka: message size {size} is smaller than a {self.direction} header ({minimum} bytes)")
        if len(buffer) < 4 + size:
            return None
        frame = bytes(buffer[:4 + size])
        if self.direction == "response":
            correlation = struct.unpack(">i", frame[4:8])[0]
            return Message(MessageType.RESPONSE, correlation, {}, 8, size - 4, 4 + size, frame, stream_id=correlation)
        api_key, api_version, correlation, client_length = struct.unpack(">hhih", frame[4:14])
        if not 0 <= api_key <= MAX_API_KEY or api_version < 0:
            raise FrameError(f"kafka: api_key {api_key} / api_version {api_version} is not a Kafka request")
        header = 14
        metadata = {"api_key": str(api_key), "api_version": str(api_version)}
        if api_key in APIS:
            metadata["api"] = APIS[api_key]
        if client_length >= 0:
            if 14 + client_length > len(frame):
                raise FrameError(f"kafka: client_id length {client_length} runs past the message")
            metadata["client_id"] = frame[14:14 + client_length].decode(errors="replace")
            header += client_length
        elif client_length != -1:
            raise FrameError(f"kafka: client_id length {client_length}")
        return Message(MessageType.REQUEST, correlation, metadata, header, 4 + size - header, 4 + size, frame, stream_id=correlation)

    def rewrite_request_id(self, data: bytes, request_id: int) -> bytes:
        """The correlation id: after size, api_key and api_version in a request, right after size in a response."""
        offset = 8 if self.direction == "request" else 4
        return data[:offset] + struct.pack(">i", request_id) + data[offset + 4:]

    def encode(self, message: Message, mutation: dict[str, str]) -> bytes:
        if mutation:
            raise CodecError("kafka is route-only here: the request header has no place for extra key/values")
        return message.raw

    def error_reply(self, message: Message, error: str) -> bytes:
        raise CodecError(f"kafka has no generic error reply (errors are per-API fields); close the connection instead: {error}")

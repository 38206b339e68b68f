"""The codec contract of Aeraki's MetaProtocol proxy: a protocol contributes only this.

One generic L7 proxy routes, balances, mirrors and rate-limits any request/response protocol; what
it needs from a protocol is a codec that turns bytes into a message with key/value metadata and
back. The contract follows Aeraki's ``codec.h``:

- ``decode(buffer)``: ``None`` while the frame is incomplete (wait for data), a ``Message`` once it
  is whole (with how many bytes it used), or ``FrameError`` for bytes that can never become a valid
  frame (bad magic, impossible or oversized length). The proxy must not buffer without bound, so
  every codec enforces ``max_frame_size``.
- ``encode(message, mutation)``: the message's bytes with the mutation (string keys and values)
  applied, or ``CodecError`` when the codec is route-only for that framing.
- ``error_reply(message, error)``: a reply in the protocol's own format, for failures the proxy
  answers itself (no route, rate limited).
- ``rewrite_request_id(data, id)``: the frame with another request id, so one upstream connection can
  carry many clients' requests (ids are unique per client, not across clients).

    MessageType   Aeraki's message types
    Message       one decoded frame: type, request id, metadata, sizes, bytes consumed
    FrameError    bytes that can never be a valid frame
    CodecError    a request the codec cannot serve (e.g. a mutation on a route-only framing)
    Codec         the interface, with the frame-size limit
    DirectedCodec a codec told which direction (requests or responses) it decodes
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024


class MessageType(enum.Enum):
    REQUEST = "Request"
    RESPONSE = "Response"
    ONEWAY = "Oneway"
    STREAM_INIT = "Stream_Init"
    STREAM_DATA = "Stream_Data"
    STREAM_CLOSE_ONE_WAY = "Stream_Close_One_Way"
    STREAM_CLOSE_TWO_WAY = "Stream_Close_Two_Way"
    HEARTBEAT = "Heartbeat"
    ERROR = "Error"


class FrameError(ValueError):
    """Bytes that can never become a valid frame of this protocol; the message says why."""


class CodecError(RuntimeError):
    """An operation this codec cannot do for this message."""


@dataclass(slots=True)
class Message:
    message_type: MessageType
    request_id: int | None
    metadata: dict[str, str]
    header_size: int
    body_size: int
    consumed: int
    raw: bytes = field(repr=False, default=b"")
    #: codec-specific facts about the framing, needed to re-encode or to answer in kind
    envelope: dict | None = field(repr=False, default=None)
    #: for protocols that interleave streams on one connection (Kafka's correlation id)
    stream_id: int | None = None

    def summary(self) -> dict:
        """What ``meshlab metaprotocol decode`` prints."""
        return {"message_type": self.message_type.value, "request_id": self.request_id, "metadata": self.metadata, "consumed": self.consumed}


class Codec(ABC):
    name: str

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size <= 0:
            raise ValueError(f"max_frame_size must be positive, not {max_frame_size}")
        self.max_frame_size = max_frame_size

    def check_size(self, length: int, what: str) -> None:
        if length < 0:
            raise FrameError(f"{self.name}: impossible {what} {length}")
        if length > self.max_frame_size:
            raise FrameError(f"{self.name}: {what} {length} exceeds the maximum frame size {self.max_frame_size}")

    @abstractmethod
    def decode(self, buffer: bytes) -> Message | None: ...

    @abstractmethod
    def encode(self, message: Message, mutation: dict[str, str]) -> bytes: ...

    @abstractmethod
    def error_reply(self, message: Message, error: str) -> bytes: ...

    def rewrite_request_id(self, data: bytes, request_id: int) -> bytes:
        """``data`` (one whole frame) with its request id replaced: what a proxy needs to share one
        upstream connection between clients whose ids may collide. Protocols without ids cannot."""
        raise CodecError(f"{self.name} has no request id to rewrite: replies are matched in order")


class DirectedCodec(Codec):
    """A codec for a protocol whose replies can look like requests (RESP) or whose two directions have
    different headers (Kafka): each side of a connection gets its own instance, told its direction."""

    DIRECTIONS = ("request", "response")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, direction: str = "request") -> None:
        super().__init__(max_frame_size)
        if direction not in self.DIRECTIONS:
            raise ValueError(f"direction {direction!r} is not one of {', '.join(self.DIRECTIONS)}")
        self.direction = direction

"""The Redis codec: RESP, matched in order.

A Redis command is a RESP array of bulk strings (``*3\\r\\n$3\\r\\nSET\\r\\n...``); a reply is any RESP
value (simple string, error, integer, bulk string, array). RESP carries no request id, so the proxy
must answer requests in the order they came: a pipelined client matches replies by position. Which
side a codec decodes is given when it is made (``direction``), since a reply may look like a command.

Metadata: ``command`` (upper case) and ``key`` (its first argument, when there is one). RESP has no
place for extra key/values, so the codec is route-only; errors are answered as ``-ERR <message>``.

    RedisCodec   decode (commands or replies), encode (route-only), error_reply
"""

from __future__ import annotations

from meshlab.metaprotocol.codec import CodecError, DirectedCodec, FrameError, Message, MessageType

MAX_DEPTH = 32


class _Incomplete(Exception):
    pass


class RedisCodec(DirectedCodec):
    name = "redis"

    def _line(self, buffer: bytes, position: int) -> tuple[bytes, int]:
        end = buffer.find(b"\r\n", position)
        if end < 0:
            if len(buffer) - position > 64 * 1024:
                raise FrameError("redis: a line longer than 64 KiB without CRLF")
            raise _Incomplete
        return buffer[position:end], end + 2

    def _number(self, text: bytes, what: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise FrameError(f"redis: {what} {text[:20]!r} is not a number") from None

    def _value(self, buffer: bytes, position: int, depth: int = 0):
        """(value, next position); bulk strings as bytes, errors as ("error", text)."""
        if depth > MAX_DEPTH:
            raise FrameError(f"redis: arrays nested deeper than {MAX_DEPTH}")
        if position >= len(buffer):
            raise _Incomplete
        kind, (line, after) = buffer[position:position + 1], self._line(buffer, position + 1)
        if kind == b"+":
            return line.decode(errors="replace"), after
        if kind == b"-":
            return ("error", line.decode(errors="replace")), after
        if kind == b":":
            return self._number(line, "integer"), after
        if kind == b"$":
            length = self._number(line, "bulk length")
            if length == -1:
                return None, after
            self.check_size(length, "bulk length")
            if len(buffer) < after + length + 2:
                raise _Incomplete
            if buffer[after + length:after + length + 2] != b"\r\n":
                raise FrameError("redis: a bulk string does not end with CRLF")
            return bytes(buffer[after:after + length]), after + length + 2
        if kind == b"*":
            count = self._number(line, "array length")
            if count == -1:
                return None, after
            self.check_size(count, "array length")
            items = []
            for _ in range(count):
                item, after = self._value(buffer, after, depth + 1)
                items.append(item)
            return items, after
        raise FrameError(f"redis: unknown RESP type byte {kind!r}")

    def decode(self, buffer: bytes) -> Message | None:
        try:
            value, consumed = self._value(bytes(buffer), 0)
        except _Incomplete:
            return None
        self.check_size(consumed, "message size")
        if self.direction == "response":
            kind = MessageType.ERROR if isinstance(value, tuple) else MessageType.RESPONSE
            return Message(kind, None, {}, 0, consumed, consumed, bytes(buffer[:consumed]))
        if not isinstance(value, list) or not value or not all(isinstance(part, bytes) for part in value):
            raise FrameError("redis: a command is an array of bulk strings")
        metadata = {"command": value[0].decode(errors="replace").upper()}
        if len(value) > 1:
            metadata["key"] = value[1].decode(errors="replace")
        return Message(MessageType.REQUEST, None, metadata, 0, consumed, consumed, bytes(buffer[:consumed]))

    def encode(self, message: Message, mutation: dict[str, str]) -> bytes:
        if mutation:
            raise CodecError("redis is route-only: RESP has no place for extra key/values")
        return message.raw

    def error_reply(self, message: Message, error: str) -> bytes:
        return b"-ERR " + " ".join(error.split()).encode() + b"\r\n"

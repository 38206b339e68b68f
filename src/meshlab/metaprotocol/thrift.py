"""The Thrift codec: binary and compact protocols; framed, unframed and THeader transports.

Thrift has no fixed header: a message is an *envelope* (message type, method name, sequence id)
followed by the argument struct, in one of two protocols, in one of three transports:

- binary (strict): i32 ``0x8001_00TT`` (TT: 1 call, 2 reply, 3 exception, 4 oneway), i32 name length,
  name, i32 seqid; compact: ``0x82``, ``(type << 5) | 1``, varint seqid, varint name length, name;
- framed: a 4-byte length, then the message; unframed: the message alone, so its end is known only
  by walking the whole struct (``_skip_*``); THeader: a 4-byte length, magic ``0x0FFF``, flags,
  sequence, header words, protocol id, transforms, key/value headers, padding, then the message.

Metadata: ``method`` (and ``interface`` when the name is multiplexed as ``Service:method``), plus
every THeader string header. Mutations are written as THeader headers, the one place Thrift carries
key/values outside the IDL; for the other transports the codec is route-only, as Aeraki's is.

    ThriftCodec   decode, encode (THeader mutations), error_reply (a TApplicationException in kind)
"""

from __future__ import annotations

import struct

from meshlab.metaprotocol.codec import Codec, CodecError, FrameError, Message, MessageType

BINARY, COMPACT = "binary", "compact"
FRAMED, UNFRAMED, THEADER = "framed", "unframed", "header"
VERSION_1 = 0x80010000
COMPACT_ID, COMPACT_VERSION = 0x82, 1
THEADER_MAGIC = 0x0FFF
THEADER_PROTOCOLS = {0: BINARY, 2: COMPACT}
INFO_KEYVALUE = 1
TYPES = {1: MessageType.REQUEST, 2: MessageType.RESPONSE, 3: MessageType.ERROR, 4: MessageType.ONEWAY}
EXCEPTION = 3
INTERNAL_ERROR = 6  # TApplicationException.INTERNAL_ERROR
_FRAME_LENGTH, _VERSION_AND_NAME = struct.Struct(">i"), struct.Struct(">Ii")


class _Incomplete(Exception):
    """The buffer ends before the frame does: wait for data."""


class _Reader:
    def __init__(self, data: bytes, position: int = 0) -> None:
        self.data, self.position = data, position

    def take(self, count: int) -> bytes:
        if count < 0:
            raise FrameError(f"thrift: negative length {count}")
        end = self.position + count
        if end > len(self.data):
            raise _Incomplete
        chunk = self.data[self.position:end]
        self.position = end
        return chunk

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def varint(self) -> int:
        shift = result = 0
        while True:
            byte = self.take(1)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise FrameError("thrift: varint longer than 10 bytes")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# -- skipping a struct without a schema (what an unframed transport needs) ----------------------------
_BINARY_FIXED = {2: 1, 3: 1, 4: 8, 6: 2, 8: 4, 10: 8, 16: 16}  # bool, byte, double, i16, i32, i64, uuid


def _skip_binary(reader: _Reader, kind: int, depth: int = 0) -> None:
    if depth > 64:
        raise FrameError("thrift: structs nested deeper than 64")
    if kind in _BINARY_FIXED:
        reader.take(_BINARY_FIXED[kind])
    elif kind == 11:  # string / binary
        reader.take(reader.unpack(">i"))
    elif kind == 12:  # struct
        while (field := reader.take(1)[0]) != 0:
            reader.take(2)
            _skip_binary(reader, field, depth + 1)
    elif kind == 13:  # map
        key, value, size = reader.take(1)[0], reader.take(1)[0], reader.unpack(">i")
        for _ in range(_count(size)):
            _skip_binary(reader, key, depth + 1)
            _skip_binary(reader, value, depth + 1)
    elif kind in (14, 15):  # set, list
        element, size = reader.take(1)[0], reader.unpack(">i")
        for _ in range(_count(size)):
            _skip_binary(reader, element, depth + 1)
    else:
        raise FrameError(f"thrift binary: unknown field type {kind}")


_COMPACT_FIXED = {1: 0, 2: 0, 3: 1, 7: 8, 13: 16}  # bool true/false (in the header), byte, double, uuid


def _skip_compact(reader: _Reader, kind: int, depth: int = 0, in_collection: bool = False) -> None:
    if depth > 64:
        raise FrameError("thrift: structs nested deeper than 64")
    if kind in (1, 2) and in_collection:
        reader.take(1)  # a bool inside a list/set/map is one byte
    elif kind in _COMPACT_FIXED:
        reader.take(_COMPACT_FIXED[kind])
    elif kind in (4, 5, 6):  # i16, i32, i64: varints
        reader.varint()
    elif kind == 8:  # binary
        reader.take(reader.varint())
    elif kind == 12:  # struct
        while (header := reader.take(1)[0]) != 0:
            if header >> 4 == 0:
                reader.varint()  # long-form field id
            _skip_compact(reader, header & 0x0F, depth + 1)
    elif kind in (9, 10):  # list, set
        header = reader.take(1)[0]
        size = header >> 4 if header >> 4 != 15 else reader.varint()
        for _ in range(_count(size)):
            _skip_compact(reader, header & 0x0F, depth + 1, in_collection=True)
    elif kind == 11:  # map
        size = reader.varint()
        if size:
            types = reader.take(1)[0]
            for _ in range(_count(size)):
                _skip_compact(reader, types >> 4, depth + 1, in_collection=True)
                _skip_compact(reader, types & 0x0F, depth + 1, in_collection=True)
    else:
        raise FrameError(f"thrift compact: unknown field type {kind}")


def _count(size: int) -> int:
    if size < 0:
        raise FrameError(f"thrift: negative collection size {size}")
    return size


# -- envelopes ---------------------------------------------------------------------------------
def _protocol_of(data: bytes) -> str | None:
    if len(data) >= 1 and data[0] == 0x80:  # strict binary: the version word 0x8001_00TT
        return BINARY
    if len(data) >= 1 and data[0] == COMPACT_ID:
        return COMPACT
    return None


def _envelope(reader: _Reader, protocol: str) -> tuple[int, str, int]:
    """(message type, name, seqid) at the reader's position."""
    if protocol == BINARY:
        version = reader.unpack(">I")
        if version & 0xFFFF0000 != VERSION_1:
            raise FrameError(f"thrift binary: bad version {version:#010x}")
        kind = version & 0xFF
        name = reader.take(reader.unpack(">i"))
        seqid = reader.unpack(">i")
    else:
        reader.take(1)
        byte = reader.take(1)[0]
        if byte & 0x1F != COMPACT_VERSION:
            raise FrameError(f"thrift compact: bad version {byte & 0x1F}")
        kind = byte >> 5
        seqid = reader.varint()
        seqid = seqid - (1 << 32) if seqid >= 1 << 31 else seqid
        name = reader.take(reader.varint())
    if kind not in TYPES:
        raise FrameError(f"thrift: unknown message type {kind}")
    try:
        return kind, name.decode(), seqid
    except UnicodeDecodeError:
        raise FrameError("thrift: method name is not UTF-8") from None


def _write_envelope(protocol: str, kind: int, name: str, seqid: int) -> bytes:
    encoded = name.encode()
    if protocol == BINARY:
        return struct.pack(">Ii", VERSION_1 | kind, len(encoded)) + encoded + struct.pack(">i", seqid)
    return bytes([COMPACT_ID, (kind << 5) | COMPACT_VERSION]) + _varint(seqid & 0xFFFFFFFF) + _varint(len(encoded)) + encoded


def _application_exception(protocol: str, message: str) -> bytes:
    """TApplicationException {1: string message, 2: i32 type}."""
    text = message.encode()
    if protocol == BINARY:
        return b"\x0b\x00\x01" + struct.pack(">i", len(text)) + text + b"\x08\x00\x02" + struct.pack(">i", INTERNAL_ERROR) + b"\x00"
    return b"\x18" + _varint(len(text)) + text + b"\x15" + _varint((INTERNAL_ERROR << 1) ^ (INTERNAL_ERROR >> 31)) + b"\x00"


# -- THeader ---------------------------------------------------------------------------------------
def _parse_theader(frame: bytes) -> tuple[int, int, str, list[int], dict[str, str], int]:
    """(flags, sequence, protocol, transforms, headers, payload offset) of a THeader frame (after its length)."""
    reader = _Reader(frame)
    magic, flags, sequence, words = reader.unpack(">H"), reader.unpack(">H"), reader.unpack(">I"), reader.unpack(">H")
    if magic != THEADER_MAGIC:
        raise FrameError(f"thrift THeader: bad magic {magic:#06x}")
    end = reader.position + words * 4
    if end > len(frame):
        raise FrameError("thrift THeader: header longer than the frame")
    protocol_id = reader.varint()
    if protocol_id not in THEADER_PROTOCOLS:
        raise FrameError(f"thrift THeader: unknown protocol id {protocol_id}")
    transforms = [reader.varint() for _ in range(reader.varint())]
    headers: dict[str, str] = {}
    while reader.position < end:
        info = reader.varint()
        if info == 0:  # padding
            break
        if info != INFO_KEYVALUE:
            raise FrameError(f"thrift THeader: unknown info type {info}")
        for _ in range(reader.varint()):
            key = reader.take(reader.varint()).decode(errors="replace")
            headers[key] = reader.take(reader.varint()).decode(errors="replace")
    return flags, sequence, THEADER_PROTOCOLS[protocol_id], transforms, headers, end


def _build_theader(flags: int, sequence: int, protocol: str, transforms: list[int], headers: dict[str, str], payload: bytes) -> bytes:
    body = bytearray(_varint({v: k for k, v in THEADER_PROTOCOLS.items()}[protocol]) + _varint(len(transforms)))
    for transform in transforms:
        body += _varint(transform)
    if headers:
        body += _varint(INFO_KEYVALUE) + _varint(len(headers))
        for key, value in headers.items():
            for text in (key.encode(), value.encode()):
                body += _varint(len(text)) + text
    body += b"\x00" * (-len(body) % 4)
    frame = struct.pack(">HHIH", THEADER_MAGIC, flags, sequence, len(body) // 4) + body + payload
    return struct.pack(">I", len(frame)) + frame


class ThriftCodec(Codec):
    name = "thrift"

    def decode(self, buffer: bytes) -> Message | None:
        if len(buffer) > 16 and buffer[4] == 0x80:  # the common case first: a framed strict-binary message
            length = _FRAME_LENGTH.unpack_from(buffer)[0]
            if 12 <= length <= self.max_frame_size and len(buffer) >= 4 + length:
                return self._framed_binary(buffer, length)
        try:
            return self._decode(buffer)
        except _Incomplete:
            return None

    def _decode(self, buffer: bytes) -> Message | None:
        protocol = _protocol_of(buffer)
        if protocol:  # unframed: walk the struct to find the end
            if len(buffer) < 2:
                return None
            reader = _Reader(buffer)
            kind, name, seqid = _envelope(reader, protocol)
            header_size = reader.position
            (_skip_binary if protocol == BINARY else _skip_compact)(reader, 12)
            self.check_size(reader.position, "message size")
            return self._message(kind, name, seqid, {}, header_size, reader.position - header_size, reader.position, buffer,
                                 {"protocol": protocol, "transport": UNFRAMED, "span": (0, header_size)})
        if len(buffer) < 4:
            return None
        length = struct.unpack_from(">i", buffer)[0]
        self.check_size(length, "frame length")
        if length < 2 and len(buffer) >= 6:
            raise FrameError(f"thrift: frame length {length} is too short for a message")
        frame = buffer[4:4 + length]
        if len(frame) >= 2 and frame[:2] == b"\x0f\xff":
            if len(frame) < length:
                return None
            flags, sequence, protocol, transforms, headers, offset = _parse_theader(frame)
            if transforms:
                raise FrameError(f"thrift THeader: transforms {transforms} (compression) are not supported")
            reader = _Reader(frame, offset)
            kind, name, seqid = _envelope(reader, protocol)
            envelope = {"protocol": protocol, "transport": THEADER, "flags": flags, "sequence": sequence, "headers": headers, "payload": frame[offset:],
                        "span": (4 + offset, 4 + reader.position)}
            return self._message(kind, name, seqid, headers, 4 + reader.position, length - reader.position, 4 + length, buffer, envelope)
        protocol = _protocol_of(frame)
        if protocol is None:
            if len(frame) >= 2:
                raise FrameError(f"thrift: not a Thrift message (starts {buffer[:6].hex()})")
            return None
        if len(frame) < length:
            return None
        reader = _Reader(frame)
        kind, name, seqid = _envelope(reader, protocol)
        return self._message(kind, name, seqid, {}, 4 + reader.position, length - reader.position, 4 + length, buffer,
                             {"protocol": protocol, "transport": FRAMED, "span": (4, 4 + reader.position)})

    def _framed_binary(self, buffer: bytes, length: int) -> Message:
        """The common case, without the general reader: a whole framed strict-binary message."""
        if length < 12:
            raise FrameError(f"thrift: frame length {length} is too short for a binary message")
        version, name_length = _VERSION_AND_NAME.unpack_from(buffer, 4)
        if version & 0xFFFF0000 != VERSION_1:
            raise FrameError(f"thrift binary: bad version {version:#010x}")
        if not 0 <= name_length <= length - 12:
            raise FrameError(f"thrift binary: method name length {name_length} does not fit the frame")
        kind = version & 0xFF
        if kind not in TYPES:
            raise FrameError(f"thrift: unknown message type {kind}")
        try:
            name = buffer[12:12 + name_length].decode()
        except UnicodeDecodeError:
            raise FrameError("thrift: method name is not UTF-8") from None
        seqid = _FRAME_LENGTH.unpack_from(buffer, 12 + name_length)[0]
        header = 16 + name_length
        interface, colon, method = name.rpartition(":")
        metadata = {"method": method, "interface": interface} if colon else {"method": name}
        raw = buffer if len(buffer) == 4 + length else buffer[:4 + length]
        return Message(TYPES[kind], seqid, metadata, header, 4 + length - header, 4 + length, raw,
                       {"protocol": BINARY, "transport": FRAMED, "kind": kind, "name": name, "span": (4, header)})

    @staticmethod
    def _message(kind: int, name: str, seqid: int, headers: dict[str, str], header_size: int, body_size: int, consumed: int,
                 buffer: bytes, envelope: dict) -> Message:
        metadata = dict(headers)
        interface, colon, method = name.rpartition(":")
        metadata["method"] = method
        if colon:
            metadata["interface"] = interface
        envelope.update(kind=kind, name=name)
        return Message(TYPES[kind], seqid, metadata, header_size, body_size, consumed, bytes(buffer[:consumed]), envelope)

    def encode(self, message: Message, mutation: dict[str, str]) -> bytes:
        if not mutation:
            return message.raw
        envelope = message.envelope
        if envelope["transport"] != THEADER:
            raise CodecError(f"thrift over a {envelope['transport']} transport is route-only: mutations need THeader headers")
        headers = {**envelope["headers"], **mutation}
        return _build_theader(envelope["flags"], envelope["sequence"], envelope["protocol"], [], headers, envelope["payload"])

    def rewrite_request_id(self, data: bytes, request_id: int) -> bytes:
        """The envelope written again with the new seqid (a compact varint may change length, so the
        frame length follows); THeader's own sequence number is set to the same id."""
        message = self.decode(data)
        if message is None or message.consumed != len(data):
            raise CodecError("thrift: rewrite_request_id needs exactly one whole frame")
        envelope = message.envelope
        start, end = envelope["span"]
        seqid = (request_id + (1 << 31)) % (1 << 32) - (1 << 31)  # a signed i32
        out = bytearray(data[:start] + _write_envelope(envelope["protocol"], envelope["kind"], envelope["name"], seqid) + data[end:])
        if envelope["transport"] != UNFRAMED:
            out[:4] = struct.pack(">I", len(out) - 4)
        if envelope["transport"] == THEADER:
            out[8:12] = struct.pack(">I", seqid & 0xFFFFFFFF)
        return bytes(out)

    def error_reply(self, message: Message, error: str) -> bytes:
        envelope = message.envelope
        protocol = envelope["protocol"]
        payload = _write_envelope(protocol, EXCEPTION, envelope["name"], message.request_id or 0) + _application_exception(protocol, error)
        if envelope["transport"] == UNFRAMED:
            return payload
        if envelope["transport"] == FRAMED:
            return struct.pack(">I", len(payload)) + payload
        return _build_theader(envelope["flags"], envelope["sequence"], protocol, [], {}, payload)

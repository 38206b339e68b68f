"""The Thrift codec against the real ``thrift`` library: every protocol x transport it produces decodes;
what the codec writes (mutated THeader frames, error replies) the library reads back; bad input is
refused or waited for, never a crash (hypothesis, 10,000 cases)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.protocol.THeaderProtocol import THeaderProtocol
from thrift.Thrift import TApplicationException, TMessageType, TType
from thrift.transport import TTransport
from thrift.transport.THeaderTransport import THeaderClientType, THeaderSubprotocolID, THeaderTransport

from meshlab.metaprotocol import CodecError, FrameError, MessageType, ThriftCodec

PROTOCOLS = {"binary": TBinaryProtocol.TBinaryProtocol, "compact": TCompactProtocol.TCompactProtocol}
HEADERS = [THeaderClientType.HEADERS]
codec = ThriftCodec()


def write_arguments(protocol) -> None:
    """A struct with nested containers, so an unframed decode has to walk every kind of field."""
    protocol.writeStructBegin("args")
    protocol.writeFieldBegin("id", TType.I64, 1)
    protocol.writeI64(-42)
    protocol.writeFieldEnd()
    protocol.writeFieldBegin("tags", TType.LIST, 2)
    protocol.writeListBegin(TType.STRING, 20)
    for index in range(20):
        protocol.writeString(f"tag{index}")
    protocol.writeListEnd()
    protocol.writeFieldEnd()
    protocol.writeFieldBegin("flags", TType.MAP, 300)  # a long-form field id in compact
    protocol.writeMapBegin(TType.STRING, TType.BOOL, 2)
    for key, value in (("a", True), ("b", False)):
        protocol.writeString(key)
        protocol.writeBool(value)
    protocol.writeMapEnd()
    protocol.writeFieldEnd()
    protocol.writeFieldBegin("inner", TType.STRUCT, 4)
    protocol.writeStructBegin("inner")
    protocol.writeFieldBegin("ratio", TType.DOUBLE, 1)
    protocol.writeDouble(0.5)
    protocol.writeFieldEnd()
    protocol.writeFieldBegin("ok", TType.BOOL, 2)
    protocol.writeBool(True)
    protocol.writeFieldEnd()
    protocol.writeFieldStop()
    protocol.writeStructEnd()
    protocol.writeFieldEnd()
    protocol.writeFieldStop()
    protocol.writeStructEnd()


def message(protocol: str, transport: str, name: str = "getUser", kind: int = TMessageType.CALL, seqid: int = 7, headers: dict | None = None) -> bytes:
    memory = TTransport.TMemoryBuffer()
    if transport == "header":
        inner = THeaderSubprotocolID.BINARY if protocol == "binary" else THeaderSubprotocolID.COMPACT
        wire = THeaderTransport(memory, HEADERS, default_protocol=inner)
        for key, value in (headers or {}).items():
            wire.set_header(key.encode(), value.encode())
        writer = THeaderProtocol(wire, HEADERS)
    else:
        wire = TTransport.TFramedTransport(memory) if transport == "framed" else memory
        writer = PROTOCOLS[protocol](wire)
    writer.writeMessageBegin(name, kind, seqid)
    write_arguments(writer)
    writer.writeMessageEnd()
    wire.flush()
    return memory.getvalue()


COMBINATIONS = [(p, t) for p in PROTOCOLS for t in ("framed", "unframed", "header")]


@pytest.mark.parametrize(("protocol", "transport"), COMBINATIONS)
def test_every_protocol_and_transport_decodes(protocol, transport):
    frame = message(protocol, transport, name="UserService:getUser", seqid=-5 if protocol == "compact" else 123456, headers={"tenant": "blue"})
    decoded = codec.decode(frame + b"next message")
    assert decoded.consumed == len(frame), "the frame's end is found exactly, even unframed"
    assert decoded.message_type is MessageType.REQUEST and decoded.request_id == (-5 if protocol == "compact" else 123456)
    assert decoded.metadata["method"] == "getUser" and decoded.metadata["interface"] == "UserService"
    assert (decoded.metadata.get("tenant") == "blue") == (transport == "header")
    assert decoded.envelope["protocol"] == protocol and decoded.envelope["transport"] == transport


@pytest.mark.parametrize(("protocol", "transport"), COMBINATIONS)
def test_every_truncation_waits_for_data(protocol, transport):
    frame = message(protocol, transport)
    assert all(codec.decode(frame[:cut]) is None for cut in range(len(frame))), "a prefix is never an error nor a message"


@pytest.mark.parametrize(("kind", "expected"), [(TMessageType.REPLY, MessageType.RESPONSE), (TMessageType.EXCEPTION, MessageType.ERROR),
                                                (TMessageType.ONEWAY, MessageType.ONEWAY)])
def test_message_types(kind, expected):
    assert codec.decode(message("binary", "framed", kind=kind)).message_type is expected


@pytest.mark.parametrize(("protocol", "transport"), COMBINATIONS)
def test_error_replies_are_read_by_thrift_as_application_exceptions(protocol, transport):
    request = codec.decode(message(protocol, transport, seqid=99))
    reply = TTransport.TMemoryBuffer(codec.error_reply(request, "rate limited by the mesh"))
    if transport == "header":
        reader = THeaderProtocol(THeaderTransport(reply, HEADERS), HEADERS)
    else:
        reader = PROTOCOLS[protocol](TTransport.TFramedTransport(reply) if transport == "framed" else reply)
    assert reader.readMessageBegin() == ("getUser", TMessageType.EXCEPTION, 99)
    error = TApplicationException()
    error.read(reader)
    assert (error.message, error.type) == ("rate limited by the mesh", TApplicationException.INTERNAL_ERROR)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mutations_become_theader_headers_that_thrift_reads(protocol):
    request = codec.decode(message(protocol, "header", headers={"tenant": "blue"}))
    mutated = codec.encode(request, {"x-canary": "v2", "tenant": "green"})
    transport = THeaderTransport(TTransport.TMemoryBuffer(mutated), HEADERS)
    reader = THeaderProtocol(transport, HEADERS)
    assert reader.readMessageBegin() == ("getUser", TMessageType.CALL, 7)
    assert transport.get_headers() == {b"tenant": b"green", b"x-canary": b"v2"}
    assert codec.decode(mutated).metadata == {"tenant": "green", "x-canary": "v2", "method": "getUser"}


def test_without_theader_the_codec_is_route_only():
    request = codec.decode(message("binary", "framed"))
    assert codec.encode(request, {}) == request.raw
    with pytest.raises(CodecError, match="framed transport is route-only: mutations need THeader headers"):
        codec.encode(request, {"x": "1"})


@pytest.mark.parametrize(("frame", "error"), [
    (b"\x7f\xff\xff\xff\x80\x01", "exceeds the maximum frame size"),
    (b"\xff\xff\xff\xfe\x80\x01", "impossible frame length -2"),
    (b"\x00\x00\x00\x10GET / HTTP/1.1", "not a Thrift message"),
    (b"\x80\x02\x00\x01\x00\x00\x00\x01x\x00\x00\x00\x01\x00", "bad version"),
    (b"\x80\x01\x00\x09\x00\x00\x00\x01x\x00\x00\x00\x01\x00", "unknown message type 9"),
    (b"\x00\x00\x00\x0e\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x07\x00\x00\x00", "unknown protocol id 7"),
])
def test_frames_that_can_never_be_valid_are_refused(frame, error):
    with pytest.raises(FrameError, match=error):
        codec.decode(frame)


def test_the_frame_size_limit_is_configurable():
    frame = message("binary", "framed")
    with pytest.raises(FrameError, match="exceeds the maximum frame size 32"):
        ThriftCodec(max_frame_size=32).decode(frame)


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=96) | st.sampled_from([message(p, t) for p, t in COMBINATIONS]).flatmap(
    lambda frame: st.tuples(st.integers(0, len(frame) - 1), st.integers(0, 255)).map(lambda change: frame[:change[0]] + bytes([change[1]]) + frame[change[0] + 1:])))
def test_fuzz_never_crashes(data):
    """Random bytes and single-byte corruptions of real frames: a message, wait for data, or FrameError."""
    try:
        decoded = codec.decode(data)
    except FrameError:
        return
    assert decoded is None or 0 < decoded.consumed <= len(data)


def decode_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meshlab.cli", "metaprotocol", "decode", "--codec", "thrift", *args], capture_output=True, text=True, timeout=30)


def test_cli_decode(tmp_path):
    frame = message("compact", "framed", seqid=3)
    assert json.loads(decode_cli("--hex", frame.hex()).stdout) == {"message_type": "Request", "request_id": 3, "metadata": {"method": "getUser"}, "consumed": len(frame)}
    assert json.loads(decode_cli("--hex", frame[:9].hex()).stdout) == {"wait_for_data": True}
    (tmp_path / "frame.bin").write_bytes(frame)
    assert json.loads(decode_cli("--file", str(tmp_path / "frame.bin")).stdout)["consumed"] == len(frame)
    refused = decode_cli("--hex", frame.hex(), "--max-frame-size", "16")
    assert refused.returncode == 2 and "exceeds the maximum frame size 16" in refused.stderr
    assert decode_cli("--hex", "zz").returncode == 2


@pytest.mark.parametrize(("protocol", "transport"), COMBINATIONS)
@pytest.mark.parametrize("seqid", [1, 300, 70_000, -2])
def test_rewritten_seqids_are_read_by_thrift(protocol, transport, seqid):
    """A compact seqid is a varint: rewriting may change the envelope's length and so the frame's."""
    frame = codec.rewrite_request_id(message(protocol, transport, seqid=5, headers={"tenant": "blue"}), seqid)
    memory = TTransport.TMemoryBuffer(frame)
    if transport == "header":
        wire = THeaderTransport(memory, HEADERS)
        reader = THeaderProtocol(wire, HEADERS)
    else:
        reader = PROTOCOLS[protocol](TTransport.TFramedTransport(memory) if transport == "framed" else memory)
    assert reader.readMessageBegin() == ("getUser", TMessageType.CALL, seqid)
    assert codec.decode(frame).consumed == len(frame)
    if transport == "header":
        assert wire.get_headers() == {b"tenant": b"blue"}

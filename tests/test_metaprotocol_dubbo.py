"""The Dubbo2 codec against real Dubbo2 frames (dubbo-ssl-python's encoder) and an independent Hessian 2
decoder (python-hessian): every frame decodes to its interface, method and attachments; mutated frames
re-encode to bodies the other decoder reads; error replies are read by dubbo-ssl-python; bad input is
refused or waited for, never a crash (hypothesis, 10,000 cases)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from io import BytesIO

import pytest
from dubbo_ssl.codec.decoder import Response, parse_response_head
from dubbo_ssl.codec.encoder import Object, Request
from dubbo_ssl.common.exceptions import DubboResponseException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyhessian.parser import Parser

from meshlab.metaprotocol import CodecError, DubboCodec, FrameError, MessageType
from meshlab.metaprotocol.dubbo import parameter_count

codec = DubboCodec()
ARGUMENTS = ["näme € 𝄞", 42, -70000, 3.5, True, ["a", "b"], 10**12, Object("com.shop.Item", {"sku": "A-1", "qty": 2}), "x" * 300]


def request(arguments=ARGUMENTS, context=None) -> bytes:
    return bytes(Request({"dubbo_version": "2.6.8", "path": "com.shop.OrderService", "version": "1.0.0", "method": "place",
                          "arguments": arguments, "context": context or {"tenant": "blue"}, "group": "prod"}).encode())


def hessian_values(body: bytes) -> list:
    """Every value of a body, read by python-hessian's Hessian 2 parser (not ours)."""
    parser = Parser()
    parser.version = 2
    parser._stream = BytesIO(body)  # noqa: SLF001 - the parser reads values from any stream
    values = []
    while parser._stream.tell() < len(body):  # noqa: SLF001
        values.append(parser.read_object())
    return values


def test_a_real_request_decodes_to_interface_method_and_attachments():
    frame = request()
    decoded = codec.decode(frame + b"\xda\xbb")
    assert decoded.consumed == len(frame) and decoded.message_type is MessageType.REQUEST
    assert decoded.metadata == {"interface": "com.shop.OrderService", "method": "place", "version": "1.0.0", "path": "com.shop.OrderService",
                                "group": "prod", "tenant": "blue"}
    assert decoded.request_id == struct.unpack(">q", frame[4:12])[0]


def test_every_truncation_waits_for_data():
    frame = request()
    assert all(codec.decode(frame[:cut]) is None for cut in range(len(frame)))


def test_mutations_rewrite_only_the_attachments():
    frame = request(context={"tenant": "blue", "trace": "t-1"})
    mutated = codec.encode(codec.decode(frame), {"tenant": "green", "x-canary": "v2"})
    original, rewritten = hessian_values(frame[16:]), hessian_values(mutated[16:])
    assert rewritten[:-1] == original[:-1], "every value before the attachments is unchanged"
    assert rewritten[-1] == {**original[-1], "tenant": "green", "x-canary": "v2"}
    assert struct.unpack(">i", mutated[12:16])[0] == len(mutated) - 16 and mutated[:12] == frame[:12]
    assert codec.decode(mutated).metadata["x-canary"] == "v2"
    assert codec.encode(codec.decode(frame), {}) == frame


@pytest.mark.parametrize(("descriptor", "count"), [("", 0), ("I", 1), ("Ljava/lang/String;IJ", 3), ("[[I[Ljava/lang/Object;Z", 3)])
def test_parameter_descriptors(descriptor, count):
    assert parameter_count(descriptor) == count


def header(flags: int, status: int, request_id: int, body: bytes) -> bytes:
    return struct.pack(">HBBqi", 0xDABB, flags, status, request_id, len(body)) + body


@pytest.mark.parametrize(("frame", "kind", "status"), [
    (header(0xE2, 0, 5, b"N"), MessageType.HEARTBEAT, None),
    (header(0x22, 20, 5, b"N"), MessageType.HEARTBEAT, "OK"),
    (header(0x02, 20, 5, b"\x91\x05ok!!!"), MessageType.RESPONSE, "OK"),
    (header(0x02, 70, 5, b"\x05boom!"), MessageType.ERROR, "SERVICE_ERROR"),
])
def test_heartbeats_and_responses(frame, kind, status):
    decoded = codec.decode(frame)
    assert decoded.message_type is kind and decoded.request_id == 5 and decoded.metadata.get("status") == status


def test_oneway_requests():
    frame = bytearray(request())
    frame[2] &= ~0x40
    assert codec.decode(bytes(frame)).message_type is MessageType.ONEWAY


def test_error_replies_are_read_by_dubbo_ssl_python():
    reply = codec.error_reply(codec.decode(request()), "rate limited by the mesh")
    with pytest.raises(DubboResponseException, match="SERVER_ERROR"):
        parse_response_head(reply[:16])
    assert Response(list(reply[16:])).read_next() == "rate limited by the mesh"
    with pytest.raises(CodecError, match="no error reply to a Heartbeat"):
        codec.error_reply(codec.decode(header(0xE2, 0, 5, b"N")), "x")


@pytest.mark.parametrize(("frame", "error"), [
    (b"\xca\xfe" + bytes(14), "bad magic cafe"),
    (header(0xC2, 0, 1, b"")[:12] + struct.pack(">i", 1 << 30), "exceeds the maximum frame size"),
    (header(0xC2, 0, 1, b"")[:12] + struct.pack(">i", -1), "impossible body length -1"),
    (header(0xC2, 0, 1, b"\x052.0.2\x01a\x00\x01m\x03Q;I"), "is not a JVM type list"),
    (header(0xC2, 0, 1, b"\x05 2.0.2"), "request body"),
])
def test_frames_that_can_never_be_valid_are_refused(frame, error):
    with pytest.raises(FrameError, match=error):
        codec.decode(frame)


SAMPLE = request()


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=64).map(lambda tail: b"\xda\xbb" + tail) | st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255)).map(
    lambda change: SAMPLE[:change[0]] + bytes([change[1]]) + SAMPLE[change[0] + 1:]))
def test_fuzz_never_crashes(data):
    try:
        decoded = codec.decode(data)
    except FrameError:
        return
    assert decoded is None or 16 <= decoded.consumed <= len(data)


def test_cli_decode():
    done = subprocess.run([sys.executable, "-m", "meshlab.cli", "metaprotocol", "decode", "--codec", "dubbo", "--hex", request().hex()],
                          capture_output=True, text=True, timeout=30)
    summary = json.loads(done.stdout)
    assert summary["message_type"] == "Request" and summary["metadata"]["method"] == "place"
    refused = subprocess.run([sys.executable, "-m", "meshlab.cli", "metaprotocol", "decode", "--codec", "dubbo", "--hex", "cafe00"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "bad magic cafe" in refused.stderr


@pytest.mark.parametrize("code", [b"\x55", b"\x43", b"\x4d", b"\x57", b"\x48"])
def test_deep_nesting_is_refused_not_a_recursion_error(code):
    from meshlab.metaprotocol.hessian2 import Decoder, HessianError

    with pytest.raises(HessianError, match="nested deeper than 64"):
        Decoder(code * 5000).value()


def test_dubbo_py_frames_decode_and_dubbo_py_reads_ours():
    """dubbo-py (a second, independent Dubbo2 implementation) both ways: its requests, heartbeats and
    responses decode; its decoder reads our mutated request, our heartbeat reply and our error reply."""
    from dubbo.codec.hessian2 import Decoder, DubboHeartBeatRequest, DubboRequest, DubboResponse

    request = DubboRequest(9, True, "2.0.2", "com.shop.Orders", "place", ["alice", 3, 2.5], attachment={"tenant": "blue"}).encode()
    decoded = codec.decode(request)
    assert decoded.metadata == {"interface": "com.shop.Orders", "method": "place", "version": "1.0", "tenant": "blue"}
    rewritten = Decoder(BytesIO(codec.encode(decoded, {"tenant": "green", "x-canary": "v2"}))).decode()
    assert (rewritten.args, rewritten.attachment) == (["alice", 3, 2.5], {"tenant": "green", "x-canary": "v2"})
    heartbeat = codec.decode(DubboHeartBeatRequest(5, twoway=True).encode())
    assert heartbeat.message_type is MessageType.HEARTBEAT
    assert type(Decoder(BytesIO(codec.heartbeat_reply(heartbeat))).decode()).__name__ == "DubboHeartBeatResponse"
    refused = Decoder(BytesIO(codec.error_reply(decoded, "rate limited"))).decode()
    assert (refused.id, refused.status, refused.error) == (9, 80, "rate limited")
    assert codec.decode(DubboResponse(9, DubboResponse.OK, "done", None).encode()).message_type is MessageType.RESPONSE
    assert codec.decode(DubboResponse(9, 70, None, "boom").encode()).metadata == {"status": "SERVICE_ERROR"}


def test_rewritten_request_ids_are_read_by_dubbo_py():
    from dubbo.codec.hessian2 import Decoder, DubboRequest

    frame = DubboRequest(9, True, "2.0.2", "com.shop.Orders", "place", ["alice"], attachment={}).encode()
    assert Decoder(BytesIO(codec.rewrite_request_id(frame, 123456789))).decode().id == 123456789

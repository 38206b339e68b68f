"""The Redis and Kafka codecs against their real clients: hiredis packs commands and reads our error
replies; kafka-python writes request headers (v1 and flexible v2); bad input is refused or waited for."""

from __future__ import annotations

import struct

import hiredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.protocol.metadata import MetadataRequest
from kafka.protocol.parser import KafkaProtocol

from meshlab.metaprotocol import CodecError, FrameError, KafkaCodec, MessageType, RedisCodec

redis = RedisCodec()
replies = RedisCodec(direction="response")
kafka = KafkaCodec()


@pytest.mark.parametrize("command", [("SET", "user:1", "alice"), ("get", "user:1"), ("PING",), ("HSET", "h", "f", "v" * 1000)])
def test_commands_packed_by_hiredis_decode(command):
    frame = hiredis.pack_command(command)
    decoded = redis.decode(frame + hiredis.pack_command(("PING",)))
    assert decoded.message_type is MessageType.REQUEST and decoded.consumed == len(frame) and decoded.request_id is None
    assert decoded.metadata == {"command": command[0].upper(), **({"key": command[1]} if len(command) > 1 else {})}
    assert all(redis.decode(frame[:cut]) is None for cut in range(len(frame)))


@pytest.mark.parametrize(("reply", "kind"), [(b"+OK\r\n", MessageType.RESPONSE), (b"-ERR wrong\r\n", MessageType.ERROR), (b":42\r\n", MessageType.RESPONSE),
                                             (b"$-1\r\n", MessageType.RESPONSE), (b"*2\r\n$3\r\nfoo\r\n:1\r\n", MessageType.RESPONSE)])
def test_replies_decode_in_their_direction(reply, kind):
    decoded = replies.decode(reply)
    assert decoded.message_type is kind and decoded.consumed == len(reply)


def test_error_replies_are_read_by_hiredis():
    reader = hiredis.Reader()
    reader.feed(redis.error_reply(redis.decode(hiredis.pack_command(("GET", "k"))), "rate limited\r\nby the mesh"))
    error = reader.gets()
    assert isinstance(error, hiredis.ReplyError) and str(error) == "ERR rate limited by the mesh"


def test_redis_is_route_only():
    decoded = redis.decode(hiredis.pack_command(("GET", "k")))
    assert redis.encode(decoded, {}) == decoded.raw
    with pytest.raises(CodecError, match="route-only"):
        redis.encode(decoded, {"x": "1"})


@pytest.mark.parametrize(("frame", "error"), [(b"?what\r\n", "unknown RESP type"), (b"*1\r\n:5\r\n", "array of bulk strings"),
                                              (b"$99999999999\r\n", "exceeds the maximum frame size"), (b"*x\r\n", "is not a number"),
                                              (b"$3\r\nabcde", "does not end with CRLF")])
def test_bad_redis_frames(frame, error):
    with pytest.raises(FrameError, match=error):
        redis.decode(frame)


def kafka_request(request, client_id="meshlab-test") -> tuple[int, bytes]:
    protocol = KafkaProtocol(client_id=client_id)
    correlation = protocol.send_request(request)
    return correlation, protocol.send_bytes()


@pytest.mark.parametrize("version", [0, 9])  # v9 is a flexible version: request header v2 with tagged fields
def test_kafka_python_requests_decode(version):
    request = MetadataRequest[version]
    topics = [request.MetadataRequestTopic(name="orders")] if version else ["orders"]
    correlation, frame = kafka_request(request(topics=topics, **({"allow_auto_topic_creation": False} if version else {})))
    assert request.flexible_version_q(version) == (version == 9)
    decoded = kafka.decode(frame + b"\x00\x00")
    assert decoded.message_type is MessageType.REQUEST and decoded.request_id == decoded.stream_id == correlation and decoded.consumed == len(frame)
    assert decoded.metadata == {"api_key": "3", "api": "Metadata", "api_version": str(version), "client_id": "meshlab-test"}
    assert all(kafka.decode(frame[:cut]) is None for cut in range(len(frame)))


def test_kafka_responses_and_refusals():
    response = struct.pack(">ii", 4, 77)
    assert KafkaCodec(direction="response").decode(response).request_id == 77
    request = kafka.decode(kafka_request(MetadataRequest[0](topics=["orders"]))[1])
    with pytest.raises(CodecError, match="no generic error reply"):
        kafka.error_reply(request, "no route")
    for frame, error in ((struct.pack(">i", 1 << 30), "exceeds the maximum frame size"), (struct.pack(">i", 6) + bytes(6), "smaller than a request header"),
                         (struct.pack(">ihhih", 10, -4, 0, 1, -1), "is not a Kafka request")):
        with pytest.raises(FrameError, match=error):
            kafka.decode(frame)


def fuzz(codec, data: bytes) -> None:
    """A message, wait for data, or FrameError: never anything else."""
    try:
        decoded = codec.decode(data)
    except FrameError:
        return
    assert decoded is None or 0 < decoded.consumed <= len(data)


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=80) | st.binary(max_size=40).map(lambda tail: hiredis.pack_command(("SET", "k", "v"))[:12] + tail))
def test_fuzz_redis_commands(data):
    fuzz(redis, data)


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=80))
def test_fuzz_redis_replies(data):
    fuzz(replies, data)


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=80) | st.binary(max_size=60).map(lambda tail: struct.pack(">ihhi", 10 + len(tail), 3, 0, 1) + tail))
def test_fuzz_kafka_requests(data):
    fuzz(kafka, data)


def test_kafka_correlation_ids_are_rewritten_in_both_directions():
    _, frame = kafka_request(MetadataRequest[0](topics=["orders"]))
    assert kafka.decode(kafka.rewrite_request_id(frame, 4242)).request_id == 4242
    assert KafkaCodec(direction="response").decode(KafkaCodec(direction="response").rewrite_request_id(struct.pack(">ii", 4, 1), 7)).request_id == 7
    with pytest.raises(CodecError, match="no request id"):
        redis.rewrite_request_id(hiredis.pack_command(("GET", "k")), 1)

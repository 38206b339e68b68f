"""Codec throughput: how many messages per second each codec decodes, and what parsing less buys.

Run: ``.venv/bin/python benchmarks/bench_metaprotocol.py``. One run, this process, 20,000 messages each:
1. baseline: the thrift library's own full decode of a framed binary call (envelope plus argument
   struct), with its fastbinary C extension, as generated code does it;
2. meshlab's thrift codec on the same frames, framed (envelope only) and unframed (envelope plus a
   walk over the struct to find its end), and THeader (headers parsed too);
3. dubbo: header plus hessian2 walk to the attachments; redis; kafka.
Printed as messages per second (best of 5 passes) and the ratio to the baseline (target: thrift envelope
decode >= 5x).
"""

from __future__ import annotations

import time

import hiredis
from dubbo_ssl.codec.encoder import Request
from kafka.protocol.metadata import MetadataRequest
from kafka.protocol.parser import KafkaProtocol
from thrift.protocol.TBase import TBase
from thrift.protocol.TBinaryProtocol import TBinaryProtocol, TBinaryProtocolAccelerated
from thrift.Thrift import TMessageType, TType
from thrift.transport import TTransport
from thrift.transport.THeaderTransport import THeaderClientType, THeaderTransport

from meshlab.metaprotocol import DubboCodec, KafkaCodec, RedisCodec, ThriftCodec

COUNT = 20_000


class Arguments(TBase):
    """What the thrift compiler generates for ``getUser(1: i64 id, 2: list<string> tags, 3: string note)``:
    a TBase with a thrift_spec, which TBinaryProtocolAccelerated decodes in C (fastbinary)."""

    thrift_spec = (None, (1, TType.I64, "id", None, None), (2, TType.LIST, "tags", (TType.STRING, "UTF8", False), None),
                   (3, TType.STRING, "note", "UTF8", None))

    def __init__(self, id=None, tags=None, note=None):  # noqa: A002 - the field's name
        self.id, self.tags, self.note = id, tags, note


def thrift_frame(transport: str) -> bytes:
    memory = TTransport.TMemoryBuffer()
    wire = {"framed": lambda: TTransport.TFramedTransport(memory), "unframed": lambda: memory,
            "header": lambda: THeaderTransport(memory, [THeaderClientType.HEADERS])}[transport]()
    if transport == "header":
        wire.set_header(b"tenant", b"blue")
    protocol = TBinaryProtocol(wire)
    protocol.writeMessageBegin("getUser", TMessageType.CALL, 1)
    Arguments(42, [f"tag{i}" for i in range(8)], "x" * 64).write(protocol)
    protocol.writeMessageEnd()
    wire.flush()
    return memory.getvalue()


def rate(decode, frames: list[bytes], passes: int = 5) -> float:
    """Messages per second, best of ``passes`` (this VM's neighbours make single passes noisy)."""
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for frame in frames:
            decode(frame)
        best = min(best, time.perf_counter() - start)
    return len(frames) / best


def thrift_full_decode(frame: bytes) -> None:
    """The library's way: envelope by the protocol, struct by fastbinary."""
    protocol = TBinaryProtocolAccelerated(TTransport.TFramedTransport(TTransport.TMemoryBuffer(frame)))
    protocol.readMessageBegin()
    Arguments().read(protocol)


def main() -> None:
    framed = thrift_frame("framed")
    baseline = rate(thrift_full_decode, [framed] * COUNT)
    print(f"{COUNT} messages each, one process")
    print(f"{'1. thrift library, full decode (fastbinary)':<52} {baseline:>10,.0f} msg/s   (baseline)")
    thrift = ThriftCodec()
    for label, transport in (("2a. meshlab thrift, framed (envelope)", "framed"), ("2b. meshlab thrift, unframed (envelope + struct walk)", "unframed"),
                             ("2c. meshlab thrift, THeader (headers + envelope)", "header")):
        measured = rate(thrift.decode, [thrift_frame(transport)] * COUNT)
        print(f"{label:<52} {measured:>10,.0f} msg/s   {measured / baseline:5.1f}x the baseline")
    dubbo = bytes(Request({"dubbo_version": "2.6.8", "path": "com.shop.OrderService", "version": "1.0.0", "method": "place",
                           "arguments": ["alice", 42, ["a", "b", "c"]], "context": {"tenant": "blue"}, "group": "prod"}).encode())
    protocol = KafkaProtocol(client_id="bench")
    protocol.send_request(MetadataRequest[0](topics=["orders"]))
    others = (("3a. meshlab dubbo (header + hessian2 to attachments)", DubboCodec(), dubbo),
              ("3b. meshlab redis (RESP command)", RedisCodec(), hiredis.pack_command(("SET", "user:1", "alice"))),
              ("3c. meshlab kafka (request header)", KafkaCodec(), protocol.send_bytes()))
    for label, codec, frame in others:
        measured = rate(codec.decode, [frame] * COUNT)
        print(f"{label:<52} {measured:>10,.0f} msg/s   {measured / baseline:5.1f}x the baseline")


if __name__ == "__main__":
    main()

"""Beyond HTTP: Aeraki's MetaProtocol ideas in meshlab — one generic proxy, a codec per protocol.

    codec    the codec contract (decode / encode with a mutation / error reply), message types, errors
    hessian2 Hessian 2 values (what walking a Dubbo body to its attachments needs)
    dubbo    Dubbo2: header fast path, hessian2 attachments, mutations written back
    thrift   Thrift: binary and compact; framed, unframed and THeader (mutations as THeader headers)
    redis    RESP commands and replies, matched in order (route-only)
    kafka    the request header; the correlation id as the stream id (route-only)
    router   MetaRouter (metaprotocol.aeraki.io/v1alpha1): matches, weights, mirror, mutation, local rate limit
    proxy    the asyncio proxy: decode, route, balance, mirror, mutate, rate-limit, replies in order

``CODECS`` maps a codec name to its class.
"""

from meshlab.metaprotocol.codec import Codec, CodecError, DirectedCodec, FrameError, Message, MessageType
from meshlab.metaprotocol.dubbo import DubboCodec
from meshlab.metaprotocol.kafka import KafkaCodec
from meshlab.metaprotocol.redis import RedisCodec
from meshlab.metaprotocol.thrift import ThriftCodec

CODECS: dict[str, type[Codec]] = {"dubbo": DubboCodec, "thrift": ThriftCodec, "redis": RedisCodec, "kafka": KafkaCodec}

__all__ = ["CODECS", "Codec", "CodecError", "DirectedCodec", "DubboCodec", "FrameError", "KafkaCodec", "Message", "MessageType", "RedisCodec", "ThriftCodec"]

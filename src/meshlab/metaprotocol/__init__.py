"""Beyond HTTP: Aeraki's MetaProtocol ideas in meshlab — one generic proxy, a codec per protocol.

    codec    the codec contract (decode / encode with a mutation / error reply), message types, errors
    thrift   Thrift: binary and compact; framed, unframed and THeader (mutations as THeader headers)

``CODECS`` maps a codec name to its class. Work in progress (issue 7): the dubbo, redis and kafka
codecs, the MetaRouter router and the proxy are not built yet.
"""

from meshlab.metaprotocol.codec import Codec, CodecError, FrameError, Message, MessageType
from meshlab.metaprotocol.thrift import ThriftCodec

CODECS: dict[str, type[Codec]] = {"thrift": ThriftCodec}

__all__ = ["CODECS", "Codec", "CodecError", "FrameError", "Message", "MessageType", "ThriftCodec"]

# %% [markdown]
# # Lab 11 · A codec of your own
#
# Your team's inventory service speaks **MLKV**, a small RPC protocol of its own. To route it by key in the
# mesh (user keys to one backend, everything else to another), the MetaProtocol proxy needs a codec for it.
# Write that codec; the checks decode frames with it, then put it into the proxy and push real traffic
# through, one byte at a time.
#
# Stage: **model** for exercise 1, **live on loopback** (any machine) for exercise 2.
#
# **MLKV frame** (all integers big-endian):
#
# | offset | size | field |
# |---|---|---|
# | 0 | 2 | magic `b"KV"` |
# | 2 | 1 | version, always `1` |
# | 3 | 1 | type: 1 request, 2 response, 3 error |
# | 4 | 4 | request id (unsigned) |
# | 8 | 2 | key length *k* |
# | 10 | *k* | key, UTF-8 |
# | 10+*k* | 4 | value length *v* |
# | 14+*k* | *v* | value |
#
# The codec contract (chapter 11): `decode(buffer)` returns `None` while the frame is incomplete, a
# `Message(message_type, request_id, metadata, header_size, body_size, consumed, raw)` once it is whole
# (metadata `{"key": ...}`), or raises `FrameError` for bytes that can never be valid (bad magic, unknown
# version or type, a value longer than `self.max_frame_size`, checked with `self.check_size`).
# `encode(message, mutation)` may be route-only (raise `CodecError` when asked to mutate).
# `error_reply(message, error)` is a type-3 frame with the request's id and the error text as its value.

# %%
import struct

from meshlab.check import lab11
from meshlab.metaprotocol import Codec, CodecError, FrameError, Message, MessageType

# %% [markdown]
# ## Exercise 1 · The codec
#
# Return your codec class (a subclass of `Codec`).

# %% nbgrader={"grade": false, "grade_id": "codec_class", "locked": false, "schema_version": 3, "solution": true}
def codec_class():
    ### BEGIN SOLUTION
    header = struct.Struct(">2sBBIH")
    types = {1: MessageType.REQUEST, 2: MessageType.RESPONSE, 3: MessageType.ERROR}

    class KvCodec(Codec):
        name = "mlkv"

        def decode(self, buffer):
            if len(buffer) >= 2 and buffer[:2] != b"KV":
                raise FrameError("mlkv: bad magic")
            if len(buffer) < header.size:
                return None
            _, version, kind, request_id, key_length = header.unpack_from(buffer)
            if version != 1 or kind not in types:
                raise FrameError(f"mlkv: version {version}, type {kind}")
            value_at = header.size + key_length
            if len(buffer) < value_at + 4:
                return None
            value_length = struct.unpack_from(">I", buffer, value_at)[0]
            self.check_size(value_length, "value length")
            end = value_at + 4 + value_length
            if len(buffer) < end:
                return None
            key = bytes(buffer[header.size:value_at]).decode()
            return Message(types[kind], request_id, {"key": key}, value_at + 4, value_length, end, bytes(buffer[:end]))

        def encode(self, message, mutation):
            if mutation:
                raise CodecError("mlkv is route-only")
            return message.raw

        def error_reply(self, message, error):
            value = error.encode()
            return header.pack(b"KV", 1, 3, message.request_id, 0) + struct.pack(">I", len(value)) + value

    return KvCodec
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_codec", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab11.check_codec(codec_class)
print("the codec decodes, waits, refuses and answers as the spec says")

# %% [markdown]
# ## Exercise 2 · Real traffic through the proxy
#
# The check starts two backends (`users` and `rest`), a MetaRouter sending keys with the prefix `user:` to
# `users` and everything else to `rest`, and the proxy with *your* codec. A client sends four pipelined
# requests one byte at a time and reads the replies. Nothing to write: run it.

# %% tags=["nbval-ignore-output"] nbgrader={"grade": true, "grade_id": "check_live", "locked": true, "points": 1, "schema_version": 3, "solution": false}
stats = lab11.check_live(codec_class)
print("routed:", {key: value for key, value in stats.items() if key.startswith("routed")})
assert stats["replies"] == 4
print("both checks passed")

"""The proxy-wasm ABI's vocabulary: the numbers a module and its host exchange, and how header maps
travel through the module's memory. Values are those of the proxy-wasm spec (github.com/proxy-wasm/spec,
ABI 0.2.1) as the AssemblyScript SDK @solo-io/proxy-runtime 0.1.8 (assembly/runtime.ts) declares them.

    ABI_VERSIONS      the exports by which a module says which ABI it speaks
    WasmResult        what every host function returns (Ok, NotFound, BadArgument, ...)
    LogLevel          proxy_log's levels, trace to critical
    HeaderMapType     which header map a call means (request/response headers, trailers, ...)
    BufferType        which buffer a call means (bodies, the plugin's and VM's configuration, ...)
    MetricType        counter, gauge, histogram
    encode_pairs      header pairs in the ABI's wire form (count, sizes, NUL-terminated names and values)
    decode_pairs      the reverse; ValueError says what is malformed
"""

from __future__ import annotations

import struct
from enum import IntEnum

#: Exported (empty) functions whose name says the ABI version; a module exports exactly one. The
#: AssemblyScript SDK 0.1.8 exports proxy_abi_version_0_2_0 (wasm.md); Rust/Go SDKs export 0_2_1.
ABI_VERSIONS = ("proxy_abi_version_0_1_0", "proxy_abi_version_0_2_0", "proxy_abi_version_0_2_1")


class WasmResult(IntEnum):
    Ok = 0
    NotFound = 1
    BadArgument = 2
    SerializationFailure = 3
    ParseFailure = 4
    BadExpression = 5
    InvalidMemoryAccess = 6
    Empty = 7
    CasMismatch = 8
    ResultMismatch = 9
    InternalFailure = 10
    BrokenConnection = 11
    Unimplemented = 12


class LogLevel(IntEnum):
    trace = 0
    debug = 1
    info = 2
    warn = 3
    error = 4
    critical = 5


class HeaderMapType(IntEnum):
    RequestHeaders = 0
    RequestTrailers = 1
    ResponseHeaders = 2
    ResponseTrailers = 3
    GrpcReceiveInitialMetadata = 4
    GrpcReceiveTrailingMetadata = 5
    HttpCallResponseHeaders = 6
    HttpCallResponseTrailers = 7


class BufferType(IntEnum):
    HttpRequestBody = 0
    HttpResponseBody = 1
    NetworkDownstreamData = 2
    NetworkUpstreamData = 3
    HttpCallResponseBody = 4
    GrpcReceiveBuffer = 5
    VmConfiguration = 6
    PluginConfiguration = 7
    CallData = 8


class MetricType(IntEnum):
    Counter = 0
    Gauge = 1
    Histogram = 2


def encode_pairs(pairs: list[tuple[str, str]]) -> bytes:
    """u32 count, then u32 name size and u32 value size per pair, then each name and value followed by
    a NUL (sizes exclude the NUL): the form of proxy_get_header_map_pairs' answer."""
    encoded = [(name.encode(), value.encode()) for name, value in pairs]
    sizes = [size for name, value in encoded for size in (len(name), len(value))]
    data = b"".join(name + b"\0" + value + b"\0" for name, value in encoded)
    return struct.pack(f"<{1 + len(sizes)}I", len(encoded), *sizes) + data


def decode_pairs(data: bytes) -> list[tuple[str, str]]:
    """The pairs a module sends (proxy_set_header_map_pairs, proxy_send_local_response's headers)."""
    if not data:
        return []
    if len(data) < 4:
        raise ValueError(f"header pairs of {len(data)} bytes: too short for the count")
    (count,) = struct.unpack_from("<I", data)
    if 4 + 8 * count > len(data):
        raise ValueError(f"header pairs claim {count} pairs but have only {len(data)} bytes")
    sizes = struct.unpack_from(f"<{2 * count}I", data, 4)
    at, pairs = 4 + 8 * count, []
    for index in range(count):
        name_size, value_size = sizes[2 * index], sizes[2 * index + 1]
        if at + name_size + value_size + 2 > len(data):
            raise ValueError(f"header pair {index} runs past the end of the {len(data)} bytes")
        name = data[at:at + name_size].decode()
        at += name_size + 1
        value = data[at:at + value_size].decode()
        at += value_size + 1
        pairs.append((name, value))
    return pairs

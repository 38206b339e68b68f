"""A proxy-wasm host on wasmtime: real proxy-wasm modules as HTTP filters of meshlab's HCM.

Envoy runs a Wasm filter as a VM (one module instance) holding one root context (the plugin: its
configuration, its metrics) and one context per HTTP stream. Envoy calls into the module at each step
of the stream (``proxy_on_request_headers``, ...); the module calls back into the host to read and change
headers, answer locally, log, count. This host does the same for one VM per filter, with wasmtime's
Python API; it is not thread-safe (the lab sidecar is one asyncio thread, as an Envoy worker is one thread).

    new_engine      a wasmtime engine whose traps need no signal handler (safe beside faulthandler)
    WasmError       a module cannot be loaded or started (missing host function, no ABI export, on_configure false)
    ProcExit        the module called WASI proc_exit (the SDK's abort ends there)
    Metric          one metric a module defined: type, name, value (histograms keep their samples)
    SharedData      proxy-wasm shared data: key -> (value, cas), shared by the VMs given the same object
    PROPERTIES      the properties proxy_get_property answers, and where each comes from
    StreamState     one stream's header maps, bodies, local reply and (at the end) StreamInfo
    HOST_FUNCTIONS  every import this host provides: (namespace, name) -> signature and method
    WasmVM          one instance of a module: the host functions, the root context, calls into the module
    check_module    refuse a module without a proxy-wasm ABI export or importing what the host lacks
    WasmStream      one HTTP stream's context in the VM (a meshlab.envoy.httpfilter.FilterStream)
    WasmHttpFilter  the filter (an HttpFilter): loads the module, makes streams, applies the failure policy,
                    prints the VM's metrics as Envoy's /stats/prometheus would
    envoy_log       the default log sink: Python logging, in Envoy's "wasm log ..." form
"""

from __future__ import annotations

import functools
import logging
import os
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import wasmtime

from meshlab.envoy.httpfilter import FilterFailure, Headers, LocalReply, StreamInfo
from meshlab.wasm.abi import (
    ABI_VERSIONS,
    BufferType,
    HeaderMapType,
    LogLevel,
    MetricType,
    WasmResult,
    decode_pairs,
    encode_pairs,
)
from meshlab.wasm.native import Crossings, Export

LogSink = Callable[[LogLevel, str], None]

I32, I64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()

#: Envoy's default histogram bucket bounds (Envoy's HistogramSettingsImpl::defaultBuckets, as recalled:
#: not verified here, the Envoy source is not available) used for the Prometheus text of a histogram.
DEFAULT_BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
                   600000, 1800000, 3600000)


def new_engine() -> wasmtime.Engine:
    """A wasmtime engine whose traps do not rely on signals. By default wasmtime turns a trap (an
    ``unreachable``, an out-of-bounds access) into SIGILL or SIGSEGV and catches it in a handler it
    installs; in a Python process another library (faulthandler, say) may install its own handler
    later, and a trap then kills the process. Explicit checks cost a little per access and never
    depend on who handles signals."""
    config = wasmtime.Config()
    config.signals_based_traps = False
    return wasmtime.Engine(config)


class WasmError(Exception):
    """The module cannot run in this host; the message says what is missing or what the module said."""


class ProcExit(Exception):
    """The module called wasi proc_exit: it is finished, as after a trap."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the module called proc_exit({code})")
        self.code = code


@dataclass
class Metric:
    type: MetricType
    name: str
    value: int = 0
    samples: list[int] = field(default_factory=list)  # a histogram's recorded values


class SharedData:
    """proxy-wasm shared data (proxy_get_shared_data / proxy_set_shared_data): every set bumps the key's
    cas; a set whose cas is not 0 and not the key's current cas is refused with CasMismatch, so two
    VMs can update a value without losing each other's writes (proxy-wasm spec, ABI 0.2.1)."""

    def __init__(self) -> None:
        self.entries: dict[bytes, tuple[bytes, int]] = {}
        self.last_cas = 0

    def get(self, key: bytes) -> tuple[bytes, int] | None:
        return self.entries.get(key)

    def set(self, key: bytes, value: bytes, cas: int) -> WasmResult:
        current = self.entries.get(key)
        if cas and (current is None or current[1] != cas):
            return WasmResult.CasMismatch
        self.last_cas += 1
        self.entries[key] = (value, self.last_cas)
        return WasmResult.Ok


#: proxy_get_property paths this host answers (segments joined with "."; modules send them NUL-separated)
#: and their source. Envoy serializes strings as their bytes and integers as 8-byte little-endian
#: (Envoy's "Attributes" documentation: request.size, response.code are int64).
PROPERTIES = {
    "plugin_root_id": "the filter's root_id",
    "plugin_name": "the filter's name",
    "plugin_vm_id": "the filter's vm_id",
    "request.path": "the :path request header",
    "request.url_path": ":path without its query string",
    "request.host": "the :authority request header",
    "request.method": "the :method request header",
    "request.scheme": "the :scheme request header",
    "request.id": "the x-request-id request header",
    "request.protocol": "StreamInfo.protocol (after the stream ends)",
    "response.code": "the :status response header (int64)",
    "response.code_details": "StreamInfo.response_code_details (after the stream ends)",
    "source.address": "StreamInfo.downstream_remote_address (after the stream ends)",
    "destination.address": "StreamInfo.downstream_local_address (after the stream ends)",
}


@dataclass
class StreamState:
    """What one stream's context sees: its header maps, bodies, and the local reply it asked for."""

    request_headers: Headers = field(default_factory=Headers)
    response_headers: Headers = field(default_factory=Headers)
    request_body: bytearray = field(default_factory=bytearray)
    response_body: bytearray = field(default_factory=bytearray)
    local_reply: LocalReply | None = None
    info: StreamInfo | None = None


def _host_functions() -> dict[tuple[str, str], tuple[list[wasmtime.ValType], list[wasmtime.ValType], str]]:
    proxy = {  # name: parameter types (the result is a WasmResult, an i32)
        "proxy_log": [I32] * 3, "proxy_get_log_level": [I32], "proxy_get_property": [I32] * 4,
        "proxy_get_buffer_bytes": [I32] * 5, "proxy_get_buffer_status": [I32] * 3, "proxy_set_buffer_bytes": [I32] * 5,
        "proxy_get_header_map_value": [I32] * 5, "proxy_get_header_map_pairs": [I32] * 3,
        "proxy_get_header_map_size": [I32] * 2, "proxy_add_header_map_value": [I32] * 5,
        "proxy_replace_header_map_value": [I32] * 5, "proxy_remove_header_map_value": [I32] * 3,
        "proxy_set_header_map_pairs": [I32] * 3, "proxy_send_local_response": [I32] * 8,
        "proxy_set_effective_context": [I32], "proxy_continue_stream": [I32],
        "proxy_get_current_time_nanoseconds": [I32], "proxy_define_metric": [I32] * 4,
        "proxy_increment_metric": [I32, I64], "proxy_record_metric": [I32, I64], "proxy_get_metric": [I32] * 2,
        "proxy_get_shared_data": [I32] * 5, "proxy_set_shared_data": [I32] * 5,
    }
    wasi = {  # name: (parameter types, result types); WASI functions return an errno
        "proc_exit": ([I32], []), "fd_write": ([I32] * 4, [I32]), "clock_time_get": ([I32, I64, I32], [I32]),
        "random_get": ([I32] * 2, [I32]), "environ_sizes_get": ([I32] * 2, [I32]), "environ_get": ([I32] * 2, [I32]),
        "args_sizes_get": ([I32] * 2, [I32]), "args_get": ([I32] * 2, [I32]),
    }
    functions = {("env", name): (params, [I32], name) for name, params in proxy.items()}
    methods = {"environ_sizes_get": "empty_sizes", "args_sizes_get": "empty_sizes", "environ_get": "empty_list",
               "args_get": "empty_list"}
    for namespace in ("wasi_unstable", "wasi_snapshot_preview1"):
        functions |= {(namespace, name): (*types, methods.get(name, name)) for name, types in wasi.items()}
    return functions


#: (import namespace, name) -> (parameter types, result types, WasmVM method) of every function this
#: host provides: the proxy-wasm ABI 0.2.1's (spec: github.com/proxy-wasm/spec) that an HTTP filter
#: uses, without http/gRPC calls, queues, ticks and trailers, and the WASI functions SDKs import.
HOST_FUNCTIONS = _host_functions()


class WasmVM:
    """One instance of a proxy-wasm module with its root context started and configured."""

    def __init__(self, module: wasmtime.Module, engine: wasmtime.Engine, *, root_id: str, name: str,
                 vm_id: str, configuration: bytes, vm_configuration: bytes, shared_data: SharedData,
                 log: LogSink, metrics: dict[int, Metric]) -> None:
        self.root_id, self.name, self.vm_id = root_id, name, vm_id
        self.configuration, self.vm_configuration = configuration, vm_configuration
        self.shared_data, self.log = shared_data, log
        self.metrics = metrics
        self.streams: dict[int, StreamState] = {}
        self.root_context_id = 1
        self.next_context_id = 2
        self.effective = self.root_context_id
        self.failed: str | None = None
        self.calls: dict[str, Export | None] = {}
        self.complaint = ""  # the module's last error or critical log line: what it said went wrong
        self.store = wasmtime.Store(engine)
        self.crossings = Crossings(self.store)
        linker = wasmtime.Linker(engine)
        for (namespace, function), (params, results, method) in HOST_FUNCTIONS.items():
            self.crossings.define(linker, namespace, function, params, results, guarded(getattr(self, method)))
        instance = linker.instantiate(self.store, module)
        self.exports = instance.exports(self.store)
        memory = self.exports.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise WasmError("the module exports no memory named 'memory'; the proxy-wasm ABI needs it")
        self.crossings.memory = memory
        allocate = self.exports.get("proxy_on_memory_allocate") or self.exports.get("malloc")
        if not isinstance(allocate, wasmtime.Func):
            raise WasmError("the module exports neither proxy_on_memory_allocate nor malloc, "
                            "so the host cannot hand it data")
        self.allocate = self.crossings.export(allocate)
        self.start()

    # -- calling into the module ---------------------------------------------------------------

    def call(self, export: str, *args: int) -> int:
        """Call one of the module's proxy_on_* functions; a trap or proc_exit fails the VM for good."""
        if export not in self.calls:  # looked up once: its signature and a raw caller
            function = self.exports.get(export)
            self.calls[export] = self.crossings.export(function) if isinstance(function, wasmtime.Func) else None
        function = self.calls[export]
        if function is None:
            return 0  # an SDK may leave out callbacks it does not use; Envoy then does nothing
        try:  # ABI 0.1.0's on_request_headers has no end_of_stream argument: pass what it takes
            result = function(*args[:len(function.params)])
        except (wasmtime.Trap, wasmtime.WasmtimeError, ProcExit) as error:
            said = f" (the module logged: {self.complaint})" if self.complaint else ""
            self.failed = f"{export} failed: {str(error).splitlines()[0]}{said}"
            raise FilterFailure(f"Wasm VM of {self.name or self.root_id} failed in {self.failed}") from error
        return int(result or 0)

    def start(self) -> None:
        """Envoy's order: WASI initialisation, root context, on_vm_start, on_configure."""
        for initialise in ("_initialize", "_start"):
            if isinstance(self.exports.get(initialise), wasmtime.Func):
                self.call(initialise)
                break
        self.call("proxy_on_context_create", self.root_context_id, 0)
        if not self.call("proxy_on_vm_start", self.root_context_id, len(self.vm_configuration)):
            raise WasmError(f"the module's proxy_on_vm_start returned false for root_id {self.root_id!r}")
        if not self.call("proxy_on_configure", self.root_context_id, len(self.configuration)):
            said = f"; it logged: {self.complaint}" if self.complaint else ""
            raise WasmError(f"the module rejected its configuration {self.configuration[:200]!r} "
                            f"(proxy_on_configure returned false){said}")

    def new_context(self) -> int:
        context_id = self.next_context_id
        self.next_context_id += 1
        self.streams[context_id] = StreamState()
        self.effective = context_id
        self.call("proxy_on_context_create", context_id, self.root_context_id)
        return context_id

    # -- memory --------------------------------------------------------------------------------

    def read(self, pointer: int, size: int) -> bytes:
        return self.crossings.read(pointer, size)

    def write_u32(self, pointer: int, value: int) -> None:
        self.crossings.write(pointer, struct.pack("<I", value))

    def hand_over(self, data: bytes, pointer_pointer: int, size_pointer: int) -> WasmResult:
        """Copy ``data`` into memory the module allocates (it frees it) and tell it where and how long."""
        pointer = 0
        if data:  # nothing to allocate for an empty value: the SDKs read size 0 as empty
            pointer = self.allocate(len(data)) or 0
            self.crossings.write(pointer, data)
        self.write_u32(pointer_pointer, pointer)
        self.write_u32(size_pointer, len(data))
        return WasmResult.Ok

    def text(self, pointer: int, size: int) -> str:
        return self.read(pointer, size).decode("utf-8", "replace")

    # -- what the host functions act on --------------------------------------------------------

    def stream(self) -> StreamState | None:
        return self.streams.get(self.effective)

    def header_map(self, map_type: int) -> Headers | None:
        stream = self.stream()
        if stream is None:
            return None
        if map_type == HeaderMapType.RequestHeaders:
            return stream.request_headers
        if map_type == HeaderMapType.ResponseHeaders:
            return stream.response_headers
        return None  # trailers, gRPC metadata, http call responses: this host's streams have none

    def buffer(self, buffer_type: int) -> bytes | bytearray | None:
        if buffer_type == BufferType.PluginConfiguration:
            return self.configuration
        if buffer_type == BufferType.VmConfiguration:
            return self.vm_configuration
        stream = self.stream()
        if stream is not None and buffer_type == BufferType.HttpRequestBody:
            return stream.request_body
        if stream is not None and buffer_type == BufferType.HttpResponseBody:
            return stream.response_body
        return None

    def property(self, path: str) -> bytes | None:
        if path not in PROPERTIES:
            return None
        plugin = {"plugin_root_id": self.root_id, "plugin_name": self.name, "plugin_vm_id": self.vm_id}
        if path in plugin:
            return plugin[path].encode()
        stream = self.stream()
        if stream is None:
            return None
        request = stream.request_headers
        from_headers = {"request.path": ":path", "request.host": ":authority", "request.method": ":method",
                        "request.scheme": ":scheme", "request.id": "x-request-id"}
        if path in from_headers:
            value = request.get(from_headers[path])
            return None if value is None else value.encode()
        if path == "request.url_path":
            value = request.get(":path")
            return None if value is None else value.split("?", 1)[0].encode()
        if path == "response.code":
            status = stream.response_headers.get(":status")
            return None if status is None else struct.pack("<q", int(status))
        info = stream.info
        after = {"request.protocol": "protocol", "response.code_details": "response_code_details",
                 "source.address": "downstream_remote_address", "destination.address": "downstream_local_address"}
        if info is not None and path in after:
            return str(getattr(info, after[path])).encode()
        return None

    # -- the host functions --------------------------------------------------------------------

    def proxy_log(self, level: int, pointer: int, size: int) -> int:
        if level not in LogLevel.__members__.values():
            return WasmResult.BadArgument
        message = self.text(pointer, size)
        if level >= LogLevel.error:
            self.complaint = message
        self.log(LogLevel(level), message)
        return WasmResult.Ok

    def proxy_get_log_level(self, pointer: int) -> int:
        self.write_u32(pointer, LogLevel.trace)  # the sink decides what to keep
        return WasmResult.Ok

    def proxy_get_property(self, path_pointer: int, path_size: int, value_pointer: int, size_pointer: int) -> int:
        path = ".".join(segment for segment in self.text(path_pointer, path_size).split("\0") if segment)
        value = self.property(path)
        if value is None:
            return WasmResult.NotFound
        return self.hand_over(value, value_pointer, size_pointer)

    def proxy_get_buffer_bytes(self, buffer_type: int, start: int, length: int, pointer: int, size_pointer: int) -> int:
        buffer = self.buffer(buffer_type)
        if buffer is None:
            return WasmResult.NotFound
        return self.hand_over(bytes(buffer[start:start + length]), pointer, size_pointer)

    def proxy_get_buffer_status(self, buffer_type: int, length_pointer: int, flags_pointer: int) -> int:
        buffer = self.buffer(buffer_type)
        if buffer is None:
            return WasmResult.NotFound
        self.write_u32(length_pointer, len(buffer))
        self.write_u32(flags_pointer, 0)
        return WasmResult.Ok

    def proxy_set_buffer_bytes(self, buffer_type: int, start: int, length: int, pointer: int, size: int) -> int:
        buffer = self.buffer(buffer_type)
        if not isinstance(buffer, bytearray):
            return WasmResult.NotFound if buffer is None else WasmResult.BadArgument  # configurations are read-only
        buffer[start:start + length] = self.read(pointer, size)
        return WasmResult.Ok

    def proxy_get_header_map_value(self, map_type: int, key: int, key_size: int, pointer: int, size_pointer: int) -> int:
        headers = self.header_map(map_type)
        value = None if headers is None else headers.get(self.text(key, key_size))
        if value is None:
            return WasmResult.NotFound
        return self.hand_over(value.encode(), pointer, size_pointer)

    def proxy_get_header_map_pairs(self, map_type: int, pointer: int, size_pointer: int) -> int:
        headers = self.header_map(map_type)
        if headers is None:
            return WasmResult.NotFound
        return self.hand_over(encode_pairs(headers.pairs), pointer, size_pointer)

    def proxy_get_header_map_size(self, map_type: int, size_pointer: int) -> int:
        headers = self.header_map(map_type)
        if headers is None:
            return WasmResult.NotFound
        self.write_u32(size_pointer, len(encode_pairs(headers.pairs)))
        return WasmResult.Ok

    def proxy_add_header_map_value(self, map_type: int, key: int, key_size: int, value: int, value_size: int) -> int:
        headers = self.header_map(map_type)
        if headers is None:
            return WasmResult.NotFound
        headers.add(self.text(key, key_size), self.text(value, value_size))
        return WasmResult.Ok

    def proxy_replace_header_map_value(self, map_type: int, key: int, key_size: int, value: int, value_size: int) -> int:
        headers = self.header_map(map_type)
        if headers is None:
            return WasmResult.NotFound
        headers.set(self.text(key, key_size), self.text(value, value_size))
        return WasmResult.Ok

    def proxy_remove_header_map_value(self, map_type: int, key: int, key_size: int) -> int:
        headers = self.header_map(map_type)
        if headers is None:
            return WasmResult.NotFound
        headers.remove(self.text(key, key_size))
        return WasmResult.Ok

    def proxy_set_header_map_pairs(self, map_type: int, pointer: int, size: int) -> int:
        headers = self.header_map(map_type)
        if headers is None:
            return WasmResult.NotFound
        try:
            headers.pairs = Headers(decode_pairs(self.read(pointer, size))).pairs
        except (ValueError, UnicodeDecodeError):
            return WasmResult.ParseFailure
        return WasmResult.Ok

    def proxy_send_local_response(self, status: int, details: int, details_size: int, body: int, body_size: int,
                                  headers: int, headers_size: int, grpc_status: int) -> int:
        stream = self.stream()
        if stream is None:
            return WasmResult.NotFound  # the root context has no stream to answer
        try:
            pairs = decode_pairs(self.read(headers, headers_size))
        except (ValueError, UnicodeDecodeError):
            return WasmResult.ParseFailure
        # Envoy's proxy-wasm host adds grpc-status only for gRPC requests; this host's are HTTP/1.1.
        stream.local_reply = LocalReply(status, self.read(body, body_size), pairs,
                                        self.text(details, details_size) or "wasm_local_reply")
        return WasmResult.Ok

    def proxy_set_effective_context(self, context_id: int) -> int:
        if context_id != self.root_context_id and context_id not in self.streams:
            return WasmResult.BadArgument
        self.effective = context_id
        return WasmResult.Ok

    def proxy_continue_stream(self, stream_type: int) -> int:
        return WasmResult.Ok  # callbacks here run to completion: a stream is never left paused

    def proxy_get_current_time_nanoseconds(self, pointer: int) -> int:
        self.crossings.write(pointer, struct.pack("<Q", time.time_ns()))
        return WasmResult.Ok

    def proxy_define_metric(self, metric_type: int, name: int, name_size: int, id_pointer: int) -> int:
        if metric_type not in MetricType.__members__.values():
            return WasmResult.BadArgument
        wanted = (MetricType(metric_type), self.text(name, name_size))
        metric_id = next((key for key, metric in self.metrics.items() if (metric.type, metric.name) == wanted), None)
        if metric_id is None:
            metric_id = len(self.metrics) + 1
            self.metrics[metric_id] = Metric(*wanted)
        self.write_u32(id_pointer, metric_id)
        return WasmResult.Ok

    def proxy_increment_metric(self, metric_id: int, offset: int) -> int:
        metric = self.metrics.get(metric_id)
        if metric is None:
            return WasmResult.NotFound
        if metric.type == MetricType.Histogram or (metric.type == MetricType.Counter and offset < 0):
            return WasmResult.BadArgument  # a counter only goes up; a histogram records values
        metric.value += offset
        return WasmResult.Ok

    def proxy_record_metric(self, metric_id: int, value: int) -> int:
        metric = self.metrics.get(metric_id)
        if metric is None:
            return WasmResult.NotFound
        value &= (1 << 64) - 1  # the ABI's value is a u64
        if metric.type == MetricType.Histogram:
            metric.samples.append(value)
        elif metric.type == MetricType.Gauge:
            metric.value = value
        else:
            metric.value += value
        return WasmResult.Ok

    def proxy_get_metric(self, metric_id: int, pointer: int) -> int:
        metric = self.metrics.get(metric_id)
        if metric is None:
            return WasmResult.NotFound
        if metric.type == MetricType.Histogram:
            return WasmResult.BadArgument
        self.crossings.write(pointer, struct.pack("<Q", metric.value & ((1 << 64) - 1)))
        return WasmResult.Ok

    def proxy_get_shared_data(self, key: int, key_size: int, pointer: int, size_pointer: int, cas_pointer: int) -> int:
        entry = self.shared_data.get(self.read(key, key_size))
        if entry is None:
            return WasmResult.NotFound
        self.write_u32(cas_pointer, entry[1])
        return self.hand_over(entry[0], pointer, size_pointer)

    def proxy_set_shared_data(self, key: int, key_size: int, value: int, value_size: int, cas: int) -> int:
        return self.shared_data.set(self.read(key, key_size), self.read(value, value_size), cas & 0xFFFFFFFF)

    def proc_exit(self, code: int) -> None:
        raise ProcExit(code)

    def fd_write(self, fd: int, iovs: int, iovs_count: int, written_pointer: int) -> int:
        """stdout and stderr of the module go to the log sink (info and error), as Envoy logs them."""
        data = b""
        for index in range(iovs_count):
            pointer, size = struct.unpack("<II", self.read(iovs + 8 * index, 8))
            data += self.read(pointer, size)
        if fd not in (1, 2):
            return 8  # WASI errno badf: this host opens no files
        self.log(LogLevel.info if fd == 1 else LogLevel.error, data.decode("utf-8", "replace").rstrip("\n"))
        self.write_u32(written_pointer, len(data))
        return 0

    def clock_time_get(self, clock_id: int, precision: int, pointer: int) -> int:
        now = time.time_ns() if clock_id == 0 else time.monotonic_ns()  # WASI: 0 realtime, else monotonic
        self.crossings.write(pointer, struct.pack("<Q", now))
        return 0

    def random_get(self, pointer: int, size: int) -> int:
        self.crossings.write(pointer, os.urandom(size))
        return 0

    def empty_sizes(self, count_pointer: int, size_pointer: int) -> int:
        self.write_u32(count_pointer, 0)
        self.write_u32(size_pointer, 0)
        return 0

    def empty_list(self, pointers: int, buffer: int) -> int:
        return 0


def guarded(method: Callable[..., int | None]) -> Callable[..., int | None]:
    """A host function that answers InvalidMemoryAccess (the ABI's answer) when the module hands it a
    pointer outside its memory, instead of failing the VM."""
    def call(*args: int) -> int | None:
        try:
            return method(*args)
        except IndexError:
            return WasmResult.InvalidMemoryAccess
    return call


def check_module(module: wasmtime.Module) -> None:
    """Refuse, before instantiating, a module that does not speak proxy-wasm or needs what we lack."""
    exports = [export.name for export in module.exports]
    if not any(version in exports for version in ABI_VERSIONS):
        raise WasmError(f"not a proxy-wasm module: it exports none of {', '.join(ABI_VERSIONS)} "
                        f"(it exports: {', '.join(exports) or 'nothing'})")
    for needed in module.imports:
        if (needed.module, needed.name) not in HOST_FUNCTIONS:
            offered = sorted({name for _, name in HOST_FUNCTIONS})
            raise WasmError(f"this host does not provide {needed.name} (imported from {needed.module!r}); "
                            f"it provides {', '.join(offered)}")


class WasmStream:
    """One HTTP stream's context in the filter's VM. The header maps and bodies the HCM hands over are
    the ones the module reads and changes; a proxy_send_local_response becomes the returned LocalReply.
    A VM that failed (now or before) raises FilterFailure, and the HCM applies the filter's fail_open.
    The HCM hands bodies over whole, so a callback's StopIteration without a local reply is taken as
    Continue (there is no later data for Envoy to resume the stream with)."""

    def __init__(self, vm: WasmVM | None, why_not: str) -> None:
        self.vm, self.why_not = vm, why_not
        self.context_id = vm.new_context() if vm is not None else 0

    def _running(self) -> tuple[WasmVM, StreamState]:
        if self.vm is None or self.vm.failed:
            raise FilterFailure(self.why_not if self.vm is None else f"Wasm VM failed earlier: {self.vm.failed}")
        self.vm.effective = self.context_id
        return self.vm, self.vm.streams[self.context_id]

    def _step(self, export: str, size: int, end_stream: bool) -> LocalReply | None:
        vm, state = self._running()
        state.local_reply = None
        vm.call(export, self.context_id, size, int(end_stream))
        return state.local_reply

    def request_headers(self, headers: Headers, end_stream: bool) -> LocalReply | None:
        self._running()[1].request_headers = headers
        return self._step("proxy_on_request_headers", len(headers.pairs), end_stream)

    def request_body(self, body: bytearray, end_stream: bool) -> LocalReply | None:
        self._running()[1].request_body = body
        return self._step("proxy_on_request_body", len(body), end_stream)

    def response_headers(self, headers: Headers, end_stream: bool) -> LocalReply | None:
        self._running()[1].response_headers = headers
        return self._step("proxy_on_response_headers", len(headers.pairs), end_stream)

    def response_body(self, body: bytearray, end_stream: bool) -> LocalReply | None:
        self._running()[1].response_body = body
        return self._step("proxy_on_response_body", len(body), end_stream)

    def done(self, info: StreamInfo) -> None:
        """proxy_on_done, proxy_on_log, proxy_on_delete (Envoy's order); nothing if the VM has failed."""
        if self.vm is None or self.vm.failed:
            return
        vm, state = self._running()
        state.info = info
        try:
            for export in ("proxy_on_done", "proxy_on_log", "proxy_on_delete"):
                vm.call(export, self.context_id)
        except FilterFailure:
            return  # the VM is marked failed; the stream is over, there is nothing left to fail
        finally:
            vm.streams.pop(self.context_id, None)


class WasmHttpFilter:
    """A proxy-wasm module as one of the HCM's HTTP filters, with one VM.

    Failure policy (Envoy API v1.38 envoy/extensions/wasm/v3/wasm.proto, PluginConfig.fail_open and
    FailurePolicy): after a fatal VM error (a trap, abort, proc_exit) every later stream of the plugin
    fails closed (503, Envoy's default FAIL_CLOSED) or, with fail_open, skips the filter; with
    FAIL_RELOAD a new VM is made for the next stream. Here ``fail_open`` is read by the HCM and
    ``reload=True`` is FAIL_RELOAD. Istio's WasmPlugin failStrategy FAIL_OPEN / FAIL_CLOSE / FAIL_RELOAD
    maps onto these (pilot/pkg/model/extensions.go). Metrics live in the filter, not the VM, as Envoy's
    live in its stats store, so a reload keeps them."""

    def __init__(self, module: wasmtime.Module, engine: wasmtime.Engine, *, name: str, root_id: str,
                 configuration: bytes, vm_configuration: bytes, fail_open: bool, reload: bool, vm_id: str,
                 shared_data: SharedData, log: LogSink) -> None:
        self.name, self.fail_open, self.reload = name, fail_open, reload
        self.metric_table: dict[int, Metric] = {}
        self.start_vm = functools.partial(
            WasmVM, module, engine, root_id=root_id, name=name, vm_id=vm_id, configuration=configuration,
            vm_configuration=vm_configuration, shared_data=shared_data, log=log, metrics=self.metric_table)
        self.vm: WasmVM | None = self.start_vm()
        self.reloads = 0

    @classmethod
    def load(cls, code: bytes, *, name: str, root_id: str = "", configuration: bytes = b"",
             vm_configuration: bytes = b"", fail_open: bool = False, reload: bool = False, vm_id: str = "",
             shared_data: SharedData | None = None, log_sink: LogSink | None = None,
             log_level: LogLevel = LogLevel.info) -> WasmHttpFilter:
        """Compile ``code``, check it, start its VM (root context, on_vm_start, on_configure). A module
        that cannot start raises WasmError, as Envoy rejects such a plugin's configuration.
        ``log_sink`` gets the module's log lines at ``log_level`` and above (Envoy's default: info)."""
        engine = new_engine()
        try:
            module = wasmtime.Module(engine, code)
        except wasmtime.WasmtimeError as error:
            raise WasmError(f"{name}: not a valid WebAssembly module: {str(error).splitlines()[0]}") from None
        check_module(module)
        sink = log_sink or envoy_log(name, root_id, vm_id)
        def log(level: LogLevel, message: str) -> None:
            if level >= log_level:
                sink(level, message)
        try:
            return cls(module, engine, name=name, root_id=root_id, configuration=configuration,
                       vm_configuration=vm_configuration, fail_open=fail_open, reload=reload, vm_id=vm_id,
                       shared_data=shared_data or SharedData(), log=log)
        except FilterFailure as error:
            raise WasmError(f"{name}: the module failed while starting: {error}") from None

    def new_stream(self) -> WasmStream:
        """A stream in the VM; after a failure, a new VM when reloading, else a stream that fails."""
        if self.vm is not None and self.vm.failed and self.reload:
            self.reloads += 1
            try:
                self.vm = self.start_vm()
            except (WasmError, FilterFailure) as error:
                return WasmStream(None, f"Wasm VM of {self.name} could not be reloaded: {error}")
        try:
            return WasmStream(self.vm, "")
        except FilterFailure as error:  # the module trapped creating the stream's context
            return WasmStream(None, str(error))

    def metrics(self) -> list[str]:
        """The VM's metrics in Prometheus text form. Names are sanitised as Envoy's /stats/prometheus
        does (every character outside [a-zA-Z0-9_:] becomes "_"), without Envoy's "envoy_" prefix:
        Envoy keeps Wasm-defined metrics in its "wasmcustom" stats namespace and prints them under their
        own names (as recalled from Envoy's source; not verifiable here: no Envoy source or docs)."""
        lines: list[str] = []
        for metric in sorted(self.metric_table.values(), key=lambda metric: metric.name):
            name = re.sub(r"[^a-zA-Z0-9_:]", "_", metric.name)
            kind = metric.type.name.lower()
            lines.append(f"# TYPE {name} {kind}")
            if metric.type != MetricType.Histogram:
                lines.append(f"{name} {metric.value}")
                continue
            for bound in DEFAULT_BUCKETS:
                count = sum(1 for sample in metric.samples if sample <= bound)
                lines.append(f'{name}_bucket{{le="{bound:g}"}} {count}')
            lines.append(f'{name}_bucket{{le="+Inf"}} {len(metric.samples)}')
            lines.append(f"{name}_sum {sum(metric.samples)}")
            lines.append(f"{name}_count {len(metric.samples)}")
        return lines


def envoy_log(name: str, root_id: str, vm_id: str) -> LogSink:
    """A sink writing to Python's logging as Envoy's Wasm log lines read ("wasm log <plugin> <root_id>
    <vm_id>: <message>", as recalled from Envoy's wasm context; not verifiable here)."""
    logger = logging.getLogger("meshlab.wasm")
    levels = {LogLevel.trace: logging.DEBUG, LogLevel.debug: logging.DEBUG, LogLevel.info: logging.INFO,
              LogLevel.warn: logging.WARNING, LogLevel.error: logging.ERROR, LogLevel.critical: logging.CRITICAL}

    def sink(level: LogLevel, message: str) -> None:
        logger.log(levels[level], "wasm log %s %s %s: %s", name, root_id, vm_id, message)
    return sink

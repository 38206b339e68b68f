"""meshlab.wasm.host: real proxy-wasm modules (built by the real AssemblyScript compiler with the
solo-io SDK, or written in WAT where a module must misbehave) run as HTTP filters."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone

import pytest
import wasmtime

from meshlab import npm
from meshlab.envoy.httpfilter import FilterFailure, Headers, LocalReply, StreamInfo
from meshlab.wasm import build
from meshlab.wasm.abi import LogLevel, WasmResult
from meshlab.wasm.host import SharedData, WasmError, WasmHttpFilter

needs_node = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason=f"building proxy-wasm modules needs node and npm (fix: {npm.NODE_FIX})")

#: A minimal proxy-wasm module's exports, for the WAT modules below.
WAT_ABI = """
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $n i32.add global.set $heap
    local.get $p)
  (func (export "proxy_abi_version_0_2_0"))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_context_create") (param i32 i32))
"""


def wat(body: str) -> bytes:
    return wasmtime.wat2wasm(f"(module {body})")


def info(request: Headers) -> StreamInfo:
    return StreamInfo(start_time=datetime.now(timezone.utc), request_headers=request)


def load(name: str, configuration: bytes, **options) -> WasmHttpFilter:
    return WasmHttpFilter.load(build.build(name).read_bytes(), name=name, root_id=name,
                               configuration=configuration, **options)


def request(path: str = "/", **headers: str) -> Headers:
    return Headers([(":method", "GET"), (":path", path), (":authority", "app"), (":scheme", "http"),
                    *headers.items()])


def run(wasm: WasmHttpFilter, headers: Headers, status: str = "200") -> tuple[LocalReply | None, Headers]:
    """One stream through the filter in Envoy's order; a local reply goes through response headers too."""
    stream = wasm.new_stream()
    reply = stream.request_headers(headers, True)
    response = Headers([(":status", str(reply.status) if reply else status), *(reply.headers if reply else [])])
    stream.response_headers(response, reply is not None and not reply.body)
    stream.done(info(headers))
    return reply, response


@needs_node
def test_add_header_adds_the_configured_response_header() -> None:
    wasm = load("add_header", b'{"name": "x-meshlab", "value": "from wasm"}')
    reply, response = run(wasm, request())
    assert reply is None
    assert response.pairs == [(":status", "200"), ("x-meshlab", "from wasm")]


@needs_node
def test_deny_by_header_answers_403_with_a_body_only_when_the_header_matches() -> None:
    wasm = load("deny_by_header", b'{"header": "x-user", "value": "mallory"}')
    denied, _ = run(wasm, request(**{"x-user": "mallory"}))
    assert denied is not None and denied.status == 403
    assert denied.body == b"denied by deny_by_header: x-user: mallory\n"
    assert denied.details == "meshlab_denied_by_header"
    assert run(wasm, request(**{"x-user": "alice"}))[0] is None
    assert run(wasm, request())[0] is None


@needs_node
def test_count_by_path_counts_per_path_in_prometheus_text() -> None:
    wasm = load("count_by_path", b"{}")
    for path in ("/api", "/api?page=2", "/health", "/api"):
        run(wasm, request(path))
    lines = wasm.metrics()
    assert "# TYPE meshlab_requests_total_path__api counter" in lines
    assert "meshlab_requests_total_path__api 3" in lines
    assert "meshlab_requests_total_path__health 1" in lines


@needs_node
@pytest.mark.parametrize("configuration, said", [
    (b'{"name": 7}', 'the value of "name" must be a string'),
    (b'not json', "must be a JSON object"),
    (b'{"value": "v"}', '"name" is required'),
])
def test_bad_configuration_is_refused_with_what_the_module_reported(configuration: bytes, said: str) -> None:
    logged: list[tuple[LogLevel, str]] = []
    with pytest.raises(WasmError, match="proxy_on_configure returned false") as caught:
        load("add_header", configuration, log_sink=lambda level, message: logged.append((level, message)))
    assert said in str(caught.value)
    assert [level for level, message in logged if said in message] == [LogLevel.error]


@needs_node
def test_logs_reach_the_sink_at_the_chosen_level() -> None:
    logged: list[tuple[LogLevel, str]] = []
    wasm = load("deny_by_header", b'{"header": "x-user", "value": "mallory"}',
                log_sink=lambda level, message: logged.append((level, message)))
    run(wasm, request(**{"x-user": "mallory"}))
    assert logged == [(LogLevel.info, "deny_by_header: denied, x-user: mallory")]  # the SDK's debug lines dropped


CRASHING_FILTER = """
export * from "@solo-io/proxy-runtime/proxy";
import { RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context } from "@solo-io/proxy-runtime";
class CrashRoot extends RootContext {
  createContext(context_id: u32): Context { return new Crash(context_id, this); }
}
class Crash extends Context {
  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    if (stream_context.headers.request.get("x-crash") == "yes") throw new Error("asked to crash");
    return FilterHeadersStatusValues.Continue;
  }
}
registerRootContext((context_id: u32) => { return new CrashRoot(context_id) as RootContext; }, "crash");
"""


@needs_node
@pytest.mark.parametrize("reload", [False, True])
def test_an_abort_is_a_filter_failure_and_fails_the_vm_unless_reloading(reload: bool) -> None:
    code = build.build_source(CRASHING_FILTER, name="crash").read_bytes()
    wasm = WasmHttpFilter.load(code, name="crash", root_id="crash", configuration=b"{}", reload=reload)
    with pytest.raises(FilterFailure, match="proc_exit\\(255\\).*asked to crash") as caught:
        wasm.new_stream().request_headers(request(**{"x-crash": "yes"}), True)
    assert caught.value.details == "wasm_fail_stream"
    later = wasm.new_stream()
    if reload:  # Envoy's FAIL_RELOAD: a new VM for the next stream
        assert later.request_headers(request(), True) is None and wasm.reloads == 1
    else:  # FAIL_CLOSED / fail_open: the VM stays failed, every stream fails and the HCM applies fail_open
        with pytest.raises(FilterFailure, match="failed earlier"):
            later.request_headers(request(), True)


def test_a_trap_is_a_filter_failure() -> None:
    code = wat(WAT_ABI + '(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)')
    wasm = WasmHttpFilter.load(code, name="trap", fail_open=True)
    with pytest.raises(FilterFailure, match="proxy_on_request_headers failed"):
        wasm.new_stream().request_headers(request(), True)
    assert wasm.fail_open


def test_a_trap_stays_a_filter_failure_when_another_signal_handler_came_later() -> None:
    """faulthandler (as pytest and ipykernel enable it) installs its SIGILL handler after wasmtime's: a
    trap must still be caught, not kill the process (the engine's traps do not use signals)."""
    import subprocess
    import sys
    import textwrap

    code = wat(WAT_ABI + '(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)')
    script = textwrap.dedent(f"""
        import faulthandler
        from meshlab.envoy.httpfilter import FilterFailure, Headers
        from meshlab.wasm.host import WasmHttpFilter
        wasm = WasmHttpFilter.load({code!r}, name="trap")
        faulthandler.enable()
        try:
            wasm.new_stream().request_headers(Headers([(":method", "GET")]), True)
        except FilterFailure:
            print("caught")
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "caught"), done.stderr[-500:]


def test_a_module_importing_a_missing_host_function_is_refused_naming_it() -> None:
    code = wat('(import "env" "proxy_http_call" (func (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))'
               + WAT_ABI)
    with pytest.raises(WasmError, match="this host does not provide proxy_http_call .* it provides .*proxy_log"):
        WasmHttpFilter.load(code, name="caller")


def test_a_module_without_the_abi_export_is_refused() -> None:
    with pytest.raises(WasmError, match="not a proxy-wasm module: it exports none of proxy_abi_version_0_1_0"):
        WasmHttpFilter.load(wat('(memory (export "memory") 1) (func (export "run"))'), name="plain")
    with pytest.raises(WasmError, match="not a valid WebAssembly module"):
        WasmHttpFilter.load(b"\0asm garbage", name="garbage")


SHARED = """
  (import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))
""" + WAT_ABI + """
  (data (i32.const 16) "counter")
  (func (export "store") (param $value i32) (param $cas i32) (result i32)
    (i32.store8 (i32.const 32) (local.get $value))
    (call $set (i32.const 16) (i32.const 7) (i32.const 32) (i32.const 1) (local.get $cas)))
  (func (export "cas") (result i32)
    (i32.store (i32.const 56) (i32.const 0))
    (drop (call $get (i32.const 16) (i32.const 7) (i32.const 48) (i32.const 52) (i32.const 56)))
    (i32.load (i32.const 56)))
"""


def test_shared_data_compare_and_swap_between_two_vms() -> None:
    shared = SharedData()
    first, second = (WasmHttpFilter.load(wat(SHARED), name=name, shared_data=shared) for name in ("a", "b"))

    def call(wasm: WasmHttpFilter, export: str, *args: int) -> int:
        assert wasm.vm is not None
        return wasm.vm.exports[export](wasm.vm.store, *args)

    assert call(first, "cas") == 0  # not set yet: NotFound leaves the cas untouched
    assert call(first, "store", ord("A"), 0) == WasmResult.Ok  # cas 0: set unconditionally
    seen = call(first, "cas")
    assert seen and call(second, "cas") == seen
    assert call(second, "store", ord("B"), seen) == WasmResult.Ok  # B updates what it read
    assert call(first, "store", ord("C"), seen) == WasmResult.CasMismatch  # A's read is stale now
    assert shared.get(b"counter") == (b"B", call(first, "cas"))


@needs_node
def test_per_request_cost_is_measured_not_asserted(capsys: pytest.CaptureFixture[str]) -> None:
    wasm = load("add_header", b'{"name": "x-meshlab", "value": "v"}')
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        run(wasm, request())
    each = (time.perf_counter() - started) / rounds
    with capsys.disabled():
        print(f"\nadd_header, full lifecycle in meshlab's host: {each * 1e6:.0f} us per request")
    assert wasm.metrics() == []  # add_header defines no metrics


PROBE_FILTER = """
export * from "@solo-io/proxy-runtime/proxy";
import { RootContext, Context, registerRootContext, FilterHeadersStatusValues, FilterDataStatusValues, stream_context, log, LogLevelValues, Gauge, Histogram } from "@solo-io/proxy-runtime";
import { get_property, get_buffer_bytes, BufferTypeValues, record_metric } from "@solo-io/proxy-runtime/runtime";

function property(path: string): string { return String.UTF8.decode(get_property(path)); }

class ProbeRoot extends RootContext {
  inflight: Gauge = new Gauge("probe_inflight");
  sizes: Histogram = new Histogram("probe_request_bytes");
  createContext(context_id: u32): Context { return new Probe(context_id, this); }
}
class Probe extends Context {
  seen: string = "";
  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    (this.root_context as ProbeRoot).inflight.increment(1);
    this.seen = property("request.method") + " " + property("request.url_path") + " root=" + property("plugin_root_id");
    return FilterHeadersStatusValues.Continue;
  }
  onRequestBody(size: usize, end_of_stream: bool): FilterDataStatusValues {
    const body = String.UTF8.decode(get_buffer_bytes(BufferTypeValues.HttpRequestBody, 0, size as u32));
    record_metric((this.root_context as ProbeRoot).sizes.metric_id, size as u64);
    this.seen += " body=" + body;
    return FilterDataStatusValues.Continue;
  }
  onResponseHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-seen", this.seen);
    stream_context.headers.response.replace("content-type", "text/probe");
    stream_context.headers.response.remove("server");
    return FilterHeadersStatusValues.Continue;
  }
  onLog(): void {
    (this.root_context as ProbeRoot).inflight.increment(-1);
    log(LogLevelValues.info, "from " + property("source.address") + " status " + stream_context.headers.response.get(":status"));
  }
}
registerRootContext((context_id: u32) => { return new ProbeRoot(context_id) as RootContext; }, "probe");
"""


@needs_node
def test_properties_bodies_header_changes_gauges_and_histograms_reach_a_real_module() -> None:
    logged: list[str] = []
    code = build.build_source(PROBE_FILTER, name="probe").read_bytes()
    wasm = WasmHttpFilter.load(code, name="probe", root_id="probe", configuration=b"{}",
                               log_sink=lambda level, message: logged.append(message))
    stream = wasm.new_stream()
    headers = request("/orders?id=7")
    assert stream.request_headers(headers, False) is None
    assert stream.request_body(bytearray(b"hello"), True) is None
    response = Headers([(":status", "201"), ("content-type", "text/plain"), ("server", "app")])
    assert stream.response_headers(response, True) is None
    assert "# TYPE probe_inflight gauge" in wasm.metrics() and "probe_inflight 1" in wasm.metrics()
    done = info(headers)
    done.downstream_remote_address = "10.0.0.7:40000"
    stream.done(done)
    assert response.pairs == [(":status", "201"), ("content-type", "text/probe"),
                              ("x-seen", "GET /orders root=probe body=hello")]
    assert logged == ["from 10.0.0.7:40000 status 201"]
    lines = wasm.metrics()
    assert "probe_inflight 0" in lines
    assert 'probe_request_bytes_bucket{le="1"} 0' in lines and 'probe_request_bytes_bucket{le="5"} 1' in lines
    assert "probe_request_bytes_count 1" in lines and "probe_request_bytes_sum 5" in lines


def test_a_pointer_outside_the_modules_memory_gets_invalid_memory_access() -> None:
    code = wat('(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))' + WAT_ABI
               + '(func (export "log_far") (result i32) (call $log (i32.const 2) (i32.const 65530) (i32.const 10)))')
    wasm = WasmHttpFilter.load(code, name="far", log_sink=lambda level, message: None)
    assert wasm.vm is not None
    assert wasm.vm.exports["log_far"](wasm.vm.store) == WasmResult.InvalidMemoryAccess
    assert wasm.vm.failed is None

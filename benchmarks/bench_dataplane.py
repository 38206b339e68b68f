"""The data plane's figures (chapters 07 and 10): what telemetry and Wasm filters cost per request.

Run as root: ``.venv/bin/python benchmarks/bench_dataplane.py``. One live lab: a ``server`` pod whose
sidecar has its HTTP side (Envoy's inbound listener and HTTP connection manager) and a pilot-agent
beside it, a meshed ``client`` and a collector pod. Three measurements, each printed with how it was made:
1. telemetry: keep-alive p50 and p90 through the server's sidecar for each setting of
   ``meshlab.lab.tuning.SETTINGS`` (access log text, JSON, over ALS; tracing at 0, 1, 10, 50, 100 %),
   each as a ratio to the untuned p50 (no log, no tracing), 3 rounds taking the settings in turn;
2. one Wasm filter (``add_header``, a real AssemblyScript module in meshlab's proxy-wasm host) against
   none: keep-alive p50 through the sidecar, alternating in 5 rounds, and the ratio (the issue's target:
   within 1.5x);
3. module load: compiling the module (wasmtime, cold), and starting a VM from it (root context,
   on_vm_start, on_configure), 20 times each, median; and the per-request cost of the filter's whole
   lifecycle in the host alone, without the network (2000 requests).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import wasmtime

from meshlab.envoy.httpfilter import Headers
from meshlab.lab import Lab, PodSpec
from meshlab.lab.proxyconfig import apply_plugins, remove_plugin
from meshlab.lab.tuning import measure
from meshlab.wasm.build import build
from meshlab.wasm.host import WasmHttpFilter

TELEMETRY_COUNT, WASM_ROUNDS, PER_ROUND, LOADS, HOST_REQUESTS = 3000, 5, 400, 20, 2000
ADD_HEADER_CONFIG = b'{"name": "x-meshlab", "value": "hello"}'


def p50(lab: Lab, count: int) -> list[float]:
    replies = lab.requests("client", lab.pod("server").ip, 8080, count)
    assert all(reply.status == 200 for reply in replies), "a request failed while measuring"
    return [reply.latency_us for reply in replies]


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench_dataplane.py runs the live lab: run it as root")
    module = build("add_header")
    with Lab("mlbdp").up([PodSpec("server", dataplane=True), PodSpec("client")], collector=True) as lab:
        print(f"1. telemetry, {TELEMETRY_COUNT} keep-alive requests per setting, client -> server's sidecar (µs):")
        for row in measure(lab, "client", "server", count=TELEMETRY_COUNT):
            print(f"   {row.label:<30} p50 {row.p50_us:6.0f}  p90 {row.p90_us:6.0f}  {row.ratio:5.2f}x the untuned p50")
        plugin = ("apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: add-header, namespace: default}\n"
                  f"spec:\n  url: file://{module}\n  pluginName: add_header\n  pluginConfig: {{name: x-meshlab, value: hello}}\n")
        latencies: dict[str, list[float]] = {"none": [], "add_header": []}
        for _ in range(WASM_ROUNDS):
            p50(lab, 50)
            latencies["none"] += p50(lab, PER_ROUND)
            apply_plugins(lab, plugin)
            p50(lab, 50)
            latencies["add_header"] += p50(lab, PER_ROUND)
            remove_plugin(lab, "default", "add-header")
        none, one = (statistics.median(latencies[k]) for k in ("none", "add_header"))
        print(f"2. one Wasm filter, {WASM_ROUNDS} rounds of {PER_ROUND} keep-alive requests each way: "
              f"p50 {none:.0f} µs without, {one:.0f} µs with add_header: {one / none:.2f}x (target 1.5x)")
    code = module.read_bytes()
    compiles, starts = [], []
    for _ in range(LOADS):
        started = time.perf_counter()
        compiled = wasmtime.Module(wasmtime.Engine(), code)
        compiles.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        loaded = WasmHttpFilter.load(code, name="add-header", root_id="add_header", configuration=ADD_HEADER_CONFIG, log_sink=lambda *_: None)
        starts.append((time.perf_counter() - started) * 1000)
    del compiled
    started = time.perf_counter()
    for _ in range(HOST_REQUESTS):
        stream = loaded.new_stream()
        stream.request_headers(Headers([(":method", "GET"), (":path", "/"), (":authority", "server")]), True)
        stream.response_headers(Headers([(":status", "200")]), True)
        stream.done(None)
    per_request = (time.perf_counter() - started) / HOST_REQUESTS * 1e6
    print(f"3. module load ({len(code)} bytes, median of {LOADS}): compile {statistics.median(compiles):.1f} ms; "
          f"load (compile + VM start + on_configure) {statistics.median(starts):.1f} ms; "
          f"one request's lifecycle in the host alone: {per_request:.0f} µs")


if __name__ == "__main__":
    main()

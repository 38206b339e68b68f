# %% [markdown]
# # 10 · Extending the proxy: WasmPlugin and the proxy-wasm ABI
#
# Sooner or later a mesh needs something its proxy does not do: a header a partner insists on, a check
# no policy language can say, a metric by tenant. Envoy can be extended with C++ filters compiled into
# it, with Lua scripts, or, since Istio 1.12 made it a first-class API, with **WebAssembly** modules
# loaded at run time: the `WasmPlugin` resource names a module by URL, and every selected proxy fetches
# it, checks it and runs it as an HTTP filter. The module and the proxy talk through the **proxy-wasm
# ABI** (github.com/proxy-wasm/spec), so one module runs unchanged in any host that implements it.
# meshlab's sidecar is such a host: this chapter builds real modules with a real SDK, runs them in
# meshlab's host on the model stage, applies them with WasmPlugins to live pods, and measures the cost.
#
# **After this chapter you can**
# - say what a proxy-wasm module exports and imports, and in which order the host calls it;
# - write a WasmPlugin: url and sha256, pluginName and pluginConfig, selector and match, phase and
#   priority, failStrategy, and predict where it lands in a sidecar's HTTP filter chain;
# - follow a module from istiod (an ECDS resource with a remote url) through pilot-agent (fetch, check,
#   cache, or the RBAC filter standing in) to Envoy (a local file), and what each failStrategy does;
# - weigh what a filter costs per request against doing the same in the proxy itself.

# %%
from meshlab.viz.architectures import wasm_plugin_delivery

wasm_plugin_delivery()

# %%
import hashlib
import statistics

import ipywidgets as widgets
import matplotlib.pyplot as plt
import wasmtime
from envoy.extensions.filters.http.wasm.v3 import wasm_pb2 as http_wasm_pb2
from envoy.extensions.wasm.v3 import wasm_pb2
from google.protobuf import wrappers_pb2

from meshlab.envoy.httpfilter import Headers
from meshlab.viz import new_axes, use_book_style
from meshlab.viz.text import fit
from meshlab.wasm.build import TOOLCHAIN, build
from meshlab.wasm.host import WasmHttpFilter

use_book_style()

# %% [markdown]
# ## 1 · A module and its host
#
# A proxy-wasm module is a WebAssembly binary that **exports** the callbacks the host calls
# (`proxy_on_vm_start`, `proxy_on_configure`, `proxy_on_context_create`, `proxy_on_request_headers`,
# `proxy_on_response_headers`, `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`, ...) and **imports** the
# host functions it calls back (`proxy_get_header_map_value`, `proxy_add_header_map_value`,
# `proxy_send_local_response`, `proxy_log`, ...). The host owns the request; the module only sees what it
# asks for, through copies in its own linear memory. meshlab builds its example filters from
# AssemblyScript with the proxy-wasm AssemblyScript SDK from npm (versions below), and asks wasmtime,
# the runtime under meshlab's host, what one of them exports and imports:

# %%
print("built with:", ", ".join(f"{package}@{version}" for package, version in TOOLCHAIN.items()))
ADD_HEADER = build("add_header")
module = wasmtime.Module(wasmtime.Engine(), ADD_HEADER.read_bytes())
imports = sorted(f"{i.module}.{i.name}" for i in module.imports)
exports = sorted(e.name for e in module.exports if e.name.startswith("proxy_"))
print(fit("imports (what the host must provide): " + ", ".join(imports)))
print(fit("exports (what the host may call): " + ", ".join(exports)))
assert "proxy_abi_version_0_2_0" in exports and "env.proxy_add_header_map_value" in imports

# %% [markdown]
# `proxy_abi_version_0_2_0` is how a module says which ABI it speaks; a host refuses a module without it,
# and one that imports a function the host lacks is refused at load, by the function's name. The
# lifecycle follows Envoy's: one **root context** per plugin (its configuration, its metrics), created at
# load (`proxy_on_context_create(root, 0)`, `proxy_on_vm_start`, `proxy_on_configure`), then one **stream
# context** per request (`proxy_on_request_headers`, the upstream's answer or a local reply,
# `proxy_on_response_headers`, then `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`).
#
# ## 2 · Filters on the model stage
#
# Here a module runs in meshlab's host with no network at all: the host hands it a request's headers as
# Envoy would (lower-case names, pseudo-headers `:method`, `:path`, `:authority`), and we read what it did.
# `deny_by_header` answers 403 itself when a configured header has a configured value. Change the
# request's header:

# %% tags=["nbval-ignore-output"]
DENY = WasmHttpFilter.load(build("deny_by_header").read_bytes(), name="deny", root_id="deny_by_header",
                           configuration=b'{"header": "x-deny", "value": "yes"}', log_sink=lambda level, message: None)


def through_deny(value):
    request = Headers([(":method", "GET"), (":path", "/orders"), (":authority", "shop"), ("x-deny", value)])
    reply = DENY.new_stream().request_headers(request, True)
    if reply is None:
        print(f"x-deny: {value!r} -> passes on to the next filter")
    else:
        print(f"x-deny: {value!r} -> local reply {reply.status}, details {reply.details!r}, body {reply.body.decode().strip()!r}")


widgets.interact(through_deny, value=widgets.Dropdown(options=["no", "yes", ""], value="yes", description="x-deny"));
assert DENY.new_stream().request_headers(Headers([(":method", "GET"), (":path", "/"), (":authority", "shop"), ("x-deny", "yes")]), True).status == 403

# %% [markdown]
# `count_by_path` defines a counter per request path in its root context and increments it in each
# stream; the host keeps the metrics and prints them as Envoy's `/stats/prometheus` would (Envoy keeps a
# module's metrics in their own namespace, under the names the module chose):

# %%
COUNT = WasmHttpFilter.load(build("count_by_path").read_bytes(), name="count", root_id="count_by_path",
                            configuration=b'{"prefix": "meshlab_requests_total"}', log_sink=lambda level, message: None)
for path in ("/orders", "/orders", "/cart", "/orders"):
    stream = COUNT.new_stream()
    stream.request_headers(Headers([(":method", "GET"), (":path", path), (":authority", "shop")]), True)
print("\n".join(line for line in COUNT.metrics() if not line.startswith("#")))
assert "meshlab_requests_total_path__orders 3" in COUNT.metrics()

# %% [markdown]
# What a call costs: each crossing between the host and the module copies bytes into or out of the
# module's memory. Timing the whole lifecycle of a request (headers in, headers out, done) in this host,
# against the same decision written in Python:

# %% tags=["nbval-ignore-output"]
import time


def per_request_us(action, rounds=2000):
    started = time.perf_counter()
    for _ in range(rounds):
        action()
    return (time.perf_counter() - started) / rounds * 1e6


def wasm_request():
    stream = DENY.new_stream()
    stream.request_headers(Headers([(":method", "GET"), (":path", "/"), (":authority", "shop"), ("x-deny", "no")]), True)
    stream.response_headers(Headers([(":status", "200")]), True)


def python_request():
    headers = Headers([(":method", "GET"), (":path", "/"), (":authority", "shop"), ("x-deny", "no")])
    return headers.get("x-deny") == "yes"


WASM_US, PYTHON_US = per_request_us(wasm_request), per_request_us(python_request)
print(f"deny_by_header in meshlab's host: {WASM_US:.0f} us per request; the same test in Python: {PYTHON_US:.1f} us")
assert WASM_US > PYTHON_US

# %% [markdown]
# Envoy's V8 or wasmtime, called from C++, crosses in well under a microsecond; meshlab's host is Python
# calling wasmtime's C API (raw values, each signature checked once), and most of these microseconds are
# the crossings and the SDK's own debug logging. The point holds in both: a filter pays per request for
# every host call it makes.
#
# ## 3 · WasmPlugin: what istiod does with it
#
# A WasmPlugin says **which module** (`url`: `oci://` an image in a registry, `http(s)://`, or `file://` on
# the node; `sha256` to check it), **how to start it** (`pluginName`, the root id the module registered;
# `pluginConfig`, handed to `proxy_on_configure` as JSON), **where** (a `selector` of the workloads in its
# namespace, or every workload from the root namespace `istio-system`; `match` of traffic direction and
# ports), **when in the chain** (`phase` and `priority`), and **what if it fails** (`failStrategy`).
# meshlab reads it with Istio's validation rules; `istioctl validate` refuses the same ones (the upstream
# tests compare the two on a table of 36 plugins):

# %%
from meshlab.wasm.plugin import FailurePolicy, WasmPlugin, WasmPluginError, ecds_name, extension_config, wasm_phases
from meshlab.xds.inbound import http_filters

for spec in ("url: ftp://modules/x.wasm", "url: oci://ghcr.io/acme/f:v1\n  phase: EARLY", "url: oci://ghcr.io/acme/f:v1\n  sha256: abc"):
    try:
        WasmPlugin.parse(f"apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {{name: f, namespace: shop}}\nspec:\n  {spec}\n")
    except WasmPluginError as error:
        print(fit(f"refused: {error}"))

# %% [markdown]
# Where plugins land: istiod puts each phase before the Istio filters it is named after, and within a
# phase the higher `priority` first (an unset priority below every set one, then creation time, then
# name: pilot/pkg/model/push_context.go). Istio 1.30's inbound HTTP filter chain, with three plugins:

# %%
def plugin(name, phase, priority=None, extra=""):
    spec = f"url: oci://registry.local/{name}:v1\n  phase: {phase}" + (f"\n  priority: {priority}" if priority is not None else "") + extra
    return WasmPlugin.parse(f"apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  {spec}\n")


PLUGINS = [plugin("tenant-metrics", "STATS", 10), plugin("jwt-extra", "AUTHN"), plugin("audit", "AUTHZ"), plugin("quota", "AUTHZ", 5)]
NAMES = {ecds_name(p): f"{p.name} (WasmPlugin, {p.phase})" for p in PLUGINS}
for position, f in enumerate(http_filters(wasm_phases(PLUGINS, "shop", {}, "inbound", 8080)), 1):
    print(f"{position:>2}  {NAMES.get(f.name, f.name)}")

# %% [markdown]
# (Istio adds `envoy.filters.http.jwt_authn` and `envoy.filters.http.rbac` only for proxies that a
# RequestAuthentication or an AuthorizationPolicy selects; here none does, so the AUTHN and AUTHZ plugins
# sit next to each other.) What istiod sends a selected proxy is not the module: it is an **ECDS**
# resource (Envoy's extension config discovery) named after the plugin, whose code is a *remote* source,
# the url and the sha256, and the filter chain references it by that name:

# %%
QUOTA = plugin("quota", "AUTHZ", 5, f"\n  sha256: {'ab' * 32}\n  pluginName: quota\n  pluginConfig: {{limit: '100'}}\n  failStrategy: FAIL_OPEN")
resource = extension_config(QUOTA)
wasm = http_wasm_pb2.Wasm()
resource.typed_config.Unpack(wasm)
print("ECDS resource:", resource.name)
print("code:", wasm.config.vm_config.code.remote.http_uri.uri, " sha256:", wasm.config.vm_config.code.remote.sha256[:16] + "...")
configuration = wrappers_pb2.StringValue()
wasm.config.configuration.Unpack(configuration)
print("root id:", wasm.config.root_id, " configuration:", configuration.value, " failure policy:", wasm_pb2.FailurePolicy.Name(wasm.config.failure_policy))

# %% [markdown]
# ## 4 · What pilot-agent does: fetch, check, cache, or stand in
#
# Envoy cannot pull an OCI image, so pilot-agent intercepts ECDS on its way to Envoy (it proxies the xDS
# stream): it fetches the module (an OCI image's layer, or an HTTP download with retries), checks its
# sha256 (for `oci://`, the image's digest), keeps it in a cache keyed by url and checksum (re-fetching a
# `:latest` tag or when `imagePullPolicy: Always` and the plugin changed), and rewrites the code into a
# local file. When it cannot, the plugin does not simply vanish: the agent sends Envoy an RBAC filter in its
# place, allow-all or deny-all as the failStrategy says (pkg/wasm/convert.go). If the module loads and
# later traps, Envoy's own failure policy applies:

# %%
for strategy in ("FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"):
    policy = FailurePolicy.of(strategy)
    print(f"{strategy:<12} module cannot be had: RBAC {policy.fetch_fallback:<6}  module traps: {policy.on_vm_failure}")

# %% [markdown]
# ## 5 · Live: WasmPlugins on the lab's pods
#
# **Stage: live.** A lab whose `server` pod's sidecar has its HTTP side (`dataplane=True`: Istio's inbound
# listener with its HTTP connection manager, a pilot-agent beside it), and a meshed client. Each WasmPlugin
# is applied as istiod and the agent would: the pod's listener gets the plugin's ECDS reference at its
# phase, and the module is fetched and checked (here, from an HTTP server on the host's loopback) and
# handed to the sidecar as a local file. Requests go from the client through both sidecars.

# %% tags=["nbval-ignore-output"]
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from meshlab.lab import Lab, PodSpec
from meshlab.lab.client import local_http
from meshlab.lab.proxyconfig import apply_plugins, remove_plugin


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


MODULES = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(ADD_HEADER.parent)))
threading.Thread(target=MODULES.serve_forever, daemon=True).start()
MODULE_URL = f"http://127.0.0.1:{MODULES.server_address[1]}"
LAB = Lab("ml10c").up([PodSpec("server", dataplane=True, labels={"app": "server"}), PodSpec("client")], down_at_exit=True)
SERVER = LAB.pod("server").ip


def wasm_plugin(name, module, root, config, **spec):
    lines = [f"  {key}: {value}" for key, value in spec.items()]
    return "\n".join(["apiVersion: extensions.istio.io/v1alpha1", "kind: WasmPlugin", f"metadata: {{name: {name}, namespace: default}}",
                      "spec:", f"  url: {MODULE_URL}/{module.name}", f"  sha256: '{hashlib.sha256(module.read_bytes()).hexdigest()}'",
                      f"  pluginName: {root}", f"  pluginConfig: {config}", *lines])


(APPLIED,) = apply_plugins(LAB, wasm_plugin("add-header", ADD_HEADER, "add_header", "{name: x-meshlab, value: hello}"))
print(f"{APPLIED.namespace}/{APPLIED.name} on {', '.join(APPLIED.pods)}: module {APPLIED.outcome}")
reply = LAB.request("client", SERVER, 8080, "/orders")
print("status", reply.status, " x-meshlab:", reply.headers.get("x-meshlab"), " the app saw:", reply.body["peer"])
assert reply.headers["x-meshlab"] == "hello"

# %% [markdown]
# A second plugin denies by header at the AUTHN phase; a third counts by path. The counters reach
# Prometheus as every proxy metric does: through the agent's merged endpoint on 15020.

# %% tags=["nbval-ignore-output"]
apply_plugins(LAB, wasm_plugin("deny", build("deny_by_header"), "deny_by_header", "{header: x-deny, value: 'yes'}", phase="AUTHN"))
apply_plugins(LAB, wasm_plugin("count", build("count_by_path"), "count_by_path", "{prefix: meshlab_requests_total}"))
for headers in ({"x-deny": "yes"}, {"x-deny": "no"}):
    reply = LAB.request("client", SERVER, 8080, "/orders", headers=headers)
    print(headers, "->", reply.status, reply.body.get("text", "").strip() or "answered by the app")
status, text = LAB.in_pod("server", local_http, 15020, "/stats/prometheus")
print("\n".join(line for line in text.splitlines() if line.startswith("meshlab_requests_total")))
assert LAB.request("client", SERVER, 8080, "/", headers={"x-deny": "yes"}).status == 403

# %% [markdown]
# The denied request never reached the counter: AUTHN runs before the unspecified phase, and a local
# reply stops the chain. Now a plugin whose sha256 does not match what the url serves, once failing
# closed and once open:

# %% tags=["nbval-ignore-output"]
for strategy in ("FAIL_CLOSE", "FAIL_OPEN"):
    text = wasm_plugin("tampered", ADD_HEADER, "add_header", "{name: x-a, value: b}", failStrategy=strategy).replace(
        hashlib.sha256(ADD_HEADER.read_bytes()).hexdigest(), "0" * 64)
    (applied,) = apply_plugins(LAB, text)
    print(fit(f"{strategy}: {applied.outcome}: {applied.reason.replace(applied.url, '<url>')}"))
    print("   a request now gets", LAB.request("client", SERVER, 8080, "/").status)
    remove_plugin(LAB, "default", "tampered")
assert LAB.request("client", SERVER, 8080, "/").status == 200

# %% [markdown]
# The cost, live: keep-alive requests through the server's sidecar with the three plugins, then with none
# (the figures vary from run to run; `benchmarks/bench_dataplane.py` measures them with a baseline in the
# same run).

# %% tags=["nbval-ignore-output"]
def p50_us(count=400):
    replies = LAB.requests("client", SERVER, 8080, count, headers={"x-deny": "no"})
    assert all(reply.status == 200 for reply in replies)
    return statistics.median(reply.latency_us for reply in replies)


WITH = p50_us()
for name in ("add-header", "deny", "count"):
    remove_plugin(LAB, "default", name)
WITHOUT = p50_us()
fig, ax = plt.subplots(figsize=(6.5, 2.4))
new_axes("Keep-alive p50 through the sidecar's HTTP side", "microseconds", "", ax)
ax.barh(["no plugin", "three plugins"], [WITHOUT, WITH], color=["#7a7a7a", "#3b6ea5"])
plt.show()
print(f"p50 without plugins {WITHOUT:.0f} us, with three {WITH:.0f} us ({WITH / WITHOUT:.2f}x)")
LAB.down()
MODULES.shutdown()

# %% [markdown]
# ## Stage of this chapter
#
# Sections 1 to 4 run on the **model** stage: real modules compiled with the real AssemblyScript
# compiler and SDK (from npm), run by `meshlab.wasm.host` on wasmtime; WasmPlugins read and placed by
# `meshlab.wasm.plugin` and `meshlab.xds.inbound` (Istio 1.30's rules; the tests compare with `istioctl
# validate`); pilot-agent's fetch and conversion by `meshlab.wasm.fetch` (its `oci://` path is tested
# against a real OCI registry, go-containerregistry's `crane`, on the upstream stage). Section 5 runs
# **live**: the lab sidecar's HTTP side runs the modules on real requests between pods. There is no
# Envoy here: what Envoy's V8 does, meshlab's host does, more slowly.
#
# **Lab 10** (`labs/10-writing-a-wasm-filter.ipynb`): write the WasmPlugin that puts a security filter in
# the right place, predict a chain's order, and write a filter of your own in AssemblyScript, checked in
# the host and through a live sidecar.
#
# ## What to remember
#
# - A proxy-wasm module exports callbacks and imports host functions; the ABI between them is the same in
#   every host, so one module runs in any proxy that implements it.
# - A WasmPlugin names the module (url, sha256), its configuration, the workloads and traffic it applies to,
#   its place (phase before Istio's own filters of that name; priority within a phase), and its failure
#   policy.
# - istiod sends an ECDS resource with a remote url; pilot-agent fetches and checks the module and hands
#   Envoy a local file, or an allow-all or deny-all RBAC filter when it cannot.
# - Every host call costs a crossing and a copy; a filter that needs only a header costs little, one that
#   reads bodies or calls out costs more. Measure it against doing the same in the proxy or the app.
#
# ## Check yourself
#
# 1. A WasmPlugin in `istio-system` has no selector. Which proxies run it?
#
#    <details><summary>Answer</summary>
#
#    Every sidecar of the mesh: a plugin in the root namespace applies to all namespaces, and without a
#    selector to every workload (its `match` may still limit the traffic it sees).
#
#    </details>
#
# 2. The registry is down when a new pod starts. Its WasmPlugin says `failStrategy: FAIL_CLOSE`. What do
#    its requests get, and why not a 503?
#
#    <details><summary>Answer</summary>
#
#    403 "RBAC: access denied": pilot-agent could not fetch the module, so it sends Envoy a deny-all RBAC
#    filter in the plugin's place. The 503 is what a module that loaded and then trapped gives under
#    FAIL_CLOSE.
#
#    </details>
#
# 3. Two AUTHZ plugins, one with priority 10 and one without a priority. Which runs first, and where does a
#    STATS plugin with priority 100 go?
#
#    <details><summary>Answer</summary>
#
#    The one with priority 10 (an unset priority sorts below every set one); the STATS plugin runs after
#    both, whatever its priority: phases come first, priority orders only within a phase.
#
#    </details>

"""Checks for lab 10, "Writing a Wasm filter".

The reader writes a WasmPlugin that puts a given module where the scenario wants it, predicts where
three plugins land in a sidecar's HTTP filter chain, and fills the hole of an AssemblyScript filter.
The WasmPlugin is read with ``meshlab.wasm.plugin`` (Istio's validation and selection rules); the
chain comes from ``meshlab.xds.inbound``; the filter is compiled with the real AssemblyScript compiler,
run in meshlab's proxy-wasm host, and then, live, applied to a lab pod and called through its sidecar.

    MISTAKES          the wrong answers the checks recognise
    MODULE_SHA256_OF  the sha256 the WasmPlugin must carry for the module it names
    SCENARIO          exercise 1's wants, as the text states them
    check_plugin      exercise 1: the WasmPlugin YAML
    ORDERING          exercise 2's plugins; check_order: the filter names, in chain order
    QUOTA_TESTS       exercise 3's requests and the status each must get
    filter_source     the lab's filter template with the reader's code in its hole
    check_filter      exercise 3 on the model stage: the reader's code in the template, compiled and run in the host
    check_filter_live exercise 3 live: the module applied as a WasmPlugin, requests through the sidecar
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from meshlab.check import CheckFailed, Mistake, answer_of, require_stage
from meshlab.envoy.httpfilter import Headers
from meshlab.wasm.plugin import WasmPlugin, WasmPluginError, applies_to, ecds_name, wasm_phases
from meshlab.xds.inbound import http_filters

#: Exercise 1: deny a debug header at the payments pods, before any authentication or authorization filter sees it.
SCENARIO = {"namespace": "shop", "labels": {"app": "payments"}, "port": 8080, "phase": "AUTHN", "fail_strategy": "FAIL_CLOSE"}
#: Exercise 2: three plugins of the namespace shop, all selecting every pod.
ORDERING = (
    ("metrics", "STATS", 10), ("audit", "AUTHZ", None), ("tenant-check", "AUTHZ", 5),
)
#: Exercise 3: (request headers, the status the filter must give).
QUOTA_TESTS = (({"x-quota": "exceeded"}, 429), ({"x-quota": "fine"}, 200), ({}, 200))

REFUSED = Mistake("write_plugin", "a WasmPlugin Istio's validation refuses (e.g. phase EARLY)", "istioctl would refuse it")
OTHER_NAMESPACE = Mistake("write_plugin", "puts the plugin in another namespace (payments)",
                          "a WasmPlugin selects workloads of its own namespace: put it in shop")
MISSES_PAYMENTS = Mistake("write_plugin", "a selector or match that misses the payments pods' inbound 8080 (mode CLIENT)",
                          "check selector.matchLabels app: payments and match (mode SERVER is inbound, CLIENT outbound)")
NO_SELECTOR = Mistake("write_plugin", "no selector: every pod of shop", "a selector with matchLabels app: payments limits it")
OUTBOUND_TOO = Mistake("write_plugin", "match mode CLIENT_AND_SERVER (or none): outbound too", "match mode SERVER keeps it to inbound traffic")
EVERY_PORT = Mistake("write_plugin", "no port in match: every inbound port", "match ports [{number: 8080}]")
LATE_PHASE = Mistake("write_plugin", "phase AUTHZ, STATS or unset: after authentication",
                     "the scenario wants it before any authentication filter (AUTHN)")
FAIL_OPEN = Mistake("write_plugin", "failStrategy FAIL_OPEN",
                    "with FAIL_OPEN a module that cannot be fetched lets every debug request through: a security filter fails closed")
WRONG_DIGEST = Mistake("write_plugin", "a sha256 that is not the module file's",
                       "sha256 must be the module file's digest (hashlib.sha256(path.read_bytes()).hexdigest()): pilot-agent "
                       "checks it before Envoy loads the module")
NO_DIGEST = Mistake("write_plugin", "no sha256", "no sha256: pilot-agent would load whatever the url serves; give the module's digest")
PRIORITY_FIRST = Mistake("predict_order", "orders by priority across phases (metrics first)",
                         "a STATS plugin runs after every AUTHZ plugin: phases come first, priority only orders within a phase")
UNSET_PRIORITY_FIRST = Mistake("predict_order", "runs the plugin without priority before the one with priority 5",
                               "within AUTHZ the higher priority runs first, and an unset priority counts below every set one (below 0)")
NOT_COMPILED = Mistake("quota_code", "code the AssemblyScript compiler refuses", "the AssemblyScript compiler refused it")
NOT_DENIED = Mistake("quota_code", "lets an exceeded quota through (the template as given)",
                     "send_local_response(429, ...) then return StopIteration")
DENIES_ALL = Mistake("quota_code", "denies requests whose quota is fine, or that carry no header", "let it Continue")
MISTAKES = (REFUSED, OTHER_NAMESPACE, MISSES_PAYMENTS, NO_SELECTOR, OUTBOUND_TOO, EVERY_PORT, LATE_PHASE, FAIL_OPEN, WRONG_DIGEST, NO_DIGEST,
            PRIORITY_FIRST, UNSET_PRIORITY_FIRST, NOT_COMPILED, NOT_DENIED, DENIES_ALL)


def module_sha256(path: Path) -> str:
    """What the WasmPlugin's sha256 must be for a module served from ``path``: its file's digest."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_plugin(write_plugin: Callable[[], str], module: Path) -> None:
    """The YAML must be a valid WasmPlugin selecting exactly the payments pods' inbound 8080 at AUTHN,
    failing closed, for ``module`` with its sha256."""
    text = answer_of(write_plugin)
    try:
        plugin = WasmPlugin.parse(text, SCENARIO["namespace"])
    except WasmPluginError as error:
        raise CheckFailed(f"{REFUSED.hint}: {error}") from None
    want = SCENARIO
    if plugin.namespace != want["namespace"]:
        raise CheckFailed(f"the plugin is in namespace {plugin.namespace!r}; {OTHER_NAMESPACE.hint}")
    if not applies_to(plugin, "shop", want["labels"], "inbound", want["port"]):
        raise CheckFailed(f"it does not apply to the payments pods' inbound port 8080: {MISSES_PAYMENTS.hint}")
    if applies_to(plugin, "shop", {"app": "cart"}, "inbound", want["port"]):
        raise CheckFailed(f"it applies to other pods of shop too (app: cart): {NO_SELECTOR.hint}")
    if applies_to(plugin, "shop", want["labels"], "outbound", want["port"]):
        raise CheckFailed(f"it also runs on what the payments pods send (outbound): {OUTBOUND_TOO.hint}")
    if applies_to(plugin, "shop", want["labels"], "inbound", 9090):
        raise CheckFailed(f"it also runs on other inbound ports: {EVERY_PORT.hint}")
    if plugin.phase != want["phase"]:
        later = {"AUTHZ": "after authentication", "STATS": "after authorization", "UNSPECIFIED_PHASE": "near the end, before the router"}
        raise CheckFailed(f"phase {plugin.phase} puts it {later[plugin.phase]}: {LATE_PHASE.hint}")
    if plugin.fail_strategy != want["fail_strategy"]:
        raise CheckFailed(FAIL_OPEN.hint)
    if plugin.sha256 != module_sha256(module):
        raise CheckFailed(WRONG_DIGEST.hint if plugin.sha256 else NO_DIGEST.hint)


def _ordering_plugins() -> list[WasmPlugin]:
    documents = []
    for name, phase, priority in ORDERING:
        spec = f"url: oci://registry.local/{name}:v1\n  phase: {phase}" + (f"\n  priority: {priority}" if priority is not None else "")
        documents.append(f"apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  {spec}\n")
    return [WasmPlugin.parse(document) for document in documents]


def expected_order() -> list[str]:
    """Plugin names and Istio's own filters between them, in the chain's order."""
    names = {ecds_name(p): p.name for p in _ordering_plugins()}
    chain = [f.name for f in http_filters(wasm_phases(_ordering_plugins(), "shop", {}, "inbound", 8080))]
    return [names.get(name, name) for name in chain]


def check_order(predict: Callable[[], list[str]]) -> None:
    """The three plugins' names in the order they run (Istio's own filters left out)."""
    answer = answer_of(predict)
    plugins = [name for name, _, _ in ORDERING]
    expected = [name for name in expected_order() if name in plugins]
    if not isinstance(answer, list) or sorted(answer) != sorted(plugins):
        raise CheckFailed(f"predict_order() must return the three plugin names, {', '.join(plugins)}, in the order they run")
    if answer == expected:
        return
    if answer.index("metrics") < answer.index("audit"):
        raise CheckFailed(PRIORITY_FIRST.hint)
    raise CheckFailed(UNSET_PRIORITY_FIRST.hint)


def _statuses(filter_factory) -> list[int]:
    statuses = []
    for headers, _ in QUOTA_TESTS:
        stream = filter_factory.new_stream()
        request = Headers([(":method", "GET"), (":path", "/"), (":authority", "payments"), *headers.items()])
        reply = stream.request_headers(request, True)
        statuses.append(reply.status if reply is not None else 200)
    return statuses


HOLE_START, HOLE_END = "// ---- your code here", "// ---- end of your code ----"


def filter_source(code: str) -> str:
    """The template (``meshlab.wasm.build.TEMPLATE``) with ``code`` between its hole's two marker lines."""
    from meshlab.wasm.build import TEMPLATE

    template = TEMPLATE.read_text()
    start = template.index("\n", template.index(HOLE_START)) + 1
    end = template.rindex("\n", 0, template.index(HOLE_END)) + 1
    return template[:start] + code.rstrip("\n") + "\n" + template[end:]


def check_filter(code: Callable[[], str]) -> Path:
    """Compile the template with the reader's ``code()`` in its hole and run it in meshlab's proxy-wasm
    host; returns the module's path."""
    from meshlab.wasm.build import BuildError, build_source
    from meshlab.wasm.host import WasmError, WasmHttpFilter

    source = filter_source(answer_of(code))
    try:
        module = build_source(source, name="my_filter")
    except BuildError as error:
        raise CheckFailed(f"{NOT_COMPILED.hint}:\n{error}") from None
    try:
        loaded = WasmHttpFilter.load(module.read_bytes(), name="my_filter", root_id="my_filter", configuration=b'{"header": "x-quota"}')
    except WasmError as error:
        raise CheckFailed(f"the module does not start: {error}") from None
    got = _statuses(loaded)
    for (headers, want), status in zip(QUOTA_TESTS, got, strict=True):
        if status != want:
            said = f"with {headers}" if headers else "without the header"
            raise CheckFailed(f"a request {said} got {status}, it should get {want}"
                              + f": {NOT_DENIED.hint if want == 429 else DENIES_ALL.hint}")
    return module


def check_filter_live(code: Callable[[], str]) -> None:
    """The reader's module as a WasmPlugin on a live lab pod: requests through the sidecar get the statuses."""
    require_stage("live")
    from meshlab.lab import Lab, PodSpec
    from meshlab.lab.proxyconfig import apply_plugins

    module = check_filter(code)
    plugin = ("apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: quota, namespace: default}\n"
              f"spec:\n  url: file://{module}\n  pluginName: my_filter\n  pluginConfig: {{header: x-quota}}\n")
    with Lab("ml10").up([PodSpec("payments", dataplane=True), PodSpec("client")]) as lab:
        apply_plugins(lab, plugin)
        for headers, want in QUOTA_TESTS:
            reply = lab.request("client", lab.pod("payments").ip, 8080, "/", headers=headers)
            if reply.status != want:
                raise CheckFailed(f"live, through the sidecar: a request with {headers or 'no header'} got {reply.status}, expected {want}")

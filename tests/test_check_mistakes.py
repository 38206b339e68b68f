"""Every wrong answer a lab's check declares in ``MISTAKES`` is recognised: for each row, an answer that
embodies the mistake (written here as a student would write it) makes the check fail with that row's
hint. The instructor guide prints these rows as its tables, so this proves the tables row by row.

A row without an answer below fails (a new Mistake needs its wrong answer); the live row (lab 02's
``bypassed``) needs a live lab and is marked so.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache

import networkx as nx
import pytest
from lab_solutions import solution
from test_check_lab10 import variant
from test_check_lab11 import Greedy, Impatient
from test_check_lab14 import HEAD

from meshlab import abac
from meshlab.abac import action, environment, object_, subject
from meshlab.check import CheckFailed, Mistake, lab01, lab02, lab03, lab04, lab05, lab06, lab08, lab09, lab10, lab11, lab12, lab13, lab14
from meshlab.deploy import evaluate
from meshlab.intercept import CaptureConfig
from meshlab.intercept.paths import DATAPATHS, traversals
from meshlab.metaprotocol.codec import Message

LABS = ("01", "02", "03", "04", "05", "06", "08", "09", "10", "11", "12", "13", "14")
ROWS = [(lab, mistake) for lab in LABS for mistake in importlib.import_module(f"meshlab.check.lab{lab}").MISTAKES]
LIVE_ROWS = {("02", lab02.PEER_MISREAD)}
Answer = Callable[[], object]
#: (lab, mistake) -> a call of the check with a wrong answer that embodies the mistake
ANSWERS: dict[tuple[str, Mistake], Answer] = {}


def given(lab: str, mistake: Mistake, answer: Answer) -> None:
    ANSWERS[(lab, mistake)] = answer


# -- lab 01 ----------------------------------------------------------------------------------------
given("01", lab01.SELF_COUNTED, lambda: lab01.check_blast_radius(lambda g, s: set(nx.ancestors(g, s)) | {s}))
given("01", lab01.DOWNSTREAM, lambda: lab01.check_blast_radius(lambda g, s: set(nx.descendants(g, s))))
given("01", lab01.DIRECT_CALLERS, lambda: lab01.check_blast_radius(lambda g, s: set(g.predecessors(s))))
given("01", lab01.SERVICE_LEFT_OUT, lambda: lab01.check_request_success(lambda g, s, a: a ** len(nx.descendants(g, s))))
given("01", lab01.DIRECT_CALLEES, lambda: lab01.check_request_success(lambda g, s, a: a ** (1 + g.out_degree(s))))
given("01", lab01.ADDED, lambda: lab01.check_request_success(lambda g, s, a: a * (1 + len(nx.descendants(g, s)))))

# -- lab 02 ----------------------------------------------------------------------------------------
RIGHT_CAPTURE = CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*", inbound_ports_exclude="9090")
for _mistake, _config in (
    (lab02.NOTHING_INBOUND, CaptureConfig(outbound_ip_ranges_include="*")),
    (lab02.OUTBOUND_EXCLUDE, CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*", outbound_ports_exclude="9090")),
    (lab02.STILL_CAPTURED, CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*")),
    (lab02.APP_EXCLUDED, CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*", inbound_ports_exclude="9090,8080")),
    (lab02.OUTBOUND_LOST, CaptureConfig(inbound_ports_include="*", inbound_ports_exclude="9090")),
):
    given("02", _mistake, lambda config=_config: lab02.check_rules(lambda: config))
# "through the sidecar, so it bypassed": every verdict True
given("02", lab02.PEER_MISREAD, lambda: lab02.check_live(lambda: RIGHT_CAPTURE, lambda reply: True))


# -- lab 03 ----------------------------------------------------------------------------------------
def traversals_table(datapath: str, same_node: bool, **counts: int) -> Answer:
    table = {(d, same): {k: traversals(d, same)[k] for k in ("iptables", "stack")} for d in DATAPATHS for same in (True, False)}
    table[(datapath, same_node)] = {**table[(datapath, same_node)], **counts}
    return lambda: lab03.check_traversals(lambda: table)


given("03", lab03.STACK_ONCE, traversals_table("iptables", True, stack=3))
given("03", lab03.MERBRIDGE_CNI_RULES, traversals_table("merbridge-2022", False, iptables=0))
given("03", lab03.CNI_MODE_RULES, traversals_table("merbridge-cni", False, iptables=2))
given("03", lab03.EBPF_WITHOUT_RULES, traversals_table("ebpf-meshlab", True, iptables=0))  # "eBPF replaces iptables"
given("03", lab03.EBPF_NO_STACK, traversals_table("ebpf-meshlab", True, stack=0))


def counters(name: str, value: Callable[[int], int], datapath: str | None = None, same_node: bool | None = None) -> Answer:
    """The right predictions with one counter changed (for one datapath and placement, or for all)."""
    def predict(d: str, s: bool, n: int) -> dict:
        ebpf = d == "ebpf"
        counts = {"client OUTPUT": 2 * n, "client REDIRECT 15001": 0 if ebpf else n, "server PREROUTING": n, "server REDIRECT 15006": n,
                  "server OUTPUT": n, "connect_rewrites": n if ebpf else 0, "redirected_messages": 4 * n if ebpf else 0,
                  "passed_messages": 2 * n if ebpf else 0}
        if datapath in (None, d) and same_node in (None, s):
            counts[name] = value(n)
        return counts
    return lambda: lab03.check_counters(predict)


given("03", lab03.SIDECAR_OUTPUT_FORGOTTEN, counters("client OUTPUT", lambda n: n))
given("03", lab03.PREROUTING_TWICE, counters("server PREROUTING", lambda n: 2 * n))
given("03", lab03.EBPF_REDIRECT_15001, counters("client REDIRECT 15001", lambda n: n, "ebpf"))
given("03", lab03.MERBRIDGE_ON_ONE_NODE, counters("server REDIRECT 15006", lambda n: 0, "ebpf", True))
given("03", lab03.ONE_MESSAGE_PER_SEGMENT, counters("redirected_messages", lambda n: 2 * n, "ebpf", False))
given("03", lab03.EBPF_COUNTERS_ON_IPTABLES, counters("connect_rewrites", lambda n: n, "iptables"))


# -- lab 04 ----------------------------------------------------------------------------------------
def quoted(model: str, waypoints: set[str] | None = None, **changes: object) -> Answer:
    """A choice quoting meshlab.deploy's own figures for it (unless ``changes`` says otherwise)."""
    result = evaluate(model, lab04.cluster(), waypoints)
    choice = {"model": model, "waypoints": None if waypoints is None else sorted(waypoints), "memory_mb": result.memory_mb,
              "blast_radius_max_pods": result.blast_radius_max_pods, **changes}
    return lambda: lab04.check_choice(lambda: choice)


given("04", lab04.OVER_BUDGET, quoted("sidecar"))
given("04", lab04.BLAST_RADIUS, quoted("ambient", {"ns1"}))
given("04", lab04.NO_L7, quoted("ambient", set()))
given("04", lab04.MISQUOTED, quoted("ambient", {"ns0"}, memory_mb=72))


# -- lab 05: real exchanges with gRPC's xDS client ---------------------------------------------------
@cache
def lab05_incident() -> lab05.Incident:
    return lab05.incident()


def diagnosis(**changes: Callable[[dict], object]) -> Answer:
    """The right reading of the NACK, with some answers replaced by functions of the right ones."""
    def diagnose(requests: list, responses: list) -> dict:
        nack = next(request for request in requests if "error_detail" in request)
        rejected = next(response for response in responses if response["nonce"] == nack["response_nonce"])
        right = lab05.truth(lab05_incident().records)
        right = {**right, "rejected_version": rejected["version_info"], "version_kept": nack["version_info"], "nonce": nack["response_nonce"]}
        return {**right, **{key: change(right) for key, change in changes.items()}}
    return lambda: lab05.check_diagnosis(diagnose, lab05_incident())


given("05", lab05.WRONG_TYPE, diagnosis(type=lambda a: "LDS"))
given("05", lab05.NONCE_FOR_VERSION, diagnosis(version_kept=lambda a: a["nonce"], nonce=lambda a: a["version_kept"]))
given("05", lab05.REJECTED_AS_KEPT, diagnosis(version_kept=lambda a: a["rejected_version"]))
given("05", lab05.WRONG_NONCE, diagnosis(nonce=lambda a: str(int(a["nonce"]) + 2)))
given("05", lab05.KEY_MISTAKES["resources"], diagnosis(resources=lambda a: ["greeter-v1", "greeter-v2"]))
given("05", lab05.KEY_MISTAKES["fields"], diagnosis(fields=lambda a: []))
given("05", lab05.KEY_MISTAKES["rejected_version"], diagnosis(rejected_version=lambda a: "latest"))
given("05", lab05.KEY_MISTAKES["version_kept"], diagnosis(version_kept=lambda a: "none"))
given("05", lab05.WRONG_NAME, lambda: lab05.check_fix(lambda greeter: greeter.service("greeter-v1", {"v1": 100})))
given("05", lab05.NACKED_FIX, lambda: lab05.check_fix(lambda greeter: greeter.service("greeter", {"v1": 0, "v2": 0})))
given("05", lab05.NOT_DRAINED, lambda: lab05.check_fix(lambda greeter: greeter.service("greeter", {"v1": 50, "v2": 50})))

# -- lab 06 ----------------------------------------------------------------------------------------
for _mistake, _check, _settings in (
    (lab06.TOO_MANY_PUSHES, lab06.check_settings, {"debounce_after_ms": 100, "debounce_max_ms": 10_000}),
    (lab06.BATCHES_WAIT, lab06.check_settings, {"debounce_after_ms": 500, "debounce_max_ms": 10_000}),
    (lab06.THROTTLE_CONTENDS, lab06.check_headroom, {"debounce_after_ms": 100, "debounce_max_ms": 10_000, "push_throttle": 100}),
    (lab06.TOO_MUCH_WORK, lab06.check_headroom, {"debounce_after_ms": 100, "debounce_max_ms": 10_000}),
    (lab06.IDLE_CORES, lab06.check_headroom, {"debounce_after_ms": 500, "debounce_max_ms": 2000, "push_throttle": 1}),
    (lab06.LATER_PAST_CORES, lab06.check_headroom, {"debounce_after_ms": 500, "debounce_max_ms": 5000, "push_throttle": 100}),
    (lab06.BATCHES_WAIT_HEADROOM, lab06.check_headroom, {"debounce_after_ms": 500, "debounce_max_ms": 10_000}),
):
    given("06", _mistake, lambda check=_check, settings=_settings: check(lambda: settings))

# -- lab 08 ----------------------------------------------------------------------------------------
CANARY, SPLIT, REDIRECT = (solution("08-writing-routes", f) for f in ("canary_route", "split_route", "redirect_route"))
CATALOG = "  - matches: [{path: {type: PathPrefix, value: /catalog}}]"
CANARY_RULE = "  - matches: [{path: {type: PathPrefix, value: /catalog}, headers: [{name: x-canary, value: always}]}]"
BASKET = "{type: PathPrefix, value: /basket}"


def route(check: Callable[[Callable[[], str]], None], text: str) -> Answer:
    return lambda: check(lambda: text)


def request_row(description: str) -> Mistake:
    return next(m for lab, m in ROWS if lab == "08" and m.wrong_answer == description)


given("08", lab08.REFUSED, route(lab08.check_canary, CANARY.replace("hostnames:", "hostname:")))
given("08", lab08.MISNAMED, route(lab08.check_canary, CANARY.replace("name: catalog,", "name: products,")))
given("08", lab08.NOT_ACCEPTED, route(lab08.check_canary, CANARY.replace("namespace: infra", "namespace: shop")))
for _description, _check, _text in (
    ("GET /catalog with x-canary: always: answered otherwise than shop/catalog-canary", lab08.check_canary,
     CANARY.replace("value: always", 'value: "true"')),
    ("GET /catalog/items/7 with x-canary: always: answered otherwise than shop/catalog-canary", lab08.check_canary,
     CANARY.replace("type: PathPrefix", "type: Exact")),
    ("GET /catalog: answered otherwise than shop/catalog", lab08.check_canary,
     CANARY.replace(CATALOG + "\n    backendRefs: [{name: catalog, port: 8080}]\n", "")),
    # the plain requests by Exact path: the canary needs an Exact rule too then, to win /catalog
    ("GET /catalog/items/7: answered otherwise than shop/catalog", lab08.check_canary,
     CANARY.replace(CATALOG, "  - matches: [{path: {type: Exact, value: /catalog}}]").replace(
         CANARY_RULE, CANARY_RULE[:-1] + ", {path: {type: Exact, value: /catalog}, headers: [{name: x-canary, value: always}]}]")),
    ("GET /catalog with x-canary: true: answered otherwise than shop/catalog", lab08.check_canary,
     CANARY.replace("{name: x-canary, value: always}", "{type: RegularExpression, name: x-canary, value: '.+'}")),
    ("GET /catalogue with x-canary: always: answered otherwise than no route (404)", lab08.check_canary,
     CANARY.replace("{type: PathPrefix, value: /catalog}", "{type: RegularExpression, value: /catalog.*}")),
    ("GET /checkout: answered otherwise than no route (404)", lab08.check_canary,
     CANARY.replace(CATALOG, CATALOG[:-1] + ", {path: {type: PathPrefix, value: /checkout}}]")),
    ("GET /checkout: answered otherwise than shop/checkout 9/10, shop/checkout-v2 1/10", lab08.check_split,
     SPLIT.replace(", weight: 90", "").replace(", weight: 10", "")),
    ("POST /checkout/pay: answered otherwise than shop/checkout 9/10, shop/checkout-v2 1/10", lab08.check_split,
     SPLIT.replace("{path: {type: PathPrefix, value: /checkout}}", "{path: {type: PathPrefix, value: /checkout}, method: GET}")),
    ("GET /checkouts: answered otherwise than no route (404)", lab08.check_split,
     SPLIT.replace("{type: PathPrefix, value: /checkout}", "{type: RegularExpression, value: /checkout.*}")),
    ("GET /basket/items/7: answered otherwise than redirect 301 to /cart/items/7", lab08.check_redirect,
     REDIRECT.replace("ReplacePrefixMatch, replacePrefixMatch", "ReplaceFullPath, replaceFullPath")),
    ("GET /basket: answered otherwise than redirect 301 to /cart", lab08.check_redirect,
     REDIRECT + "  - matches: [{path: {type: Exact, value: /basket}}]\n    filters:\n    - type: RequestRedirect\n"
                "      requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /cart/}}\n"),
    # a second rule for "the other old links": a regular expression that reaches past the segment
    ("GET /basketball: answered otherwise than no route (404)", lab08.check_redirect,
     REDIRECT + '  - matches: [{path: {type: RegularExpression, value: "/basket[^/].*"}}]\n    filters:\n    - type: RequestRedirect\n'
                "      requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /cart}, statusCode: 301}\n"),
):
    given("08", request_row(_description), route(_check, _text))

# -- lab 09 ----------------------------------------------------------------------------------------
SIDECAR = solution("09-scoping-a-sidecar", "checkout_sidecar")
LEARNED = frozenset(solution("09-scoping-a-sidecar", "learned_dependencies"))
HOSTS = {f"*/{host}" for host in LEARNED} | {"istio-system/*", "mesh-operator/*"}
for _mistake, _text in (
    (lab09.UNQUOTED_STAR, SIDECAR.replace("./cart", "*/cart")),
    (lab09.IN_ROOT_NAMESPACE, SIDECAR.replace("namespace: shop", "namespace: istio-system")),
    (lab09.OTHER_NAMESPACE, SIDECAR.replace(", namespace: shop", "")),
    (lab09.SELECTOR_MATCHES_NO_POD, SIDECAR.replace("{app: checkout}", "{app: checkout-v1}")),
    (lab09.REFUSED, SIDECAR.replace("./cart.shop.svc.cluster.local", "./cart")),
    (lab09.NOT_CHECKOUT, SIDECAR.replace("{app: checkout}", "{app: cart}")),
    (lab09.TOO_MANY_PODS, SIDECAR.replace("{app: checkout}", "{version: v1}")),
    (lab09.WRONG_HOST_NAMESPACE, SIDECAR.replace("payments/payments.payments", "./payments.payments")),
    (lab09.PORT_FILTERS, SIDECAR.replace("  - hosts:", "  - port: {number: 8080, protocol: HTTP, name: http}\n    hosts:")),
    (lab09.SHARED_BY_NAME, SIDECAR.replace("- shared/*", "- shared/auth.shared.svc.cluster.local\n    - shared/feature-flags.shared.svc.cluster.local\n"
                                                         "    - shared/notifications.shared.svc.cluster.local")),
    (lab09.NO_ROOT_NAMESPACE, SIDECAR.replace("    - istio-system/*\n", "")),
    (lab09.HOST_MISSING, SIDECAR.replace("    - ./cart.shop.svc.cluster.local\n", "")),
    (lab09.WILDCARD, SIDECAR.replace("- ./cart.shop.svc.cluster.local\n    - ./catalog.shop.svc.cluster.local", "- ./*")),
    (lab09.NO_EGRESS, SIDECAR[:SIDECAR.index("  egress:")] + "  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"),
    (lab09.ALLOW_ANY, SIDECAR.replace("  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n", "")),
):
    given("09", _mistake, route(lab09.check_sidecar, _text))
for _number, _answer in enumerate((
    LEARNED - {"tracker.analytics.svc.cluster.local"} | {"tracker"},
    LEARNED - {"catalog.shop.svc.cluster.local"} | {"catalog.shop:8080"},
    LEARNED | {"reviews.shop.svc.cluster.local"},
    LEARNED | {"10.96.3.12"},
    LEARNED - {"payments.payments.svc.cluster.local"} | {"payments.payments.svc"},
    LEARNED - {"api.fx-rates.example"},
    LEARNED | {"tracker:80"},
), start=1):
    _line = next(m for lab, m in ROWS if lab == "09" and m.wrong_answer.startswith(f"gets line {_number} wrong"))
    given("09", _line, lambda answer=_answer: lab09.check_learned_dependencies(lambda: answer))
given("09", lab09.NOT_IN_LOG, lambda: lab09.check_learned_dependencies(lambda: LEARNED | {"ledger.payments.svc.cluster.local"}))
for _mistake, _hosts in (
    (lab09.WRITTEN_AS_NAMESPACED, HOSTS - {"*/catalog.shop.svc.cluster.local"} | {"shop/catalog.shop.svc.cluster.local"}),
    (lab09.WHOLE_NAMESPACE, HOSTS | {"./*"}),
    (lab09.NAMESPACES_FORGOTTEN, HOSTS - {"mesh-operator/*"}),
    (lab09.LEARNED_FORGOTTEN, HOSTS - {"*/api.fx-rates.example"}),
):
    given("09", _mistake, lambda hosts=_hosts: lab09.check_sidecar_hosts(lambda: hosts))


# -- lab 10 ----------------------------------------------------------------------------------------
@cache
def deny_module():
    from meshlab.wasm.build import build

    return build("deny_by_header")


def plugin(**changes: object) -> Answer:
    """The lab's WasmPlugin with fields changed (a dotted path; None deletes the field)."""
    def check() -> None:
        text = variant(solution("10-writing-a-wasm-filter", "write_plugin", {"lab10": lab10, "DENY_MODULE": deny_module()}), **changes)
        lab10.check_plugin(lambda: text, deny_module())
    return check


given("10", lab10.REFUSED, plugin(**{"spec.phase": "EARLY"}))
given("10", lab10.OTHER_NAMESPACE, plugin(**{"metadata.namespace": "payments"}))
given("10", lab10.MISSES_PAYMENTS, plugin(**{"spec.match": [{"mode": "CLIENT", "ports": [{"number": 8080}]}]}))
given("10", lab10.NO_SELECTOR, plugin(**{"spec.selector": None}))
given("10", lab10.OUTBOUND_TOO, plugin(**{"spec.match": [{"mode": "CLIENT_AND_SERVER", "ports": [{"number": 8080}]}]}))
given("10", lab10.EVERY_PORT, plugin(**{"spec.match": [{"mode": "SERVER"}]}))
given("10", lab10.LATE_PHASE, plugin(**{"spec.phase": "AUTHZ"}))
given("10", lab10.FAIL_OPEN, plugin(**{"spec.failStrategy": "FAIL_OPEN"}))
given("10", lab10.WRONG_DIGEST, plugin(**{"spec.sha256": "0" * 64}))
given("10", lab10.NO_DIGEST, plugin(**{"spec.sha256": None}))
given("10", lab10.PRIORITY_FIRST, lambda: lab10.check_order(lambda: ["metrics", "tenant-check", "audit"]))
given("10", lab10.UNSET_PRIORITY_FIRST, lambda: lab10.check_order(lambda: ["audit", "tenant-check", "metrics"]))
given("10", lab10.NOT_COMPILED, lambda: lab10.check_filter(lambda: "    this is not AssemblyScript;"))
given("10", lab10.NOT_DENIED, lambda: lab10.check_filter(lambda: ""))
given("10", lab10.DENIES_ALL, lambda: lab10.check_filter(lambda: (
    '    send_local_response(429, "quota_exceeded", String.UTF8.encode("quota exceeded\\n"), [], GrpcStatusValues.InvalidCode);\n'
    "    return FilterHeadersStatusValues.StopIteration;")))


# -- lab 11: codecs a student might write ------------------------------------------------------------
class WaitsForOneFrame(lab11.ReferenceKvCodec):
    """Decodes only a buffer that holds exactly one frame."""

    def decode(self, buffer):
        message = super().decode(buffer)
        return message if message is not None and message.consumed == len(buffer) else None


class Early(lab11.ReferenceKvCodec):
    """Returns the message once the value's length is known, before the value is there."""

    def decode(self, buffer):
        if len(buffer) < lab11.FIXED.size:
            return None
        _, _, kind, request_id, key_length = lab11.FIXED.unpack_from(buffer)
        header = lab11.FIXED.size + key_length + 4
        if len(buffer) < header:
            return None
        value_length = int.from_bytes(buffer[header - 4:header], "big")
        key = bytes(buffer[lab11.FIXED.size:header - 4]).decode()
        return Message(lab11.TYPES[kind], request_id, {"key": key}, header, value_length, header + value_length, bytes(buffer[:header + value_length]))


class NoMagicCheck(lab11.ReferenceKvCodec):
    def decode(self, buffer):
        return super().decode(lab11.MAGIC + bytes(buffer[2:]) if len(buffer) >= 2 else buffer)


class NoVersionCheck(lab11.ReferenceKvCodec):
    def decode(self, buffer):
        return super().decode(bytes(buffer[:2]) + bytes([lab11.VERSION]) + bytes(buffer[3:]) if len(buffer) >= 3 else buffer)


class Trusting(lab11.ReferenceKvCodec):
    """Never checks the value length against max_frame_size."""

    def check_size(self, length, what):
        pass


class Mute(lab11.ReferenceKvCodec):
    def error_reply(self, message, error):
        return lab11.frame(2, message.request_id, "", b"")


for _mistake, _codec in ((lab11.WHOLE_AS_WAIT, WaitsForOneFrame), (lab11.GREEDY, Greedy), (lab11.IMPATIENT, Impatient), (lab11.EARLY, Early),
                         *zip(lab11.BUFFERS_INVALID, (NoMagicCheck, NoVersionCheck, Trusting), strict=True), (lab11.MUTE, Mute)):
    given("11", _mistake, lambda codec=_codec: lab11.check_codec(lambda: codec))


# -- lab 12 ----------------------------------------------------------------------------------------
def choice(constraints, control_plane: str, network: str) -> Answer:
    return lambda: lab12.check_choice(lambda: {"control_plane": control_plane, "network": network}, constraints)


for _mistake in lab12.MISTAKES:
    if _mistake.exercise in ("choose_retail", "choose_edge"):  # "chooses <control plane>, <network>", as the reader answers it
        _control_plane, _network = _mistake.wrong_answer.removeprefix("chooses ").split(", ")
        _constraints = lab12.RETAIL if _mistake.exercise == "choose_retail" else lab12.EDGE
        given("12", _mistake, choice(_constraints, _control_plane, {"single network": "single", "multi-network": "multi"}[_network]))
PRIORITIES = {"eu-west/eu-west-1a": 0, "eu-west/eu-west-1b": 1, "eu-central/eu-central-1a": 2, "us-east/us-east-1a": 3}
for _mistake, _changes in (
    (lab12.GAPS, {"eu-west/eu-west-1b": 2, "eu-central/eu-central-1a": 3, "us-east/us-east-1a": 4}),
    (lab12.PRIORITY_MISTAKES["eu-west/eu-west-1b"], {"eu-west/eu-west-1b": 2, "eu-central/eu-central-1a": 1}),
    (lab12.PRIORITY_MISTAKES["eu-central/eu-central-1a"], {"eu-central/eu-central-1a": 3, "us-east/us-east-1a": 2}),
    (lab12.PRIORITY_MISTAKES["us-east/us-east-1a"], {"us-east/us-east-1a": 4}),
    (lab12.PRIORITY_MISTAKES["eu-west/eu-west-1a"], {"eu-west/eu-west-1a": 1}),
):
    given("12", _mistake, lambda changes=_changes: lab12.check_priorities(lambda: {**PRIORITIES, **changes}))
given("12", lab12.NO_OVERPROVISIONING, lambda: lab12.check_spill(lambda: 0.75))
given("12", lab12.SPILL, lambda: lab12.check_spill(lambda: 0.5))


# -- lab 13 ----------------------------------------------------------------------------------------
def entries(server: list[str], client: list[str]) -> Answer:
    return lambda: lab13.check_entries(lambda: [{"spiffe_id": lab13.SERVER, "selectors": server}, {"spiffe_id": lab13.CLIENT, "selectors": client}])


CLIENT_SELECTORS = ["k8s:ns:shop", "k8s:sa:client", "unix:uid:0"]
given("13", lab13.REFUSED, lambda: lab13.check_entries(lambda: [{"spiffe_id": lab13.SERVER + "/", "selectors": ["unix:uid:0"]}]))
given("13", lab13.TOO_WIDE, entries(["k8s:ns:shop", "k8s:sa:server"], CLIENT_SELECTORS))
given("13", lab13.TOO_NARROW, entries(["k8s:ns:shop", "k8s:sa:server", "unix:uid:1000"], CLIENT_SELECTORS))
given("13", lab13.TWO_IDENTITIES, entries(["unix:uid:0"], CLIENT_SELECTORS))
given("13", lab13.ADDRESSES, lambda: lab13.check_callers(lambda: ["10.244.0.11"]))
given("13", lab13.WIDE_ALLOW_LIST, lambda: lab13.check_callers(lambda: [lab13.CLIENT, lab13.INTRUDER]))

# -- lab 14 ----------------------------------------------------------------------------------------
FROM_SHOP = '  - from: [{source: {namespaces: ["shop"]}}]\n'
GET_RULE = FROM_SHOP + '    to: [{operation: {methods: ["GET"], paths: ["/orders/*"], notPaths: ["/orders/debug/*"]}}]\n'
WHEN = '    when: [{key: "request.auth.claims[scope]", values: ["orders:write"]}]\n'
POST_RULE = ('  - from: [{source: {principals: ["cluster.local/ns/shop/sa/checkout"]}}]\n'
             '    to: [{operation: {methods: ["POST"], paths: ["/orders"]}}]\n' + WHEN)
ORDERS = HEAD + GET_RULE + POST_RULE


def policies(text: str) -> Answer:
    return lambda: lab14.check_orders_policies(lambda: text)


def case_row(what: str) -> Mistake:
    return lab14.ORDERS_MISTAKES[[case.what for case in lab14.ORDERS_CASES].index(what)]


given("14", lab14.REJECTED, policies(ORDERS.replace("action: ALLOW", "action: PERMIT")))
given("14", lab14.NOT_APPLIED, policies(ORDERS.replace("namespace: shop", "namespace: default")))
for _what, _text in (
    ("frontend (shop) GET /orders/17", ORDERS.replace('paths: ["/orders/*"]', 'paths: ["/orders"]')),
    ("checkout (shop) GET /orders/17", ORDERS.replace('namespaces: ["shop"]', 'principals: ["cluster.local/ns/shop/sa/frontend"]')),
    ("checkout (shop) POST /orders with scope orders:write", ORDERS.replace("cluster.local/ns/shop/sa/checkout", "spiffe://cluster.local/ns/shop/sa/checkout")),
    ("frontend (staging) GET /orders/17", ORDERS.replace(FROM_SHOP + "    to:", "  - to:")),
    ("a plaintext caller GET /orders/17", ORDERS.replace('namespaces: ["shop"]', 'notNamespaces: ["staging"]')),
    ("frontend (shop) GET /orders/debug/heap", ORDERS.replace(', notPaths: ["/orders/debug/*"]', "")),
    ("checkout (shop) POST /orders with scope orders:read only", HEAD + GET_RULE + POST_RULE.replace(WHEN, "") + "  - " + WHEN[4:]),
    # a second POST rule "for tokens without orders:read", which a request without a token also passes
    ("checkout (shop) POST /orders without a JWT", ORDERS + POST_RULE.replace('values: ["orders:write"]', 'notValues: ["orders:read"]')),
    ("frontend (shop) POST /orders with scope orders:write", ORDERS.replace('principals: ["cluster.local/ns/shop/sa/checkout"]', 'namespaces: ["shop"]')),
    ("checkout (staging) POST /orders with scope orders:write", ORDERS.replace("cluster.local/ns/shop/sa/checkout", "*/sa/checkout")),
    ("checkout (shop) DELETE /orders/17", ORDERS.replace('methods: ["GET"], ', "")),
    ("checkout (shop) POST /orders/17 with scope orders:write", ORDERS.replace('paths: ["/orders"]', 'paths: ["/orders", "/orders/*"]')),
):
    given("14", case_row(_what), policies(_text))

IN_OFFICE = (environment.hour >= 8) & (environment.hour < 18)
for _mistake, _rule in (
    (lab14.OTHER_TEAMS, (subject.clearance >= object_.classification) & ((action == "read") | IN_OFFICE)),
    (lab14.UNDER_CLEARED, (subject.team == object_.team) & ((action == "read") | IN_OFFICE)),
    (lab14.AFTER_HOURS, (subject.team == object_.team) & (subject.clearance >= object_.classification)),
    (lab14.EQUAL_LEVELS, (subject.team == object_.team) & (subject.clearance == object_.classification) & ((action == "read") | IN_OFFICE)),
    (lab14.DENIES_CLEARED, (subject.team == object_.team) & (subject.clearance > object_.classification) & ((action == "read") | IN_OFFICE)),
):
    given("14", _mistake, lambda rule=_rule: lab14.check_records_policy(lambda: abac.AbacPolicy([abac.Rule("records", rule)])))
given("14", lab14.AS_BIG_AS_RBAC, lambda: lab14.check_records_policy(lambda: abac.AbacPolicy([
    abac.Rule(f"{team}-{level}", (subject.team == team) & (subject.clearance == level) & (object_.team == team)
              & (object_.classification <= level) & ((action == "read") | IN_OFFICE))
    for team in lab14.TEAMS for level in range(len(lab14.LEVELS))])))


def _param(lab: str, mistake: Mistake):
    marks = [pytest.mark.live] if (lab, mistake) in LIVE_ROWS else []
    return pytest.param(lab, mistake, marks=marks, id=f"lab{lab} {mistake.exercise}: {mistake.wrong_answer}")


@pytest.mark.parametrize(("lab", "mistake"), [_param(lab, mistake) for lab, mistake in ROWS])
def test_the_wrong_answer_gets_the_declared_hint(lab: str, mistake: Mistake):
    answer = ANSWERS.get((lab, mistake))
    assert answer is not None, f"lab {lab} declares a mistake no test answer embodies: {mistake.wrong_answer!r}"
    with pytest.raises(CheckFailed) as failed:
        answer()
    assert mistake.hint in str(failed.value), f"the check said: {failed.value}"


def test_every_answer_here_belongs_to_a_declared_mistake():
    """An answer left behind after its row was renamed or removed would prove nothing."""
    assert set(ANSWERS) <= set(ROWS)


def test_every_lab_with_a_check_declares_its_mistakes():
    assert all(importlib.import_module(f"meshlab.check.lab{lab}").MISTAKES for lab in LABS)
    assert all(isinstance(mistake, Mistake) and mistake.hint and mistake.wrong_answer for _, mistake in ROWS)

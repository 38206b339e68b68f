"""Checks for lab 09 (scoping a Sidecar): the reader's Sidecar for the shop's checkout, read and validated
as Istio does, its scope computed as istiod computes it, and lazy loading's learner and controller run on
an access log of the global sidecar.

Exercise 1's check asks meshlab.scoping what checkout's proxy would be sent with the reader's Sidecar in
force, on today's registry and on tomorrow's (the platform team adds a service to ``shared``, the shop
and payments each add one checkout does not call), and names the first thing that differs from what
checkout calls: a service left out (and the host that was meant to import it), or services too many
(how many, their clusters, and the host whose ``*`` pulled them in). A Sidecar Istio refuses is refused
with Istio's message; where istioctl is built (the upstream stage), ``istioctl analyze`` must say the same.
Exercise 2's check runs Slime's learner (meshlab.scoping.lazyload) on the log and its fence controller on
what was learned.

    SERVICES, WORKLOADS, CHECKOUT   the lab's mesh: 17 services in 6 namespaces, a pod each; exercise 1's workload
    TOMORROW                        the registry with shared/quota, shop/wishlist and payments/refunds added
    CALLS, TOMORROW_CALLS           what checkout calls, today and tomorrow
    registry_table                  the registry as text (namespace, service, ports, exportTo)
    Sent                            what checkout's proxy is sent: clusters, routes, listeners, policy (and unscoped)
    SIDECAR_MISTAKES                what exercise 1's check recognises in a Sidecar
    check_sidecar                   exercise 1: the reader's Sidecar for checkout
    LogLine, ACCESS_LOG, REPORTS    exercise 2's access log, each line with what the learner makes of it; its workload
    access_log_table                the log as text
    learned                         what Slime's learner records for reports from the log
    written_sidecar                 the Sidecar Slime's fence controller writes for reports from that
    check_learned_dependencies      exercise 2a: the reader's prediction of ``learned``
    check_sidecar_hosts             exercise 2b: the reader's prediction of ``written_sidecar``'s egress hosts
    MISTAKES                        every wrong answer the checks recognise: exercise 1's, each log line's, exercise 2b's
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from meshlab.check import CheckFailed, Mistake, answer_of
from meshlab.scoping.lazyload import GLOBAL_SIDECAR, SLIME_NAMESPACE, AccessLogEntry, DependencyLearner, FenceController, ServiceFence
from meshlab.scoping.scope import DEFAULT_POLICY, ROOT_NAMESPACE, PushContext, Service, ServicePort, SidecarScope, Workload
from meshlab.scoping.sidecar import EgressListener, Finding, Pod, Sidecar, SidecarError, analyze, parse_resources

SUFFIX = "svc.cluster.local"
HTTP_8080 = (ServicePort(8080, "HTTP", "http"),)
GRPC_9090 = (ServicePort(9090, "GRPC", "grpc"),)
#: istiod's ports as the istio-discovery chart declares them (Istio 1.30.3
#: manifests/charts/istio-control/istio-discovery/templates/service.yaml); Istio reads the protocol from
#: the name's prefix before a dash (pkg/config/kube/conversion.go ConvertProtocol).
ISTIOD = (ServicePort(15010, "GRPC", "grpc-xds"), ServicePort(15012, "HTTPS", "https-dns"), ServicePort(443, "HTTPS", "https-webhook"),
          ServicePort(15014, "HTTP", "http-monitoring"))
#: (namespace, name, ports, exportTo). config-db is exported to its own namespace only (``.``): no Sidecar
#: elsewhere can import it. global-sidecar is lazy loading's fallback (exercise 2): Slime's chart puts it
#: in its own namespace on port 80 (meshlab.scoping.lazyload.GLOBAL_SIDECAR).
_REGISTRY: tuple[tuple[str, str, tuple[ServicePort, ...], tuple[str, ...]], ...] = (
    ("shop", "frontend", (ServicePort(80, "HTTP", "http"),), ()),
    ("shop", "catalog", HTTP_8080, ()),
    ("shop", "cart", HTTP_8080, ()),
    ("shop", "checkout", HTTP_8080, ()),
    ("shop", "reviews", HTTP_8080, ()),
    ("shop", "cart-redis", (ServicePort(6379, "TCP", "tcp-redis"),), ()),
    ("payments", "payments", GRPC_9090, ()),
    ("payments", "fraud", GRPC_9090, ()),
    ("payments", "ledger", (ServicePort(5432, "TCP", "tcp-postgres"),), ()),
    ("shared", "auth", HTTP_8080, ()),
    ("shared", "feature-flags", HTTP_8080, ()),
    ("shared", "notifications", HTTP_8080, ()),
    ("shared", "config-db", (ServicePort(5432, "TCP", "tcp-postgres"),), (".",)),
    ("analytics", "tracker", (ServicePort(80, "HTTP", "http"),), ()),
    ("analytics", "reports", (ServicePort(80, "HTTP", "http"),), ()),
    (ROOT_NAMESPACE, "istiod", ISTIOD, ()),
    (SLIME_NAMESPACE, GLOBAL_SIDECAR.split(".")[0], (ServicePort(80, "HTTP", "http"),), ()),
)
#: What the platform team, the shop and payments add tomorrow: only quota is checkout's business.
_ADDED = (("shared", "quota", HTTP_8080, ()), ("shop", "wishlist", HTTP_8080, ()), ("payments", "refunds", GRPC_9090, ()))


def _fqdn(namespace: str, name: str) -> str:
    return f"{name}.{namespace}.{SUFFIX}"


def _services(entries: Iterable[tuple[str, str, tuple[ServicePort, ...], tuple[str, ...]]]) -> tuple[Service, ...]:
    return tuple(Service(_fqdn(ns, name), ns, ports, export_to=export_to) for ns, name, ports, export_to in entries)


SERVICES = _services(_REGISTRY)
TOMORROW = _services(_REGISTRY + _ADDED)
_NAMESPACES = tuple(dict.fromkeys(ns for ns, *_ in _REGISTRY))
#: One pod per service, at 10.0.<namespace's number>.<service's number>: the addresses the learner maps back.
WORKLOADS = {f"10.0.{_NAMESPACES.index(ns) + 1}.{index}": Workload(ns, f"{name}-0", {"app": name, "version": "v1"}, (_fqdn(ns, name),))
             for index, (ns, name, _, _) in enumerate(_REGISTRY, start=1)}
CHECKOUT = next(w for w in WORKLOADS.values() if w.name == "checkout-0")
PODS = [Pod(w.namespace, w.name, dict(w.labels)) for w in WORKLOADS.values()]
_LABELS = ", ".join(f"{key}: {value}" for key, value in CHECKOUT.labels.items())
CALLS = frozenset({_fqdn("shop", "cart"), _fqdn("shop", "catalog"), _fqdn("payments", "payments"), _fqdn("shared", "auth"),
                   _fqdn("shared", "feature-flags"), _fqdn("shared", "notifications"), _fqdn(ROOT_NAMESPACE, "istiod")})
TOMORROW_CALLS = CALLS | {_fqdn("shared", "quota")}
#: The codes of the Sidecar's own checks in istioctl's report (schema errors and warnings, deprecation).
CODES = ("IST0106", "IST0133", "IST0002")


def registry_table(services: Iterable[Service] = SERVICES) -> str:
    """The registry, one service a line: what the reader writes hosts against. A hostname is
    ``<service>.<namespace>.svc.cluster.local``."""
    lines = [f"{'namespace':<15}{'service':<16}{'ports':<44}exportTo"]
    for s in services:
        ports = " ".join(f"{p.number}/{p.protocol}" for p in s.ports)
        lines.append(f"{s.namespace:<15}{s.hostname.split('.')[0]:<16}{ports:<44}{','.join(s.export_to) or '*'}")
    return "\n".join(lines)


# -- exercise 1: checkout's Sidecar -----------------------------------------------------------------

_EXERCISE_1 = "checkout_sidecar"
UNQUOTED_STAR = Mistake(_EXERCISE_1, "writes a host starting with * unquoted in YAML",
                        "in YAML a value starting with * is an alias: quote hosts such as '*/...'")
IN_ROOT_NAMESPACE = Mistake(_EXERCISE_1, f"puts the Sidecar in the root namespace ({ROOT_NAMESPACE})",
                            "without a selector it is the mesh's default, for every namespace without a Sidecar of its own "
                            f"(with one it selects pods of {ROOT_NAMESPACE} only)")
OTHER_NAMESPACE = Mistake(_EXERCISE_1, "puts the Sidecar in another namespace (or leaves metadata.namespace out)",
                          f"a Sidecar applies to workloads of its own namespace, and checkout runs in {CHECKOUT.namespace}")
SELECTOR_MATCHES_NO_POD = Mistake(_EXERCISE_1, "a workloadSelector no pod carries (IST0101)", f"checkout's pod has labels {_LABELS}.")
REFUSED = Mistake(_EXERCISE_1, "a Sidecar Istio's validation refuses (IST0106: a short host name, a host without namespace/)",
                  "Istio refuses this Sidecar")
NOT_CHECKOUT = Mistake(_EXERCISE_1, "a workloadSelector that selects another pod", "its workloadSelector labels must all be among the pod's")
TOO_MANY_PODS = Mistake(_EXERCISE_1, "no workloadSelector, or one other pods carry too (version: v1)",
                        "give it workloadSelector labels that only checkout's pod carries (app: checkout)")
WRONG_HOST_NAMESPACE = Mistake(_EXERCISE_1, "names a service under the wrong namespace (./payments.payments...)",
                               "a host's namespace part says where to look for the service; `.` is the Sidecar's own namespace")
PORT_FILTERS = Mistake(_EXERCISE_1, "gives the egress listener a port, which drops the services on other ports",
                       "its listener has a port and keeps only services on that port")
SHARED_BY_NAME = Mistake(_EXERCISE_1, "imports shared's services by name (or not at all): tomorrow's shared/quota is missing",
                         "checkout calls every service of shared, those added later too: import the namespace, shared/*")
NO_ROOT_NAMESPACE = Mistake(_EXERCISE_1, f"leaves out {ROOT_NAMESPACE}/*", f"every proxy needs the mesh's own services: {ROOT_NAMESPACE}/*")
HOST_MISSING = Mistake(_EXERCISE_1, "leaves out a service checkout calls", "add a host that imports it")
WILDCARD = Mistake(_EXERCISE_1, "imports whole namespaces checkout calls only some services of (./*, payments/*, */*)",
                   "Import each namespace's services by name where checkout calls only some of them")
NO_EGRESS = Mistake(_EXERCISE_1, "writes no egress listener at all",
                    "a Sidecar without egress listeners imports every namespace (*/*), as the default does")
ALLOW_ANY = Mistake(_EXERCISE_1, "leaves outboundTrafficPolicy at ALLOW_ANY (the mesh's default)",
                    "set outboundTrafficPolicy mode REGISTRY_ONLY, which sends it to BlackHoleCluster")
SIDECAR_MISTAKES = (UNQUOTED_STAR, IN_ROOT_NAMESPACE, OTHER_NAMESPACE, SELECTOR_MATCHES_NO_POD, REFUSED, NOT_CHECKOUT, TOO_MANY_PODS,
                    WRONG_HOST_NAMESPACE, PORT_FILTERS, SHARED_BY_NAME, NO_ROOT_NAMESPACE, HOST_MISSING, WILDCARD, NO_EGRESS, ALLOW_ANY)


@dataclass(frozen=True)
class Sent:
    """What checkout's proxy is sent under ``scope``, beside what it is sent with no Sidecar at all."""

    scope: SidecarScope
    unscoped: SidecarScope
    warnings: tuple[Finding, ...] = ()

    def __str__(self) -> str:
        def counts(scope: SidecarScope) -> str:
            return (f"{len(scope.clusters())} clusters, {len(scope.routes())} routes, {len(scope.listeners())} listeners; "
                    f"outbound {scope.outbound_traffic_policy}")

        mine = f"with Sidecar {self.scope.namespace}/{self.scope.name}:"
        width = max(len(mine), len("without a Sidecar:")) + 1
        lines = [f"what {CHECKOUT.namespace}/{CHECKOUT.name}'s proxy is sent",
                 f"  {mine:<{width}}{counts(self.scope)}", f"  {'without a Sidecar:':<{width}}{counts(self.unscoped)}"]
        lines += [f"  cluster {name}" for name in sorted(self.scope.clusters())]
        lines += [f"  route {name}, virtual host {host}" for name, hosts in sorted(self.scope.routes().items()) for host in hosts]
        lines += [f"  {finding}" for finding in self.warnings]
        return "\n".join(lines)


def _read_sidecar(text: Any) -> Sidecar:
    if not isinstance(text, str):
        raise CheckFailed(f"checkout_sidecar() must return the Sidecar as YAML text, not {type(text).__name__}")
    try:
        sidecars, pods = parse_resources(text)
    except SidecarError as error:
        alias = f" ({UNQUOTED_STAR.hint})" if "alias" in str(error) else ""
        raise CheckFailed(f"meshlab cannot read your YAML as a Sidecar{alias}: {error}") from None
    if len(sidecars) != 1 or pods:
        raise CheckFailed(f"return exactly one Sidecar (kind: Sidecar, apiVersion: networking.istio.io/v1); got {len(sidecars)} Sidecars"
                          + (f" and {len(pods)} Pods" if pods else ""))
    return sidecars[0]


def _validated(sidecar: Sidecar, text: str) -> tuple[Finding, ...]:
    """Istio's findings on the Sidecar: errors refuse it (istiod would not apply it), warnings are returned."""
    if sidecar.namespace == ROOT_NAMESPACE:
        raise CheckFailed(f"{sidecar.resource} is in the root namespace: {IN_ROOT_NAMESPACE.hint}; checkout runs in {CHECKOUT.namespace}")
    if sidecar.namespace != CHECKOUT.namespace:
        left_out = " (metadata.namespace left out means default)" if sidecar.namespace == "default" else ""
        raise CheckFailed(f"{sidecar.resource} is in namespace {sidecar.namespace}{left_out}: {OTHER_NAMESPACE.hint}")
    findings = analyze([sidecar], PODS)
    _agree_with_istioctl(text, [f for f in findings if f.code in CODES])
    errors = [f for f in findings if f.level == "Error"]
    if errors:
        hint = f" {SELECTOR_MATCHES_NO_POD.hint}" if any(f.code == "IST0101" for f in errors) else ""
        raise CheckFailed(f"{REFUSED.hint}: " + "; ".join(str(f) for f in errors) + "." + hint)
    return tuple(findings)


def _agree_with_istioctl(text: str, ours: list[Finding]) -> None:
    """Where istioctl is built, its offline analysis must find what meshlab finds (the selector analyzer,
    which needs the cluster's pods, runs only in meshlab)."""
    from meshlab.upstream import build
    from meshlab.upstream.versions import PROGRAMS

    istioctl = build.find(PROGRAMS["istioctl"])
    if istioctl is None:
        return
    from meshlab.upstream.analyze import analyze as istioctl_analyze

    theirs = {(f.level, f.code, f.resource, f.message) for f in istioctl_analyze(istioctl.path, text, all_namespaces=True) if f.code in CODES}
    if theirs != {(f.level, f.code, f.resource, f.message) for f in ours}:
        said = "; ".join(" ".join(finding) for finding in sorted(theirs)) or "nothing"
        raise CheckFailed(f"istioctl analyze says {said}; meshlab says {'; '.join(map(str, ours)) or 'nothing'}: please report this to meshlab")


def _applies_only_to_checkout(sidecar: Sidecar, context: PushContext) -> None:
    if context.sidecar_for(CHECKOUT) is not sidecar:
        raise CheckFailed(f"{sidecar.resource} does not apply to checkout (labels {_LABELS}): {NOT_CHECKOUT.hint}")
    others = [f"{w.namespace}/{w.name}" for w in WORKLOADS.values() if w is not CHECKOUT and context.sidecar_for(w) is sidecar]
    if others:
        raise CheckFailed(f"{sidecar.resource} applies to {len(others)} other workloads too ({', '.join(others)}), which would lose what "
                          f"they call: {TOO_MANY_PODS.hint}")


def _listeners(sidecar: Sidecar) -> list[EgressListener]:
    return [listener for listener in sidecar.egress if listener is not None]


def _pulled_in_by(sidecar: Sidecar, services: Iterable[Service], hostnames: set[str]) -> dict[str, set[str]]:
    """Each egress host of ``sidecar`` -> which of ``hostnames`` it imports on its own (with its listener's
    port). Each host gets a context of its own: a PushContext caches scopes by the Sidecar's name."""
    found: dict[str, set[str]] = {}
    for listener in _listeners(sidecar):
        for host in listener.hosts:
            alone = Sidecar(sidecar.name, sidecar.namespace, egress=(EgressListener((host,), listener.port),))
            if hits := hostnames & PushContext(services).scope_of(alone, sidecar.namespace).hostnames:
                found.setdefault(host, set()).update(hits)
    return found


def _why_missing(sidecar: Sidecar, services: Iterable[Service], service: Service) -> str:
    """The usual reason ``service`` is not imported: a host naming it in the wrong namespace, a listener
    whose port drops it, or no host for it at all."""
    for listener in _listeners(sidecar):
        for host in listener.hosts:
            namespace, _, name = host.partition("/")
            looked = sidecar.namespace if namespace == "." else namespace
            if name == service.hostname and looked not in ("*", service.namespace):
                return (f"`{host}` looks for it in namespace {looked}, and it lives in {service.namespace}: write "
                        f"{service.namespace}/{service.hostname} (or */{service.hostname}); {WRONG_HOST_NAMESPACE.hint}")
    portless = Sidecar(sidecar.name, sidecar.namespace, egress=tuple(EgressListener(listener.hosts) for listener in _listeners(sidecar)))
    if importers := _pulled_in_by(portless, services, {service.hostname}):
        ports = ", ".join(str(p.number) for p in service.ports)
        return f"`{min(importers)}` would import it, but {PORT_FILTERS.hint}; {service.hostname} is on {ports}"
    if service.namespace == "shared":
        return SHARED_BY_NAME.hint
    if service.namespace == ROOT_NAMESPACE:
        return NO_ROOT_NAMESPACE.hint
    return f"{HOST_MISSING.hint}: {service.namespace}/{service.hostname}"


def _check_scope(sidecar: Sidecar, services: tuple[Service, ...], calls: frozenset[str], when: str) -> SidecarScope:
    scope = PushContext(services, [sidecar]).sidecar_scope(CHECKOUT)
    by_hostname = {s.hostname: s for s in services}
    missing = sorted(calls - scope.hostnames)
    if missing:
        raise CheckFailed(f"{when}checkout calls {missing[0]}, and your Sidecar leaves it out (its proxy would not know it). "
                          f"{_why_missing(sidecar, services, by_hostname[missing[0]])}")
    extra = set(scope.hostnames - calls)
    if extra:
        clusters = sum(len(by_hostname[h].ports) for h in extra)
        why = "; ".join(f"`{host}` pulled in {', '.join(sorted(h.split('.')[0] + '.' + by_hostname[h].namespace for h in hits))}"
                        for host, hits in sorted(_pulled_in_by(sidecar, services, extra).items()))
        if not _listeners(sidecar):  # Istio 1.30.3 pilot/pkg/model/sidecar.go initSidecarScopeInternalIndexes
            why = NO_EGRESS.hint
        raise CheckFailed(f"{when}too broad: {len(extra)} services checkout does not call are sent to its proxy ({clusters} clusters more "
                          f"than it needs): {why}. {WILDCARD.hint}")
    return scope


def check_sidecar(checkout_sidecar: Callable[[], str]) -> Sent:
    """Exercise 1: the reader's Sidecar must apply to checkout alone, give its proxy exactly the services
    it calls (today and tomorrow) and refuse hosts outside them (REGISTRY_ONLY). Returns what is sent."""
    text = answer_of(checkout_sidecar)
    sidecar = _read_sidecar(text)
    findings = _validated(sidecar, text)
    _applies_only_to_checkout(sidecar, PushContext(SERVICES, [sidecar]))
    scope = _check_scope(sidecar, SERVICES, CALLS, "")
    _check_scope(sidecar, TOMORROW, TOMORROW_CALLS, "tomorrow (shared/quota, shop/wishlist and payments/refunds added): ")
    if scope.outbound_traffic_policy != "REGISTRY_ONLY":
        said = f"the mesh's default, {DEFAULT_POLICY}," if sidecar.outbound_traffic_policy is None else "ALLOW_ANY"
        # Istio 1.30.3 pilot/pkg/networking/core/sidecar_simulation_test.go: an unknown host goes to PassthroughCluster
        # under ALLOW_ANY, to BlackHoleCluster under REGISTRY_ONLY (names from pilot/pkg/networking/util/util.go)
        raise CheckFailed(f"the scope is right, but with {said} a call to a host checkout was not told about still passes through "
                          f"(PassthroughCluster): {ALLOW_ANY.hint}")
    return Sent(scope, PushContext(SERVICES).sidecar_scope(CHECKOUT), tuple(f for f in findings if f.level != "Error"))

# -- exercise 2: what lazy loading learns -----------------------------------------------------------

REPORTS = next(w for w in WORKLOADS.values() if w.name == "reports-0")
_ADDRESS = {f"{w.namespace}/{w.name}": address for address, w in WORKLOADS.items()}
_INBOUND = "inbound|80||"  # the global sidecar's inbound cluster: the lines the learner reads
REFRESH_AT_S = 10.0  # the controller's first refresh (Slime polls the metric every 10 s: lazyload.REFRESH_S)


@dataclass(frozen=True)
class LogLine:
    """One line of the global sidecar's access log, and what the reader should know about it when an
    answer gets it wrong."""

    entry: AccessLogEntry
    hint: str


def _line(time_s: float, workload: str, authority: str, hint: str) -> LogLine:
    return LogLine(AccessLogEntry(time_s, _ADDRESS[workload], authority, _INBOUND), hint)


ACCESS_LOG = (
    _line(3.2, "analytics/reports-0", "tracker",
          "a short name is a service of the caller's namespace: Slime completes it from the source's namespace (analytics)"),
    _line(4.0, "analytics/reports-0", "catalog.shop:8080",
          "the port is dropped, and `name.namespace` of a known service gets .svc.cluster.local"),
    _line(5.1, "shop/frontend-0", "reviews",
          "this line comes from frontend's pod: the learner keys what it learns by the source's service, so it is frontend's dependency"),
    _line(6.3, "analytics/reports-0", "10.96.3.12:5432", "an IP authority names no service: Slime skips the line"),
    _line(7.5, "analytics/reports-0", "payments.payments.svc:9090",
          "`name.namespace.svc` of a known service gets .cluster.local, and the port is dropped"),
    _line(8.8, "analytics/reports-0", "api.fx-rates.example",
          "a name that is no service Slime knows is learned as written: an external host becomes a dependency too"),
    _line(9.4, "analytics/reports-0", "tracker:80", "the same service as the first line, port dropped: learned once (the metric counts it)"),
)


_LEARNED = "learned_dependencies, sidecar_hosts"
NOT_IN_LOG = Mistake(_LEARNED, "adds a service no line of the log names", "no line of the log names it")
WRITTEN_AS_NAMESPACED = Mistake("sidecar_hosts", "writes a learned host without */ or as namespace/host",
                                "Slime writes each learned host as */<host> (from any namespace: the name already says which)")
WHOLE_NAMESPACE = Mistake("sidecar_hosts", "imports a whole namespace other than Istio's and Slime's",
                          f"the only namespaces Slime's Sidecar imports whole are {ROOT_NAMESPACE}/* and {SLIME_NAMESPACE}/*")
NAMESPACES_FORGOTTEN = Mistake("sidecar_hosts", f"leaves out {ROOT_NAMESPACE}/* or {SLIME_NAMESPACE}/*",
                               f"Slime's Sidecar always imports the Istio namespace ({ROOT_NAMESPACE}) and its own ({SLIME_NAMESPACE}, "
                               "where the global sidecar runs: the proxy must know it to send it what it does not know)")
LEARNED_FORGOTTEN = Mistake("sidecar_hosts", "leaves out a learned dependency", "every learned dependency becomes a host */<host>")


def _log_mistakes() -> tuple[Mistake, ...]:
    """A row per log line: what the learner makes of it is the hint an answer that gets it wrong gets."""
    rows = []
    for number, line in enumerate(ACCESS_LOG, start=1):
        source = WORKLOADS[line.entry.source_address]
        rows.append(Mistake(_LEARNED, f"gets line {number} wrong ({line.entry.authority!r} from {source.namespace}/{source.name})", line.hint))
    return tuple(rows)


def access_log_table() -> str:
    """The log as the reader sees it: time, source address and its workload, authority."""
    lines = [f"{'time (s)':<10}{'source address (workload)':<34}authority"]
    for line in ACCESS_LOG:
        workload = WORKLOADS[line.entry.source_address]
        source = f"{line.entry.source_address} ({workload.namespace}/{workload.name})"
        lines.append(f"{line.entry.time_s:<10}{source:<34}{line.entry.authority}")
    return "\n".join(lines)


def _learner() -> DependencyLearner:
    """Slime's ipToSvc: each pod address -> the services it backs ("namespace/name")."""
    return DependencyLearner({address: [f"{w.namespace}/{h.split('.')[0]}" for h in w.services] for address, w in WORKLOADS.items()})


def _learned() -> dict[str, str]:
    """reports' metricStatus after the log is read, as the controller receives it at its first refresh."""
    learner = _learner()
    learner.read(line.entry for line in ACCESS_LOG)
    return learner.metric(REFRESH_AT_S)[f"{REPORTS.namespace}/{REPORTS.labels['app']}"]


def learned() -> frozenset[str]:
    """The FQDNs learned for analytics/reports: the metric's keys read as Slime's controller reads them."""
    return frozenset(key.split('"')[1] for key in _learned())


def written_sidecar() -> Sidecar:
    """The Sidecar Slime's fence controller writes for reports at its first refresh."""
    fence = ServiceFence(REPORTS.namespace, REPORTS.labels["app"])
    sidecar = FenceController(SERVICES).refresh(fence, _learned(), REFRESH_AT_S)
    assert sidecar is not None, "a fence with a new metric always gets a Sidecar"
    return sidecar


def _explain(item: str) -> str:
    """The log line an answer's item comes from, with what the learner makes of that line."""
    learner, host = _learner(), item.split("/")[-1].split(":")[0]
    # a line written as the answer's item explains it best (``tracker:80`` is line 7, not line 1's ``tracker``)
    exact = [number for number, line in enumerate(ACCESS_LOG, start=1) if line.entry.authority == item.split("/")[-1]]
    for number, line in sorted(enumerate(ACCESS_LOG, start=1), key=lambda numbered: numbered[0] not in exact):
        authority = line.entry.authority.split(":")[0]
        source = WORKLOADS[line.entry.source_address]
        made = learner.destination(line.entry.authority, f"{source.namespace}/{source.name}")
        if host in (authority, made) or host.startswith(authority + "."):
            return f"line {number} ({line.entry.authority!r} from {source.namespace}/{source.name}): {line.hint}"
    return NOT_IN_LOG.hint


def _strings(answer: Any, function: str) -> set[str]:
    if not isinstance(answer, (set, frozenset, list, tuple)) or not all(isinstance(item, str) for item in answer):
        raise CheckFailed(f"{function}() must return a set (or list) of strings, not {answer!r}")
    return set(answer)


def check_learned_dependencies(learned_dependencies: Callable[[], Iterable[str]]) -> None:
    """Exercise 2a: the FQDNs Slime's learner records for analytics/reports from the log."""
    answer, expected = _strings(answer_of(learned_dependencies), "learned_dependencies"), set(learned())
    if missing := sorted(expected - answer):
        raise CheckFailed(f"the learner learns {missing[0]} for reports, and your answer leaves it out. {_explain(missing[0])}")
    if extra := sorted(answer - expected):
        raise CheckFailed(f"the learner does not learn {extra[0]!r} for reports. {_explain(extra[0])}")


def check_sidecar_hosts(sidecar_hosts: Callable[[], Iterable[str]]) -> None:
    """Exercise 2b: the egress hosts of the Sidecar Slime's controller writes for reports (order aside)."""
    answer, expected = _strings(answer_of(sidecar_hosts), "sidecar_hosts"), set(written_sidecar().egress[0].hosts)
    namespaces = sorted(h for h in expected if h.endswith("/*"))
    learned_hosts = {h.split("/", 1)[1] for h in expected if h.startswith("*/")}
    if extra := sorted(answer - expected):
        item = extra[0]
        if item.split("/")[-1] in learned_hosts:
            raise CheckFailed(f"{item!r}: {WRITTEN_AS_NAMESPACED.hint}")
        if item.endswith("/*"):
            raise CheckFailed(f"{item!r}: {WHOLE_NAMESPACE.hint}; the rest is what was learned")
        raise CheckFailed(f"{item!r} is not among the hosts the controller writes. {_explain(item)}")
    if missing := sorted(expected - answer):
        item = missing[0]
        if item in namespaces:
            raise CheckFailed(f"{item} is missing: {NAMESPACES_FORGOTTEN.hint}")
        raise CheckFailed(f"{item} is missing: {LEARNED_FORGOTTEN.hint}. {_explain(item)}")


MISTAKES = (*SIDECAR_MISTAKES, *_log_mistakes(), NOT_IN_LOG, WRITTEN_AS_NAMESPACED, WHOLE_NAMESPACE, NAMESPACES_FORGOTTEN, LEARNED_FORGOTTEN)

"""What makes the kind stage worth running: meshlab's predictions set against the cluster.

    sidecar_rules   a sidecar pod's real rules (istio-init's log, an ephemeral netadmin container in
                    the pod, and the kernel via the node) vs
                    ``meshlab intercept istio-iptables`` for the same istio-init arguments; identical for a
                    default sidecar pod, or the differences chain by chain
    ambient_rules   an ambient pod's real in-pod rules vs chapter 04's account (meshlab.deploy.inpod)
    mesh_request    curl -> httpbin in the sidecar namespace: the server's sidecar adds
                    X-Forwarded-Client-Cert naming the client's SPIFFE ID, so the request crossed
                    both sidecars over mutual TLS
    debounce_burst  N ServiceEntries applied ``gap_ms`` apart; istiod's debounced pushes counted in
                    its metrics vs the debounce simulator's prediction for istiod's own settings

A debounced push is counted by ``pilot_debounce_time``: istiod records that distribution once per
push it releases ("Delay in seconds between the first config enters debouncing and the merged push
request is pushed into the push queue", pilot/pkg/xds/monitoring.go), so its ``_count`` grows by one
per debounced push.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field

from meshlab.deploy.inpod import inpod_ruleset
from meshlab.intercept import build_rules
from meshlab.intercept.compare import Difference, compare
from meshlab.kind import observe
from meshlab.kind.cluster import KindCluster
from meshlab.kind.manifests import service_entries
from meshlab.xds.debounce import DebounceOptions
from meshlab.xds.simulate import simulate_timeline

#: What marks the debounce experiment's ServiceEntries, so they are removed by label afterwards.
EXPERIMENT_LABEL = {"meshlab.io/experiment": "debounce"}


@dataclass
class RuleComparison:
    pod: str
    observed_from: str
    expected_from: str
    differences: list[Difference]
    saved: str = field(repr=False)

    @property
    def identical(self) -> bool:
        return not self.differences

    def report(self) -> str:
        head = f"{self.pod}: rules read from {self.observed_from}, compared with {self.expected_from}"
        return head + (": identical" if self.identical else "\n  " + "\n  ".join(map(str, self.differences)))


def sidecar_rules(cluster: KindCluster, namespace: str, app: str = "httpbin") -> list[RuleComparison]:
    """One sidecar pod's rules, read three ways, each against meshlab's rendering of its istio-init args."""
    name = observe.pod_names(cluster, namespace, app)[0]
    pod_object = observe.pod(cluster, namespace, name)
    args, env = observe.init_container(pod_object) if pod_object else (["istio-iptables"], {})
    expected = build_rules(observe.capture_config_from_init(args, env)).restore_text(4)
    rendering = "meshlab intercept istio-iptables --dry-run " + shlex.join(observe.istio_iptables_args(args))
    log = observe.init_log(cluster, namespace, name)
    from_log = observe.iptables_state_from_init_log(log) if log else ""
    proxy_image = next((c["image"] for c in pod_object.get("spec", {}).get("containers", []) if c.get("name") == "istio-proxy"), "<proxyv2-image>")
    from_debug = observe.debug_iptables_save(cluster, namespace, name, proxy_image)
    from_kernel = observe.node_iptables_save(cluster, pod_object)
    return [RuleComparison(name, "the istio-init log", rendering, compare(expected, from_log), from_log),
            RuleComparison(name, "kubectl debug --profile=netadmin", rendering, compare(expected, from_debug), from_debug),
            RuleComparison(name, "the kernel (nsenter on the kind node)", rendering, compare(expected, from_kernel), from_kernel)]


def ambient_rules(cluster: KindCluster, namespace: str, app: str = "httpbin", redirect_dns: bool = True) -> RuleComparison:
    name = observe.pod_names(cluster, namespace, app)[0]
    saved = observe.node_iptables_save(cluster, observe.pod(cluster, namespace, name))
    expected = inpod_ruleset(redirect_dns).restore_text(4)
    return RuleComparison(name, "the kernel (nsenter on the kind node)", "chapter 04's in-pod rules (meshlab.deploy.inpod)", compare(expected, saved), saved)


def mesh_request(cluster: KindCluster, namespace: str) -> tuple[bool, str]:
    """(crossed both sidecars with mTLS, what was seen) for one request from curl to httpbin."""
    out = cluster.kubectl("send a request", "-n", namespace, "exec", "deploy/curl", "-c", "curl", "--", "curl", "-sS", "http://httpbin:8000/headers", timeout=60)
    if cluster.runner.dry_run:
        return True, "(dry run)"
    try:
        headers = {k.lower(): v for k, v in json.loads(out)["headers"].items()}
    except (ValueError, KeyError, AttributeError):
        raise observe.ObservationError(f"httpbin's /headers answer is not the JSON expected: {out[:120]!r}") from None
    client = f"spiffe://cluster.local/ns/{namespace}/sa/curl"
    xfcc = headers.get("x-forwarded-client-cert", "")
    xfcc = ",".join(xfcc) if isinstance(xfcc, list) else xfcc  # go-httpbin lists each header's values
    crossed = f"URI={client}" in xfcc
    return crossed, (f"curl -> httpbin: X-Forwarded-Client-Cert names {client}: the request crossed both sidecars over mTLS" if crossed
                     else f"curl -> httpbin: no X-Forwarded-Client-Cert naming {client} (headers: {sorted(headers)})")


def predict_pushes(settings: DebounceOptions, events_ms: list[float], push_ms: float = 0.0) -> int:
    """How many debounced pushes the simulator releases for config changes at ``events_ms``."""
    timeline = {"debounce_after_ms": settings.debounce_after_ms, "debounce_max_ms": settings.debounce_max_ms,
                "enable_eds_debounce": settings.enable_eds_debounce, "push_ms": push_ms,
                "events": [{"t_ms": t, "full": True, "reason": "config"} for t in events_ms]}
    return len(simulate_timeline(timeline)["pushes"])


@dataclass
class DebounceResult:
    settings: DebounceOptions
    events_ms: list[float]
    measured_pushes: int
    predicted_pushes: int

    def report(self) -> str:
        spread = f"{self.events_ms[-1] - self.events_ms[0]:.0f} ms" if self.events_ms else "-"
        return (f"{len(self.events_ms)} ServiceEntries over {spread} (PILOT_DEBOUNCE_AFTER={self.settings.debounce_after_ms:g} ms, "
                f"PILOT_DEBOUNCE_MAX={self.settings.debounce_max_ms:g} ms): istiod pushed {self.measured_pushes} times, "
                f"the simulator predicts {self.predicted_pushes}")


def _debounced_pushes(cluster: KindCluster, istiod: str) -> int:
    return int(observe.metric_value(observe.istiod_metrics(cluster, istiod), "pilot_debounce_time_count"))


def _settle(cluster: KindCluster, quiet_s: float, timeout_s: float = 60.0) -> int:
    """Wait until istiod's push count has not moved for ``quiet_s``; return it."""
    istiod = observe.istiod_pod(cluster)
    value, since, deadline = _debounced_pushes(cluster, istiod), time.monotonic(), time.monotonic() + timeout_s
    while not cluster.runner.dry_run and time.monotonic() - since < quiet_s:
        if time.monotonic() > deadline:
            raise observe.ObservationError(f"istiod kept pushing for {timeout_s:.0f} s; the debounce experiment needs a quiet cluster")
        time.sleep(0.25)
        now = _debounced_pushes(cluster, istiod)
        if now != value:
            value, since = now, time.monotonic()
    return value


def debounce_burst(cluster: KindCluster, namespace: str, count: int = 10, gap_ms: float = 0.0, quiet_s: float | None = None,
                   settle_timeout_s: float = 60.0) -> DebounceResult:
    """Apply ``count`` ServiceEntries (all in one ``kubectl apply`` when ``gap_ms`` is 0, else one
    every ``gap_ms``), count istiod's debounced pushes, and ask the simulator the same question.
    istiod counts as settled once its push count has not moved for ``quiet_s`` (default: 2 s, or
    three quiet periods if longer), waiting at most ``settle_timeout_s``."""
    settings = observe.istiod_debounce(cluster)
    quiet_s = max(2.0, 3 * settings.debounce_after_ms / 1000) if quiet_s is None else quiet_s
    entries = service_entries(count, namespace, labels=EXPERIMENT_LABEL)
    before = _settle(cluster, quiet_s, settle_timeout_s)
    start = time.monotonic()
    if gap_ms == 0:
        cluster.apply("apply ServiceEntries", entries)
        window = (time.monotonic() - start) * 1000
        events = [window * i / max(count - 1, 1) for i in range(count)]
    else:
        events: list[float] = []
        for index, entry in enumerate(entries):
            if not cluster.runner.dry_run:
                time.sleep(max(0.0, start + index * gap_ms / 1000 - time.monotonic()))
            events.append((time.monotonic() - start) * 1000)
            cluster.apply("apply ServiceEntries", [entry])
    measured = _settle(cluster, quiet_s, settle_timeout_s) - before
    cluster.kubectl("remove ServiceEntries", "-n", namespace, "delete", "serviceentries", "-l", ",".join(f"{k}={v}" for k, v in EXPERIMENT_LABEL.items()), "--wait=true")
    return DebounceResult(settings, events, measured, predict_pushes(settings, events))

"""What makes the kind stage worth running: meshlab's predictions set against the cluster.

    sidecar_rules   a sidecar pod's real rules (istio-init's log, an ephemeral netadmin container in
                    the pod, and the kernel via the node) vs
                    ``meshlab intercept istio-iptables`` for the same istio-init arguments; identical for a
                    default sidecar pod, or the differences chain by chain
    ambient_rules   an ambient pod's real in-pod rules vs chapter 04's account (meshlab.deploy.inpod)
    mesh_request    curl -> httpbin in the sidecar namespace: the server's sidecar adds
                    X-Forwarded-Client-Cert naming the client's SPIFFE ID, so the request crossed
                    both sidecars over mutual TLS
    KindIstiod      the cluster's istiod as the debounce experiment (meshlab.xds.pushcount) needs it
    debounce_burst  N ServiceEntries applied ``gap_ms`` apart; istiod's debounced pushes counted in
                    its metrics vs the debounce simulator's prediction for istiod's own settings
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from meshlab.deploy.inpod import inpod_ruleset
from meshlab.intercept import build_rules
from meshlab.intercept.compare import Difference, compare
from meshlab.kind import observe
from meshlab.kind.cluster import KindCluster
from meshlab.kind.manifests import service_entries
from meshlab.xds.debounce import DebounceOptions
from meshlab.xds.pushcount import DEBOUNCED_PUSHES, EXPERIMENT_LABEL, EXPERIMENT_SELECTOR, DebounceResult, burst


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


@dataclass
class KindIstiod:
    """The cluster's istiod as the debounce experiment (meshlab.xds.pushcount) asks for it: settings
    from its Deployment, its metrics through the API server's pod proxy, kubectl apply."""

    cluster: KindCluster

    @property
    def waits(self) -> bool:
        return not self.cluster.runner.dry_run

    def debounce(self) -> DebounceOptions:
        return observe.istiod_debounce(self.cluster)

    def debounced_pushes(self) -> int:
        return int(observe.metric_value(observe.istiod_metrics(self.cluster), DEBOUNCED_PUSHES))

    def apply(self, manifests: list[dict]) -> None:
        self.cluster.apply("apply ServiceEntries", manifests)

    def delete_experiment(self, namespace: str) -> None:
        self.cluster.kubectl("remove ServiceEntries", "-n", namespace, "delete", "serviceentries", "-l", EXPERIMENT_SELECTOR, "--wait=true")


def debounce_burst(cluster: KindCluster, namespace: str, count: int = 10, gap_ms: float = 0.0, quiet_s: float | None = None,
                   settle_timeout_s: float = 60.0) -> DebounceResult:
    """``count`` ServiceEntries in ``namespace``, applied to the cluster's istiod as ``pushcount.burst`` does."""
    return burst(KindIstiod(cluster), service_entries(count, namespace, labels=EXPERIMENT_LABEL), gap_ms, quiet_s, settle_timeout_s)

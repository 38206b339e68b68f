"""Lab 09's checks: the solution passes; each usual mistake fails with the hint that names it; an
unanswered exercise says so. Where istioctl is built, the Sidecars Istio refuses are refused by
``istioctl analyze`` with the very message the check gives."""

from __future__ import annotations

import re

import pytest
import yaml
from lab_solutions import solution
from upstream_programs import program_path

from meshlab.check import CheckFailed, lab09
from meshlab.upstream.analyze import analyze

SIDECAR = solution("09-scoping-a-sidecar", "checkout_sidecar")
SHOP_HOSTS = "- ./cart.shop.svc.cluster.local\n    - ./catalog.shop.svc.cluster.local"
LEARNED = solution("09-scoping-a-sidecar", "learned_dependencies")
HOSTS = {f"*/{host}" for host in LEARNED} | {"istio-system/*", "mesh-operator/*"}


def answer(value):
    return lambda: value


@pytest.mark.parametrize("text", [
    SIDECAR,
    # any namespace: the hostname says which
    SIDECAR.replace("- ./cart.shop.svc.cluster.local", "- '*/cart.shop.svc.cluster.local'")
           .replace("- payments/payments.payments.svc.cluster.local", "- '*/payments.payments.svc.cluster.local'"),
    SIDECAR.replace("{app: checkout}", "{app: checkout, version: v1}"),
])
def test_right_sidecars_pass_and_the_report_says_what_the_proxy_is_sent(text):
    sent = lab09.check_sidecar(answer(text))
    assert sent.scope.hostnames == lab09.CALLS
    assert "outbound|9090||payments.payments.svc.cluster.local" in sent.scope.clusters()
    assert "config-db.shared.svc.cluster.local" not in sent.unscoped.hostnames, "exported to shared alone: not even the default scope has it"
    assert (len(sent.scope.clusters()), len(sent.unscoped.clusters())) == (10, 19)
    assert max(len(line) for line in str(sent).splitlines()) <= 100


@pytest.mark.parametrize(("text", "hint"), [
    (SIDECAR.replace(SHOP_HOSTS, "- ./*"), "too broad: 4 services checkout does not call are sent to its proxy (4 clusters more than it "
     "needs): `./*` pulled in cart-redis.shop, checkout.shop, frontend.shop, reviews.shop"),
    (SIDECAR.replace("payments/payments.payments.svc.cluster.local", "payments/*"), "`payments/*` pulled in fraud.payments, ledger.payments"),
    (SIDECAR.replace("- shared/*", "- '*/*'"), "too broad: 9 services checkout does not call"),
    (SIDECAR[:SIDECAR.index("  egress:")] + "  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n",
     "a Sidecar without egress listeners imports every namespace (*/*)"),
    (SIDECAR.replace("payments/payments.payments", "./payments.payments"),
     "`./payments.payments.svc.cluster.local` looks for it in namespace shop, and it lives in payments"),
    (SIDECAR.replace("    - shared/*\n", ""), "checkout calls auth.shared.svc.cluster.local, and your Sidecar leaves it out"),
    (SIDECAR.replace("- shared/*", "- shared/auth.shared.svc.cluster.local\n    - shared/feature-flags.shared.svc.cluster.local\n"
                                   "    - shared/notifications.shared.svc.cluster.local"),
     "tomorrow (shared/quota, shop/wishlist and payments/refunds added): checkout calls quota.shared.svc.cluster.local"),
    (SIDECAR.replace("    - istio-system/*\n", ""), "every proxy needs the mesh's own services: istio-system/*"),
    (SIDECAR.replace("  - hosts:", "  - port: {number: 8080, protocol: HTTP, name: http}\n    hosts:"),
     "`istio-system/*` would import it, but its listener has a port and keeps only services on that port"),
    (SIDECAR.replace("  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n", ""), "with the mesh's default, ALLOW_ANY, a call to a host"),
    (SIDECAR.replace("REGISTRY_ONLY", "ALLOW_ANY"), "set outboundTrafficPolicy mode REGISTRY_ONLY"),
    (SIDECAR.replace("  workloadSelector:\n    labels: {app: checkout}\n", ""), "applies to 5 other workloads too (shop/frontend-0"),
    (SIDECAR.replace("{app: checkout}", "{version: v1}"), "applies to 5 other workloads too"),
    (SIDECAR.replace("{app: checkout}", "{app: cart}"), "does not apply to checkout (labels app: checkout, version: v1)"),
    (SIDECAR.replace("{app: checkout}", "{app: checkout-v1}"), 'Error [IST0101] (Sidecar shop/checkout) Referenced selector not found: '
     '"app=checkout-v1". checkout\'s pod has labels app: checkout, version: v1'),
    (SIDECAR.replace("namespace: shop", "namespace: istio-system"), "is in the root namespace: without a selector it is the mesh's default"),
    (SIDECAR.replace(", namespace: shop", ""), "is in namespace default (metadata.namespace left out means default)"),
    (SIDECAR.replace("./cart.shop.svc.cluster.local", "./cart"), "Error [IST0106] (Sidecar shop/checkout) Schema validation error: short names"),
    (SIDECAR.replace("./cart.shop.svc.cluster.local", "cart.shop.svc.cluster.local"), "host must be of form namespace/dnsName"),
    (SIDECAR.replace("./cart", "*/cart"), "(in YAML a value starting with * is an alias: quote hosts such as '*/...')"),
    (SIDECAR.replace("REGISTRY_ONLY", "REGISTRY"), "spec.outboundTrafficPolicy.mode: 'REGISTRY' is not one of ALLOW_ANY, REGISTRY_ONLY"),
    (SIDECAR + "---\n" + SIDECAR.replace("name: checkout,", "name: other,"), "return exactly one Sidecar"),
    (yaml.safe_load(SIDECAR), "must return the Sidecar as YAML text, not dict"),
])
def test_a_usual_sidecar_mistake_gets_its_hint(text, hint):
    with pytest.raises(CheckFailed, match=re.escape(hint)):
        lab09.check_sidecar(answer(text))


def test_the_solution_learns_and_writes_what_slimes_learner_and_controller_do():
    lab09.check_learned_dependencies(answer(LEARNED))
    lab09.check_sidecar_hosts(answer(sorted(HOSTS)))
    assert lab09.written_sidecar().workload_selector == {"app": "reports"}


@pytest.mark.parametrize(("value", "hint"), [
    (LEARNED - {"tracker.analytics.svc.cluster.local"} | {"tracker"}, "line 1 ('tracker' from analytics/reports-0): a short name is a "
     "service of the caller's namespace"),
    (LEARNED | {"tracker.shop.svc.cluster.local"}, "does not learn 'tracker.shop.svc.cluster.local' for reports. line 1"),
    (LEARNED - {"catalog.shop.svc.cluster.local"} | {"catalog.shop:8080"}, "line 2 ('catalog.shop:8080' from analytics/reports-0): the port"),
    (LEARNED | {"reviews.shop.svc.cluster.local"}, "line 3 ('reviews' from shop/frontend-0): this line comes from frontend's pod"),
    (LEARNED | {"10.96.3.12"}, "an IP authority names no service"),
    (LEARNED - {"payments.payments.svc.cluster.local"} | {"payments.payments.svc"}, "`name.namespace.svc` of a known service gets .cluster.local"),
    (LEARNED - {"api.fx-rates.example"}, "learns api.fx-rates.example for reports, and your answer leaves it out. line 6"),
    (LEARNED | {"ledger.payments.svc.cluster.local"}, "no line of the log names it"),
    ("tracker.analytics.svc.cluster.local", "must return a set (or list) of strings"),
])
def test_a_usual_learning_mistake_gets_its_hint(value, hint):
    with pytest.raises(CheckFailed, match=re.escape(hint)):
        lab09.check_learned_dependencies(answer(value))


@pytest.mark.parametrize(("value", "hint"), [
    (HOSTS - {"mesh-operator/*"}, "mesh-operator/* is missing: Slime's Sidecar always imports the Istio namespace"),
    ({host.removeprefix("*/") for host in HOSTS}, "Slime writes each learned host as */<host>"),
    (HOSTS - {"*/catalog.shop.svc.cluster.local"} | {"shop/catalog.shop.svc.cluster.local"}, "Slime writes each learned host as */<host>"),
    (HOSTS | {"./*"}, "the only namespaces Slime's Sidecar imports whole are istio-system/* and mesh-operator/*"),
    (HOSTS | {"*/reviews.shop.svc.cluster.local"}, "line 3 ('reviews' from shop/frontend-0)"),
    (HOSTS - {"*/api.fx-rates.example"}, "*/api.fx-rates.example is missing: every learned dependency becomes a host"),
])
def test_a_usual_sidecar_hosts_mistake_gets_its_hint(value, hint):
    with pytest.raises(CheckFailed, match=re.escape(hint)):
        lab09.check_sidecar_hosts(answer(value))


@pytest.mark.parametrize(("check", "name"), [("check_sidecar", "checkout_sidecar"), ("check_learned_dependencies", "learned_dependencies"),
                                             ("check_sidecar_hosts", "sidecar_hosts")])
def test_an_unanswered_exercise_says_so(check, name):
    def unanswered():
        raise NotImplementedError()

    unanswered.__name__ = name
    with pytest.raises(CheckFailed, match=f"{name} is not answered yet"):
        getattr(lab09, check)(unanswered)


def test_where_istioctl_says_otherwise_the_check_says_so(monkeypatch):
    from meshlab.upstream import analyze as upstream_analyze, build

    monkeypatch.setattr(build, "find", lambda program: build.Installed(program.name, program.version, "/nonexistent/istioctl", "built"))
    monkeypatch.setattr(upstream_analyze, "analyze", lambda istioctl, text, all_namespaces=False: [])
    with pytest.raises(CheckFailed, match=re.escape("istioctl analyze says nothing; meshlab says Error [IST0106] (Sidecar shop/checkout) "
                                                    "Schema validation error: short names")):
        lab09.check_sidecar(answer(SIDECAR.replace("./cart.shop.svc.cluster.local", "./cart")))


@pytest.mark.upstream
@pytest.mark.parametrize("text", [SIDECAR.replace("./cart.shop.svc.cluster.local", "./cart"),
                                  SIDECAR.replace("./cart.shop.svc.cluster.local", "cart.shop.svc.cluster.local")])
def test_istioctl_refuses_the_refused_sidecars_with_the_checks_message(text):
    findings = [f for f in analyze(program_path("istioctl"), text, all_namespaces=True) if f.code == "IST0106"]
    assert findings, "istioctl accepts a Sidecar the check refuses"
    for finding in findings:
        with pytest.raises(CheckFailed, match=re.escape(f"{finding.level} [{finding.code}] ({finding.resource}) {finding.message}")):
            lab09.check_sidecar(answer(text))


@pytest.mark.upstream
def test_istioctl_finds_nothing_wrong_with_the_solution():
    assert [f for f in analyze(program_path("istioctl"), SIDECAR, all_namespaces=True) if f.code in lab09.CODES] == []

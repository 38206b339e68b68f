"""Lazy loading with Slime's semantics (slime-io/slime 043e38df, modules/lazyload): the learner reads the
global sidecar's access log, the fence controller writes Sidecars, the first call to a dependency pays
the detour and the next ones go direct."""

from __future__ import annotations

import pytest

from meshlab.scoping.lazyload import (ACTIVE, EXPIREWAIT, AccessLogEntry, DependencyLearner, Destinations, FenceController, LazyLoading,
                                      RecyclingStrategy, ServiceFence)
from meshlab.scoping.scope import Service, Workload
from meshlab.scoping.sidecar import EgressListener, validate

INBOUND = "inbound|80||"
SERVICES = [Service(f"{name}.{ns}.svc.cluster.local", ns) for ns, name in
            [("default", "productpage"), ("default", "reviews"), ("default", "details"), ("default", "ratings"), ("test", "echo"),
             ("istio-system", "istiod"), ("mesh-operator", "global-sidecar")]]
WORKLOADS = {"10.0.0.1": Workload("default", "productpage-0", {"app": "productpage"}, ("productpage.default.svc.cluster.local",)),
             "10.0.0.2": Workload("default", "reviews-0", {"app": "reviews"}, ("reviews.default.svc.cluster.local",)),
             "10.0.0.3": Workload("default", "details-0", {"app": "details"}, ("details.default.svc.cluster.local",)),
             "10.0.0.4": Workload("default", "ratings-0", {"app": "ratings"}, ("ratings.default.svc.cluster.local",))}


def learner(ttl_s=None) -> DependencyLearner:
    return DependencyLearner({"10.0.0.1": ["default/productpage"], "10.0.0.2": ["default/reviews"], "10.0.0.9": ["test/echo"]}, ttl_s)


@pytest.mark.parametrize(("authority", "fqdn"), [
    ("reviews", "reviews.default.svc.cluster.local"),  # a short name lives in the caller's namespace
    ("reviews:9080", "reviews.default.svc.cluster.local"),
    ("echo.test", "echo.test.svc.cluster.local"),
    ("echo.test.svc", "echo.test.svc.cluster.local"),
    ("api.example", "api.example"),  # not a known service: taken as it is
    ("echo.test.svc.cluster.local", "echo.test.svc.cluster.local"),
    ("10.0.0.7:80", None),  # an IP names no service
])
def test_the_learner_completes_an_authority_as_slime_does(authority, fqdn):
    assert learner().destination(authority, "default/productpage") == fqdn


def test_only_the_global_sidecars_inbound_lines_teach_and_what_is_learned_stays():
    learn = learner()
    learn.read([AccessLogEntry(1, "10.0.0.1", "reviews:9080", INBOUND), AccessLogEntry(2, "10.0.0.1", "reviews", INBOUND),
                AccessLogEntry(3, "10.0.0.1", "details", "outbound|80||details.default.svc.cluster.local"),
                AccessLogEntry(4, "10.0.0.77", "details", INBOUND)])
    assert learn.metric(5) == {"default/productpage": {'{destination_service="reviews.default.svc.cluster.local"}': "2"}}
    learn.read([AccessLogEntry(9, "10.0.0.1", "reviews", INBOUND)])
    assert learn.metric(10_000)["default/productpage"] == {'{destination_service="reviews.default.svc.cluster.local"}': "2"}, \
        "Slime's convertor adds keys and never updates or drops them"


def test_with_a_ttl_a_dependency_is_forgotten_unless_the_proxys_own_log_shows_it():
    learn = learner(ttl_s=60)
    learn.read([AccessLogEntry(0, "10.0.0.1", "reviews", INBOUND), AccessLogEntry(0, "10.0.0.1", "details", INBOUND)])
    learn.read([AccessLogEntry(50, "10.0.0.1", "reviews.default.svc.cluster.local", "outbound|80||reviews.default.svc.cluster.local")])
    assert set(learn.metric(100)["default/productpage"]) == {'{destination_service="reviews.default.svc.cluster.local"}'}
    with pytest.raises(ValueError, match="ttl_s must be > 0"):
        learner(ttl_s=0)


def test_a_fence_for_a_service_writes_slimes_sidecar():
    controller = FenceController(SERVICES)
    fence = ServiceFence("lazyload", "foo")
    controller.update_domains(fence, 0)
    written = controller.sidecar(fence)
    # slime's controllers/testdata/autofence.base.expect.sidecar.yaml: the mesh's own namespaces, selecting app=foo
    assert (written.name, written.namespace, written.workload_selector) == ("foo", "lazyload", {"app": "foo"})
    assert written.egress == (EgressListener(("istio-system/*", "mesh-operator/*")),) and validate(written) == []


def test_static_learned_and_label_selected_dependencies_become_hosts():
    controller = FenceController(SERVICES, labels={"default/details": {"app": "details"}, "default/ratings": {"app": "ratings", "group": "default"}})
    fence = ServiceFence("default", "ratings", host={"reviews.default.svc.cluster.local": RecyclingStrategy("stable"), "test/*": RecyclingStrategy()},
                         label_selector=[{"app": "details"}])
    sidecar = controller.refresh(fence, {'{destination_service="productpage.default.svc.cluster.local"}': "1"}, 0)
    # the lazyload tutorial's examples: static host, namespace and label dependencies, sorted as Slime sorts them
    assert sidecar.egress[0].hosts == ("*/details.default.svc.cluster.local", "*/productpage.default.svc.cluster.local",
                                      "*/reviews.default.svc.cluster.local", "istio-system/*", "mesh-operator/*", "test/*")
    assert controller.refresh(fence, dict(fence.metric_status), 5) is None, "an unchanged metric changes nothing"


def test_a_vanished_dependency_waits_one_update_before_it_leaves_the_sidecar():
    controller = FenceController(SERVICES)
    fence = ServiceFence("default", "productpage")
    reviews, details = '{destination_service="reviews.default.svc.cluster.local"}', '{destination_service="details.default.svc.cluster.local"}'
    controller.refresh(fence, {reviews: "1", details: "1"}, 0)
    sidecar = controller.refresh(fence, {details: "1"}, 10)
    assert fence.domains["reviews.default.svc.cluster.local"] == Destinations(["reviews.default.svc.cluster.local"], EXPIREWAIT)
    assert "*/reviews.default.svc.cluster.local" in sidecar.egress[0].hosts
    sidecar = controller.refresh(fence, {}, 20)
    assert "*/reviews.default.svc.cluster.local" not in sidecar.egress[0].hosts
    assert fence.domains["details.default.svc.cluster.local"].status == EXPIREWAIT


def test_a_static_host_with_a_deadline_expires():
    controller = FenceController(SERVICES)
    fence = ServiceFence("default", "productpage", host={"reviews.default.svc.cluster.local": RecyclingStrategy("deadline", expire_s=100)})
    controller.update_domains(fence, 50)
    assert fence.domains["reviews.default.svc.cluster.local"].status == ACTIVE
    controller.update_domains(fence, 150)
    assert "*/reviews.default.svc.cluster.local" not in controller.sidecar(fence).egress[0].hosts
    with pytest.raises(ValueError, match="stable, deadline or auto"):
        RecyclingStrategy("forever")


def test_the_first_call_pays_the_detour_and_the_next_go_direct():
    mesh = LazyLoading(SERVICES, WORKLOADS)
    assert mesh.push_context.sidecar_scope(WORKLOADS["10.0.0.1"]).hostnames == {"istiod.istio-system.svc.cluster.local",
                                                                                   "global-sidecar.mesh-operator.svc.cluster.local"}
    first = mesh.call(1.0, "default/productpage-0", "reviews.default.svc.cluster.local")
    again = mesh.call(5.0, "default/productpage-0", "reviews.default.svc.cluster.local")  # before the controller's next refresh
    assert (first.via, again.via) == ("global-sidecar", "global-sidecar")
    assert mesh.call(10.05, "default/productpage-0", "reviews.default.svc.cluster.local").via == "global-sidecar", "written at 10 s, pushed 100 ms later"
    assert mesh.call(10.2, "default/productpage-0", "reviews.default.svc.cluster.local").via == "direct"
    assert mesh.call(10.3, "default/reviews-0", "ratings.default.svc.cluster.local").via == "global-sidecar", "each workload learns its own"
    written = [(t, s.name) for t, s in mesh.written if t > 0]
    assert written == [(10.0, "productpage")]


def test_calls_name_a_known_workload_and_time_runs_forward():
    mesh = LazyLoading(SERVICES, WORKLOADS)
    with pytest.raises(KeyError, match="no workload 'default/nobody'"):
        mesh.call(1, "default/nobody", "reviews.default.svc.cluster.local")
    mesh.advance(30)
    with pytest.raises(ValueError, match="time runs forward"):
        mesh.advance(20)

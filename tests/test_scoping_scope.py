"""What a proxy is sent given the Sidecars in force: Istio 1.30.3's rules (pilot/pkg/model/sidecar.go,
push_context.go, config.go; pilot/pkg/xds/proxy_dependencies.go), case by case."""

from __future__ import annotations

import pytest

from meshlab.scoping.scope import PushContext, RegistryError, Service, ServicePort, Workload, load_registry
from meshlab.scoping.sidecar import parse_resources

REVIEWS = Service("reviews.shop.svc.cluster.local", "shop", (ServicePort(9080),), endpoints=3)
RATINGS = Service("ratings.shop.svc.cluster.local", "shop", (ServicePort(9080), ServicePort(9090, "GRPC", "grpc")))
CART = Service("cart.store.svc.cluster.local", "store")
SECRET = Service("vault.store.svc.cluster.local", "store", export_to=(".",))
HIDDEN = Service("hidden.store.svc.cluster.local", "store", export_to=("~",))
FOR_SHOP = Service("ledger.bank.svc.cluster.local", "bank", export_to=("shop",))
ISTIOD = Service("istiod.istio-system.svc.cluster.local", "istio-system", (ServicePort(15012, "TCP", "tls-xds"),))
MESH = [REVIEWS, RATINGS, CART, SECRET, HIDDEN, FOR_SHOP, ISTIOD]
PRODUCTPAGE = Workload("shop", "productpage-v1", {"app": "productpage", "version": "v1"})


def sidecars(text: str):
    return parse_resources(text)[0]


def sidecar(name: str, namespace: str, spec: str, created: str = "") -> str:
    stamp = f", creationTimestamp: '{created}'" if created else ""
    return f"---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: {name}, namespace: {namespace}{stamp}}}\nspec: {spec}\n"


def hosts(context: PushContext, workload: Workload = PRODUCTPAGE) -> set[str]:
    return {s.hostname.split(".")[0] for s in context.sidecar_scope(workload).services}


def test_without_a_sidecar_a_proxy_gets_every_service_exported_to_its_namespace():
    context = PushContext(MESH)
    assert hosts(context) == {"reviews", "ratings", "cart", "ledger", "istiod"}, "not vault (private to store), not hidden (~)"
    assert hosts(context, Workload("store", "cart-1")) == {"reviews", "ratings", "cart", "vault", "istiod"}
    assert context.sidecar_scope(PRODUCTPAGE).name == "default-sidecar" and context.sidecar_for(PRODUCTPAGE) is None


def test_a_namespace_sidecar_imports_its_own_namespace_and_what_it_names():
    context = PushContext(MESH, sidecars(sidecar("default", "shop", "{egress: [{hosts: ['./*', 'istio-system/*']}]}")))
    assert hosts(context) == {"reviews", "ratings", "istiod"}
    assert hosts(context, Workload("store", "cart-1")) == {"reviews", "ratings", "cart", "vault", "istiod"}, "other namespaces are not concerned"


def test_a_selecting_sidecar_beats_the_namespace_one_and_the_oldest_of_several_wins():
    text = (sidecar("default", "shop", "{egress: [{hosts: ['./*']}]}", "2026-01-01T00:00:00Z")
            + sidecar("by-version", "shop", "{workloadSelector: {labels: {version: v1}}, egress: [{hosts: ['store/*']}]}", "2026-01-03T00:00:00Z")
            + sidecar("by-app", "shop", "{workloadSelector: {labels: {app: productpage}}, egress: [{hosts: ['istio-system/*']}]}", "2026-01-02T00:00:00Z"))
    context = PushContext(MESH, sidecars(text))
    assert context.sidecar_for(PRODUCTPAGE).name == "by-app" and hosts(context) == {"istiod"}
    assert context.sidecar_for(Workload("shop", "other", {"version": "v1"})).name == "by-version"
    assert context.sidecar_for(Workload("shop", "plain", {"app": "other"})).name == "default"


def test_sidecars_created_in_the_same_second_are_ordered_by_name():
    text = (sidecar("zeta", "shop", "{workloadSelector: {labels: {app: productpage}}, egress: [{hosts: ['./*']}]}", "2026-01-01T00:00:00Z")
            + sidecar("alpha", "shop", "{workloadSelector: {labels: {version: v1}}, egress: [{hosts: ['istio-system/*']}]}", "2026-01-01T00:00:00Z"))
    assert PushContext(MESH, sidecars(text)).sidecar_for(PRODUCTPAGE).name == "alpha"


def test_a_selector_without_labels_selects_every_workload_before_the_namespace_sidecar():
    text = sidecar("default", "shop", "{egress: [{hosts: ['./*']}]}") + sidecar("everyone", "shop", "{workloadSelector: {}, egress: [{hosts: ['~/*']}]}")
    context = PushContext(MESH, sidecars(text))
    assert context.sidecar_for(PRODUCTPAGE).name == "everyone" and hosts(context) == set()


def test_the_root_namespace_sidecar_applies_where_there_is_none_and_dot_means_the_workloads_namespace():
    text = (sidecar("default", "istio-system", "{egress: [{hosts: ['./*', 'istio-system/*']}], outboundTrafficPolicy: {mode: REGISTRY_ONLY}}")
            + sidecar("only-istiod", "istio-system", "{workloadSelector: {labels: {app: productpage}}, egress: [{hosts: ['~/*']}]}"))
    context = PushContext(MESH, sidecars(text))
    scope = context.sidecar_scope(PRODUCTPAGE)
    assert (scope.name, scope.namespace, scope.outbound_traffic_policy) == ("default", "shop", "REGISTRY_ONLY")
    assert hosts(context) == {"reviews", "ratings", "istiod"}, "a root-namespace Sidecar with a selector applies only in the root namespace"
    assert hosts(context, Workload("store", "cart-1")) == {"cart", "vault", "istiod"}
    assert context.sidecar_scope(Workload("bank", "b")).outbound_traffic_policy == "REGISTRY_ONLY"
    assert PushContext(MESH).sidecar_scope(PRODUCTPAGE).outbound_traffic_policy == "ALLOW_ANY", "the mesh default"


def test_an_egress_listener_with_a_port_keeps_the_services_with_that_port_trimmed_to_it():
    context = PushContext(MESH, sidecars(sidecar("s", "shop", "{egress: [{port: {number: 9090, protocol: GRPC}, hosts: ['./*']}]}")))
    [ratings] = context.sidecar_scope(PRODUCTPAGE).services
    assert ratings.hostname == RATINGS.hostname and ratings.ports == (ServicePort(9090, "GRPC", "grpc"),)


def test_two_listeners_importing_one_service_on_different_ports_merge_its_ports():
    spec = "{egress: [{port: {number: 9090, protocol: GRPC}, hosts: ['./*']}, {hosts: ['./ratings.shop.svc.cluster.local']}]}"
    [ratings] = PushContext(MESH, sidecars(sidecar("s", "shop", spec))).sidecar_scope(PRODUCTPAGE).services
    assert [p.number for p in ratings.ports] == [9090, 9080]


def test_hosts_by_name_wildcard_and_tilde():
    def imported(host_list: str) -> set[str]:
        return hosts(PushContext(MESH, sidecars(sidecar("s", "shop", f"{{egress: [{{hosts: {host_list}}}]}}"))))

    assert imported("['*/cart.store.svc.cluster.local']") == {"cart"}
    assert imported("['store/reviews.shop.svc.cluster.local']") == set(), "the namespace must be the service's"
    assert imported("['*/*.store.svc.cluster.local']") == {"cart"}, "vault is private to store"
    assert imported("['bank/*']") == {"ledger"}, "ledger is exported to shop by name"
    assert imported("['~/*']") == set()
    assert imported("['*/*']") == {"reviews", "ratings", "cart", "ledger", "istiod"}


def test_one_hostname_in_two_namespaces_comes_from_the_config_namespace_else_from_kubernetes():
    mirror = Service("cart.store.svc.cluster.local", "shop", registry="External")
    other = Service("cart.store.svc.cluster.local", "zoo", registry="External")
    spec = "{egress: [{hosts: ['*/cart.store.svc.cluster.local']}]}"
    in_shop = PushContext([other, CART, mirror], sidecars(sidecar("s", "shop", spec))).sidecar_scope(PRODUCTPAGE).services
    assert [s.namespace for s in in_shop] == ["shop"], "the config namespace wins"
    elsewhere = PushContext([other, CART, mirror], sidecars(sidecar("s", "bank", spec))).sidecar_scope(Workload("bank", "b")).services
    assert [s.namespace for s in elsewhere] == ["store"], "else a Kubernetes service beats a ServiceEntry"


def test_what_the_proxy_is_sent_in_envoys_names():
    scope = PushContext(MESH, sidecars(sidecar("s", "shop", "{egress: [{hosts: ['./*', 'istio-system/*']}]}"))).sidecar_scope(PRODUCTPAGE)
    assert scope.clusters() == {"outbound|9080||reviews.shop.svc.cluster.local": 3, "outbound|9080||ratings.shop.svc.cluster.local": 1,
                                "outbound|9090||ratings.shop.svc.cluster.local": 1, "outbound|15012||istiod.istio-system.svc.cluster.local": 1}
    assert scope.routes() == {"9080": ["reviews.shop.svc.cluster.local:9080", "ratings.shop.svc.cluster.local:9080"],
                              "9090": ["ratings.shop.svc.cluster.local:9090"]}
    assert scope.listeners() == ["0.0.0.0_9080", "0.0.0.0_9090", "istiod.istio-system.svc.cluster.local_15012"]
    config = scope.proxy_config()
    assert (config.listeners, config.clusters, config.endpoints) == (3, 4, 6)


def test_a_change_reaches_the_proxies_whose_scope_depends_on_it():
    scope = PushContext(MESH, sidecars(sidecar("s", "shop", "{egress: [{hosts: ['./*']}]}"))).sidecar_scope(PRODUCTPAGE)
    assert scope.depends_on(REVIEWS.key) and scope.depends_on("Sidecar/shop/s")
    assert not scope.depends_on(CART.key) and not scope.depends_on("Sidecar/shop/other")
    assert scope.depends_on("Gateway/shop/gw"), "a kind the scope does not track concerns everyone"


def test_many_workload_sidecars_are_found_through_the_label_index():
    services = [Service(f"s{i}.ns.svc.cluster.local", "ns") for i in range(300)]
    text = "".join(sidecar(f"s{i}", "ns", f"{{workloadSelector: {{labels: {{app: s{i}}}}}, egress: [{{hosts: ['*/s{(i + 1) % 300}.ns.svc.cluster.local']}}]}}")
                   for i in range(300))
    context = PushContext(services, sidecars(text))
    for i in (0, 150, 299):
        assert hosts(context, Workload("ns", f"s{i}-0", {"app": f"s{i}", "team": "x"})) == {f"s{(i + 1) % 300}"}


def test_a_services_file_is_read_with_defaults_and_bad_entries_are_named():
    services, workloads = load_registry({"services": [{"hostname": "a.shop.svc.cluster.local", "namespace": "shop"},
                                                      {"hostname": "b.shop.svc.cluster.local", "namespace": "shop", "ports": [{"number": 53, "protocol": "TCP"}],
                                                       "endpoints": 2, "exportTo": ["."]}],
                                         "workloads": [{"namespace": "shop", "name": "a-1", "labels": {"app": "a"}}]})
    assert services == [Service("a.shop.svc.cluster.local", "shop", (ServicePort(80),)),
                        Service("b.shop.svc.cluster.local", "shop", (ServicePort(53, "TCP", ""),), 2, (".",))]
    assert workloads == [Workload("shop", "a-1", {"app": "a"})]
    for data, message in [([], "a services file is"), ({"services": [{"namespace": "shop"}]}, "services[0]: missing field 'hostname'"),
                          ({"services": [{"hostname": "a", "namespace": "s", "ports": [{"number": 0}]}]}, "services[0].ports[0].number: 0 is not a port"),
                          ({"services": [], "workloads": [{"namespace": "s", "name": "w", "labels": {"a": 1}}]}, "workloads[0].labels: labels are strings")]:
        with pytest.raises(RegistryError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_registry(data)

"""WasmPlugin semantics as Istio 1.30 has them: validation, which workloads and traffic, filter-chain
order, the ECDS resource istiod sends (sources: pilot/pkg/model/extensions.go, push_context.go,
pilot/pkg/networking/core/listener_builder.go, pkg/config/validation/validation.go)."""

from __future__ import annotations

import json

import pytest
from envoy.extensions.filters.http.wasm.v3 import wasm_pb2 as http_wasm_pb2
from envoy.extensions.wasm.v3 import wasm_pb2
from google.protobuf import wrappers_pb2

from meshlab.wasm.plugin import ECDS_PREFIX, SYNTHETIC_MARKER, WasmPlugin, WasmPluginError, applies_to, ecds_name, extension_config, pull_policy, wasm_phases
from meshlab.xds.inbound import http_filters


def plugin_yaml(name: str = "p", namespace: str = "shop", **spec: object) -> str:
    spec.setdefault("url", "oci://ghcr.io/acme/filter:v1")
    return json.dumps({"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
                       "metadata": {"name": name, "namespace": namespace}, "spec": spec})


def make(name: str = "p", namespace: str = "shop", **spec: object) -> WasmPlugin:
    return WasmPlugin.parse(plugin_yaml(name, namespace, **spec))


def test_a_minimal_plugin_gets_istios_defaults():
    plugin = make()
    assert (plugin.phase, plugin.fail_strategy, plugin.type, plugin.priority) == ("UNSPECIFIED_PHASE", "FAIL_CLOSE", "UNSPECIFIED_PLUGIN_TYPE", None)
    assert plugin.filter_chain_type == "HTTP"
    assert plugin.failure.fetch_fallback == "deny" and plugin.failure.on_vm_failure == "fail_closed"


@pytest.mark.parametrize("spec, field", [
    ({"url": ""}, "spec.url"),
    ({"url": "ftp://host/m.wasm"}, "spec.url"),
    ({"sha256": "ABC"}, "spec.sha256"),
    ({"sha256": "A" * 64}, "spec.sha256"),
    ({"phase": "LATE"}, "spec.phase"),
    ({"failStrategy": "FAIL_SOMETIMES"}, "spec.failStrategy"),
    ({"imagePullPolicy": "Never"}, "spec.imagePullPolicy"),
    ({"type": "UDP"}, "spec.type"),
    ({"match": [{"mode": "INBOUND"}]}, "spec.match[0].mode"),
    ({"match": [{"ports": [{"number": 70000}]}]}, "spec.match[0].ports[0].number"),
    ({"pluginName": "x" * 257}, "spec.pluginName"),
    ({"vmConfig": {"env": [{"name": "A"}, {"name": "A"}]}}, "spec.vmConfig.env[1].name"),
    ({"vmConfig": {"env": [{"name": "A", "valueFrom": "HOST", "value": "x"}]}}, "spec.vmConfig.env[0].value"),
    ({"selector": {"matchLabels": {"app": "*"}}}, "spec.selector.matchLabels"),
    ({"selector": {"matchLabels": {"app": "a"}}, "targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "g"}]}, "only one of"),
    ({"targetRefs": [{"kind": "Deployment", "group": "apps", "name": "d"}]}, "spec.targetRefs[0]"),
    ({"urll": "oci://x"}, "spec.urll: unknown field"),
])
def test_a_bad_plugin_is_refused_naming_the_field(spec, field):
    with pytest.raises(WasmPluginError) as caught:
        make(**spec)
    assert field in str(caught.value) and "WasmPlugin shop/p" in str(caught.value)


@pytest.mark.parametrize("url, scheme_ok", [
    ("oci://ghcr.io/a/b:v1", True), ("https://example.com/m.wasm", True), ("file:///opt/m.wasm", True),
    ("ghcr.io/a/b:v1", True), ("ftp://h/m.wasm", False), ("localhost:5000/a:v1", False),
])
def test_urls_are_judged_as_istios_strict_parse_judges_them(url, scheme_ok):
    if scheme_ok:
        assert make(url=url).url == url
    else:
        with pytest.raises(WasmPluginError, match="scheme"):
            make(url=url)


def test_another_kind_is_refused_by_name():
    with pytest.raises(WasmPluginError, match="kind 'Telemetry'"):
        WasmPlugin.parse("apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\nspec: {}\n")


def test_load_all_reads_every_document():
    text = plugin_yaml("a") + "\n---\n" + plugin_yaml("b")
    assert [p.name for p in WasmPlugin.load_all(text)] == ["a", "b"]


def test_a_plugin_applies_in_its_namespace_or_everywhere_from_the_root_namespace():
    local, root = make("local"), make("root", "istio-system")
    assert applies_to(local, "shop", {}, "inbound", 80)
    assert not applies_to(local, "bank", {}, "inbound", 80)
    assert applies_to(root, "bank", {}, "inbound", 80)


def test_the_selector_needs_every_label():
    plugin = make(selector={"matchLabels": {"app": "cart", "version": "v1"}})
    assert applies_to(plugin, "shop", {"app": "cart", "version": "v1", "x": "y"}, "outbound", 80)
    assert not applies_to(plugin, "shop", {"app": "cart"}, "outbound", 80)


def test_a_targetref_plugin_never_binds_to_a_sidecar():
    plugin = make(targetRefs=[{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}])
    assert not applies_to(plugin, "shop", {}, "outbound", 80)


@pytest.mark.parametrize("mode, inbound, outbound", [
    ("CLIENT", False, True), ("SERVER", True, False), ("CLIENT_AND_SERVER", True, True), ("UNDEFINED", True, True),
])
def test_mode_client_is_outbound_and_server_is_inbound(mode, inbound, outbound):
    plugin = make(match=[{"mode": mode}])
    assert (applies_to(plugin, "shop", {}, "inbound", 80), applies_to(plugin, "shop", {}, "outbound", 80)) == (inbound, outbound)


def test_match_entries_are_ored_and_each_needs_mode_and_port():
    plugin = make(match=[{"mode": "SERVER", "ports": [{"number": 8080}]}, {"mode": "CLIENT", "ports": [{"number": 9090}]}])
    assert applies_to(plugin, "shop", {}, "inbound", 8080)
    assert not applies_to(plugin, "shop", {}, "inbound", 9090)
    assert applies_to(plugin, "shop", {}, "outbound", 9090)


def _chain(plugins: list[WasmPlugin]) -> list[str]:
    """The inbound HTTP filter names of a sidecar in shop (no labels) on port 80."""
    return [f.name for f in http_filters(wasm_phases(plugins, "shop", {}, "inbound", 80))]


def test_phases_land_before_authz_and_the_stats_filters():
    plugins = [make("n", phase="AUTHN"), make("z", phase="AUTHZ"), make("s", phase="STATS"), make("u")]
    names = _chain(plugins)
    n, z, s, u = (names.index(ecds_name(p)) for p in plugins)
    assert names[0] == "istio.metadata_exchange" and names[-1] == "envoy.filters.http.router"
    assert 0 < n < z < s < u < names.index("envoy.filters.http.grpc_stats") < names.index("istio.stats")


def test_network_plugins_stay_out_of_the_http_chain():
    assert wasm_phases([make(type="NETWORK")], "shop", {}, "inbound", 80).by_phase == {}


def _order(plugins: list[WasmPlugin]) -> list[str]:
    phases = wasm_phases(plugins, "shop", {}, "inbound", 80).by_phase
    return [name.removeprefix(f"{ECDS_PREFIX}shop.").removeprefix(f"{ECDS_PREFIX}istio-system.").removesuffix(SYNTHETIC_MARKER)
            for name in phases["UNSPECIFIED_PHASE"]]


def test_within_a_phase_higher_priority_first_and_unset_below_zero():
    plugins = [make("low", priority=-5), make("unset"), make("high", priority=10), make("zero", priority=0)]
    assert _order(plugins) == ["high", "zero", "low", "unset"]


def test_ties_go_to_the_proxys_namespace_then_creation_time_then_name():
    def stamped(name: str, namespace: str, created: str) -> WasmPlugin:
        document = json.loads(plugin_yaml(name, namespace))
        document["metadata"]["creationTimestamp"] = created
        return WasmPlugin.parse(json.dumps(document))
    plugins = [stamped("a-root", "istio-system", "2026-01-01T00:00:00Z"), stamped("b", "shop", "2026-01-02T00:00:00Z"),
               stamped("c", "shop", "2026-01-01T00:00:00Z"), stamped("a", "shop", "2026-01-02T00:00:00Z")]
    assert _order(plugins) == ["c", "a", "b", "a-root"]


def test_pull_policy_defaults_to_always_only_for_a_latest_oci_tag():
    assert pull_policy(make(url="oci://ghcr.io/a/b:latest")) == "Always"
    assert pull_policy(make(url="ghcr.io/a/b:latest")) == "Always"
    assert pull_policy(make(url="oci://ghcr.io/a/b:v1")) == "IfNotPresent"
    assert pull_policy(make(url="https://h/b:latest")) == "IfNotPresent"
    assert pull_policy(make(url="oci://ghcr.io/a/b:latest", imagePullPolicy="IfNotPresent")) == "IfNotPresent"


def test_istiod_sends_a_remote_source_with_sha_timeout_and_failure_policy():
    plugin = make(url="ghcr.io/acme/filter:v1", sha256="a" * 64, failStrategy="FAIL_OPEN", pluginName="root",
                  imagePullPolicy="Always", pluginConfig={"header": "x-acme"},
                  vmConfig={"env": [{"name": "MODE", "value": "strict"}, {"name": "POD_NAME", "valueFrom": "HOST"}]})
    resource = extension_config(plugin)
    assert resource.name == "extensions.istio.io/trafficextension/shop.p~istio-translated-wasmplugin"
    wasm = http_wasm_pb2.Wasm()
    assert resource.typed_config.Unpack(wasm)
    remote = wasm.config.vm_config.code.remote
    assert (remote.http_uri.uri, remote.sha256, remote.http_uri.timeout.seconds) == ("oci://ghcr.io/acme/filter:v1", "a" * 64, 30)
    assert wasm.config.failure_policy == wasm_pb2.FAIL_OPEN and wasm.config.root_id == "root"
    env = wasm.config.vm_config.environment_variables
    assert dict(env.key_values) == {"ISTIO_META_WASM_IMAGE_PULL_POLICY": "Always", "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION": "",
                                    "MODE": "strict"}
    assert list(env.host_env_keys) == ["POD_NAME"]
    configuration = wrappers_pb2.StringValue()
    assert wasm.config.configuration.Unpack(configuration) and json.loads(configuration.value) == {"header": "x-acme"}


def test_a_file_url_stays_local():
    wasm = http_wasm_pb2.Wasm()
    extension_config(make(url="file:///opt/filters/m.wasm")).typed_config.Unpack(wasm)
    assert wasm.config.vm_config.code.local.filename == "/opt/filters/m.wasm"


@pytest.mark.parametrize("strategy, fallback, on_trap", [
    ("FAIL_CLOSE", "deny", "fail_closed"), ("FAIL_OPEN", "allow", "fail_open"), ("FAIL_RELOAD", "deny", "reload"),
])
def test_fail_strategy_says_what_the_agent_and_envoy_do(strategy, fallback, on_trap):
    failure = make(failStrategy=strategy).failure
    assert (failure.fetch_fallback, failure.on_vm_failure) == (fallback, on_trap)

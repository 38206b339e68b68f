"""Istio's WasmPlugin (extensions.istio.io/v1alpha1): what a resource says, whether Istio accepts it,
which workloads and which traffic it applies to, where it lands in the HTTP filter chain, and the ECDS
resource istiod sends for it.

A WasmPlugin never reaches Envoy as such. istiod (Istio 1.30, commit 9739e10eb9d7) translates it into
a TrafficExtension named ``<name>~istio-translated-wasmplugin`` (pilot/pkg/config/kube/extensions/
translate.go), puts an ECDS placeholder in each matching HTTP filter chain, and sends the Wasm filter
itself as an ECDS resource whose code is a *remote* source; pilot-agent fetches the module and
rewrites that source to a local file before Envoy sees it (meshlab.wasm.fetch).

    WasmPluginError     a WasmPlugin Istio would refuse: the field and what is accepted
    PortSelector        one port of a match
    TrafficSelector     match: a direction (mode) and ports
    EnvVar              vmConfig.env: a value given inline or taken from the proxy's environment
    TargetRef           targetRef(s): a Gateway, GatewayClass, Service or ServiceEntry
    FailurePolicy       what Envoy does when the module's VM fails (from failStrategy)
    WasmPlugin          one WasmPlugin, validated as istioctl validate does; parse / load_all
    applies_to          does a plugin apply to a workload's traffic in one direction on one port
    pull_policy         imagePullPolicy as pilot-agent resolves it (a ``latest`` OCI tag means Always)
    wasm_phases         the plugins a sidecar's HTTP filter chain references, by phase, in priority order
    ecds_name           the ECDS resource name istiod gives a plugin
    extension_config    the ECDS resource istiod sends (envoy.config.core.v3.TypedExtensionConfig)
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from envoy.config.core.v3 import base_pb2, extension_pb2, http_uri_pb2
from envoy.extensions.filters.http.wasm.v3 import wasm_pb2 as http_wasm_pb2
from envoy.extensions.wasm.v3 import wasm_pb2
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2

from meshlab.xds.inbound import WasmPhases

#: The enums of istio.io/api v1.30.8 extensions/v1alpha1/wasm.proto and type/v1beta1/selector.proto;
#: istioctl parses the spec as that proto, so any other word is refused.
PHASES = ("UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS")
FAIL_STRATEGIES = ("FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD")
PULL_POLICIES = ("UNSPECIFIED_POLICY", "IfNotPresent", "Always")
PLUGIN_TYPES = ("UNSPECIFIED_PLUGIN_TYPE", "HTTP", "NETWORK")
WORKLOAD_MODES = ("UNDEFINED", "CLIENT", "SERVER", "CLIENT_AND_SERVER")
ENV_VALUE_SOURCES = ("INLINE", "HOST")
#: URL schemes Istio accepts (pkg/config/validation/validation.go validateWasmPluginURL); none means oci.
URL_SCHEMES = ("", "file", "http", "https", "oci")
#: targetRef kinds Istio accepts, by canonical group ("" is "core") (validation.go allowedTargetRefs).
TARGET_KINDS = (("core", "Service"), ("networking.istio.io", "ServiceEntry"),
                ("gateway.networking.k8s.io", "Gateway"), ("gateway.networking.k8s.io", "GatewayClass"))
#: Mesh config's default rootNamespace: a plugin there applies to every namespace.
ROOT_NAMESPACE = "istio-system"
#: What istiod appends to a WasmPlugin's name when it becomes a TrafficExtension (translate.go).
SYNTHETIC_MARKER = "~istio-translated-wasmplugin"
#: The ECDS name prefix of a TrafficExtension (pilot/pkg/model/extensions.go).
ECDS_PREFIX = "extensions.istio.io/trafficextension/"
#: Env vars istiod adds to the VM config for pilot-agent (pkg/model/wasm.go); the agent strips them.
WASM_SECRET_ENV = "ISTIO_META_WASM_IMAGE_PULL_SECRET"
WASM_POLICY_ENV = "ISTIO_META_WASM_IMAGE_PULL_POLICY"
WASM_RESOURCE_VERSION_ENV = "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION"
#: The remote fetch timeout istiod writes into every http_uri (extensions.go buildDataSource).
REMOTE_TIMEOUT_SECONDS = 30
#: Envoy's Wasm runtime istiod names (extensions.go defaultRuntime).
RUNTIME = "envoy.wasm.runtime.v8"
WASM_HTTP_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"

_SPEC_FIELDS = {"selector", "targetRef", "targetRefs", "url", "sha256", "imagePullPolicy", "imagePullSecret",
                "verificationKey", "pluginConfig", "pluginName", "phase", "priority", "failStrategy", "vmConfig",
                "match", "type"}
_TOP_FIELDS = {"apiVersion", "kind", "metadata", "spec", "status"}


class WasmPluginError(ValueError):
    """A WasmPlugin istioctl validate (or the API server's proto parsing) refuses."""


@dataclass(frozen=True)
class PortSelector:
    number: int


@dataclass(frozen=True)
class TrafficSelector:
    """``mode`` CLIENT is outbound, SERVER inbound; UNDEFINED and CLIENT_AND_SERVER match both."""
    mode: str = "UNDEFINED"
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class EnvVar:
    name: str
    value_from: str = "INLINE"
    value: str = ""


@dataclass(frozen=True)
class TargetRef:
    kind: str
    name: str
    group: str = ""


@dataclass(frozen=True)
class FailurePolicy:
    """What a failStrategy means twice over (Istio 1.30 pkg/wasm/convert.go; go-control-plane v1.38.0
    extensions/wasm/v3 FailurePolicy):

    - ``fetch_fallback``: when pilot-agent cannot fetch the module it sends Envoy, instead of the Wasm
      filter, an RBAC filter: "allow" (no rules, stat prefix wasm-default-allow) only for FAIL_OPEN,
      else "deny" (empty rules deny every request, stat prefix wasm-default-deny).
    - ``on_vm_failure``: when the module traps or aborts at run time, Envoy's policy: "fail_closed" (every
      request through the plugin gets a 503), "fail_open" (the plugin is skipped), or "reload" (a new
      VM for the next request; only for runtime errors, others fall back to fail_closed).
    """
    fetch_fallback: str
    on_vm_failure: str
    envoy_policy: str

    @classmethod
    def of(cls, fail_strategy: str) -> FailurePolicy:
        policy = {"FAIL_CLOSE": "FAIL_CLOSED", "FAIL_OPEN": "FAIL_OPEN", "FAIL_RELOAD": "FAIL_RELOAD"}[fail_strategy]
        vm = {"FAIL_CLOSE": "fail_closed", "FAIL_OPEN": "fail_open", "FAIL_RELOAD": "reload"}[fail_strategy]
        return cls("allow" if fail_strategy == "FAIL_OPEN" else "deny", vm, policy)


@dataclass(frozen=True)
class WasmPlugin:
    name: str
    namespace: str
    url: str
    sha256: str = ""
    image_pull_policy: str = "UNSPECIFIED_POLICY"
    image_pull_secret: str = ""
    plugin_name: str = ""
    plugin_config: dict[str, Any] = field(default_factory=dict)
    phase: str = "UNSPECIFIED_PHASE"
    #: None when unset: istiod then sorts it below every set priority, 0 included (push_context.go sortByPriority)
    priority: int | None = None
    fail_strategy: str = "FAIL_CLOSE"
    env: tuple[EnvVar, ...] = ()
    match: tuple[TrafficSelector, ...] = ()
    type: str = "UNSPECIFIED_PLUGIN_TYPE"
    #: matchLabels, or None when no selector is given (then the plugin applies namespace-wide)
    selector: dict[str, str] | None = None
    target_refs: tuple[TargetRef, ...] = ()
    creation_timestamp: str = ""
    resource_version: str = ""

    @property
    def failure(self) -> FailurePolicy:
        return FailurePolicy.of(self.fail_strategy)

    @property
    def filter_chain_type(self) -> str:
        """HTTP or NETWORK: an unspecified type is HTTP (extensions.go filterChainTypeFromPluginType)."""
        return "NETWORK" if self.type == "NETWORK" else "HTTP"

    @classmethod
    def parse(cls, text: str, namespace: str = "default") -> WasmPlugin:
        """One WasmPlugin from YAML; ``namespace`` stands in for a missing metadata.namespace, as
        istioctl validate's default does."""
        plugins = cls.load_all(text, namespace)
        if len(plugins) != 1:
            raise WasmPluginError(f"expected one WasmPlugin, the YAML has {len(plugins)}")
        return plugins[0]

    @classmethod
    def load_all(cls, text: str, namespace: str = "default") -> list[WasmPlugin]:
        """Every WasmPlugin in a multi-document YAML (other kinds are refused, by name)."""
        try:
            documents = [document for document in yaml.safe_load_all(text) if document is not None]
        except yaml.YAMLError as error:
            raise WasmPluginError(f"not YAML: {error}") from None
        return [_from_document(document, namespace) for document in documents]


def _from_document(document: Any, default_namespace: str) -> WasmPlugin:
    if not isinstance(document, dict):
        raise WasmPluginError(f"a resource must be a mapping, got {type(document).__name__}")
    if document.get("kind") != "WasmPlugin" or str(document.get("apiVersion", "")).split("/")[0] != "extensions.istio.io":
        raise WasmPluginError(f"not a WasmPlugin: apiVersion {document.get('apiVersion')!r} kind {document.get('kind')!r} "
                              "(accepted: apiVersion extensions.istio.io/v1alpha1, kind WasmPlugin)")
    _no_unknown(document, _TOP_FIELDS, "")
    metadata = _mapping(document.get("metadata"), "metadata")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise WasmPluginError("metadata.name: must be a non-empty string")
    namespace = metadata.get("namespace") or default_namespace
    where = f"WasmPlugin {namespace}/{name}"
    try:
        return _from_spec(_mapping(document.get("spec"), "spec"), name, str(namespace), metadata)
    except WasmPluginError as error:
        raise WasmPluginError(f"{where}: {error}") from None


def _from_spec(spec: dict, name: str, namespace: str, metadata: dict) -> WasmPlugin:
    _no_unknown(spec, _SPEC_FIELDS, "spec.")
    url = _string(spec, "url")
    _check_url(url)
    sha256 = _string(spec, "sha256")
    if sha256 and not re.fullmatch(r"[a-f0-9]{64}", sha256):
        raise WasmPluginError(f"spec.sha256: {sha256!r} must be 64 lower-case hex digits ([a-f0-9]{{64}})")
    secret = _string(spec, "imagePullSecret")
    if len(secret) > 253:
        raise WasmPluginError("spec.imagePullSecret: must be at most 253 characters")
    plugin_name = _string(spec, "pluginName")
    if len(plugin_name) > 256:
        raise WasmPluginError("spec.pluginName: must be at most 256 characters")
    priority = spec.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int) or not -2**31 <= priority < 2**31):
        raise WasmPluginError(f"spec.priority: {priority!r} is not a 32-bit integer")
    selector = _selector(spec.get("selector"))
    target_refs = tuple(_target_ref(ref, f"spec.targetRefs[{index}]") for index, ref in enumerate(_list(spec, "targetRefs")))
    single = _target_ref(spec["targetRef"], "spec.targetRef") if spec.get("targetRef") is not None else None
    if sum((selector is not None, single is not None, bool(target_refs))) > 1:
        raise WasmPluginError("only one of selector, targetRef or targetRefs may be set")
    config = spec.get("pluginConfig") or {}
    if not isinstance(config, dict):
        raise WasmPluginError("spec.pluginConfig: must be a mapping (a google.protobuf.Struct)")
    return WasmPlugin(
        name=name, namespace=namespace, url=url, sha256=sha256,
        image_pull_policy=_enum(spec, "imagePullPolicy", PULL_POLICIES), image_pull_secret=secret,
        plugin_name=plugin_name, plugin_config=config, phase=_enum(spec, "phase", PHASES), priority=priority,
        fail_strategy=_enum(spec, "failStrategy", FAIL_STRATEGIES), env=_env(spec.get("vmConfig")),
        match=tuple(_traffic_selector(item, index) for index, item in enumerate(_list(spec, "match"))),
        type=_enum(spec, "type", PLUGIN_TYPES), selector=selector,
        target_refs=target_refs or ((single,) if single else ()),
        creation_timestamp=str(metadata.get("creationTimestamp") or ""),
        resource_version=str(metadata.get("resourceVersion") or ""))


def _check_url(url: str) -> None:
    """Istio parses the url with Go's url.ParseRequestURI, retrying with ``http://`` in front (so a bare
    ``registry/image:tag`` passes as http and means oci), then checks the scheme (validation.go
    validateWasmPluginURL, strictParseURL)."""
    if not url:
        raise WasmPluginError("spec.url: must be set (a file://, http://, https:// or oci:// URL, or an OCI image reference)")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise WasmPluginError(f"spec.url: {url!r} is not a URL (it has a space or control character)")
    scheme_match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    if not scheme and not url.startswith("/"):
        scheme = "http"  # strictParseURL's retry with http:// in front
    if scheme not in URL_SCHEMES:
        raise WasmPluginError(f"spec.url: scheme {scheme!r} is not supported (accepted: file, http, https, oci, or none for oci)")


def _selector(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    selector = _mapping(value, "spec.selector")
    _no_unknown(selector, {"matchLabels"}, "spec.selector.")
    labels = _mapping(selector.get("matchLabels") or {}, "spec.selector.matchLabels")
    for key, label in labels.items():
        if key == "":
            raise WasmPluginError("spec.selector.matchLabels: an empty key is not supported")
        if "*" in str(key) or "*" in str(label):
            raise WasmPluginError(f"spec.selector.matchLabels: wildcard is not supported in {key}={label}")
    return {str(key): str(label) for key, label in labels.items()}


def _target_ref(value: Any, where: str) -> TargetRef:
    ref = _mapping(value, where)
    _no_unknown(ref, {"group", "kind", "name", "namespace"}, f"{where}.")
    if not ref.get("name"):
        raise WasmPluginError(f"{where}.name: must be set")
    if ref.get("namespace"):
        raise WasmPluginError(f"{where}.namespace: must not be set; cross-namespace references are not supported")
    group, kind = str(ref.get("group") or ""), str(ref.get("kind") or "")
    if (group or "core", kind) not in TARGET_KINDS:
        accepted = ", ".join(f"{g}/{k}" for g, k in TARGET_KINDS)
        raise WasmPluginError(f"{where}: {group}/{kind} is not a target kind (accepted: {accepted})")
    return TargetRef(kind, str(ref["name"]), group)


def _env(value: Any) -> tuple[EnvVar, ...]:
    if value is None:
        return ()
    vm_config = _mapping(value, "spec.vmConfig")
    _no_unknown(vm_config, {"env"}, "spec.vmConfig.")
    seen: set[str] = set()
    env = []
    for index, item in enumerate(_list(vm_config, "env", "spec.vmConfig.")):
        where = f"spec.vmConfig.env[{index}]"
        entry = _mapping(item, where)
        _no_unknown(entry, {"name", "value", "valueFrom"}, f"{where}.")
        name = _string(entry, "name", f"{where}.")
        if not name or len(name) > 256:
            raise WasmPluginError(f"{where}.name: must be 1 to 256 characters")
        if name in seen:
            raise WasmPluginError(f"{where}.name: {name} is a duplicate")
        seen.add(name)
        source = _enum(entry, "valueFrom", ENV_VALUE_SOURCES, f"{where}.")
        value_text = _string(entry, "value", f"{where}.")
        if source != "INLINE" and value_text:
            raise WasmPluginError(f"{where}.value: may only be set when valueFrom is INLINE")
        env.append(EnvVar(name, source, value_text))
    return tuple(env)


def _traffic_selector(value: Any, index: int) -> TrafficSelector:
    where = f"spec.match[{index}]"
    item = _mapping(value, where)
    _no_unknown(item, {"mode", "ports"}, f"{where}.")
    ports = []
    for port_index, port in enumerate(_list(item, "ports", f"{where}.")):
        number = _mapping(port, f"{where}.ports[{port_index}]").get("number")
        if isinstance(number, bool) or not isinstance(number, int) or not 0 < number <= 65535:
            raise WasmPluginError(f"{where}.ports[{port_index}].number: {number!r} is out of range (1-65535)")
        ports.append(number)
    return TrafficSelector(_enum(item, "mode", WORKLOAD_MODES, f"{where}."), tuple(ports))


def _no_unknown(mapping: dict, known: set[str], prefix: str) -> None:
    unknown = sorted(set(map(str, mapping)) - known)
    if unknown:
        raise WasmPluginError(f"{prefix}{unknown[0]}: unknown field (accepted: {', '.join(sorted(known))})")


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WasmPluginError(f"{where}: must be a mapping, got {type(value).__name__}")
    return value


def _list(mapping: dict, key: str, prefix: str = "spec.") -> list:
    value = mapping.get(key) or []
    if not isinstance(value, list):
        raise WasmPluginError(f"{prefix}{key}: must be a list, got {type(value).__name__}")
    return value


def _string(mapping: dict, key: str, prefix: str = "spec.") -> str:
    value = mapping.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WasmPluginError(f"{prefix}{key}: must be a string, got {type(value).__name__}")
    return value


def _enum(mapping: dict, key: str, accepted: tuple[str, ...], prefix: str = "spec.") -> str:
    value = mapping.get(key)
    if value is None:
        return accepted[0]
    if value not in accepted:
        raise WasmPluginError(f"{prefix}{key}: {value!r} is not accepted (accepted: {', '.join(accepted)})")
    return str(value)


def applies_to(plugin: WasmPlugin, namespace: str, labels: dict[str, str], direction: str, port: int,
               root_namespace: str = ROOT_NAMESPACE) -> bool:
    """Whether ``plugin`` runs on a sidecar of ``namespace`` with ``labels``, for traffic in
    ``direction`` ("inbound": SERVER, "outbound": CLIENT) on ``port``.

    A plugin applies in its own namespace, or everywhere from the root namespace; its selector's labels
    must all be on the workload; a plugin with targetRefs binds to gateways and services, never to a
    sidecar by selector (pilot/pkg/model/policyattachment.go). Its traffic selectors are ORed, each a mode
    AND a port list (extensions.go matchTrafficSelectorCommon); no selectors match everything.
    """
    if direction not in ("inbound", "outbound"):
        raise ValueError(f"direction {direction!r}: accepted inbound (SERVER) or outbound (CLIENT)")
    if plugin.namespace not in (namespace, root_namespace) or plugin.target_refs:
        return False
    if plugin.selector and any(labels.get(key) != value for key, value in plugin.selector.items()):
        return False
    if not plugin.match:
        return True
    mode = "SERVER" if direction == "inbound" else "CLIENT"
    return any(selector.mode in ("UNDEFINED", "CLIENT_AND_SERVER", mode) and (not selector.ports or port in selector.ports)
               for selector in plugin.match)


def pull_policy(plugin: WasmPlugin) -> str:
    """IfNotPresent or Always: an unspecified policy is IfNotPresent, except for an ``oci://`` url whose
    path ends in ``:latest`` (pkg/wasm/cache.go shouldIgnoreResourceVersion; a scheme-less url reaches
    the agent as oci://, extensions.go buildWasmConfig)."""
    if plugin.image_pull_policy != "UNSPECIFIED_POLICY":
        return plugin.image_pull_policy
    scheme = plugin.url.split("://", 1)[0] if "://" in plugin.url else "oci"
    return "Always" if scheme == "oci" and plugin.url.endswith(":latest") else "IfNotPresent"


def _ordered(plugins: list[WasmPlugin], proxy_namespace: str, root_namespace: str) -> list[WasmPlugin]:
    """Plugins of one phase in istiod's order: by namespace looked up (the proxy's first, then the root),
    within each by creation time then name (config.go sortConfigByCreationTime), then a stable sort by
    priority, highest first, an unset priority counting as the lowest int32 (push_context.go sortByPriority)."""
    namespaces = list(dict.fromkeys((proxy_namespace, root_namespace)))
    listed = [plugin for ns in namespaces
              for plugin in sorted((p for p in plugins if p.namespace == ns), key=lambda p: (p.creation_timestamp, p.name))]
    return sorted(listed, key=lambda p: -(p.priority if p.priority is not None else -math.inf))


def wasm_phases(plugins: list[WasmPlugin], namespace: str, labels: dict[str, str], direction: str, port: int,
                root_namespace: str = ROOT_NAMESPACE) -> WasmPhases:
    """The HTTP plugins that apply to one sidecar's traffic, by phase, each phase in istiod's order:
    what the listener's HTTP filter chain references (``meshlab.xds.inbound.http_filters`` places the
    phases among Istio's own filters, as listener_builder.go does)."""
    chosen = [p for p in plugins if p.filter_chain_type == "HTTP" and applies_to(p, namespace, labels, direction, port, root_namespace)]
    return WasmPhases({phase: tuple(ecds_name(p) for p in _ordered([p for p in chosen if p.phase == phase], namespace, root_namespace))
                       for phase in PHASES if any(p.phase == phase for p in chosen)})


def ecds_name(plugin: WasmPlugin) -> str:
    """The ECDS resource (and HTTP filter) name: the TrafficExtension prefix, then namespace.name with
    the translation marker (extensions.go convertToTrafficExtensionWrapper, translate.go)."""
    return f"{ECDS_PREFIX}{plugin.namespace}.{plugin.name}{SYNTHETIC_MARKER}"


def extension_config(plugin: WasmPlugin) -> extension_pb2.TypedExtensionConfig:
    """The ECDS resource istiod sends for an HTTP plugin (extensions.go buildWasmConfig, buildVMConfig,
    buildDataSource): a file:// url becomes a local filename, any other a remote http_uri with the
    sha256 and a 30 s timeout (a scheme-less url gains oci://), for pilot-agent to rewrite."""
    url = plugin.url if "://" in plugin.url else f"oci://{plugin.url}"
    if url.startswith("file://"):
        code = base_pb2.AsyncDataSource(local=base_pb2.DataSource(filename=url[len("file://"):]))
    else:
        code = base_pb2.AsyncDataSource(remote=base_pb2.RemoteDataSource(
            http_uri=http_uri_pb2.HttpUri(uri=url, cluster="_", timeout=duration_pb2.Duration(seconds=REMOTE_TIMEOUT_SECONDS)),
            sha256=plugin.sha256))
    env: dict[str, str] = {}
    if plugin.image_pull_secret:
        env[WASM_SECRET_ENV] = plugin.image_pull_secret
    if plugin.image_pull_policy != "UNSPECIFIED_POLICY":
        env[WASM_POLICY_ENV] = plugin.image_pull_policy
    env[WASM_RESOURCE_VERSION_ENV] = plugin.resource_version
    env.update({var.name: var.value for var in plugin.env if var.value_from == "INLINE"})
    configuration = any_pb2.Any()
    if plugin.plugin_config:
        configuration.Pack(wrappers_pb2.StringValue(value=json.dumps(plugin.plugin_config, separators=(",", ":"))))
    config = wasm_pb2.PluginConfig(
        name=f"{plugin.namespace}.{plugin.name}{SYNTHETIC_MARKER}", root_id=plugin.plugin_name, configuration=configuration,
        vm_config=wasm_pb2.VmConfig(runtime=RUNTIME, code=code, environment_variables=wasm_pb2.EnvironmentVariables(
            key_values=env, host_env_keys=[var.name for var in plugin.env if var.value_from == "HOST"])),
        failure_policy=wasm_pb2.FailurePolicy.Value(plugin.failure.envoy_policy))
    typed = any_pb2.Any()
    typed.Pack(http_wasm_pb2.Wasm(config=config))
    return extension_pb2.TypedExtensionConfig(name=ecds_name(plugin), typed_config=typed)

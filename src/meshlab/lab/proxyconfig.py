"""What istiod and pilot-agent do for a live lab's HTTP side: each data-plane pod's configuration.

For every pod started with ``dataplane`` the lab keeps one intent in its state folder: the
WasmPlugins applied, and the telemetry settings (access log off, text, JSON or ALS; trace sampling).
From it each pod's data-plane file is (re)written, as istiod recomputes a proxy's configuration on a
change: the pod's inbound listener (``meshlab.xds.inbound``, Istio's virtualInbound) whose HTTP
filter chain references the plugins that select the pod, by phase and priority
(``meshlab.wasm.plugin``), with Istio's access log and tracing blocks in every HTTP connection
manager (``meshlab.telemetry.config``), and the plugins' extension configs after pilot-agent's
conversion (``meshlab.wasm.fetch``: the module fetched, its sha256 checked, the code made a local
file; or, when that fails, the RBAC filter its failStrategy asks for). The sidecar rereads the file.

Where Istio's agent fetches inside the pod, the lab fetches on its host, into the lab's state folder
(readable by the proxy's uid 1337): a url on the host's loopback works, as the chapter's servers are there.

    TELEMETRY_MODES   the access log settings: off, text, json, als
    Applied           one WasmPlugin as applied: which pods it selected and how its module was had
    PodHttp           what a pod's inbound side runs now (for ``lab wasm list`` and the chapter)
    apply_plugins     add or replace WasmPlugins from YAML; every data-plane pod is rewritten
    remove_plugin     remove one by namespace/name
    applied_plugins   what is applied, with each plugin's outcome
    set_telemetry     the access log and tracing of every data-plane pod
    configure_pods    (re)write every data-plane pod's file from the intent; ``configure`` one pod's
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import yaml
from envoy.config.core.v3 import extension_pb2
from google.protobuf import any_pb2

from meshlab.agent.bootstrap import ProxyNode
from meshlab.envoy.accesslog import ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT
from meshlab.lab import dataplane
from meshlab.lab.netns import LabUsageError
from meshlab.lab.spec import SIDECAR_GID, SIDECAR_UID
from meshlab.telemetry import config as telemetry
from meshlab.wasm.fetch import ModuleCache, convert
from meshlab.wasm.plugin import WasmPlugin, WasmPluginError, ecds_name, extension_config, wasm_phases
from meshlab.xds.inbound import InboundPort, inbound_clusters, virtual_inbound

TELEMETRY_MODES = ("off", "text", "json", "als")


@dataclass(frozen=True)
class Applied:
    """``outcome``: "local" (module fetched and checked), "allow"/"deny" (it could not be had: the RBAC
    filter the failStrategy asks for stands in, ``reason`` says why), per pod that the plugin selects."""

    namespace: str
    name: str
    url: str
    phase: str
    priority: int | None
    fail_strategy: str
    pods: tuple[str, ...]
    outcome: str
    reason: str = ""


def _intent_path(lab) -> Path:
    return lab.state_dir / "dataplane-intent.json"


def _intent(lab) -> dict:
    path = _intent_path(lab)
    return json.loads(path.read_text()) if path.exists() else {"plugins": [], "telemetry": {"access_log": "off", "sampling": None}}


def _save_intent(lab, intent: dict) -> None:
    _intent_path(lab).write_text(json.dumps(intent, indent=1))


def _change(lab, intent: dict) -> list[Applied]:
    """Make ``intent`` the lab's and rewrite the pods' files; if that fails, the previous intent and files
    are put back, so nothing is left half applied."""
    previous = _intent(lab)
    _save_intent(lab, intent)
    try:
        return configure_pods(lab)
    except BaseException:
        _save_intent(lab, previous)
        configure_pods(lab)
        raise


def _dataplane_pods(lab) -> list:
    pods = [pod for pod in lab.pods.values() if pod.dataplane]
    if not pods:
        raise LabUsageError(f"lab {lab.prefix!r} has no pod with an HTTP side; start one with `meshlab lab up --dataplane`")
    return pods


def _node(pod) -> ProxyNode:
    return ProxyNode(pod.name, pod.k8s_namespace, pod.ip, pod.service_account)


def apply_plugins(lab, text: str) -> list[Applied]:
    """Apply the WasmPlugins in ``text`` (replacing any of the same namespace/name). The YAML is read
    whole first: one bad plugin and nothing is applied."""
    try:
        plugins = WasmPlugin.load_all(text)
    except WasmPluginError as error:
        raise LabUsageError(f"WasmPlugin refused, nothing applied: {error}") from None
    if not plugins:
        raise LabUsageError("no WasmPlugin in the input")
    _dataplane_pods(lab)
    intent = _intent(lab)
    documents = {(d["namespace"], d["name"]): d for d in intent["plugins"]}
    for plugin, document in zip(plugins, _documents(text), strict=True):
        documents[(plugin.namespace, plugin.name)] = {"namespace": plugin.namespace, "name": plugin.name, "yaml": document}
    intent["plugins"] = list(documents.values())
    outcomes = _change(lab, intent)
    return [outcome for outcome in outcomes if (outcome.namespace, outcome.name) in {(p.namespace, p.name) for p in plugins}]


def _documents(text: str) -> list[str]:
    return [yaml.safe_dump(document) for document in yaml.safe_load_all(text) if document is not None]


def remove_plugin(lab, namespace: str, name: str) -> None:
    intent = _intent(lab)
    kept = [d for d in intent["plugins"] if (d["namespace"], d["name"]) != (namespace, name)]
    if len(kept) == len(intent["plugins"]):
        raise LabUsageError(f"no WasmPlugin {namespace}/{name} is applied")
    intent["plugins"] = kept
    _change(lab, intent)


def applied_plugins(lab) -> list[Applied]:
    path = lab.state_dir / "wasmplugins-applied.json"
    return [Applied(**{**record, "pods": tuple(record["pods"])}) for record in json.loads(path.read_text())] if path.exists() else []


def set_telemetry(lab, access_log: str = "off", sampling: float | None = None) -> None:
    """Every data-plane pod's access log (off, text: Istio's TEXT format to a file, json: Istio's JSON,
    als: Envoy's ALS to the lab's collector) and trace sampling percentage (None: no tracing; spans go
    to the lab's collector over OTLP)."""
    if access_log not in TELEMETRY_MODES:
        raise LabUsageError(f"access log {access_log!r}: accepted are {', '.join(TELEMETRY_MODES)}")
    if sampling is not None and not 0 <= sampling <= 100:
        raise LabUsageError(f"trace sampling {sampling}: a percentage from 0 to 100")
    if (access_log == "als" or sampling is not None) and lab.collector_address() is None:
        raise LabUsageError("ALS and tracing send to the lab's collector; start the lab with a collector pod (`Lab.up(..., collector=True)`)")
    intent = _intent(lab)
    intent["telemetry"] = {"access_log": access_log, "sampling": sampling}
    _change(lab, intent)


def access_log_path(lab, pod: str) -> Path:
    return lab.state_dir / f"{pod}-access.log"


def configure_pods(lab) -> list[Applied]:
    """Write every data-plane pod's file from the lab's intent (at ``up``, and after every change)."""
    intent = _intent(lab)
    plugins = [WasmPlugin.parse(d["yaml"], d["namespace"]) for d in intent["plugins"]]
    cache = ModuleCache(dir=lab.state_dir / "wasm-modules")
    converted: dict[str, tuple[any_pb2.Any, str, str]] = {}
    for plugin in plugins:
        resource = any_pb2.Any()
        resource.Pack(extension_config(_readable(plugin, lab)))
        outcome = convert(resource, cache)
        # a file:// module is a local file already (istiod sends it so); the agent leaves it unchanged
        converted[ecds_name(plugin)] = (outcome.resource, "local" if outcome.outcome == "unchanged" else outcome.outcome, outcome.error)
    _readable_tree(cache.dir)
    selected: dict[str, list[str]] = {ecds_name(p): [] for p in plugins}
    for pod in _dataplane_pods(lab):
        for name in configure(lab, pod, plugins, converted, intent["telemetry"]):
            selected[name].append(pod.name)
    outcomes = [Applied(p.namespace, p.name, p.url, p.phase, p.priority, p.fail_strategy, tuple(selected[ecds_name(p)]),
                        *converted[ecds_name(p)][1:]) for p in plugins]
    (lab.state_dir / "wasmplugins-applied.json").write_text(json.dumps([asdict(outcome) for outcome in outcomes], indent=1))
    return outcomes


def _readable(plugin: WasmPlugin, lab) -> WasmPlugin:
    """A file:// module copied where the proxy's uid can read it (istiod hands Envoy the path itself)."""
    if not plugin.url.startswith("file://"):
        return plugin
    source = Path(plugin.url[len("file://"):])
    copy = lab.state_dir / "wasm-modules" / f"file-{plugin.namespace}-{plugin.name}.wasm"
    copy.parent.mkdir(exist_ok=True)
    try:
        copy.write_bytes(source.read_bytes())
    except OSError as error:
        raise LabUsageError(f"WasmPlugin {plugin.namespace}/{plugin.name}: cannot read {source}: {error.strerror}") from None
    copy.chmod(0o644)
    return replace(plugin, url=f"file://{copy}")


def _readable_tree(folder: Path) -> None:
    """The agent's cache as uid 1337 must read it: folders 755, modules 644."""
    if not folder.exists():
        return
    for root, folders, files in os.walk(folder):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(Path(root) / name, 0o644)


def configure(lab, pod, plugins: list[WasmPlugin], converted: dict, telemetry_intent: dict) -> list[str]:
    """Write one pod's data-plane file; returns the ECDS names its listener references."""
    ports = [InboundPort(port, "HTTP", f"{pod.name}.{pod.k8s_namespace}.svc.cluster.local") for port in pod.ports]
    phases = wasm_phases(plugins, pod.k8s_namespace, pod.labels, "inbound", pod.app_port)
    listener = virtual_inbound(ports, phases)
    node = _node(pod)
    logs = []
    mode = telemetry_intent["access_log"]
    if mode in ("text", "json"):
        path = access_log_path(lab, pod.name)
        path.touch()
        if os.geteuid() == 0:
            os.chown(path, SIDECAR_UID, SIDECAR_GID)  # the sidecar writes it as uid 1337
        logs.append(telemetry.file_access_log(str(path), text=ISTIO_TEXT_FORMAT) if mode == "text"
                    else telemetry.file_access_log(str(path), json_fields=ISTIO_JSON_FORMAT))
    elif mode == "als":
        logs.append(telemetry.grpc_access_log(lab.collector_address(), "http_envoy_accesslog"))
    sampling = telemetry_intent["sampling"]
    tracing = telemetry.tracing(sampling, lab.collector_address(), f"{pod.name}.{pod.k8s_namespace}") if sampling is not None else None
    listener = telemetry.with_telemetry(listener, logs, tracing)
    names = [name for phase in phases.by_phase.values() for name in phase]
    extensions = []
    for name in names:
        config = extension_pb2.TypedExtensionConfig()
        converted[name][0].Unpack(config)
        extensions.append(config)
    dataplane.write(lab.dataplane_file(pod.name), listener, extensions, node.id, inbound_clusters(ports))
    return names

"""The lab sidecar's HTTP side, configured as Envoy is: an inbound Listener and its extension configs.

A pod's data-plane file holds what Envoy would hold after xDS: the inbound listener
(``virtualInbound``, a real envoy.config.listener.v3.Listener in proto JSON) and the
TypedExtensionConfigs its HTTP filters name through ECDS (``config_discovery``), with Wasm code
already turned into local files, as pilot-agent hands them to Envoy. The lab writes the file (its
control plane's side: ``write``); the sidecar rereads it when it changes, as Envoy watches a
``path_config_source``. For each inbound connection the sidecar asks which filter chain matches
(``meshlab.envoy.listener``, Envoy's FilterChainManager); a chain ending in an HTTP connection
manager is served as HTTP (``meshlab.lab.hcm``) with its filters, access logs and tracer.

Filters the sidecar runs: Wasm (``meshlab.wasm.host``, proxy-wasm on wasmtime), RBAC's allow-all
and deny-all (what pilot-agent puts in a Wasm filter's place when its module cannot be had), and
the router. Istio's own C++ filters (istio.metadata_exchange, istio.stats, ...) have no meshlab
twin: they are listed in ``skipped`` and in the proxy's log, and requests pass them by.

    DataPlane   reload, http_chain(destination, source, transport, alpn) -> HcmConfig | None, serve, prometheus, config_dump
    write       a pod's data-plane file: the listener and the extension configs, readable by uid 1337
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import extension_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.wasm.v3 import wasm_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.wasm.v3 import wasm_pb2 as wasm_v3
from google.protobuf import any_pb2, json_format, wrappers_pb2

from meshlab.envoy.configdump import config_dump, known_type
from meshlab.filewatch import ChangedFile
from meshlab.envoy.http1 import UpstreamConnection
from meshlab.envoy.httpfilter import LocalReply
from meshlab.envoy.listener import Connection, select_filter_chain
from meshlab.lab.hcm import HcmConfig, HcmStats, HttpConnectionManager
from meshlab.telemetry.config import access_logs_from, tracer_from
from meshlab.wasm.host import WasmHttpFilter
from meshlab.xds.resources import CLUSTER, LISTENER

HCM = "envoy.filters.network.http_connection_manager"
ROUTER = "envoy.filters.http.router"


class _PassThrough:
    """A filter that lets everything pass unless told otherwise (Envoy's PassThroughFilter)."""

    fail_open = True

    def new_stream(self):
        return self

    def request_headers(self, headers, end_stream):
        return None

    def request_body(self, body, end_stream):
        return None

    def response_headers(self, headers, end_stream):
        return None

    def response_body(self, body, end_stream):
        return None

    def done(self, info) -> None:
        pass


class _MissingConfig(_PassThrough):
    """Envoy's MissingConfigFilter: an ECDS filter whose configuration has not arrived answers 500 with
    the response flag NFCF (no filter config found), rather than letting requests skip it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def request_headers(self, headers, end_stream):
        return LocalReply(500, b"", [], "", response_flags="NFCF")


class _Rbac(_PassThrough):
    """Envoy's RBAC filter reduced to the two configurations pilot-agent writes in a Wasm filter's
    place (pkg/wasm/convert.go): no rules (allow all) or rules that match nothing (deny all: 403,
    ``rbac_access_denied_matched_policy[none]``)."""

    def __init__(self, name: str, deny: bool) -> None:
        self.name, self.deny = name, deny

    def request_headers(self, headers, end_stream):
        if self.deny:
            return LocalReply(403, b"RBAC: access denied", [("content-type", "text/plain")], "rbac_access_denied_matched_policy[none]", "RBAC")
        return None


class DataPlane:
    """One pod's HTTP side: reads ``path`` whenever it changed; ``log`` writes to the proxy's log."""

    def __init__(self, path: Path, log: Callable[[dict], None]) -> None:
        self.path, self.log, self.node_id = path, log, ""
        self.file = ChangedFile(path)
        self.clusters: list[cluster_pb2.Cluster] = []
        self.listener: listener_pb2.Listener | None = None
        self.extensions: dict[str, extension_pb2.TypedExtensionConfig] = {}
        self.hcms: dict[str, HcmConfig] = {}  # filter chain name -> what its HCM runs
        self.wasm: list[WasmHttpFilter] = []
        self.skipped: list[str] = []
        self.stats = HcmStats()
        self.retired: list[HcmConfig] = []  # replaced, still serving their connections' last responses
        self.users: dict[int, int] = {}  # id of an HcmConfig -> connections it serves

    def reload(self) -> None:
        """Reread the file if it changed; a file that cannot be used keeps the last good one (as Envoy
        rejects a bad update and keeps serving the old), and the reason goes to the log."""
        if not self.file.changed():
            return
        try:
            saved = json.loads(self.path.read_text())
            _import_types(saved)
            listener = json_format.ParseDict(saved["listener"], listener_pb2.Listener()) if saved.get("listener") else None
            clusters = [json_format.ParseDict(cluster, cluster_pb2.Cluster()) for cluster in saved.get("clusters", [])]
            extensions = {}
            for config in saved.get("extension_configs", []):
                typed = json_format.ParseDict(config, extension_pb2.TypedExtensionConfig())
                extensions[typed.name] = typed
        except (OSError, ValueError, KeyError, json_format.ParseError) as error:
            self.log({"event": "dataplane_rejected", "file": str(self.path), "reason": str(error)})
            return
        self._close()
        self.listener, self.extensions, self.hcms, self.wasm, self.skipped = listener, extensions, {}, [], []
        self.node_id, self.clusters = saved.get("node", ""), clusters
        self.log({"event": "dataplane_loaded", "listener": listener.name if listener else None, "extension_configs": sorted(extensions)})

    def http_chain(self, destination: tuple[str, int], source: tuple[str, int], transport: str, alpn: tuple[str, ...]) -> HcmConfig | None:
        """What the HCM of the filter chain matching this connection runs, or None (no listener, no
        matching chain, or a chain that is not HTTP: the proxy splices bytes)."""
        self.reload()
        if self.listener is None:
            return None
        chosen = select_filter_chain(self.listener, Connection(destination[0], destination[1], transport_protocol=transport,
                                                               application_protocols=alpn, source_ip=source[0], source_port=source[1]))
        hcm = _hcm(chosen.chain) if chosen is not None else None
        if hcm is None:
            return None
        if chosen.name not in self.hcms:
            self.hcms[chosen.name] = self._build(hcm)
        return self.hcms[chosen.name]

    def _build(self, hcm: hcm_pb2.HttpConnectionManager) -> HcmConfig:
        filters = []
        for http_filter in hcm.http_filters:
            if http_filter.name == ROUTER:
                break
            if http_filter.HasField("config_discovery"):
                typed = self.extensions.get(http_filter.name)
                if typed is None:  # ECDS has not delivered it: Envoy's MissingConfigFilter answers instead
                    filters.append(_MissingConfig(http_filter.name))
                    continue
            else:
                typed = http_filter
            built = self._filter(http_filter.name, typed.typed_config)
            if built is None:
                self.skipped.append(http_filter.name)
                self.log({"event": "filter_skipped", "filter": http_filter.name, "reason": "an Istio C++ filter meshlab's sidecar does not run"})
            else:
                filters.append(built)
        route_name, cluster = _inbound_route(hcm)
        return HcmConfig(hcm.stat_prefix, filters, access_logs_from(hcm, self.node_id), tracer_from(hcm, self.node_id), route_name, cluster)

    def _filter(self, name: str, typed_config):
        if typed_config.Is(wasm_pb2.Wasm.DESCRIPTOR):
            config = wasm_pb2.Wasm()
            typed_config.Unpack(config)
            plugin = config.config
            configuration = wrappers_pb2.StringValue()
            if plugin.configuration.Is(wrappers_pb2.StringValue.DESCRIPTOR):
                plugin.configuration.Unpack(configuration)
            code = Path(plugin.vm_config.code.local.filename).read_bytes()
            wasm = WasmHttpFilter.load(code, name=name, root_id=plugin.root_id, configuration=configuration.value.encode(),
                                       fail_open=plugin.fail_open or plugin.failure_policy == wasm_v3.FAIL_OPEN,
                                       reload=plugin.failure_policy == wasm_v3.FAIL_RELOAD, vm_id=plugin.vm_config.vm_id,
                                       log_sink=lambda level, message: self.log({"event": "wasm_log", "filter": name, "level": level.name,
                                                                                 "message": message}))
            self.wasm.append(wasm)
            return wasm
        if typed_config.Is(rbac_pb2.RBAC.DESCRIPTOR):
            config = rbac_pb2.RBAC()
            typed_config.Unpack(config)
            return _Rbac(name, deny=config.HasField("rules") and not config.rules.policies)
        return None

    async def serve(self, config: HcmConfig, reader, writer, dial, scheme: str, proxy, destination: tuple[str, int]) -> None:
        """One inbound connection through the HCM; ``dial`` opens the connection to the app."""
        async def connect() -> UpstreamConnection:
            return UpstreamConnection(*await dial())

        manager = HttpConnectionManager(config, connect, self.stats,
                                        draining=lambda: any(c is config for c in self.retired) or (proxy.state == "DRAINING" and proxy.graceful_drain))
        self.users[id(config)] = self.users.get(id(config), 0) + 1
        try:
            await manager.serve(reader, writer, scheme, destination)
        finally:
            self.users[id(config)] -= 1
            self._close_retired()

    def prometheus(self) -> str:
        """The HCM counters and every loaded Wasm module's own metrics."""
        return self.stats.prometheus() + "".join(line + "\n" for wasm in self.wasm for line in wasm.metrics())

    def config_dump(self, proxy, query: dict) -> str:
        """Envoy's /config_dump of what this proxy runs (its inbound listener and clusters), which
        ``istioctl proxy-config ... --file`` reads."""
        self.reload()
        resources = {LISTENER: {self.listener.name: _packed(self.listener)} if self.listener is not None else {},
                     CLUSTER: {cluster.name: _packed(cluster) for cluster in self.clusters}}
        return json.dumps(config_dump(resources), indent=1)

    def _close(self) -> None:
        """Retire the chains of the configuration being replaced: as Envoy drains a listener's old filter
        chains, their connections end after their current response, and their loggers and tracers are
        closed once the last of them has."""
        self.retired.extend(self.hcms.values())
        self._close_retired()

    def _close_retired(self) -> None:
        done = [c for c in self.retired if not self.users.get(id(c))]
        self.retired = [c for c in self.retired if self.users.get(id(c))]
        closes = []
        for config in done:
            self.users.pop(id(config), None)
            closes += [access_log.close for access_log in config.access_logs if hasattr(access_log, "close")]
            if config.tracer is not None and config.tracer.exporter is not None:
                closes.append(config.tracer.exporter.close)
        if closes:  # they flush what they hold (ALS, OTLP): off the proxy's event loop
            threading.Thread(target=lambda: [close() for close in closes], name="retired-telemetry", daemon=True).start()


def _inbound_route(hcm: hcm_pb2.HttpConnectionManager) -> tuple[str | None, str | None]:
    """The route and cluster of an inbound HCM's inline route config. Istio's has one virtual host with
    one route, "default", matching every path, to the port's ``inbound|<port>||`` ORIGINAL_DST cluster
    (route.go BuildDefaultHTTPInboundRoute): so every request goes on to the original destination."""
    for host in hcm.route_config.virtual_hosts:
        for route in host.routes:
            return route.name or None, route.route.cluster or None
    return None, None


def _import_types(value) -> None:
    """Make every ``@type`` in a protojson document readable (its xds-protos module imported)."""
    if isinstance(value, list):
        for item in value:
            _import_types(item)
    elif isinstance(value, dict):
        if isinstance(value.get("@type"), str):
            known_type(value["@type"])
        for item in value.values():
            _import_types(item)


def _packed(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _hcm(chain: listener_pb2.FilterChain) -> hcm_pb2.HttpConnectionManager | None:
    for network_filter in chain.filters:
        if network_filter.name == HCM or network_filter.typed_config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
            hcm = hcm_pb2.HttpConnectionManager()
            network_filter.typed_config.Unpack(hcm)
            return hcm
    return None


def write(path: Path, listener: listener_pb2.Listener | None, extension_configs: list[extension_pb2.TypedExtensionConfig], node_id: str,
          clusters: list[cluster_pb2.Cluster] = ()) -> None:
    """Replace a pod's data-plane file at once (a rename, so the sidecar never reads half of it);
    ``node_id`` is the proxy's xDS node id, which its access logs and spans name; ``clusters`` the
    inbound clusters the listener's routes name (shown in the config dump)."""
    saved = {"node": node_id, "listener": json_format.MessageToDict(listener) if listener is not None else None,
             "clusters": [json_format.MessageToDict(cluster) for cluster in clusters],
             "extension_configs": [json_format.MessageToDict(config) for config in extension_configs]}
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(saved, indent=1))
    partial.chmod(0o644)  # the sidecar reads it as uid 1337
    os.replace(partial, path)

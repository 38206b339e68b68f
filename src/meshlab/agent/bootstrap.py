"""The Envoy bootstrap pilot-agent writes before it starts the proxy: who the proxy is (its node),
where its admin is, and the few static clusters and listeners it needs before any xDS arrives.

Everything else (the pod's listeners, routes, clusters) comes later over xDS, so the bootstrap's job is
small: name the node (istiod keys all of a proxy's configuration by its id and metadata), point ADS at
the agent's own xDS proxy on a Unix socket (the agent, not Envoy, holds the connection to istiod), point
SDS at the agent's secret server, and open the two ports the kubelet and Prometheus reach: 15021 (the
readiness that Envoy forwards to the agent's 15020) and 15090 (Envoy's own /stats/prometheus).

Facts from Istio 1.30 (istio.io/istio master of 2026-08-26, the build standing for 1.30.3):
tools/packaging/common/envoy_bootstrap.json (the template), pkg/bootstrap/config.go (node id, metadata:
every ``ISTIO_META_<X>`` env var becomes metadata ``X``; ``POD_NAME``, ``POD_NAMESPACE`` and
``SERVICE_ACCOUNT`` become NAME, NAMESPACE and SERVICE_ACCOUNT; ``INSTANCE_IP`` leads INSTANCE_IPS),
pilot/cmd/pilot-agent/options/options.go (ENVOY_STATUS_PORT 15021, ENVOY_PROMETHEUS_PORT 15090) and
pkg/istio-agent/agent.go. The injector (istioctl kube-inject, 1.30) sets ISTIO_META_CLUSTER_ID, MESH_ID,
POD_PORTS, APP_CONTAINERS, NODE_NAME, INTERCEPTION_MODE, WORKLOAD_NAME and OWNER; ProxyNode carries the
first two as fields and any others in ``meta``. Checked against what the real pilot-agent writes by
tests/test_agent_bootstrap.py.

    ProxyNode         the pod a proxy serves: id ``sidecar~<ip>~<pod>.<ns>~<ns>.svc.<domain>``, cluster, metadata
    bootstrap         ProxyNode -> envoy.config.bootstrap.v3.Bootstrap (a real message from xds-protos)
    bootstrap_json    the same as the JSON file pilot-agent hands Envoy with ``-c``
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format


def _type_url(message) -> str:
    """The Any type URL of a message class (importing the class also registers it for json_format)."""
    return f"type.googleapis.com/{message.DESCRIPTOR.full_name}"


ADMIN_PORT = 15000  # envoy_bootstrap.json: admin on 127.0.0.1:15000 (ProxyConfig.proxyAdminPort)
STATUS_PORT = 15020  # ProxyConfig.statusPort: the agent's own status server
ENVOY_STATUS_PORT = 15021  # options.go ENVOY_STATUS_PORT: Envoy's listener forwarding /healthz/ready to the agent
ENVOY_PROMETHEUS_PORT = 15090  # options.go ENVOY_PROMETHEUS_PORT: Envoy's listener exposing /stats/prometheus
#: The agent's xDS proxy socket and its SDS socket, relative to the proxy's working directory as Istio writes them
#: (pilot/cmd/pilot-agent/options/agent.go: ConfigPath + "XDS"; pkg/security/security.go WorkloadIdentityPath + "/socket").
XDS_SOCKET = "./etc/istio/proxy/XDS"
SDS_SOCKET = "./var/run/secrets/workload-spiffe-uds/socket"
#: envoy_bootstrap.json's stats_matcher inclusion list: the only stats Envoy keeps besides the per-request ones
#: Istio's telemetry adds (``reporter=``); everything else is dropped to keep memory flat.
STATS_INCLUSION = ({"prefix": "reporter="}, {"prefix": "cluster_manager"}, {"prefix": "listener_manager"}, {"prefix": "server"},
                   {"prefix": "cluster.xds-grpc"}, {"prefix": "wasm"}, {"suffix": "rbac.allowed"}, {"suffix": "rbac.denied"},
                   {"suffix": "shadow_allowed"}, {"suffix": "shadow_denied"}, {"safe_regex": {"regex": r"vhost\..*\.route\..*"}},
                   {"prefix": "component"}, {"prefix": "istio"})
#: A few of envoy_bootstrap.json's stats_tags: how Prometheus labels are cut out of Envoy's flat stat names.
STATS_TAGS = ({"tag_name": "cluster_name", "regex": r"^cluster(\.(.+);)"}, {"tag_name": "response_code", "regex": r"_rq(_(\d{3}))$"},
              {"tag_name": "response_code_class", "regex": r"_rq(_(\dxx))$"}, {"tag_name": "tcp_prefix", "regex": r"^tcp\.((.*?)\.)\w+?$"})
_HTTP2 = {http_protocol_options_pb2.HttpProtocolOptions.DESCRIPTOR.full_name: {
    "@type": _type_url(http_protocol_options_pb2.HttpProtocolOptions), "explicit_http_config": {"http2_protocol_options": {}}}}


@dataclass(frozen=True)
class ProxyNode:
    """A sidecar's identity as istiod sees it. ``domain_suffix`` is the cluster's DNS domain;
    ``meta`` holds extra ``ISTIO_META_*`` values (without the prefix), as the injector sets them."""

    pod: str
    namespace: str
    ip: str
    service_account: str = "default"
    cluster_id: str = "Kubernetes"  # ISTIO_META_CLUSTER_ID, the injector's default (values.global.multiCluster.clusterName)
    mesh_id: str = "cluster.local"  # ISTIO_META_MESH_ID, defaults to the trust domain
    domain_suffix: str = "cluster.local"
    istio_version: str = "1.30.3"
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def dns_domain(self) -> str:
        """``<ns>.svc.<domain>``: the proxy's DNS domain, the node id's last part and the DNS proxy's search domain."""
        return f"{self.namespace}.svc.{self.domain_suffix}"

    @property
    def id(self) -> str:
        """pkg/bootstrap/config.go: ``<type>~<ip>~<pod>.<ns>~<dns domain>``; istiod parses it back (model.ParseServiceNodeWithMetadata)."""
        return f"sidecar~{self.ip}~{self.pod}.{self.namespace}~{self.dns_domain}"

    @property
    def cluster(self) -> str:
        """``<name>.<ns>``, the name being the workload's (ISTIO_META_WORKLOAD_NAME) or else ``istio-proxy``
        (pkg/bootstrap/config.go serviceClusterOrDefault; an ``app`` pod label would come first, and meshlab's
        nodes carry no labels)."""
        return f"{self.meta.get('WORKLOAD_NAME') or 'istio-proxy'}.{self.namespace}"

    def metadata(self) -> dict:
        """The node metadata: what istiod reads to build this proxy's configuration (the ports it must not
        capture, its identity, its mesh and cluster), with Istio's keys."""
        return {"CLUSTER_ID": self.cluster_id, "MESH_ID": self.mesh_id, "NAME": self.pod, "NAMESPACE": self.namespace,
                "SERVICE_ACCOUNT": self.service_account, "INSTANCE_IPS": ",".join([self.ip, "127.0.0.1", "::1"]),
                "ISTIO_VERSION": self.istio_version, "ENVOY_STATUS_PORT": ENVOY_STATUS_PORT, "ENVOY_PROMETHEUS_PORT": ENVOY_PROMETHEUS_PORT,
                "WORKLOAD_IDENTITY_SOCKET_FILE": "socket", **self.meta}


def _static_cluster(name: str, address: dict, connect_timeout: str, http2: bool) -> dict:
    """A STATIC cluster with one endpoint; ``alt_stat_name`` ends in ``;`` so the cluster_name tag regex cuts it out."""
    cluster = {"name": name, "alt_stat_name": f"{name};", "type": "STATIC", "connect_timeout": connect_timeout, "lb_policy": "ROUND_ROBIN",
               "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}]}}
    if http2:  # gRPC needs HTTP/2 to the agent's xDS and SDS servers
        cluster["typed_extension_protocol_options"] = _HTTP2
    return cluster


def _loopback(port: int) -> dict:
    return {"socket_address": {"protocol": "TCP", "address": "127.0.0.1", "port_value": port}}


def _forwarding_listener(port: int, stat_prefix: str, path: str, cluster: str) -> dict:
    """A listener on all addresses that forwards one path prefix to one cluster (15090 -> admin, 15021 -> agent).
    It is exempt from the global connection limit and the overload manager, so probes work under load."""
    manager = {"@type": _type_url(http_connection_manager_pb2.HttpConnectionManager),
               "codec_type": "AUTO", "stat_prefix": stat_prefix,
               "route_config": {"virtual_hosts": [{"name": "backend", "domains": ["*"], "routes": [{"match": {"prefix": path}, "route": {"cluster": cluster}}]}]},
               "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": _type_url(router_pb2.Router)}}]}
    return {"name": f"0.0.0.0_{port}", "address": {"socket_address": {"protocol": "TCP", "address": "0.0.0.0", "port_value": port}},
            "ignore_global_conn_limit": True, "bypass_overload_manager": True,
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}]}


def _bootstrap_dict(node: ProxyNode) -> dict:
    ads = {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}
    return {
        "node": {"id": node.id, "cluster": node.cluster, "metadata": node.metadata()},
        "admin": {"address": _loopback(ADMIN_PORT)},
        # Delta ADS over the agent's socket; the node is sent once (set_node_on_first_message_only).
        "dynamic_resources": {"lds_config": ads, "cds_config": ads, "ads_config": {
            "api_type": "DELTA_GRPC", "set_node_on_first_message_only": True, "transport_api_version": "V3",
            "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]}},
        "static_resources": {
            "clusters": [_static_cluster("prometheus_stats", _loopback(ADMIN_PORT), "0.250s", http2=False),
                         _static_cluster("agent", _loopback(STATUS_PORT), "0.250s", http2=False),
                         _static_cluster("sds-grpc", {"pipe": {"path": SDS_SOCKET}}, "1s", http2=True),
                         _static_cluster("xds-grpc", {"pipe": {"path": XDS_SOCKET}}, "1s", http2=True)],
            "listeners": [_forwarding_listener(ENVOY_PROMETHEUS_PORT, "stats", "/stats/prometheus", "prometheus_stats"),
                          _forwarding_listener(ENVOY_STATUS_PORT, "agent", "/healthz/ready", "agent")]},
        "stats_config": {"use_all_default_tags": False, "stats_tags": list(STATS_TAGS),
                         "stats_matcher": {"inclusion_list": {"patterns": list(STATS_INCLUSION)}}},
    }


def bootstrap(node: ProxyNode) -> bootstrap_pb2.Bootstrap:
    """The bootstrap as Envoy's own message type: parsing it is what proves the field names and types are Envoy's."""
    return json_format.ParseDict(_bootstrap_dict(node), bootstrap_pb2.Bootstrap())


def bootstrap_json(node: ProxyNode) -> str:
    """The bootstrap file (``etc/istio/proxy/envoy-rev.json`` in Istio), with Envoy's proto field names."""
    return json.dumps(json_format.MessageToDict(bootstrap(node), preserving_proto_field_name=True), indent=2)

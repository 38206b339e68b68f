"""A management plane over many meshes: an intent written once, translated into the Istio resources
each cluster needs.

The hierarchy is Tetrate Service Bridge's (TSB), with its kinds and field names, read from the YAML
``tctl apply`` takes (API reference at docs.tetrate.io/service-bridge, pages tsb/v2, tsb/types/v2,
tsb/security/v2/security_setting, tsb/traffic/v2/traffic_setting, tsb/gateway/v2/tier1_gateway). An
Organization holds Tenants; a Tenant holds Workspaces, each owning namespaces across clusters
(``namespaceSelector.names``: ``c1/ns1``, ``*/ns1``, ``c1/*``, ``*/*``, ``c1/ns-*``); a Workspace holds
groups that narrow its namespaces for one concern: traffic, security and gateway groups (kind ``Group``
of ``traffic.``, ``security.`` and ``gateway.tsb.tetrate.io/v2``). Settings carry the intent: a
WorkspaceSetting's ``defaultSecuritySetting`` and ``defaultTrafficSetting`` for the whole workspace, a
SecuritySetting or TrafficSetting for one group, which replaces the workspace default field by field
(TSB's default REPLACE propagation). A Tier1Gateway in a gateway group spreads a hostname over clusters.

Taken from TSB: the kinds, fields and enums (``authenticationSettings.trafficMode`` UNSET, OPTIONAL,
REQUIRED; ``authorization.mode`` UNSET, NAMESPACE, GROUP, WORKSPACE, CLUSTER, DISABLED, CUSTOM, RULES
with ``serviceAccounts`` ``ns/sa``, ``ns/*``, ``./*`` and ``rules`` ``allow``/``deny`` from/to FQNs and
``denyAll``; ``reachability.mode`` UNSET (treated as CLUSTER), NAMESPACE, GROUP, WORKSPACE, CLUSTER,
CUSTOM with ``hosts`` ``ns/fqdn``, directly under a TrafficSetting's spec in TSB's pages up to 1.10
and under ``spec.outbound`` from 1.11: both are read), the Cluster fields ``trustDomain``, ``network``,
``tier1Cluster``, the one-setting-per-workspace and per-traffic-group rule, and the annotations
``tsb.tetrate.io/organization``, ``tenant``, ``workspace``, ``securityGroup``/``trafficGroup``/
``gatewayGroup`` that mark Istio objects generated for TSB (tsb/types/v2 ObjectMeta).

meshlab's simplifications (TSB's generator is not public, so exactly what it writes is unknown): the
Istio resources are the smallest valid ones that enforce the documented meaning, named after the setting
that caused them; a namespace belongs to one workspace and to one group of each kind (meshlab refuses an
overlap instead of guessing a winner); ``configMode`` BRIDGED only; a RULES rule's ``to`` is the setting's
own workspace or group; one SecuritySetting per security group; an external server without ``clusters``
goes to every cluster that has a gateway address, with equal weights; the tier-1 gateway reaches each
tier-2 gateway on port 15443 with Istio mutual TLS. TenantSetting, OrganizationSetting, IngressGateway
and the many other TSB fields (resilience, egress, waf, ...) are refused by name, never ignored.

The Istio side (istio.io/api v1.30.8): PeerAuthentication ``mtls.mode`` STRICT or PERMISSIVE; an
AuthorizationPolicy's ``principals`` are ``<trust domain>/ns/<namespace>/sa/<service account>``, without
``spiffe://``, with ``*`` as prefix or suffix wildcard, and ``spec: {}`` allows nothing
(security/v1beta1/authorization_policy.proto). istiod reads trust domain ``cluster.local`` in a
principal as "this cluster's own" (pilot/pkg/security/trustdomain/bundle.go), so a principal for a
workload in another cluster names that cluster's trust domain: each policy lists every trust domain
its callers live in, which is why a fleet with one trust domain per cluster grows policies with it.

    HierarchyError  YAML meshlab cannot read as TSB's: the resource, the field path, what is accepted
    TranslateError  a hierarchy that cannot be placed on the clusters given: which resource, why
    Cluster         one onboarded cluster: name, namespaces, trustDomain, network, tier1Cluster, gateway address
    fleet           a tier-1 cluster and n application clusters alike, for the fan-out widget
    NamespaceSelector, Workspace, Group, Rule, Authorization, SecuritySetting, TrafficSetting,
    ExternalServer, Tier1Gateway   the hierarchy's parts, as TSB names them
    Hierarchy       an Organization's tenants, workspaces, groups, settings, gateways; .parse(yaml), .fqn
    translate       hierarchy + clusters -> the Istio resources each cluster gets
    FanOut, fan_out TSB resources written once vs Istio resources per cluster, in total and by kind
    EXAMPLE         the book's hierarchy: strict mTLS, one workspace called by another only, a tier-1 gateway
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import yaml

from meshlab import yamlfields
from meshlab.identity.spiffeid import SpiffeIdError, TrustDomain
from meshlab.scoping.sidecar import EgressListener, Sidecar, is_dns1123_label, validate, validate_egress_host

#: TSB's API groups and the kinds meshlab reads from each (a Group's concern is its API group).
KINDS = {"api.tsb.tetrate.io/v2": ("Organization", "Tenant", "Workspace", "WorkspaceSetting"),
         "traffic.tsb.tetrate.io/v2": ("Group", "TrafficSetting"),
         "security.tsb.tetrate.io/v2": ("Group", "SecuritySetting"),
         "gateway.tsb.tetrate.io/v2": ("Group", "Tier1Gateway")}
GROUP_CONCERNS = {"traffic.tsb.tetrate.io/v2": "traffic", "security.tsb.tetrate.io/v2": "security", "gateway.tsb.tetrate.io/v2": "gateway"}
#: The annotation each concern's group is named in on a generated Istio object (tsb/types/v2 ObjectMeta).
GROUP_ANNOTATIONS = {"traffic": "tsb.tetrate.io/trafficGroup", "security": "tsb.tetrate.io/securityGroup", "gateway": "tsb.tetrate.io/gatewayGroup"}
#: TSB kinds meshlab knows of but does not translate: refused by name.
UNMODELLED_KINDS = ("TenantSetting", "OrganizationSetting", "IngressGateway", "Gateway", "EgressGateway", "ServiceRoute",
                    "ServiceSecuritySetting", "Cluster")
TRAFFIC_MODES = ("UNSET", "OPTIONAL", "REQUIRED")  # SecuritySetting.AuthenticationMode
AUTHORIZATION_MODES = ("UNSET", "NAMESPACE", "GROUP", "WORKSPACE", "CLUSTER", "DISABLED", "CUSTOM", "RULES")
REACHABILITY_MODES = ("UNSET", "NAMESPACE", "GROUP", "WORKSPACE", "CLUSTER", "CUSTOM")
TLS_MODES = ("DISABLED", "SIMPLE")  # of TSB's ServerTLSSettings modes, those meshlab translates
#: TrafficMode -> PeerAuthentication mtls.mode; UNSET writes nothing (Istio's own default is PERMISSIVE).
PEER_AUTHENTICATION = {"REQUIRED": "STRICT", "OPTIONAL": "PERMISSIVE"}
#: tsb/types/v2 NamespaceSelector's validation rule for each name.
NAMESPACE_NAME = re.compile(r"^(\*|[^/*]+)/(\*|[^/*]+\*?)$")
#: tsb/security/v2 AuthorizationSettings.serviceAccounts' validation rule.
SERVICE_ACCOUNT = re.compile(r"^\./\*$|^[^.*]+/[*]{1}$|^[^.*]+/[^*]+$")
FQN = re.compile(r"^organizations/([^/]+)/tenants/([^/]+)(?:/workspaces/([^/]+)(?:/securitygroups/([^/]+))?)?$")
DEFAULT_TRUST_DOMAIN = "cluster.local"
CLUSTER_LABEL = "topology.istio.io/cluster"  # the label istiod gives every endpoint of a cluster
TIER2_PORT = 15443  # meshlab's choice: the port Istio's east-west gateways take cross-cluster mTLS on
#: Order of the generated resources within a namespace.
ISTIO_KINDS = ("PeerAuthentication", "AuthorizationPolicy", "Sidecar", "Gateway", "VirtualService", "DestinationRule", "ServiceEntry")


class HierarchyError(ValueError):
    """A document meshlab cannot read as part of a TSB hierarchy; the message names the resource, the
    field path and what is accepted."""


class TranslateError(ValueError):
    """A hierarchy that cannot be placed on the clusters given; the message names the resource and why."""


@dataclass(frozen=True)
class Cluster:
    """A cluster onboarded to the management plane (TSB's Cluster: ``trustDomain``, ``network``,
    ``tier1Cluster``). ``namespaces`` are those its control plane reports; ``gateway_address`` is where
    other clusters reach its tier-2 gateway (what TSB learns from the cluster, given here)."""

    name: str
    namespaces: tuple[str, ...]
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    network: str = ""
    tier1_cluster: bool = False
    gateway_address: str = ""

    def __post_init__(self) -> None:
        if not is_dns1123_label(self.name) or self.name != self.name.lower():
            raise TranslateError(f"Cluster {self.name!r}: a cluster name is a lower-case DNS-1123 label (a-z, 0-9, '-')")
        for namespace in self.namespaces:
            if not is_dns1123_label(namespace) or namespace != namespace.lower():
                raise TranslateError(f"Cluster {self.name}: namespace {namespace!r} is not a lower-case DNS-1123 label")
        try:
            TrustDomain(self.trust_domain)
        except SpiffeIdError as error:
            raise TranslateError(f"Cluster {self.name}: trustDomain {self.trust_domain!r}: {error}") from None
        if self.gateway_address:
            try:
                ipaddress.ip_address(self.gateway_address)
            except ValueError:
                raise TranslateError(f"Cluster {self.name}: gateway address {self.gateway_address!r} is not an IP address") from None


def fleet(count: int, namespaces: tuple[str, ...], shared_trust_domain: bool = True) -> list[Cluster]:
    """A tier-1 cluster ``tier1`` (namespace ``tier1``) and ``count`` application clusters ``c01``...
    with the same ``namespaces``, gateway addresses in 198.51.100.0/24 (RFC 5737's documentation range),
    and one trust domain for all (``cluster.local``) or one each (``c01.example``...)."""
    if not 1 <= count <= 250:
        raise TranslateError(f"fleet: count {count!r} is not in 1..250")
    names = [f"c{i:02d}" for i in range(1, count + 1)]
    trust = {name: DEFAULT_TRUST_DOMAIN if shared_trust_domain else f"{name}.example" for name in ["tier1", *names]}
    return [Cluster("tier1", ("tier1",), trust["tier1"], tier1_cluster=True)] + [
        Cluster(name, tuple(namespaces), trust[name], gateway_address=f"198.51.100.{i}") for i, name in enumerate(names, start=1)]


# -- the hierarchy -----------------------------------------------------------------------------

@dataclass(frozen=True)
class NamespaceSelector:
    """``names`` of the form ``cluster/namespace``; ``*`` for any cluster or namespace, ``ns-*`` a prefix."""

    names: tuple[str, ...]

    def selects(self, cluster: str, namespace: str) -> bool:
        for name in self.names:
            want_cluster, want_namespace = name.split("/")
            if want_cluster not in ("*", cluster):
                continue
            if want_namespace == namespace or want_namespace == "*" or (want_namespace.endswith("*") and namespace.startswith(want_namespace[:-1])):
                return True
        return False


@dataclass(frozen=True)
class Workspace:
    tenant: str
    name: str
    selector: NamespaceSelector


@dataclass(frozen=True)
class Group:
    """A traffic, security or gateway group (``concern``) of a workspace."""

    concern: str
    tenant: str
    workspace: str
    name: str
    selector: NamespaceSelector


@dataclass(frozen=True)
class Rule:
    """Requests from the workloads under ``source`` to those under ``target`` (resource FQNs)."""

    source: str
    target: str


@dataclass(frozen=True)
class Authorization:
    mode: str = "UNSET"
    service_accounts: tuple[str, ...] = ()
    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    deny_all: bool = False


@dataclass(frozen=True)
class SecuritySetting:
    """A SecuritySetting of a security group, or (``group`` None) a WorkspaceSetting's default one."""

    tenant: str
    workspace: str
    group: str | None
    name: str
    traffic_mode: str = "UNSET"
    authorization: Authorization = Authorization()


@dataclass(frozen=True)
class TrafficSetting:
    """A TrafficSetting of a traffic group, or (``group`` None) a WorkspaceSetting's default one."""

    tenant: str
    workspace: str
    group: str | None
    name: str
    reachability: str = "UNSET"
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExternalServer:
    """A hostname the tier-1 gateway serves, and the clusters (name, weight) it sends it to."""

    name: str
    hostname: str
    port: int
    tls_mode: str = "DISABLED"
    secret_name: str = ""
    clusters: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Tier1Gateway:
    tenant: str
    workspace: str
    group: str
    name: str
    namespace: str  # workloadSelector.namespace: where the gateway's pods run
    labels: dict[str, str] = field(default_factory=dict)
    servers: tuple[ExternalServer, ...] = ()


@dataclass(frozen=True)
class Hierarchy:
    """One Organization's tree; ``written`` counts the TSB resources it was read from."""

    organization: str
    tenants: tuple[str, ...]
    workspaces: tuple[Workspace, ...]
    groups: tuple[Group, ...] = ()
    security: tuple[SecuritySetting, ...] = ()
    traffic: tuple[TrafficSetting, ...] = ()
    tier1_gateways: tuple[Tier1Gateway, ...] = ()
    written: int = 0

    def fqn(self, tenant: str, workspace: str | None = None, group: str | None = None) -> str:
        """TSB's fully-qualified name of a tenant, a workspace or a security group."""
        name = f"organizations/{self.organization}/tenants/{tenant}"
        name += f"/workspaces/{workspace}" if workspace else ""
        return name + (f"/securitygroups/{group}" if group else "")

    @classmethod
    def parse(cls, text: str) -> Hierarchy:
        """The hierarchy in ``text`` (YAML documents in any order), checked as a whole: every reference
        resolves, nothing is defined twice. Any problem is a HierarchyError; nothing is half-read."""
        return _Reader(text).hierarchy()


# -- reading YAML ------------------------------------------------------------------------------

#: The metadata each kind carries, in order (each required).
SCOPES = {"Organization": ("name",), "Tenant": ("organization", "name"), "Workspace": ("organization", "tenant", "name"),
          "WorkspaceSetting": ("organization", "tenant", "workspace", "name"), "Group": ("organization", "tenant", "workspace", "name"),
          "SecuritySetting": ("organization", "tenant", "workspace", "group", "name"),
          "TrafficSetting": ("organization", "tenant", "workspace", "group", "name"),
          "Tier1Gateway": ("organization", "tenant", "workspace", "group", "name")}
DESCRIPTIVE = ("displayName", "description")
READERS = {"Organization": "_organization", "Tenant": "_tenant", "Workspace": "_workspace", "WorkspaceSetting": "_workspace_setting",
           "Group": "_group", "SecuritySetting": "_security_setting", "TrafficSetting": "_traffic_setting", "Tier1Gateway": "_tier1_gateway"}


def _mapping(value, where: str) -> dict:
    return yamlfields.mapping(value, where, HierarchyError)


def _known(values: dict, accepted: tuple[str, ...], where: str) -> None:
    yamlfields.known(values, accepted, where, HierarchyError, "untranslated field")


def _strings(value, where: str) -> tuple[str, ...]:
    return yamlfields.string_list(value, where, HierarchyError)


def _enum(values: dict, key: str, accepted: tuple[str, ...], where: str) -> str:
    value = values.get(key, accepted[0])
    if value not in accepted:
        raise HierarchyError(f"{where}.{key}: {value!r} is not one of {', '.join(accepted)}")
    return value


def _selector(spec: dict, where: str) -> NamespaceSelector:
    raw = _mapping(spec.get("namespaceSelector"), f"{where}.namespaceSelector")
    _known(raw, ("names",), f"{where}.namespaceSelector")
    names = _strings(raw.get("names"), f"{where}.namespaceSelector.names")
    if not names:
        raise HierarchyError(f"{where}.namespaceSelector.names: at least one name is required (cluster/namespace, */ns, c1/*, c1/ns-*)")
    for name in names:
        if not NAMESPACE_NAME.match(name):
            raise HierarchyError(f"{where}.namespaceSelector.names: {name!r} is not cluster/namespace; accepted: c1/ns1, */ns1, c1/*, */*, c1/ns-*")
    return NamespaceSelector(names)


def _rules(value, where: str) -> tuple[Rule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise HierarchyError(f"{where}: expected a list of rules (from.fqn, to.fqn), got {value!r}")
    rules = []
    for index, raw in enumerate(value):
        at = f"{where}[{index}]"
        raw = _mapping(raw, at)
        _known(raw, ("from", "to"), at)
        ends = []
        for end in ("from", "to"):
            fqn = _mapping(raw.get(end), f"{at}.{end}").get("fqn")
            if not isinstance(fqn, str) or not FQN.match(fqn):
                raise HierarchyError(f"{at}.{end}.fqn: {fqn!r} is not the FQN of a tenant, workspace or security group "
                                     "(organizations/o/tenants/t[/workspaces/w[/securitygroups/g]])")
            ends.append(fqn)
        rules.append(Rule(*ends))
    return tuple(rules)


def _security(spec: dict, where: str) -> tuple[str, Authorization]:
    _known(spec, ("authenticationSettings", "authorization"), where)
    authentication = _mapping(spec.get("authenticationSettings"), f"{where}.authenticationSettings")
    _known(authentication, ("trafficMode",), f"{where}.authenticationSettings")
    traffic_mode = _enum(authentication, "trafficMode", TRAFFIC_MODES, f"{where}.authenticationSettings")
    raw = _mapping(spec.get("authorization"), f"{where}.authorization")
    _known(raw, ("mode", "serviceAccounts", "rules"), f"{where}.authorization")
    mode = _enum(raw, "mode", AUTHORIZATION_MODES, f"{where}.authorization")
    accounts = _strings(raw.get("serviceAccounts"), f"{where}.authorization.serviceAccounts")
    for account in accounts:
        if not SERVICE_ACCOUNT.match(account):
            raise HierarchyError(f"{where}.authorization.serviceAccounts: {account!r} is not ns/sa; accepted: ns1/sa1, ns1/*, ./*")
    if accounts and mode != "CUSTOM":
        raise HierarchyError(f"{where}.authorization.serviceAccounts: only read when mode is CUSTOM, mode is {mode}")
    rules = _mapping(raw.get("rules"), f"{where}.authorization.rules")
    _known(rules, ("allow", "deny", "denyAll"), f"{where}.authorization.rules")
    if rules and mode != "RULES":
        raise HierarchyError(f"{where}.authorization.rules: only read when mode is RULES, mode is {mode}")
    deny_all = rules.get("denyAll", False)
    if not isinstance(deny_all, bool):
        raise HierarchyError(f"{where}.authorization.rules.denyAll: expected true or false, got {deny_all!r}")
    authorization = Authorization(mode, accounts, _rules(rules.get("allow"), f"{where}.authorization.rules.allow"),
                                  _rules(rules.get("deny"), f"{where}.authorization.rules.deny"), deny_all)
    return traffic_mode, authorization


def _traffic(spec: dict, where: str) -> tuple[str, tuple[str, ...]]:
    """``reachability``, read where TSB's pages put it: under ``spec`` (up to 1.10) or ``spec.outbound`` (1.11 on)."""
    _known(spec, ("reachability", "outbound"), where)
    if "outbound" in spec:
        if "reachability" in spec:
            raise HierarchyError(f"{where}: reachability is given twice, directly and under outbound; give one")
        spec, where = _mapping(spec["outbound"], f"{where}.outbound"), f"{where}.outbound"
        _known(spec, ("reachability",), where)
    at = f"{where}.reachability"
    raw = _mapping(spec.get("reachability"), at)
    _known(raw, ("mode", "hosts"), at)
    mode = _enum(raw, "mode", REACHABILITY_MODES, at)
    hosts = _strings(raw.get("hosts"), f"{at}.hosts")
    if hosts and mode != "CUSTOM":
        raise HierarchyError(f"{at}.hosts: only read when mode is CUSTOM, mode is {mode}")
    if mode == "CUSTOM" and not hosts:
        raise HierarchyError(f"{at}.hosts: mode CUSTOM needs hosts (ns/fqdn, ./*, ns1/*, */svc1.com)")
    for host in hosts:  # the Sidecar's egress host rules (meshlab.scoping.sidecar), which these become
        problems = validate_egress_host(host)
        if problems:
            raise HierarchyError(f"{at}.hosts: {host!r}: {problems[0]}")
    return mode, hosts


def _servers(value, where: str) -> tuple[ExternalServer, ...]:
    if not isinstance(value, list) or not value:
        raise HierarchyError(f"{where}: at least one external server (name, hostname, port, tls, clusters) is required")
    servers = []
    for index, raw in enumerate(value):
        at = f"{where}[{index}]"
        raw = _mapping(raw, at)
        _known(raw, ("name", "hostname", "port", "tls", "clusters"), at)
        name, hostname, port = raw.get("name"), raw.get("hostname"), raw.get("port")
        if not isinstance(name, str) or not is_dns1123_label(name):
            raise HierarchyError(f"{at}.name: {name!r} is not a DNS-1123 label")
        if not isinstance(hostname, str) or "*" in hostname or not hostname or any(not is_dns1123_label(p) for p in hostname.split(".")):
            raise HierarchyError(f"{at}.hostname: {hostname!r} is not a fully-qualified host name without wildcards")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise HierarchyError(f"{at}.port: {port!r} is not a port number 1..65535")
        tls = _mapping(raw.get("tls"), f"{at}.tls")
        _known(tls, ("mode", "secretName"), f"{at}.tls")
        tls_mode = _enum(tls, "mode", TLS_MODES, f"{at}.tls")
        secret = tls.get("secretName", "")
        if (tls_mode == "SIMPLE") != bool(secret) or not isinstance(secret, str):
            raise HierarchyError(f"{at}.tls.secretName: needed with mode SIMPLE (the certificate's secret) and only then")
        clusters = []
        for position, target in enumerate(raw.get("clusters") or []):
            target = _mapping(target, f"{at}.clusters[{position}]")
            _known(target, ("name", "weight"), f"{at}.clusters[{position}]")
            weight = target.get("weight", 1)  # meshlab's: a cluster listed without a weight counts 1
            if not isinstance(target.get("name"), str) or isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
                raise HierarchyError(f"{at}.clusters[{position}]: expected a cluster name and a weight 0..100, got {target!r}")
            clusters.append((target["name"], weight))
        if clusters and not sum(weight for _, weight in clusters):
            raise HierarchyError(f"{at}.clusters: the weights add up to 0, so no cluster would get a request")
        servers.append(ExternalServer(name, hostname, port, tls_mode, secret, tuple(clusters)))
    if len({s.name for s in servers}) != len(servers):
        raise HierarchyError(f"{where}: external server names must be unique (they name the gateway's ports)")
    return tuple(servers)


class _Reader:
    """One pass over the documents, then the cross-references; ``hierarchy()`` returns the whole or raises."""

    def __init__(self, text: str) -> None:
        try:
            self.documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as error:
            raise HierarchyError(f"not valid YAML: {error}") from None
        self.seen: dict[tuple, str] = {}
        self.organizations: list[tuple[str, str]] = []  # (where, metadata.organization) of every resource but the Organization
        self.parts: dict[str, list] = {part: [] for part in ("org", "tenant", "workspace", "group", "security", "traffic", "tier1")}

    def hierarchy(self) -> Hierarchy:
        for index, document in enumerate(self.documents):
            self._read(index + 1, document)
        parts = self.parts
        if len(parts["org"]) != 1:
            raise HierarchyError(f"exactly one Organization (api.tsb.tetrate.io/v2) is required, found {len(parts['org'])}")
        hierarchy = Hierarchy(parts["org"][0], tuple(parts["tenant"]), tuple(parts["workspace"]), tuple(parts["group"]),
                              tuple(parts["security"]), tuple(parts["traffic"]), tuple(parts["tier1"]), len(self.documents))
        for where, organization in self.organizations:
            if organization != hierarchy.organization:
                raise HierarchyError(f"{where}: metadata.organization {organization!r} is not the Organization {hierarchy.organization!r}")
        self._check_references(hierarchy)
        return hierarchy

    def _define(self, key: tuple, where: str) -> None:
        if key in self.seen:
            raise HierarchyError(f"{where}: defined twice (also {self.seen[key]})")
        self.seen[key] = where

    def _read(self, number: int, document) -> None:
        if not isinstance(document, dict):
            raise HierarchyError(f"document {number}: expected a resource (apiVersion, kind, metadata, spec), got {type(document).__name__}")
        api, kind = document.get("apiVersion"), document.get("kind")
        metadata = _mapping(document.get("metadata"), f"document {number}: metadata")
        where = f"{kind or '(no kind)'} {metadata.get('name', '(no name)')} (document {number})"
        if kind in UNMODELLED_KINDS:
            raise HierarchyError(f"{where}: kind {kind} is TSB's but not translated by meshlab; accepted: {_accepted_kinds()}")
        if api not in KINDS or kind not in KINDS[api]:
            raise HierarchyError(f"{where}: apiVersion {api!r} kind {kind!r} is not read here; accepted: {_accepted_kinds()}")
        _known(document, ("apiVersion", "kind", "metadata", "spec"), where)
        scope = SCOPES[kind]
        _known(metadata, scope + DESCRIPTIVE, f"{where}: metadata")
        for key in scope:
            value = metadata.get(key)
            if not isinstance(value, str) or not is_dns1123_label(value) or value != value.lower():
                raise HierarchyError(f"{where}: metadata.{key} is required, a lower-case DNS-1123 label; got {value!r}")
        self._define((api if kind == "Group" else "", kind, *[metadata[key] for key in scope if key != "organization"]), where)
        if kind != "Organization":
            self.organizations.append((where, metadata["organization"]))
        getattr(self, READERS[kind])(api, metadata, _mapping(document.get("spec"), f"{where}: spec"), f"{where}: spec")

    def _organization(self, api: str, metadata: dict, spec: dict, at: str) -> None:
        _known(spec, DESCRIPTIVE, at)
        self.parts["org"].append(metadata["name"])

    def _tenant(self, api: str, metadata: dict, spec: dict, at: str) -> None:
        _known(spec, DESCRIPTIVE, at)
        self.parts["tenant"].append(metadata["name"])

    def _workspace(self, api: str, metadata: dict, spec: dict, at: str) -> None:
        _known(spec, ("namespaceSelector", *DESCRIPTIVE), at)
        self.parts["workspace"].append(Workspace(metadata["tenant"], metadata["name"], _selector(spec, at)))

    def _group(self, api: str, metadata: dict, spec: dict, at: str) -> None:
        _known(spec, ("namespaceSelector", "configMode", *DESCRIPTIVE), at)
        if spec.get("configMode", "BRIDGED") != "BRIDGED":
            raise HierarchyError(f"{at}.configMode: {spec['configMode']!r}: meshlab translates BRIDGED groups only "
                                 "(a DIRECT group holds Istio resources written by hand)")
        self.parts["group"].append(Group(GROUP_CONCERNS[api], metadata["tenant"], metadata["workspace"], metadata["name"], _selector(spec, at)))

    def _workspace_setting(self, api: str, metadata: dict, spec: dict, at: str) -> None:
        _known(spec, ("defaultSecuritySetting", "defaultTrafficSetting"), at)
        self._define(("one WorkspaceSetting per workspace", metadata["tenant"], metadata["workspace"]), at.removesuffix(": spec"))
        scope = (metadata["tenant"], metadata["workspace"], None, metadata["name"])
        if "defaultSecuritySetting" in spec:
            where = f"{at}.defaultSecuritySetting"
            self.parts["security"].append(SecuritySetting(*scope, *_security(_mapping(spec["defaultSecuritySetting"], where), where)))
        if "defaultTrafficSetting" in spec:
            where = f"{at}.defaultTrafficSetting"
            self.parts["traffic"].append(TrafficSetting(*scope, *_traffic(_mapping(spec["defaultTrafficSetting"], where), where)))

    def _security_setting(self, api: str, metadata: dict, spec: dict, at: str) -> None:
        scope = (metadata["tenant"], metadata["workspace"], metadata["group"])
        self._define(("one SecuritySetting per security group", *scope), at.removesuffix(": spec"))
        self.parts["security"].append(SecuritySetting(*scope, metadata["name"], *_security(spec, at)))

    def _traffic_setting(self, api: str, metadata: dict, spec: dict, at: str) -> None:
        scope = (metadata["tenant"], metadata["workspace"], metadata["group"])
        self._define(("one TrafficSetting per traffic group", *scope), at.removesuffix(": spec"))
        self.parts["traffic"].append(TrafficSetting(*scope, metadata["name"], *_traffic(spec, at)))

    def _tier1_gateway(self, api: str, metadata: dict, spec: dict, at: str) -> None:
        _known(spec, ("workloadSelector", "externalServers"), at)
        selector = _mapping(spec.get("workloadSelector"), f"{at}.workloadSelector")
        _known(selector, ("namespace", "labels"), f"{at}.workloadSelector")
        namespace, labels = selector.get("namespace"), _mapping(selector.get("labels"), f"{at}.workloadSelector.labels")
        if not isinstance(namespace, str) or not is_dns1123_label(namespace):
            raise HierarchyError(f"{at}.workloadSelector.namespace: required, the namespace of the gateway's pods; got {namespace!r}")
        if not labels or not all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in labels.items()):
            raise HierarchyError(f"{at}.workloadSelector.labels: one or more string labels of the gateway's pods are required")
        self.parts["tier1"].append(Tier1Gateway(metadata["tenant"], metadata["workspace"], metadata["group"], metadata["name"], namespace,
                                                dict(labels), _servers(spec.get("externalServers"), f"{at}.externalServers")))

    def _check_references(self, hierarchy: Hierarchy) -> None:
        tenants, workspaces = set(hierarchy.tenants), {(w.tenant, w.name) for w in hierarchy.workspaces}
        groups = {(g.concern, g.tenant, g.workspace, g.name) for g in hierarchy.groups}
        refs = [(f"Workspace {w.name}", w.tenant, None, None) for w in hierarchy.workspaces]
        refs += [(f"{g.concern} Group {g.name}", g.tenant, g.workspace, None) for g in hierarchy.groups]
        refs += [(f"SecuritySetting {s.name}", s.tenant, s.workspace, ("security", s.group)) for s in hierarchy.security]
        refs += [(f"TrafficSetting {s.name}", s.tenant, s.workspace, ("traffic", s.group)) for s in hierarchy.traffic]
        refs += [(f"Tier1Gateway {t.name}", t.tenant, t.workspace, ("gateway", t.group)) for t in hierarchy.tier1_gateways]
        for what, tenant, workspace, group in refs:
            if tenant not in tenants:
                raise HierarchyError(f"{what}: metadata.tenant {tenant!r} names no Tenant; tenants: {', '.join(sorted(tenants)) or 'none'}")
            if workspace is not None and (tenant, workspace) not in workspaces:
                known = sorted(w for t, w in workspaces if t == tenant)
                raise HierarchyError(f"{what}: metadata.workspace {workspace!r} names no Workspace of tenant {tenant}; "
                                     f"workspaces: {', '.join(known) or 'none'}")
            if group is not None and group[1] is not None and (group[0], tenant, workspace, group[1]) not in groups:
                known = sorted(g for c, t, w, g in groups if (c, t, w) == (group[0], tenant, workspace))
                raise HierarchyError(f"{what}: metadata.group {group[1]!r} names no {group[0]} Group of workspace {workspace}; "
                                     f"{group[0]} groups: {', '.join(known) or 'none'}")


def _accepted_kinds() -> str:
    return "; ".join(f"{api} {', '.join(kinds)}" for api, kinds in KINDS.items())


# -- placing the hierarchy on clusters ---------------------------------------------------------

Place = tuple[str, str]  # (cluster, namespace)
Setting = TypeVar("Setting", SecuritySetting, TrafficSetting)


class _Placement:
    """Which workspace and which group of each concern owns each (cluster, namespace)."""

    def __init__(self, hierarchy: Hierarchy, clusters: list[Cluster]) -> None:
        self.clusters = {c.name: c for c in clusters}
        if len(self.clusters) != len(clusters):
            raise TranslateError(f"cluster names must be unique: {sorted(c.name for c in clusters)}")
        self.workspace_of: dict[Place, Workspace] = {}
        for workspace in hierarchy.workspaces:
            for place in self._selected(workspace.selector):
                other = self.workspace_of.setdefault(place, workspace)
                if other is not workspace:
                    raise TranslateError(f"namespace {place[1]} of cluster {place[0]} is selected by workspaces {other.name} and "
                                         f"{workspace.name}; a namespace belongs to one workspace")
        self.group_of: dict[tuple[str, str, str], Group] = {}
        for group in hierarchy.groups:
            for place in self._selected(group.selector):
                owner = self.workspace_of.get(place)
                if owner is None or (owner.tenant, owner.name) != (group.tenant, group.workspace):
                    continue  # a group narrows its workspace's namespaces
                other = self.group_of.setdefault((group.concern, *place), group)
                if other is not group:
                    raise TranslateError(f"namespace {place[1]} of cluster {place[0]} is in {group.concern} groups {other.name} and "
                                         f"{group.name}; a namespace belongs to one group of each kind")

    def _selected(self, selector: NamespaceSelector) -> list[Place]:
        return [(c.name, ns) for c in self.clusters.values() for ns in c.namespaces if selector.selects(c.name, ns)]

    def places(self, tenant: str, workspace: str | None = None, group: tuple[str, str] | None = None) -> list[Place]:
        """The (cluster, namespace) pairs of a tenant, a workspace, or a workspace's group (concern, name)."""
        found = [p for p, w in self.workspace_of.items() if w.tenant == tenant and workspace in (None, w.name)]
        if group is not None:
            found = [p for p in found if (g := self.group_of.get((group[0], *p))) is not None and g.name == group[1]]
        return sorted(found)

    def service_account(self, account: str, namespace: str, setting: SecuritySetting) -> list[str]:
        """A CUSTOM ``ns/sa`` (``./*``: the policy's own namespace) as principals, one per trust domain
        of the clusters that have that namespace."""
        account_namespace, account_name = account.split("/")
        account_namespace = namespace if account_namespace == "." else account_namespace
        domains = sorted({c.trust_domain for c in self.clusters.values() if account_namespace in c.namespaces})
        if not domains:
            raise TranslateError(f"SecuritySetting {setting.name}: serviceAccounts {account!r} names namespace {account_namespace!r}, "
                                 "which no cluster has")
        return [f"{domain}/ns/{account_namespace}/sa/{account_name}" for domain in domains]

    def principals(self, places: list[Place]) -> list[str]:
        """Every workload of those namespaces, as Istio names peers: ``<trust domain>/ns/<ns>/sa/*``."""
        return sorted({f"{self.clusters[c].trust_domain}/ns/{ns}/sa/*" for c, ns in places})


def _metadata(name: str, namespace: str, hierarchy: Hierarchy, source: SecuritySetting | TrafficSetting | Tier1Gateway, concern: str) -> dict:
    """A generated object's metadata: its name and the ``tsb.tetrate.io/*`` annotations naming its source."""
    annotations = {"tsb.tetrate.io/organization": hierarchy.organization, "tsb.tetrate.io/tenant": source.tenant,
                   "tsb.tetrate.io/workspace": source.workspace}
    if source.group:
        annotations[GROUP_ANNOTATIONS[concern]] = source.group
    return {"name": name, "namespace": namespace, "annotations": annotations}


def _source_name(setting: SecuritySetting | TrafficSetting) -> str:
    """Generated objects are named after the setting's workspace (and group)."""
    return setting.workspace if setting.group is None else f"{setting.workspace}-{setting.group}"


def _inherited(settings: tuple[Setting, ...], place: Place, placement: _Placement, concern: str, sets_it: Callable[[Setting], bool]) -> Setting | None:
    """The setting one field comes from in one namespace: its group's setting if that sets the field
    (``sets_it``), else the workspace default's, else none (TSB's REPLACE propagation, field by field)."""
    workspace = placement.workspace_of[place]
    group = placement.group_of.get((concern, *place))
    for name in ([group.name] if group else []) + [None]:
        for setting in settings:
            if (setting.tenant, setting.workspace, setting.group) == (workspace.tenant, workspace.name, name) and sets_it(setting):
                return setting
    return None


def _policy(name: str, namespace: str, hierarchy: Hierarchy, setting: SecuritySetting, action: str, principals: list[str]) -> dict:
    """An AuthorizationPolicy for every workload of the namespace: ``action`` when the peer is one of
    ``principals``. An ALLOW with no principal allows nothing (``spec: {}``)."""
    spec = {"action": action, "rules": [{"from": [{"source": {"principals": principals}}]}]} if principals else {}
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": _metadata(name, namespace, hierarchy, setting, "security"), "spec": spec}


def _security_resources(hierarchy: Hierarchy, placement: _Placement, place: Place) -> list[dict]:
    resources = []
    authentication = _inherited(hierarchy.security, place, placement, "security", lambda s: s.traffic_mode != "UNSET")
    if authentication is not None:
        resources.append({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                          "metadata": _metadata(_source_name(authentication), place[1], hierarchy, authentication, "security"),
                          "spec": {"mtls": {"mode": PEER_AUTHENTICATION[authentication.traffic_mode]}}})
    authorization = _inherited(hierarchy.security, place, placement, "security", lambda s: s.authorization.mode != "UNSET")
    if authorization is not None:
        resources += _authorization_policies(hierarchy, placement, place, authorization)
    return resources


def _authorization_policies(hierarchy: Hierarchy, placement: _Placement, place: Place, setting: SecuritySetting) -> list[dict]:
    cluster, namespace = place
    mode, scope, name = setting.authorization.mode, (setting.tenant, setting.workspace), _source_name(setting)
    group = placement.group_of.get(("security", *place))
    if mode == "DISABLED":
        return []
    if mode == "RULES":
        return _rule_policies(hierarchy, placement, namespace, setting)
    if mode == "WORKSPACE":
        allowed = placement.principals(placement.places(*scope))
    elif mode == "GROUP" and group is not None:
        allowed = placement.principals(placement.places(*scope, ("security", group.name)))
    elif mode in ("NAMESPACE", "GROUP"):  # GROUP for a namespace in no security group: meshlab reads it as its namespace
        allowed = placement.principals([p for p in placement.places(*scope) if p[1] == namespace])
    elif mode == "CLUSTER":  # identities name trust domains, not clusters: a shared trust domain admits all its clusters
        allowed = [f"{placement.clusters[cluster].trust_domain}/*"]
    else:  # CUSTOM
        allowed = sorted({principal for account in setting.authorization.service_accounts
                          for principal in placement.service_account(account, namespace, setting)})
    return [_policy(name, namespace, hierarchy, setting, "ALLOW", allowed)]


def _rule_policies(hierarchy: Hierarchy, placement: _Placement, namespace: str, setting: SecuritySetting) -> list[dict]:
    """RULES: a DENY policy for the denied sources, an ALLOW policy for the allowed ones (none when no
    rule allows: then everything not denied is allowed), or allow-nothing for ``denyAll``."""
    authorization, name = setting.authorization, _source_name(setting)
    if authorization.deny_all:
        return [_policy(f"{name}-deny-all", namespace, hierarchy, setting, "ALLOW", [])]
    own = hierarchy.fqn(setting.tenant, setting.workspace, setting.group)
    policies = []
    for action, rules in (("DENY", authorization.deny), ("ALLOW", authorization.allow)):
        principals: set[str] = set()
        for rule in rules:
            if rule.target != own:
                raise TranslateError(f"SecuritySetting {setting.name}: to.fqn {rule.target!r} is not the setting's own {own!r}; "
                                     "meshlab translates rules for the workloads the setting applies to")
            organization, tenant, workspace, group = FQN.match(rule.source).groups()
            if organization != hierarchy.organization or tenant not in hierarchy.tenants:
                raise TranslateError(f"SecuritySetting {setting.name}: from.fqn {rule.source!r} names no tenant of {hierarchy.organization}")
            principals.update(placement.principals(placement.places(tenant, workspace, ("security", group) if group else None)))
        if rules and (principals or action == "ALLOW"):
            policies.append(_policy(f"{name}-{action.lower()}", namespace, hierarchy, setting, action, sorted(principals)))
    return policies


def _sidecar(hierarchy: Hierarchy, placement: _Placement, place: Place) -> list[dict]:
    setting = _inherited(hierarchy.traffic, place, placement, "traffic", lambda s: s.reachability != "UNSET")
    if setting is None or setting.reachability == "CLUSTER":
        return []  # Istio's default: the proxy knows every service of the mesh
    group = placement.group_of.get(("traffic", *place))
    scope = (setting.tenant, setting.workspace)
    if setting.reachability == "WORKSPACE":
        hosts = tuple(sorted({f"{ns}/*" for _, ns in placement.places(*scope)}))
    elif setting.reachability == "GROUP" and group is not None:
        hosts = tuple(sorted({f"{ns}/*" for _, ns in placement.places(*scope, ("traffic", group.name))}))
    elif setting.reachability in ("NAMESPACE", "GROUP"):  # GROUP for a namespace in no traffic group: its namespace
        hosts = ("./*",)
    else:  # CUSTOM
        hosts = setting.hosts
    sidecar = Sidecar(_source_name(setting), place[1], egress=(EgressListener(hosts),))
    errors = [f.message for f in validate(sidecar) if f.level == "Error"]
    if errors:
        raise TranslateError(f"TrafficSetting {setting.name}: the Sidecar it needs in {place[1]} is not valid Istio: {errors[0]}")
    resource = sidecar.to_yaml()
    resource["metadata"] = _metadata(sidecar.name, place[1], hierarchy, setting, "traffic")
    return [resource]


def _targets(placement: _Placement, gateway: Tier1Gateway, server: ExternalServer) -> tuple[tuple[str, int], ...]:
    """The clusters (and weights) an external server goes to: those listed, else every cluster that has
    a gateway address (equal weights); each must have a gateway address."""
    reachable = sorted(c.name for c in placement.clusters.values() if c.gateway_address)
    targets = server.clusters or tuple((name, 1) for name in reachable if not placement.clusters[name].tier1_cluster)
    for target, _ in targets:
        if target not in reachable:
            why = "is not among the clusters" if target not in placement.clusters else "has no gateway address"
            raise TranslateError(f"Tier1Gateway {gateway.name}: externalServers {server.name}: cluster {target!r} {why}; "
                                 f"clusters with one: {', '.join(reachable) or 'none'}")
    if not targets:
        raise TranslateError(f"Tier1Gateway {gateway.name}: externalServers {server.name}: no cluster has a gateway address to send it to")
    return targets


def _tier1_resources(hierarchy: Hierarchy, placement: _Placement, gateway: Tier1Gateway) -> dict[str, list[dict]]:
    """Where the tier-1 gateway runs: a Gateway for its external servers, and per server a
    VirtualService splitting the hostname over clusters by weight, a DestinationRule with a subset per
    cluster and Istio mutual TLS, and a ServiceEntry whose endpoints are the clusters' tier-2 gateways."""
    places = placement.places(gateway.tenant, gateway.workspace, ("gateway", gateway.group))
    homes = [c for c, ns in places if ns == gateway.namespace and placement.clusters[c].tier1_cluster]
    if not homes:
        raise TranslateError(f"Tier1Gateway {gateway.name}: no tier-1 cluster (tier1Cluster: true) has namespace {gateway.namespace!r} "
                             f"in gateway group {gateway.group}")
    servers, resources = [], []
    for server in gateway.servers:
        targets = _targets(placement, gateway, server)
        protocol = "HTTPS" if server.tls_mode == "SIMPLE" else "HTTP"
        entry: dict = {"port": {"number": server.port, "name": f"{protocol.lower()}-{server.name}", "protocol": protocol}, "hosts": [server.hostname]}
        if server.tls_mode == "SIMPLE":
            entry["tls"] = {"mode": "SIMPLE", "credentialName": server.secret_name}
        servers.append(entry)
        name = f"{gateway.name}-{server.name}"
        route = [{"destination": {"host": server.hostname, "subset": target, "port": {"number": TIER2_PORT}}, "weight": weight}
                 for target, weight in targets]
        endpoints = []
        for target, _ in targets:
            cluster = placement.clusters[target]
            network = {"network": cluster.network} if cluster.network else {}
            endpoints.append({"address": cluster.gateway_address, "labels": {CLUSTER_LABEL: target}, **network})
        specs = {"VirtualService": {"hosts": [server.hostname], "gateways": [gateway.name], "http": [{"route": route}]},
                 "DestinationRule": {"host": server.hostname, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
                                     "subsets": [{"name": target, "labels": {CLUSTER_LABEL: target}} for target, _ in targets]},
                 "ServiceEntry": {"hosts": [server.hostname], "location": "MESH_INTERNAL", "resolution": "STATIC",
                                  "ports": [{"number": TIER2_PORT, "name": f"http-{server.name}", "protocol": "HTTP"}], "endpoints": endpoints}}
        resources += [{"apiVersion": "networking.istio.io/v1", "kind": kind,
                       "metadata": _metadata(name, gateway.namespace, hierarchy, gateway, "gateway"), "spec": spec} for kind, spec in specs.items()]
    resources.append({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                      "metadata": _metadata(gateway.name, gateway.namespace, hierarchy, gateway, "gateway"),
                      "spec": {"selector": dict(gateway.labels), "servers": servers}})
    return {home: resources for home in homes}


def translate(hierarchy: Hierarchy, clusters: list[Cluster]) -> dict[str, list[dict]]:
    """The Istio resources each cluster gets for the hierarchy's intents, by cluster name (every cluster,
    in the order given; a cluster with nothing to do gets an empty list), each list ordered by
    namespace, kind and name. Raises TranslateError, and returns nothing, if any intent cannot be placed."""
    placement = _Placement(hierarchy, clusters)
    out: dict[str, list[dict]] = {c.name: [] for c in clusters}
    for place in sorted(placement.workspace_of):
        out[place[0]] += _security_resources(hierarchy, placement, place) + _sidecar(hierarchy, placement, place)
    for gateway in hierarchy.tier1_gateways:
        for cluster, resources in _tier1_resources(hierarchy, placement, gateway).items():
            out[cluster] += resources
    order = {kind: index for index, kind in enumerate(ISTIO_KINDS)}
    return {cluster: sorted(resources, key=lambda r: (r["metadata"]["namespace"], order[r["kind"]], r["metadata"]["name"]))
            for cluster, resources in out.items()}


@dataclass(frozen=True)
class FanOut:
    """``written`` TSB resources became ``per_cluster`` Istio resources; ``principals`` counts the
    identities listed across all AuthorizationPolicies, which grows with the trust domains too."""

    clusters: int
    written: int
    per_cluster: dict[str, int]
    by_kind: dict[str, int]
    principals: int

    @property
    def total(self) -> int:
        return sum(self.per_cluster.values())


def fan_out(hierarchy: Hierarchy, clusters: list[Cluster]) -> FanOut:
    """What one translation fans out to, counted from ``translate``'s output."""
    resources = translate(hierarchy, clusters)
    every = [r for rs in resources.values() for r in rs]
    principals = sum(len(source["source"].get("principals", ())) for r in every if r["kind"] == "AuthorizationPolicy"
                     for rule in r["spec"].get("rules", ()) for source in rule.get("from", ()))
    by_kind = Counter(r["kind"] for r in every)
    return FanOut(len(clusters), hierarchy.written, {c: len(rs) for c, rs in resources.items()},
                  {kind: by_kind[kind] for kind in ISTIO_KINDS if by_kind[kind]}, principals)


#: The book's hierarchy: the shop's storefront calls payments; payments is strict mTLS and takes calls
#: from the storefront only; each workspace's proxies know their own workspace (and payments'); a
#: tier-1 gateway in cluster ``tier1`` spreads shop.example.com over every application cluster.
EXAMPLE = """\
apiVersion: api.tsb.tetrate.io/v2
kind: Organization
metadata: {name: acme}
---
apiVersion: api.tsb.tetrate.io/v2
kind: Tenant
metadata: {organization: acme, name: retail}
---
apiVersion: api.tsb.tetrate.io/v2
kind: Workspace
metadata: {organization: acme, tenant: retail, name: payments}
spec:
  namespaceSelector: {names: ["*/payments", "*/ledger"]}
---
apiVersion: api.tsb.tetrate.io/v2
kind: Workspace
metadata: {organization: acme, tenant: retail, name: storefront}
spec:
  namespaceSelector: {names: ["*/shop", "*/web"]}
---
apiVersion: api.tsb.tetrate.io/v2
kind: Workspace
metadata: {organization: acme, tenant: retail, name: edge}
spec:
  namespaceSelector: {names: ["*/tier1"]}
---
apiVersion: api.tsb.tetrate.io/v2
kind: WorkspaceSetting
metadata: {organization: acme, tenant: retail, workspace: payments, name: payments-settings}
spec:
  defaultSecuritySetting:
    authenticationSettings: {trafficMode: REQUIRED}
    authorization:
      mode: RULES
      rules:
        allow:
        - from: {fqn: organizations/acme/tenants/retail/workspaces/storefront}
          to: {fqn: organizations/acme/tenants/retail/workspaces/payments}
  defaultTrafficSetting:
    reachability: {mode: WORKSPACE}
---
apiVersion: api.tsb.tetrate.io/v2
kind: WorkspaceSetting
metadata: {organization: acme, tenant: retail, workspace: storefront, name: storefront-settings}
spec:
  defaultSecuritySetting:
    authenticationSettings: {trafficMode: REQUIRED}
  defaultTrafficSetting:
    reachability: {mode: CUSTOM, hosts: ["./*", "payments/*"]}
---
apiVersion: gateway.tsb.tetrate.io/v2
kind: Group
metadata: {organization: acme, tenant: retail, workspace: edge, name: edge-gateways}
spec:
  namespaceSelector: {names: ["*/tier1"]}
  configMode: BRIDGED
---
apiVersion: gateway.tsb.tetrate.io/v2
kind: Tier1Gateway
metadata: {organization: acme, tenant: retail, workspace: edge, group: edge-gateways, name: shop-tier1}
spec:
  workloadSelector:
    namespace: tier1
    labels: {app: tier1-gateway}
  externalServers:
  - name: shop
    hostname: shop.example.com
    port: 443
    tls: {mode: SIMPLE, secretName: shop-certificate}
"""

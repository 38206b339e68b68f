"""The Gateway API's resources as typed, frozen dataclasses, read from multi-document YAML.

Field names, defaults and limits are the standard channel's CRDs at Gateway API v1.6.1 (the version
Envoy Gateway v1.9.0 pins; config/crd/standard/*.yaml and apis/v1/*_types.go in the
sigs.k8s.io/gateway-api module), declared once per field with ``fields.api``; checks that span
fields are the CRDs' CEL rules (x-kubernetes-validations), in their own words. ``load`` reads every
document, so a bad file names its resource and field, and returns all resources or raises: nothing
is half-read. With ``crds`` (``meshlab.upstream.gatewayapi.crds()``), each document is also
validated by the CRD's own openAPIV3Schema and CEL rules (``meshlab.gateway.schema``).

    ObjectMeta            name, namespace, labels, annotations, creationTimestamp
    GatewayClass          a class of Gateways and the controller that implements it
    Gateway, Listener     where traffic enters: listeners with port, protocol, hostname, allowedRoutes
    HTTPRoute             parentRefs, hostnames, rules of matches, filters and weighted backendRefs
    GRPCRoute             the same for gRPC: matches by service and method
    ReferenceGrant        a namespace's permission for references from another namespace
    Service, Namespace    the core objects backendRefs and allowedRoutes read
    Secret                a Secret's name and type, for an HTTPS listener's certificateRefs
    Resources             everything one YAML holds, with lookups
    load                  YAML text -> Resources, or a GatewayAPIError naming resource and field
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from meshlab.gateway.fields import GatewayAPIError, Pattern, Where, api, parse

GROUP = "gateway.networking.k8s.io"

# Patterns of the CRDs (Gateway API v1.6.1 apis/v1/shared_types.go and object_reference_types.go).
SUBDOMAIN = Pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", "a lower-case RFC 1123 subdomain")
HOSTNAME = Pattern(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                   "a lower-case hostname, optionally with a leading wildcard label '*.'")
GROUP_NAME = Pattern(r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", "an API group (empty for the core group)")
KIND = Pattern(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", "a kind such as Service")
NAMESPACE = Pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "a lower-case RFC 1123 label")
HEADER_NAME = Pattern(r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$", "an HTTP header name (RFC 7230 token)")
PROTOCOL = Pattern(r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]+$",
                   "a protocol name such as HTTP, HTTPS, TLS, TCP, UDP or a domain-prefixed one")
CONTROLLER = Pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$",
                     "a domain-prefixed path such as example.com/gateway-controller")
#: Characters of an Exact or PathPrefix path value (the HTTPPathMatch CEL rule, httproute_types.go).
PATH_CHARACTERS = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$")
#: gRPC service and method names in an Exact GRPCMethodMatch (grpcroute_types.go CEL rules).
GRPC_SERVICE = re.compile(r"(?i)^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$")
GRPC_METHOD = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")

#: libyaml's safe loader when PyYAML has it (about 8 times faster on a thousand routes), else PyYAML's own.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
PORT = {"minimum": 1, "maximum": 65535}
OBJECT_NAME = {"min_length": 1, "max_length": 253}
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")


# --- metadata and references -----------------------------------------------------------------------

@dataclass(frozen=True)
class ObjectMeta:
    IGNORED: ClassVar[Mapping[str, str]] = {key: "set by the API server" for key in (
        "uid", "resourceVersion", "generation", "managedFields", "finalizers", "ownerReferences", "generateName", "selfLink",
        "deletionTimestamp", "deletionGracePeriodSeconds")}

    name: str = api(required=True, max_length=253, pattern=SUBDOMAIN)
    namespace: str | None = api(max_length=63, pattern=NAMESPACE)
    labels: Mapping[str, str] = api()
    annotations: Mapping[str, str] = api()
    creation_timestamp: datetime.datetime | None = api()


@dataclass(frozen=True)
class ParentReference:
    group: str = api(default=GROUP, max_length=253, pattern=GROUP_NAME)
    kind: str = api(default="Gateway", min_length=1, max_length=63, pattern=KIND)
    namespace: str | None = api(min_length=1, max_length=63, pattern=NAMESPACE)
    name: str = api(required=True, **OBJECT_NAME)
    section_name: str | None = api(min_length=1, max_length=253, pattern=SUBDOMAIN)
    port: int | None = api(**PORT)


@dataclass(frozen=True)
class BackendObjectReference:
    group: str = api(default="", max_length=253, pattern=GROUP_NAME)
    kind: str = api(default="Service", min_length=1, max_length=63, pattern=KIND)
    name: str = api(required=True, **OBJECT_NAME)
    namespace: str | None = api(min_length=1, max_length=63, pattern=NAMESPACE)
    port: int | None = api(**PORT)

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.group == "" and self.kind == "Service" and self.port is None:
            yield "port", "Must have port for Service reference"


@dataclass(frozen=True)
class BackendRef(BackendObjectReference):
    """A backendRef of a rule: a BackendObjectReference with a weight (default 1, 0 sends nothing)."""

    IGNORED: ClassVar[Mapping[str, str]] = {"filters": "per-backendRef filters are not modelled; put filters on the rule"}

    weight: int = api(default=1, minimum=0, maximum=1_000_000)


@dataclass(frozen=True)
class SecretObjectReference:
    group: str = api(default="", max_length=253, pattern=GROUP_NAME)
    kind: str = api(default="Secret", min_length=1, max_length=63, pattern=KIND)
    name: str = api(required=True, **OBJECT_NAME)
    namespace: str | None = api(min_length=1, max_length=63, pattern=NAMESPACE)


@dataclass(frozen=True)
class LocalObjectReference:
    group: str = api(required=True, max_length=253, pattern=GROUP_NAME)
    kind: str = api(required=True, min_length=1, max_length=63, pattern=KIND)
    name: str = api(required=True, **OBJECT_NAME)


# --- GatewayClass and Gateway ----------------------------------------------------------------------

@dataclass(frozen=True)
class GatewayClassSpec:
    IGNORED: ClassVar[Mapping[str, str]] = {"parametersRef": "implementation-specific parameters"}

    controller_name: str = api(required=True, min_length=1, max_length=253, pattern=CONTROLLER)
    description: str | None = api(max_length=64)


@dataclass(frozen=True)
class LabelSelectorRequirement:
    key: str = api(required=True)
    operator: str = api(required=True)
    values: tuple[str, ...] = api()

    def problems(self) -> Iterator[tuple[str, str]]:
        # metav1.LabelSelectorAsSelector's rules (apimachinery pkg/apis/meta/v1/helpers.go)
        if self.operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            yield "operator", f"{self.operator!r} is not accepted; one of: In, NotIn, Exists, DoesNotExist"
        elif (self.operator in ("In", "NotIn")) != bool(self.values):
            yield "values", f"operator {self.operator} {'needs' if self.operator in ('In', 'NotIn') else 'takes no'} values"


@dataclass(frozen=True)
class LabelSelector:
    match_labels: Mapping[str, str] = api()
    match_expressions: tuple[LabelSelectorRequirement, ...] = api()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes label selection: every matchLabels pair and every expression must hold; an empty selector selects all."""
        held = {
            "In": lambda r: labels.get(r.key) in r.values,
            "NotIn": lambda r: labels.get(r.key) not in r.values,
            "Exists": lambda r: r.key in labels,
            "DoesNotExist": lambda r: r.key not in labels,
        }
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(held[r.operator](r) for r in self.match_expressions)


@dataclass(frozen=True)
class RouteNamespaces:
    from_: str = api(default="Same", enum=("All", "Selector", "Same"))
    selector: LabelSelector | None = api()


@dataclass(frozen=True)
class RouteGroupKind:
    group: str = api(default=GROUP, max_length=253, pattern=GROUP_NAME)
    kind: str = api(required=True, min_length=1, max_length=63, pattern=KIND)


@dataclass(frozen=True)
class AllowedRoutes:
    namespaces: RouteNamespaces = api(default={"from": "Same"})
    kinds: tuple[RouteGroupKind, ...] = api(max_items=8)


@dataclass(frozen=True)
class GatewayTLSConfig:
    mode: str = api(default="Terminate", enum=("Terminate", "Passthrough"))
    certificate_refs: tuple[SecretObjectReference, ...] = api(max_items=64)
    options: Mapping[str, str] = api()

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.mode == "Terminate" and not self.certificate_refs and not self.options:
            yield "", "certificateRefs or options must be specified when mode is Terminate"


@dataclass(frozen=True)
class Listener:
    name: str = api(required=True, min_length=1, max_length=253, pattern=SUBDOMAIN)
    hostname: str | None = api(min_length=1, max_length=253, pattern=HOSTNAME)
    port: int = api(required=True, **PORT)
    protocol: str = api(required=True, min_length=1, max_length=255, pattern=PROTOCOL)
    tls: GatewayTLSConfig | None = api()
    allowed_routes: AllowedRoutes = api(default={"namespaces": {"from": "Same"}})


@dataclass(frozen=True)
class GatewaySpec:
    IGNORED: ClassVar[Mapping[str, str]] = {
        "addresses": "the model's gateway has no address of its own", "infrastructure": "no infrastructure is provisioned",
        "tls": "client certificate validation and backend TLS are not modelled", "allowedListeners": "ListenerSets are not modelled"}

    gateway_class_name: str = api(required=True, min_length=1, max_length=253)
    listeners: tuple[Listener, ...] = api(required=True, min_items=1, max_items=64, map_key="name")

    def problems(self) -> Iterator[tuple[str, str]]:
        # The CEL rules on spec.listeners (Gateway API v1.6.1 apis/v1/gateway_types.go)
        seen = set()
        for i, listener in enumerate(self.listeners):
            where = f"listeners[{i}]"
            if listener.protocol in ("HTTP", "TCP", "UDP") and listener.tls is not None:
                yield where, "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']"
            if listener.protocol in ("TCP", "UDP") and listener.hostname:
                yield where, "hostname must not be specified for protocols ['TCP', 'UDP']"
            if listener.protocol == "HTTPS" and listener.tls is not None and listener.tls.mode != "Terminate":
                yield where, "tls mode must be Terminate for protocol HTTPS"
            if listener.protocol == "TLS" and listener.tls is None:
                yield where, "tls mode must be set for protocol TLS"
            key = (listener.port, listener.protocol, listener.hostname)
            if key in seen:
                yield where, "Combination of port, protocol and hostname must be unique for each listener"
            seen.add(key)


# --- routes ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HTTPPathMatch:
    type: str = api(default="PathPrefix", enum=("Exact", "PathPrefix", "RegularExpression"))
    value: str = api(default="/", max_length=1024)

    def problems(self) -> Iterator[tuple[str, str]]:
        # The CEL rules of HTTPPathMatch (httproute_types.go), for Exact and PathPrefix
        if self.type == "RegularExpression":
            return
        kinds = "when type one of ['Exact', 'PathPrefix']"
        if not self.value.startswith("/"):
            yield "value", f"value must be an absolute path and start with '/' {kinds}"
        for part in ("//", "/./", "/../", "%2f", "%2F", "#"):
            if part in self.value:
                yield "value", f"must not contain '{part}' {kinds}"
        for end in ("/..", "/."):
            if self.value.endswith(end):
                yield "value", f"must not end with '{end}' {kinds}"
        if not PATH_CHARACTERS.match(self.value):
            yield "value", f"must only contain valid characters (matching {PATH_CHARACTERS.pattern}) for types ['Exact', 'PathPrefix']"


@dataclass(frozen=True)
class HTTPHeaderMatch:
    type: str = api(default="Exact", enum=("Exact", "RegularExpression"))
    name: str = api(required=True, min_length=1, max_length=256, pattern=HEADER_NAME)
    value: str = api(required=True, min_length=1, max_length=4096)


@dataclass(frozen=True)
class HTTPQueryParamMatch:
    type: str = api(default="Exact", enum=("Exact", "RegularExpression"))
    name: str = api(required=True, min_length=1, max_length=256, pattern=HEADER_NAME)
    value: str = api(required=True, min_length=1, max_length=1024)


@dataclass(frozen=True)
class HTTPRouteMatch:
    path: HTTPPathMatch = api(default={"type": "PathPrefix", "value": "/"})
    headers: tuple[HTTPHeaderMatch, ...] = api(max_items=16, map_key="name")
    query_params: tuple[HTTPQueryParamMatch, ...] = api(max_items=16, map_key="name")
    method: str | None = api(enum=HTTP_METHODS)


@dataclass(frozen=True)
class HTTPHeader:
    name: str = api(required=True, min_length=1, max_length=256, pattern=HEADER_NAME)
    value: str = api(required=True, min_length=1, max_length=4096)


@dataclass(frozen=True)
class HTTPHeaderFilter:
    set: tuple[HTTPHeader, ...] = api(max_items=16, map_key="name")
    add: tuple[HTTPHeader, ...] = api(max_items=16, map_key="name")
    remove: tuple[str, ...] = api(max_items=16, unique=True)


@dataclass(frozen=True)
class HTTPPathModifier:
    type: str = api(required=True, enum=("ReplaceFullPath", "ReplacePrefixMatch"))
    replace_full_path: str | None = api(max_length=1024)
    replace_prefix_match: str | None = api(max_length=1024)

    def problems(self) -> Iterator[tuple[str, str]]:
        for kind, value in (("ReplaceFullPath", self.replace_full_path), ("ReplacePrefixMatch", self.replace_prefix_match)):
            name = kind[0].lower() + kind[1:]
            if self.type == kind and value is None:
                yield "", f"{name} must be specified when type is set to '{kind}'"
            if value is not None and self.type != kind:
                yield "", f"type must be '{kind}' when {name} is set"


@dataclass(frozen=True)
class HTTPRequestRedirectFilter:
    scheme: str | None = api(enum=("http", "https"))
    hostname: str | None = api(min_length=1, max_length=253, pattern=SUBDOMAIN)
    path: HTTPPathModifier | None = api()
    port: int | None = api(**PORT)
    status_code: int = api(default=302, enum=(301, 302, 303, 307, 308))


@dataclass(frozen=True)
class HTTPURLRewriteFilter:
    hostname: str | None = api(min_length=1, max_length=253, pattern=SUBDOMAIN)
    path: HTTPPathModifier | None = api()


@dataclass(frozen=True)
class Fraction:
    numerator: int = api(required=True, minimum=0)
    denominator: int = api(default=100, minimum=1)

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.numerator > self.denominator:
            yield "", "numerator must be less than or equal to denominator"


@dataclass(frozen=True)
class HTTPRequestMirrorFilter:
    backend_ref: BackendObjectReference = api(required=True)
    percent: int | None = api(minimum=0, maximum=100)
    fraction: Fraction | None = api()

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.percent is not None and self.fraction is not None:
            yield "", "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter"


#: A filter type and the field that carries its configuration (HTTPRouteFilter, httproute_types.go).
FILTER_FIELDS = {"RequestHeaderModifier": "requestHeaderModifier", "ResponseHeaderModifier": "responseHeaderModifier",
                 "RequestMirror": "requestMirror", "RequestRedirect": "requestRedirect", "URLRewrite": "urlRewrite",
                 "ExtensionRef": "extensionRef", "CORS": "cors"}


def _filter_problems(filter_: Any, types: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """The CEL rules tying a filter's type to the one field it configures (httproute_types.go)."""
    for kind in types:
        name = FILTER_FIELDS[kind]
        present = getattr(filter_, _attr(name), None) is not None
        if present and filter_.type != kind:
            yield "", f"filter.{name} must be nil if the filter.type is not {kind}"
        if not present and filter_.type == kind:
            yield "", f"filter.{name} must be specified for {kind} filter.type"


def _attr(name: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), name)


@dataclass(frozen=True)
class HTTPRouteFilter:
    """One filter; ``cors`` is accepted and not modelled (Envoy Gateway answers CORS at the proxy)."""

    type: str = api(required=True, enum=tuple(FILTER_FIELDS))
    request_header_modifier: HTTPHeaderFilter | None = api()
    response_header_modifier: HTTPHeaderFilter | None = api()
    request_mirror: HTTPRequestMirrorFilter | None = api()
    request_redirect: HTTPRequestRedirectFilter | None = api()
    url_rewrite: HTTPURLRewriteFilter | None = api()
    extension_ref: LocalObjectReference | None = api()

    IGNORED: ClassVar[Mapping[str, str]] = {"cors": "CORS is answered by the proxy, not by routing"}

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from _filter_problems(self, tuple(kind for kind in FILTER_FIELDS if kind != "CORS"))


def _repeated(filters: tuple, kinds: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    for kind in kinds:
        if sum(f.type == kind for f in filters) > 1:
            yield "filters", f"{kind} filter cannot be repeated"


@dataclass(frozen=True)
class HTTPRouteRule:
    IGNORED: ClassVar[Mapping[str, str]] = {"timeouts": "request timeouts are not modelled"}

    name: str | None = api(min_length=1, max_length=253, pattern=SUBDOMAIN)
    matches: tuple[HTTPRouteMatch, ...] = api(max_items=64, default=[{"path": {"type": "PathPrefix", "value": "/"}}])
    filters: tuple[HTTPRouteFilter, ...] = api(max_items=16)
    backend_refs: tuple[BackendRef, ...] = api(max_items=16)

    def problems(self) -> Iterator[tuple[str, str]]:
        # CEL rules of HTTPRouteRule and its filters list (httproute_types.go)
        yield from _repeated(self.filters, ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "CORS"))
        kinds = {f.type for f in self.filters}
        if {"RequestRedirect", "URLRewrite"} <= kinds:
            yield "filters", "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both"
        if self.backend_refs and "RequestRedirect" in kinds:
            yield "", "RequestRedirect filter must not be used together with backendRefs"
        one_prefix = len(self.matches) == 1 and self.matches[0].path.type == "PathPrefix"
        for f in self.filters:
            modifier = (f.request_redirect or f.url_rewrite)
            if modifier and modifier.path and modifier.path.type == "ReplacePrefixMatch" and not one_prefix:
                label = "RequestRedirect" if f.request_redirect else "URLRewrite"
                yield "", f"When using {label} filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified"


def _parent_ref_problems(parent_refs: tuple[ParentReference, ...]) -> Iterator[tuple[str, str]]:
    """The CEL rules on a route's parentRefs (shared_types.go CommonRouteSpec)."""
    parents: dict[tuple, list[str | None]] = {}
    for ref in parent_refs:
        parents.setdefault((ref.group, ref.kind, ref.namespace or "", ref.name), []).append(ref.section_name)
    for sections in parents.values():
        if len(sections) > 1 and len({s is None for s in sections}) > 1:
            yield "parentRefs", "sectionName must be specified when parentRefs includes 2 or more references to the same parent"
        if len(sections) != len(set(sections)):
            yield "parentRefs", "sectionName must be unique when parentRefs includes 2 or more references to the same parent"


@dataclass(frozen=True)
class HTTPRouteSpec:
    parent_refs: tuple[ParentReference, ...] = api(max_items=32)
    hostnames: tuple[str, ...] = api(max_items=16, min_length=1, max_length=253, pattern=HOSTNAME)
    rules: tuple[HTTPRouteRule, ...] = api(min_items=1, max_items=16, default=[{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}])

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from _parent_ref_problems(self.parent_refs)
        if sum(len(rule.matches) for rule in self.rules) > 128:
            yield "rules", ("While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules "
                            "in a route must be less than 128")


@dataclass(frozen=True)
class GRPCMethodMatch:
    type: str = api(default="Exact", enum=("Exact", "RegularExpression"))
    service: str | None = api(max_length=1024)
    method: str | None = api(max_length=1024)

    def problems(self) -> Iterator[tuple[str, str]]:
        # The CEL rules of GRPCMethodMatch (grpcroute_types.go)
        if self.service is None and self.method is None:
            yield "", "One or both of 'service' or 'method' must be specified"
        if self.type == "Exact" and self.service is not None and not GRPC_SERVICE.match(self.service):
            yield "service", f"service must only contain valid characters (matching {GRPC_SERVICE.pattern})"
        if self.type == "Exact" and self.method is not None and not GRPC_METHOD.match(self.method):
            yield "method", f"method must only contain valid characters (matching {GRPC_METHOD.pattern})"


@dataclass(frozen=True)
class GRPCRouteMatch:
    method: GRPCMethodMatch | None = api()
    headers: tuple[HTTPHeaderMatch, ...] = api(max_items=16, map_key="name")


@dataclass(frozen=True)
class GRPCRouteFilter:
    type: str = api(required=True, enum=("ResponseHeaderModifier", "RequestHeaderModifier", "RequestMirror", "ExtensionRef"))
    request_header_modifier: HTTPHeaderFilter | None = api()
    response_header_modifier: HTTPHeaderFilter | None = api()
    request_mirror: HTTPRequestMirrorFilter | None = api()
    extension_ref: LocalObjectReference | None = api()

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from _filter_problems(self, ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "ExtensionRef"))


@dataclass(frozen=True)
class GRPCRouteRule:
    name: str | None = api(min_length=1, max_length=253, pattern=SUBDOMAIN)
    matches: tuple[GRPCRouteMatch, ...] = api(max_items=64)
    filters: tuple[GRPCRouteFilter, ...] = api(max_items=16)
    backend_refs: tuple[BackendRef, ...] = api(max_items=16)

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from _repeated(self.filters, ("RequestHeaderModifier", "ResponseHeaderModifier"))


@dataclass(frozen=True)
class GRPCRouteSpec:
    parent_refs: tuple[ParentReference, ...] = api(max_items=32)
    hostnames: tuple[str, ...] = api(max_items=16, min_length=1, max_length=253, pattern=HOSTNAME)
    rules: tuple[GRPCRouteRule, ...] = api(max_items=16)

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from _parent_ref_problems(self.parent_refs)
        if sum(len(rule.matches) for rule in self.rules) > 128:
            yield "rules", ("While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules "
                            "in a route must be less than 128")


# --- ReferenceGrant and core objects ---------------------------------------------------------------

@dataclass(frozen=True)
class ReferenceGrantFrom:
    group: str = api(required=True, max_length=253, pattern=GROUP_NAME)
    kind: str = api(required=True, min_length=1, max_length=63, pattern=KIND)
    namespace: str = api(required=True, min_length=1, max_length=63, pattern=NAMESPACE)


@dataclass(frozen=True)
class ReferenceGrantTo:
    group: str = api(required=True, max_length=253, pattern=GROUP_NAME)
    kind: str = api(required=True, min_length=1, max_length=63, pattern=KIND)
    name: str | None = api(**OBJECT_NAME)


@dataclass(frozen=True)
class ReferenceGrantSpec:
    from_: tuple[ReferenceGrantFrom, ...] = api(required=True, min_items=1, max_items=16)
    to: tuple[ReferenceGrantTo, ...] = api(required=True, min_items=1, max_items=16)


@dataclass(frozen=True)
class ServicePort:
    IGNORED: ClassVar[Mapping[str, str]] = {"nodePort": "node ports are not modelled"}

    name: str | None = api()
    protocol: str = api(default="TCP", enum=("TCP", "UDP", "SCTP"))
    port: int = api(required=True, **PORT)
    target_port: int | str | None = api()
    app_protocol: str | None = api()


@dataclass(frozen=True)
class ServiceSpec:
    IGNORED: ClassVar[Mapping[str, str]] = {key: "not read by routing" for key in (
        "clusterIPs", "externalIPs", "externalName", "externalTrafficPolicy", "healthCheckNodePort", "internalTrafficPolicy",
        "ipFamilies", "ipFamilyPolicy", "loadBalancerClass", "loadBalancerIP", "loadBalancerSourceRanges",
        "publishNotReadyAddresses", "sessionAffinity", "sessionAffinityConfig", "trafficDistribution",
        "allocateLoadBalancerNodePorts")}

    type: str = api(default="ClusterIP", enum=("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"))
    cluster_ip: str | None = api(name="clusterIP")
    ports: tuple[ServicePort, ...] = api()
    selector: Mapping[str, str] = api()


# --- top-level objects -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Object:
    """A top-level object: apiVersion, kind, metadata and spec (a status is accepted and not read)."""

    IGNORED: ClassVar[Mapping[str, str]] = {"status": "status is what a controller writes; meshlab computes its own"}
    NAMESPACED: ClassVar[bool] = True

    api_version: str = api(required=True)
    kind: str = api(required=True)
    metadata: ObjectMeta = api(required=True)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """The object's namespace; ``default`` when the YAML names none, as kubectl does (cluster-scoped: '')."""
        return (self.metadata.namespace or "default") if self.NAMESPACED else ""

    @property
    def age(self) -> tuple:
        """Sort key, oldest first (no creationTimestamp counts as oldest, as Go's zero time), then
        namespace, then name: the order Envoy Gateway v1.9.0 gives objects (resource.go Sort)."""
        created = self.metadata.creation_timestamp
        return (created is not None, created or 0, self.namespace, self.name)

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.NAMESPACED else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class GatewayClass(_Object):
    NAMESPACED: ClassVar[bool] = False
    spec: GatewayClassSpec = api(required=True)


@dataclass(frozen=True)
class Gateway(_Object):
    spec: GatewaySpec = api(required=True)


@dataclass(frozen=True)
class HTTPRoute(_Object):
    spec: HTTPRouteSpec = api(required=True)


@dataclass(frozen=True)
class GRPCRoute(_Object):
    spec: GRPCRouteSpec = api(required=True)


@dataclass(frozen=True)
class ReferenceGrant(_Object):
    spec: ReferenceGrantSpec = api(required=True)


@dataclass(frozen=True)
class Service(_Object):
    spec: ServiceSpec = api(default={})


@dataclass(frozen=True)
class Secret(_Object):
    """A Secret, read for its existence and type only: an HTTPS listener's certificateRefs name it."""

    IGNORED: ClassVar[Mapping[str, str]] = {key: "certificate contents are not read" for key in ("data", "stringData", "immutable")}

    type: str = api(default="Opaque")


@dataclass(frozen=True)
class Namespace(_Object):
    NAMESPACED: ClassVar[bool] = False
    IGNORED: ClassVar[Mapping[str, str]] = {"spec": "finalizers only", "status": "set by the API server"}


#: Gateway API kinds of the standard channel that meshlab does not model: skipped with a note.
UNMODELLED_KINDS = ("TCPRoute", "TLSRoute", "UDPRoute", "BackendTLSPolicy", "ListenerSet")
ACCEPTED = ("GatewayClass, Gateway, HTTPRoute, ReferenceGrant (gateway.networking.k8s.io/v1 or v1beta1), "
            "GRPCRoute (gateway.networking.k8s.io/v1), Service, Namespace and Secret (v1)")

#: (apiVersion, kind) -> class: the served versions of the standard channel's CRDs (v1.6.1) and core v1.
KINDS: dict[tuple[str, str], type[_Object]] = {
    **{(f"{GROUP}/v1", cls.__name__): cls for cls in (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant)},
    **{(f"{GROUP}/v1beta1", cls.__name__): cls for cls in (GatewayClass, Gateway, HTTPRoute, ReferenceGrant)},
    ("v1", "Service"): Service, ("v1", "Namespace"): Namespace, ("v1", "Secret"): Secret,
}


@dataclass(frozen=True)
class Resources:
    """Everything one YAML holds, in document order, and the notes on fields accepted but not modelled."""

    gateway_classes: tuple[GatewayClass, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    http_routes: tuple[HTTPRoute, ...] = ()
    grpc_routes: tuple[GRPCRoute, ...] = ()
    reference_grants: tuple[ReferenceGrant, ...] = ()
    services: tuple[Service, ...] = ()
    namespaces: tuple[Namespace, ...] = ()
    secrets: tuple[Secret, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    def gateway_class(self, name: str) -> GatewayClass | None:
        return next((c for c in self.gateway_classes if c.name == name), None)

    def service(self, namespace: str, name: str) -> Service | None:
        return next((s for s in self.services if s.namespace == namespace and s.name == name), None)

    def secret(self, namespace: str, name: str) -> Secret | None:
        return next((s for s in self.secrets if s.namespace == namespace and s.name == name), None)

    def namespace_labels(self, name: str) -> Mapping[str, str]:
        """A namespace's labels, with the ``kubernetes.io/metadata.name`` label every namespace carries
        (Kubernetes 1.22+), so selectors on it work as in a cluster; a namespace not in the input has only that."""
        found = next((n for n in self.namespaces if n.name == name), None)
        return {**(found.metadata.labels if found else {}), "kubernetes.io/metadata.name": name}


_COLLECTIONS = {GatewayClass: "gateway_classes", Gateway: "gateways", HTTPRoute: "http_routes", GRPCRoute: "grpc_routes",
                ReferenceGrant: "reference_grants", Service: "services", Namespace: "namespaces", Secret: "secrets"}


def load(yaml_text: str, crds: Mapping[str, Mapping] | None = None) -> Resources:
    """The resources of a multi-document YAML. Raises GatewayAPIError naming the resource (kind
    ns/name), the field path and what is accepted; with ``crds`` (kind -> CRD document), each
    Gateway API document must also pass its CRD's schema and CEL rules."""
    try:
        documents = [doc for doc in yaml.load_all(yaml_text, Loader=SAFE_LOADER) if doc is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise GatewayAPIError("YAML", "", f"is not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    collected: dict[str, list] = {name: [] for name in _COLLECTIONS.values()}
    notes: list[str] = []
    seen: set[str] = set()
    for number, document in enumerate(documents, start=1):
        resource = _read(document, number, crds, notes)
        if resource is None:
            continue
        if str(resource) in seen:
            raise GatewayAPIError(str(resource), "metadata.name", "appears twice in the input; each object must be unique by kind, namespace and name")
        seen.add(str(resource))
        collected[_COLLECTIONS[type(resource)]].append(resource)
    return Resources(**{name: tuple(items) for name, items in collected.items()}, notes=tuple(notes))


def _read(document: Any, number: int, crds: Mapping[str, Mapping] | None, notes: list[str]) -> _Object | None:
    """One YAML document as its model class, parsed by meshlab first (whose errors name the field and
    what is accepted), then validated by its CRD when ``crds`` are given (the CEL rules meshlab's parse
    does not restate); None (and a note) for a kind meshlab does not model, such as a TCPRoute."""
    label = f"document {number}"
    if not isinstance(document, Mapping):
        raise GatewayAPIError(label, "", f"must be a Kubernetes object (a mapping with apiVersion and kind), got {type(document).__name__}")
    kind, version = document.get("kind"), document.get("apiVersion")
    metadata = document.get("metadata") if isinstance(document.get("metadata"), Mapping) else {}
    if isinstance(kind, str) and isinstance(metadata.get("name"), str):
        namespace = metadata.get("namespace") or "default"
        label = f"{kind} {metadata['name']}" if kind in ("GatewayClass", "Namespace") else f"{kind} {namespace}/{metadata['name']}"
    cls = KINDS.get((version, kind))  # type: ignore[arg-type]
    if cls is None:
        if not isinstance(kind, str) or not isinstance(version, str):
            raise GatewayAPIError(label, "", "needs apiVersion and kind (strings)")
        if version.startswith(f"{GROUP}/") and kind not in UNMODELLED_KINDS or kind in {k for _, k in KINDS}:
            raise GatewayAPIError(label, "", f"apiVersion {version} kind {kind} is not read here; accepted: {ACCEPTED}")
        hint = " (convert an Ingress with meshlab.gateway.ingress.convert)" if kind == "Ingress" else ""
        notes.append(f"{label}: kind {kind} is not modelled by meshlab and was skipped{hint}")
        return None
    resource = parse(cls, document, Where(label, "", notes))
    if crds is not None and cls.__name__ in crds:
        from meshlab.gateway.schema import validate  # jsonschema and celpy take most of a second to import: only when asked

        problems = validate(crds[cls.__name__], document)
        if problems:
            path, problem = problems[0]
            raise GatewayAPIError(label, path, f"{problem} (the {cls.__name__} CRD's schema)")
    return resource

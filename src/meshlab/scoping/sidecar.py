"""The Sidecar resource (networking.istio.io/v1), read from YAML and checked as Istio checks it.

A Sidecar tells istiod what one workload's proxy needs to know: its egress listeners import services
by ``namespace/dnsName`` (``*`` any namespace, ``.`` the Sidecar's own, ``~`` none), its ingress
listeners say how inbound traffic reaches the app, and ``outboundTrafficPolicy`` says whether traffic
to a host the proxy was not told about passes through (ALLOW_ANY) or is refused (REGISTRY_ONLY).

The checks and their words are Istio 1.30.3's (istio.io/istio@v0.0.0-20260826214018-9739e10eb9d7):
``ValidateSidecar`` in pkg/config/validation/validation.go and the helpers it calls in
pkg/config/validation/agent/validation.go; ``istioctl analyze`` reports each error as IST0106 and each
warning as IST0133 (pkg/config/analysis/msg/messages.yaml). The selector analyzer
(pkg/config/analysis/analyzers/sidecar/selector.go: IST0101, IST0110, IST0111) needs the cluster's
pods and namespaces, so ``istioctl analyze --use-kube=false`` skips it; meshlab runs it on the Pods
given with the Sidecars.

    SidecarError          a document meshlab cannot read as a Sidecar (the field, what is accepted)
    SidecarPort           a listener's port: number, protocol, name
    IngressListener       port, bind, defaultEndpoint, captureMode
    EgressListener        port, bind, captureMode, hosts
    OutboundTrafficPolicy mode (ALLOW_ANY, REGISTRY_ONLY) and the deprecated egressProxy
    Sidecar               one resource: name, namespace, workloadSelector, listeners, policy
    Pod                   a workload the selector analyzer matches against: namespace, name, labels
    Finding               one of istioctl's findings: level, code, resource, message
    parse_resources       YAML text -> the Sidecars and Pods in it, in document order
    validate              one Sidecar -> Istio's IST0106 errors and IST0133 warnings (and IST0002)
    analyze               Sidecars (and Pods) -> validate's findings plus the selector analyzer's
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import yaml

from meshlab import yamlfields

API_VERSIONS = ("networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3")
MODES = ("ALLOW_ANY", "REGISTRY_ONLY")
CAPTURE_MODES = ("DEFAULT", "IPTABLES", "NONE")
UNIX_PREFIX = "unix://"
TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"  # Kubernetes' creationTimestamp: RFC 3339, whole seconds, UTC
#: Protocols Istio parses (pkg/config/protocol/instance.go Parse, case-insensitive). Its case
#: "DoubleHBONE" is compared after lower-casing, so it never matches: DoubleHBONE is refused.
PROTOCOLS = ("tcp", "udp", "grpc", "grpc-web", "http", "http_proxy", "http2", "https", "tls", "mongo", "redis", "mysql")
HTTP_PROTOCOLS = ("http", "http2", "http_proxy", "grpc", "grpc-web")  # Instance.IsHTTP
TLS_PROTOCOLS = ("https", "tls")
#: Sidecar fields Istio has that meshlab does not model: refused by name rather than ignored.
UNMODELLED = {"spec": ("inboundConnectionPool",), "ingress": ("tls", "connectionPool")}

# pkg/config/labels/instance.go: DNS-1123 labels (letters of either case), and the wildcard form.
_LABEL = "[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"
_DNS1123_LABEL = re.compile(f"^{_LABEL}$")
_WILDCARD_LABEL = re.compile(rf"^(\*|(\*|\*-)?{_LABEL})$")
_ATOI = re.compile(r"^[+-]?[0-9]+$")


class SidecarError(ValueError):
    """YAML meshlab cannot read as a Sidecar or a Pod; the message names the document and field."""


@dataclass(frozen=True)
class SidecarPort:
    number: int = 0
    protocol: str = ""
    name: str = ""
    target_port: int = 0  # deprecated; Istio warns it has no effect


@dataclass(frozen=True)
class IngressListener:
    port: SidecarPort | None
    bind: str = ""
    default_endpoint: str = ""
    capture_mode: str = "DEFAULT"


@dataclass(frozen=True)
class EgressListener:
    """``port`` None is the catch-all listener; ``hosts`` are ``namespace/dnsName`` imports."""

    hosts: tuple[str, ...]
    port: SidecarPort | None = None
    bind: str = ""
    capture_mode: str = "DEFAULT"


@dataclass(frozen=True)
class EgressProxy:
    host: str
    port: int | None = None
    subset: str = ""


@dataclass(frozen=True)
class OutboundTrafficPolicy:
    mode: str = "REGISTRY_ONLY"  # the proto's first enum value, what an empty policy means
    egress_proxy: EgressProxy | None = None


@dataclass(frozen=True)
class Sidecar:
    """``workload_selector`` None applies to the whole namespace; ``{}`` is a selector without labels
    (Istio treats it as a selector matching every workload, and warns). ``creation_timestamp`` orders
    Sidecars as istiod does: the oldest applies (ties broken by name, then namespace)."""

    name: str
    namespace: str = "default"
    workload_selector: dict[str, str] | None = None
    egress: tuple[EgressListener | None, ...] = ()
    ingress: tuple[IngressListener | None, ...] = ()
    outbound_traffic_policy: OutboundTrafficPolicy | None = None
    creation_timestamp: str = ""

    @property
    def key(self) -> str:
        """The Sidecar's config key, as Istio names a config: Kind/namespace/name."""
        return f"Sidecar/{self.namespace}/{self.name}"

    @property
    def resource(self) -> str:
        """How istioctl names it in a finding."""
        return f"Sidecar {self.namespace}/{self.name}"

    def to_yaml(self) -> dict:
        """The resource as YAML would hold it (what a controller writes)."""
        spec: dict = {}
        if self.workload_selector is not None:
            spec["workloadSelector"] = {"labels": dict(self.workload_selector)}
        if self.ingress:
            spec["ingress"] = [None if i is None else _drop_empty({"port": _port_yaml(i.port), "bind": i.bind, "defaultEndpoint": i.default_endpoint,
                                                                    "captureMode": _mode(i.capture_mode)}) for i in self.ingress]
        if self.egress:
            spec["egress"] = [None if e is None else _drop_empty({"port": _port_yaml(e.port), "bind": e.bind, "captureMode": _mode(e.capture_mode),
                                                                   "hosts": list(e.hosts)}) for e in self.egress]
        policy = self.outbound_traffic_policy
        if policy is not None:
            spec["outboundTrafficPolicy"] = {"mode": policy.mode}
            if policy.egress_proxy is not None:
                proxy = policy.egress_proxy
                spec["outboundTrafficPolicy"]["egressProxy"] = _drop_empty({"host": proxy.host, "subset": proxy.subset,
                                                                            "port": None if proxy.port is None else {"number": proxy.port}})
        metadata = {"name": self.name, "namespace": self.namespace}
        if self.creation_timestamp:
            metadata["creationTimestamp"] = self.creation_timestamp
        return {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": metadata, "spec": spec}


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    level: str  # Error, Warning, Info
    code: str  # IST0106 ...
    resource: str  # "Sidecar default/reviews"
    message: str

    def __str__(self) -> str:
        return f"{self.level} [{self.code}] ({self.resource}) {self.message}"


def _port_yaml(port: SidecarPort | None) -> dict | None:
    return None if port is None else _drop_empty({"number": port.number, "protocol": port.protocol, "name": port.name, "targetPort": port.target_port})


def _mode(capture_mode: str) -> str:
    return "" if capture_mode == "DEFAULT" else capture_mode


def _drop_empty(values: dict) -> dict:
    return {k: v for k, v in values.items() if v not in (None, "", [], 0)}


# -- reading YAML ------------------------------------------------------------------------------

def parse_resources(text: str) -> tuple[list[Sidecar], list[Pod]]:
    """The Sidecars and Pods in ``text`` (one or more YAML documents), in document order.

    A namespace left out is ``default``, as ``istioctl analyze`` takes it. Anything else than a
    Sidecar or a Pod, and any field of the wrong shape, is a SidecarError naming it."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        raise SidecarError(f"not valid YAML: {error}") from None
    sidecars, pods = [], []
    for index, document in enumerate(documents):
        where = f"document {index + 1}"
        if not isinstance(document, dict):
            raise SidecarError(f"{where}: expected a resource (a mapping with apiVersion, kind, metadata, spec), got {type(document).__name__}")
        kind, metadata = document.get("kind"), _mapping(document.get("metadata", {}), f"{where}: metadata")
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            raise SidecarError(f"{where} ({kind}): metadata.name is required")
        namespace = metadata.get("namespace", "default")
        if not isinstance(namespace, str) or not namespace:
            raise SidecarError(f"{where} ({kind} {name}): metadata.namespace must be a non-empty string")
        where = f"{kind} {namespace}/{name}"
        if kind == "Pod":
            pods.append(Pod(namespace, name, _labels(metadata.get("labels", {}), f"{where}: metadata.labels")))
        elif kind == "Sidecar":
            if document.get("apiVersion") not in API_VERSIONS:
                raise SidecarError(f"{where}: apiVersion {document.get('apiVersion')!r} is not one of {', '.join(API_VERSIONS)}")
            created = metadata.get("creationTimestamp") or ""
            if isinstance(created, datetime):  # YAML reads an unquoted RFC 3339 time as a datetime
                created = created.astimezone(timezone.utc).strftime(TIMESTAMP) if created.tzinfo else created.strftime(TIMESTAMP)
            sidecars.append(_sidecar(name, namespace, str(created), _mapping(document.get("spec", {}), f"{where}: spec"), where))
        else:
            raise SidecarError(f"{where}: kind {kind!r} is not read here; accepted: Sidecar (networking.istio.io/v1), Pod (its labels, for the selector analyzer)")
    return sidecars, pods


def _mapping(value, where: str) -> dict:
    return yamlfields.mapping(value, where, SidecarError)


def _labels(value, where: str) -> dict[str, str]:
    return yamlfields.string_map(value, where, SidecarError)


def _known(values: dict, accepted: tuple[str, ...], where: str, section: str) -> None:
    for key in values:
        if key in UNMODELLED.get(section, ()):
            raise SidecarError(f"{where}: {key} is an Istio field meshlab does not model; accepted: {', '.join(accepted)}")
    yamlfields.known(values, accepted, where, SidecarError)


def _string(values: dict, key: str, where: str) -> str:
    value = values.get(key, "")
    if not isinstance(value, str):
        raise SidecarError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _whole(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 0xFFFFFFFF:
        raise SidecarError(f"{where}: expected a whole number 0..4294967295, got {value!r}")
    return value


def _port(value, where: str) -> SidecarPort | None:
    if value is None:
        return None
    port = _mapping(value, where)
    _known(port, ("number", "protocol", "name", "targetPort"), where, "port")
    return SidecarPort(_whole(port.get("number", 0), f"{where}.number"), _string(port, "protocol", where), _string(port, "name", where),
                       _whole(port.get("targetPort", 0), f"{where}.targetPort"))


def _capture_mode(values: dict, where: str) -> str:
    mode = values.get("captureMode", "DEFAULT")
    if mode not in CAPTURE_MODES:
        raise SidecarError(f"{where}.captureMode: {mode!r} is not one of {', '.join(CAPTURE_MODES)}")
    return mode


def _list(spec: dict, key: str, where: str) -> list:
    value = spec.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise SidecarError(f"{where}.{key}: expected a list, got {value!r}")
    return value


def _sidecar(name: str, namespace: str, created: str, spec: dict, where: str) -> Sidecar:
    _known(spec, ("workloadSelector", "ingress", "egress", "outboundTrafficPolicy"), f"{where}: spec", "spec")
    selector = None
    if "workloadSelector" in spec:
        raw = _mapping(spec["workloadSelector"], f"{where}: spec.workloadSelector")
        _known(raw, ("labels",), f"{where}: spec.workloadSelector", "workloadSelector")
        selector = _labels(raw.get("labels", {}), f"{where}: spec.workloadSelector.labels")
    ingress: list[IngressListener | None] = []
    for index, entry in enumerate(_list(spec, "ingress", f"{where}: spec")):
        at = f"{where}: spec.ingress[{index}]"
        if entry is None:
            ingress.append(None)
            continue
        entry = _mapping(entry, at)
        _known(entry, ("port", "bind", "defaultEndpoint", "captureMode"), at, "ingress")
        ingress.append(IngressListener(_port(entry.get("port"), f"{at}.port"), _string(entry, "bind", at), _string(entry, "defaultEndpoint", at), _capture_mode(entry, at)))
    egress: list[EgressListener | None] = []
    for index, entry in enumerate(_list(spec, "egress", f"{where}: spec")):
        at = f"{where}: spec.egress[{index}]"
        if entry is None:
            egress.append(None)
            continue
        entry = _mapping(entry, at)
        _known(entry, ("port", "bind", "captureMode", "hosts"), at, "egress")
        hosts = _list(entry, "hosts", at)
        if not all(isinstance(h, str) for h in hosts):
            raise SidecarError(f"{at}.hosts: expected strings of the form namespace/dnsName, got {hosts!r}")
        egress.append(EgressListener(tuple(hosts), _port(entry.get("port"), f"{at}.port"), _string(entry, "bind", at), _capture_mode(entry, at)))
    policy = None
    if "outboundTrafficPolicy" in spec:
        at = f"{where}: spec.outboundTrafficPolicy"
        raw = _mapping(spec["outboundTrafficPolicy"], at)
        _known(raw, ("mode", "egressProxy"), at, "outboundTrafficPolicy")
        mode = raw.get("mode", "REGISTRY_ONLY")
        if mode not in MODES:
            raise SidecarError(f"{at}.mode: {mode!r} is not one of {', '.join(MODES)}")
        proxy = None
        if raw.get("egressProxy") is not None:
            destination = _mapping(raw["egressProxy"], f"{at}.egressProxy")
            _known(destination, ("host", "port", "subset"), f"{at}.egressProxy", "egressProxy")
            port = destination.get("port")
            number = None if port is None else _whole(_mapping(port, f"{at}.egressProxy.port").get("number", 0), f"{at}.egressProxy.port.number")
            proxy = EgressProxy(_string(destination, "host", f"{at}.egressProxy"), number, _string(destination, "subset", f"{at}.egressProxy"))
        policy = OutboundTrafficPolicy(mode, proxy)
    return Sidecar(name, namespace, selector, tuple(egress), tuple(ingress), policy, created)


# -- Istio's checks (pkg/config/validation/agent/validation.go unless said otherwise) ------------

def _quote(text: str) -> str:
    """Go's %q for the plain strings these messages quote."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and bool(_DNS1123_LABEL.match(value))


def _atoi(text: str) -> tuple[int | None, str]:
    """Go's strconv.Atoi: the number, or None and its error text."""
    if not _ATOI.match(text):
        return None, f"strconv.Atoi: parsing {_quote(text)}: invalid syntax"
    value = int(text)
    if not -(2**63) <= value < 2**63:
        return None, f"strconv.Atoi: parsing {_quote(text)}: value out of range"
    return value, ""


def _validate_port(number: int) -> list[str]:
    return [] if 1 <= number <= 65535 else [f"port number {number} must be in the range 1..65535"]


def _validate_ip(address: str) -> list[str]:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return [f"{address} is not a valid IP"]
    return []


def _dns1123_labels(domain: str) -> list[str]:
    parts = domain.split(".")
    top = parts[-1]
    if _atoi(top)[0] is not None:
        return [f"domain name {_quote(domain)} invalid (top level domain {_quote(top)} cannot be all-numeric)"]
    for index, label in enumerate(parts):
        if index == len(parts) - 1 and label == "":
            return []  # a trailing dot: an unambiguous name
        if not is_dns1123_label(label):
            return [f"domain name {_quote(domain)} invalid (label {_quote(label)} invalid)"]
    return []


def _preconditions(name: str) -> list[str]:
    if len(name) > 255:
        return [f"domain name {_quote(name)} too long (max 255)"]
    if not name:
        return ["empty domain name not allowed"]
    return []


def validate_fqdn(fqdn: str) -> list[str]:
    return _preconditions(fqdn) or _dns1123_labels(fqdn)


def validate_wildcard_domain(domain: str) -> list[str]:
    """A domain whose first label may be a wildcard (``*``, ``*.example.com``, ``*-foo.example.com``)."""
    if problems := _preconditions(domain):
        return problems
    first, dot, rest = domain.partition(".")
    if not _WILDCARD_LABEL.match(first) or len(first) > 63:
        return [f"domain name {_quote(domain)} invalid (label {_quote(first)} invalid)"]
    return _dns1123_labels(rest) if dot else []


def validate_egress_host(host: str) -> list[str]:
    """ValidateNamespaceSlashWildcardHostname(host, isGateway=false): ``namespace/dnsName``."""
    namespace, slash, name = host.partition("/")
    if not slash:
        return ["host must be of form namespace/dnsName"]
    errors = []
    if not namespace or not name:
        errors.append("config namespace and dnsName in host entry cannot be empty")
    if namespace not in ("*", ".", "~") and not is_dns1123_label(namespace):
        errors.append(f"invalid namespace value {_quote(namespace)} in sidecar")
    # validateSidecarOrGatewayHostnamePart
    if name != "*" and "." not in name:
        errors.append("short names (non FQDN) are not allowed")
    errors += validate_wildcard_domain(name)  # Istio appends it twice unless the name is an IP; istioctl prints it once
    if "*" in name and len(name) != 1 and not name.startswith("*."):
        errors.append(f"partial wildcard {_quote(name)} not allowed")
    return errors


def _validate_protocol(protocol: str) -> list[str]:
    return [] if protocol == "" or protocol.lower() in PROTOCOLS else [f"unsupported protocol: {protocol}"]


def _validate_port_name(name: str) -> list[str]:
    return [] if is_dns1123_label(name) else [f"invalid port name: {name}"]


def _validate_unix_address(address: str) -> list[str]:
    """pkg/config/validation/validation.go ValidateUnixAddress."""
    if not address:
        return ["unix address must not be empty"]
    if address.startswith("@"):
        return []
    if not address.startswith("/") or address.endswith("/"):
        return [f"{address} is not an absolute path to a file"]
    return []


def _split_host_port(hostport: str) -> tuple[str, str, str]:
    """Go's net.SplitHostPort: host, port, and its error text (empty when it succeeds)."""
    def error(why: str) -> tuple[str, str, str]:
        return "", "", f"address {hostport}: {why}"

    colon = hostport.rfind(":")
    if colon < 0:
        return error("missing port in address")
    start, end_of_host = 0, 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return error("missing ']' in address")
        if end + 1 == len(hostport):
            return error("missing port in address")
        if end + 1 != colon:
            return error("too many colons in address" if hostport[end + 1] == ":" else "missing port in address")
        host, start, end_of_host = hostport[1:end], 1, end + 1
    else:
        host = hostport[:colon]
        if ":" in host:
            return error("too many colons in address")
    if "[" in hostport[start:]:
        return error("unexpected '[' in address")
    if "]" in hostport[end_of_host:]:
        return error("unexpected ']' in address")
    return host, hostport[colon + 1:], ""


def _validate_default_endpoint(endpoint: str) -> list[str]:
    if endpoint.startswith(UNIX_PREFIX):
        return _validate_unix_address(endpoint[len(UNIX_PREFIX):])
    errors = []
    host, port, split_error = _split_host_port(endpoint)
    if split_error:
        errors.append(split_error)
    if host not in ("", "127.0.0.1", "0.0.0.0", "::1", "::"):
        errors.append("sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset")
    number, atoi_error = _atoi(port)
    if number is None:
        errors.append(f"sidecar: defaultEndpoint port ({port}) is not a number: {atoi_error}")
    else:
        errors += _validate_port(number)
    return errors


def _validate_selector(selector: dict[str, str]) -> list[str]:
    """ValidateAlphaWorkloadSelector's errors (its warning, no labels, is the caller's)."""
    errors = []
    for key, value in selector.items():
        if key == "":
            errors.append(f"empty key is not supported in selector: {_quote(f'{key}={value}')}")
        if "*" in key or "*" in value:
            errors.append(f"wildcard is not supported in selector: {_quote(f'{key}={value}')}")
    return errors


def _validate_egress_port(port: SidecarPort, bind: str, capture_mode: str) -> list[str]:
    errors = _validate_port_name(port.name) if port.name else []
    errors += _validate_protocol(port.protocol)
    if port.number == 0:  # a Unix domain socket listener
        if not bind.startswith(UNIX_PREFIX):
            errors.append("sidecar: ports with 0 value must have a unix domain socket bind address")
        else:
            errors += _validate_unix_address(bind[len(UNIX_PREFIX):])
        if capture_mode not in ("DEFAULT", "NONE"):
            errors.append("sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners")
    else:
        errors += _validate_port(port.number)
        if bind:
            errors += _validate_ip(bind)
    return errors


def _validate_ingress(sidecar: Sidecar, errors: list[str]) -> None:
    ports: set[int] = set()
    for listener in sidecar.ingress:
        if listener is None:
            errors.append("sidecar: ingress may not be null")
            continue
        if listener.port is None:
            errors.append("sidecar: port is required for ingress listeners")
            continue
        port = listener.port
        if port.target_port > 0:
            errors.append("targetPort has no impact on Sidecars")
        errors += (_validate_port_name(port.name) if port.name else []) + _validate_protocol(port.protocol) + _validate_port(port.number)
        if listener.bind:
            errors += _validate_ip(listener.bind)
        if port.number in ports:
            errors.append("sidecar: ports on IP bound listeners must be unique")
        ports.add(port.number)
        if listener.default_endpoint:
            errors += _validate_default_endpoint(listener.default_endpoint)


def _validate_egress(sidecar: Sidecar, errors: list[str], warnings: list[str]) -> None:
    ports: set[int] = set()
    sockets: set[str] = set()
    catch_all = False
    for index, listener in enumerate(sidecar.egress):
        if listener is None:
            errors.append("egress listener may not be null")
            continue
        if listener.port is None:
            if catch_all:
                errors.append("sidecar: egress can have only one listener with empty port")
                continue
            if index == len(sidecar.egress) - 1:
                catch_all = True
            else:
                errors.append("sidecar: the egress listener with empty port should be the last listener in the list")
        else:
            if listener.port.target_port > 0:
                errors.append("targetPort has no impact on Sidecars")
            errors += _validate_egress_port(listener.port, listener.bind, listener.capture_mode)
            if listener.port.number == 0:
                if listener.bind in sockets:
                    errors.append("sidecar: unix domain socket values for listeners must be unique")
                sockets.add(listener.bind)
            else:
                if listener.port.number in ports:
                    errors.append("sidecar: ports on IP bound listeners must be unique")
                ports.add(listener.port.number)
        if not listener.hosts:
            errors.append("sidecar: egress listener must contain at least one host")
            continue
        imported: dict[str, set[str]] = {}
        for host in listener.hosts:
            namespace, slash, name = host.partition("/")
            if slash:
                namespace = sidecar.namespace if namespace == "." else namespace
                seen = imported.setdefault(namespace, set())
                if (name != "*" and (name in seen or "*" in seen)) or (name == "*" and seen):
                    warnings.append(f"duplicated egress host: {host}")
                seen.add(name)
            errors += validate_egress_host(host)
        if "*" in imported.get("*", ()) and len(imported) != 1:
            warnings.append("`*/*` host select all resources, no other hosts can be added")


def _validate_outbound(policy: OutboundTrafficPolicy | None) -> list[str]:
    if policy is None or policy.egress_proxy is None:
        return []
    if policy.mode != "ALLOW_ANY":
        return ["sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode"]
    proxy = policy.egress_proxy
    errors = validate_fqdn(proxy.host)
    if proxy.port is None:
        return errors + ["sidecar: egress_proxy port must be non-nil"]
    # validateDestination (pkg/config/validation/validation.go)
    errors += ["invalid destination host *"] if proxy.host == "*" else validate_wildcard_domain(proxy.host)
    if proxy.subset and not is_dns1123_label(proxy.subset):
        errors.append(f"subset name is invalid: {proxy.subset}")
    return errors + _validate_port(proxy.port)


def validate(sidecar: Sidecar) -> list[Finding]:
    """Istio's ValidateSidecar on one Sidecar: IST0106 for each error, IST0133 for each warning, in
    Istio's order, each message once (istioctl prints a repeated one once); plus the deprecation
    analyzer's IST0002 for egressProxy. An empty list: Istio accepts it."""
    errors: list[str] = []
    warnings: list[str] = []
    if sidecar.workload_selector is not None:
        errors = _validate_selector(sidecar.workload_selector)
        if not errors and not sidecar.workload_selector:
            warnings.append("sidecar: workload selector specified without labels, will be applied to all services in namespace")
    if not errors and not sidecar.egress and not sidecar.ingress and sidecar.outbound_traffic_policy is None:
        errors, warnings = ["sidecar: empty configuration provided"], []
    elif not errors:
        _validate_ingress(sidecar, errors)
        _validate_egress(sidecar, errors, warnings)
        errors += _validate_outbound(sidecar.outbound_traffic_policy)
    findings = [Finding("Error", "IST0106", sidecar.resource, f"Schema validation error: {e}") for e in errors]
    findings += [Finding("Warning", "IST0133", sidecar.resource, f"Schema validation warning: {w}") for w in warnings]
    if sidecar.outbound_traffic_policy is not None and sidecar.outbound_traffic_policy.egress_proxy is not None:
        # pkg/config/analysis/analyzers/deprecation/deprecation.go analyzeSidecar
        findings.append(Finding("Warning", "IST0002", sidecar.resource, "Deprecated: OutboundTrafficPolicy.EgressProxy ignored"))
    return list(dict.fromkeys(findings))


def _selector_string(labels: dict[str, str]) -> str:
    """k8s labels.SelectorFromSet(labels).String(): sorted ``key=value`` pairs joined by commas."""
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def analyze(sidecars: list[Sidecar], pods: list[Pod] | None = None) -> list[Finding]:
    """``validate`` for each Sidecar, then Istio's sidecar.SelectorAnalyzer: more than one Sidecar
    without a selector in a namespace (IST0111); with ``pods``, also a selector matching no pod of its
    namespace (IST0101) and a pod selected by several Sidecars (IST0110). Without ``pods`` (None) the
    pod checks are skipped, as ``istioctl analyze --use-kube=false`` skips the whole analyzer."""
    findings = [finding for sidecar in sidecars for finding in validate(sidecar)]
    workload_less: dict[str, list[Sidecar]] = {}
    selecting: dict[tuple[str, str], list[Sidecar]] = {}
    for sidecar in sidecars:
        if not sidecar.workload_selector:  # no selector, or one without labels
            workload_less.setdefault(sidecar.namespace, []).append(sidecar)
            continue
        if pods is None:
            continue
        matched = [p for p in pods if p.namespace == sidecar.namespace and sidecar.workload_selector.items() <= p.labels.items()]
        if not matched:
            findings.append(Finding("Error", "IST0101", sidecar.resource, f"Referenced selector not found: {_quote(_selector_string(sidecar.workload_selector))}"))
        for pod in matched:
            selecting.setdefault((pod.namespace, pod.name), []).append(sidecar)
    for (namespace, pod), chosen in selecting.items():
        if len(chosen) > 1:
            names = " ".join(sorted(s.name for s in chosen))
            findings += [Finding("Error", "IST0110", s.resource, f"The Sidecars [{names}] in namespace {_quote(namespace)} select the same workload pod "
                                 f"{_quote(pod)}, which can lead to undefined behavior.") for s in chosen]
    for namespace, chosen in workload_less.items():
        if len(chosen) > 1:
            names = " ".join(sorted(s.name for s in chosen))
            findings += [Finding("Error", "IST0111", s.resource, f"The Sidecars [{names}] in namespace {_quote(namespace)} have no workload selector, "
                                 "which can lead to undefined behavior.") for s in chosen]
    return findings

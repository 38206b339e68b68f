"""Virtual machines in the mesh: the WorkloadGroup a VM joins, the WorkloadEntry istiod writes when the
VM's proxy connects (auto-registration), and the endpoints a service selects from pods and VMs alike.

A WorkloadGroup is to VMs what a Deployment's pod template is to pods (istio.io/api v1.30.8,
networking/v1alpha3/workload_group.proto): ``metadata`` (labels, annotations) and a ``template``
WorkloadEntry (ports, serviceAccount, network, locality, weight) for every VM of the group, and a
readiness ``probe`` (httpGet, tcpSocket or exec) the VM's agent runs. What istiod does with them is read
in Istio's source (master of 2026-08-26; pilot/pkg/autoregistration/controller.go, pilot/pkg/features/pilot.go,
pilot/pkg/serviceregistry/serviceentry/conversion.go and controller.go, pilot/pkg/serviceregistry/kube/
controller/multicluster.go, controller.go and pod.go, pkg/config/validation/validation.go):

- Registration (PILOT_ENABLE_WORKLOAD_ENTRY_AUTOREGISTRATION, default true): a proxy whose node metadata
  names a group creates the WorkloadEntry ``<group>-<ip>[-<network>]`` in the group's namespace (an IPv6
  address's ``:`` become ``-``; a name over 253 characters keeps its last 253): the template, with the
  proxy's IP as address and its network; labels from the template, then the group's metadata, then the
  proxy's own (the later wins); annotations ``istio.io/autoRegistrationGroup`` and the group's, plus
  ``proxy.istio.io/health-checks-enabled: "true"`` when the proxy runs a readiness probe, and
  ``istio.io/workloadController`` (which istiod) and ``istio.io/connectedAt`` (RFC 3339, nanoseconds);
  the WorkloadGroup is its controlling owner. The proxy's verified identity must be the entry's
  (ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY, default true): same namespace, same service account if set.
- Disconnect: ``istio.io/connectedAt`` gives way to ``istio.io/disconnectedAt``. An auto-registered entry
  still disconnected after PILOT_WORKLOAD_ENTRY_GRACE_PERIOD (default 10 s) is deleted; a VM that
  reconnects in time keeps its entry. (istiod also deletes an entry connected for longer than its
  maximum connection age, for when istiod and VM die together: not modelled.)
- Health: an entry with ``proxy.istio.io/health-checks-enabled: "true"`` is an endpoint only while its
  ``Healthy`` condition is True, and a missing condition counts as unhealthy, so a new VM gets no
  traffic before its first probe succeeds (serviceentry isHealthy). The agent reports each change.
- Selection: a ServiceEntry's ``workloadSelector`` selects, in its own namespace, the WorkloadEntries and
  the ready pods whose labels include it (PILOT_ENABLE_SERVICEENTRY_SELECT_PODS, default true), pods
  first, then by namespace and name; one endpoint per workload and port, on the workload's port of that
  port's name, else the port's targetPort, else its number. An entry addressed by host name or Unix
  socket is selected only by a DNS ServiceEntry. A Kubernetes Service's selector selects WorkloadEntries
  too (PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES, default true: the kube registry's
  workloadInstanceHandler and serviceInstancesFromWorkloadInstances), on the Service's targetPort,
  looked up by name in the entry's ports when it is a name.

    WorkloadError       YAML or arguments meshlab refuses: what and where, what is accepted (Istio's words where it has them)
    RegistrationError   istiod refusing a proxy's registration, in its words
    rfc3339nano         a time as istiod writes connectedAt and disconnectedAt (Go's RFC3339Nano)
    WorkloadEntry       one VM (or any non-Kubernetes workload): spec, labels, annotations, owner, health condition
    WorkloadGroup       metadata, template, probe; WorkloadGroup.parse(yaml)
    Controller          istiod's auto-registration: entry_name, register, disconnect, report_health, cleanup(now)
    Pod, ServicePort, ServiceEntry (.parse), Service   what selects and what is selected
    Endpoint, endpoints_of   the endpoints a ServiceEntry or a Service selects, pods and VMs alike
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass, field, replace

import yaml

from meshlab import yamlfields
from meshlab.scoping.sidecar import is_dns1123_label

API_VERSIONS = ("networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3")
AUTO_REGISTRATION_GROUP = "istio.io/autoRegistrationGroup"
WORKLOAD_CONTROLLER = "istio.io/workloadController"
CONNECTED_AT = "istio.io/connectedAt"
DISCONNECTED_AT = "istio.io/disconnectedAt"
HEALTH_CHECKS_ENABLED = "proxy.istio.io/health-checks-enabled"  # pilot/pkg/model/status/workloadentry.go
HEALTHY = "Healthy"  # the condition type
#: PILOT_WORKLOAD_ENTRY_GRACE_PERIOD's default.
GRACE_PERIOD = dt.timedelta(seconds=10)
MAX_NAME = 253
PROBE_METHODS = ("httpGet", "tcpSocket", "exec", "grpc")
PROBE_NUMBERS = ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold")
RESOLUTIONS = ("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN")
UNIX_PREFIX = "unix://"
_PROBE_HEADER = re.compile(r"^[-_A-Za-z0-9]+$")  # validProbeHeaderNameRegex, pkg/config/validation/validation.go
# pkg/config/labels/instance.go: tagRegexp and labelValueRegexp
_DNS1123_LABEL = "[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"
_QUALIFIED_NAME = "(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_TAG = re.compile(f"^({_DNS1123_LABEL}(?:\\.{_DNS1123_LABEL})*/)?({_QUALIFIED_NAME})$")
_LABEL_VALUE = re.compile(f"^({_QUALIFIED_NAME})?$")


class WorkloadError(ValueError):
    """Input meshlab refuses; the message names the resource and field and what is accepted."""


class RegistrationError(RuntimeError):
    """istiod refused to register a proxy or let it control an entry; the message is istiod's."""


def rfc3339nano(moment: dt.datetime) -> str:
    """Go's time.RFC3339Nano for a UTC time, as istiod writes connectedAt: fraction without trailing zeros."""
    moment = moment.astimezone(dt.UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class WorkloadEntry:
    """One non-Kubernetes workload. ``owner`` is the WorkloadGroup that controls it (auto-registered
    entries); ``healthy`` is the ``Healthy`` condition, None while the agent has reported nothing."""

    name: str
    namespace: str
    address: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    network: str = ""
    locality: str = ""
    weight: int = 0
    service_account: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    owner: str = ""
    healthy: bool | None = None
    message: str = ""

    @property
    def serves(self) -> bool:
        """Whether istiod makes it an endpoint: always, unless health checks are on and it is not (yet) healthy."""
        return self.annotations.get(HEALTH_CHECKS_ENABLED, "").lower() not in ("true", "1", "t") or self.healthy is True

    def spec(self) -> dict:
        values = {"address": self.address, "ports": dict(self.ports), "labels": dict(self.labels), "network": self.network,
                  "locality": self.locality, "weight": self.weight, "serviceAccount": self.service_account}
        return {key: value for key, value in values.items() if value}

    def to_yaml(self) -> dict:
        """The resource as istiod stores it."""
        metadata: dict = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(sorted(self.annotations.items()))
        if self.owner:
            metadata["ownerReferences"] = [{"apiVersion": "networking.istio.io/v1", "kind": "WorkloadGroup", "name": self.owner, "controller": True}]
        resource = {"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry", "metadata": metadata, "spec": self.spec()}
        if self.healthy is not None:
            condition = {"type": HEALTHY, "status": "True" if self.healthy else "False"}
            resource["status"] = {"conditions": [condition | ({"message": self.message} if self.message else {})]}
        return resource


@dataclass(frozen=True)
class WorkloadGroup:
    name: str
    namespace: str
    template: WorkloadEntry
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    probe: dict | None = None

    @classmethod
    def parse(cls, text: str) -> WorkloadGroup:
        """One WorkloadGroup from YAML, checked as istiod's webhook checks it (ValidateWorkloadGroup):
        a template is required, labels must be valid, the probe's numbers non-negative and its one
        method complete. Unknown fields are refused, as the CRD's schema refuses them."""
        document = _document(text, "WorkloadGroup")
        name, namespace = _name(document, "WorkloadGroup")
        where = f"WorkloadGroup {namespace}/{name}"
        spec = _mapping(document.get("spec"), f"{where}: spec")
        _known(spec, ("metadata", "template", "probe"), f"{where}: spec")
        meta = _mapping(spec.get("metadata"), f"{where}: spec.metadata")
        _known(meta, ("labels", "annotations"), f"{where}: spec.metadata")
        if "template" not in spec:
            raise WorkloadError(f"{where}: template is required")
        template = _entry_spec(_mapping(spec["template"], f"{where}: spec.template"), f"{where}: spec.template", name="", namespace=namespace)
        probe = None if spec.get("probe") is None else _probe(_mapping(spec["probe"], f"{where}: spec.probe"), f"{where}: spec.probe")
        return cls(name, namespace, template, _labels(meta.get("labels"), f"{where}: spec.metadata.labels: invalid labels"),
                   _strings(meta.get("annotations"), f"{where}: spec.metadata.annotations"), probe)


class Controller:
    """istiod's WorkloadEntry controller (one istiod instance): the entries it writes and deletes."""

    def __init__(self, instance: str = "istiod-0", grace_period: dt.timedelta = GRACE_PERIOD) -> None:
        self.instance = instance
        self.grace_period = grace_period
        self.entries: dict[tuple[str, str], WorkloadEntry] = {}

    @staticmethod
    def entry_name(group: WorkloadGroup, address: str, network: str = "") -> str:
        """``<group>-<ip>[-<network>]``, the ``:`` of an IPv6 address as ``-``, at most its last 253 characters."""
        name = "-".join([group.name, address.replace(":", "-")] + ([network] if network else []))
        return name[-MAX_NAME:]

    def register(self, group: WorkloadGroup, address: str, now: dt.datetime, network: str = "", labels: dict[str, str] | None = None,
                 identity: tuple[str, str] | None = None, readiness_probe: bool | None = None) -> WorkloadEntry:
        """A VM's proxy connects at ``now`` from ``address`` with its node metadata (``network``,
        ``labels``) and its verified ``identity`` (namespace, service account from its certificate).
        Creates the entry, or marks an existing one connected; ``readiness_probe`` is whether the
        proxy runs one (by default: whether the group has one)."""
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise WorkloadError(f"register: the proxy's address {address!r} is not an IP address (istiod names the entry after it)") from None
        key = (group.namespace, self.entry_name(group, address, network))
        existing = self.entries.get(key)
        if existing is None:
            entry = self._from_group(key[1], group, address, network, labels or {},
                                     group.probe is not None if readiness_probe is None else readiness_probe)
        else:
            entry = existing
        _ensure_can_control(identity, entry)
        last = entry.annotations.get(CONNECTED_AT)
        if existing is not None and ((DISCONNECTED_AT in entry.annotations and now < _parse_time(entry.annotations[DISCONNECTED_AT]))
                                     or (last and now < _parse_time(last))):
            return existing  # a connect older than what the entry already records
        annotations = {k: v for k, v in entry.annotations.items() if k != DISCONNECTED_AT}
        annotations |= {WORKLOAD_CONTROLLER: self.instance, CONNECTED_AT: rfc3339nano(now)}
        self.entries[key] = replace(entry, annotations=annotations)
        return self.entries[key]

    @staticmethod
    def _from_group(name: str, group: WorkloadGroup, address: str, network: str, labels: dict[str, str], probe: bool) -> WorkloadEntry:
        annotations = {AUTO_REGISTRATION_GROUP: group.name} | group.annotations
        if probe:
            annotations[HEALTH_CHECKS_ENABLED] = "true"
        return replace(group.template, name=name, namespace=group.namespace, address=address, network=network or group.template.network,
                       labels=group.template.labels | group.labels | labels, annotations=annotations, owner=group.name)

    def _entry(self, namespace: str, name: str) -> WorkloadEntry:
        try:
            return self.entries[(namespace, name)]
        except KeyError:
            known = ", ".join(n for _, n in sorted(self.entries)) or "none"
            raise WorkloadError(f"workloadentry {namespace}/{name} is not found; entries: {known}") from None

    def disconnect(self, namespace: str, name: str, now: dt.datetime) -> WorkloadEntry:
        """The proxy's last connection to this istiod closed at ``now``: connectedAt gives way to
        disconnectedAt (unless the entry reconnected later, or to another istiod)."""
        entry = self._entry(namespace, name)
        connected = entry.annotations.get(CONNECTED_AT)
        if entry.annotations.get(WORKLOAD_CONTROLLER) != self.instance or (connected and now < _parse_time(connected)):
            return entry
        annotations = {k: v for k, v in entry.annotations.items() if k != CONNECTED_AT} | {DISCONNECTED_AT: rfc3339nano(now)}
        self.entries[(namespace, name)] = replace(entry, annotations=annotations)
        return self.entries[(namespace, name)]

    def report_health(self, namespace: str, name: str, healthy: bool, message: str = "") -> WorkloadEntry:
        """The agent's probe result, written as the ``Healthy`` condition (only to an entry with the
        health-checks annotation, as istiod accepts health reports only from those)."""
        entry = self._entry(namespace, name)
        if HEALTH_CHECKS_ENABLED not in entry.annotations:
            raise WorkloadError(f"workloadentry {namespace}/{name} has no {HEALTH_CHECKS_ENABLED} annotation: its proxy runs no readiness probe")
        self.entries[(namespace, name)] = replace(entry, healthy=healthy, message="" if healthy else message)
        return self.entries[(namespace, name)]

    def cleanup(self, now: dt.datetime) -> list[str]:
        """What istiod's cleanup does at ``now``: auto-registered entries disconnected for at least the
        grace period are deleted (an entry written by hand would only lose its health condition: this
        controller writes none). Returns ``namespace/name`` of each entry deleted."""
        deleted = []
        for key, entry in sorted(self.entries.items()):
            disconnected = entry.annotations.get(DISCONNECTED_AT)
            if entry.annotations.get(CONNECTED_AT) or not disconnected or now - _parse_time(disconnected) < self.grace_period:
                continue
            del self.entries[key]
            deleted.append("/".join(key))
        return deleted


def _ensure_can_control(identity: tuple[str, str] | None, entry: WorkloadEntry) -> None:
    """ensureProxyCanControlEntry: the proxy's certificate must name the entry's namespace and service account."""
    if identity is None:
        raise RegistrationError("registration of WorkloadEntry requires a verified identity")
    if identity[0] != entry.namespace:
        raise RegistrationError(f'registration of WorkloadEntry namespace mismatch: "{identity[0]}" vs "{entry.namespace}"')
    if entry.service_account and identity[1] != entry.service_account:
        raise RegistrationError(f'registration of WorkloadEntry service account mismatch: "{identity[1]}" vs "{entry.service_account}"')


# -- what selects ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pod:
    """A pod as the registry sees it: only a ready pod with an IP is a workload (pod.go onEvent);
    ``ports`` are its named TCP container ports."""

    name: str
    namespace: str
    ip: str
    labels: dict[str, str] = field(default_factory=dict)
    ready: bool = True
    ports: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ServicePort:
    """A ServiceEntry port (``target_port`` a number, 0 unset) or a Kubernetes Service port
    (``target_port`` a number or a container port's name)."""

    number: int
    name: str
    protocol: str = "TCP"
    target_port: int | str = 0


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    namespace: str
    hosts: tuple[str, ...]
    ports: tuple[ServicePort, ...]
    resolution: str = "NONE"
    workload_selector: dict[str, str] | None = None

    @classmethod
    def parse(cls, text: str) -> ServiceEntry:
        """One ServiceEntry from YAML (the fields endpoint selection reads; the rest are refused by name)."""
        document = _document(text, "ServiceEntry")
        name, namespace = _name(document, "ServiceEntry")
        where = f"ServiceEntry {namespace}/{name}: spec"
        spec = _mapping(document.get("spec"), where)
        _known(spec, ("hosts", "ports", "resolution", "location", "workloadSelector", "endpoints"), where)
        if spec.get("workloadSelector") is not None and spec.get("endpoints") is not None:
            raise WorkloadError(f"{where}: only one of WorkloadSelector or Endpoints is allowed in Service Entry")
        hosts = spec.get("hosts")
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and h for h in hosts):
            raise WorkloadError(f"{where}.hosts: one or more host names are required")
        resolution = spec.get("resolution", "NONE")
        if resolution not in RESOLUTIONS:
            raise WorkloadError(f"{where}.resolution: {resolution!r} is not one of {', '.join(RESOLUTIONS)}")
        ports = []
        for index, raw in enumerate(spec.get("ports") or []):
            at = f"{where}.ports[{index}]"
            raw = _mapping(raw, at)
            _known(raw, ("number", "name", "protocol", "targetPort"), at)
            number, port_name, target = raw.get("number"), raw.get("name"), raw.get("targetPort", 0)
            if not _is_port(number) or not isinstance(port_name, str) or not is_dns1123_label(port_name) or not (target == 0 or _is_port(target)):
                raise WorkloadError(f"{at}: expected number 1..65535, a DNS-1123 name and an optional targetPort 1..65535, got {raw!r}")
            ports.append(ServicePort(number, port_name, str(raw.get("protocol", "TCP")), target))
        selector = None
        if spec.get("workloadSelector") is not None:
            raw = _mapping(spec["workloadSelector"], f"{where}.workloadSelector")
            _known(raw, ("labels",), f"{where}.workloadSelector")
            selector = _labels(raw.get("labels"), f"{where}.workloadSelector.labels")
        return cls(name, namespace, tuple(hosts), tuple(ports), resolution, selector)


@dataclass(frozen=True)
class Service:
    """A Kubernetes Service with a selector."""

    name: str
    namespace: str
    selector: dict[str, str]
    ports: tuple[ServicePort, ...]


@dataclass(frozen=True)
class Endpoint:
    """One address and port a client's proxy can send to, and the workload behind it."""

    kind: str  # Pod or WorkloadEntry
    workload: str  # namespace/name
    address: str
    port: int  # 0 for a Unix socket
    service_port: int
    port_name: str


def endpoints_of(service: ServiceEntry | Service, pods: list[Pod], workload_entries: list[WorkloadEntry]) -> list[Endpoint]:
    """The endpoints ``service`` selects: ready pods and serving WorkloadEntries of its namespace whose
    labels include its selector, pods first, then by namespace and name, one per workload and port."""
    if isinstance(service, ServiceEntry) and service.workload_selector is None:
        raise WorkloadError(f"ServiceEntry {service.namespace}/{service.name} has no workloadSelector: its endpoints are its own, nothing is selected")
    selector = service.workload_selector if isinstance(service, ServiceEntry) else service.selector
    dns = isinstance(service, ServiceEntry) and service.resolution in ("DNS", "DNS_ROUND_ROBIN")
    chosen: list[tuple[int, str, str, str, dict[str, int]]] = []  # (kind order, namespace, name, address, ports)
    for pod in pods:
        if pod.namespace == service.namespace and pod.ready and pod.ip and selector.items() <= pod.labels.items():
            chosen.append((0, pod.namespace, pod.name, pod.ip, pod.ports))
    for entry in workload_entries:
        if entry.namespace != service.namespace or not entry.serves or not selector.items() <= entry.labels.items():
            continue
        if not _is_ip(entry.address) and not dns:
            continue  # a host name or a Unix socket: for DNS ServiceEntries only
        chosen.append((1, entry.namespace, entry.name, entry.address, entry.ports))
    endpoints = []
    for order, namespace, name, address, ports in sorted(chosen, key=lambda c: c[:3]):
        kind = ("Pod", "WorkloadEntry")[order]
        for port in service.ports:
            target = _target_port(service, port, address, ports)
            if target is not None:
                endpoints.append(Endpoint(kind, f"{namespace}/{name}", address.removeprefix(UNIX_PREFIX), target, port.number, port.name))
    return endpoints


def _target_port(service: ServiceEntry | Service, port: ServicePort, address: str, ports: dict[str, int]) -> int | None:
    """Where one workload takes one service port (None: it has no such port and the Service names one)."""
    if isinstance(service, ServiceEntry):  # convertWorkloadInstanceToServiceInstance
        if address.startswith(UNIX_PREFIX):
            return 0
        return ports.get(port.name) or int(port.target_port) or port.number
    if isinstance(port.target_port, str) and port.target_port:  # serviceInstanceFromWorkloadInstance: a named targetPort
        return ports.get(port.target_port)
    return int(port.target_port) or port.number


# -- reading YAML ------------------------------------------------------------------------------

def _document(text: str, kind: str) -> dict:
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        raise WorkloadError(f"not valid YAML: {error}") from None
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise WorkloadError(f"expected one {kind} resource, got {len(documents)} document(s)")
    document = documents[0]
    if document.get("kind") != kind or document.get("apiVersion") not in API_VERSIONS:
        raise WorkloadError(f"expected kind {kind} of {', '.join(API_VERSIONS)}, got {document.get('apiVersion')!r} {document.get('kind')!r}")
    _known(document, ("apiVersion", "kind", "metadata", "spec"), kind)
    return document


def _name(document: dict, kind: str) -> tuple[str, str]:
    metadata = _mapping(document.get("metadata"), f"{kind}: metadata")
    name, namespace = metadata.get("name"), metadata.get("namespace", "default")
    if not isinstance(name, str) or len(name) > MAX_NAME or name != name.lower() or not all(is_dns1123_label(p) for p in name.split(".")):
        raise WorkloadError(f"{kind}: metadata.name must be a lower-case DNS-1123 subdomain (at most {MAX_NAME} characters), got {name!r}")
    if not isinstance(namespace, str) or not is_dns1123_label(namespace) or namespace != namespace.lower():
        raise WorkloadError(f"{kind}: metadata.namespace must be a lower-case DNS-1123 label, got {namespace!r}")
    return name, namespace


def _mapping(value, where: str) -> dict:
    return yamlfields.mapping(value, where, WorkloadError)


def _known(values: dict, accepted: tuple[str, ...], where: str) -> None:
    yamlfields.known(values, accepted, where, WorkloadError)


def _strings(value, where: str) -> dict[str, str]:
    return yamlfields.string_map(value, where, WorkloadError)


def _labels(value, where: str) -> dict[str, str]:
    """Labels checked as Istio checks them (pkg/config/labels/instance.go Validate), in its words: a key is
    an optional DNS prefix and ``/`` and a name of at most 63 characters; a value may be empty."""
    labels = _strings(value, where)
    for key, item in labels.items():
        match = _TAG.match(key)
        if match is None or len(match.group(1) or "") - 1 > 253 or len(match.group(2)) > 63:
            raise WorkloadError(f'{where}: invalid tag key: "{key}"')
        if not _LABEL_VALUE.match(item):
            raise WorkloadError(f'{where}: invalid tag value: "{item}"')
    return labels


def _is_port(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        return False


def _entry_spec(spec: dict, where: str, name: str, namespace: str) -> WorkloadEntry:
    _known(spec, ("address", "ports", "labels", "network", "locality", "weight", "serviceAccount"), where)
    ports = spec.get("ports") or {}
    if not isinstance(ports, dict):
        raise WorkloadError(f"{where}.ports: expected a mapping of port name to number, got {ports!r}")
    for port_name, number in ports.items():
        if not isinstance(port_name, str) or not is_dns1123_label(port_name):
            raise WorkloadError(f"{where}.ports: invalid port name: {port_name}")
        if not _is_port(number):
            raise WorkloadError(f"{where}.ports.{port_name}: port number {number!r} must be in the range 1..65535")
    weight = spec.get("weight", 0)
    if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
        raise WorkloadError(f"{where}.weight: expected a whole number >= 0, got {weight!r}")
    text = {key: spec.get(key, "") for key in ("address", "network", "locality", "serviceAccount")}
    for key, value in text.items():
        if not isinstance(value, str):
            raise WorkloadError(f"{where}.{key}: expected a string, got {value!r}")
    return WorkloadEntry(name, namespace, text["address"], dict(ports), _labels(spec.get("labels"), f"{where}.labels"), text["network"],
                         text["locality"], weight, text["serviceAccount"])


def _probe(probe: dict, where: str) -> dict:
    """validateReadinessProbe: non-negative numbers and exactly one known method; Istio's words."""
    _known(probe, PROBE_NUMBERS + PROBE_METHODS, where)
    for key in PROBE_NUMBERS:
        value = probe.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool):
            raise WorkloadError(f"{where}.{key}: expected a whole number, got {value!r}")
        if value < 0:
            raise WorkloadError(f"{where}: {key} must be non-negative")
    methods = [m for m in PROBE_METHODS if m in probe]
    if len(methods) > 1:
        raise WorkloadError(f"{where}: only one of {', '.join(PROBE_METHODS)} may be set, got {', '.join(methods)}")
    if not methods:
        raise WorkloadError(f"{where}: unknown health check method <nil>")
    method, values = methods[0], _mapping(probe[methods[0]], f"{where}.{methods[0]}")
    if method == "grpc":  # validation.go has no case for it: the webhook refuses it
        raise WorkloadError(f"{where}: unknown health check method *v1alpha3.ReadinessProbe_Grpc")
    if method == "exec":
        _known(values, ("command",), f"{where}.exec")
        if not values.get("command"):
            raise WorkloadError(f"{where}: exec.command is required")
    else:
        _known(values, ("path", "port", "host", "scheme", "httpHeaders") if method == "httpGet" else ("host", "port"), f"{where}.{method}")
        if not _is_port(values.get("port")):
            raise WorkloadError(f"{where}.{method}.port: port number {values.get('port', 0)} must be in the range 1..65535")
        if values.get("scheme", "HTTP") not in ("HTTP", "HTTPS"):
            raise WorkloadError(f'{where}: httpGet.scheme must be one of "HTTPS", "HTTP"')
        for header in values.get("httpHeaders") or []:
            if not _PROBE_HEADER.match(str(_mapping(header, f"{where}.httpGet.httpHeaders").get("name", ""))):
                raise WorkloadError(f"{where}: header name {header.get('name', '')} is not a valid header name")
    return dict(probe)

"""Gateways, their listeners, and which listeners a route's parentRef attaches it to.

A Gateway is taken when its GatewayClass is in the input: meshlab is the controller of every class
it is given (Envoy Gateway takes only classes naming its own controllerName). Its listeners are
checked one by one, then against each other on a port, as Envoy Gateway v1.9.0 does
(internal/gatewayapi/listener.go ProcessListeners and validate.go): a listener whose protocol is
not HTTP, HTTPS, TLS, TCP or UDP is not Accepted (UnsupportedProtocol); route kinds a protocol cannot
carry are InvalidRouteKinds; an HTTPS listener needs certificateRefs to Secrets that exist (and a
ReferenceGrant across namespaces); listeners of different protocols on one port (HTTPS and TLS
count as one) are all Conflicted (ProtocolConflict), as are listeners of one port sharing a
hostname (HostnameConflict). A conflicted or invalid listener is not Programmed and carries no
routes. meshlab routes HTTP and HTTPS; TLS, TCP and UDP listeners are checked and counted but no
route kind meshlab models attaches to them.

A route's parentRef selects a Gateway's listeners by sectionName and port (none: NoMatchingParent);
of those, the listeners whose allowedRoutes admit the route's kind and namespace (none:
NotAllowedByListeners); of those, the listeners with hostnames in common with the route (none:
NoMatchingListenerHostname) carry it, and count it in attachedRoutes (Gateway API v1.6.1
apis/v1/shared_types.go, gateway_types.go ListenerStatus.AttachedRoutes).

    ListenerState    a listener, its conditions so far, the route kinds it carries, its attached routes
    GatewayState     a Gateway, whether its class exists, its listeners
    gateways         Resources -> GatewayStates with every listener's conditions settled
    parent_listeners a route's parentRef -> the listeners that admit it, or the condition that says why none
    served_hosts     the hostnames a listener serves for a route (listener and route hostnames intersected)
    statuses         the Status of each GatewayClass, Gateway and listener
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshlab.gateway import hostnames, status
from meshlab.gateway.refs import permitted
from meshlab.gateway.resources import GROUP, Gateway, Listener, ParentReference, Resources
from meshlab.gateway.status import Condition, Status

#: Route kinds each protocol carries (Envoy Gateway v1.9.0 listener.go, allowedRouteKindsForProtocol).
ROUTE_KINDS = {"HTTP": ("HTTPRoute", "GRPCRoute"), "HTTPS": ("HTTPRoute", "GRPCRoute"), "TLS": ("TCPRoute", "TLSRoute"),
               "TCP": ("TCPRoute",), "UDP": ("UDPRoute",)}


@dataclass(eq=False)
class ListenerState:
    gateway: Gateway
    listener: Listener
    conditions: dict[str, Condition] = field(default_factory=dict)
    supported_kinds: tuple[str, ...] = ()
    spec_valid: bool = True
    protocol_conflicted: bool = False
    attached_routes: int = 0

    @property
    def name(self) -> str:
        """``<gateway ns>/<gateway name>/<listener name>``, as Envoy Gateway names its IR listener."""
        return f"{self.gateway.namespace}/{self.gateway.name}/{self.listener.name}"

    @property
    def programmed(self) -> bool:
        found = self.conditions.get(status.PROGRAMMED)
        return found is not None and found.status == "True"

    def set(self, type_: str, state: str, reason: str, message: str) -> None:
        self.conditions[type_] = Condition(type_, state, reason, message)

    def admits(self, kind: str, namespace: str, resources: Resources) -> bool:
        """allowedRoutes: the route kind among the supported ones, and its namespace admitted."""
        if kind not in self.supported_kinds:
            return False
        namespaces = self.listener.allowed_routes.namespaces
        if namespaces.from_ == "All":
            return True
        if namespaces.from_ == "Selector":
            return namespaces.selector is not None and namespaces.selector.matches(resources.namespace_labels(namespace))
        return namespace == self.gateway.namespace


@dataclass
class GatewayState:
    gateway: Gateway
    class_found: bool
    listeners: list[ListenerState]


def gateways(resources: Resources) -> list[GatewayState]:
    """Every Gateway, oldest first then by namespace and name (Envoy Gateway's order,
    internal/gatewayapi/resource/resource.go Sort), with its listeners' conditions settled."""
    found = []
    for gateway in sorted(resources.gateways, key=lambda g: g.age):
        listeners = [ListenerState(gateway, listener) for listener in gateway.spec.listeners]
        state = GatewayState(gateway, resources.gateway_class(gateway.spec.gateway_class_name) is not None, listeners)
        if state.class_found:
            for listener in listeners:
                _check(listener, resources)
            _protocol_conflicts(listeners)
            _hostname_conflicts(listeners)
            _layer4_conflicts(listeners)
            for listener in listeners:
                _settle(listener)
        found.append(state)
    return found


def _check(state: ListenerState, resources: Resources) -> None:
    """One listener alone (validate.go validateListenerSpec): namespaces selector, protocol and route
    kinds, TLS, hostname."""
    listener = state.listener
    namespaces = listener.allowed_routes.namespaces
    if namespaces.from_ == "Selector" and namespaces.selector is None:
        state.set(status.PROGRAMMED, "False", status.INVALID,
                  'The allowedRoutes.namespaces.selector field must be specified when allowedRoutes.namespaces.from is set to "Selector".')
        state.spec_valid = False
    if listener.protocol not in ROUTE_KINDS:
        state.set(status.ACCEPTED, "False", status.UNSUPPORTED_PROTOCOL,
                  f"Protocol {listener.protocol} is unsupported, must be {', '.join(ROUTE_KINDS)}.")
        state.spec_valid = False
        return
    possible = ROUTE_KINDS[listener.protocol]
    if listener.protocol == "TLS" and listener.tls is not None and listener.tls.mode == "Passthrough":
        possible = ("TLSRoute",)
    kinds = listener.allowed_routes.kinds
    if not kinds:
        state.supported_kinds = possible
    else:
        supported = []
        for kind in kinds:
            if kind.group != GROUP:
                state.set(status.RESOLVED_REFS, "False", status.INVALID_ROUTE_KINDS, f"Group is not supported, group must be {GROUP}")
            elif kind.kind in possible:
                supported.append(kind.kind)
            else:
                state.set(status.RESOLVED_REFS, "False", status.INVALID_ROUTE_KINDS,
                          f"{kind.kind} is not supported, kind must be one of {list(supported or possible)}")
        state.supported_kinds = tuple(supported)
        state.spec_valid = state.spec_valid and len(supported) == len(kinds)
    if listener.protocol == "HTTPS":
        _check_certificates(state, resources)


def _check_certificates(state: ListenerState, resources: Resources) -> None:
    """An HTTPS listener's certificateRefs (validate.go validateTerminateModeAndGetTLSSecrets): group
    core, kind Secret, a ReferenceGrant across namespaces, the Secret present and of type
    kubernetes.io/tls. The certificate itself is not read: meshlab's gateway does not terminate TLS."""
    tls = state.listener.tls
    if tls is None or not tls.certificate_refs:
        state.set(status.PROGRAMMED, "False", status.INVALID, "Listener must have TLS set when protocol is HTTPS." if tls is None
                  else "Listener must have at least 1 TLS certificate ref")
        state.spec_valid = False
        return
    namespace = state.gateway.namespace
    problems = []
    for i, ref in enumerate(tls.certificate_refs):
        target = ref.namespace or namespace
        if ref.group != "" or ref.kind != "Secret":
            problems.append((status.INVALID_CERTIFICATE_REF, f"certificate refs {i}: Listener's TLS certificate ref must be a core Secret."))
        elif not permitted(resources, (GROUP, "Gateway", namespace), ("", "Secret", target, ref.name)):
            problems.append((status.REF_NOT_PERMITTED, f"certificate refs {i}: Certificate ref to secret {target}/{ref.name} not permitted by any ReferenceGrant."))
        elif (secret := resources.secret(target, ref.name)) is None:
            problems.append((status.INVALID_CERTIFICATE_REF, f"certificate refs {i}: Secret {target}/{ref.name} does not exist."))
        elif secret.type != "kubernetes.io/tls":
            problems.append((status.INVALID_CERTIFICATE_REF, f"certificate refs {i}: Secret {target}/{ref.name} must be of type kubernetes.io/tls."))
    if problems:
        state.conditions[status.RESOLVED_REFS] = status.merged(status.RESOLVED_REFS, problems)
        state.spec_valid = False


def _conflicted(state: ListenerState, reason: str, message: str) -> None:
    state.set(status.CONFLICTED, "True", reason, message)
    state.protocol_conflicted = state.protocol_conflicted or reason == status.PROTOCOL_CONFLICT


def _by_port(listeners: list[ListenerState], keep) -> dict[int, list[ListenerState]]:
    ports: dict[int, list[ListenerState]] = {}
    for state in listeners:
        if keep(state):
            ports.setdefault(state.listener.port, []).append(state)
    return ports


def _protocol_conflicts(listeners: list[ListenerState]) -> None:
    """Listeners of one port must agree on the protocol (UDP aside; HTTPS and TLS agree): if they do
    not, none wins, all are conflicted (validate.go validateConflictedProtocolsListeners)."""
    family = {"HTTPS": "https/tls", "TLS": "https/tls"}
    for states in _by_port(listeners, lambda s: s.spec_valid and s.listener.protocol in ROUTE_KINDS).values():
        tcp = [s for s in states if s.listener.protocol != "UDP"]
        if len({family.get(s.listener.protocol, s.listener.protocol) for s in tcp}) > 1:
            names = ", ".join(sorted(s.name for s in tcp))
            for state in tcp:
                _conflicted(state, status.PROTOCOL_CONFLICT, f"All listeners for a given port must use a compatible protocol, conflicting listeners: {names}")


def _hostname_conflicts(listeners: list[ListenerState]) -> None:
    """Listeners of one port must differ in hostname (no hostname counts as one): all that share
    one are conflicted (validate.go validateConflictedHostnameListeners)."""
    layer7 = _by_port(listeners, lambda s: s.listener.protocol not in ("TCP", "UDP") and s.spec_valid and not s.protocol_conflicted)
    for states in layer7.values():
        for hostname in {s.listener.hostname for s in states}:
            sharing = [s for s in states if s.listener.hostname == hostname]
            if len(sharing) > 1:
                names = ", ".join(sorted(s.name for s in sharing))
                for state in sharing:
                    _conflicted(state, status.HOSTNAME_CONFLICT, f"All listeners for a given port must use a unique hostname, conflicting listeners: {names}")


def _layer4_conflicts(listeners: list[ListenerState]) -> None:
    """One TCP and one UDP listener per port: later ones are conflicted (validateConflictedLayer4Listeners)."""
    for protocol in ("TCP", "UDP"):
        for states in _by_port(listeners, lambda s: s.spec_valid and s.listener.protocol == protocol).values():
            for state in states[1:]:
                _conflicted(state, status.PROTOCOL_CONFLICT, f"Only one {protocol} listener is allowed in a given port")


def _settle(state: ListenerState) -> None:
    """The final conditions (validate.go validateListenerConditions): a listener with no problem is
    Programmed, Accepted and ResolvedRefs; with a certificate problem only, Accepted but not
    Programmed; with any other, not Programmed. Envoy Gateway leaves Accepted unset on a Gateway's
    conflicted listener; meshlab sets it False with the conflict's reason."""
    if not state.conditions:
        state.set(status.PROGRAMMED, "True", status.PROGRAMMED, "Sending translated listener configuration to the data plane")
        state.set(status.ACCEPTED, "True", status.ACCEPTED, "Listener has been successfully translated")
        state.set(status.RESOLVED_REFS, "True", status.RESOLVED_REFS, "Listener references have been resolved")
        return
    refs = state.conditions.get(status.RESOLVED_REFS)
    if list(state.conditions) == [status.RESOLVED_REFS] and refs is not None and status.INVALID_CERTIFICATE_REF in refs.reason:
        state.set(status.ACCEPTED, "True", status.ACCEPTED, "Listener has been successfully translated")
    state.conditions.setdefault(status.PROGRAMMED, Condition(status.PROGRAMMED, "False", status.INVALID,
                                                             "Listener is invalid, see other Conditions for details."))
    state.conditions.setdefault(status.RESOLVED_REFS, Condition(status.RESOLVED_REFS, "True", status.RESOLVED_REFS,
                                                                "Listener references have been resolved"))
    conflict = state.conditions.get(status.CONFLICTED)
    state.conditions.setdefault(status.ACCEPTED, Condition(status.ACCEPTED, "False", conflict.reason if conflict else status.INVALID,
                                                           conflict.message if conflict else "Listener is invalid, see other Conditions for details."))


def parent_listeners(ref: ParentReference, kind: str, namespace: str, states: list[GatewayState],
                     resources: Resources) -> list[ListenerState] | Condition:
    """The listeners a route (``kind`` in ``namespace``) may attach to through ``ref``, or the
    Accepted=False condition that says why there are none."""
    gateway_namespace = ref.namespace or namespace
    if ref.group != GROUP or ref.kind != "Gateway":
        return _refused(status.NO_MATCHING_PARENT, f"parentRef {ref.group}/{ref.kind} is not a Gateway; meshlab attaches routes to Gateways")
    state = next((s for s in states if s.gateway.namespace == gateway_namespace and s.gateway.name == ref.name), None)
    if state is None:
        return _refused(status.NO_MATCHING_PARENT, f"No Gateway {gateway_namespace}/{ref.name} in the input")
    if not state.class_found:
        return _refused(status.NO_MATCHING_PARENT, f"Gateway {gateway_namespace}/{ref.name} names GatewayClass "
                        f"{state.gateway.spec.gateway_class_name}, which is not in the input")
    selected = [s for s in state.listeners
                if (ref.section_name is None or ref.section_name == s.listener.name) and (ref.port is None or ref.port == s.listener.port)]
    if not selected:
        return _refused(status.NO_MATCHING_PARENT, "No listeners match this parent ref")
    admitted = [s for s in selected if s.admits(kind, namespace, resources)]
    if not admitted:
        return _refused(status.NOT_ALLOWED_BY_LISTENERS, "No listeners included by this parent ref allowed this attachment.")
    return admitted


def _refused(reason: str, message: str) -> Condition:
    return Condition(status.ACCEPTED, "False", reason, message)


def served_hosts(state: ListenerState, route_hostnames: tuple[str, ...], siblings: list[ListenerState]) -> list[str]:
    """The hostnames ``state`` serves for a route: the intersection, less any hostname another
    listener of the same Gateway and port names exactly, which that listener serves instead
    (Envoy Gateway v1.9.0 helpers.go computeHosts)."""
    served = hostnames.intersect(state.listener.hostname, route_hostnames)
    taken = {s.listener.hostname for s in siblings if s is not state and s.listener.port == state.listener.port and s.listener.hostname}
    return [host for host in served if host not in taken]


def statuses(states: list[GatewayState], resources: Resources) -> list[Status]:
    """GatewayClass, Gateway and listener statuses (call after routes have been attached and counted)."""
    found = [Status("GatewayClass", "", c.name, (Condition(status.ACCEPTED, "True", status.ACCEPTED, "Valid GatewayClass"),))
             for c in resources.gateway_classes]
    for state in states:
        gateway = state.gateway
        if not state.class_found:
            message = f"GatewayClass {gateway.spec.gateway_class_name} is not in the input: no controller has taken this Gateway"
            found.append(Status("Gateway", gateway.namespace, gateway.name, (
                Condition(status.ACCEPTED, "Unknown", status.PENDING, message), Condition(status.PROGRAMMED, "Unknown", status.PENDING, message))))
            continue
        found.append(Status("Gateway", gateway.namespace, gateway.name, (_gateway_accepted(state), _gateway_programmed(state))))
        found += [Status("Gateway", gateway.namespace, gateway.name, tuple(listener.conditions.values()), listener=listener.listener.name,
                         attached_routes=listener.attached_routes) for listener in state.listeners]
    return found


def _gateway_accepted(state: GatewayState) -> Condition:
    """Accepted from the listeners' (Envoy Gateway v1.9.0 status/gateway.go computeGatewayAcceptedFromListeners)."""
    refused = sorted(s.listener.name for s in state.listeners if s.conditions[status.ACCEPTED].status != "True")
    if not refused:
        return Condition(status.ACCEPTED, "True", status.ACCEPTED, "The Gateway has been accepted")
    if len(refused) < len(state.listeners):
        return Condition(status.ACCEPTED, "True", status.LISTENERS_NOT_VALID, f"Listeners not valid: {', '.join(refused)}")
    return Condition(status.ACCEPTED, "False", status.LISTENERS_NOT_VALID, f"No listeners are valid: {', '.join(refused)}")


def _gateway_programmed(state: GatewayState) -> Condition:
    if any(s.programmed for s in state.listeners):
        return Condition(status.PROGRAMMED, "True", status.PROGRAMMED, "The Gateway's listeners are programmed in the model's proxy")
    return Condition(status.PROGRAMMED, "False", status.INVALID, "No listener of the Gateway is programmed")

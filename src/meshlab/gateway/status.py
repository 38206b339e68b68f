"""Status conditions in the Gateway API's own types and reasons (Gateway API v1.6.1 apis/v1/
gatewayclass_types.go, gateway_types.go, shared_types.go). A condition's message is meshlab's own
words (often Envoy Gateway v1.9.0's, internal/gatewayapi); type, status and reason are the API's.

Where several problems of one condition type meet on one route parent, the reasons are joined
sorted with commas and the messages with newlines, as Envoy Gateway's status collector does
(internal/gatewayapi/status/error.go, MultiStatusError.Reason), so a route with a missing backend
and a forbidden one reads ``BackendNotFound,RefNotPermitted``.

    Condition   one condition: type, status ("True"/"False"/"Unknown"), reason, message
    Status      the conditions of one object, one route parent, or one Gateway listener
    merged      several problems of one condition type as one False condition
"""

from __future__ import annotations

from dataclasses import dataclass

# Condition types and reasons, by the constant names of apis/v1 (v1.6.1).
ACCEPTED = "Accepted"
PROGRAMMED = "Programmed"
RESOLVED_REFS = "ResolvedRefs"
CONFLICTED = "Conflicted"
PARTIALLY_INVALID = "PartiallyInvalid"

# RouteConditionReason (shared_types.go)
NOT_ALLOWED_BY_LISTENERS = "NotAllowedByListeners"
NO_MATCHING_LISTENER_HOSTNAME = "NoMatchingListenerHostname"
NO_MATCHING_PARENT = "NoMatchingParent"
UNSUPPORTED_VALUE = "UnsupportedValue"
INCOMPATIBLE_FILTERS = "IncompatibleFilters"
REF_NOT_PERMITTED = "RefNotPermitted"
INVALID_KIND = "InvalidKind"
BACKEND_NOT_FOUND = "BackendNotFound"

# ListenerConditionReason (gateway_types.go)
HOSTNAME_CONFLICT = "HostnameConflict"
PROTOCOL_CONFLICT = "ProtocolConflict"
UNSUPPORTED_PROTOCOL = "UnsupportedProtocol"
INVALID = "Invalid"
INVALID_ROUTE_KINDS = "InvalidRouteKinds"
INVALID_CERTIFICATE_REF = "InvalidCertificateRef"

# GatewayConditionReason (gateway_types.go)
LISTENERS_NOT_VALID = "ListenersNotValid"
PENDING = "Pending"


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str

    def __post_init__(self) -> None:
        if self.status not in ("True", "False", "Unknown"):
            raise ValueError(f"a condition's status is True, False or Unknown, got {self.status!r}")

    def __str__(self) -> str:
        return f"{self.type}={self.status} ({self.reason}): {self.message}"


@dataclass(frozen=True)
class Status:
    """The conditions of one object (``parent`` and ``listener`` None), of one route parent
    (``parent`` = ``ns/gateway[/section][:port]`` as the parentRef names it), or of one Gateway
    listener (``listener`` = its name, with ``attached_routes`` counted as the API defines it)."""

    kind: str
    namespace: str
    name: str
    conditions: tuple[Condition, ...]
    parent: str | None = None
    listener: str | None = None
    attached_routes: int | None = None

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    def __str__(self) -> str:
        where = f" parent {self.parent}" if self.parent else f" listener {self.listener}" if self.listener else ""
        subject = f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"
        routes = f" attachedRoutes={self.attached_routes}" if self.attached_routes is not None else ""
        return f"{subject}{where}{routes}: " + "; ".join(f"{c.type}={c.status} {c.reason}" for c in self.conditions)


def merged(type_: str, problems: list[tuple[str, str]]) -> Condition:
    """One False condition for several (reason, message) problems of the same type, as Envoy Gateway joins them."""
    reasons = ",".join(sorted({reason for reason, _ in problems}))
    return Condition(type_, "False", reasons, "\n".join(message for _, message in problems))

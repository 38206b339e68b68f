"""References across objects: may this route name that Service, and does it exist?

A reference into another namespace holds only if a ReferenceGrant in the target namespace lets the
referring kind from the referring namespace reach the target kind (and name, if the grant names
one) (Gateway API v1.6.1 apis/v1beta1/referencegrant_types.go). A backendRef then resolves in Envoy
Gateway v1.9.0's order (internal/gatewayapi/validate.go, validateBackendRef): group, kind,
namespace permission, port, the Service. meshlab routes to Services only. A ServiceImport of the
Multi-Cluster Services API (group multicluster.x-k8s.io), which Envoy Gateway accepts, is known but not
modelled: meshlab's inputs never hold one, so a reference to it is BackendNotFound, as Envoy Gateway
answers when the ServiceImport does not exist (validate.go, validateBackendServiceImport). Envoy
Gateway's own Backend kind is refused as InvalidKind.

Whether a Service exists depends on ``add_missing``: as egctl's ``--add-missing-resources``, a
Service the input does not declare is taken to exist with the port asked for; otherwise the
declared Services are the cluster's, and a missing one (or a missing port) is BackendNotFound.

    permitted       is a cross-namespace reference allowed by a ReferenceGrant
    Resolved        a backendRef that resolved: the Service port, its weight and address
    Unresolved      a backendRef that did not: the ResolvedRefs reason and message
    resolve         backendRef -> Resolved or Unresolved
"""

from __future__ import annotations

from dataclasses import dataclass

from meshlab.gateway import status
from meshlab.gateway.resources import BackendObjectReference, Resources


def permitted(resources: Resources, source: tuple[str, str, str], target: tuple[str, str, str, str]) -> bool:
    """``source`` = (group, kind, namespace) may refer to ``target`` = (group, kind, namespace, name)."""
    group, kind, namespace = source
    to_group, to_kind, to_namespace, to_name = target
    if namespace == to_namespace:
        return True
    for grant in resources.reference_grants:
        if grant.namespace != to_namespace:
            continue
        if not any(f.group == group and f.kind == kind and f.namespace == namespace for f in grant.spec.from_):
            continue
        if any(t.group == to_group and t.kind == to_kind and (not t.name or t.name == to_name) for t in grant.spec.to):
            return True
    return False


#: The Multi-Cluster Services API's ServiceImport: (group, kind).
SERVICE_IMPORT = ("multicluster.x-k8s.io", "ServiceImport")


@dataclass(frozen=True)
class Resolved:
    namespace: str
    name: str
    port: int
    weight: int
    #: the Service's clusterIP, or its cluster DNS name when the input gives none
    address: str


@dataclass(frozen=True)
class Unresolved:
    reason: str
    message: str


def resolve(ref: BackendObjectReference, weight: int, route_kind: str, route_namespace: str, resources: Resources,
            add_missing: bool) -> Resolved | Unresolved:
    """Resolve a backendRef of a ``route_kind`` in ``route_namespace`` (a mirror's ref weighs 1)."""
    namespace = ref.namespace or route_namespace
    if (ref.group, ref.kind) == SERVICE_IMPORT:
        if not permitted(resources, ("gateway.networking.k8s.io", route_kind, route_namespace), (*SERVICE_IMPORT, namespace, ref.name)):
            return Unresolved(status.REF_NOT_PERMITTED, f"Backend ref to ServiceImport {namespace}/{ref.name} not permitted by any ReferenceGrant.")
        return Unresolved(status.BACKEND_NOT_FOUND, f"ServiceImport {namespace}/{ref.name} not found (meshlab does not model the Multi-Cluster Services API).")
    if ref.group != "":
        return Unresolved(status.INVALID_KIND, f"Group {ref.group!r} is invalid, only the core API group (empty) is supported")
    if ref.kind != "Service":
        return Unresolved(status.INVALID_KIND, f"Kind {ref.kind!r} is invalid, only Service is supported")
    if not permitted(resources, ("gateway.networking.k8s.io", route_kind, route_namespace), ("", "Service", namespace, ref.name)):
        return Unresolved(status.REF_NOT_PERMITTED, f"Backend ref to Service {namespace}/{ref.name} not permitted by any ReferenceGrant.")
    assert ref.port is not None  # a Service reference without a port is refused at load (its CRD's CEL rule)
    service = resources.service(namespace, ref.name)
    if service is None:
        if not add_missing:
            return Unresolved(status.BACKEND_NOT_FOUND, f"Service {namespace}/{ref.name} not found.")
        return Resolved(namespace, ref.name, ref.port, weight, f"{ref.name}.{namespace}.svc.cluster.local")
    if service.spec.type == "ExternalName":
        return Unresolved(status.UNSUPPORTED_VALUE, f"Service {namespace}/{ref.name} is of type ExternalName, which is not supported as a backend.")
    if not add_missing and not any(p.port == ref.port and p.protocol == "TCP" for p in service.spec.ports):
        return Unresolved(status.BACKEND_NOT_FOUND, f"TCP port {ref.port} not found on Service {namespace}/{ref.name}.")
    return Resolved(namespace, ref.name, ref.port, weight, service.spec.cluster_ip or f"{ref.name}.{namespace}.svc.cluster.local")

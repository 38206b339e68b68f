"""The Gateway API, modelled: how a gateway turns GatewayClasses, Gateways, HTTPRoutes, GRPCRoutes
and ReferenceGrants into the listeners, routes and clusters an Envoy proxy runs, and into the
status conditions a controller writes back; and which backend then answers a request.

``load`` reads YAML into typed resources (refusing what the Gateway API's CRDs refuse);
``translate`` makes Envoy's configuration and the statuses, as Envoy Gateway v1.9.0 would;
``match`` runs Envoy's route matching (``meshlab.gateway.envoy``) on it for one request.

    fields       typed parsing with the CRDs' constraints, and GatewayAPIError
    resources    the resources as dataclasses, and load
    schema       validation by the CRDs themselves (openAPIV3Schema and CEL rules)
    hostnames    listener and route hostnames: intersection, wildcards
    refs         ReferenceGrants and backendRef resolution
    attach       Gateways, listeners and their conflicts, and which listeners a route attaches to
    status       Condition and Status, with the API's types and reasons
    precedence   the order Envoy tries route matches in
    xds          Envoy's configuration objects as Envoy Gateway shapes them
    translate    Resources -> Translation
    envoy        Envoy's route matching as a function
    match        Translation + Request -> Decision
    ingress      networking.k8s.io/v1 Ingress -> Gateway API resources
"""

from __future__ import annotations

from meshlab.gateway.envoy import Backend, Request
from meshlab.gateway.fields import GatewayAPIError
from meshlab.gateway.match import Decision, match
from meshlab.gateway.resources import Resources, load
from meshlab.gateway.translate import Translation, translate

__all__ = ["GatewayAPIError", "Resources", "load", "Translation", "translate", "Request", "Decision", "Backend", "match"]

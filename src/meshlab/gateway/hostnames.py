"""Hostnames: which of a route's hostnames a listener serves, and which listener is most specific.

The Gateway API (v1.6.1 apis/v1/httproute_types.go, HTTPRouteSpec.Hostnames; gateway_types.go,
Listener.Hostname): a ``*.`` prefix is a suffix match over one or more labels (``*.example.com``
matches ``a.example.com`` and ``a.b.example.com``, not ``example.com``); a listener without a
hostname serves every name; when both name hostnames, only the route's hostnames that match the
listener's are served, and none is a reason to refuse the route (NoMatchingListenerHostname). When
both are wildcards the spec says nothing: as Envoy Gateway v1.9.0 (internal/gatewayapi/helpers.go,
computeHosts) the narrower of the two is the intersection.

    wildcard_matches   a wildcard hostname matches a hostname or a narrower wildcard
    intersect          the hostnames a listener serves for a route (empty: no intersection)
    specificity        a sort key: exact names before wildcards, longer wildcards before shorter
"""

from __future__ import annotations


def wildcard_matches(wildcard: str, hostname: str) -> bool:
    """``*.example.com`` matches ``a.example.com``, ``a.b.example.com`` and the wildcard ``*.a.example.com``."""
    suffix = wildcard[1:]
    if hostname.startswith("*"):
        rest = hostname[1:]
        return rest.endswith(suffix) and len(rest) > len(suffix) and rest[: len(rest) - len(suffix)].startswith(".")
    return hostname.endswith(suffix) and len(hostname) > len(suffix)


def intersect(listener_hostname: str | None, route_hostnames: tuple[str, ...]) -> list[str]:
    """The hostnames a listener serves for a route, sorted: the listener's own name (or ``*``, all
    names) when the route names none; otherwise each route hostname the listener's name admits,
    narrowed to the listener's where the listener's is the narrower."""
    if not route_hostnames:
        return [listener_hostname or "*"]
    if not listener_hostname:
        return sorted(set(route_hostnames))
    served: set[str] = set()
    for hostname in route_hostnames:
        if hostname == listener_hostname:
            served.add(hostname)
            continue
        if listener_hostname.startswith("*") and wildcard_matches(listener_hostname, hostname):
            served.add(hostname)
        if hostname.startswith("*") and wildcard_matches(hostname, listener_hostname):
            served.add(listener_hostname)
    return sorted(served)


def specificity(hostname: str | None) -> tuple[int, int]:
    """Sort key of a listener's hostname, most specific first: an exact name, then wildcards by
    length, then no hostname (all names)."""
    if not hostname:
        return (2, 0)
    return (1, -len(hostname)) if hostname.startswith("*") else (0, -len(hostname))

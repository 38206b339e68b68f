"""What an AuthorizationPolicy can see: the destination workload and one request's attributes.

Istio compiles AuthorizationPolicy into Envoy's RBAC filter, which matches on what the server-side
proxy knows about a request: the peer's identity from its mTLS certificate, the addresses and port,
and, for HTTP only, the method, path, host, headers and the claims of a JWT that RequestAuthentication
verified. There is no clock among them: "only at night" is not an attribute Istio can match.

    Workload  the destination: its namespace and labels (what a policy's namespace and selector pick)
    Request   one HTTP request or TCP connection as the destination's proxy sees it
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PROTOCOLS = ("http", "tcp")


@dataclass(frozen=True)
class Workload:
    """The workload a request is for: a policy applies when its namespace is the workload's (or the
    root namespace) and its ``selector.matchLabels`` are among the workload's labels."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One request's attributes, named after Istio's attributes (istio.io, "Authorization Policy
    Conditions"; pilot/pkg/security/authz/model/model.go, Istio 1.30.3).

    ``principal`` is the peer identity taken from its mTLS certificate in Istio's spelling,
    ``<trust domain>/ns/<namespace>/sa/<service account>`` (without ``spiffe://``); ``None`` means
    plaintext, which is when ``principals``, ``namespaces`` and their negations see no identity.
    ``claims`` is the payload of a JWT that RequestAuthentication verified; ``None`` means no JWT.
    ``remote_ip`` is the original client from X-Forwarded-For or PROXY protocol (``source_ip`` when
    unset). ``path`` may carry a query string: Envoy matches the path without it.
    """

    principal: str | None = None
    source_ip: str = "10.0.0.10"
    remote_ip: str | None = None
    destination_ip: str = "10.0.0.20"
    port: int = 8000
    protocol: str = "http"
    method: str | None = "GET"
    path: str | None = "/"
    host: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    claims: Mapping[str, Any] | None = None
    sni: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port!r} is not an integer in [0, 65535]")
        # HTTP header names are case-insensitive (HTTP/2 sends them in lower case)
        object.__setattr__(self, "headers", {name.lower(): value for name, value in self.headers.items()})

    @property
    def url_path(self) -> str | None:
        """The path Envoy's path matcher sees: without the query string and fragment (envoyproxy.io,
        type.matcher.v3.PathMatcher: ``/data`` matches ``/data#fragment?param=value``)."""
        if self.path is None:
            return None
        return self.path.split("?", 1)[0].split("#", 1)[0]

    @property
    def source_remote_ip(self) -> str:
        return self.remote_ip or self.source_ip

"""How one value in an AuthorizationPolicy matches one attribute of a request.

Istio turns every value of a rule into an Envoy matcher (pilot/pkg/security/authz/model/generator.go
and matcher/{string,header}.go, Istio 1.30.3); this module decides what that matcher decides, one
attribute at a time, so a rule's meaning can be computed without Envoy:

- strings have four forms: exact ``abc``, prefix ``abc*``, suffix ``*abc`` and presence ``*``
  (any non-empty value); a leading ``*`` wins over a trailing one, as in Istio's matcher;
- HTTP headers (and ``methods``, which is the ``:method`` header) use the same forms, except that
  ``*`` means the header is present; ``hosts`` compare case-insensitively;
- ``namespaces`` and ``serviceAccounts`` are regular expressions over the peer's SPIFFE ID, so they
  need mTLS: without a peer certificate they match nothing (and their negations match everything);
- ``requestPrincipals`` split ``iss/sub`` at the last ``/`` and match issuer and subject apart;
- JWT claims match when the claim is a string that matches or a list with an element that matches;
- IP blocks are CIDRs (a bare address is a /32 or /128); ports are integers.

    HTTP_ONLY          attributes an HTTP-less (TCP) connection does not have
    WHEN_KEYS          the condition keys a ``when`` accepts, and how each is spelled
    string_matches     the four string forms
    attribute_matches  one value against one attribute of a request
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from meshlab.authz.request import Request
from meshlab.identity.spiffeid import SCHEME

#: Attributes only an HTTP request has (generator.go returns "HTTP only" for these on a TCP chain).
HTTP_ONLY = frozenset({"request.host", "request.method", "request.url_path", "request.headers", "request.auth.principal",
                       "request.auth.audiences", "request.auth.presenter", "request.auth.claims"})

#: ``when`` keys Istio 1.30.3 accepts (pkg/config/security/security.go, ValidateAttribute); a key
#: ending in ``[`` takes a name in brackets, e.g. ``request.headers[x-token]``.
WHEN_KEYS = ("request.headers[", "source.ip", "remote.ip", "source.namespace", "source.serviceAccount", "source.principal",
             "source.trustDomain", "request.auth.principal", "request.auth.audiences", "request.auth.presenter",
             "request.auth.claims[", "destination.ip", "destination.port", "connection.sni")


def string_matches(pattern: str, value: str | None, ignore_case: bool = False) -> bool:
    """Exact, prefix (``abc*``), suffix (``*abc``) or presence (``*``: not empty)."""
    if value is None:
        return False
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    if pattern == "*":
        return value != ""
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def header_matches(pattern: str, value: str | None, ignore_case: bool = False) -> bool:
    """Envoy's HeaderMatcher as Istio builds it: ``*`` is ``present_match``, the rest are strings."""
    if pattern == "*":
        return value is not None
    return string_matches(pattern, value, ignore_case)


def _spiffe_id(request: Request) -> str | None:
    return None if request.principal is None else SCHEME + request.principal


def namespace_matches(pattern: str, request: Request) -> bool:
    """``.*/ns/<pattern, * as .*>/.*`` over the peer's SPIFFE ID (srcNamespaceGenerator)."""
    spiffe_id = _spiffe_id(request)
    if spiffe_id is None:
        return False
    namespace = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(f".*/ns/{namespace}/.*", spiffe_id) is not None


def service_account_matches(pattern: str, request: Request, policy_namespace: str) -> bool:
    """``[namespace/]name``; the policy's own namespace when none is given (serviceAccountRegex)."""
    spiffe_id = _spiffe_id(request)
    if spiffe_id is None:
        return False
    namespace, _, account = pattern.rpartition("/")
    namespace = namespace or policy_namespace
    return re.fullmatch(f"spiffe://.+/ns/{re.escape(namespace)}/(.+/|)sa/{re.escape(account)}(/.+)?", spiffe_id) is not None


def trust_domain_matches(pattern: str, request: Request) -> bool:
    """The trust domain part of the peer's SPIFFE ID, with one ``*`` at either end (srcTrustDomainGenerator)."""
    spiffe_id = _spiffe_id(request)
    if spiffe_id is None:
        return False
    if pattern == "*":
        return True
    if "*" not in pattern:
        return spiffe_id.startswith(f"{SCHEME}{pattern}/")
    head, tail = pattern.split("*", 1)
    return re.fullmatch(f"spiffe://{re.escape(head)}[^/]*{re.escape(tail)}/.*", spiffe_id) is not None


def request_principal_matches(pattern: str, request: Request) -> bool:
    """``iss/sub`` split at the last ``/``; a ``*`` at the start belongs to the issuer, at the end to
    the subject; a value without ``/`` with ``*`` matches the issuer's prefix or the subject's suffix
    (requestPrincipalGenerator)."""
    if request.claims is None:
        return False
    issuer, subject = str(request.claims.get("iss", "")), str(request.claims.get("sub", ""))
    iss, slash, sub = pattern.rpartition("/")
    if not slash:
        iss, sub = pattern, ""
    if pattern == "*":
        return issuer != "" and subject != ""
    if pattern.startswith("*"):
        if slash:
            return (issuer != "" if iss == "*" else issuer.endswith(iss[1:])) and subject == sub
        return issuer != "" and subject.endswith(pattern[1:])
    if pattern.endswith("*"):
        if slash:
            return issuer == iss and (subject != "" if sub == "*" else subject.startswith(sub[:-1]))
        return issuer.startswith(pattern[:-1]) and subject != ""
    return issuer == iss and subject == sub


def claim_matches(path: list[str], pattern: str, claims: Mapping[str, Any] | None) -> bool:
    """A (possibly nested) claim that is a matching string or a list holding one."""
    value: Any = claims
    for name in path:
        if not isinstance(value, Mapping) or name not in value:
            return False
        value = value[name]
    candidates = value if isinstance(value, list) else [value]
    return any(isinstance(item, str) and string_matches(pattern, item) for item in candidates)


def ip_matches(block: str, address: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(block, strict=False)


def bracketed(key: str, prefix: str) -> list[str]:
    """``request.auth.claims[a][b]`` -> ``["a", "b"]``; ``request.headers[x]`` -> ``["x"]``."""
    names = key[len(prefix):]
    parts = re.fullmatch(r"(\[[^\[\]]+\])+", names)
    if not parts:
        raise ValueError(f"bad key ({key}): should have format {prefix}[name]")
    return re.findall(r"\[([^\[\]]+)\]", names)


def attribute_matches(key: str, pattern: str, request: Request, policy_namespace: str) -> bool:
    """Does ``pattern`` (one entry of a field's values) match attribute ``key`` of ``request``?"""
    if key == "source.principal":
        return string_matches(pattern, request.principal)
    if key == "source.namespace":
        return namespace_matches(pattern, request)
    if key == "source.serviceAccount":
        return service_account_matches(pattern, request, policy_namespace)
    if key == "source.trustDomain":
        return trust_domain_matches(pattern, request)
    if key == "source.ip":
        return ip_matches(pattern, request.source_ip)
    if key == "remote.ip":
        return ip_matches(pattern, request.source_remote_ip)
    if key == "destination.ip":
        return ip_matches(pattern, request.destination_ip)
    if key == "destination.port":
        return int(pattern) == request.port
    if key == "connection.sni":
        return string_matches(pattern, request.sni)
    if key == "request.host":
        return header_matches(pattern, request.host, ignore_case=True)
    if key == "request.method":
        return header_matches(pattern, request.method)
    if key == "request.url_path":
        return string_matches(pattern, request.url_path)
    if key == "request.auth.principal":
        return request_principal_matches(pattern, request)
    if key == "request.auth.audiences":
        return claim_matches(["aud"], pattern, request.claims)
    if key == "request.auth.presenter":
        return claim_matches(["azp"], pattern, request.claims)
    if key.startswith("request.headers["):
        return header_matches(pattern, request.headers.get(bracketed(key, "request.headers")[0].lower()))
    if key.startswith("request.auth.claims["):
        return claim_matches(bracketed(key, "request.auth.claims"), pattern, request.claims)
    raise ValueError(f"unknown attribute: {key}")


def is_http_only(key: str) -> bool:
    return key in HTTP_ONLY or key.startswith(("request.headers[", "request.auth.claims["))

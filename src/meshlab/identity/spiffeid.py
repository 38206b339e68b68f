"""SPIFFE IDs and trust domains, validated as go-spiffe's ``spiffeid`` package does, with its error texts.

A SPIFFE ID is ``spiffe://<trust domain><path>``. go-spiffe is the strictest common implementation
(py-spiffe, for example, lower-cases ``Spiffe://`` and upper-case trust domains); meshlab follows
go-spiffe so that an ID it accepts is accepted everywhere:

- the scheme is exactly ``spiffe://`` (case-sensitive);
- the trust domain is non-empty and only ``[a-z0-9._-]``: no port, user info, percent-encoding or
  upper case (all fail with the trust-domain character error);
- the path is optional; its segments are non-empty, not ``.`` or ``..``, only ``[a-zA-Z0-9._-]``,
  and it has no trailing slash (so no query or fragment either).

    SpiffeIdError   what was wrong, in go-spiffe's words
    TrustDomain     a validated trust domain name; ``id`` is the trust domain's own SPIFFE ID
    SpiffeId        a validated ID: trust_domain, path
    parse_id        text -> SpiffeId (or SpiffeIdError)
    parse_trust_domain   a name, or an ID whose trust domain is wanted
"""

from __future__ import annotations

import string
from dataclasses import dataclass

SCHEME = "spiffe://"
TRUST_DOMAIN_CHARS = frozenset(string.ascii_lowercase + string.digits + ".-_")
PATH_CHARS = frozenset(string.ascii_letters + string.digits + ".-_")

EMPTY = "cannot be empty"
WRONG_SCHEME = "scheme is missing or invalid"
MISSING_TRUST_DOMAIN = "trust domain is missing"
BAD_TRUST_DOMAIN_CHAR = "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
BAD_PATH_SEGMENT_CHAR = "path segment characters are limited to letters, numbers, dots, dashes, and underscores"
EMPTY_SEGMENT = "path cannot contain empty segments"
DOT_SEGMENT = "path cannot contain dot segments"
TRAILING_SLASH = "path cannot have a trailing slash"


class SpiffeIdError(ValueError):
    """An invalid SPIFFE ID or trust domain; the message is go-spiffe's."""


@dataclass(frozen=True, order=True)
class TrustDomain:
    name: str

    def __post_init__(self) -> None:
        if not self.name:
            raise SpiffeIdError(MISSING_TRUST_DOMAIN)
        if not set(self.name) <= TRUST_DOMAIN_CHARS:
            raise SpiffeIdError(BAD_TRUST_DOMAIN_CHAR)

    @property
    def id(self) -> SpiffeId:
        """``spiffe://<name>``: how bundles and federation name a trust domain."""
        return SpiffeId(self, "")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, order=True)
class SpiffeId:
    trust_domain: TrustDomain
    path: str = ""

    def __post_init__(self) -> None:
        _check_path(self.path)

    def member_of(self, trust_domain: TrustDomain) -> bool:
        return self.trust_domain == trust_domain

    def __str__(self) -> str:
        return f"{SCHEME}{self.trust_domain.name}{self.path}"


def _check_path(path: str) -> None:
    """Segment by segment, left to right, so the first problem met is the one reported."""
    if not path:
        return
    if not path.startswith("/"):
        raise SpiffeIdError("path must have a leading slash")
    segments = path[1:].split("/")
    for index, segment in enumerate(segments):
        if not segment:
            raise SpiffeIdError(TRAILING_SLASH if index == len(segments) - 1 else EMPTY_SEGMENT)
        if segment in (".", ".."):
            raise SpiffeIdError(DOT_SEGMENT)
        if not set(segment) <= PATH_CHARS:
            raise SpiffeIdError(BAD_PATH_SEGMENT_CHAR)


def parse_id(text: str) -> SpiffeId:
    """A SPIFFE ID from its string form, or SpiffeIdError with go-spiffe's message."""
    if not text:
        raise SpiffeIdError(EMPTY)
    if not text.startswith(SCHEME):
        raise SpiffeIdError(WRONG_SCHEME)
    name, slash, rest = text[len(SCHEME):].partition("/")
    return SpiffeId(TrustDomain(name), slash + rest)


def parse_trust_domain(text: str) -> TrustDomain:
    """A trust domain from its name (``example.org``) or from any SPIFFE ID in it."""
    if text.startswith(SCHEME) or ":/" in text:
        return parse_id(text).trust_domain
    return TrustDomain(text)

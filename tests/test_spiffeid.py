"""SPIFFE ID validation against go-spiffe's behaviour.

The cases are go-spiffe's own test vectors for ``spiffeid.FromString`` and
``TrustDomainFromString`` (as mirrored by the Rust ``spiffe`` crate's "matches_go" tests): every
byte value tried in the trust domain and in the path, and the named edge cases, with the exact
error text expected."""

from __future__ import annotations

import json
import string
import subprocess
import sys

import pytest

from meshlab.identity.spiffeid import SpiffeId, SpiffeIdError, TrustDomain, parse_id, parse_trust_domain

TD_CHARS = set(string.ascii_lowercase + string.digits + ".-_")
PATH_CHARS = set(string.ascii_letters + string.digits + ".-_")
BAD_TD = "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
BAD_PATH = "path segment characters are limited to letters, numbers, dots, dashes, and underscores"


@pytest.mark.parametrize("code", [c for c in range(256) if chr(c) != "/"])
def test_every_byte_in_trust_domain_and_path(code):
    c = chr(code)
    if c in TD_CHARS:
        assert parse_id(f"spiffe://trustdomain{c}/path").trust_domain == TrustDomain(f"trustdomain{c}")
        assert parse_trust_domain(f"trustdomain{c}") == TrustDomain(f"trustdomain{c}")
    else:
        with pytest.raises(SpiffeIdError, match=f"^{BAD_TD}$"):
            parse_id(f"spiffe://trustdomain{c}/path")
    if c in PATH_CHARS:
        assert parse_id(f"spiffe://trustdomain/path{c}").path == f"/path{c}"
    else:
        with pytest.raises(SpiffeIdError, match=f"^{BAD_PATH}$"):
            parse_id(f"spiffe://trustdomain/path{c}")


FAILURES = {
    "": "cannot be empty",
    "s": "scheme is missing or invalid",
    "spiffe:/": "scheme is missing or invalid",
    "Spiffe://": "scheme is missing or invalid",
    "spiffe://": "trust domain is missing",
    "spiffe:///": "trust domain is missing",
    "spiffe://trustdomain/": "path cannot have a trailing slash",
    "spiffe://trustdomain//": "path cannot contain empty segments",
    "spiffe://trustdomain//path": "path cannot contain empty segments",
    "spiffe://trustdomain/path/": "path cannot have a trailing slash",
    "spiffe://trustdomain/.": "path cannot contain dot segments",
    "spiffe://trustdomain/./path": "path cannot contain dot segments",
    "spiffe://trustdomain/path/./other": "path cannot contain dot segments",
    "spiffe://trustdomain/path/..": "path cannot contain dot segments",
    "spiffe://trustdomain/..": "path cannot contain dot segments",
    "spiffe://trustdomain/../path": "path cannot contain dot segments",
    "spiffe://trustdomain/path/../other": "path cannot contain dot segments",
    "spiffe://%F0%9F%A4%AF/path": BAD_TD,
    "spiffe://trustdomain/%F0%9F%A4%AF": BAD_PATH,
    "spiffe://%62%61%64/path": BAD_TD,
    "spiffe://trustdomain/%62%61%64": BAD_PATH,
    "spiffe://domain.test:8080/path/element": BAD_TD,
    "spiffe://user:password@test.org/path/element": BAD_TD,
    "spiffe://domain.test/path/element?query=1": BAD_PATH,
    "spiffe://Example.org/path": BAD_TD,
}


@pytest.mark.parametrize("text", FAILURES)
def test_invalid_ids_fail_with_go_spiffe_texts(text):
    with pytest.raises(SpiffeIdError) as raised:
        parse_id(text)
    assert str(raised.value) == FAILURES[text]


@pytest.mark.parametrize("text, path", [("spiffe://trustdomain", ""), ("spiffe://trustdomain/.path", "/.path"),
                                        ("spiffe://trustdomain/..path", "/..path"), ("spiffe://trustdomain/...", "/..."),
                                        ("spiffe://example.org/ns/default/sa/web", "/ns/default/sa/web")])
def test_valid_ids_round_trip(text, path):
    parsed = parse_id(text)
    assert parsed.path == path and str(parsed) == text


def test_trust_domains():
    assert str(TrustDomain("trustdomain").id) == "spiffe://trustdomain"
    assert parse_trust_domain("spiffe://trustdomain/path") == TrustDomain("trustdomain")
    for text, error in [("", "trust domain is missing"), ("spiffe:/trustdomain/path", "scheme is missing or invalid"),
                        ("spiffe://", "trust domain is missing"), ("spiffe://trustdomain/", "path cannot have a trailing slash")]:
        with pytest.raises(SpiffeIdError, match=f"^{error}$"):
            parse_trust_domain(text)
    with pytest.raises(SpiffeIdError, match="^path must have a leading slash$"):
        SpiffeId(TrustDomain("trustdomain"), "foo")


def spiffe_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meshlab.cli", "spiffe", "parse", *args], capture_output=True, text=True)


def test_cli_prints_the_parts_or_exits_2_with_the_exact_error():
    done = spiffe_cli("spiffe://example.org/ns/default/sa/web", "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == {"trust_domain": "example.org", "path": "/ns/default/sa/web"}
    done = spiffe_cli("spiffe://example.org/path/")
    assert done.returncode == 2 and done.stderr.strip() == "meshlab spiffe: error: path cannot have a trailing slash"

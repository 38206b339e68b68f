"""Several trust domains: each cluster's CA issues SVIDs in its own trust domain, and a workload accepts a
peer from another one only once it holds that trust domain's bundle.

SPIFFE's answer is federation (spiffe/spiffe standards/SPIFFE_Federation.md, SPIFFE_Trust_Domain_and_Bundle.md,
X509-SVID.md section 6). A trust domain publishes its bundle at a bundle endpoint: an HTTPS URL that answers
GET with a JWK Set (``keys``, ``spiffe_sequence``, ``spiffe_refresh_hint``), one ``use: x509-svid`` key per CA
certificate with the DER certificate in ``x5c`` and no ``kid``. A client is configured, for each foreign
trust domain, with three parameters: the trust domain's name, the endpoint URL and the endpoint profile:

- ``https_web``: the endpoint's certificate comes from a public (Web PKI) CA and must match the URL's host;
- ``https_spiffe``: the endpoint presents an X509-SVID, and the client is also configured with the
  endpoint's SPIFFE ID and a bundle to verify it with: for a self-serving endpoint (its SPIFFE ID is in
  the trust domain it serves), a bundle obtained once out of band, then the latest one fetched.

Relationships are one-way: to call each other, two trust domains each fetch the other's bundle. Bundles
from different trust domains must not be merged: a CA trusted for one trust domain could otherwise
vouch for identities of another. OpenSSL verifies a chain against every root it is given, so after
the handshake the peer's chain is checked again against the bundle of the trust domain its SPIFFE ID
names (TrustStore.verify, peer_verified). Clients poll at ``spiffe_refresh_hint`` seconds, else five
minutes; redirects are not followed here.

Istio's answers (istio.io/api v1.30.8 mesh/v1alpha1/config.proto; Istio master of 2026-08-26):

- a shared root: each cluster's istiod signs with its own intermediate CA, plugged in as Secret
  ``istio-system/cacerts`` with ``ca-cert.pem``, ``ca-key.pem``, ``cert-chain.pem`` and the common
  ``root-cert.pem`` (security/pkg/pki/ca/ca.go): one root, nothing to exchange, usually one trust domain;
- ``meshConfig.trustDomain`` and ``trustDomainAliases``: identities in an alias are treated as the
  trust domain's own: istiod rewrites every AuthorizationPolicy principal in the trust domain, an alias
  or ``cluster.local`` into one per trust domain (pilot/pkg/security/trustdomain/bundle.go) and expands
  ``trustDomains`` values, and accepts the aliases in the service accounts a client expects;
- ``meshConfig.caCertificates``: extra roots for workload-to-workload mTLS, each ``pem`` or
  ``spiffeBundleUrl`` (a bundle endpoint, Web PKI), optionally limited to ``trustDomains`` or ``certSigners``.

CAs are meshlab.identity.authority's TrustDomainAuthority; TLS is meshlab.identity.mtls's.

    BundleError          a bundle, endpoint or fetch refused: what, and what is accepted
    bundle_document      a trust domain's SPIFFE bundle as its endpoint serves it (a JWK Set)
    parse_bundle         a SPIFFE bundle -> its X.509 authorities (X509-SVID.md 6.2)
    BundleEndpoint       the federation parameters: trust domain, URL, profile, (https_spiffe) endpoint SPIFFE ID
    TrustStore           the bundles one workload holds, kept per trust domain: add, remove, bundle_for, pem, verify
    peer_verified        the peer of a TLS connection, verified against its own trust domain's bundle
    svid_context         an ssl context with an X509-SVID and every bundle a store holds
    BundleServer         a bundle endpoint on loopback (HTTPS, no client certificate asked)
    fetch_bundle         GET a foreign bundle, the endpoint authenticated as its profile says, into a store
    migrate_trust_domain istiod's rewrite of an AuthorizationPolicy for trustDomain and trustDomainAliases
"""

from __future__ import annotations

import base64
import copy
import http.client
import http.server
import json
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import VerificationError

from meshlab.identity.authority import TrustDomainAuthority, X509Svid, spiffe_id_of, verify_x509_svid
from meshlab.identity.mtls import context
from meshlab.identity.spiffeid import SpiffeId, SpiffeIdError, TrustDomain

PROFILES = ("https_web", "https_spiffe")
#: SPIFFE_Federation.md 4.1: the polling interval when a bundle has no refresh hint.
DEFAULT_REFRESH_HINT = 300
#: istiod reads this trust domain in a policy as "the local one" (pkg/config/constants DefaultClusterLocalDomain).
CLUSTER_LOCAL = "cluster.local"


class BundleError(ValueError):
    """A bundle, bundle endpoint or fetch meshlab refuses; the message says what and what is accepted."""


def bundle_document(authority: TrustDomainAuthority, sequence: int = 1, refresh_hint: int = DEFAULT_REFRESH_HINT) -> dict:
    """The SPIFFE bundle a trust domain's endpoint serves: its CA certificates as ``x509-svid`` keys
    (``x5c``, no ``kid``) and its JWT-SVID keys, with a sequence number and a refresh hint in seconds."""
    keys = []
    for certificate in authority.x509_bundle():
        key = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(certificate.public_key()))
        der = certificate.public_bytes(serialization.Encoding.DER)
        keys.append(key | {"use": "x509-svid", "x5c": [base64.b64encode(der).decode()]})
    keys += authority.jwks()["keys"]
    return {"keys": keys, "spiffe_sequence": sequence, "spiffe_refresh_hint": refresh_hint}


def parse_bundle(document: bytes | str | dict) -> tuple[list[x509.Certificate], int | None]:
    """The X.509 authorities of a SPIFFE bundle and its sequence number (None when absent). Keys of
    another use are ignored, as are ``x509-svid`` keys without ``x5c``; of ``x5c`` the first value counts."""
    try:
        bundle = document if isinstance(document, dict) else json.loads(document)
    except (ValueError, UnicodeDecodeError) as error:
        raise BundleError(f"a SPIFFE bundle is a JSON JWK Set: {error}") from None
    if not isinstance(bundle, dict) or not isinstance(bundle.get("keys"), list):
        raise BundleError("a SPIFFE bundle is a JSON object whose 'keys' (a list of JWKs) must be present")
    sequence = bundle.get("spiffe_sequence")
    if sequence is not None and (isinstance(sequence, bool) or not isinstance(sequence, int)):
        raise BundleError(f"spiffe_sequence must be an integer, got {sequence!r}")
    authorities = []
    for index, key in enumerate(bundle["keys"]):
        if not isinstance(key, dict) or key.get("use") != "x509-svid" or not key.get("x5c"):
            continue
        try:
            authorities.append(x509.load_der_x509_certificate(base64.b64decode(key["x5c"][0], validate=True)))
        except (ValueError, TypeError) as error:
            raise BundleError(f"keys[{index}].x5c[0] is not a base64 DER certificate: {error}") from None
    return authorities, sequence


@dataclass(frozen=True)
class BundleEndpoint:
    """Where a foreign trust domain's bundle is fetched and how the endpoint is authenticated."""

    trust_domain: TrustDomain
    url: str
    profile: str
    endpoint_spiffe_id: SpiffeId | None = None

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme != "https" or not parsed.hostname:
            raise BundleError(f"bundle endpoint URL {self.url!r}: the scheme must be https and a host is required")
        if parsed.username is not None or parsed.password is not None:
            raise BundleError(f"bundle endpoint URL {self.url!r}: must not include userinfo")
        if self.profile not in PROFILES:
            raise BundleError(f"bundle endpoint profile {self.profile!r} is not one of {', '.join(PROFILES)}")
        if self.profile == "https_spiffe" and self.endpoint_spiffe_id is None:
            raise BundleError("profile https_spiffe needs the endpoint's SPIFFE ID (and a bundle of its trust domain to verify it)")
        if self.profile == "https_web" and self.endpoint_spiffe_id is not None:
            raise BundleError("profile https_web takes no endpoint SPIFFE ID: the Web PKI certificate of the URL's host authenticates it")


class TrustStore:
    """The bundles one workload holds, by trust domain, never merged."""

    def __init__(self) -> None:
        self._bundles: dict[TrustDomain, tuple[list[x509.Certificate], int | None]] = {}

    def add(self, trust_domain: TrustDomain, authorities: list[x509.Certificate], sequence: int | None = None) -> bool:
        """Hold ``authorities`` for ``trust_domain``; an older sequence number than the one held is
        ignored (False), as freshness is judged by it."""
        held = self._bundles.get(trust_domain)
        if held is not None and held[1] is not None and sequence is not None and sequence < held[1]:
            return False
        self._bundles[trust_domain] = (list(authorities), sequence)
        return True

    def remove(self, trust_domain: TrustDomain) -> None:
        """Ends a federation relationship: that trust domain's SVIDs no longer verify."""
        self._bundles.pop(trust_domain, None)

    @property
    def trust_domains(self) -> list[TrustDomain]:
        return sorted(self._bundles)

    def bundle_for(self, trust_domain: TrustDomain) -> list[x509.Certificate]:
        if trust_domain not in self._bundles:
            held = ", ".join(str(td) for td in self.trust_domains) or "none"
            raise BundleError(f"no bundle for trust domain {trust_domain}; held: {held}")
        return self._bundles[trust_domain][0]

    def pem(self) -> bytes:
        """Every authority held, in PEM: what OpenSSL verifies handshakes against."""
        return _pem([certificate for bundle, _ in self._bundles.values() for certificate in bundle])

    def verify(self, chain: list[x509.Certificate]) -> SpiffeId:
        """The SPIFFE ID an X509-SVID chain (leaf first) proves, verified against the bundle of the trust
        domain that ID names and no other."""
        try:
            spiffe_id = spiffe_id_of(chain[0])
        except (SpiffeIdError, x509.ExtensionNotFound) as error:
            raise BundleError(f"the certificate is not an X509-SVID: {error}") from None
        try:
            return verify_x509_svid(chain, self.bundle_for(spiffe_id.trust_domain))
        except VerificationError as error:
            raise BundleError(f"{spiffe_id} does not verify against the bundle of {spiffe_id.trust_domain}: {error}") from None


def peer_verified(connection: ssl.SSLSocket, store: TrustStore) -> SpiffeId:
    """The peer's SPIFFE ID after a handshake, checked against its own trust domain's bundle (OpenSSL
    accepted it against all of them). meshlab's CAs sign SVIDs directly, so the leaf is the chain."""
    der = connection.getpeercert(binary_form=True)
    if der is None:
        raise BundleError("the peer presented no certificate")
    return store.verify([x509.load_der_x509_certificate(der)])


def svid_context(svid: X509Svid, store: TrustStore, server_side: bool) -> ssl.SSLContext:
    """meshlab.identity.mtls's context for ``svid``, verifying peers against every bundle ``store`` holds."""
    chain, key = svid.pem_files()
    return context(chain, key, store.pem(), server_side)


class BundleServer:
    """A bundle endpoint on 127.0.0.1: GET ``path`` answers ``document()`` as JSON over TLS with the
    given certificate (an X509-SVID for https_spiffe); no client certificate is asked (the spec forbids
    requiring client authentication). Use as a context manager; ``url`` is where it listens, ``refused``
    says why each failed connection failed (a client refusing the certificate sends an alert)."""

    def __init__(self, document: Callable[[], dict], chain_pem: bytes, key_pem: bytes, path: str = "/bundle.json") -> None:
        tls = context(chain_pem, key_pem, chain_pem, server_side=True)  # meshlab.identity.mtls's, then loosened:
        tls.verify_mode = ssl.CERT_NONE  # a bundle endpoint must not require client authentication
        tls.minimum_version = ssl.TLSVersion.TLSv1_2  # Mozilla's "intermediate" compatibility (SPIFFE_Federation.md 5)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path != path:
                    self.send_error(404, f"the bundle is at {path}")
                    return
                body = json.dumps(document()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # quiet: a notebook cell is no server log
                pass

        self.refused: list[str] = []  # what went wrong with each connection that failed, e.g. the client's TLS alert
        refused = self.refused

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = False  # closing waits for every request: ``refused`` is complete after the with block

            def handle_error(self, request, client_address) -> None:
                error = sys.exc_info()[1]
                refused.append(str(getattr(error, "reason", None) or error))

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.socket = tls.wrap_socket(self._server.socket, server_side=True, do_handshake_on_connect=False)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}{path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> BundleServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def fetch_bundle(endpoint: BundleEndpoint, store: TrustStore, web_roots: bytes | None = None, timeout: float = 10) -> list[x509.Certificate]:
    """GET the foreign bundle at ``endpoint`` and hold it in ``store`` under the endpoint's trust domain.
    https_spiffe: the server must prove ``endpoint_spiffe_id`` with an X509-SVID that verifies against
    the bundle ``store`` holds for that ID's trust domain (for a self-serving endpoint, one configured
    before the first fetch). https_web: the server's certificate must chain to ``web_roots`` (PEM; the
    system's roots when None) and match the URL's host. Returns the authorities fetched."""
    url = urllib.parse.urlsplit(endpoint.url)
    if endpoint.profile == "https_spiffe":
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname = False  # an X509-SVID names a SPIFFE ID, not a host
        try:
            roots = store.bundle_for(endpoint.endpoint_spiffe_id.trust_domain)
        except BundleError as error:
            raise BundleError(f"{error}: https_spiffe authenticates the endpoint with it (a self-serving endpoint's bundle is "
                              "configured once, out of band, before the first fetch)") from None
        tls.load_verify_locations(cadata=_pem(roots).decode())
    else:
        tls = ssl.create_default_context(cadata=web_roots.decode() if web_roots else None)
    connection = http.client.HTTPSConnection(url.hostname, url.port or 443, timeout=timeout, context=tls)
    try:
        try:
            connection.connect()
        except ssl.SSLError as error:
            raise BundleError(f"bundle endpoint {endpoint.url} ({endpoint.profile}) failed authentication: {error}") from None
        if endpoint.profile == "https_spiffe":
            proved = peer_verified(connection.sock, store)
            if proved != endpoint.endpoint_spiffe_id:
                raise BundleError(f"bundle endpoint {endpoint.url} proved {proved}, not the configured {endpoint.endpoint_spiffe_id}")
        connection.request("GET", url.path or "/")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise BundleError(f"bundle endpoint {endpoint.url} answered {response.status} {response.reason}; a bundle comes with 200")
    authorities, sequence = parse_bundle(body)
    if not authorities:
        raise BundleError(f"the bundle from {endpoint.url} has no x509-svid key: {endpoint.trust_domain} does not support X509-SVIDs")
    store.add(endpoint.trust_domain, authorities, sequence)
    return authorities


def _pem(certificates: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _trust_domain_matches(a: str, b: str) -> bool:
    """stringMatch of pilot/pkg/security/trustdomain/util.go: equal, ``b`` is ``*``, or either one a
    ``x*`` prefix or ``*x`` suffix pattern that the other matches."""
    def pattern_matches(pattern: str, value: str) -> bool:
        return (pattern.endswith("*") and value.startswith(pattern[:-1])) or (pattern.startswith("*") and value.endswith(pattern[1:]))
    return a == b or b == "*" or pattern_matches(b, a) or pattern_matches(a, b)


def _replaced_principals(principal: str, domains: list[str]) -> list[str]:
    """ReplaceTrustDomainAliases for one principal ``td/ns/<ns>/sa/<sa>``: one per trust domain when its
    trust domain is the mesh's, an alias, ``cluster.local`` or a pattern matching one of them; else itself."""
    parts = principal.split("/")
    if len(parts) != 5 or parts[0] == "*":
        return [principal]  # not a SPIFFE-shaped principal, or one that ignores the trust domain
    written = parts[0]
    if written != CLUSTER_LOCAL and not any(_trust_domain_matches(written, domain) for domain in domains):
        return [principal]
    out: list[str] = []
    for domain in domains:
        new = principal if written.startswith("*") and domain.endswith(written[1:]) else "/".join([domain, *parts[1:]])
        if new not in out:
            out.append(new)
    return out


def migrate_trust_domain(policy: dict, trust_domain: str, aliases: list[str]) -> dict:
    """The AuthorizationPolicy manifest istiod enforces under ``meshConfig.trustDomain`` and
    ``trustDomainAliases``: ``principals``/``notPrincipals`` rewritten for every trust domain of the mesh,
    ``trustDomains``/``notTrustDomains`` that name one expanded to all (model.go MigrateTrustDomain)."""
    try:
        domains = [str(TrustDomain(name)) for name in [trust_domain, *aliases]]
    except SpiffeIdError as error:
        raise BundleError(f"trust domain or alias: {error}") from None
    migrated = copy.deepcopy(policy)
    for rule in (migrated.get("spec") or {}).get("rules") or []:
        for entry in rule.get("from") or []:
            source = entry.get("source") or {}
            for key in ("principals", "notPrincipals"):
                if source.get(key):
                    source[key] = [new for principal in source[key] for new in _replaced_principals(principal, domains)]
            for key in ("trustDomains", "notTrustDomains"):
                if source.get(key):
                    expanded = [new for value in source[key] for new in (domains if value in domains else [value])]
                    source[key] = list(dict.fromkeys(expanded))
    return migrated

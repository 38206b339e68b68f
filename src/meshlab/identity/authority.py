"""A trust domain's signing authorities: the X.509 CA that signs X509-SVIDs and the key that signs
JWT-SVIDs, and the bundles that let anyone verify them.

Profiles follow the SPIFFE specs (X509-SVID.md, JWT-SVID.md):

- CA certificate: basicConstraints CA=true (critical), keyUsage keyCertSign and cRLSign (critical),
  the trust domain's own ID (``spiffe://<td>``) as URI SAN.
- X509-SVID (leaf): exactly one URI SAN, the SPIFFE ID; CA=false; keyUsage digitalSignature
  (critical) and nothing that signs certificates; extended key usage serverAuth and clientAuth,
  so the same SVID serves both ends of mutual TLS.
- JWT-SVID: ES256, ``kid`` in the header naming the key in the trust domain's JWKS bundle, claims
  ``sub`` (the SPIFFE ID), ``aud`` and ``exp``.

Keys are ECDSA P-256 throughout. Times come from the caller, so tests can issue SVIDs in the past
and see them expire.

    X509Svid            an issued X509-SVID: ID, certificate chain (leaf first), private key
    TrustDomainAuthority  CA + JWT key of one trust domain: certify, sign_x509_svid, sign_jwt_svid, bundles
    spiffe_id_of        the SPIFFE ID in a certificate's URI SAN
    verify_x509_svid    the chain checked against a bundle with cryptography's verifier -> SPIFFE ID
    JwtSvidError        why a JWT-SVID was refused
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from meshlab.identity.spiffeid import SpiffeId, SpiffeIdError, TrustDomain, parse_id

JWT_ALGORITHM = "ES256"


def utcnow() -> dt.datetime:
    """The current time, timezone-aware (UTC), as certificates and tokens need it."""
    return dt.datetime.now(dt.UTC)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class X509Svid:
    spiffe_id: SpiffeId
    chain: tuple[x509.Certificate, ...]
    key: ec.EllipticCurvePrivateKey

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    def chain_der(self) -> bytes:
        """What the Workload API sends as ``x509_svid``: DER certificates concatenated, leaf first."""
        return b"".join(cert.public_bytes(serialization.Encoding.DER) for cert in self.chain)

    def key_der(self) -> bytes:
        """``x509_svid_key``: the private key as unencrypted PKCS#8 DER."""
        return self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def pem_files(self) -> tuple[bytes, bytes]:
        """(certificate chain, private key) in PEM, as ssl.SSLContext.load_cert_chain reads them."""
        chain = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in self.chain)
        key = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return chain, key


class JwtSvidError(ValueError):
    """A JWT-SVID that does not validate: the message says which check failed."""


class TrustDomainAuthority:
    """The signing keys of one trust domain (what SPIRE's server keeps and the agents never hold)."""

    def __init__(self, trust_domain: TrustDomain, now: dt.datetime | None = None, ca_ttl: dt.timedelta = dt.timedelta(days=1)) -> None:
        self.trust_domain = trust_domain
        start = now or utcnow()
        self._ca_key = new_key()
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshlab"), x509.NameAttribute(NameOID.COMMON_NAME, f"{trust_domain} CA")])
        public = self._ca_key.public_key()
        self.ca_certificate = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - dt.timedelta(minutes=1)).not_valid_after(start + ca_ttl)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(str(trust_domain.id))]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
        self._jwt_key = new_key()
        # a key ID derived from the key, as stable as the key itself
        self.jwt_key_id = hashlib.sha256(self._jwt_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()[:32]

    # -- X509-SVIDs -----------------------------------------------------------------------------
    def certify(self, spiffe_id: SpiffeId, public_key: ec.EllipticCurvePublicKey, ttl: dt.timedelta, now: dt.datetime | None = None) -> x509.Certificate:
        """The X509-SVID certificate for ``spiffe_id`` and a key the requester keeps (what SPIRE's
        server does with an agent's CSR: it never sees the private key), valid for ``ttl``."""
        if not spiffe_id.member_of(self.trust_domain):
            raise SpiffeIdError(f"{spiffe_id} is not in trust domain {self.trust_domain}")
        if not spiffe_id.path:
            raise SpiffeIdError(f"{spiffe_id} names a trust domain; an X509-SVID's ID must have a path")
        start = now or utcnow()
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshlab")]))
            .issuer_name(self.ca_certificate.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - dt.timedelta(seconds=10)).not_valid_after(start + ttl)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(str(spiffe_id))]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )

    def sign_x509_svid(self, spiffe_id: SpiffeId, ttl: dt.timedelta, now: dt.datetime | None = None) -> X509Svid:
        """A new key and its X509-SVID (for a requester in the same process)."""
        key = new_key()
        return X509Svid(spiffe_id, (self.certify(spiffe_id, key.public_key(), ttl, now),), key)

    def x509_bundle(self) -> list[x509.Certificate]:
        return [self.ca_certificate]

    def x509_bundle_der(self) -> bytes:
        """The trust domain's X.509 bundle as the Workload API sends it: DER certificates concatenated."""
        return b"".join(cert.public_bytes(serialization.Encoding.DER) for cert in self.x509_bundle())

    # -- JWT-SVIDs ------------------------------------------------------------------------------
    def sign_jwt_svid(self, spiffe_id: SpiffeId, audience: list[str], ttl: dt.timedelta, now: dt.datetime | None = None) -> str:
        if not audience:
            raise JwtSvidError("a JWT-SVID needs at least one audience")
        start = now or utcnow()
        claims = {"sub": str(spiffe_id), "aud": audience if len(audience) > 1 else audience[0],
                  "iat": int(start.timestamp()), "exp": int((start + ttl).timestamp()), "jti": secrets.token_hex(8)}
        return jwt.encode(claims, self._jwt_key, algorithm=JWT_ALGORITHM, headers={"kid": self.jwt_key_id, "typ": "JWT"})

    def jwks(self) -> dict:
        """The trust domain's JWT bundle: a JWKS whose keys carry ``kid`` and ``use: jwt-svid``."""
        key = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._jwt_key.public_key()))
        return {"keys": [{**key, "kid": self.jwt_key_id, "use": "jwt-svid"}]}

    def validate_jwt_svid(self, token: str, audience: str, now: dt.datetime | None = None) -> tuple[SpiffeId, dict]:
        """Signature (by ``kid`` from this trust domain's bundle), algorithm, ``exp`` and ``aud``
        checked; returns the subject's SPIFFE ID and the claims."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise JwtSvidError(f"not a JWT: {error}") from None
        if header.get("kid") != self.jwt_key_id:
            raise JwtSvidError(f"key {header.get('kid')!r} is not in the bundle of {self.trust_domain}")
        try:
            claims = jwt.decode(token, self._jwt_key.public_key(), algorithms=[JWT_ALGORITHM], audience=audience,
                                options={"require": ["sub", "aud", "exp"], "verify_exp": now is None})
        except jwt.InvalidAudienceError:
            raise JwtSvidError(f"audience {audience!r} is not in the token's audience") from None
        except jwt.ExpiredSignatureError:
            raise JwtSvidError("the token has expired") from None
        except jwt.InvalidTokenError as error:
            raise JwtSvidError(str(error)) from None
        if now is not None and claims["exp"] <= now.timestamp():
            raise JwtSvidError("the token has expired")
        return parse_id(claims["sub"]), claims


def spiffe_id_of(certificate: x509.Certificate) -> SpiffeId:
    """The SPIFFE ID in an X509-SVID's (single) URI SAN."""
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1:
        raise SpiffeIdError(f"an X509-SVID has exactly one URI SAN, this one has {len(uris)}")
    return parse_id(uris[0])


def verify_x509_svid(chain: list[x509.Certificate], bundle: list[x509.Certificate], now: dt.datetime | None = None) -> SpiffeId:
    """Verify an X509-SVID chain (leaf first) against a trust bundle with cryptography's X.509
    verifier (client profile: the leaf needs clientAuth, no host name is involved) and return the
    SPIFFE ID in its URI SAN. Raises VerificationError if the chain does not verify."""
    verifier = PolicyBuilder().store(Store(bundle)).time(now or utcnow()).build_client_verifier()
    verifier.verify(chain[0], chain[1:])
    return spiffe_id_of(chain[0])

"""Several trust domains: real TLS handshakes (Python's ssl, OpenSSL, on loopback) between workloads whose
SVIDs come from different CAs fail until each side holds the other's bundle, bundles travel over real
HTTPS bundle endpoints (https_spiffe, https_web), and istiod's trust domain aliases are applied to
AuthorizationPolicies and decided by meshlab.authz. The upstream test federates with SPIRE's own server.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import socket
import ssl
import subprocess
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from upstream_programs import program_path

from meshlab.authz import Request, Workload, evaluate
from meshlab.authz import load as load_policies
from meshlab.identity.authority import TrustDomainAuthority, X509Svid
from meshlab.identity.mtls import LoopbackServer, call
from meshlab.identity.spiffeid import TrustDomain, parse_id
from meshlab.multicluster.trust import (BundleEndpoint, BundleError, BundleServer, TrustStore, bundle_document, fetch_bundle, migrate_trust_domain,
                                        parse_bundle, peer_verified, svid_context)
from meshlab.upstream.spire import Spire

EAST, WEST = TrustDomain("east.example"), TrustDomain("west.example")


@pytest.fixture(scope="module")
def east() -> TrustDomainAuthority:
    return TrustDomainAuthority(EAST)


@pytest.fixture(scope="module")
def west() -> TrustDomainAuthority:
    return TrustDomainAuthority(WEST)


def svid(authority: TrustDomainAuthority, path: str) -> X509Svid:
    return authority.sign_x509_svid(parse_id(f"spiffe://{authority.trust_domain}{path}"), dt.timedelta(hours=1))


def holding(*authorities: TrustDomainAuthority) -> TrustStore:
    store = TrustStore()
    for authority in authorities:
        store.add(authority.trust_domain, authority.x509_bundle())
    return store


def exchange(server: X509Svid, server_store: TrustStore, client: X509Svid, client_store: TrustStore, authorize=lambda peer: True) -> tuple[dict, dict]:
    """One mutual-TLS call on loopback (meshlab.identity.mtls): the server's record and the client's."""
    listening = LoopbackServer(authorize, 1, svid_context(server, server_store, server_side=True), str(server.spiffe_id))
    answer = call("127.0.0.1", listening.port, str(server.spiffe_id), svid_context(client, client_store, server_side=False), str(client.spiffe_id))
    return listening.join()[0], answer


def test_across_trust_domains_the_handshake_fails_until_the_peer_bundle_is_held_on_both_sides(east, west):
    server, client = svid(west, "/ns/payments/sa/api"), svid(east, "/ns/shop/sa/web")
    record, answer = exchange(server, holding(west), client, holding(east))
    assert not answer["allowed"] and "CERTIFICATE_VERIFY_FAILED" in answer["refused"], "the client cannot verify west's server"
    record, answer = exchange(server, holding(west), client, holding(east, west))
    assert not record["allowed"] and "TLS handshake failed" in record["refused"], "federation is one-way: west does not know east yet"
    assert not answer["allowed"]
    record, answer = exchange(server, holding(west, east), client, holding(east, west))
    assert (record["peer"], record["allowed"], answer["peer"], answer["allowed"]) == (str(client.spiffe_id), True, str(server.spiffe_id), True)


def test_removing_a_bundle_ends_the_relationship(east, west):
    server_store = holding(west, east)
    server_store.remove(EAST)
    record, _ = exchange(svid(west, "/a"), server_store, svid(east, "/b"), holding(east, west))
    assert not record["allowed"] and server_store.trust_domains == [WEST]


def test_with_a_shared_root_nothing_is_exchanged(east):
    """Istio's plug-in CA: every cluster's CA chains to one root, so each already holds what verifies the
    other's. Modelled with one authority for both clusters: meshlab's authority issues no intermediates."""
    record, answer = exchange(svid(east, "/ns/payments/sa/api"), holding(east), svid(east, "/ns/shop/sa/web"), holding(east))
    assert record["allowed"] and answer["allowed"]


def test_a_bundle_held_for_the_wrong_trust_domain_vouches_for_nothing(east, west):
    """OpenSSL verifies against every root it has; the SPIFFE check binds each bundle to its trust
    domain. A rogue CA claiming west.example, wrongly held as partner.example's, gets past OpenSSL only."""
    rogue = TrustDomainAuthority(WEST)
    store = holding(east, west)
    store.add(TrustDomain("partner.example"), rogue.x509_bundle())
    server_tls, client_tls = svid_context(svid(east, "/api"), store, True), svid_context(svid(rogue, "/ns/admin/sa/root"), holding(east), False)
    left, right = socket.socketpair()
    accepted: list = []
    thread = threading.Thread(target=lambda: accepted.append(server_tls.wrap_socket(left, server_side=True)))
    thread.start()
    with client_tls.wrap_socket(right) as client:
        thread.join(10)
        with accepted[0] as connection:
            with pytest.raises(BundleError, match="spiffe://west.example/ns/admin/sa/root does not verify against the bundle of west.example"):
                peer_verified(connection, store)
        assert client.version() == "TLSv1.3"


def test_a_bundle_document_holds_the_cas_as_x509_svid_keys(east):
    document = bundle_document(east, sequence=7, refresh_hint=60)
    x509_keys = [k for k in document["keys"] if k["use"] == "x509-svid"]
    assert len(x509_keys) == 1 and "kid" not in x509_keys[0] and x509_keys[0]["kty"] == "EC"
    assert base64.b64decode(x509_keys[0]["x5c"][0]) == east.ca_certificate.public_bytes(serialization.Encoding.DER)
    assert [k["kid"] for k in document["keys"] if k["use"] == "jwt-svid"] == [east.jwt_key_id]
    authorities, sequence = parse_bundle(json.dumps(document))
    assert authorities == [east.ca_certificate] and sequence == 7 and document["spiffe_refresh_hint"] == 60


def test_keys_of_other_uses_and_x509_keys_without_x5c_are_ignored(east):
    document = bundle_document(east)
    document["keys"] += [{"kty": "EC", "use": "wit-svid"}, {"kty": "EC", "use": "x509-svid"}]
    assert parse_bundle(document)[0] == [east.ca_certificate]


@pytest.mark.parametrize("document, message", [
    ("not json", "a SPIFFE bundle is a JSON JWK Set"),
    ({"spiffe_sequence": 1}, "'keys' (a list of JWKs) must be present"),
    ({"keys": [], "spiffe_sequence": "1"}, "spiffe_sequence must be an integer"),
    ({"keys": [{"use": "x509-svid", "x5c": ["***"]}]}, "keys[0].x5c[0] is not a base64 DER certificate"),
])
def test_bad_bundles_are_refused(document, message):
    with pytest.raises(BundleError) as refused:
        parse_bundle(document)
    assert message in str(refused.value)


def test_an_older_bundle_does_not_replace_a_newer_one(east, west):
    store = TrustStore()
    assert store.add(EAST, east.x509_bundle(), sequence=5)
    assert not store.add(EAST, west.x509_bundle(), sequence=4)
    assert store.bundle_for(EAST) == east.x509_bundle()


@pytest.mark.parametrize("arguments, message", [
    ((EAST, "http://bundles.example/east", "https_web"), "the scheme must be https"),
    ((EAST, "https://user:secret@bundles.example/east", "https_web"), "must not include userinfo"),
    ((EAST, "https://bundles.example/east", "spiffe"), "profile 'spiffe' is not one of https_web, https_spiffe"),
    ((EAST, "https://bundles.example/east", "https_spiffe"), "https_spiffe needs the endpoint's SPIFFE ID"),
    ((EAST, "https://bundles.example/east", "https_web", parse_id("spiffe://east.example/bundle")), "https_web takes no endpoint SPIFFE ID"),
])
def test_bad_endpoint_parameters_are_refused(arguments, message):
    with pytest.raises(BundleError) as refused:
        BundleEndpoint(*arguments)
    assert message in str(refused.value)


def test_an_https_spiffe_endpoint_is_fetched_with_the_bundle_configured_out_of_band_then_the_call_works(east, west):
    server_svid = svid(east, "/spire/bundle-endpoint")
    with BundleServer(lambda: bundle_document(east, 2), *server_svid.pem_files()) as endpoint:
        parameters = BundleEndpoint(EAST, endpoint.url, "https_spiffe", server_svid.spiffe_id)
        west_store = holding(west)
        with pytest.raises(BundleError, match="no bundle for trust domain east.example; held: west.example.*out of band"):
            fetch_bundle(parameters, west_store)
        bootstrap = TrustStore()
        bootstrap.add(EAST, east.x509_bundle(), sequence=1)  # the self-serving endpoint's bundle, obtained once out of band
        assert fetch_bundle(parameters, bootstrap) == [east.ca_certificate]
        west_store.add(EAST, bootstrap.bundle_for(EAST))
    record, answer = exchange(svid(west, "/ns/payments/sa/api"), west_store, svid(east, "/ns/shop/sa/web"), holding(east, west))
    assert record["allowed"] and answer["allowed"]


def test_an_https_spiffe_endpoint_proving_another_spiffe_id_is_refused(east):
    impostor = svid(east, "/ns/shop/sa/web")
    with BundleServer(lambda: bundle_document(east), *impostor.pem_files()) as endpoint:
        parameters = BundleEndpoint(EAST, endpoint.url, "https_spiffe", parse_id("spiffe://east.example/spire/bundle-endpoint"))
        with pytest.raises(BundleError, match="proved spiffe://east.example/ns/shop/sa/web, not the configured"):
            fetch_bundle(parameters, holding(east))


def web_pki() -> tuple[bytes, bytes, bytes]:
    """A stand-in for the Web PKI: a root, and a server certificate for 127.0.0.1 it signs (chain PEM, key PEM, root PEM)."""
    now = dt.datetime.now(dt.UTC)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test web root")])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bundles")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name).public_key(root_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(root_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name).issuer_name(root_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (leaf.public_bytes(pem), key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), root.public_bytes(pem))


def test_an_https_web_endpoint_is_authenticated_by_the_web_pki_the_client_trusts(east):
    chain, key, root = web_pki()
    with BundleServer(lambda: bundle_document(east), chain, key) as endpoint:
        parameters = BundleEndpoint(EAST, endpoint.url, "https_web")
        with pytest.raises(BundleError, match="failed authentication"):
            fetch_bundle(parameters, TrustStore())  # the system's roots do not know this one
        store = TrustStore()
        assert fetch_bundle(parameters, store, web_roots=root) == [east.ca_certificate] and store.trust_domains == [EAST]
    assert endpoint.refused == ["TLSV1_ALERT_UNKNOWN_CA"], "the first client's alert, as the server saw it"


#: An AuthorizationPolicy for payments written with the mesh's new trust domain.
POLICY = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "from-shop", "namespace": "payments"},
          "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"principals": ["new.example/ns/shop/sa/web"]}}]}]}}


@pytest.mark.parametrize("principals, aliases, expected", [
    (["new.example/ns/shop/sa/web"], ["old.example"], ["new.example/ns/shop/sa/web", "old.example/ns/shop/sa/web"]),
    (["old.example/ns/shop/sa/web"], ["old.example"], ["new.example/ns/shop/sa/web", "old.example/ns/shop/sa/web"]),
    (["cluster.local/ns/shop/sa/web"], ["old.example"], ["new.example/ns/shop/sa/web", "old.example/ns/shop/sa/web"]),
    (["other.example/ns/shop/sa/web"], ["old.example"], ["other.example/ns/shop/sa/web"]),
    (["*/ns/shop/sa/web"], ["old.example"], ["*/ns/shop/sa/web"]),
    (["*.example/ns/shop/sa/web"], ["old.example"], ["*.example/ns/shop/sa/web"]),
    (["new.example/ns/shop/sa/web"], [], ["new.example/ns/shop/sa/web"]),
])
def test_istiod_rewrites_principals_for_the_trust_domain_and_its_aliases(principals, aliases, expected):
    policy = json.loads(json.dumps(POLICY))
    policy["spec"]["rules"][0]["from"][0]["source"]["principals"] = principals
    migrated = migrate_trust_domain(policy, "new.example", aliases)
    assert migrated["spec"]["rules"][0]["from"][0]["source"]["principals"] == expected
    assert policy["spec"]["rules"][0]["from"][0]["source"]["principals"] == principals, "the manifest itself is left alone"


def test_trust_domains_values_naming_the_mesh_expand_to_its_aliases():
    policy = {"spec": {"rules": [{"from": [{"source": {"trustDomains": ["old.example", "partner.example"]}}]}]}}
    assert migrate_trust_domain(policy, "new.example", ["old.example"])["spec"]["rules"][0]["from"][0]["source"]["trustDomains"] == [
        "new.example", "old.example", "partner.example"]


def test_a_bad_alias_is_refused():
    with pytest.raises(BundleError, match="trust domain or alias: trust domain characters are limited"):
        migrate_trust_domain(POLICY, "new.example", ["Old.Example"])


def test_a_peer_from_an_alias_is_authorized_over_a_real_handshake_only_with_the_alias_configured():
    new, old = TrustDomainAuthority(TrustDomain("new.example")), TrustDomainAuthority(TrustDomain("old.example"))

    def authorize(aliases: list[str]):
        policies = load_policies(migrate_trust_domain(POLICY, "new.example", aliases))
        return lambda peer: evaluate(policies, Request(principal=peer.removeprefix("spiffe://")), Workload("payments")).allowed

    server, client = svid(new, "/ns/payments/sa/api"), svid(old, "/ns/shop/sa/web")
    for aliases, allowed in (([], False), (["old.example"], True)):
        record, answer = exchange(server, holding(new, old), client, holding(old, new), authorize(aliases))
        assert record["peer"] == "spiffe://old.example/ns/shop/sa/web" and record["allowed"] is allowed and answer["allowed"] is allowed


@pytest.mark.upstream
def test_spire_and_meshlab_federate_through_spiffe_bundles(tmp_path, east):
    """SPIRE's server reads meshlab's bundle document (``bundle set -format spiffe``) and serves its own
    (``bundle show -format spiffe``), which meshlab reads; an SVID SPIRE mints then calls a meshlab
    workload over mutual TLS, each side trusting the other through the exchanged bundles only."""
    server = program_path("spire-server")
    with Spire(server, program_path("spire-agent"), tmp_path / "spire") as spire:
        socket_path = str(spire.server_socket)

        def spire_server(*argv: str) -> str:
            return subprocess.run([server, *argv, "-socketPath", socket_path], capture_output=True, text=True, check=True, timeout=60).stdout

        spire_authorities, _ = parse_bundle(spire_server("bundle", "show", "-format", "spiffe"))
        assert spire_authorities and all(c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca for c in spire_authorities)
        (tmp_path / "east.json").write_text(json.dumps(bundle_document(east)))
        spire_server("bundle", "set", "-format", "spiffe", "-id", "spiffe://east.example", "-path", str(tmp_path / "east.json"))
        federated, _ = parse_bundle(spire_server("bundle", "list", "-format", "spiffe", "-id", "spiffe://east.example"))
        assert federated == [east.ca_certificate]
        spire_server("x509", "mint", "-spiffeID", "spiffe://meshlab.test/ns/shop/sa/web", "-write", str(tmp_path))
    minted = x509.load_pem_x509_certificates((tmp_path / "svid.pem").read_bytes())
    spire_side = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    spire_side.check_hostname = False
    spire_side.load_verify_locations(cadata="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in federated))
    spire_side.load_cert_chain(tmp_path / "svid.pem", tmp_path / "key.pem")
    meshlab_side = holding(east)
    meshlab_side.add(TrustDomain("meshlab.test"), spire_authorities)
    assert str(meshlab_side.verify(minted)) == "spiffe://meshlab.test/ns/shop/sa/web"
    payments = svid(east, "/ns/payments/sa/api")
    listening = LoopbackServer(lambda peer: True, 1, svid_context(payments, meshlab_side, server_side=True), str(payments.spiffe_id))
    answer = call("127.0.0.1", listening.port, str(payments.spiffe_id), spire_side, "spire-minted")
    assert listening.join()[0]["peer"] == "spiffe://meshlab.test/ns/shop/sa/web" and answer["allowed"]

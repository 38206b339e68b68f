"""Trust domain authority, registration entries and SPIRE-style node attestation.

SVIDs are checked with code we did not write: cryptography's X.509 verifier, py-spiffe's parsers
(``X509Svid.parse_raw``, ``JwtBundle.parse``, ``JwtSvid.parse_and_validate``) and the spec's
profile read back from the certificates."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import VerificationError
from google.protobuf import descriptor_pb2
from spiffe import JwtBundle, JwtSvid
from spiffe import TrustDomain as PyTrustDomain
from spiffe import X509Svid as PyX509Svid
from spiffe._proto import workload_pb2

from meshlab.identity.authority import JwtSvidError, TrustDomainAuthority, new_key, verify_x509_svid
from meshlab.identity.entries import EntryError, Selector, load_entries, parse_selector
from meshlab.identity.server import KubernetesCluster, NodeAttestationError, SpireServer
from meshlab.identity.spiffeid import SpiffeIdError, TrustDomain, parse_id
from meshlab.identity.workloadapi import messages

TD = TrustDomain("meshlab.test")
WEB = parse_id("spiffe://meshlab.test/ns/default/sa/web")


@pytest.fixture(scope="module")
def authority():
    return TrustDomainAuthority(TD)


def test_x509_svid_follows_the_spec_profile(authority):
    leaf = authority.sign_x509_svid(WEB, dt.timedelta(hours=1)).leaf
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier) == [str(WEB)]
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert constraints.critical and not constraints.value.ca
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign and not usage.value.crl_sign
    assert set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    ca = authority.ca_certificate
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert ca.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://meshlab.test"]


def test_chains_verify_with_cryptography_and_parse_with_py_spiffe(authority):
    svid = authority.sign_x509_svid(WEB, dt.timedelta(hours=1))
    assert verify_x509_svid(list(svid.chain), authority.x509_bundle()) == WEB
    parsed = PyX509Svid.parse_raw(svid.chain_der(), svid.key_der())
    assert str(parsed.spiffe_id) == str(WEB)
    other = TrustDomainAuthority(TD)  # same name, different keys: an impostor CA
    with pytest.raises(VerificationError):
        verify_x509_svid(list(svid.chain), other.x509_bundle())


def test_an_expired_svid_does_not_verify(authority):
    issued = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    svid = authority.sign_x509_svid(WEB, dt.timedelta(hours=1), now=issued)
    with pytest.raises(VerificationError, match="expired|not valid|validity"):
        verify_x509_svid(list(svid.chain), authority.x509_bundle())


def test_ids_outside_the_trust_domain_or_without_path_are_refused(authority):
    with pytest.raises(SpiffeIdError, match="not in trust domain meshlab.test"):
        authority.sign_x509_svid(parse_id("spiffe://other.test/web"), dt.timedelta(hours=1))
    with pytest.raises(SpiffeIdError, match="must have a path"):
        authority.sign_x509_svid(TD.id, dt.timedelta(hours=1))


def test_jwt_svids_validate_with_py_spiffe_and_refuse_the_wrong_audience(authority):
    token = authority.sign_jwt_svid(WEB, ["db"], dt.timedelta(minutes=5))
    bundle = JwtBundle.parse(PyTrustDomain("meshlab.test"), json.dumps(authority.jwks()).encode())
    assert str(JwtSvid.parse_and_validate(token, bundle, {"db"}).spiffe_id) == str(WEB)
    with pytest.raises(Exception, match="[Aa]udience"):
        JwtSvid.parse_and_validate(token, bundle, {"payments"})
    assert authority.validate_jwt_svid(token, "db")[0] == WEB
    with pytest.raises(JwtSvidError, match="audience 'payments' is not in the token's audience"):
        authority.validate_jwt_svid(token, "payments")


def test_an_expired_jwt_svid_is_refused(authority):
    token = authority.sign_jwt_svid(WEB, ["db"], dt.timedelta(minutes=5), now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10))
    with pytest.raises(JwtSvidError, match="expired"):
        authority.validate_jwt_svid(token, "db")
    bundle = JwtBundle.parse(PyTrustDomain("meshlab.test"), json.dumps(authority.jwks()).encode())
    with pytest.raises(Exception, match="expired"):
        JwtSvid.parse_and_validate(token, bundle, {"db"})


def test_a_token_signed_by_another_key_is_refused(authority):
    impostor = TrustDomainAuthority(TD)
    token = impostor.sign_jwt_svid(WEB, ["db"], dt.timedelta(minutes=5))
    with pytest.raises(JwtSvidError, match="is not in the bundle"):
        authority.validate_jwt_svid(token, "db")


def test_the_workload_api_schema_equals_the_specs_as_the_client_ships_it():
    """meshlab builds its messages from its own descriptor; py-spiffe ships code generated from the
    spec's workload.proto. Every message must have the same fields, numbers, types and labels."""

    def shape(descriptor):
        proto = descriptor_pb2.DescriptorProto()
        descriptor.CopyToProto(proto)
        fields = [(f.name, f.number, f.type, f.label, f.type_name.rsplit(".", 1)[-1]) for f in proto.field]
        return fields, [(n.name, [(f.name, f.number, f.type) for f in n.field], n.options.map_entry) for n in proto.nested_type]

    assert set(messages) == {m.name for m in workload_pb2.DESCRIPTOR.message_types_by_name.values()}
    for name, cls in messages.items():
        assert shape(cls.DESCRIPTOR) == shape(getattr(workload_pb2, name).DESCRIPTOR), name
    service = workload_pb2.DESCRIPTOR.services_by_name["SpiffeWorkloadAPI"]
    ours = cls.DESCRIPTOR.file.services_by_name["SpiffeWorkloadAPI"]
    assert [(m.name, m.input_type.name, m.output_type.name, m.server_streaming) for m in ours.methods] == \
           [(m.name, m.input_type.name, m.output_type.name, m.server_streaming) for m in service.methods]


AGENT = parse_id("spiffe://meshlab.test/spire/agent/join_token/t")


def test_entries_load_and_match_by_subset():
    entries = load_entries([{"spiffe_id": "spiffe://meshlab.test/web", "selectors": ["k8s:ns:default", "k8s:pod-label:app:web"], "ttl": 60}], AGENT)
    entry = entries[0]
    assert entry.parent_id == AGENT and entry.ttl_s == 60
    assert parse_selector("k8s:pod-label:app:web") == Selector("k8s", "pod-label:app:web")
    workload = {Selector("k8s", "ns:default"), Selector("k8s", "pod-label:app:web"), Selector("unix", "uid:0")}
    assert entry.matches(workload)
    assert not entry.matches(workload - {Selector("k8s", "pod-label:app:web")})


@pytest.mark.parametrize("item, message", [
    ({"spiffe_id": "spiffe://meshlab.test/web/", "selectors": ["unix:uid:0"]}, r"entries\[0\]: spiffe_id .*: path cannot have a trailing slash"),
    ({"spiffe_id": "spiffe://meshlab.test", "selectors": ["unix:uid:0"]}, r"entries\[0\]: spiffe_id spiffe://meshlab.test has no path"),
    ({"spiffe_id": "spiffe://other.test/web", "selectors": ["unix:uid:0"]}, r"not in the agent's trust domain meshlab.test"),
    ({"spiffe_id": "spiffe://meshlab.test/web", "selectors": []}, r"selectors must be a non-empty list"),
    ({"spiffe_id": "spiffe://meshlab.test/web", "selectors": ["docker:label:x"]}, r"unknown type 'docker'; accepted types: unix, k8s"),
    ({"spiffe_id": "spiffe://meshlab.test/web", "selectors": ["unix:pid:1"]}, r"'unix:pid:1' is not one of unix:uid:VALUE"),
    ({"spiffe_id": "spiffe://meshlab.test/web", "selectors": ["unix:uid:0"], "ttl": 0}, r"ttl 0 must be a whole number of seconds >= 1"),
    ({"spiffe_id": "spiffe://meshlab.test/web", "selectors": ["unix:uid:0"], "ttl_s": 5}, r"unknown field\(s\) ttl_s"),
    ("spiffe://meshlab.test/web", r"an entry is an object"),
])
def test_bad_entries_name_the_entry_and_the_rule(item, message):
    with pytest.raises(EntryError, match=message):
        load_entries([item], AGENT)


def test_entries_file_errors(tmp_path):
    with pytest.raises(EntryError, match="no such file"):
        load_entries(tmp_path / "missing.json", AGENT)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(EntryError, match="not JSON"):
        load_entries(tmp_path / "bad.json", AGENT)


def test_join_tokens_work_once_and_agents_mint_only_their_entries():
    server = SpireServer(TD)
    token = server.create_join_token()
    key = new_key()
    certificate = server.attest_join_token(token, key.public_key())
    agent = parse_id(f"spiffe://meshlab.test/spire/agent/join_token/{token}")
    assert verify_x509_svid([certificate], server.authority.x509_bundle()) == agent
    with pytest.raises(NodeAttestationError, match="unknown or was already used"):
        server.attest_join_token(token, key.public_key())
    other_token = server.create_join_token()
    server.attest_join_token(other_token, new_key().public_key())
    other = parse_id(f"spiffe://meshlab.test/spire/agent/join_token/{other_token}")
    server.entries = load_entries([{"spiffe_id": "spiffe://meshlab.test/web", "selectors": ["unix:uid:0"]}], agent)
    assert server.entries_for(other) == []
    with pytest.raises(NodeAttestationError, match="not parented to it"):
        server.mint_x509_svid(other, server.entries[0], new_key().public_key())
    stranger = parse_id("spiffe://meshlab.test/spire/agent/join_token/forged")
    with pytest.raises(NodeAttestationError, match="has not attested"):
        server.entries_for(stranger)
    expired = server.create_join_token(ttl=dt.timedelta(seconds=-1))
    with pytest.raises(NodeAttestationError, match="join token has expired"):
        server.attest_join_token(expired, key.public_key())


def test_psat_node_attestation_checks_token_account_and_node():
    cluster = KubernetesCluster("kind", {("spire", "agent-a"): {"node": "worker", "service_account": "spire-agent"},
                                         ("default", "web"): {"node": "worker", "service_account": "default"}})
    server = SpireServer(TD)
    allowed = {"spire:spire-agent"}
    certificate = server.attest_psat(cluster.projected_token("spire", "agent-a"), cluster, allowed, new_key().public_key())
    assert str(verify_x509_svid([certificate], server.authority.x509_bundle())) == f"spiffe://meshlab.test/spire/agent/k8s_psat/kind/{cluster.node_uid('worker')}"
    with pytest.raises(NodeAttestationError, match="service account default:default is not allowed"):
        server.attest_psat(cluster.projected_token("default", "web"), cluster, allowed, new_key().public_key())
    with pytest.raises(NodeAttestationError, match="did not authenticate the token"):
        server.attest_psat(cluster.projected_token("spire", "agent-a", audience="vault"), cluster, allowed, new_key().public_key())
    token = cluster.projected_token("spire", "agent-a")
    cluster.pods[("spire", "agent-a")]["node"] = "other-node"  # the pod is not where the token says
    with pytest.raises(NodeAttestationError, match="does not run on node worker"):
        server.attest_psat(token, cluster, allowed, new_key().public_key())
    forged = KubernetesCluster("kind", {("spire", "agent-a"): {"node": "worker", "service_account": "spire-agent"}})
    with pytest.raises(NodeAttestationError, match="did not authenticate"):
        server.attest_psat(forged.projected_token("spire", "agent-a"), cluster, allowed, new_key().public_key())

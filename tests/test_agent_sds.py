"""The agent's SDS server, asked by a real gRPC client (grpcio with xds-protos' stubs) over its Unix
socket: the ``default`` chain it serves verifies against the ``ROOTCA`` bundle it serves, with the
pod's SPIFFE ID; a stream is pushed new certificates on rotation; an unknown name is refused."""

from __future__ import annotations

import datetime as dt
import queue

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

from meshlab.agent.sds import SECRET_TYPE, SdsServer, WorkloadSecrets
from meshlab.identity.authority import TrustDomainAuthority, verify_x509_svid
from meshlab.identity.spiffeid import TrustDomain, parse_id

POD_ID = "spiffe://cluster.local/ns/shop/sa/web"


@pytest.fixture()
def authority():
    return TrustDomainAuthority(TrustDomain("cluster.local"))


def secrets_for(authority: TrustDomainAuthority, ttl_hours: int = 24) -> WorkloadSecrets:
    return WorkloadSecrets.from_svid(authority.sign_x509_svid(parse_id(POD_ID), dt.timedelta(hours=ttl_hours)), authority.x509_bundle())


@pytest.fixture()
def sds(tmp_path, authority):
    with SdsServer(tmp_path / "var/run/secrets/workload-spiffe-uds/socket", secrets_for(authority)) as server:
        with grpc.insecure_channel(f"unix:{server.socket_path}") as channel:
            yield server, sds_pb2_grpc.SecretDiscoveryServiceStub(channel)


def unpack(response: discovery_pb2.DiscoveryResponse) -> dict[str, secret_pb2.Secret]:
    out = {}
    for resource in response.resources:
        assert resource.type_url == SECRET_TYPE
        secret = secret_pb2.Secret()
        resource.Unpack(secret)
        out[secret.name] = secret
    return out


def test_the_served_chain_verifies_against_the_served_root_with_the_pods_id(sds):
    _, stub = sds
    secrets = unpack(stub.FetchSecrets(discovery_pb2.DiscoveryRequest(resource_names=["default", "ROOTCA"], type_url=SECRET_TYPE), timeout=10))
    chain = x509.load_pem_x509_certificates(secrets["default"].tls_certificate.certificate_chain.inline_bytes)
    bundle = x509.load_pem_x509_certificates(secrets["ROOTCA"].validation_context.trusted_ca.inline_bytes)
    assert str(verify_x509_svid(chain, bundle)) == POD_ID
    key = serialization.load_pem_private_key(secrets["default"].tls_certificate.private_key.inline_bytes, password=None)
    assert key.public_key().public_numbers() == chain[0].public_key().public_numbers()


def test_a_chain_from_another_ca_does_not_verify(sds):
    _, stub = sds
    secrets = unpack(stub.FetchSecrets(discovery_pb2.DiscoveryRequest(resource_names=["default"], type_url=SECRET_TYPE), timeout=10))
    chain = x509.load_pem_x509_certificates(secrets["default"].tls_certificate.certificate_chain.inline_bytes)
    with pytest.raises(Exception):  # noqa: B017 (cryptography's verification error, whatever its class)
        verify_x509_svid(chain, TrustDomainAuthority(TrustDomain("cluster.local")).x509_bundle())


def test_an_unknown_resource_is_refused_by_name(sds):
    _, stub = sds
    with pytest.raises(grpc.RpcError) as refused:
        stub.FetchSecrets(discovery_pb2.DiscoveryRequest(resource_names=["file-cert:/x"], type_url=SECRET_TYPE), timeout=10)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'default'" in refused.value.details() and "file-cert:/x" in refused.value.details()


def test_a_stream_gets_its_secret_then_nothing_on_ack_then_the_rotated_one(sds, authority):
    server, stub = sds
    requests: queue.Queue = queue.Queue()
    requests.put(discovery_pb2.DiscoveryRequest(resource_names=["default"], type_url=SECRET_TYPE))
    stream = stub.StreamSecrets(iter(requests.get, None), timeout=30)
    first = next(stream)
    assert first.version_info == "1" and set(unpack(first)) == {"default"}
    requests.put(discovery_pb2.DiscoveryRequest(resource_names=["default"], type_url=SECRET_TYPE, version_info="1", response_nonce=first.nonce))
    server.rotate(secrets_for(authority, ttl_hours=2))
    second = next(stream)  # the ACK got nothing: the next message is the push
    assert second.version_info == "2"
    old = x509.load_pem_x509_certificate(unpack(first)["default"].tls_certificate.certificate_chain.inline_bytes)
    new = x509.load_pem_x509_certificate(unpack(second)["default"].tls_certificate.certificate_chain.inline_bytes)
    assert new.serial_number != old.serial_number
    requests.put(None)
    stream.cancel()

"""SPIFFE identities for live-lab pods: mutual TLS authorised by SPIFFE ID, and the attacks refused.

Three pods: ``server`` and ``client`` are registered by Kubernetes-style selectors (namespace,
service account, pod label), ``intruder`` runs the same code as the same uid (0) in another pod.
Every workload fetches its SVID with the real ``spiffe`` client from the agent's socket."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import serialization

from meshlab.lab.identity import IdentityLab
from meshlab.identity.mtls import call, context
from meshlab.identity.spiffeid import parse_id
from meshlab.lab import PodSpec

pytestmark = pytest.mark.live

SERVER = "spiffe://meshlab.test/ns/shop/sa/server"
CLIENT = "spiffe://meshlab.test/ns/shop/sa/client"
INTRUDER = "spiffe://meshlab.test/ns/default/sa/intruder"
PODS = [PodSpec("server", k8s_namespace="shop", service_account="server", labels={"app": "server"}),
        PodSpec("client", k8s_namespace="shop", service_account="client", labels={"app": "client"}),
        PodSpec("intruder")]
#: Narrow entries: uid AND namespace AND service account (AND a label for the server).
ENTRIES = [
    {"spiffe_id": SERVER, "selectors": ["unix:uid:0", "k8s:ns:shop", "k8s:sa:server", "k8s:pod-label:app:server"], "ttl": 600},
    {"spiffe_id": CLIENT, "selectors": ["unix:uid:0", "k8s:ns:shop", "k8s:sa:client"], "ttl": 600},
]


@pytest.fixture(scope="module")
def zero_trust():
    with IdentityLab("mlid", PODS, ENTRIES) as running:
        yield running


def test_pods_talk_mtls_and_each_side_proves_its_spiffe_id(zero_trust):
    server = zero_trust.serve("server", allow=[CLIENT], connections=1)
    record = zero_trust.call("client", "server", expect=SERVER)
    assert record["allowed"] and (record["me"], record["peer"]) == (CLIENT, SERVER)
    assert record["reply"] == {"allowed": True, "server": SERVER, "client": CLIENT, "reason": ""}
    served = json.loads(server.communicate(timeout=30)[0].splitlines()[-1])
    assert (served["peer"], served["allowed"]) == (CLIENT, True)
    # the kernel's account of the caller: k8s selectors found from the pod's network namespace
    granted = {d.granted[0]: d.selectors for d in zero_trust.decisions() if d.granted}
    assert {"k8s:ns:shop", "k8s:sa:client", "k8s:pod-name:client", "k8s:container-name:app", "unix:uid:0"} <= set(granted[CLIENT])


def test_an_unregistered_workload_gets_no_identity(zero_trust):
    record = zero_trust.call("intruder", "server", expect=SERVER)
    assert not record["allowed"] and record["me"] is None
    assert "no identity issued" in record["refused"] and "PERMISSION_DENIED" in record["refused"]
    refused = zero_trust.decisions()[-1]
    assert refused.refused == "no identity issued" and "k8s:pod-name:intruder" in refused.selectors and "unix:uid:0" in refused.selectors


def test_the_right_uid_in_the_wrong_pod_is_not_the_server(zero_trust):
    """An entry selecting only ``unix:uid:0`` would hand the server's identity to every root process
    on the node: the intruder, same uid, other pod, then passes as the server. The narrow entry
    (namespace, service account, label) does not."""
    try:
        server = zero_trust.serve("client", allow=[SERVER], connections=1, port=9443)  # the client, with its SVID, trusts the server's ID
        zero_trust.set_entries([{"spiffe_id": SERVER, "selectors": ["unix:uid:0"]}, ENTRIES[1]])
        stolen = zero_trust.call("intruder", "client", expect=CLIENT, port=9443)
        assert stolen["me"] == SERVER, "with the broad entry the intruder is handed the server's identity"
        assert stolen["allowed"] and stolen["reply"]["client"] == SERVER, "and the client accepts it as the server"
        server.communicate(timeout=30)
    finally:
        zero_trust.set_entries(ENTRIES)
    assert zero_trust.call("intruder", "server", expect=SERVER)["me"] is None


def test_a_workload_with_another_identity_is_refused_by_the_server(zero_trust):
    try:
        zero_trust.set_entries([*ENTRIES, {"spiffe_id": INTRUDER, "selectors": ["k8s:pod-name:intruder"]}])
        server = zero_trust.serve("server", allow=[CLIENT], connections=1)
        record = zero_trust.call("intruder", "server", expect=SERVER)
        served = json.loads(server.communicate(timeout=30)[0].splitlines()[-1])
    finally:
        zero_trust.set_entries(ENTRIES)
    assert record["me"] == INTRUDER and record["peer"] == SERVER, "the TLS handshake itself succeeds: both chains verify"
    assert not record["allowed"] and record["reply"]["reason"] == f"{INTRUDER} is not allowed to call {SERVER}"
    assert (served["peer"], served["allowed"]) == (INTRUDER, False)


def test_an_expired_svid_is_refused_in_the_handshake(zero_trust):
    """A stolen SVID stops working when it expires: sign one that expired a minute ago (as if taken
    from the client and kept) and present it to the server from the client pod."""
    authority = zero_trust.agent.agent.server.authority
    stolen = authority.sign_x509_svid(parse_id(CLIENT), dt.timedelta(minutes=1), now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2))
    chain, key = stolen.pem_files()
    bundle = authority.ca_certificate.public_bytes(serialization.Encoding.PEM)
    tls = context(chain, key, bundle, server_side=False)
    server = zero_trust.serve("server", allow=[CLIENT], connections=1)
    record = zero_trust.lab.in_pod("client", call, zero_trust.lab.pod("server").ip, 8443, SERVER, tls, CLIENT)
    served = json.loads(server.communicate(timeout=30)[0].splitlines()[-1])
    assert not record["allowed"] and "TLS failed" in record["refused"]
    assert not served["allowed"] and served["refused"] == "TLS handshake failed: CERTIFICATE_VERIFY_FAILED: certificate has expired"

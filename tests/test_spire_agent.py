"""The SPIFFE Workload API served by meshlab's agent, called by the real ``spiffe`` client from PyPI.

Runs on a Unix socket in a temporary folder: no namespaces, no root needed (entries select this
test process by its uid)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from cryptography.x509.verification import VerificationError
from spiffe import JwtSvid, SpiffeId, WorkloadApiClient, X509Source
from spiffe import TrustDomain as PyTrustDomain
from spiffe.workloadapi.errors import FetchJwtSvidError, FetchX509SvidError, ValidateJwtSvidError

from meshlab.identity.agent import AgentThread, attested_agent
from meshlab.identity.attacks import hand_over_connection
from meshlab.identity.attestation import AttestationError, Caller, PeerCredentials
from meshlab.identity.authority import verify_x509_svid
from meshlab.identity.server import SpireServer
from meshlab.identity.spiffeid import TrustDomain
from meshlab.identity.workloadapi import HEADER, messages
from meshlab.procfs import start_time

TD = TrustDomain("meshlab.test")
WEB = "spiffe://meshlab.test/ns/default/sa/web"
ME = f"unix:uid:{os.getuid()}"


def start_agent(folder: Path, entries: list[dict], discover_workload_path: bool = False) -> AgentThread:
    return AgentThread(attested_agent(TD, folder / "agent.sock", entries, discover_workload_path=discover_workload_path)).start()


@pytest.fixture
def agent(tmp_path):
    running = start_agent(tmp_path, [{"spiffe_id": WEB, "selectors": [ME], "ttl": 3600}])
    yield running
    running.stop()


def client_for(running: AgentThread) -> WorkloadApiClient:
    return WorkloadApiClient(f"unix://{running.agent.socket_path}")


def test_the_real_client_fetches_x509_svids_and_bundles_that_verify(agent):
    with client_for(agent) as client:
        svid = client.fetch_x509_svid()
        bundles = client.fetch_x509_bundles()
    assert str(svid.spiffe_id) == WEB
    roots = bundles.get_bundle_for_trust_domain(PyTrustDomain("meshlab.test")).x509_authorities
    assert str(verify_x509_svid(list(svid.cert_chain), list(roots))) == WEB
    assert svid.private_key.public_key().public_numbers() == svid.leaf.public_key().public_numbers()
    decision = agent.decisions()[-1]
    assert decision.granted == (WEB,) and ME in decision.selectors and decision.pid == os.getpid()


def test_jwt_svids_from_the_agent_validate_with_the_client_and_the_agent(agent):
    with client_for(agent) as client:
        token = client.fetch_jwt_svid({"db"})
        bundles = client.fetch_jwt_bundles()
        checked = JwtSvid.parse_and_validate(token.token, bundles.get_bundle_for_trust_domain(PyTrustDomain("meshlab.test")), {"db"})
        assert str(checked.spiffe_id) == WEB
        assert str(client.validate_jwt_svid(token.token, "db").spiffe_id) == WEB
        with pytest.raises(ValidateJwtSvidError, match="audience 'payments' is not in the token's audience"):
            client.validate_jwt_svid(token.token, "payments")
        with pytest.raises(FetchJwtSvidError, match="no identity issued"):
            client.fetch_jwt_svid({"db"}, subject=SpiffeId("spiffe://meshlab.test/ns/default/sa/admin"))


def test_rotated_svids_are_pushed_on_the_open_stream(tmp_path):
    running = start_agent(tmp_path, [{"spiffe_id": WEB, "selectors": [ME], "ttl": 2}])
    try:
        with client_for(running) as client, X509Source(workload_api_client=client) as source:
            first = source.get_x509_context().default_svid.leaf.serial_number
            deadline = time.monotonic() + 10
            while source.get_x509_context().default_svid.leaf.serial_number == first and time.monotonic() < deadline:
                time.sleep(0.05)
            assert source.get_x509_context().default_svid.leaf.serial_number != first, "the renewed SVID reached the open stream"
        assert running.runner.call(lambda: running.agent.rotations) >= 1
    finally:
        running.stop()


def test_a_caller_no_entry_matches_is_denied(tmp_path):
    running = start_agent(tmp_path, [{"spiffe_id": WEB, "selectors": [f"unix:uid:{os.getuid() + 4242}"]}])
    try:
        with client_for(running) as client, pytest.raises(FetchX509SvidError, match=r"no identity issued \(StatusCode.PERMISSION_DENIED\)"):
            client.fetch_x509_svid()
        assert running.decisions()[-1].refused == "no identity issued"
    finally:
        running.stop()


def raw_call(path: Path, method: str, request, response: str, metadata=()):
    with grpc.insecure_channel(f"unix:{path}") as channel:
        call = channel.unary_unary(f"/SpiffeWorkloadAPI/{method}", request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=messages[response].FromString)
        return call(request, metadata=metadata, timeout=5)


def test_calls_without_the_security_header_or_audience_are_invalid(agent):
    path = agent.agent.socket_path
    with pytest.raises(grpc.RpcError) as raised:
        raw_call(path, "FetchJWTSVID", messages["JWTSVIDRequest"](audience=["db"]), "JWTSVIDResponse")
    assert (raised.value.code(), raised.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "security header missing from request")
    with pytest.raises(grpc.RpcError) as raised:
        raw_call(path, "FetchJWTSVID", messages["JWTSVIDRequest"](), "JWTSVIDResponse", metadata=[HEADER])
    assert (raised.value.code(), raised.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "audience must be specified")
    reply = raw_call(path, "FetchJWTSVID", messages["JWTSVIDRequest"](audience=["db"]), "JWTSVIDResponse", metadata=[HEADER])
    assert [svid.spiffe_id for svid in reply.svids] == [WEB]


def test_the_socket_is_open_to_every_local_user(agent):
    assert oct(agent.agent.socket_path.stat().st_mode & 0o777) == "0o777"


def test_a_connection_handed_over_by_an_exited_process_is_refused(agent, tmp_path):
    child = hand_over_connection(agent.agent.socket_path, tmp_path / "relay.sock")
    with WorkloadApiClient(f"unix://{tmp_path / 'relay.sock'}") as client, pytest.raises(FetchX509SvidError, match="has exited; its connection cannot be attested"):
        client.fetch_x509_svid()
    refused = agent.decisions()[-1]
    assert refused.pid == child and "has exited" in refused.refused


def test_a_reused_pid_is_detected_by_its_start_time():
    caller = Caller(PeerCredentials(os.getpid(), os.getuid(), os.getgid()), start_time(os.getpid()))
    caller.check()  # the same process: fine
    reused = Caller(PeerCredentials(os.getpid(), os.getuid(), os.getgid()), start_time(os.getpid()) - 1)
    with pytest.raises(AttestationError, match=f"PID {os.getpid()} now belongs to another process"):
        reused.check()


def test_the_cli_agent_serves_the_real_client(tmp_path):
    entries = tmp_path / "entries.json"
    entries.write_text(json.dumps([{"spiffe_id": WEB, "selectors": [ME], "ttl": 600}]))
    sock = tmp_path / "cli.sock"
    agent = subprocess.Popen([sys.executable, "-m", "meshlab.cli", "spire", "agent", "--trust-domain", "meshlab.test", "--socket", str(sock), "--entries", str(entries)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(agent.stdout.readline())
        assert ready["event"] == "ready" and ready["agent"].startswith("spiffe://meshlab.test/spire/agent/join_token/")
        with WorkloadApiClient(f"unix://{sock}") as client:
            assert str(client.fetch_x509_svid().spiffe_id) == WEB
        decision = json.loads(agent.stdout.readline())
        assert decision["event"] == "attestation" and decision["granted"] == [WEB]
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    assert agent.returncode == 0 and not sock.exists()


def test_the_cli_agent_refuses_bad_entries(tmp_path):
    entries = tmp_path / "entries.json"
    entries.write_text(json.dumps([{"spiffe_id": "spiffe://meshlab.test/web/", "selectors": [ME]}]))
    done = subprocess.run([sys.executable, "-m", "meshlab.cli", "spire", "agent", "--trust-domain", "meshlab.test", "--socket", str(tmp_path / "s"),
                           "--entries", str(entries)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "entries.json[0]: spiffe_id 'spiffe://meshlab.test/web/': path cannot have a trailing slash" in done.stderr


def test_chains_from_another_trust_domain_do_not_verify(agent):
    with client_for(agent) as client:
        svid = client.fetch_x509_svid()
    stranger = SpireServer(TD)
    with pytest.raises(VerificationError):
        verify_x509_svid(list(svid.cert_chain), stranger.authority.x509_bundle())

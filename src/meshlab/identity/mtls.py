"""Mutual TLS with X509-SVIDs, and authorization by SPIFFE ID: what a mesh's proxies do for apps.

Both ends present their X509-SVID and verify the other's chain against the trust domain's bundle.
Host names play no part (an SVID has no DNS name, only its SPIFFE ID as URI SAN), so the check
that matters comes after the handshake: is the peer's SPIFFE ID one this side talks to? That is
authorization by identity rather than by address, which survives pods moving and IPs being reused.

Run as a command inside live-lab pods, each side fetching its SVID from the SPIFFE agent with the
real ``spiffe`` client (the socket comes from SPIFFE_ENDPOINT_SOCKET):

    python -m meshlab.identity.mtls serve --port 8443 --allow spiffe://td/ns/default/sa/client [--connections N]
    python -m meshlab.identity.mtls call HOST 8443 --expect spiffe://td/ns/default/sa/server
    python -m meshlab.identity.mtls fetch-jwt --audience AUD [--as spiffe://td/...]   (asking for another ID)

Each prints one JSON object per connection: who it is, who the peer proved to be, and whether the
exchange was allowed (or why not).

    context         an ssl.SSLContext from an SVID and a bundle (PEM), client or server side
    peer_spiffe_id  the SPIFFE ID the peer's certificate proved
    serve, call     the two ends, one JSON line each
    LoopbackServer  serve() on 127.0.0.1 in a thread
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path


def context(chain_pem: bytes, key_pem: bytes, bundle_pem: bytes, server_side: bool) -> ssl.SSLContext:
    """TLS 1.3, a certificate required from the peer, verified against ``bundle_pem``; no host name."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    tls.minimum_version = ssl.TLSVersion.TLSv1_3
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_REQUIRED
    tls.load_verify_locations(cadata=bundle_pem.decode())
    with tempfile.TemporaryDirectory(prefix="meshlab-svid-") as folder:  # ssl reads keys from files only
        chain, key = Path(folder) / "svid.pem", Path(folder) / "svid.key"
        chain.write_bytes(chain_pem)
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        tls.load_cert_chain(chain, key)
    return tls


def peer_spiffe_id(connection: ssl.SSLSocket) -> str | None:
    names = dict(connection.getpeercert() or {}).get("subjectAltName", ())
    uris = [value for kind, value in names if kind == "URI"]
    return uris[0] if len(uris) == 1 else None


def _svid_context(server_side: bool) -> tuple[ssl.SSLContext, str]:
    """This workload's SVID from the Workload API (the real spiffe client), as a TLS context."""
    from cryptography.hazmat.primitives import serialization
    from spiffe import WorkloadApiClient

    with WorkloadApiClient() as client:
        x509 = client.fetch_x509_context()
    svid = x509.default_svid
    bundle = x509.x509_bundle_set.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
    pem = serialization.Encoding.PEM
    chain = b"".join(cert.public_bytes(pem) for cert in svid.cert_chain)
    key = svid.private_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    roots = b"".join(cert.public_bytes(pem) for cert in bundle.x509_authorities)
    return context(chain, key, roots, server_side), str(svid.spiffe_id)


def _failure(error: OSError) -> str:
    """What went wrong, as OpenSSL put it: the verification message when a chain was refused
    ("certificate has expired"), else the alert or error reason."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"{error.reason}: {error.verify_message}"
    return str(getattr(error, "reason", None) or error)


def serve(port: int, authorize: Callable[[str | None], bool], connections: int, tls: ssl.SSLContext, me: str, host: str = "0.0.0.0") -> Iterator[dict]:
    """Accept ``connections`` connections; yields a "ready" record once listening, then one record
    per connection: the peer's proven SPIFFE ID and whether ``authorize(peer)`` allowed it (or why
    the handshake failed). Authorization sees only the proven ID, never an address."""
    with socket.create_server((host, port)) as listener:
        yield {"event": "ready", "me": me, "port": listener.getsockname()[1]}
        for _ in range(connections):
            raw, address = listener.accept()
            record = {"me": me, "client_address": f"{address[0]}:{address[1]}"}
            try:
                with tls.wrap_socket(raw, server_side=True) as connection:
                    peer = record["peer"] = peer_spiffe_id(connection)
                    record["allowed"] = bool(authorize(peer))
                    reason = "" if record["allowed"] else f"{peer} is not allowed to call {me}"
                    connection.sendall(json.dumps({"allowed": record["allowed"], "server": me, "client": peer, "reason": reason}).encode() + b"\n")
            except (ssl.SSLError, OSError) as error:
                record.update(allowed=False, refused=f"TLS handshake failed: {_failure(error)}")
            yield record


class LoopbackServer:
    """``serve`` on 127.0.0.1 (a free port) in a thread, for notebooks and tests."""

    def __init__(self, authorize: Callable[[str | None], bool], connections: int, tls: ssl.SSLContext, me: str) -> None:
        serving = serve(0, authorize, connections, tls, me, host="127.0.0.1")
        self.port = next(serving)["port"]
        self.records: list[dict] = []
        self.thread = threading.Thread(target=lambda: self.records.extend(serving), daemon=True)
        self.thread.start()

    def join(self, timeout: float = 10) -> list[dict]:
        """The per-connection records, once every expected connection has been served."""
        self.thread.join(timeout)
        return self.records


def call(host: str, port: int, expect: str, tls: ssl.SSLContext, me: str) -> dict:
    record = {"me": me}
    try:
        with socket.create_connection((host, port), timeout=10) as raw, tls.wrap_socket(raw) as connection:
            peer = record["peer"] = peer_spiffe_id(connection)
            if peer != expect:
                record.update(allowed=False, refused=f"the server proved {peer}, not {expect}")
                return record
            reply = json.loads(connection.makefile().readline() or "{}")
            record.update(allowed=reply.get("allowed", False), reply=reply)
    except (ssl.SSLError, OSError) as error:
        record.update(allowed=False, refused=f"TLS failed: {_failure(error)}")
    return record


def _fetch_jwt(audience: str, subject: str | None) -> int:
    """Print {"spiffe_id"} of the JWT-SVID the agent issued, or {"refused"}: the agent decides from
    the caller's attested selectors, whatever ID is asked for."""
    from spiffe import SpiffeId, WorkloadApiClient
    from spiffe.workloadapi.errors import WorkloadApiError

    try:
        with WorkloadApiClient() as client:
            svid = client.fetch_jwt_svid({audience}, subject=SpiffeId(subject) if subject else None)
        print(json.dumps({"spiffe_id": str(svid.spiffe_id), "audience": sorted(svid.audience)}))
        return 0
    except WorkloadApiError as error:
        print(json.dumps({"spiffe_id": None, "refused": str(error)}))
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshlab.identity.mtls", description="mutual TLS between workloads with SPIFFE identities")
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("serve")
    server.add_argument("--port", type=int, default=8443)
    server.add_argument("--allow", action="append", default=[], help="a SPIFFE ID allowed to call (repeat)")
    server.add_argument("--connections", type=int, default=1)
    client = commands.add_parser("call")
    client.add_argument("host")
    client.add_argument("port", type=int)
    client.add_argument("--expect", required=True, help="the SPIFFE ID the server must prove")
    token = commands.add_parser("fetch-jwt", help="ask the agent for a JWT-SVID, optionally for a given SPIFFE ID (impersonation attempts)")
    token.add_argument("--audience", required=True)
    token.add_argument("--as", dest="subject", help="the SPIFFE ID to ask for (default: the workload's own)")
    args = parser.parse_args(argv)
    from spiffe.workloadapi.errors import WorkloadApiError

    if args.command == "fetch-jwt":
        return _fetch_jwt(args.audience, args.subject)
    try:
        tls, me = _svid_context(server_side=args.command == "serve")
    except WorkloadApiError as error:  # e.g. PERMISSION_DENIED: no registration entry matches this process
        print(json.dumps({"me": None, "allowed": False, "refused": f"no SVID for this workload: {error}"}))
        return 1
    if args.command == "serve":
        allowed = set(args.allow)
        for record in serve(args.port, allowed.__contains__, args.connections, tls, me):
            print(json.dumps(record), flush=True)
        return 0
    record = call(args.host, args.port, args.expect, tls, me)
    print(json.dumps(record))
    return 0 if record["allowed"] else 1


if __name__ == "__main__":
    sys.exit(main())

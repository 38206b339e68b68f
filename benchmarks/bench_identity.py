"""What an identity costs: the Workload API's latency as the real spiffe client sees it, against a
baseline measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_identity.py``. All on one Unix socket, one agent, this process:
1. baseline: ValidateJWTSVID with a token signed moments before (no attestation, one signature check);
2. FetchJWTSVID: attestation (SO_PEERCRED, /proc, selectors, entry matching) plus one ES256 signature;
3. FetchX509SVID one-shot: attestation plus the cached SVID's DER encoding (the key is generated at
   most once per half life);
4. signing alone, in process: a new key and X509-SVID, and a JWT-SVID, without any RPC.
Printed as p50/p99 in microseconds and ratios to the baseline; figures, not assertions.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

import grpc
from spiffe import WorkloadApiClient

from meshlab.identity.agent import Agent, AgentThread
from meshlab.identity.entries import load_entries
from meshlab.identity.server import SpireServer
from meshlab.identity.spiffeid import TrustDomain, parse_id

ROUNDS = 300
WEB = "spiffe://meshlab.test/ns/default/sa/web"


def timed(work, rounds: int = ROUNDS) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1e6)
    return times


def summary(name: str, times: list[float], baseline: float | None = None) -> float:
    p50 = statistics.median(times)
    p99 = statistics.quantiles(times, n=100)[98]
    ratio = f"  ({p50 / baseline:.2f}x the baseline)" if baseline else ""
    print(f"{name:<52} p50 {p50:8.0f} µs   p99 {p99:8.0f} µs{ratio}")
    return p50


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="meshlab-bench-spire-"))
    server = SpireServer(TrustDomain("meshlab.test"))
    agent = Agent(server, folder / "agent.sock")
    agent.attest(server.create_join_token())
    server.entries = load_entries([{"spiffe_id": WEB, "selectors": [f"unix:uid:{os.getuid()}"], "ttl": 3600}], agent.id)
    running = AgentThread(agent).start()
    try:
        with WorkloadApiClient(f"unix://{agent.socket_path}") as client:
            token = client.fetch_jwt_svid({"db"}).token
            print(f"{ROUNDS} calls each, one client, one connection (the real spiffe client, grpcio {grpc.__version__})")
            baseline = summary("1. ValidateJWTSVID (baseline: no attestation)", timed(lambda: client.validate_jwt_svid(token, "db")))
            summary("2. FetchJWTSVID (attest + ES256 sign)", timed(lambda: client.fetch_jwt_svid({"db"})), baseline)
            summary("3. FetchX509SVID one-shot (attest + cached SVID)", timed(lambda: client.fetch_x509_svid()), baseline)
        authority = server.authority
        spiffe_id = parse_id(WEB)
        summary("4a. in process: new key + X509-SVID", timed(lambda: authority.sign_x509_svid(spiffe_id, dt.timedelta(hours=1))), baseline)
        summary("4b. in process: JWT-SVID", timed(lambda: authority.sign_jwt_svid(spiffe_id, ["db"], dt.timedelta(minutes=5))), baseline)
    finally:
        running.stop()
        folder.rmdir()


if __name__ == "__main__":
    main()

"""pilot-agent's jobs live, beside a lab pod's sidecar (prefix "mlag"): ``python -m meshlab.agent`` runs
in the pod as uid 1337 (the proxy's uid, which Istio's rules let out uncaptured), with DNS capture on.
An app's query to the pod's nameserver is redirected by the kernel to the agent's 15053: a service
name is answered by the agent, another name forwarded to the upstream resolver (meshlab's, on the
pod's loopback). SDS serves the pod's SVID on the agent's socket. 15020 says ready from the proxy's admin, probes the app, merges the metrics; SIGTERM
drains the proxy through its admin and the agent exits. Until the lab's sidecar has Envoy's admin in
every pod, a stand-in HTTP server plays the proxy's 15000 and 15090 here."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

from meshlab.agent.sds import SECRET_TYPE
from meshlab.identity.authority import TrustDomainAuthority, verify_x509_svid
from meshlab.identity.spiffeid import TrustDomain, parse_id
from meshlab.lab import Lab, PodSpec
from meshlab.lab.spec import DEFAULT_CAPTURE

pytestmark = pytest.mark.live

POD_ID = "spiffe://cluster.local/ns/shop/sa/default"
NAMESERVER = "10.96.0.10"
RESOLV_CONF = f"nameserver {NAMESERVER}\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
NAME_TABLE = {"web.shop.svc.cluster.local": {"ips": ["10.96.1.10"], "shortname": "web", "namespace": "shop"}}
UPSTREAM_PORT = 5353
#: the upstream resolver: meshlab's DNS server knowing one name the mesh does not, nothing upstream of it
UPSTREAM = textwrap.dedent(f"""
    import asyncio
    from meshlab.agent.dns import DnsProxy, LookupTable, NameInfo
    async def main():
        table = LookupTable.build({{"mirror.debian.example": NameInfo(("198.51.100.9",), registry="External")}}, "", "", [])
        await DnsProxy(table, [("127.0.0.1", 9)], port={UPSTREAM_PORT}, timeout=0.2).start()
        print("ready", flush=True)
        await asyncio.Event().wait()
    asyncio.run(main())
""")
#: the proxy's admin (15000: /ready, POST /drain_listeners, which it records) and stats listener (15090)
PROXY = textwrap.dedent("""
    import http.server, sys, threading
    calls = open(sys.argv[1], "a", buffering=1)
    class Admin(http.server.BaseHTTPRequestHandler):
        def reply(self, status, body):
            self.send_response(status); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
        def do_GET(self):
            if self.path == "/ready": return self.reply(200, b"LIVE\\n")
            if self.path == "/stats/prometheus": return self.reply(200, b"envoy_server_live 1\\n")
            self.reply(404, b"")
        def do_POST(self):
            calls.write(self.path + "\\n"); self.reply(200, b"OK\\n")
        def log_message(self, *a): pass
    for address in (("127.0.0.1", 15000), ("0.0.0.0", 15090)):
        threading.Thread(target=http.server.ThreadingHTTPServer(address, Admin).serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
""")
QUERY = textwrap.dedent(f"""
    import json, sys, dns.resolver, dns.flags, dns.name
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["{NAMESERVER}"]
    resolver.search = [dns.name.from_text(d) for d in ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local")]
    resolver.ndots, resolver.lifetime = 5, 5
    answer = resolver.resolve(sys.argv[1], "A", search=True, tcp=sys.argv[2] == "tcp")
    print(json.dumps({{"addresses": [r.address for r in answer], "authoritative": bool(answer.response.flags & dns.flags.AA)}}))
""")
GET = "import sys, urllib.request, urllib.error\ntry:\n    r = urllib.request.urlopen(sys.argv[1], timeout=10); print(r.status); print(r.read().decode())\nexcept urllib.error.HTTPError as e:\n    print(e.code)\n"


@pytest.fixture(scope="module")
def pod():
    if os.geteuid() != 0:
        pytest.skip("the agent runs as uid 1337 in the pod: needs root")
    capture = replace(DEFAULT_CAPTURE, redirect_dns=True, dns_servers_v4=(NAMESERVER,))
    folder = Path(tempfile.mkdtemp(prefix="mlag-agent-"))
    folder.chmod(0o755)
    (folder / "resolv.conf").write_text(RESOLV_CONF)
    (folder / "names.json").write_text(json.dumps(NAME_TABLE))
    work = folder / "proxy"
    work.mkdir()
    os.chown(work, 1337, 1337)
    authority = TrustDomainAuthority(TrustDomain("cluster.local"))
    chain, key = authority.sign_x509_svid(parse_id(POD_ID), dt.timedelta(hours=1)).pem_files()
    certs = folder / "certs"
    certs.mkdir()
    for name, data in (("cert-chain.pem", chain), ("key.pem", key), ("root-cert.pem", b"".join(c.public_bytes(Encoding.PEM) for c in authority.x509_bundle()))):
        (certs / name).write_bytes(data)
        os.chown(certs / name, 1337, 1337)
    started: list[subprocess.Popen] = []
    with Lab("mlag").up([PodSpec("web", capture=capture, k8s_namespace="shop")]) as lab:
        def start(argv: list[str], as_proxy: bool = False, env: dict | None = None) -> subprocess.Popen:
            prefix = ["setpriv", "--reuid=1337", "--regid=1337", "--clear-groups"] if as_proxy else []
            process = subprocess.Popen(lab.pod("web").namespace.argv([*prefix, *argv]), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       env={**os.environ, **(env or {})})
            started.append(process)
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"{argv[:4]} did not start: {process.communicate(timeout=10)[1][-1500:]}")
            return process, line
        try:
            start([sys.executable, "-c", UPSTREAM])
            start([sys.executable, "-c", PROXY, str(folder / "admin-calls")])
            probers = {"/app-health/web/livez": {"httpGet": {"path": "/healthz", "port": 8080}}, "/app-health/web/readyz": {"tcpSocket": {"port": 8080}}}
            agent, ready = start([sys.executable, "-m", "meshlab.agent", "--pod", "web", "--namespace", "shop", "--ip", lab.pod("web").ip,
                                  "--workdir", str(work), "--certs", str(certs), "--name-table", str(folder / "names.json"), "--resolv-conf", str(folder / "resolv.conf"),
                                  "--dns-upstream", f"127.0.0.1:{UPSTREAM_PORT}", "--termination-drain-duration", "0.2"], as_proxy=True,
                                 env={"ISTIO_KUBE_APP_PROBERS": json.dumps(probers),
                                      "ISTIO_PROMETHEUS_ANNOTATIONS": json.dumps({"scrape": "true", "port": "9090", "path": "/metrics"})})
            yield lab, agent, json.loads(ready), folder
        finally:
            for process in started:
                if process.poll() is None:
                    process.kill()
                process.wait(timeout=10)
            subprocess.run(["rm", "-rf", str(folder)], check=False)


def query(lab, name: str, transport: str = "udp") -> dict:
    done = lab.exec("web", [sys.executable, "-c", QUERY, name, transport])
    assert done.returncode == 0, done.stderr[-1500:]
    return json.loads(done.stdout)


def test_the_agent_wrote_istios_bootstrap_for_the_pod(pod):
    lab, _, ready, _ = pod
    assert ready["ready"] and ready["node_id"] == f"sidecar~{lab.pod('web').ip}~web.shop~shop.svc.cluster.local"
    assert json.loads(Path(ready["bootstrap"]).read_text())["node"]["id"] == ready["node_id"]


def test_sds_on_the_agents_socket_serves_the_pods_svid(pod):
    _, _, ready, _ = pod
    assert ready["sds_socket"].endswith("/var/run/secrets/workload-spiffe-uds/socket")
    with grpc.insecure_channel(f"unix:{ready['sds_socket']}") as channel:
        response = sds_pb2_grpc.SecretDiscoveryServiceStub(channel).FetchSecrets(
            discovery_pb2.DiscoveryRequest(resource_names=["default", "ROOTCA"], type_url=SECRET_TYPE), timeout=10)
    secrets = {}
    for resource in response.resources:
        secret = secret_pb2.Secret()
        resource.Unpack(secret)
        secrets[secret.name] = secret
    chain = x509.load_pem_x509_certificates(secrets["default"].tls_certificate.certificate_chain.inline_bytes)
    bundle = x509.load_pem_x509_certificates(secrets["ROOTCA"].validation_context.trusted_ca.inline_bytes)
    assert str(verify_x509_svid(chain, bundle)) == POD_ID


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_service_name_is_answered_by_the_agent_through_the_dns_capture(pod, transport):
    lab, _, _, _ = pod
    assert query(lab, "web", transport) == {"addresses": ["10.96.1.10"], "authoritative": True}


def test_another_name_is_forwarded_to_the_upstream_resolver(pod):
    lab, _, _, _ = pod
    assert query(lab, "mirror.debian.example.") == {"addresses": ["198.51.100.9"], "authoritative": True}  # the upstream is authoritative for it


def test_the_status_port_says_ready_probes_the_app_and_merges_metrics(pod):
    lab, _, _, _ = pod

    def get(path: str) -> list[str]:
        done = lab.exec("web", [sys.executable, "-c", GET, f"http://127.0.0.1:15020{path}"])
        assert done.returncode == 0, done.stderr[-1500:]
        return done.stdout.splitlines()

    assert get("/healthz/ready")[0] == "200"
    assert get("/app-health/web/livez")[0] == "200"
    assert get("/app-health/web/readyz")[0] == "200"
    merged = get("/stats/prometheus")
    assert merged[0] == "200"
    names = [line.split()[0] for line in merged[1:] if line and not line.startswith("#")]
    assert names[-2:] == ["envoy_server_live", "meshlab_app_requests_total"] and names[0] == "istio_agent_scrapes_total"


def test_sigterm_drains_inbound_through_the_admin_and_the_agent_exits(pod):
    lab, agent, _, folder = pod
    agent.terminate()  # SIGTERM to the namespace wrapper, which execs: the agent itself
    out, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err[-1500:]
    report = json.loads(out.splitlines()[-1])
    assert [step[1] for step in report["drained"]] == ["POST /drain_listeners?inboundonly&graceful", "terminationDrainDuration over: proxy killed"]
    assert (folder / "admin-calls").read_text().splitlines() == ["/drain_listeners?inboundonly&graceful"]
    assert report["dns"]["answered"] >= 2 and report["dns"]["forwarded"] >= 1

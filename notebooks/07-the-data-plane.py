# %% [markdown]
# # 07 · The data plane: Envoy's model, pilot-agent's jobs, and what telemetry costs
#
# Every meshed pod carries a container named `istio-proxy`, and in it two programs. **Envoy** moves the
# bytes: listeners accept connections, filter chains decide what to do with them, HTTP filters work on
# requests, clusters and endpoints say where they go. **pilot-agent** does everything else a proxy in a
# pod needs: it writes Envoy's bootstrap and starts it, holds the workload's key and hands Envoy its
# certificate, answers the pod's DNS, takes over the kubelet's health probes, merges the metrics, and
# drains Envoy when the pod stops. This chapter reads Envoy's configuration the way `istioctl
# proxy-config` does, runs each of the agent's jobs, asks whether the agent could be folded into Envoy,
# and measures what access logs and tracing cost on the request path.
#
# There is no Envoy binary here: the data plane is meshlab's sidecar, configured with Envoy's own
# resources (the ones chapter 05's control plane sends) and read back through Envoy's admin paths.
#
# **After this chapter you can**
# - read a proxy's listeners, filter chains, HTTP filters, routes, clusters and endpoints, and say which
#   filter chain takes a given connection;
# - name each of pilot-agent's jobs, the port or socket it uses, and what would be needed to do it
#   inside Envoy instead;
# - choose an access log format and sink and a trace sampling rate knowing what each costs.

# %%
from meshlab.viz.architectures import pilot_agent_jobs

pilot_agent_jobs()

# %%
import datetime as dt
import json
import os
import tempfile
from pathlib import Path

import grpc
import ipywidgets as widgets
import matplotlib.pyplot as plt
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

from meshlab.envoy import configdump
from meshlab.envoy.listener import Connection, select_filter_chain
from meshlab.viz import new_axes, use_book_style
from meshlab.viz.text import fit
from meshlab.xds import outbound
from meshlab.xds.inbound import InboundPort, build_inbound, virtual_inbound
from meshlab.xds.resources import CLUSTER, ENDPOINT, LISTENER

use_book_style()

# %% [markdown]
# ## 1 · Envoy's model, as data
#
# Envoy is configured with a handful of resource types, each delivered by its own xDS: **listeners**
# (LDS: an address to accept on, and filter chains chosen by what a connection looks like), **routes**
# (RDS: for HTTP, which virtual host and route a request takes), **clusters** (CDS: a named group of
# upstream hosts with its load balancing, TLS and health settings) and **endpoints** (EDS: the hosts).
# A sidecar is sent two kinds of listeners: the outbound ones, one per service port it may call (what
# chapter 05's control plane sends), and one inbound listener, `virtualInbound` on 15006, with filter
# chains for each port of its own pod. Here is what meshlab's control plane sends a pod that calls the
# `echo` service and serves HTTP on 8080, dumped as Envoy's admin `/config_dump` prints it and read the
# way `istioctl proxy-config` reads it:

# %%
ECHO = outbound.ClusterIPService("echo.default.svc.cluster.local", "default", "10.96.0.10", 80, endpoints=("10.244.0.12:8080",))
PORTS = [InboundPort(8080, "HTTP", "server.default.svc.cluster.local")]
RESOURCES = {type_url: {**outbound.build(type_url, ECHO), **build_inbound(type_url, PORTS)} for type_url in (LISTENER, CLUSTER)}
RESOURCES[ENDPOINT] = outbound.build(ENDPOINT, ECHO)
DUMP = configdump.config_dump(RESOURCES, include_eds=True)
def show(table):
    """istioctl's tables are wider than this page: long rows continue, indented, on the next line."""
    for line in table.rstrip("\n").splitlines():
        print(fit(line.rstrip(), indent="        "))


print("$ istioctl proxy-config listeners --file dump.json")
show(configdump.listeners_table(DUMP))
print("$ istioctl proxy-config clusters --file dump.json")
show(configdump.clusters_table(DUMP))
print("$ istioctl proxy-config eds --file dump.json")
show(configdump.eds_table(DUMP))

# %% [markdown]
# **Stage: upstream.** The tables are meshlab's rendering; where the upstream stage built Istio's own
# `istioctl`, it reads the same dump (`--file` needs no cluster) and must print the same lines (the test
# `tests/test_upstream_proxy_config.py` compares all four tables character for character):

# %% tags=["nbval-ignore-output"]
import subprocess

from meshlab.upstream import build as upstream_build
from meshlab.upstream.versions import PROGRAMS

ISTIOCTL = upstream_build.find(PROGRAMS["istioctl"])
if ISTIOCTL:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(DUMP, file)
    real = subprocess.run([str(ISTIOCTL.path), "proxy-config", "listeners", "--file", file.name], capture_output=True, text=True, timeout=60)
    show(real.stdout)
    assert real.stdout.rstrip("\n") == configdump.listeners_table(DUMP).rstrip("\n")
    os.unlink(file.name)
else:
    print("istioctl is not built here: meshlab upstream install istioctl")
    assert os.environ.get("MESHLAB_REQUIRE_UPSTREAM") != "1", "the upstream stage is required here"

# %% [markdown]
# Which filter chain takes a connection is Envoy's FilterChainManager's decision: it narrows the chains
# by destination port, then destination IP, server name (SNI), transport protocol, application protocols
# (ALPN), and source, keeping at each step only the most specific match and never going back. The
# listener filters find out the facts first: `tls_inspector` (is it TLS? which SNI and ALPN?) and
# `http_inspector` (plaintext HTTP/1.1 or h2c?). On `virtualInbound`, in Istio's PERMISSIVE mode, try
# a connection:

# %% tags=["nbval-ignore-output"]
INBOUND = virtual_inbound(PORTS)


def which_chain(port, transport, alpn):
    protocols = tuple(p for p in alpn.split(",") if p)
    chosen = select_filter_chain(INBOUND, Connection("10.244.0.10", port, transport_protocol=transport, application_protocols=protocols,
                                                     source_ip="10.244.0.11"))
    if chosen is None:
        print("no chain matches and there is no default: Envoy closes the connection")
        return
    print(f"chain {chosen.name!r}{' (the default chain)' if chosen.default else ''}")
    print(fit("network filters: " + " -> ".join(chosen.network_filters)))
    if chosen.http_filters:
        print(fit("HTTP filters: " + " -> ".join(chosen.http_filters)))
        print("route config:", chosen.route_config)


widgets.interact(which_chain, port=widgets.Dropdown(options=[8080, 9090], value=8080),
                 transport=widgets.Dropdown(options=["raw_buffer", "tls"], value="raw_buffer"),
                 alpn=widgets.Dropdown(options=["http/1.1", "", "istio-http/1.1", "istio", "h2"], value="http/1.1"));
assert select_filter_chain(INBOUND, Connection("10.244.0.10", 8080, application_protocols=("http/1.1",))).route_config == "inbound|8080||"

# %% [markdown]
# Plaintext HTTP to 8080 gets the HTTP connection manager with Istio's HTTP filters; mutual TLS from
# another sidecar carries ALPN `istio-http/1.1` (HTTP) or `istio` (TCP); a port the pod declares nothing
# about takes the passthrough chains to `InboundPassthroughCluster`.
#
# ## 2 · pilot-agent's jobs
#
# Each job below is meshlab's agent doing what Istio 1.30's pilot-agent does (the sources are in each
# module's docstring), first on the model stage, then live beside a lab pod's sidecar.
#
# **The bootstrap.** Envoy starts knowing nothing but its bootstrap: who it is (the node id istiod parses:
# `sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`, and metadata from the `ISTIO_META_*` environment),
# where its admin listens, and two static clusters that reach the agent over Unix sockets: `xds-grpc`
# (the agent proxies xDS to istiod) and `sds-grpc` (certificates). The upstream test runs the real
# pilot-agent to write its bootstrap and compares it with meshlab's, field by field.

# %%
from meshlab.agent.bootstrap import ProxyNode, bootstrap_json

NODE = ProxyNode("server", "default", "10.244.0.10")
BOOTSTRAP = json.loads(bootstrap_json(NODE))
print("node id:", BOOTSTRAP["node"]["id"])
print("admin:", BOOTSTRAP["admin"]["address"]["socket_address"])
for cluster in BOOTSTRAP["static_resources"]["clusters"]:
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    print(f"static cluster {cluster['name']:<16} {address.get('pipe', address.get('socket_address'))}")

# %% [markdown]
# **SDS.** The workload's private key never leaves the agent's process boundary for the network: the agent
# (with a CSR to istiod's CA, or, as here, from files mounted into the pod) serves Envoy its certificate as
# a `default` secret and the roots as `ROOTCA`, over SDS on a Unix socket. What the two secrets hold, as
# Envoy's Secret resources (section 4 asks a live agent for them with a real gRPC client):

# %%
from meshlab.agent.sds import WorkloadSecrets, envoy_secret
from meshlab.identity.authority import TrustDomainAuthority
from meshlab.identity.spiffeid import SpiffeId, TrustDomain

AUTHORITY = TrustDomainAuthority(TrustDomain("cluster.local"))
SVID = AUTHORITY.sign_x509_svid(SpiffeId(TrustDomain("cluster.local"), "/ns/default/sa/server"), dt.timedelta(hours=1))
SECRETS = WorkloadSecrets.from_svid(SVID, AUTHORITY.x509_bundle())
for name in ("default", "ROOTCA"):
    secret = envoy_secret(name, SECRETS)
    held = ("tls_certificate: certificate_chain, private_key" if secret.HasField("tls_certificate")
            else "validation_context: trusted_ca")
    print(f"secret {secret.name!r}: {held}")


# %% [markdown]
# **DNS.** With DNS capture on (`ISTIO_META_DNS_CAPTURE`), Istio's rules send the pod's port-53 traffic to
# the agent on 15053 (chapter 02's rules); the agent answers the mesh's service names itself, expanding the
# pod's search domains as Kubernetes would (`echo`, `echo.default`, `echo.default.svc`, ...), and forwards
# the rest to the pod's real resolvers. Names it knows, from the pod in `default`:

# %%
from meshlab.agent.dns import LookupTable, NameInfo

TABLE = LookupTable.build({"echo.default.svc.cluster.local": NameInfo(("10.96.0.10",), shortname="echo", namespace="default"),
                           "reviews.shop.svc.cluster.local": NameInfo(("10.96.0.11",), shortname="reviews", namespace="shop")},
                          "default", "default.svc.cluster.local", ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"])
for name in ("echo.default.svc.cluster.local.", "echo.default.svc.cluster.local.default.svc.cluster.local.", "reviews.shop.svc.cluster.local.",
             "reviews.default.svc.cluster.local.", "example.org."):
    records, found = TABLE.lookup(1, name)
    print(name)
    print("    " + ("answered: " + ", ".join(str(r) for r in records) if found else "forwarded upstream"))

# %% [markdown]
# **Probes.** With mutual TLS STRICT, the kubelet's plaintext probe to the app's port would be refused by
# the sidecar. So the injector rewrites each httpGet or tcpSocket probe into an httpGet to the agent on
# 15020 (`/app-health/<container>/livez|readyz|startupz`) and passes the original in
# `ISTIO_KUBE_APP_PROBERS`; the agent runs it against the app from inside the pod.

# %%
from meshlab.agent.probes import rewrite_probes
from meshlab.lab.agent import pod_manifest
from meshlab.lab.spec import PodSpec

MANIFEST = pod_manifest(PodSpec("server"))
REWRITTEN, PROBERS = rewrite_probes(MANIFEST)
container = REWRITTEN["spec"]["containers"][0]
print("livenessProbe now: ", container["livenessProbe"])
print("readinessProbe now:", container["readinessProbe"])
print("ISTIO_KUBE_APP_PROBERS:")
for path, prober in json.loads(PROBERS).items():
    print(f"    {path}: {json.dumps(prober)}")

# %% [markdown]
# **Merged metrics and drain.** The agent serves one Prometheus endpoint on 15020 that merges its own
# metrics, Envoy's (from 15090) and the app's (the pod's `prometheus.io` annotations, which the injector
# moves into `ISTIO_PROMETHEUS_ANNOTATIONS`), so one scrape annotation covers the pod. On SIGTERM it
# asks Envoy to drain its inbound listeners gracefully and waits; by default it waits
# `terminationDrainDuration` (5 s), or with `EXIT_ON_ZERO_ACTIVE_CONNECTIONS` until the last connection
# closed (checked every second after `MINIMUM_DRAIN_DURATION`), then ends Envoy:

# %%
from meshlab.agent.drain import DrainSettings, drain_timeline

for settings, connections in ((DrainSettings(), lambda t: 3), (DrainSettings(exit_on_zero_active_connections=True), lambda t: 3 if t < 8 else 0)):
    label = "EXIT_ON_ZERO_ACTIVE_CONNECTIONS" if settings.exit_on_zero_active_connections else "default"
    print(label)
    for t, step in drain_timeline(settings, connections):
        print(f"  {t:5.1f} s  {step}")

# %% [markdown]
# ## 3 · Could pilot-agent be merged into Envoy?
#
# The question the article asks. Job by job, what it needs, what Envoy's own API already has, and what
# is missing (Envoy's API from go-control-plane v1.38.0; Istio 1.30's agent):

# %%
from meshlab.agent.jobs import table_text

print(table_text())

# %% [markdown]
# Parts could move (Envoy has a DNS filter, a health-check filter, gRPC credentials, remote Wasm code with
# a sha256), but not the jobs that come before Envoy exists (its bootstrap), after it must stop (draining
# and ending it), or that keep a secret out of Envoy's reach. Istio's ambient mode answers the same
# question differently: ztunnel is one Rust program that does the agent's and the proxy's jobs together.
#
# ## 4 · Live: the sidecar's HTTP side and its agent
#
# **Stage: live.** A lab with a `server` pod whose sidecar has its HTTP side (Envoy's inbound listener and
# admin ports) and a pilot-agent beside it, a meshed `client`, and a collector pod for access logs and
# spans. Each of the agent's jobs, on the running pod:

# %% tags=["nbval-ignore-output"]
from meshlab.lab import Lab
from meshlab.lab.client import local_http

LAB = Lab("ml07").up([PodSpec("server", dataplane=True), PodSpec("client")], collector=True, down_at_exit=True)
SERVER = LAB.pod("server").ip
LAB.add_service("echo", 80, ["server"])
reply = LAB.request("client", SERVER, 8080, "/hello")
print("through the HTTP side:", reply.status, "x-envoy-upstream-service-time:", reply.headers.get("x-envoy-upstream-service-time"))
status, dump = LAB.admin("server", "/config_dump")
show(configdump.listeners_table(json.loads(dump)))
assert reply.status == 200 and "x-envoy-upstream-service-time" in reply.headers

# %% tags=["nbval-ignore-output"]
AGENT = LAB.state_dir / "server-agent"
print("bootstrap written:", (AGENT / "etc/istio/proxy/envoy-rev.json").exists())
ready = json.loads(LAB.logs("server", "agent").splitlines()[0])
print("agent ready, node", ready["node_id"], "SDS at", Path(ready["sds_socket"]).name)
print("probe through the agent:", LAB.in_pod("server", local_http, 15020, "/app-health/app/livez"))
print("readiness (15021 -> the proxy's /ready):", LAB.in_pod("server", local_http, 15021, "/healthz/ready"))
status, merged = LAB.in_pod("server", local_http, 15020, "/stats/prometheus")
sources = {"agent": "istio_agent_", "proxy": "envoy_", "app": "meshlab_app_"}
print("merged metrics:", {who: sum(line.startswith(prefix) for line in merged.splitlines()) for who, prefix in sources.items()}, "lines")
assert all(any(line.startswith(prefix) for line in merged.splitlines()) for prefix in sources.values())

# %% [markdown]
# The agent's SDS socket, asked for both secrets by gRPC's own client, as Envoy's `sds-grpc` cluster asks:

# %% tags=["nbval-ignore-output"]
from cryptography import x509

SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
with grpc.insecure_channel(f"unix:{ready['sds_socket']}") as channel:
    answer = sds_pb2_grpc.SecretDiscoveryServiceStub(channel).FetchSecrets(
        discovery_pb2.DiscoveryRequest(resource_names=["default", "ROOTCA"], type_url=SECRET_TYPE), timeout=10)
for resource in answer.resources:
    secret = secret_pb2.Secret()
    resource.Unpack(secret)
    if secret.HasField("tls_certificate"):
        leaf = x509.load_pem_x509_certificate(secret.tls_certificate.certificate_chain.inline_bytes)
        uris = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)
        print(f"secret 'default': the pod's SVID, {uris[0]}")
    else:
        print("secret 'ROOTCA': the trust bundle")
assert {r.type_url for r in answer.resources} == {SECRET_TYPE} and len(answer.resources) == 2

# %% [markdown]
# DNS from the app's side of the pod: its resolver is the cluster DNS address (the lab's is 10.96.0.254),
# and the pod's rules send the query to the agent instead, which answers the lab's `echo` service itself:

# %% tags=["nbval-ignore-output"]
import time

import dns.message
import dns.query

from meshlab.lab.agent import CLUSTER_DNS


def ask(name):
    query = dns.message.make_query(name, "A")
    return dns.query.udp(query, CLUSTER_DNS, timeout=5)


time.sleep(1)  # istiod pushes a new name table to the agents (NDS) when services change; the lab's agent rereads its file
answer = LAB.in_pod("server", ask, "echo.default.svc.cluster.local")
print(answer.answer[0].to_text() if answer.answer else answer)
assert answer.answer and "10.96.0." in answer.answer[0].to_text()

# %% [markdown]
# ## 5 · What telemetry costs
#
# Access logs and traces are written after the response has left, but their work is still done by the
# proxy's worker on every request. Each setting below is applied to the server's sidecar in turn (as
# Istio's Telemetry API would: a file access log in Istio's TEXT or JSON format, Envoy's ALS streaming
# the same records to a collector over gRPC, or tracing with a random sampling percentage, spans sent
# over OTLP), and keep-alive requests go through it; each p50 is a ratio to the untuned path measured in
# the same run. The figures vary from machine to machine; `benchmarks/bench_dataplane.py` prints them.

# %% tags=["nbval-ignore-output"]
from meshlab.lab.tuning import measure

ROWS = measure(LAB, "client", "server", count=900)
for row in ROWS:
    print(f"{row.label:<30} p50 {row.p50_us:7.0f} us   p90 {row.p90_us:7.0f} us   {row.ratio:5.2f}x")
fig, ax = plt.subplots(figsize=(7.5, 3.0))
new_axes("p50 through the sidecar, relative to no logs and no tracing", "ratio to the untuned p50", "", ax)
ax.barh([row.label for row in ROWS][::-1], [row.ratio for row in ROWS][::-1], color="#3b6ea5")
ax.axvline(1.0, color="#7a7a7a", linestyle=":")
plt.show()
sampling = [(float(row.label.split()[1].rstrip("%")), row.ratio) for row in ROWS if row.label.startswith("tracing")]
fig, ax = plt.subplots(figsize=(6.5, 2.6))
new_axes("Cost against trace sampling rate", "sampling percentage", "ratio to the untuned p50", ax)
ax.plot([s for s, _ in sampling], [r for _, r in sampling], marker="o", color="#3b6ea5")
ax.axhline(1.0, color="#7a7a7a", linestyle=":")
ax.set_ylim(0.8, max(1.5, max(r for _, r in sampling) + 0.1))
plt.show()
spans = [record for record in LAB.collected() if record["event"] == "span"]
print(len(spans), "spans reached the collector")
assert all(row.p50_us > 0 for row in ROWS) and spans

# %% [markdown]
# Sampling decides how many spans are built and sent, and the decision is made once per request from its
# `x-request-id` (so every proxy on the path keeps or drops the same trace); a file log's cost is
# formatting and writing a line; ALS adds batching and a gRPC stream, off the request's path. Istio's
# default sampling is 1% (`PILOT_TRACE_SAMPLING`); at 100% every request pays for a span.

# %%
LAB.down()

# %% [markdown]
# ## Stage of this chapter
#
# Sections 1 to 3 run on the **model** stage: Envoy's resources from `meshlab.xds` (outbound and inbound),
# Envoy's filter chain selection (`meshlab.envoy.listener`), config dumps and istioctl's tables
# (`meshlab.envoy.configdump`), and the agent's jobs (`meshlab.agent`); the **upstream** stage runs the
# real `istioctl proxy-config` on the same dump, and the tests run the real pilot-agent to compare its
# bootstrap. Sections 4 and 5 run **live**: the sidecar's HTTP side, its agent as a process beside it
# (uid 1337), a collector pod, requests between pods.
#
# ## What to remember
#
# - Envoy's configuration is listeners (with filter chains chosen by port, address, SNI, transport and
#   ALPN), routes, clusters and endpoints; `istioctl proxy-config` reads them from the admin's config dump.
# - A sidecar's inbound side is one listener, virtualInbound on 15006, with chains per port and per way a
#   peer may speak (mutual TLS or plaintext, HTTP or TCP).
# - pilot-agent writes the bootstrap, serves certificates over SDS, answers DNS on 15053, runs the rewritten
#   probes and merges the metrics on 15020, and drains and ends Envoy; the jobs before Envoy starts, after
#   it stops, and the private key, are why it is a separate process.
# - Logs and traces cost per request even though they are written after the response: pick the sampling
#   rate and the log format with their cost in view, and send them off the request path (ALS, OTLP).
#
# ## Check yourself
#
# 1. A plaintext connection arrives at 15006 for port 8080, and the pod's listener has, for 8080, only
#    chains that require TLS. Which chain takes it?
#
#    <details><summary>Answer</summary>
#
#    None of 8080's: Envoy narrows by destination port first, then by transport protocol, and never goes
#    back to the chains for "any port". With no chain left, the listener's default chain takes it, if it has
#    one; otherwise Envoy closes the connection.
#
#    </details>
#
# 2. Why does the kubelet's liveness probe go to 15020 rather than to the app's port once Istio injected
#    the pod?
#
#    <details><summary>Answer</summary>
#
#    With STRICT mutual TLS the sidecar refuses the kubelet's plaintext request. The injector rewrites the
#    probe to the agent's /app-health path on 15020 (excluded from capture), and the agent probes the app
#    from inside the pod.
#
#    </details>
#
# 3. Tracing at 100% doubles a proxy's per-request cost in your measurements. Where does that cost go, and
#    what does Istio's default of 1% keep?
#
#    <details><summary>Answer</summary>
#
#    Into building and exporting one span per request (attributes, serialization, the OTLP stream). At 1%
#    the decision is still made for every request (from its x-request-id, so the whole trace is kept or
#    dropped together), but only one request in a hundred pays for a span.
#
#    </details>

# %% [markdown]
# # 13 · Zero trust: identity before network
#
# A mesh that authorises by IP address trusts the network: whoever holds an address is whoever that
# address belonged to. Zero trust turns this round. Every workload carries a cryptographic identity,
# proves it on every connection, and policy speaks of identities, never of addresses. SPIFFE says what
# such an identity looks like and how a workload obtains it; SPIRE is its reference implementation;
# Istio mints the same kind of identity for every sidecar. This chapter builds each piece in
# `meshlab.identity` and then runs it: an agent serving the SPIFFE Workload API to the real `spiffe`
# client from PyPI, and pods of the live lab talking mutual TLS, authorised by SPIFFE ID.
#
# **After this chapter you can**
# - read and validate a SPIFFE ID, and say which strings go-spiffe refuses and why;
# - list what an X509-SVID and a JWT-SVID must contain, and verify one;
# - explain SPIRE's server/agent split, node attestation, and workload attestation step by step;
# - write registration entries whose selectors give an identity to exactly the intended workloads;
# - say how Istio gets its certificates (istiod's CA over SDS) and how SPIRE plugs into the same socket;
# - show, live, that an unregistered process, the right uid in the wrong pod, another identity and an
#   expired SVID are all refused.

# %%
from meshlab.viz.architectures import spire_and_sds

spire_and_sds()

# %%
import datetime as dt
import json
import os
import shutil
import tempfile
from collections import namedtuple
from pathlib import Path

import ipywidgets as widgets
import jwt
import matplotlib.pyplot as plt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from meshlab import doctor
from meshlab.identity.authority import TrustDomainAuthority, new_key, verify_x509_svid
from meshlab.identity.entries import load_entries, parse_selector
from meshlab.identity.server import KubernetesCluster, NodeAttestationError, SpireServer
from meshlab.identity.spiffeid import SpiffeIdError, TrustDomain, parse_id
from meshlab.viz import draw_request_path, use_book_style
from meshlab.viz.text import fit, say

use_book_style()
TD = TrustDomain("meshlab.test")

# %% [markdown]
# ## 1 · Model: the SPIFFE ID
#
# `spiffe://<trust domain>/<path>`. The trust domain is the root of trust (one CA, one bundle); the path
# names the workload, by whatever scheme the operator picks. Istio's is `/ns/<namespace>/sa/<service
# account>`. meshlab validates as go-spiffe does, the strictest common implementation, with its error
# texts: lower-case trust domain, no port, no user info, no percent-encoding, no empty or dot segments,
# no trailing slash.

# %%
for text in ["spiffe://meshlab.test/ns/default/sa/web", "spiffe://meshlab.test", "spiffe://Meshlab.test/web",
             "spiffe://meshlab.test:443/web", "spiffe://meshlab.test/ns//sa/web", "spiffe://meshlab.test/ns/../sa/web",
             "spiffe://meshlab.test/web/", "https://meshlab.test/web"]:
    try:
        parsed = parse_id(text)
        print(fit(f"{text:<42} ok: trust domain {parsed.trust_domain}, path {parsed.path or '(none: the trust domain ID)'}", indent=" " * 43))
    except SpiffeIdError as error:
        print(fit(f"{text:<42} refused: {error}", indent=" " * 43))

# %% [markdown]
# Type an ID and see go-spiffe's verdict (the same function `meshlab spiffe parse` runs).

# %%
def verdict(spiffe_id):
    try:
        parsed = parse_id(spiffe_id)
        print(f"valid: trust domain {parsed.trust_domain!s}, path {parsed.path or '(none)'}")
    except SpiffeIdError as error:
        print(f"invalid: {error}")


# %% tags=["nbval-ignore-output"]
widgets.interact(verdict, spiffe_id=widgets.Text(value="spiffe://meshlab.test/ns/shop/sa/checkout", description="SPIFFE ID",
                                                   layout=widgets.Layout(width="520px")));
assert parse_id("spiffe://meshlab.test/ns/shop/sa/checkout").path == "/ns/shop/sa/checkout"

# %% [markdown]
# ## 2 · Model: SVIDs, the documents that carry an ID
#
# An **X509-SVID** is a certificate whose only URI SAN is the SPIFFE ID; it is not a CA, its key usage is
# digital signature, and (meshlab sets it) its extended key usage allows both TLS server and client, so one
# SVID serves both ends of mutual TLS. The trust domain's **bundle** is its CA certificates. A **JWT-SVID**
# is a signed token (`sub` = the ID, `aud`, `exp`), for when TLS does not reach end to end. The JWT-SVID
# specification (spiffe/spiffe, standards/JWT-SVID.md) makes the token's `kid` header optional (meshlab
# sets it, as SPIRE does, so a validator finds the key at once) and `typ`, if set, `JWT` or `JOSE`; `alg`
# must be an RS, ES or PS algorithm. Every key in the trust domain's **JWT bundle** (a JWKS) must have a
# `kid` and `use: "jwt-svid"`.

# %%
authority = TrustDomainAuthority(TD)
USAGES = {ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth", ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}
svid = authority.sign_x509_svid(parse_id("spiffe://meshlab.test/ns/shop/sa/checkout"), dt.timedelta(hours=1))
for extension in svid.leaf.extensions:
    value = extension.value
    if isinstance(value, x509.SubjectAlternativeName):
        shown = value.get_values_for_type(x509.UniformResourceIdentifier)
    elif isinstance(value, x509.BasicConstraints):
        shown = f"CA={value.ca}"
    elif isinstance(value, x509.KeyUsage):
        shown = [name for name in ("digital_signature", "key_cert_sign", "crl_sign") if getattr(value, name)]
    elif isinstance(value, x509.ExtendedKeyUsage):
        shown = [USAGES.get(usage, usage.dotted_string) for usage in value]
    else:
        continue
    print(f"{type(value).__name__:<24} critical={extension.critical!s:<5} {shown}")
print("verified against the bundle by cryptography's X.509 verifier:")
print("   ", verify_x509_svid(list(svid.chain), authority.x509_bundle()))
token = authority.sign_jwt_svid(svid.spiffe_id, ["payments"], dt.timedelta(minutes=5))
header = jwt.get_unverified_header(token)
claims = jwt.decode(token, options={"verify_signature": False})
print("JWT-SVID header:", {k: ("<key id>" if k == "kid" else v) for k, v in header.items()})
print("JWT-SVID claims:", sorted(claims))

# %% [markdown]
# ## 3 · SPIRE's split: the server signs, agents attest
#
# SPIRE's **server** holds the trust domain's keys and the **registration entries** (which workload gets
# which ID). It never talks to workloads. On every node an **agent** first proves *the node* (node
# attestation); only then does the server sign for it, and only the entries *parented to that agent*. A
# stolen node therefore yields the identities registered for that node, not the trust domain's.
#
# Two node attestors: a one-time **join token** the operator hands over, and **k8s_psat**, where the agent
# presents its projected service account token and the server checks it with the cluster (TokenReview:
# signed, for the audience `spire-server`, not expired), checks the service account is allowed, and that
# the pod really runs on the node it claims. Run both:

# %%
server = SpireServer(TD)
token = server.create_join_token()
agent_cert = server.attest_join_token(token, new_key().public_key())  # the agent keeps the private half
print("join token accepted; the agent is", verify_x509_svid([agent_cert], server.authority.x509_bundle()).path.rsplit("/", 1)[0] + "/<token>")
try:
    server.attest_join_token(token, new_key().public_key())
except NodeAttestationError as error:
    print("the same token again:", error)
cluster = KubernetesCluster("kind", {("spire", "spire-agent-x7"): {"node": "worker", "service_account": "spire-agent"},
                                     ("default", "web-1"): {"node": "worker", "service_account": "default"}})
allowed = {"spire:spire-agent"}
for namespace, pod, audience in (("spire", "spire-agent-x7", "spire-server"), ("default", "web-1", "spire-server"), ("spire", "spire-agent-x7", "vault")):
    try:
        server.attest_psat(cluster.projected_token(namespace, pod, audience), cluster, allowed, new_key().public_key())
        print(f"PSAT of {namespace}/{pod} for {audience}: node attested")
    except NodeAttestationError as error:
        print(fit(f"PSAT of {namespace}/{pod} for {audience}: refused: {error}"))

# %% [markdown]
# ## 4 · Workload attestation, step by step
#
# A workload asks the agent's **Workload API** (gRPC on a Unix socket every local user may open) for its
# SVID. It does not say who it is: the agent finds out.

# %%
Step = namedtuple("Step", "name kind where")
steps = [Step("workload connects", "app", "Unix socket"), Step("kernel: SO_PEERCRED", "netfilter", "pid, uid, gid"),
         Step("PID still the same?", "netfilter", "start time"), Step("agent reads /proc", "control-plane", "exe, sha256, groups"),
         Step("pod of the netns", "control-plane", "ns, sa, labels"), Step("entries ⊆ selectors", "control-plane", "SPIRE's rule"),
         Step("SVID pushed", "proxy", "renewed at half life")]
draw_request_path(steps, title="Workload attestation: the kernel names the caller, the entries decide")
plt.show()

# %% [markdown]
# 1. The kernel records the connecting process's PID, uid and gid (SO_PEERCRED).
# 2. PIDs are reused: the agent notes the process's start time at connect and refuses if the PID later
#    names another process (a caller could hand its connection over and exit).
# 3. The **unix** attestor reads uid, user, gid, group, supplementary groups, the executable's path and its
#    SHA-256; the **k8s** attestor finds the pod (SPIRE via the cgroup and the kubelet; meshlab via the
#    process's network namespace and the lab's pod table): namespace, service account, pod name and UID,
#    labels, container name and image.
# 4. An entry applies when **all its selectors** are among the workload's. More selectors, fewer matches.
#
# Pick a workload's selectors and see which entries would match:

# %%
ENTRIES = load_entries([
    {"spiffe_id": "spiffe://meshlab.test/ns/shop/sa/checkout", "selectors": ["k8s:ns:shop", "k8s:sa:checkout"]},
    {"spiffe_id": "spiffe://meshlab.test/ns/shop/sa/checkout-strict", "selectors": ["k8s:ns:shop", "k8s:sa:checkout", "k8s:container-name:app"]},
    {"spiffe_id": "spiffe://meshlab.test/root-anything", "selectors": ["unix:uid:0"]},
], parse_id("spiffe://meshlab.test/spire/agent/join_token/demo"))
CANDIDATES = ["unix:uid:0", "unix:uid:1000", "k8s:ns:shop", "k8s:sa:checkout", "k8s:container-name:app", "k8s:container-name:istio-proxy"]


def matching(**chosen):
    workload = {parse_selector(name) for name, on in zip(CANDIDATES, chosen.values()) if on}
    granted = [str(entry.spiffe_id) for entry in ENTRIES if entry.matches(workload)]
    for spiffe_id in granted:
        print("  gets", spiffe_id)
    if not granted:
        print("  gets no identity: PERMISSION_DENIED")


for example in (["unix:uid:0", "k8s:ns:shop", "k8s:sa:checkout", "k8s:container-name:app"], ["k8s:ns:shop", "k8s:sa:checkout", "k8s:container-name:istio-proxy"], ["unix:uid:1000"]):
    print("workload:", ", ".join(example))
    matching(**{f"s{i}": name in example for i, name in enumerate(CANDIDATES)})

# %% tags=["nbval-ignore-output"]
widgets.interact(matching, **{f"s{i}": widgets.Checkbox(value=i in (0, 2, 3, 4), description=name) for i, name in enumerate(CANDIDATES)});
assert not [entry for entry in ENTRIES if entry.matches({parse_selector("unix:uid:1000")})], "uid 1000 alone gets no identity"

# %% [markdown]
# ## 5 · How Istio does it, and where SPIRE plugs in
#
# In Istio, istiod is the CA. Each sidecar's pilot-agent generates a key, sends a CSR to istiod
# authenticated with the pod's Kubernetes service account token, and serves the signed certificate to
# Envoy over **SDS** on a Unix socket; the ID is `spiffe://<trust domain>/ns/<namespace>/sa/<service
# account>`. Istio's attestation is therefore exactly namespace + service account, proven by the token.
# SPIRE can replace istiod as the source: when a socket implementing Envoy's SDS API exists at
# `/run/secrets/workload-spiffe-uds/socket` (SPIRE's agent, mounted by the SPIFFE CSI driver), Envoy
# fetches its identities there, and SPIRE's richer node and workload attestation applies
# ([istio.io: SPIRE integration](https://istio.io/latest/docs/ops/integrations/spire/)). Istio's own
# sidecars and gateways then need registration entries too, or they never become ready.
#
# ## 6 · Live, on loopback: the Workload API and the real client
#
# **Stage: live, on a Unix socket** (any Linux; no root). One process runs meshlab's SPIRE-style server
# and agent; the agent attests with a join token, then serves the Workload API. The client is the `spiffe`
# package from PyPI, as any Python workload would use it. The entry selects this notebook's own process by
# its uid.

# %% tags=["nbval-ignore-output"]
from spiffe import JwtSvid, WorkloadApiClient, X509Source
from spiffe.svid.errors import InvalidTokenError
from spiffe import TrustDomain as ClientTrustDomain

from meshlab.identity.agent import Agent, AgentThread

folder = Path(tempfile.mkdtemp(prefix="meshlab-spire-"))
spire = SpireServer(TD)
agent = Agent(spire, folder / "agent.sock")
agent.attest(spire.create_join_token())
ME = "spiffe://meshlab.test/ns/book/sa/reader"
spire.entries = load_entries([{"spiffe_id": ME, "selectors": [f"unix:uid:{os.getuid()}"], "ttl": 2}], agent.id)
running = AgentThread(agent).start()
with WorkloadApiClient(f"unix://{agent.socket_path}") as client:
    fetched = client.fetch_x509_svid()
    bundle = client.fetch_x509_bundles().get_bundle_for_trust_domain(ClientTrustDomain("meshlab.test"))
    jwt_svid = client.fetch_jwt_svid({"payments"})
    jwt_bundle = client.fetch_jwt_bundles().get_bundle_for_trust_domain(ClientTrustDomain("meshlab.test"))
print("X509-SVID:", fetched.spiffe_id, "expires", fetched.leaf.not_valid_after_utc.isoformat(timespec="seconds"))
print("chain verifies against the fetched bundle ->", verify_x509_svid(list(fetched.cert_chain), list(bundle.x509_authorities)))
print("JWT-SVID validates (py-spiffe, signature checked) ->", JwtSvid.parse_and_validate(jwt_svid.token, jwt_bundle, {"payments"}).spiffe_id)
try:
    JwtSvid.parse_and_validate(jwt_svid.token, jwt_bundle, {"ledger"})
    raise AssertionError("a JWT-SVID for 'payments' was accepted for audience 'ledger'")
except InvalidTokenError as error:  # py-spiffe: "Audience doesn't match"
    print("the same token for audience 'ledger':", type(error).__name__, error)
decision = running.decisions()[0]
print(f"the agent's decision: pid {decision.pid} -> {', '.join(decision.granted)}")
say("  from the selectors", [s for s in decision.selectors if not s.startswith("unix:sha256")])
assert str(fetched.spiffe_id) == ME and decision.granted == (ME,)

# %% [markdown]
# The entry's TTL is 2 s: the agent renews at half life and pushes the new SVID on the open stream, which
# `X509Source` (the client's long-lived watcher) picks up without asking.

# %% tags=["nbval-ignore-output"]
import time

with WorkloadApiClient(f"unix://{agent.socket_path}") as client, X509Source(workload_api_client=client) as source:
    serials = [source.get_x509_context().default_svid.leaf.serial_number]
    deadline = time.monotonic() + 6
    while len(set(serials)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        serials.append(source.get_x509_context().default_svid.leaf.serial_number)
print(f"distinct SVIDs seen on one stream in {6 - max(deadline - time.monotonic(), 0):.1f} s: {len(set(serials))}")
assert len(set(serials)) >= 2, "rotations reach the open stream"

# %% [markdown]
# The PID-reuse guard, attacked. A child process connects to the agent (the kernel records *its* PID), hands
# the connected socket to this notebook's process and exits; the notebook then asks over the child's
# connection. Had the agent looked up the PID only now, the kernel could have given it to another process
# meanwhile. It noted the start time at connect instead, and refuses:

# %% tags=["nbval-ignore-output"]
from spiffe.workloadapi.errors import FetchX509SvidError

from meshlab.identity.attacks import hand_over_connection

child = hand_over_connection(agent.socket_path, folder / "relay.sock")
try:
    with WorkloadApiClient(f"unix://{folder / 'relay.sock'}") as client:
        client.fetch_x509_svid()
except FetchX509SvidError as error:
    say("over the handed-over connection", str(error).split(": ", 2)[-1])
refused = running.decisions()[-1]
say(f"the agent's decision for pid {refused.pid} (the child, pid {child})", refused.refused)
assert refused.pid == child and "has exited" in refused.refused

# %% [markdown]
# An SVID taken from a workload stops working when it expires. Here one that expired a minute ago meets a
# server holding a valid SVID, over mutual TLS on loopback:

# %% tags=["nbval-ignore-output"]
from meshlab.identity.mtls import LoopbackServer, call, context

pem = serialization.Encoding.PEM
roots = spire.authority.ca_certificate.public_bytes(pem)
server_svid = spire.authority.sign_x509_svid(parse_id("spiffe://meshlab.test/ns/shop/sa/server"), dt.timedelta(hours=1))
expired = spire.authority.sign_x509_svid(parse_id(ME), dt.timedelta(minutes=1), now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2))
listener = LoopbackServer(lambda peer: peer == ME, 1, context(*server_svid.pem_files(), roots, server_side=True), str(server_svid.spiffe_id))
say("client", call("127.0.0.1", listener.port, str(server_svid.spiffe_id), context(*expired.pem_files(), roots, server_side=False), ME))
records = listener.join()
print("server:", records[0]["refused"])
assert records[0]["refused"].endswith("certificate has expired")
running.stop()
shutil.rmtree(folder)  # the agent's socket and the relay's

# %% [markdown]
# ## 7 · Live lab: pods with identities, talking mutual TLS
#
# **Stage: live lab** (Linux; root, or unprivileged user namespaces). Three pods: `server` and `client` in
# namespace `shop` with their own service accounts, and `intruder` in `default`, running the same code as
# the same uid. The agent's socket is in the lab's state folder, reachable from every pod by path; each
# workload is `python -m meshlab.identity.mtls` in its pod, fetching its SVID with the real client. The
# k8s selectors come from the process's network namespace. The server allows only the client's ID.

# %% tags=["nbval-ignore-output"]
LIVE = doctor.check_live()
print("live stage:", "available" if LIVE.available else f"NOT available: {LIVE.reason} (fix: {LIVE.fix})")
assert LIVE.available or os.environ.get("MESHLAB_REQUIRE_LIVE") != "1", LIVE.reason
if LIVE.available:
    from meshlab.lab.identity import IdentityLab
    from meshlab.lab import PodSpec

    SERVER, CLIENT = "spiffe://meshlab.test/ns/shop/sa/server", "spiffe://meshlab.test/ns/shop/sa/client"
    UID = f"unix:uid:{os.getuid()}"
    NARROW = [{"spiffe_id": SERVER, "selectors": [UID, "k8s:ns:shop", "k8s:sa:server", "k8s:pod-label:app:server"]},
              {"spiffe_id": CLIENT, "selectors": [UID, "k8s:ns:shop", "k8s:sa:client"]}]
    pods = [PodSpec("server", k8s_namespace="shop", service_account="server", labels={"app": "server"}),
            PodSpec("client", k8s_namespace="shop", service_account="client"), PodSpec("intruder")]
    zero_trust = IdentityLab("ml13", pods, NARROW).start(down_at_exit=True)
    server_process = zero_trust.serve("server", allow=[CLIENT], connections=1)  # only the client will get that far
    ok = zero_trust.call("client", "server", expect=SERVER)
    say("client -> server", {k: ok[k] for k in ("me", "peer", "allowed")})
    stranger = zero_trust.call("intruder", "server", expect=SERVER)
    say("intruder -> server", stranger["refused"])
    assert ok["allowed"] and ok["peer"] == SERVER and stranger["me"] is None

# %% [markdown]
# The intruder got nothing: no entry's selectors are a subset of its own. Now the mistake the lab's
# exercise is about: an entry that selects the server by uid alone. The intruder runs as the same uid, in
# another pod, and is handed the server's identity; a peer that trusts the server's ID accepts it.

# %% tags=["nbval-ignore-output"]
if LIVE.available:
    peer = zero_trust.serve("client", allow=[SERVER], connections=1, port=9443)  # the client, holding its own SVID, trusts the server's ID
    zero_trust.set_entries([{"spiffe_id": SERVER, "selectors": [UID]}, NARROW[1]])
    stolen = zero_trust.call("intruder", "client", expect=CLIENT, port=9443)
    print("with the uid-only entry the intruder is:", stolen["me"])
    print("accepted by the client:", stolen["allowed"])
    zero_trust.set_entries(NARROW)
    again = zero_trust.call("intruder", "server", expect=SERVER)
    say("with the narrow entries again", f"{again['me']} - {again['refused']}")
    for record in zero_trust.decisions()[-2:]:
        pod_name = ", ".join(s for s in record.selectors if s.startswith("k8s:pod-name"))
        print(f"  pid {record.pid} ({pod_name}): granted {', '.join(record.granted) or '-'}")
    served = [json.loads(line) for line in server_process.communicate(timeout=30)[0].splitlines()]
    say("the server's log", [(r.get("peer"), r["allowed"]) for r in served])
    assert stolen["me"] == SERVER and stolen["allowed"] and again["me"] is None
    zero_trust.stop()

# %% [markdown]
# ## 8 · The real SPIRE beside meshlab's agent
#
# **Stage: upstream** (Go and gcc; `make upstream` builds SPIRE v1.13.3's own `spire-server` and
# `spire-agent` from their Go module). The same registration entries go to SPIRE (with `spire-server entry
# create`) and to meshlab's agent; this process asks each agent's Workload API with the same `spiffe`
# client. One entry selects this process's uid, the other a uid it does not have. SPIRE's agent fetches
# new entries from its server every 5 s, so the cell waits for that before reading its answer.

# %% tags=["nbval-ignore-output"]
from meshlab.upstream import build
from meshlab.upstream.versions import PROGRAMS

SPIRE_PROGRAMS = [build.find(PROGRAMS[name]) for name in ("spire-server", "spire-agent")]
if None in SPIRE_PROGRAMS:
    print("upstream stage: SPIRE is not built here (meshlab upstream install spire-server spire-agent)")
    assert os.environ.get("MESHLAB_REQUIRE_UPSTREAM") != "1", "the upstream stage is required here"
else:
    from meshlab.identity.agent import attested_agent
    from meshlab.upstream.spire import Spire

    mine_uid = f"unix:uid:{os.getuid()}"
    side_by_side = [("spiffe://meshlab.test/ns/shop/sa/web", [mine_uid]), ("spiffe://meshlab.test/ns/shop/sa/db", ["unix:uid:64999"])]
    ids = {spiffe_id for spiffe_id, _ in side_by_side}

    def answer(socket_path):
        try:
            with WorkloadApiClient(f"unix://{socket_path}") as client:
                return {str(svid.spiffe_id) for svid in client.fetch_x509_svids()} & ids
        except FetchX509SvidError:
            return set()

    with Spire(*(program.path for program in SPIRE_PROGRAMS), Path(tempfile.mkdtemp(prefix="meshlab-spire-"))) as real_spire:
        for spiffe_id, selectors in side_by_side:
            real_spire.create_entry(spiffe_id, selectors)
        deadline = time.monotonic() + 30
        while not answer(real_spire.workload_socket) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(6)  # one more sync: nothing else arrives late
        theirs = answer(real_spire.workload_socket)
    folder = Path(tempfile.mkdtemp(prefix="meshlab-agent-"))
    ours = attested_agent(TD, folder / "agent.sock", [{"spiffe_id": i, "selectors": s, "ttl": 3600} for i, s in side_by_side])
    ours_running = AgentThread(ours).start()
    mine = answer(ours.socket_path)
    ours_running.stop()
    shutil.rmtree(folder)
    print(f"SPIRE {SPIRE_PROGRAMS[0].version}: {sorted(theirs)}")
    print(f"meshlab's agent: {sorted(mine)}")
    assert theirs == mine == {"spiffe://meshlab.test/ns/shop/sa/web"}

# %% [markdown]
# ## Stage of this chapter
#
# Sections 1-5 run on the **model** stage (IDs, certificates, tokens, attestation and matching, in this
# process). Section 6 runs **live** on a Unix socket and loopback: a real gRPC Workload API, the real
# `spiffe` client, real TLS 1.3 handshakes. Section 7 runs on the **live** lab: pods as network namespaces,
# the agent attesting processes by the kernel's account of them. Section 8 runs on the **upstream** stage:
# SPIRE's own server and agent, which answer as meshlab's agent does. On the **kind** stage, SPIRE's own agent
# (DaemonSet) serves the same API to pods through the SPIFFE CSI driver, and Istio's sidecars fetch their
# SVIDs from it at `/run/secrets/workload-spiffe-uds/socket`.
#
# ## What to remember
#
# - An identity is only as good as its **attestation** and its **entries**: SPIFFE IDs, SVIDs and mTLS are
#   the easy part; the selectors decide who can be whom.
# - Node attestation bounds the damage of a stolen node to its own entries; workload attestation trusts the
#   kernel (SO_PEERCRED, /proc, namespaces), never the caller, and guards against PID reuse.
# - Short-lived SVIDs renewed at half life make theft expire; JWT-SVIDs are bearer tokens, bound to an
#   audience and a few minutes, for where TLS does not reach.
# - Istio's default is the same model with one attestor (namespace + service account via istiod); SPIRE
#   plugs into the same SDS socket when you need more.
#
# Next: lab 13 asks you to write the entries yourself; chapter 14 turns from *who* to *what they may do*.
#
# ## Check yourself
#
# 1. An entry selects only `unix:uid:1000`. Why is that weak in a cluster?
#
#    <details><summary>Answer</summary>
#
#    Any process with uid 1000 in any pod on the agent's node gets the identity; add k8s selectors
#    (namespace, service account, pod) so the pod is part of it.
#
#    </details>
#
# 2. Is `kid` required in a JWT-SVID's header?
#
#    <details><summary>Answer</summary>
#
#    No, it is optional in the token; every key in the JWT bundle must have a `kid` and `use: jwt-svid`.
#
#    </details>
#
# 3. How does an agent tell a caller who hands its socket to another process apart?
#
#    <details><summary>Answer</summary>
#
#    It records the caller's PID and start time at connect; if the PID later belongs to another process
#    (or none), attestation is refused.
#
#    </details>

# %% [markdown]
# # 11 · Beyond HTTP: one proxy, a codec per protocol
#
# A mesh routes HTTP and gRPC by paths, headers and authorities. Much of the traffic inside a company is
# neither: Dubbo between Java services, Thrift, Redis, Kafka, home-grown RPC. To a sidecar that speaks only
# HTTP these are opaque TCP streams: it can encrypt them and count bytes, but not split a canary by method,
# mirror a request, or rate-limit one operation. Aeraki's answer is the **MetaProtocol proxy**: one generic
# L7 proxy in which routing, load balancing, mirroring, mutation and rate limiting are written once, on
# key/value *metadata*, and a protocol contributes only a **codec** that turns bytes into that metadata and
# back. This chapter builds the codec contract and four codecs in `meshlab.metaprotocol`, tests them against
# the protocols' own libraries, and runs the proxy between real Thrift clients and servers.
#
# **After this chapter you can**
# - say what a mesh cannot do for a protocol it cannot parse, and how Aeraki's control plane and proxy split
#   the work (port naming, ApplicationProtocol, MetaRouter);
# - state the codec contract: wait for data, a message with metadata, a mutation written back, an error reply
#   in the protocol's own format;
# - read a Dubbo2 header and a Thrift envelope byte by byte, and say why Dubbo's attachments need a Hessian
#   walk while a Thrift route needs only the envelope;
# - write a MetaRouter with a weighted canary, a mirror, a mutation and a local rate limit, and predict what
#   the proxy does;
# - explain what "route-only" means for a codec and what it costs.

# %%
from meshlab.viz.architectures import aeraki_metaprotocol

aeraki_metaprotocol()

# %%
import importlib
import itertools
import random
import time
from collections import Counter

import ipywidgets as widgets
import matplotlib.pyplot as plt
from dubbo_ssl.codec.encoder import Request
from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.Thrift import TMessageType
from thrift.transport import TTransport

from meshlab.metaprotocol import CODECS, CodecError, DubboCodec, FrameError, ThriftCodec
from meshlab.metaprotocol.router import load_metarouter
from meshlab.viz import new_axes, use_book_style
from meshlab.viz.text import fit, say

use_book_style()

# %% [markdown]
# ## 1 · Why a protocol needs a codec, and who does what
#
# In Aeraki's design the *control plane* (Aeraki, beside istiod) recognises the protocol from the service's
# port name, `tcp-metaprotocol-<protocol>-<anything>` (e.g. `tcp-metaprotocol-dubbo-orders`), learns which
# codec to load from an `ApplicationProtocol` resource, turns `MetaRouter` resources into the proxy's route
# configuration, and serves those routes to the proxies itself: Aeraki is the MetaProtocol proxies' RDS
# server (an outbound proxy's route configuration source points at Aeraki, not at istiod). Only the filter
# configuration travels through istiod, as EnvoyFilter resources Aeraki writes (aeraki-mesh/aeraki's
# README). So a MetaRouter change reaches the proxies without istiod's debounce and push queue of chapter 06;
# a change of the filter itself goes through them. The *data plane* is the MetaProtocol proxy inside
# Envoy: it decodes each message with the codec, matches the metadata against routes (first match wins),
# and forwards, mirrors, mutates or refuses. Services that live in other registries (ZooKeeper for Dubbo,
# for instance) are brought into Istio's service model by Aeraki's registry adapters, so routes can name them.
#
# The codec contract (Aeraki's `codec.h`), as `meshlab.metaprotocol.Codec` has it:
#
# | call | returns | when |
# |---|---|---|
# | `decode(buffer)` | `None` | the frame is incomplete: wait for more bytes |
# | | `Message` | a whole frame: type, request id, metadata, sizes, bytes consumed |
# | | `FrameError` | bytes that can never be a frame: bad magic, impossible or oversized length |
# | `encode(message, mutation)` | bytes | the message with key/values written back (or `CodecError`: route-only) |
# | `error_reply(message, error)` | bytes | the protocol's own answer for a local refusal |
# | `rewrite_request_id(data, id)` | bytes | the frame under another request id (or `CodecError`: none) |
#
# The last one exists because the proxy, like Envoy's connection pools, shares one upstream connection
# among all its clients: their request ids (Dubbo's request id, Thrift's seqid, Kafka's correlation id)
# are unique per client only — Python's thrift client always sends seqid 0 — so each request travels up
# under an id of the proxy's own and the reply gets the client's id back. Redis has no ids: replies are
# matched in order.

# %%
for name, codec_class in CODECS.items():
    print(f"{name:<7} {importlib.import_module(codec_class.__module__).__doc__.splitlines()[0]}")

# %% [markdown]
# ## 2 · Model: frames, byte by byte
#
# A **Dubbo2** frame starts with a 16-byte header: magic `dabb`, flags (request, two-way, event, and the
# serialization id: 2 is Hessian 2), status, an 8-byte request id, a 4-byte body length. The body holds
# Hessian values with no lengths of their own: dubbo version, interface, version, method, parameter types,
# the arguments, and last the attachments map. Routing on `interface` and `method` needs only the first
# values; routing on an attachment means walking every argument. A **Thrift** call starts with its
# envelope (message type, method name, sequence id), so the method is known after a dozen bytes.
#
# Choose a frame and how many of its bytes have arrived; the codec either waits or decodes.

# %%
def thrift_frame(protocol_class, framed=True):
    memory = TTransport.TMemoryBuffer()
    transport = TTransport.TFramedTransport(memory) if framed else memory
    writer = protocol_class(transport)
    writer.writeMessageBegin("OrderService:place", TMessageType.CALL, 7)
    writer.writeStructBegin("args")
    writer.writeFieldStop()
    writer.writeStructEnd()
    writer.writeMessageEnd()
    transport.flush()
    return memory.getvalue()


dubbo_request = Request({"dubbo_version": "2.6.8", "path": "com.shop.OrderService", "version": "1.0.0", "method": "place",
                         "arguments": ["alice", 42], "context": {"tenant": "blue"}, "group": "prod"})
dubbo_request.invoke_id = 7  # a fixed request id, so the printed bytes do not change from run to run
FRAMES = {
    "dubbo request (dubbo-ssl-python)": ("dubbo", bytes(dubbo_request.encode())),
    "thrift binary, framed": ("thrift", thrift_frame(TBinaryProtocol.TBinaryProtocol)),
    "thrift compact, unframed": ("thrift", thrift_frame(TCompactProtocol.TCompactProtocol, framed=False)),
}


def dissect(frame, received):
    codec_name, data = FRAMES[frame]
    received = min(received, len(data))
    print(f"{len(data)} bytes" + ("; the first 32:" if len(data) > 32 else ":"))
    for offset in (0, 16):
        print(f"  {offset:04x}  {data[offset:offset + 16].hex(' ')}")
    if codec_name == "dubbo":
        print(f"  magic {data[:2].hex()}  flags {data[2]:#04x}  status {data[3]}  request id {int.from_bytes(data[4:12], 'big')}  "
              f"body length {int.from_bytes(data[12:16], 'big')}")
    decoded = CODECS[codec_name]().decode(data[:received])
    say(f"after {received} bytes", "wait for data" if decoded is None else decoded.summary())


for frame in FRAMES:
    dissect(frame, 10 ** 6)

# %% tags=["nbval-ignore-output"]
widgets.interact(dissect, frame=widgets.Dropdown(options=list(FRAMES), description="frame"),
                 received=widgets.IntSlider(value=14, min=0, max=300, description="bytes received"));
assert DubboCodec().decode(FRAMES["dubbo request (dubbo-ssl-python)"][1][:14]) is None, "14 bytes of a 16-byte header: wait for data"

# %% [markdown]
# Bytes that can never become a frame are refused, not buffered without bound:

# %%
for codec_name, data in (("dubbo", b"\xca\xfe" + bytes(14)), ("thrift", b"\x7f\xff\xff\xff\x80\x01"), ("thrift", b"\x00\x00\x00\x10GET / HTTP/1.1")):
    try:
        CODECS[codec_name]().decode(data)
    except FrameError as error:
        print(fit(f"{codec_name:<7} {data[:8].hex(' '):<24} -> {error}", indent=" " * 36))

# %% [markdown]
# Mutations: Dubbo carries key/values in its attachments, so the codec can add or change one and re-encode
# the body (every other byte of it stays as it was). Thrift has no such place except THeader's headers:
# for framed and unframed Thrift the codec is **route-only** — it can route and refuse, but not mutate, as
# Aeraki's Thrift codec.

# %%
dubbo = DubboCodec()
decoded = dubbo.decode(FRAMES["dubbo request (dubbo-ssl-python)"][1])
mutated = dubbo.decode(dubbo.encode(decoded, {"tenant": "green", "x-canary": "v2"}))
print("before:", {k: v for k, v in decoded.metadata.items() if k in ("tenant", "x-canary")}, " after:", {k: v for k, v in mutated.metadata.items() if k in ("tenant", "x-canary")})
try:
    ThriftCodec().encode(ThriftCodec().decode(FRAMES["thrift binary, framed"][1]), {"x-canary": "v2"})
except CodecError as error:
    print("thrift:", error)

# %% [markdown]
# ## 3 · Model: the MetaRouter
#
# A `MetaRouter` (`metaprotocol.aeraki.io/v1alpha1`) is an ordered list of routes on metadata. This one
# sends `sayHello` 20/80 to v1/v2, mirrors half of those calls to a shadow, marks them, and limits
# `sayGoodbye` to 5 calls a minute. The router alone, on a seeded random source:

# %%
METAROUTER = """
apiVersion: metaprotocol.aeraki.io/v1alpha1
kind: MetaRouter
metadata: {name: hello}
spec:
  hosts: [hello.demo.svc.cluster.local]
  routes:
  - name: hello-canary
    match: {attributes: {method: {exact: sayHello}}}
    route:
    - {destination: {host: hello.demo.svc.cluster.local, subset: v1}, weight: 20}
    - {destination: {host: hello.demo.svc.cluster.local, subset: v2}, weight: 80}
    mirror: {host: hello.demo.svc.cluster.local, subset: shadow}
    mirrorPercentage: {value: 50}
    requestMutation: [{key: x-routed-by, value: meshlab}]
  - name: goodbye
    match: {attributes: {method: {exact: sayGoodbye}}}
    route:
    - {destination: {host: hello.demo.svc.cluster.local, subset: v1}}
  localRateLimit:
    conditions:
    - match: {attributes: {method: {exact: sayGoodbye}}}
      tokenBucket: {maxTokens: 5, tokensPerFill: 5, fillInterval: 60s}
"""
router = load_metarouter(METAROUTER, rng=random.Random(11), clock=lambda: 0.0)
hello = Counter((d.destination.subset, d.mirror is not None) for d in (router.route({"method": "sayHello"}) for _ in range(1000)))
say("sayHello x1000 -> (subset, mirrored)", dict(sorted(hello.items())))
print("sayGoodbye x8 ->", [router.route({"method": "sayGoodbye"}).refused or "v1" for _ in range(8)])
print("sayWhat ->", router.route({"method": "sayWhat"}).refused)

# %% [markdown]
# ## 4 · Live, on loopback: the proxy between thrift's own client and servers
#
# **Stage: live, on loopback** (any machine with the Python packages; no root). Three backends are thrift's
# `TThreadedServer` (framed, binary), each answering with its name; the client is thrift's own client; in
# between runs `meshlab.metaprotocol.proxy` with the MetaRouter above and the Thrift codec. 300 `sayHello`
# calls, then 8 `sayGoodbye` calls, then a method no route knows.

# %% tags=["nbval-ignore-output"]
from meshlab.metaprotocol.demo import ProxyThread, thrift_backend, thrift_call

backends = {name: thrift_backend(name) for name in ("v1", "v2", "shadow")}
clusters = {f"hello.demo.svc.cluster.local|{name}": [endpoint] for name, (_, endpoint) in backends.items()}
proxy = ProxyThread(lambda direction: ThriftCodec(), METAROUTER, clusters, seed=11)
answers = Counter(thrift_call(proxy.port, "sayHello") for _ in range(300))
goodbyes = [thrift_call(proxy.port, "sayGoodbye") for _ in range(8)]
unknown = thrift_call(proxy.port, "sayWhat")
deadline = time.monotonic() + 5
while backends["shadow"][0].calls["sayHello"] < proxy.stats()["mirrored"] and time.monotonic() < deadline:
    time.sleep(0.02)  # mirrored copies are fire-and-forget
stats = proxy.stats()
proxy.stop()
print("sayHello answers:", dict(answers), " shadow received:", backends["shadow"][0].calls["sayHello"], "copies")
for answer, calls in itertools.groupby(goodbyes):
    print(f"sayGoodbye x{len(list(calls))}: {answer}")
print("sayWhat:", unknown)
say("proxy counters", dict(sorted(stats.items())))
ax = new_axes("300 sayHello calls through the proxy (route 20/80, mirror 50%)", "", "calls")
ax.bar(["v1", "v2", "shadow (copies)"], [answers["v1"], answers["v2"], backends["shadow"][0].calls["sayHello"]])
plt.show()
assert 0.12 < answers["v1"] / 300 < 0.28 and answers["v1"] + answers["v2"] == 300
assert goodbyes[:5] == ["v1"] * 5 and goodbyes[5:] == ["exception: meshlab metaprotocol proxy: rate limited"] * 3
assert unknown == "exception: meshlab metaprotocol proxy: no route"
assert backends["shadow"][0].calls["sayHello"] == stats["mirrored"]
assert stats["mutation_skipped_route_only"] == 300, "framed Thrift is route-only: the mark could not be written"

# %% [markdown]
# The last line is the price of a route-only codec: the route asked to mark every request, and framed
# Thrift has nowhere to put the mark, so the proxy forwarded the bytes unchanged and counted it. With
# THeader (or Dubbo attachments) the same route would have written it; the tests show the backends
# receiving it (tests/test_metaprotocol_proxy.py: a dubbo-ssl-python client's call arrives with the
# mutated `tenant` attachment).
#
# ## Stage of this chapter
#
# Sections 1-3 run on the **model** stage (frames built by the protocols' own libraries, decoded and
# routed in this process). Section 4 runs **live** on loopback: real TCP connections between thrift's
# client, meshlab's proxy and thrift's servers. On the **kind** stage, Aeraki and its MetaProtocol proxy
# (an Envoy build) do the same from MetaRouter resources for services whose ports are named
# `tcp-metaprotocol-<protocol>-*`.
#
# ## What to remember
#
# - Everything a mesh does at L7 can be written once, on metadata; a protocol only has to say how to get the
#   metadata out of its bytes and, if it can, how to put a change back.
# - Decoding is a trade: Thrift's envelope gives the method in a few bytes; Dubbo attachments sit behind
#   every argument, so routing on them means a full Hessian walk (benchmarks/bench_metaprotocol.py measures
#   both).
# - A codec must never buffer without bound: a length it cannot trust is an error, not a wait.
#
# Lab 11 asks you to write a codec for a small protocol and route real traffic with it.
#
# ## Check yourself
#
# 1. What must a codec's decode return for 14 bytes of a Dubbo frame?
#
#    <details><summary>Answer</summary>
#
#    None (wait for data): the header alone is 16 bytes.
#
#    </details>
#
# 2. Why do MetaRouter changes not go through istiod's debounce?
#
#    <details><summary>Answer</summary>
#
#    Aeraki serves the MetaProtocol proxies' routes itself (it is their RDS server); only the filter
#    configuration travels through istiod as EnvoyFilter.
#
#    </details>
#
# 3. A codec cannot carry mutations (route-only). What happens to a mutation in a route?
#
#    <details><summary>Answer</summary>
#
#    The request is forwarded unchanged and the proxy counts it as a skipped mutation.
#
#    </details>

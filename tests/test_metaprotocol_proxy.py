"""The MetaProtocol proxy on loopback, between real clients and real servers: thrift's own client and
threaded server, dubbo-ssl-python's client against a Dubbo2 backend, hiredis-packed pipelines for
Redis. Checks the canary split, the mirror, mutations reaching the backend, rate limiting answered in
the protocol's own format, and replies returned in request order."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter

import hiredis
import pytest
from dubbo_ssl.client import DubboClient

from meshlab.metaprotocol import DubboCodec, RedisCodec, ThriftCodec
from meshlab.metaprotocol.demo import ProxyThread, codec_backend, stop_backend, thrift_backend, thrift_call
from meshlab.metaprotocol.dubbo import HEADER, HESSIAN2, MAGIC, OK
from meshlab.metaprotocol.hessian2 import encode_string


def metarouter(routes: str, rate_limit: str = "") -> str:
    return f"""
apiVersion: metaprotocol.aeraki.io/v1alpha1
kind: MetaRouter
metadata: {{name: test}}
spec:
  hosts: [svc]
  routes:
{routes}
{rate_limit}
"""


@pytest.fixture
def thrift_backends():
    return {name: thrift_backend(name) for name in ("v1", "v2", "shadow")}


def test_thrift_canary_split_and_mirror(thrift_backends):
    routes = """  - name: canary
    match: {attributes: {method: {exact: sayHello}}}
    route:
    - {destination: {host: svc, subset: v1}, weight: 80}
    - {destination: {host: svc, subset: v2}, weight: 20}
    mirror: {host: svc, subset: shadow}
    mirrorPercentage: {value: 50}"""
    clusters = {f"svc|{name}": [endpoint] for name, (_, endpoint) in thrift_backends.items()}
    running = ProxyThread(lambda direction: ThriftCodec(), metarouter(routes), clusters)
    shadow = thrift_backends["shadow"][0].calls
    try:
        answers = Counter(thrift_call(running.port, "sayHello") for _ in range(200))
        refused = thrift_call(running.port, "unknownMethod")
        mirrored = running.stats()["mirrored"]
        deadline = time.monotonic() + 5
        while shadow["sayHello"] < mirrored and time.monotonic() < deadline:  # copies are fire-and-forget
            time.sleep(0.02)
    finally:
        running.stop()
    assert set(answers) == {"v1", "v2"} and 0.70 < answers["v1"] / 200 < 0.90
    assert refused == "exception: meshlab metaprotocol proxy: no route"
    assert 0.35 < mirrored / 200 < 0.65 and shadow["sayHello"] == mirrored, "every sampled copy reached the shadow"


def test_thrift_rate_limit_answers_with_an_application_exception(thrift_backends):
    routes = """  - name: all
    route:
    - {destination: {host: svc, subset: v1}}"""
    limit = """  localRateLimit:
    tokenBucket: {maxTokens: 3, tokensPerFill: 1, fillInterval: 60s}"""
    running = ProxyThread(lambda direction: ThriftCodec(), metarouter(routes, limit), {"svc|v1": [thrift_backends["v1"][1]]})
    try:
        answers = [thrift_call(running.port, "sayHello") for _ in range(5)]
    finally:
        running.stop()
    assert answers == ["v1"] * 3 + ["exception: meshlab metaprotocol proxy: rate limited"] * 2


# -- dubbo ----------------------------------------------------------------------------------------
def dubbo_backend(seen: list):
    """A Dubbo2 provider: answers each call with "<method> by backend, tenant <t>"."""

    async def respond(request):
        seen.append(request.metadata)
        if request.message_type.value == "Heartbeat":
            return None
        body = b"\x91" + encode_string(f"{request.metadata['method']} by backend, tenant {request.metadata.get('tenant')}")
        return HEADER.pack(MAGIC, HESSIAN2, OK, request.request_id, len(body)) + body

    return codec_backend(DubboCodec(), respond)


def test_a_dubbo_client_gets_its_answer_through_the_proxy_with_a_mutation():
    seen: list = []
    backend = dubbo_backend(seen)
    endpoint = backend[2]
    routes = """  - name: orders
    match: {attributes: {interface: {exact: com.shop.OrderService}}}
    route:
    - {destination: {host: svc}}
    requestMutation:
    - {key: tenant, value: green}"""
    running = ProxyThread(lambda direction: DubboCodec(), metarouter(routes), {"svc": [endpoint]})
    try:
        client = DubboClient("com.shop.OrderService", group="prod", host=f"127.0.0.1:{running.port}")
        answer = client.call("place", ["alice", 42], context={"tenant": "blue"})
    finally:
        running.stop()
        stop_backend(backend)
    assert answer == "place by backend, tenant green"
    assert seen[-1]["tenant"] == "green" and seen[-1]["method"] == "place"


# -- redis: replies in request order across upstreams ------------------------------------------------
def redis_backend(name: str, delay: float):
    """Answers every command with "+<name>:<key>" after ``delay`` seconds (a slow and a fast backend)."""

    async def respond(command):
        await asyncio.sleep(delay)
        return f"+{name}:{command.metadata.get('key')}\r\n".encode()

    return codec_backend(RedisCodec(), respond)


def test_pipelined_redis_replies_come_back_in_request_order():
    slow, fast = redis_backend("slow", 0.05), redis_backend("fast", 0.0)
    routes = """  - name: users
    match: {attributes: {key: {prefix: "user:"}}}
    route:
    - {destination: {host: svc, subset: slow}}
  - name: rest
    route:
    - {destination: {host: svc, subset: fast}}"""
    running = ProxyThread(lambda direction: RedisCodec(direction=direction), metarouter(routes), {"svc|slow": [slow[2]], "svc|fast": [fast[2]]})
    try:
        keys = ["user:1", "cart:1", "user:2", "cart:2", "cart:3"]
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as connection:
            connection.sendall(b"".join(hiredis.pack_command(("GET", key)) for key in keys))
            reader, replies = hiredis.Reader(), []
            while len(replies) < len(keys):
                reader.feed(connection.recv(65536))
                while (reply := reader.gets()) is not False:
                    replies.append(reply.decode())
    finally:
        running.stop()
        for backend in (slow, fast):
            stop_backend(backend)
    assert replies == ["slow:user:1", "fast:cart:1", "slow:user:2", "fast:cart:2", "fast:cart:3"]


def test_the_cli_proxy_routes_real_thrift_calls(thrift_backends, tmp_path):
    import json
    import subprocess
    import sys

    config = tmp_path / "metarouter.yaml"
    config.write_text(metarouter("""  - name: v2-only
    route:
    - {destination: {host: svc, subset: v2}}"""))
    endpoint = thrift_backends["v2"][1]
    proxy = subprocess.Popen([sys.executable, "-m", "meshlab.cli", "metaprotocol", "proxy", "--config", str(config), "--codec", "thrift",
                              "--cluster", f"svc|v2={endpoint[0]}:{endpoint[1]}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proxy.stdout.readline())
        port = int(ready["listen"].rsplit(":", 1)[1])
        assert [thrift_call(port, "sayHello") for _ in range(3)] == ["v2"] * 3
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
    stopped = json.loads(proxy.stdout.readline())
    assert stopped["stats"]["routed:v2-only:svc|v2"] == 3 and stopped["stats"]["replies"] == 3
    bad = subprocess.run([sys.executable, "-m", "meshlab.cli", "metaprotocol", "proxy", "--config", str(config), "--codec", "thrift", "--cluster", "svc|v2=nowhere"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "give NAME=HOST:PORT" in bad.stderr


# -- thrift with generated code: the compiler's client and processor through the proxy -----------------
@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    if shutil.which("thrift") is None:
        pytest.skip("thrift-compiler is not installed (make test installs it as root: apt-get install thrift-compiler)")
    out = tmp_path_factory.mktemp("gen")
    idl = Path(__file__).parent / "data" / "thrift" / "shop.thrift"
    subprocess.run(["thrift", "--gen", "py", "-out", str(out), str(idl)], check=True)
    sys.path.insert(0, str(out))
    try:
        from shop import Orders, ttypes

        yield Orders, ttypes
    finally:
        sys.path.remove(str(out))


@pytest.mark.debian
def test_generated_thrift_client_and_server_through_the_proxy(generated):
    import threading

    from thrift.protocol import TBinaryProtocol
    from thrift.server import TServer
    from thrift.transport import TSocket, TTransport

    orders, ttypes = generated
    pinged = threading.Event()

    class Handler:
        def place(self, order):
            if order.quantity > 10:
                raise ttypes.OutOfStock(sku=order.sku)
            return f"placed {order.quantity} x {order.sku} ({len(order.notes)} notes, {sum(order.prices.values()):.2f})"

        def ping(self, at):
            pinged.set()

    listening = TSocket.TServerSocket(host="127.0.0.1", port=0)
    server = TServer.TThreadedServer(orders.Processor(Handler()), listening, TTransport.TFramedTransportFactory(),
                                     TBinaryProtocol.TBinaryProtocolAcceleratedFactory(), daemon=True)
    listening.listen()
    endpoint = ("127.0.0.1", listening.handle.getsockname()[1])
    listening.listen = lambda: None
    threading.Thread(target=server.serve, daemon=True).start()
    routes = """  - name: place
    match: {attributes: {method: {exact: place}}}
    route: [{destination: {host: svc, subset: v1}}]
  - name: ping
    match: {attributes: {method: {exact: ping}}}
    route: [{destination: {host: svc, subset: v1}}]"""
    running = ProxyThread(lambda direction: ThriftCodec(), metarouter(routes), {"svc|v1": [endpoint]})
    transport = TTransport.TFramedTransport(TSocket.TSocket("127.0.0.1", running.port))
    client = orders.Client(TBinaryProtocol.TBinaryProtocolAccelerated(transport))
    transport.open()
    try:
        answer = client.place(ttypes.Order(sku="A-1", quantity=2, notes=["gift", "fast"], prices={"A-1": 9.5}))
        with pytest.raises(ttypes.OutOfStock) as refused:
            client.place(ttypes.Order(sku="B-2", quantity=99, notes=[], prices={}))
        client.ping(42)  # oneway: no reply slot, and the next call still gets its own reply
        again = client.place(ttypes.Order(sku="C-3", quantity=1, notes=[], prices={}))
        assert pinged.wait(5)
    finally:
        transport.close()
        stats = running.stats()
        running.stop()
    assert answer == "placed 2 x A-1 (2 notes, 9.50)" and refused.value.sku == "B-2" and again.startswith("placed 1 x C-3")
    assert stats["routed:place:svc|v1"] == 3 and stats["routed:ping:svc|v1"] == 1 and stats["replies"] == 3


def test_clients_share_one_upstream_connection_with_rewritten_seqids():
    """thrift's Python client always sends seqid 0. Two clients calling at once share the proxy's one
    connection to the backend, which answers out of order; the proxy's own seqids keep them apart."""
    import random as chance
    import threading

    from thrift.protocol import TBinaryProtocol
    from thrift.Thrift import TMessageType, TType
    from thrift.transport import TTransport

    seen_seqids = []
    codec = ThriftCodec()

    def reply(method: str, seqid: int) -> bytes:
        memory = TTransport.TMemoryBuffer()
        framed = TTransport.TFramedTransport(memory)
        protocol = TBinaryProtocol.TBinaryProtocol(framed)
        protocol.writeMessageBegin(method, TMessageType.REPLY, seqid)
        protocol.writeStructBegin("result")
        protocol.writeFieldBegin("success", TType.STRING, 0)
        protocol.writeString(method)
        protocol.writeFieldEnd()
        protocol.writeFieldStop()
        protocol.writeStructEnd()
        protocol.writeMessageEnd()
        framed.flush()
        return memory.getvalue()

    async def serve(reader, writer):
        buffer = bytearray()

        async def answer(request):
            await asyncio.sleep(chance.random() * 0.02)  # replies overtake each other
            writer.write(reply(request.metadata["method"], request.request_id))

        while data := await reader.read(65536):
            buffer += data
            while (request := codec.decode(bytes(buffer))) is not None:
                del buffer[:request.consumed]
                seen_seqids.append(request.request_id)
                asyncio.get_running_loop().create_task(answer(request))

    from meshlab.loopthread import LoopThread

    runner = LoopThread("out-of-order-backend")
    runner.start()
    server = runner.call(asyncio.start_server(serve, "127.0.0.1", 0))
    endpoint = ("127.0.0.1", server.sockets[0].getsockname()[1])
    running = ProxyThread(lambda direction: ThriftCodec(), metarouter("""  - name: all
    route: [{destination: {host: svc}}]"""), {"svc": [endpoint]})
    results: dict[str, list[str]] = {"a": [], "b": []}

    def client(prefix: str) -> None:
        results[prefix] = [thrift_call(running.port, f"{prefix}{i}") for i in range(25)]

    try:
        threads = [threading.Thread(target=client, args=(prefix,)) for prefix in results]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        stats = running.stats()
    finally:
        running.stop()
        stop_backend((runner, server, endpoint))
    assert results == {prefix: [f"{prefix}{i}" for i in range(25)] for prefix in results}
    assert stats["upstream_connections"] == 1, "both clients' requests went over one shared connection"
    assert len(set(seen_seqids)) == 50, "the backend saw the proxy's seqids, not the clients' (all 0)"


def test_a_frame_that_never_ends_is_refused_not_buffered():
    """An unframed Thrift call announcing a list of 2**31-1 elements: the codec would wait for ever; the
    proxy stops at the frame-size limit and closes the connection with the reason."""
    import struct

    from meshlab.metaprotocol import FrameError
    from meshlab.metaprotocol.proxy import decode

    codec = ThriftCodec(max_frame_size=4096)
    call = struct.pack(">Ii", 0x80010001, 2) + b"hi" + struct.pack(">i", 1) + b"\x0f\x00\x01\x08" + struct.pack(">i", 2**31 - 1)
    buffer = bytearray(call + bytes(5000))
    with pytest.raises(FrameError, match="5022 bytes buffered without a whole frame"):
        decode(codec, buffer)
    assert decode(codec, bytearray(call + bytes(100))) is None, "below the limit it still waits"

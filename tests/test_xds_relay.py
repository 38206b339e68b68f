"""A proxyless pod's xDS socket (meshlab.lab.xdsrelay): a real gRPC client calling through the Unix
socket reaches the server behind it, byte for byte; a bad address is refused before anything listens."""

import json
import subprocess
import sys

import grpc

from meshlab.xds.echo import ECHO_METHOD, start_backend


def test_a_grpc_call_through_the_socket_reaches_the_server_behind_it(tmp_path):
    server, port = start_backend("behind")
    socket = tmp_path / "XDS"
    relay = subprocess.Popen([sys.executable, "-m", "meshlab.lab.xdsrelay", str(socket), f"127.0.0.1:{port}"],
                             stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(relay.stdout.readline())
        assert ready["event"] == "ready" and ready["socket"] == str(socket)
        with grpc.insecure_channel(f"unix://{socket}") as channel:
            answers = {channel.unary_unary(ECHO_METHOD)(b"hello", timeout=10).decode() for _ in range(5)}
        assert answers == {"behind"}
    finally:
        relay.terminate()
        relay.wait(timeout=10)
        server.stop(grace=None)
    assert relay.returncode == 0


def test_an_address_without_a_port_is_refused(tmp_path):
    done = subprocess.run([sys.executable, "-m", "meshlab.lab.xdsrelay", str(tmp_path / "XDS"), "istiod"], capture_output=True, text=True)
    assert done.returncode == 2 and "'istiod' is not HOST:PORT" in done.stderr
    assert not (tmp_path / "XDS").exists()

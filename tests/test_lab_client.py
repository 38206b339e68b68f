"""The lab's HTTP client against the standard library's HTTP server: a reply that says
``connection: close`` ends the connection, and the next request opens a new one."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from meshlab.lab.client import send


class _ClosesEverySecondReply(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: list[int] = []

    def setup(self) -> None:
        super().setup()
        self.connections.append(self.client_address[1])
        self.served = 0

    def do_GET(self) -> None:
        self.served += 1
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        if self.served == 2:  # as a draining proxy does: answer, say close, close
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    _ClosesEverySecondReply.connections = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ClosesEverySecondReply)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_keep_alive_requests_go_on_over_a_new_connection_after_connection_close(server):
    replies = send("127.0.0.1", server.server_address[1], count=5)
    assert [reply.body["path"] for reply in replies] == ["/0", "/1", "/2", "/3", "/4"]
    assert [reply.headers.get("connection") for reply in replies] == [None, "close", None, "close", None]
    assert len(_ClosesEverySecondReply.connections) == 3

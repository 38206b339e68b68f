"""HTTP/1.1 on both sides of an Envoy-like proxy, with h11: what the gateway and the sidecar share.

    HOP_BY_HOP          headers a proxy never forwards (RFC 9110 section 7.6.1)
    LOCAL_REPLY         Envoy's bodies for the failures its router answers itself, by response flag
    UpstreamConnection  one keep-alive connection to a host: send a request, read its whole answer
    read_request        the next whole request on a downstream connection
    write_response      one whole response on a downstream connection
"""

from __future__ import annotations

import asyncio

import h11

#: Hop-by-hop headers (RFC 9110 section 7.6.1), never forwarded.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"})
#: Envoy's local reply bodies for the failures the router answers itself, by response flag
#: (Envoy's router: "upstream connect error or disconnect/reset before headers. reset reason: ...").
LOCAL_REPLY = {"UH": b"no healthy upstream", "UF": b"upstream connect error or disconnect/reset before headers. reset reason: connection failure",
               "UC": b"upstream connect error or disconnect/reset before headers. reset reason: connection termination",
               "UT": b"upstream request timeout"}


class UpstreamConnection:
    """One keep-alive HTTP/1.1 connection to a host."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.http = reader, writer, h11.Connection(h11.CLIENT)

    @property
    def usable(self) -> bool:
        """Idle and still open: the host has not closed it (a dead host's FIN is seen here)."""
        return self.http.our_state is h11.IDLE and not self.reader.at_eof() and not self.writer.is_closing()

    async def exchange(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send one request, read its whole answer; raises ConnectionError if the host goes away."""
        frame = [("content-length", str(len(body)))] if body or method in ("POST", "PUT", "PATCH") else []
        head = self.http.send(h11.Request(method=method, target=target, headers=headers + frame))
        self.writer.write(head + (self.http.send(h11.Data(data=body)) if body else b"") + self.http.send(h11.EndOfMessage()))
        response, chunks = None, []
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                self.http.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("the host closed the connection before answering")
        if self.http.our_state is h11.DONE and self.http.their_state is h11.DONE:
            self.http.start_next_cycle()
        return response.status_code, list(response.headers), b"".join(chunks)

    def close(self) -> None:
        self.writer.close()


async def read_request(http: h11.Connection, reader: asyncio.StreamReader) -> tuple[h11.Request, bytes] | None:
    """The next whole request on a downstream connection, or None when the client is done."""
    head, chunks = None, []
    while True:
        event = http.next_event()
        if event is h11.NEED_DATA:
            http.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return head, b"".join(chunks)  # type: ignore[return-value]
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def write_response(http: h11.Connection, writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], body: bytes,
                         close: bool = False) -> bool:
    """Send a whole response (hop-by-hop headers dropped, Content-Length set; ``close`` says
    ``connection: close``); False when the connection must close afterwards, True when it is ready
    for the next request."""
    kept = [(name, value) for name, value in headers if name.lower() not in HOP_BY_HOP and name.lower() != "content-length"]
    kept += [("connection", "close")] if close else []
    out = http.send(h11.Response(status_code=status, headers=[*kept, ("content-length", str(len(body)))]))
    writer.write(out + (http.send(h11.Data(data=body)) if body else b"") + http.send(h11.EndOfMessage()))
    await writer.drain()
    if http.our_state is h11.MUST_CLOSE or http.their_state is h11.MUST_CLOSE:
        return False
    http.start_next_cycle()
    return True

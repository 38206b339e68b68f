"""meshlab's sidecar: a transparent L4 proxy in the pod's network namespace, running as uid 1337.

It plays the part of Envoy in Istio's sidecar mode, at layer 4 (and, run in a node's namespace,
the part of a per-node proxy, with the same code):
- **outbound** (port 15001): the pod's rules REDIRECT the app's connections here; the proxy reads
  the original destination (``SO_ORIGINAL_DST``), replaces a service's virtual address by one of
  its endpoints (round robin, as EDS would), and connects there. Its own sockets belong to uid
  1337, so ISTIO_OUTPUT lets them through instead of capturing them again.
- **inbound** (port 15006): captured inbound connections arrive here; the proxy connects to the
  app's original port from 127.0.0.6, the source ISTIO_OUTPUT returns early for, which is why
  the app sees 127.0.0.6 as its peer.

With certificates (``tls``: the pod's SVID, key and trust bundle, issued by the lab's authority) the
proxy speaks Istio's mutual TLS: outbound, to an endpoint whose tlsMode is istio, it originates TLS
with the cluster's SNI (``outbound_.<port>_._.<hostname>``) and ALPN ``istio``; inbound, it peeks at
each connection (``meshlab.lab.tlsinspector``, Envoy's tls_inspector) and terminates TLS when the
connection starts with a ClientHello, verifying the peer's SVID against the bundle, or passes
plaintext on (PERMISSIVE). Run as an **east-west gateway** (``eastwest_port``, 15443) it routes
connections by their SNI to a pod of its own network without terminating them (AUTO_PASSTHROUGH).

Every connection is logged, when it ends, as one JSON record (a "hop"), which notebooks read.
The process is started as root inside the pod, binds its listeners, then drops to the proxy's
uid and gid, importing nothing afterwards (so it works even where uid 1337 cannot read files).

Where a service's endpoints come from: a services file the lab writes (``ServiceTable``), or, in
xDS mode, the control plane (``meshlab.lab.xdsclient``: Istio's listeners, clusters and endpoints,
and virtualOutbound's default cluster for destinations it was not told about). Run as the **global
sidecar** of lazy loading, the proxy also listens on the global sidecar's port for connections that
other sidecars sent it as their fallback: each starts with a PROXY protocol line naming the caller
and the original destination, and is forwarded there by the global sidecar's own, unscoped, table.

    original_destination   SO_ORIGINAL_DST of an accepted socket
    proxy_protocol_line    the PROXY protocol v1 header a fallback connection starts with (HAProxy's spec)
    read_proxy_protocol    such a header -> (source, destination); a ValueError saying what is accepted
    Upstream               where one connection goes: address, service, Envoy's cluster, PROXY line, SNI
    MutualTls              the client and server TLS contexts of one pod's SVID
    ServiceTable           service VIP:port -> endpoints, reloaded when its file changes
    Hop                    one proxied connection, as logged
    Sidecar                the listeners (outbound, inbound, the global sidecar's) and the splicing protocols
    run                    bind, drop privileges, (in xDS mode) subscribe, serve until SIGTERM
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from meshlab.filewatch import ChangedFile
from meshlab.lab.admin import AdminServer
from meshlab.lab.tlsinspector import http_protocols, looks_like_tls, peek, server_name
from meshlab.tasks import TaskSet

SO_ORIGINAL_DST = 80
INBOUND_PASSTHROUGH_SOURCE = "127.0.0.6"
PROXY_V1_MAX = 107  # HAProxy's PROXY protocol v1 (doc/proxy-protocol.txt): a header is at most 107 bytes


def proxy_protocol_line(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """The PROXY protocol v1 header naming a connection's source and original destination (what
    Envoy's upstream_proxy_protocol transport socket sends first)."""
    return f"PROXY TCP4 {source[0]} {destination[0]} {source[1]} {destination[1]}\r\n".encode()


def read_proxy_protocol(line: bytes) -> tuple[tuple[str, int], tuple[str, int]]:
    """(source, destination) of a ``PROXY TCP4 src dst sport dport`` line, CRLF-ended."""
    parts = line.rstrip(b"\r\n").decode("ascii", "replace").split(" ")
    if len(parts) != 6 or parts[:2] != ["PROXY", "TCP4"] or not (parts[4].isdigit() and parts[5].isdigit()):
        raise ValueError(f"not a PROXY protocol v1 TCP4 header: {line[:PROXY_V1_MAX]!r}; expected 'PROXY TCP4 <src> <dst> <sport> <dport>' and CRLF")
    return (parts[2], int(parts[4])), (parts[3], int(parts[5]))


def original_destination(sock: socket.socket) -> tuple[str, int]:
    """The address a REDIRECTed connection was made to (struct sockaddr_in from netfilter's conntrack)."""
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, address = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(address), port


@dataclass(frozen=True)
class Upstream:
    """``service`` the VIP:port resolved (None when none was); ``cluster`` Envoy's %UPSTREAM_CLUSTER%
    (xDS mode); ``proxy_protocol``: the connection starts with a PROXY line (the global sidecar's);
    ``sni``: originate mutual TLS with this SNI; ``report`` is told how connecting went (None: it
    worked, else the failure), for the cluster's outlier detection."""

    host: str
    port: int
    service: str | None = None
    cluster: str | None = None
    proxy_protocol: bool = False
    sni: str | None = None
    report: Callable[[str | None], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class MutualTls:
    """A pod's SVID as TLS contexts: ``client`` to originate (ALPN istio), ``server`` to terminate."""

    client: ssl.SSLContext
    server: ssl.SSLContext

    @classmethod
    def load(cls, chain: Path, key: Path, bundle: Path) -> MutualTls:
        """Imported here, as root before the proxy drops privileges: a proxy without certificates (a lab
        without root runs its sidecars from a copy of meshlab's code and the standard library) needs neither."""
        from meshlab.identity.mtls import context as tls_context
        from meshlab.xds.outbound import ALPN_IN_MESH

        chain_pem, key_pem, bundle_pem = chain.read_bytes(), key.read_bytes(), bundle.read_bytes()
        client = tls_context(chain_pem, key_pem, bundle_pem, server_side=False)
        client.set_alpn_protocols(list(ALPN_IN_MESH))
        return cls(client, tls_context(chain_pem, key_pem, bundle_pem, server_side=True))


class ServiceTable:
    """``{"VIP:port": ["ip:port", ...]}`` from a JSON file the lab writes; reread when it changes."""

    def __init__(self, path: Path | None) -> None:
        self.path, self.file, self.endpoints, self.cursors = path, ChangedFile(path), {}, {}

    def resolve(self, address: str, port: int) -> tuple[str, int, str | None]:
        """(ip, port, service) to connect to; a non-service destination passes through unchanged."""
        self._reload()
        key = f"{address}:{port}"
        endpoints = self.endpoints.get(key)
        if not endpoints:
            return address, port, None
        chosen = next(self.cursors[key])
        host, _, target = chosen.rpartition(":")
        return host, int(target), key

    def upstream(self, address: str, port: int, fallback: bool = True) -> Upstream:
        return Upstream(*self.resolve(address, port))

    def _reload(self) -> None:
        if self.file.changed():
            self.endpoints = json.loads(self.path.read_text())
            self.cursors = {key: itertools.cycle(value) for key, value in self.endpoints.items()}


@dataclass
class Hop:
    pod: str
    direction: str
    downstream: str
    original_dst: str
    upstream: str = ""
    upstream_source: str = ""
    service: str | None = None
    bytes_from_downstream: int = 0
    bytes_from_upstream: int = 0
    opened: float = field(default_factory=time.time)
    duration_ms: float = 0.0
    error: str | None = None
    upstream_cluster: str | None = None  # xDS mode: Envoy's %UPSTREAM_CLUSTER%
    source: str | None = None  # the global sidecar: the caller, as its PROXY line named it
    sni: str | None = None  # the SNI sent (outbound), or received (east-west gateway)
    peer_identity: str | None = None  # the SPIFFE ID the other side's certificate proved (mutual TLS)


def _address(pair) -> str:
    return f"{pair[0]}:{pair[1]}"


class _Half(asyncio.Protocol):
    """One side of a spliced connection: what it receives is written to the other side."""

    def __init__(self, splice: _Splice, upstream: bool) -> None:
        self.splice, self.upstream, self.transport = splice, upstream, None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.splice.forward(self.upstream, data)

    def eof_received(self) -> bool:
        self.splice.half_close(self.upstream)
        return self.transport.get_extra_info("sslcontext") is None  # keep a plain side open to write; TLS closes

    def connection_lost(self, exc) -> None:
        self.splice.lost(self.upstream)

    # Flow control: when the other side cannot keep up, stop reading this side.
    def pause_writing(self) -> None:
        self.splice.other(self.upstream).pause_reading()

    def resume_writing(self) -> None:
        self.splice.other(self.upstream).resume_reading()


class _Splice:
    """A downstream connection and the upstream connection the proxy opened for it."""

    def __init__(self, sidecar: Sidecar, hop: Hop, down: _Half) -> None:
        self.sidecar, self.hop, self.down = sidecar, hop, down
        self.up = _Half(self, upstream=True)
        self.closed: set[bool] = set()
        self.eofs: set[bool] = set()
        self.started = time.perf_counter()
        # Bytes (and an EOF) the client sent before the upstream connection existed: pause_reading()
        # in connection_made is not honoured by every loop (CPython 3.11 starts reading anyway).
        self.early = bytearray()
        self.early_eof = False

    def other(self, upstream: bool):
        return (self.down if upstream else self.up).transport

    def forward(self, upstream: bool, data: bytes) -> None:
        if upstream:
            self.hop.bytes_from_upstream += len(data)
        else:
            self.hop.bytes_from_downstream += len(data)
        target = self.other(upstream)
        if target is None:
            self.early += data
        elif not target.is_closing():
            target.write(data)

    def half_close(self, upstream: bool) -> None:
        """One side finished sending: pass the EOF on; once both sides have, close both."""
        self.eofs.add(upstream)
        target = self.other(upstream)
        if target is None:
            self.early_eof = True
        elif len(self.eofs) == 2:
            for half in (self.down, self.up):
                half.transport.close()
        elif not target.is_closing() and target.can_write_eof():
            target.write_eof()
        elif not target.is_closing():
            # A TLS side: asyncio's TLS transports cannot half-close, so the EOF closes it (close_notify
            # after what was written). Envoy would half-close instead; a client that half-closes before
            # reading its answer would lose it here over mutual TLS.
            target.close()

    def connected(self) -> None:
        """The upstream connection exists: send what arrived early, then let the client's bytes flow."""
        if self.early:
            self.up.transport.write(bytes(self.early))
            self.early.clear()
        if self.early_eof:
            self.eofs.discard(False)
            self.half_close(upstream=False)
        self.down.transport.resume_reading()

    def lost(self, upstream: bool) -> None:
        self.closed.add(upstream)
        target = self.other(upstream)
        if target is not None and not target.is_closing():
            target.close()
        if len(self.closed) == 2 or (self.up.transport is None and not upstream):
            self.finish()

    def finish(self, error: str | None = None) -> None:
        if self.hop.duration_ms:
            return
        self.hop.duration_ms = round((time.perf_counter() - self.started) * 1000, 3)
        self.hop.error = error or self.hop.error
        self.sidecar.log({"event": "hop", **asdict(self.hop)})


class _Downstream(_Half):
    """The accepted side: reads the original destination, then has the sidecar open the upstream side.
    A connection accepted after a peek comes with its ``destination`` (and, at an east-west gateway,
    its ``sni``) already read off the raw socket."""

    def __init__(self, sidecar: Sidecar, direction: str, destination: tuple[str, int] | None = None, sni: str | None = None) -> None:
        super().__init__(None, upstream=False)
        self.sidecar, self.direction, self.destination, self.sni = sidecar, direction, destination, sni

    def connection_made(self, transport) -> None:
        transport.pause_reading()  # nothing is read until the upstream connection exists
        self.transport = transport
        destination = self.destination or original_destination(transport.get_extra_info("socket"))
        hop = Hop(self.sidecar.pod, self.direction, _address(transport.get_extra_info("peername")), _address(destination), sni=self.sni,
                  peer_identity=_spiffe_id(transport.get_extra_info("peercert")))
        self.splice = _Splice(self.sidecar, hop, self)
        self.sidecar.tasks.spawn(self.sidecar.connect_upstream(self.splice, destination))


def _spiffe_id(certificate: dict | None) -> str | None:
    uris = [value for kind, value in (certificate or {}).get("subjectAltName", ()) if kind == "URI"]
    return uris[0] if len(uris) == 1 else None


class _ProxyProtocolDownstream(_Downstream):
    """The global sidecar's accepted side: the original destination is the PROXY line's, not SO_ORIGINAL_DST."""

    def connection_made(self, transport) -> None:
        self.transport, self.header, self.splice = transport, b"", None

    def eof_received(self) -> bool:
        return self.splice is not None and super().eof_received()  # False before the header: close

    def connection_lost(self, exc) -> None:
        if self.splice is not None:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.splice is not None:
            return super().data_received(data)
        self.header += data
        line, found, rest = self.header.partition(b"\r\n")
        if not found and len(self.header) <= PROXY_V1_MAX:
            return None
        hop = Hop(self.sidecar.pod, self.direction, _address(self.transport.get_extra_info("peername")), "")
        self.splice = _Splice(self.sidecar, hop, self)
        try:
            source, destination = read_proxy_protocol(line + found)
        except ValueError as error:
            self.transport.close()
            return self.splice.finish(str(error))
        hop.original_dst, hop.source = _address(destination), _address(source)
        self.transport.pause_reading()
        self.splice.forward(False, rest)  # counted, and kept until the upstream connection exists
        self.sidecar.tasks.spawn(self.sidecar.connect_upstream(self.splice, destination, forward=True))
        return None


class Sidecar:
    """The outbound (15001) and inbound (15006) listeners of one pod's sidecar; a global sidecar also
    has ``global_port``. ``services`` is a ServiceTable, or anything with its ``upstream`` (in xDS
    mode an object whose ``table`` attribute is the latest OutboundTable: ``meshlab.lab.xdsclient``)."""

    def __init__(self, pod: str, services, log=None, inbound_source: str | None = INBOUND_PASSTHROUGH_SOURCE, mark: int | None = None,
                 tls: MutualTls | None = None, dataplane=None) -> None:
        self.pod, self.services, self.inbound_source, self.mark, self.tls = pod, services, inbound_source, mark, tls
        self.dataplane = dataplane  # the HTTP side (meshlab.lab.dataplane.DataPlane): None keeps the proxy at layer 4
        self.stream = log or sys.stdout
        self.lock = threading.Lock()  # the xDS client logs from its own thread
        self.listeners: list[socket.socket] = []  # those served by peeking accept loops
        self.state = "LIVE"  # Envoy's server state, as /ready reports it: LIVE, then DRAINING
        self.graceful_drain = False
        self.tasks = TaskSet()  # connections being accepted, upstream connections being opened

    def log(self, record: dict) -> None:
        with self.lock:
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()

    async def listen(self, outbound_port: int, inbound_port: int, global_port: int | None = None, eastwest_port: int | None = None) -> None:
        """Bind the listeners: outbound; inbound (peeking for TLS when the proxy has certificates); the
        global sidecar's; the east-west gateway's (peeking for the SNI)."""
        loop = asyncio.get_running_loop()
        await loop.create_server(lambda: _Downstream(self, "outbound"), "0.0.0.0", outbound_port, reuse_address=True, backlog=1024)
        if self.tls is None and self.dataplane is None:
            await loop.create_server(lambda: _Downstream(self, "inbound"), "0.0.0.0", inbound_port, reuse_address=True, backlog=1024)
        else:
            self.inbound_listener = self._peeking(inbound_port, self._accept_inbound)
        if self.dataplane is not None:
            await AdminServer(self).listen()
        if global_port is not None:
            await loop.create_server(lambda: _ProxyProtocolDownstream(self, "inbound"), "0.0.0.0", global_port, reuse_address=True, backlog=1024)
        if eastwest_port is not None:
            self._peeking(eastwest_port, self._accept_eastwest)

    def _peeking(self, port: int, accept) -> asyncio.Task:
        """A listener whose connections are each peeked at before a protocol is chosen for them."""
        listener = socket.create_server(("0.0.0.0", port), backlog=1024, reuse_port=False)
        listener.setblocking(False)
        self.listeners.append(listener)
        return self.tasks.spawn(self._accepting(listener, accept))

    async def _accepting(self, listener: socket.socket, accept) -> None:
        loop = asyncio.get_running_loop()
        while True:
            connection, peer = await loop.sock_accept(listener)
            self.tasks.spawn(accept(connection, peer))

    async def _accept_inbound(self, connection: socket.socket, peer: tuple[str, int]) -> None:
        """Istio's inbound listener in PERMISSIVE mode: mutual TLS when a ClientHello comes, plaintext
        otherwise; a port whose filter chain has an HTTP connection manager is served as HTTP."""
        destination = ("", 0)
        try:
            destination = original_destination(connection)
            head = await peek(connection) if self.tls is not None or self.dataplane is not None else b""
            tls = self.tls.server if self.tls is not None and looks_like_tls(head) else None
            if self.dataplane is not None:
                alpn = () if tls else http_protocols(head)
                if (http := self.dataplane.http_chain(destination, peer, "tls" if tls else "raw_buffer", alpn)) is not None:
                    return await self._serve_http(connection, destination, tls, http)
            await asyncio.get_running_loop().connect_accepted_socket(lambda: _Downstream(self, "inbound", destination), connection, ssl=tls)
        except (OSError, TimeoutError) as error:
            self._refused(connection, Hop(self.pod, "inbound", _address(peer), _address(destination)),
                          f"TLS handshake failed: {_reason(error)}" if isinstance(error, ssl.SSLError) else str(error))

    async def _accept_eastwest(self, connection: socket.socket, peer: tuple[str, int]) -> None:
        """AUTO_PASSTHROUGH: the ClientHello's SNI names the service; the TLS goes on untouched."""
        here = connection.getsockname()
        try:
            head = await peek(connection)
            sni = server_name(head) if looks_like_tls(head) else None
            if sni is None:
                raise ValueError("no SNI: an east-west gateway passes on only TLS connections that name a service (outbound_.<port>_._.<host>)")
            await asyncio.get_running_loop().connect_accepted_socket(lambda: _Downstream(self, "eastwest", here, sni), connection)
        except (OSError, TimeoutError, ValueError) as error:
            self._refused(connection, Hop(self.pod, "eastwest", _address(peer), _address(here)), str(error))

    async def _serve_http(self, connection: socket.socket, destination: tuple[str, int], tls: ssl.SSLContext | None, http) -> None:
        """Envoy's HCM on an inbound connection: its requests go to the app from 127.0.0.6 over one connection."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        protocol = asyncio.StreamReaderProtocol(reader)
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, connection, ssl=tls)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        local = (self.inbound_source, 0) if self.inbound_source else None

        async def dial() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            return await asyncio.open_connection(sock=await self._dial(*destination, local))

        try:
            await self.dataplane.serve(http, reader, writer, dial, "https" if tls else "http", self, destination)
        except Exception as error:  # noqa: BLE001 (a fault in the HTTP side ends this connection, logged; the proxy goes on)
            writer.close()
            self.log({"event": "error", "where": "http", "destination": _address(destination), "message": f"{type(error).__name__}: {error}"})

    def drain(self, inbound_only: bool, graceful: bool) -> None:
        """Envoy's /drain_listeners: graceful, the inbound listener stays open and each HTTP connection
        is closed after its current response (``connection: close``); otherwise the inbound listener
        stops accepting now. ``inbound_only`` (what pilot-agent asks) leaves the outbound side alone;
        without it the lab's proxy drains only inbound too, and says so in its log."""
        self.state, self.graceful_drain = "DRAINING", graceful
        if not graceful and getattr(self, "inbound_listener", None) is not None:
            self.inbound_listener.cancel()
        self.log({"event": "drain", "inbound_only": inbound_only, "graceful": graceful})

    def prometheus(self) -> str:
        """What /stats/prometheus prints: Envoy's server state gauge, then the HTTP side's counters and the
        Wasm modules' own metrics."""
        state = 0 if self.state == "LIVE" else 1  # Envoy's server.state: 0 live, 1 draining
        return f"# TYPE envoy_server_state gauge\nenvoy_server_state {state}\n" + (self.dataplane.prometheus() if self.dataplane else "")

    def config_dump(self, query: dict) -> str:
        """/config_dump: the resources the proxy runs by, as Envoy's admin prints them."""
        return self.dataplane.config_dump(self, query)

    async def _dial(self, host: str, port: int, local: tuple[str, int] | None) -> socket.socket:
        """A connected upstream socket (marked, bound to ``local`` when given), as the proxy's own."""
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            upstream.setblocking(False)
            if self.mark is not None:
                upstream.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self.mark)
            if local:
                upstream.bind(local)
            await asyncio.get_running_loop().sock_connect(upstream, (host, port))
        except OSError:
            upstream.close()
            raise
        return upstream

    def _refused(self, connection: socket.socket, hop: Hop, why: str) -> None:
        """A connection refused before it was spliced, logged as a hop with the reason."""
        connection.close()
        hop.error = why
        self.log({"event": "hop", **asdict(hop)})

    def table(self):
        """The table in force now (in xDS mode the client's latest)."""
        return getattr(self.services, "table", self.services)

    async def connect_upstream(self, splice: _Splice, destination: tuple[str, int], forward: bool = False) -> None:
        """Connect the upstream side. ``forward``: the global sidecar's, routed by its table, with no
        fallback of its own (what it was not told about passes through to the destination)."""
        loop = asyncio.get_running_loop()
        hop = splice.hop
        preamble = b""
        local = report = None
        if hop.direction == "inbound" and not forward:
            host, port = destination
            local = (self.inbound_source, 0) if self.inbound_source else None
        else:
            try:
                table = self.table()
                chosen = table.by_sni(hop.sni) if hop.direction == "eastwest" else table.upstream(*destination, fallback=not forward)
                if chosen.sni and self.tls is None:
                    raise LookupError(f"cluster {chosen.cluster} wants mutual TLS with {chosen.host}:{chosen.port}, and this proxy has no certificate")
            except LookupError as error:
                splice.down.transport.close()
                return splice.finish(str(error))
            host, port, hop.service, hop.upstream_cluster, report = chosen.host, chosen.port, chosen.service, chosen.cluster, chosen.report
            if chosen.sni:
                hop.sni = chosen.sni
            if chosen.proxy_protocol:
                preamble = proxy_protocol_line(splice.down.transport.get_extra_info("peername"), destination)
        hop.upstream = f"{host}:{port}"
        upstream = None
        try:
            upstream = await self._dial(host, port, local)
            tls = {"ssl": self.tls.client, "server_hostname": hop.sni} if hop.direction == "outbound" and hop.sni else {}
            transport, _ = await loop.create_connection(lambda: splice.up, sock=upstream, **tls)
        except OSError as error:
            if upstream is not None:
                upstream.close()
            splice.down.transport.close()
            if report is not None:
                report("connect_failed")
            splice.finish(f"connect to {host}:{port} failed: {_reason(error)}")
            return
        if report is not None:
            report(None)
        hop.upstream_source = _address(transport.get_extra_info("sockname"))
        if hop.direction == "outbound" and hop.sni:
            hop.peer_identity = _spiffe_id(transport.get_extra_info("peercert"))
        if splice.down.transport.is_closing():  # the client gave up while we connected
            transport.close()
        else:
            if preamble:
                transport.write(preamble)
            splice.connected()


def _reason(error: OSError) -> str:
    """An error as OpenSSL or the kernel put it (a refused certificate: the verification message)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"{error.reason}: {error.verify_message}"
    return str(getattr(error, "reason", None) or error.strerror or error)


def _drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (as Envoy-like proxies want a fast loop), asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(pod: str, services_file: Path | None, uid: int | None, gid: int | None, outbound_port: int = 15001, inbound_port: int = 15006,
        inbound_source: str | None = INBOUND_PASSTHROUGH_SOURCE, mark: int | None = None, xds: dict | None = None,
        dataplane: Path | None = None) -> None:
    """Serve until SIGTERM. Call as root inside the pod's (or, for a per-node proxy, the node's)
    network namespace; a per-node proxy connects to pods from its own address (``inbound_source`` None).
    ``uid`` None keeps the caller's uid (a lab without root, where 1337 is not mapped); ``mark``
    then sets SO_MARK on every upstream socket, which the pod's rules match instead of the uid.
    ``xds`` (``{"server": "ip:port", "node": "namespace/name", "labels": {...}, "global_port": int | None,
    "eastwest_port": int | None, "tls": {"chain": path, "key": path, "bundle": path} | None}``) takes the
    configuration from the control plane instead of ``services_file``; with ``global_port`` the proxy
    is the global sidecar, with ``eastwest_port`` an east-west gateway, with ``tls`` it speaks mutual
    TLS (its files are read now, as root). ``meshlab.lab.xdsclient`` must be imported before: it is
    not read once the proxy runs as uid 1337. ``dataplane``, the pod's data-plane file
    (``meshlab.lab.dataplane``), gives the proxy its HTTP side and Envoy's admin ports."""
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    xds = xds or {}
    tls = MutualTls.load(*(Path(xds["tls"][part]) for part in ("chain", "key", "bundle"))) if xds.get("tls") else None
    sidecar = Sidecar(pod, ServiceTable(services_file), inbound_source=inbound_source, mark=mark, tls=tls)
    if dataplane is not None:
        from meshlab.lab.dataplane import DataPlane

        sidecar.dataplane = DataPlane(dataplane, sidecar.log)
    if xds:
        from meshlab.lab.xdsclient import AdsClient

        sidecar.services = AdsClient(xds["server"], xds["node"], xds.get("labels", {}), sidecar.log)
    loop.run_until_complete(sidecar.listen(outbound_port, inbound_port, xds.get("global_port"), xds.get("eastwest_port")))
    if uid is not None:
        _drop_privileges(uid, gid)
    if xds:
        sidecar.services.start()
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.set_exception_handler(lambda _, context: sidecar.log({"event": "error", "message": context.get("message"), "exception": repr(context.get("exception"))}))
    sidecar.log({"event": "ready", "pod": pod, "outbound_port": outbound_port, "inbound_port": inbound_port, "uid": os.getuid(), "gid": os.getgid(), "mark": mark, "pid": os.getpid()})
    loop.run_forever()

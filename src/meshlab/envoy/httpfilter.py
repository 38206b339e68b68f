"""Envoy's HTTP filter chain, as each filter sees one request (one "stream").

Envoy's HTTP connection manager (HCM) runs a listener's ``http_filters`` in order on the request
("decoding": first to last, the router last of all) and in reverse order on the response
("encoding"). A filter may change the headers, or stop the chain and answer itself
(``sendLocalReply``: a local reply, then encoded by the filters before it, as Envoy does). When the
stream ends each filter is told, and the access loggers read the stream's record.

Envoy's header maps hold lower-case names; the request's pseudo-headers ``:method``, ``:path``,
``:authority``, ``:scheme`` and the response's ``:status`` are entries of the same maps, which is
how proxy-wasm modules see them.

    Headers      an HTTP header map in Envoy's form (lower-case names, pseudo-headers included)
    LocalReply   a response a filter sends instead of the upstream's
    FilterFailure  a filter could not run (its Wasm VM trapped, say); the HCM applies its fail policy
    StreamInfo   what Envoy knows of a finished stream: what access logs and tracers read
    FilterStream one stream's state inside one filter (the callbacks the HCM makes)
    HttpFilter   a configured filter: its name and a FilterStream per request
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class Headers:
    """An ordered multimap of lower-case names to values, as Envoy's HeaderMap (names are folded to
    lower case when set, as HTTP/2 and Envoy require)."""

    def __init__(self, pairs: list[tuple[str, str]] | None = None) -> None:
        self.pairs: list[tuple[str, str]] = [(name.lower(), value) for name, value in pairs or []]

    def get(self, name: str) -> str | None:
        """The first value of ``name`` (Envoy's ``get``), None when absent."""
        name = name.lower()
        return next((value for key, value in self.pairs if key == name), None)

    def add(self, name: str, value: str) -> None:
        """Append one more value (``addCopy``): a header may repeat."""
        self.pairs.append((name.lower(), value))

    def set(self, name: str, value: str) -> None:
        """Replace every value of ``name`` by one (``setCopy``), in the first one's place."""
        name = name.lower()
        kept, placed = [], False
        for key, old in self.pairs:
            if key != name:
                kept.append((key, old))
            elif not placed:
                kept.append((key, value))
                placed = True
        if not placed:
            kept.append((name, value))
        self.pairs = kept

    def remove(self, name: str) -> None:
        name = name.lower()
        self.pairs = [(key, value) for key, value in self.pairs if key != name]

    def regular(self) -> list[tuple[str, str]]:
        """The headers without the pseudo-headers: what goes on an HTTP/1.1 wire."""
        return [(key, value) for key, value in self.pairs if not key.startswith(":")]

    def __repr__(self) -> str:
        return f"Headers({self.pairs!r})"


@dataclass
class LocalReply:
    """A response made by a filter (Envoy's ``sendLocalReply``): ``details`` is Envoy's
    %RESPONSE_CODE_DETAILS% for it, e.g. ``wasm_fail_stream`` or what a proxy-wasm module named;
    ``response_flags`` the %RESPONSE_FLAGS% the filter set."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    details: str = "local_reply"
    response_flags: str = "-"  # Envoy's short flag the filter sets with it, e.g. "RBAC" (access denied)


class FilterFailure(Exception):
    """A filter could not do its work on this stream (a Wasm VM that trapped or could not be loaded).
    The HCM answers 503 or lets the stream pass, as the filter's fail policy says; ``details`` is the
    local reply's %RESPONSE_CODE_DETAILS% (Envoy's Wasm filter says ``wasm_fail_stream``)."""

    def __init__(self, message: str, details: str = "wasm_fail_stream") -> None:
        super().__init__(message)
        self.details = details


@dataclass
class StreamInfo:
    """Envoy's StreamInfo of one finished request, in the names of Envoy's access-log command
    operators (``%START_TIME%``, ``%RESPONSE_CODE%``, ``%RESPONSE_FLAGS%``, ...)."""

    start_time: datetime
    request_headers: Headers
    response_headers: Headers | None = None
    response_code: int = 0
    response_code_details: str = ""
    response_flags: str = "-"  # Envoy's short flags, e.g. "UF", "NR"; "-" when none
    protocol: str = "HTTP/1.1"
    bytes_received: int = 0
    bytes_sent: int = 0
    duration_ms: int = 0
    upstream_service_time_ms: int | None = None
    upstream_host: str | None = None
    upstream_cluster: str | None = None
    upstream_local_address: str | None = None
    downstream_remote_address: str = ""
    downstream_local_address: str = ""
    route_name: str | None = None
    requested_server_name: str | None = None
    upstream_transport_failure_reason: str | None = None
    connection_termination_details: str | None = None


class FilterStream(Protocol):
    """One request inside one filter. Each callback may change what it is given and returns None to
    let the chain go on, or a LocalReply to stop it and answer; it raises FilterFailure when the
    filter itself failed. Bodies are handed over whole (the lab's HCM buffers HTTP/1.1 bodies)."""

    def request_headers(self, headers: Headers, end_stream: bool) -> LocalReply | None: ...

    def request_body(self, body: bytearray, end_stream: bool) -> LocalReply | None: ...

    def response_headers(self, headers: Headers, end_stream: bool) -> LocalReply | None: ...

    def response_body(self, body: bytearray, end_stream: bool) -> LocalReply | None: ...

    def done(self, info: StreamInfo) -> None:
        """The stream is over (proxy-wasm's on_done, on_log, on_delete; an access logger's log)."""


class HttpFilter(Protocol):
    """A filter as a listener's ``http_filters`` configure it: ``name`` is Envoy's (e.g.
    ``envoy.filters.http.wasm`` or the WasmPlugin's ``namespace.name``), ``fail_open`` whether a
    FilterFailure lets the request pass (True) or answers 503 (False)."""

    name: str
    fail_open: bool

    def new_stream(self) -> FilterStream: ...

"""Envoy's access logs: a format string of command operators, filled in from a finished stream.

An access log line is Envoy's substitution format string (envoy.config.core.v3.SubstitutionFormatString)
with each ``%OPERATOR(argument):length%`` replaced by what the stream's StreamInfo says, "-" where
it says nothing. A JSON format is a map of keys to such strings; each value that is one operator
alone keeps its type (a number stays a number, nothing becomes null), and the keys come out sorted
(substitution_format_string.proto, go-control-plane envoy v1.38.0: json_format renders "strings,
numbers, or boolean values as appropriate"; "the properties are always sorted"). With
``omit_empty_values`` nothing is written for what is absent: "" in text, no key in JSON (same proto).
The format is compiled once (unknown operators are refused then) and filled per request.

    ISTIO_TEXT_FORMAT   Istio's default TEXT format (meshConfig accessLogFormat "")
    ISTIO_JSON_FORMAT   Istio's default JSON format: the same operators under snake_case keys
    OPERATORS           the command operators meshlab knows, each with what it reads
    FormatError         a format string that Envoy would refuse; names the operator and what is accepted
    TextFormatter       a compiled text format: ``format(info) -> str``
    JsonFormatter       a compiled JSON format: ``format(info) -> str`` (one JSON object a line)
    AccessLog           what the HCM calls once per finished stream: ``log(info)``
    FileAccessLog       envoy.access_loggers.file: a formatter writing lines to a file or a stream
    from_mesh_config    meshConfig's accessLogFile/accessLogEncoding/accessLogFormat -> a FileAccessLog or None (off)
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import IO, Protocol

from meshlab.envoy.httpfilter import Headers, StreamInfo

#: Istio's default text format, newline included (EnvoyTextLogFormat, pilot/pkg/model/telemetry_logging.go,
#: istio.io/istio at the pinned 1.30.3 commit).
ISTIO_TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
    '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% '
    '%BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% '
    "%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)

#: Istio's default JSON format (EnvoyJSONLogFormatIstio, same file and commit as ISTIO_TEXT_FORMAT).
ISTIO_JSON_FORMAT: dict[str, str] = {
    "start_time": "%START_TIME%",
    "route_name": "%ROUTE_NAME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
    "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
}

#: Envoy's default %START_TIME% rendering: RFC 3339 in UTC with milliseconds, e.g.
#: 2026-11-30T20:41:07.123Z (Envoy's access log docs, "Format Rules": %START_TIME% default format
#: ``%Y-%m-%dT%H:%M:%E3SZ``).
START_TIME_DEFAULT = "%Y-%m-%dT%H:%M:%E3SZ"

Value = str | int | None


def _without_port(address: str | None) -> str | None:
    """``10.0.0.1:80`` -> ``10.0.0.1``; ``[::1]:80`` -> ``::1`` (Envoy's ..._WITHOUT_PORT operators)."""
    if not address:
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return address
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _header(headers: Headers | None, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` present in ``headers`` (``X?Y``: X, else Y)."""
    if headers is None:
        return None
    for name in names:
        value = headers.get(name)
        if value is not None:
            return value
    return None


def _without_query(value: str | None) -> str | None:
    """A path without its query string (envoy.formatter.req_without_query, which Istio adds when a format uses it)."""
    return value.split("?", 1)[0] if value else value


def _start_time(info: StreamInfo, pattern: str | None) -> str:
    """%START_TIME(pattern)% in UTC: strftime plus Envoy's ``%E3S``/``%3f`` (milliseconds; likewise 6 and 9 digits)."""
    moment = info.start_time if info.start_time.tzinfo else info.start_time.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    micros = f"{moment.microsecond:06d}"
    fraction = {"3": micros[:3], "6": micros, "9": micros + "000"}

    def expand(match: re.Match[str]) -> str:
        digits = match.group(2)
        return (moment.strftime("%S") + "." + fraction[digits]) if match.group(1) == "E" else fraction[digits]

    return moment.strftime(re.sub(r"%(E)?([369])[Sf]", lambda m: expand(m).replace("%", "%%"), pattern or START_TIME_DEFAULT))


#: Each operator and what it reads from a finished stream, given its argument (None when it has none).
OPERATORS: dict[str, Callable[[StreamInfo, str | None], Value]] = {
    "START_TIME": _start_time,
    "PROTOCOL": lambda info, _: info.protocol or None,
    "RESPONSE_CODE": lambda info, _: info.response_code,
    "RESPONSE_FLAGS": lambda info, _: info.response_flags or "-",
    "RESPONSE_CODE_DETAILS": lambda info, _: info.response_code_details or None,
    "CONNECTION_TERMINATION_DETAILS": lambda info, _: info.connection_termination_details,
    "UPSTREAM_TRANSPORT_FAILURE_REASON": lambda info, _: info.upstream_transport_failure_reason,
    "BYTES_RECEIVED": lambda info, _: info.bytes_received,
    "BYTES_SENT": lambda info, _: info.bytes_sent,
    "DURATION": lambda info, _: info.duration_ms,
    "UPSTREAM_HOST": lambda info, _: info.upstream_host,
    "UPSTREAM_CLUSTER": lambda info, _: info.upstream_cluster,
    "UPSTREAM_CLUSTER_RAW": lambda info, _: info.upstream_cluster,
    "UPSTREAM_LOCAL_ADDRESS": lambda info, _: info.upstream_local_address,
    "DOWNSTREAM_LOCAL_ADDRESS": lambda info, _: info.downstream_local_address or None,
    "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT": lambda info, _: _without_port(info.downstream_local_address),
    "DOWNSTREAM_REMOTE_ADDRESS": lambda info, _: info.downstream_remote_address or None,
    "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": lambda info, _: _without_port(info.downstream_remote_address),
    "REQUESTED_SERVER_NAME": lambda info, _: info.requested_server_name,
    "ROUTE_NAME": lambda info, _: info.route_name,
    "REQ": lambda info, names: _header(info.request_headers, tuple((names or "").split("?"))),
    "RESP": lambda info, names: _header(info.response_headers, tuple((names or "").split("?"))),
    "REQ_WITHOUT_QUERY": lambda info, names: _without_query(_header(info.request_headers, tuple((names or "").split("?")))),
}

#: Operators that need an argument in parentheses (a header name, ``X?Y`` for X else Y).
HEADER_OPERATORS = frozenset({"REQ", "RESP", "REQ_WITHOUT_QUERY"})

_COMMAND = re.compile(r"%([A-Z_]+)(?:\(([^)]*)\))?(?::(\d+))?%")


class FormatError(ValueError):
    """A format string Envoy would refuse: the message names the operator and what is accepted."""


@dataclass(frozen=True)
class _Command:
    """One ``%OPERATOR(argument):length%`` of a format."""

    operator: str
    argument: str | None
    length: int | None

    def value(self, info: StreamInfo) -> Value:
        found = OPERATORS[self.operator](info, self.argument)
        if isinstance(found, str) and self.length is not None:
            return found[: self.length]
        return found


def _command(match: re.Match[str]) -> _Command:
    operator, argument, length = match.group(1), match.group(2), match.group(3)
    if operator not in OPERATORS:
        raise FormatError(f"unknown command operator %{operator}% in access log format; meshlab knows {', '.join(sorted(OPERATORS))}")
    if operator in HEADER_OPERATORS and not argument:
        raise FormatError(f"%{operator}% needs a header name, e.g. %{operator}(X-REQUEST-ID)% or %{operator}(X?Y):N%")
    if argument is not None and operator in HEADER_OPERATORS and argument.count("?") > 1:
        raise FormatError(f"%{operator}({argument})%: at most one alternative header (X?Y) is accepted")
    if argument is not None and operator not in HEADER_OPERATORS and operator != "START_TIME":
        raise FormatError(f"%{operator}% takes no argument, got ({argument}); only REQ, RESP, REQ_WITHOUT_QUERY and START_TIME do")
    return _Command(operator, argument.lower() if operator in HEADER_OPERATORS and argument else argument, int(length) if length else None)


def _compile(text: str) -> list[str | _Command]:
    """Literal text and commands, in order; a lone or malformed ``%`` is refused."""
    parts: list[str | _Command] = []
    at = 0
    while (start := text.find("%", at)) != -1:
        match = _COMMAND.match(text, start)
        if match is None:
            raise FormatError(f"malformed command at {text[start:start + 30]!r}: expected %OPERATOR%, %OPERATOR(ARG)% or %OPERATOR(ARG):N%")
        parts.extend([text[at:start], _command(match)])
        at = match.end()
    parts.append(text[at:])
    return [part for part in parts if part != ""]


def _fill(parts: list[str | _Command], info: StreamInfo, absent: str) -> str:
    return "".join(part if isinstance(part, str) else _text(part.value(info), absent) for part in parts)


def _text(value: Value, absent: str) -> str:
    return absent if value is None or value == "" else str(value)


class TextFormatter:
    """A text format compiled once; ``format`` fills it for one stream ("-" for what is absent, or
    nothing with ``omit_empty_values``)."""

    def __init__(self, text: str, omit_empty_values: bool = False) -> None:
        self.text = text
        self._absent = "" if omit_empty_values else "-"
        self._parts = _compile(text)

    def format(self, info: StreamInfo) -> str:
        return _fill(self._parts, info, self._absent)


class JsonFormatter:
    """A JSON format compiled once: a value that is one command keeps its type (null when absent),
    a value mixing text and commands is text ("-" for what is absent); keys are sorted; with
    ``omit_empty_values`` a key whose value is null is left out."""

    def __init__(self, fields: dict[str, str], omit_empty_values: bool = False) -> None:
        for key, value in fields.items():
            if not isinstance(value, str):
                raise FormatError(f"JSON access log field {key!r} must be a format string, got {type(value).__name__}")
        self.fields = dict(fields)
        self.omit_empty_values = omit_empty_values
        self._compiled = {key: _compile(value) for key, value in fields.items()}

    def format(self, info: StreamInfo) -> str:
        record: dict[str, Value] = {}
        for key, parts in self._compiled.items():
            if len(parts) == 1 and isinstance(parts[0], _Command):
                found = parts[0].value(info)
                record[key] = None if found == "" else found
            else:
                record[key] = _fill(parts, info, "-")
        if self.omit_empty_values:
            record = {key: value for key, value in record.items() if value is not None}
        return json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n"


class AccessLog(Protocol):
    """An access logger as the HCM sees it: told once per finished stream."""

    def log(self, info: StreamInfo) -> None: ...


class FileAccessLog:
    """envoy.access_loggers.file: each finished stream's line appended to ``path`` ("/dev/stdout"
    writes to this process's stdout) or to an open text stream. Lines are written whole under a lock,
    since the HCM may log from several connections' threads."""

    def __init__(self, path: str | IO[str], formatter: TextFormatter | JsonFormatter) -> None:
        self.formatter = formatter
        self._lock = threading.Lock()
        self._owned = isinstance(path, str) and path != "/dev/stdout"
        if isinstance(path, str):
            self.path = path
            self._stream: IO[str] = sys.stdout if path == "/dev/stdout" else Path(path).open("a", encoding="utf-8")
        else:
            self.path, self._stream = getattr(path, "name", "<stream>"), path

    def log(self, info: StreamInfo) -> None:
        line = self.formatter.format(info)
        with self._lock:
            self._stream.write(line)
            self._stream.flush()

    def close(self) -> None:
        """Close the file this logger opened (a stream it was handed, and stdout, stay open)."""
        if self._owned:
            self._stream.close()


def from_mesh_config(access_log_file: str | IO[str], encoding: str = "TEXT", access_log_format: str = "") -> FileAccessLog | None:
    """What Istio makes of meshConfig's accessLogFile, accessLogEncoding and accessLogFormat
    (FileAccessLogFromMeshConfig and fileAccessLogFormat, pilot/pkg/model/telemetry_logging.go): no
    file means no access log; TEXT takes the format given or Istio's, adding the newline Istio adds
    when missing; JSON takes a JSON object of keys to format strings, or Istio's. Where Istio logs an
    error and falls back to its default JSON format on an unparsable accessLogFormat, meshlab refuses
    it, so that the reader sees the mistake."""
    if access_log_file == "":
        return None
    if encoding == "TEXT":
        text = access_log_format or ISTIO_TEXT_FORMAT
        return FileAccessLog(access_log_file, TextFormatter(text if text.endswith("\n") else text + "\n"))
    if encoding == "JSON":
        if not access_log_format:
            return FileAccessLog(access_log_file, JsonFormatter(ISTIO_JSON_FORMAT))
        try:
            fields = json.loads(access_log_format)
        except json.JSONDecodeError as error:
            raise FormatError(f"accessLogFormat is not JSON ({error}); with accessLogEncoding JSON give an object of keys to format strings") from None
        if not isinstance(fields, dict):
            raise FormatError("accessLogFormat with accessLogEncoding JSON must be a JSON object of keys to format strings")
        return FileAccessLog(access_log_file, JsonFormatter(fields))
    raise FormatError(f"accessLogEncoding {encoding!r} is not known; accepted: TEXT, JSON")

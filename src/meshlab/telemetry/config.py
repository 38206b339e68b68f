"""The HTTP connection manager's telemetry settings as Envoy's configuration carries them, both ways.

Istio's Telemetry API (or meshConfig) ends up in each HCM as ``access_log`` entries and a
``tracing`` block; the proxy builds its loggers and tracer from those. meshlab's control plane
writes them here, and the lab sidecar reads them back into ``meshlab.envoy.accesslog``'s and
``meshlab.telemetry``'s objects, so the configuration a reader inspects is the one that runs.

    FILE_LOGGER, GRPC_LOGGER, OTEL_TRACER   the extension names Envoy registers them under
    file_access_log     envoy.access_loggers.file: a path and a text or JSON format
    grpc_access_log     envoy.access_loggers.http_grpc: Envoy's ALS, streamed to a collector
    tracing             the HCM's Tracing: random sampling percentage, OpenTelemetry over gRPC
    access_logs_from    an HCM's access_log entries -> loggers (FileAccessLog, HttpGrpcAccessLog)
    tracer_from         an HCM's tracing -> a Tracer exporting over OTLP, or None
    with_telemetry      a listener whose every HCM has these access logs and this tracing (what the Telemetry API does)
"""

from __future__ import annotations

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import grpc_service_pb2, substitution_format_string_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.trace.v3 import http_tracer_pb2, opentelemetry_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.grpc.v3 import als_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import json_format, struct_pb2

from meshlab.envoy.accesslog import FileAccessLog, JsonFormatter, TextFormatter
from meshlab.telemetry.als import HttpGrpcAccessLog
from meshlab.telemetry.tracing import OtlpExporter, Sampling, Tracer

FILE_LOGGER = "envoy.access_loggers.file"
GRPC_LOGGER = "envoy.access_loggers.http_grpc"
OTEL_TRACER = "envoy.tracers.opentelemetry"
#: Envoy's own format for a file access log given none (Envoy's access log docs, "Default format string");
#: Istio always gives one (``meshlab.envoy.accesslog.ISTIO_TEXT_FORMAT``).
ENVOY_DEFAULT_FORMAT = ('[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
                        '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" '
                        '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n')


def file_access_log(path: str, text: str | None = None, json_fields: dict[str, str] | None = None) -> accesslog_pb2.AccessLog:
    """A file access log with a text format, or a JSON one (``json_fields``); Envoy's default format when neither."""
    config = file_pb2.FileAccessLog(path=path)
    if json_fields is not None:
        fields = struct_pb2.Struct()
        fields.update(json_fields)
        config.log_format.CopyFrom(substitution_format_string_pb2.SubstitutionFormatString(json_format=fields))
    elif text is not None:
        config.log_format.CopyFrom(substitution_format_string_pb2.SubstitutionFormatString(text_format_source={"inline_string": text}))
    entry = accesslog_pb2.AccessLog(name=FILE_LOGGER)
    entry.typed_config.Pack(config)
    return entry


def _grpc_service(target: str) -> grpc_service_pb2.GrpcService:
    """A gRPC service reached by address (Envoy's Google gRPC client): the lab has no cluster for it."""
    return grpc_service_pb2.GrpcService(google_grpc=grpc_service_pb2.GrpcService.GoogleGrpc(target_uri=target, stat_prefix="meshlab"))


def grpc_access_log(target: str, log_name: str) -> accesslog_pb2.AccessLog:
    config = als_pb2.HttpGrpcAccessLogConfig(common_config=als_pb2.CommonGrpcAccessLogConfig(
        log_name=log_name, grpc_service=_grpc_service(target), transport_api_version="V3"))
    entry = accesslog_pb2.AccessLog(name=GRPC_LOGGER)
    entry.typed_config.Pack(config)
    return entry


def tracing(random_percent: float, target: str, service_name: str) -> hcm_pb2.HttpConnectionManager.Tracing:
    """Istio's tracing block: client and overall sampling 100 %, random sampling as given
    (configureSampling, pilot/pkg/networking/core/tracing.go), spans to an OpenTelemetry collector."""
    provider = http_tracer_pb2.Tracing.Http(name=OTEL_TRACER)
    provider.typed_config.Pack(opentelemetry_pb2.OpenTelemetryConfig(grpc_service=_grpc_service(target), service_name=service_name))
    return hcm_pb2.HttpConnectionManager.Tracing(client_sampling=percent_pb2.Percent(value=100), random_sampling=percent_pb2.Percent(value=random_percent),
                                                 overall_sampling=percent_pb2.Percent(value=100), provider=provider)


def access_logs_from(hcm: hcm_pb2.HttpConnectionManager, node_id: str) -> list:
    """The loggers an HCM's ``access_log`` asks for; an access logger Envoy has that meshlab does not
    is refused with its name."""
    loggers = []
    for entry in hcm.access_log:
        if entry.typed_config.Is(file_pb2.FileAccessLog.DESCRIPTOR):
            config = file_pb2.FileAccessLog()
            entry.typed_config.Unpack(config)
            style = config.log_format
            if style.HasField("json_format"):
                formatter: TextFormatter | JsonFormatter = JsonFormatter(json_format.MessageToDict(style.json_format), style.omit_empty_values)
            elif style.HasField("text_format_source"):
                formatter = TextFormatter(style.text_format_source.inline_string, style.omit_empty_values)
            else:
                formatter = TextFormatter(ENVOY_DEFAULT_FORMAT)
            loggers.append(FileAccessLog(config.path, formatter))
        elif entry.typed_config.Is(als_pb2.HttpGrpcAccessLogConfig.DESCRIPTOR):
            config = als_pb2.HttpGrpcAccessLogConfig()
            entry.typed_config.Unpack(config)
            common = config.common_config
            loggers.append(HttpGrpcAccessLog(common.grpc_service.google_grpc.target_uri, node_id, log_name=common.log_name))
        else:
            raise ValueError(f"access log {entry.name!r} ({entry.typed_config.type_url}): meshlab's sidecar runs {FILE_LOGGER} and {GRPC_LOGGER} only")
    return loggers


def tracer_from(hcm: hcm_pb2.HttpConnectionManager, node_id: str, inbound: bool = True) -> Tracer | None:
    """The tracer an HCM's ``tracing`` asks for (None without one); OpenTelemetry is the only provider."""
    if not hcm.HasField("tracing"):
        return None
    block = hcm.tracing
    exporter = None
    if block.HasField("provider"):
        if not block.provider.typed_config.Is(opentelemetry_pb2.OpenTelemetryConfig.DESCRIPTOR):
            raise ValueError(f"tracer {block.provider.name!r}: meshlab's sidecar exports with {OTEL_TRACER} only")
        config = opentelemetry_pb2.OpenTelemetryConfig()
        block.provider.typed_config.Unpack(config)
        exporter = OtlpExporter(config.grpc_service.google_grpc.target_uri, config.service_name)
    percent = {name: getattr(block, name).value if block.HasField(name) else 100.0 for name in ("client_sampling", "random_sampling", "overall_sampling")}
    return Tracer(exporter, node_id, Sampling(client=percent["client_sampling"], random=percent["random_sampling"], overall=percent["overall_sampling"]),
                  inbound=inbound)


def with_telemetry(listener: listener_pb2.Listener, access_logs: list[accesslog_pb2.AccessLog],
                   tracing_block: hcm_pb2.HttpConnectionManager.Tracing | None) -> listener_pb2.Listener:
    """A copy of ``listener`` whose HTTP connection managers log and trace as given (Istio applies a
    Telemetry resource to every HCM of the proxies it selects)."""
    changed = listener_pb2.Listener()
    changed.CopyFrom(listener)
    for chain in changed.filter_chains:
        for network_filter in chain.filters:
            if not network_filter.typed_config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
                continue
            hcm = hcm_pb2.HttpConnectionManager()
            network_filter.typed_config.Unpack(hcm)
            del hcm.access_log[:]
            hcm.access_log.extend(access_logs)
            hcm.ClearField("tracing")
            if tracing_block is not None:
                hcm.tracing.CopyFrom(tracing_block)
            network_filter.typed_config.Pack(hcm)
    return changed

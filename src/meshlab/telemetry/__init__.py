"""The data plane's telemetry: what a proxy tells about the requests it carried, and where it sends it.

Envoy writes an access log line per request (meshlab.envoy.accesslog formats them), may stream the
same records to a log server over gRPC (Envoy's ALS), and, for the requests it samples, records a
span and exports it over OTLP to a tracing backend. All of it happens after the response is sent and
off the request path: a slow or absent collector loses telemetry, never traffic.

    batching    Batcher: a bounded queue and a sender thread, records sent by size or interval
    als         Envoy's access log service client: HttpGrpcAccessLog, http_log_entry
    tracing     the HCM's trace decision (x-request-id), W3C traceparent, Tracer, OtlpExporter
    collector   TelemetryCollector: ALS and OTLP TraceService receivers on loopback
    config      the HCM's access_log and tracing blocks: written for Envoy, read back into these loggers and tracers
"""

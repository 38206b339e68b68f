"""The merged Prometheus endpoint (15020 /stats/prometheus): one scrape gets the agent's, the proxy's
and the app's metrics, so an app's port need not be reachable by Prometheus through mutual TLS.

How pilot-agent merges (pilot/cmd/pilot-agent/status/server.go handleStats, Istio 1.30): plain
concatenation, agent first, then Envoy's 15090 /stats/prometheus, then the app's (from the pod's
``prometheus.io/port`` and ``prometheus.io/path`` annotations, which the injector moves into the
proxy's env ISTIO_PROMETHEUS_ANNOTATIONS, as ``{"scrape":..,"path":..,"port":..}``, and points the
annotations at 15020: pkg/kube/inject/webhook.go applyPrometheusMerge) last, because an
OpenMetrics app ends with ``# EOF``. The response takes the app's format (OpenMetrics 1.0.0 or
0.0.1 if the app said so, else Prometheus text 0.0.4). A source that fails is left out and counted in
``istio_agent_scrape_failures_total{type=envoy|application}``: the scrape itself never fails, so a
broken app does not cost the proxy's metrics. ``istio_agent_scrapes_total`` counts scrapes
(pilot/cmd/pilot-agent/metrics/metrics.go; the ``istio_agent_`` prefix: server.go's registry).

    TEXT_FORMAT, OPENMETRICS_1_0_0, OPENMETRICS_0_0_1   the content types the merge answers with
    Scrape             one source's answer: body and content type, or the error it gave
    AgentMetrics       the agent's own counters, in Prometheus text
    prometheus_target  ISTIO_PROMETHEUS_ANNOTATIONS -> (port, path) or None
    response_format    the content type of the merged answer, from the app's
    merge              (agent metrics, envoy scrape, app scrape) -> (content type, body)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message

from meshlab.agent.bootstrap import STATUS_PORT

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"  # server.go FmtText (expfmt.TextVersion 0.0.4)
OPENMETRICS_1_0_0 = "application/openmetrics-text; version=1.0.0; charset=utf-8"
OPENMETRICS_0_0_1 = "application/openmetrics-text; version=0.0.1; charset=utf-8"


@dataclass(frozen=True)
class Scrape:
    body: bytes = b""
    content_type: str = ""
    error: str | None = None


@dataclass
class AgentMetrics:
    scrapes: int = 0
    failures: dict[str, int] = field(default_factory=lambda: {"envoy": 0, "application": 0})

    def text(self) -> bytes:
        lines = ["# HELP istio_agent_scrapes_total The total number of scrapes.", "# TYPE istio_agent_scrapes_total counter",
                 f"istio_agent_scrapes_total {self.scrapes}",
                 "# HELP istio_agent_scrape_failures_total The total number of failed scrapes.", "# TYPE istio_agent_scrape_failures_total counter"]
        lines += [f'istio_agent_scrape_failures_total{{type="{kind}"}} {count}' for kind, count in sorted(self.failures.items())]
        return ("\n".join(lines) + "\n").encode()


def prometheus_target(annotations_json: str, status_port: int = STATUS_PORT) -> tuple[int, str] | None:
    """The app's metrics port and path from ISTIO_PROMETHEUS_ANNOTATIONS (server.go NewServer): None if unset or
    ``scrape`` is "false"; path defaults to /metrics, port to 80; the agent's own port is refused (a scrape loop)."""
    if not annotations_json:
        return None
    try:
        settings = json.loads(annotations_json)
        if settings.get("scrape") == "false":
            return None
        port = int(settings.get("port") or 80)
    except (ValueError, TypeError, AttributeError) as error:
        raise ValueError(f'ISTIO_PROMETHEUS_ANNOTATIONS {annotations_json!r}: expected JSON like {{"scrape":"true","port":"9090","path":"/metrics"}} ({error})') from error
    if port == status_port:
        raise ValueError(f"ISTIO_PROMETHEUS_ANNOTATIONS names the agent's own port {status_port}: the merge would scrape itself")
    return port, settings.get("path") or "/metrics"


def response_format(app_content_type: str) -> str:
    """server.go negotiateMetricsFormat: OpenMetrics if the app answered in it, else Prometheus text."""
    message = Message()
    message["content-type"] = app_content_type or "text/plain"
    if message.get_content_type() == "application/openmetrics-text":
        version = message.get_param("version") or ""
        if version == "1.0.0":
            return OPENMETRICS_1_0_0
        if version in ("0.0.1", ""):
            return OPENMETRICS_0_0_1
    return TEXT_FORMAT


def merge(agent: AgentMetrics, envoy: Scrape | None, app: Scrape | None) -> tuple[str, bytes]:
    """One merged scrape: counts it and any failing source, then agent + envoy + app, in the app's format."""
    agent.scrapes += 1
    for kind, scrape in (("envoy", envoy), ("application", app)):
        if scrape is not None and scrape.error is not None:
            agent.failures[kind] += 1
    content_type = response_format(app.content_type) if app is not None and app.error is None else TEXT_FORMAT
    body = agent.text()
    for scrape in (envoy, app):
        if scrape is not None and scrape.error is None:
            body += scrape.body
    return content_type, body

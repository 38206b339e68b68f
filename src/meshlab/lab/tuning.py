"""Data-plane tuning measured on a live lab: what access logs, ALS and trace sampling cost per request.

Each setting is applied to the data-plane pods (``meshlab.lab.proxyconfig.set_telemetry``), then a client
pod sends keep-alive requests through the server's sidecar; the untuned path (no access log, no tracing)
is measured in the same run, in turn with the others, so every figure is a ratio to a baseline taken on
the same machine at the same time.

    SETTINGS   the settings chapter 07 compares: (label, access log, sampling percentage or None)
    Tuned      one setting's p50 and p90 in microseconds, and its ratio to the baseline
    measure    run the settings on a lab, in rounds, each round with the baseline
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from meshlab.lab.proxyconfig import set_telemetry

SETTINGS = (
    ("access log text", "text", None), ("access log JSON", "json", None), ("access log over ALS", "als", None),
    ("tracing 0%", "off", 0.0), ("tracing 1%", "off", 1.0), ("tracing 10%", "off", 10.0), ("tracing 50%", "off", 50.0),
    ("tracing 100%", "off", 100.0),
)


@dataclass(frozen=True)
class Tuned:
    label: str
    p50_us: float
    p90_us: float
    ratio: float  # p50 over the baseline's p50


def _latencies(lab, client: str, server: str, count: int) -> list[float]:
    replies = lab.requests(client, lab.pod(server).ip, lab.pod(server).app_port, count)
    if any(reply.status != 200 for reply in replies):
        raise RuntimeError(f"requests to {server} failed while measuring: {sorted({r.status for r in replies})}")
    return [reply.latency_us for reply in replies]


def measure(lab, client: str, server: str, count: int = 1000, settings=SETTINGS, rounds: int = 3) -> list[Tuned]:
    """The baseline and each setting, ``count`` keep-alive requests each, spread over ``rounds`` rounds
    that take the settings in turn (so a slow moment of the machine falls on all of them alike), each
    run after a warm-up of a tenth as many; the lab is left untuned."""
    per_round = max(20, count // rounds)

    def run(access_log: str, sampling: float | None) -> list[float]:
        set_telemetry(lab, access_log, sampling)
        _latencies(lab, client, server, max(20, per_round // 10))
        return _latencies(lab, client, server, per_round)

    every = (("untuned (no log, no tracing)", "off", None), *settings)
    pooled: dict[str, list[float]] = {label: [] for label, _, _ in every}
    for _ in range(rounds):
        for label, access_log, sampling in every:
            pooled[label] += run(access_log, sampling)
    set_telemetry(lab, "off", None)
    base = statistics.median(pooled[every[0][0]])
    return [Tuned(label, statistics.median(latencies), statistics.quantiles(latencies, n=10)[-1], statistics.median(latencies) / base)
            for label, latencies in pooled.items()]

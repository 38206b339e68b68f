"""The debounce experiment: ServiceEntries applied to a real istiod, in a burst or spaced, its
debounced pushes counted in its own metrics, and meshlab's debounce simulator asked the same question
for the settings the istiod process has. The kind stage runs it on istiod in a cluster, the upstream
stage on istiod out of cluster against a real API server; each hands over an ``ObservedIstiod``.

A debounced push is counted by ``pilot_debounce_time``: istiod records that distribution once per
push it releases ("Delay in seconds between the first config enters debouncing and the merged push
request is pushed into the push queue", pilot/pkg/xds/monitoring.go), so its ``_count`` grows by one
per debounced push, whether or not a proxy is connected.

An event's time is when ``kubectl apply`` returned: the API server has stored the object by then and
istiod's informer hears of it within milliseconds, while the command's start is up to ~100 ms
earlier (kubectl's own start-up). One kubectl call applying a whole burst spreads its events evenly
over the call.

    ObservedIstiod  what the experiment needs of an istiod: its settings, its push count, apply, delete
    predict_pushes  how many debounced pushes the simulator releases for config changes at given times
    DebounceResult  settings, event times, measured and predicted pushes; report()
    settle          wait until the push count has not moved for a while
    burst           the experiment
    TIMELINES       the five the upstream stage runs: (name, settings, ServiceEntries, gap in ms)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from meshlab.xds.debounce import DebounceOptions
from meshlab.xds.simulate import simulate_timeline

#: What marks the experiment's ServiceEntries, so they are removed by label afterwards.
EXPERIMENT_LABEL = {"meshlab.io/experiment": "debounce"}
EXPERIMENT_SELECTOR = ",".join(f"{key}={value}" for key, value in EXPERIMENT_LABEL.items())
#: The sample whose growth counts istiod's debounced pushes.
DEBOUNCED_PUSHES = "pilot_debounce_time_count"

#: A burst and spaced changes at Istio's defaults, then gaps just under and just over a 500 ms
#: PILOT_DEBOUNCE_AFTER (kubectl's own run time, ~90 ms, varies by tens of ms: the gaps keep clear of
#: that), and a stream of changes longer than PILOT_DEBOUNCE_MAX, which releases it in pieces.
TIMELINES = (
    ("burst of 10 in one apply", DebounceOptions(100, 10_000, True), 10, 0.0),
    ("5 spaced 3x DEBOUNCE_AFTER", DebounceOptions(100, 10_000, True), 5, 300.0),
    ("5 spaced just under DEBOUNCE_AFTER", DebounceOptions(500, 10_000, True), 5, 400.0),
    ("4 spaced just over DEBOUNCE_AFTER", DebounceOptions(500, 10_000, True), 4, 650.0),
    ("10 over 2.7 s, cut by DEBOUNCE_MAX", DebounceOptions(500, 1_500, True), 10, 300.0),
)


class ObservedIstiod(Protocol):
    #: False when commands are only recorded (the kind stage's plan): nothing to wait for
    waits: bool

    def debounce(self) -> DebounceOptions:
        """The debounce settings the running istiod has."""

    def debounced_pushes(self) -> int:
        """istiod's pilot_debounce_time_count now."""

    def apply(self, manifests: list[dict]) -> None:
        """Apply with the real kubectl; returns once the API server has stored them."""

    def delete_experiment(self, namespace: str) -> None:
        """Delete the experiment's ServiceEntries (EXPERIMENT_LABEL) and wait until they are gone."""


class NotSettled(RuntimeError):
    """istiod kept pushing: the experiment needs a quiet control plane."""


def predict_pushes(settings: DebounceOptions, events_ms: list[float], push_ms: float = 0.0) -> int:
    """How many debounced pushes the simulator releases for config changes at ``events_ms``."""
    timeline = {"debounce_after_ms": settings.debounce_after_ms, "debounce_max_ms": settings.debounce_max_ms,
                "enable_eds_debounce": settings.enable_eds_debounce, "push_ms": push_ms,
                "events": [{"t_ms": t, "full": True, "reason": "config"} for t in events_ms]}
    return len(simulate_timeline(timeline)["pushes"])


@dataclass
class DebounceResult:
    settings: DebounceOptions
    events_ms: list[float]
    measured_pushes: int
    predicted_pushes: int

    @property
    def agrees(self) -> bool:
        return self.measured_pushes == self.predicted_pushes

    def report(self) -> str:
        spread = f"{self.events_ms[-1] - self.events_ms[0]:.0f} ms" if self.events_ms else "-"
        return (f"{len(self.events_ms)} ServiceEntries over {spread} (PILOT_DEBOUNCE_AFTER={self.settings.debounce_after_ms:g} ms, "
                f"PILOT_DEBOUNCE_MAX={self.settings.debounce_max_ms:g} ms): istiod pushed {self.measured_pushes} "
                f"time{'' if self.measured_pushes == 1 else 's'}, "
                f"the simulator predicts {self.predicted_pushes}")


def settle(istiod: ObservedIstiod, quiet_s: float, timeout_s: float = 60.0) -> int:
    """Wait until istiod's push count has not moved for ``quiet_s``; return it."""
    value, since, deadline = istiod.debounced_pushes(), time.monotonic(), time.monotonic() + timeout_s
    while istiod.waits and time.monotonic() - since < quiet_s:
        if time.monotonic() > deadline:
            raise NotSettled(f"istiod kept pushing for {timeout_s:.0f} s; the debounce experiment needs a quiet cluster")
        time.sleep(0.25)
        now = istiod.debounced_pushes()
        if now != value:
            value, since = now, time.monotonic()
    return value


def burst(istiod: ObservedIstiod, entries: list[dict], gap_ms: float = 0.0, quiet_s: float | None = None,
          settle_timeout_s: float = 60.0) -> DebounceResult:
    """Apply ``entries`` (all in one ``kubectl apply`` when ``gap_ms`` is 0, else one every ``gap_ms``),
    count istiod's debounced pushes, and ask the simulator the same question. istiod counts as settled
    once its push count has not moved for ``quiet_s`` (default: 2 s, or three quiet periods if
    longer), waiting at most ``settle_timeout_s``; the entries are deleted again afterwards."""
    settings = istiod.debounce()
    quiet_s = max(2.0, 3 * settings.debounce_after_ms / 1000) if quiet_s is None else quiet_s
    before = settle(istiod, quiet_s, settle_timeout_s)
    start = time.monotonic()
    if gap_ms == 0:
        istiod.apply(entries)
        window = (time.monotonic() - start) * 1000
        events = [window * i / max(len(entries) - 1, 1) for i in range(len(entries))]
    else:
        events = []
        for index, entry in enumerate(entries):
            if istiod.waits:
                time.sleep(max(0.0, start + index * gap_ms / 1000 - time.monotonic()))
            istiod.apply([entry])
            events.append((time.monotonic() - start) * 1000)
    measured = settle(istiod, quiet_s, settle_timeout_s) - before
    for namespace in sorted({entry["metadata"]["namespace"] for entry in entries}):
        istiod.delete_experiment(namespace)
    return DebounceResult(settings, events, measured, predict_pushes(settings, events))

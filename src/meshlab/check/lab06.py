"""Checks for lab 06, "Tuning the debounce".

The reader picks DEBOUNCE_AFTER, DEBOUNCE_MAX and PUSH_THROTTLE for a fixed minute of churn on 300
proxies; the check runs meshlab's simulator with those settings and verifies the objective.
"""

from __future__ import annotations

from collections.abc import Callable

from meshlab.check import CheckFailed, answer_of
from meshlab.xds import DebounceOptions
from meshlab.xds.simulate import churn, simulate_fleet

PROXIES = 300
MAX_PUSHES = 30  # in the one simulated minute
MAX_P99_MS = 2600.0


def workload():
    return churn(60_000, config_edits_per_s=0.5, endpoint_changes_per_s=20, bursts=3, burst_size=80, seed=6)


def run(settings: dict) -> dict:
    options = DebounceOptions(settings["debounce_after_ms"], settings["debounce_max_ms"])
    return simulate_fleet(PROXIES, workload(), options, throttle=settings.get("push_throttle", 0)).summary()


def check_settings(choose: Callable[[], dict]) -> None:
    settings = answer_of(choose)
    if not isinstance(settings, dict) or not {"debounce_after_ms", "debounce_max_ms"} <= set(settings):
        raise CheckFailed('choose() must return {"debounce_after_ms": ..., "debounce_max_ms": ..., "push_throttle": ...}')
    try:
        result = run(settings)
    except (TypeError, ValueError) as error:
        raise CheckFailed(f"these settings cannot be simulated: {error}") from None
    if result["pushes"] > MAX_PUSHES:
        raise CheckFailed(f"{result['pushes']} pushes in the minute; at most {MAX_PUSHES} are allowed: batch more (a longer DEBOUNCE_AFTER)")
    if result["propagation_p99_ms"] > MAX_P99_MS:
        raise CheckFailed(f"p99 propagation is {result['propagation_p99_ms']:.0f} ms; at most {MAX_P99_MS:.0f} ms is allowed: while changes never stop, "
                          "only DEBOUNCE_MAX bounds how long a batch waits")

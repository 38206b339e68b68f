"""Checks for lab 06, "Tuning the debounce".

Two exercises on one fixed minute of churn, each checked by running meshlab's simulator with the
reader's settings (DEBOUNCE_AFTER, DEBOUNCE_MAX, PUSH_THROTTLE) and naming the objective missed:

1. ``check_settings``: 300 proxies, at most 30 pushes in the minute and p99 propagation <= 3.2 s;
2. ``check_headroom`` (open: many settings pass): a saturated istiod, 2000 unscoped proxies on 2 cores,
   must keep p99 propagation <= 10 s and its busy fraction <= 75%.

``MISTAKES`` lists the objectives missed that the checks name, each with its usual cause.
"""

from __future__ import annotations

from collections.abc import Callable

from meshlab.check import CheckFailed, Mistake, answer_of
from meshlab.xds import DebounceOptions, push_throttle
from meshlab.xds.simulate import busy_minute, simulate_fleet

SETTINGS = ("debounce_after_ms", "debounce_max_ms", "push_throttle")

PROXIES = 300
MAX_PUSHES = 30  # in the one simulated minute
MAX_P99_MS = 3200.0

#: The open exercise: chapter 06's saturated istiod, with room left for a burst or a reconnect storm.
HEADROOM_PROXIES = 2000
CPUS = 2
HEADROOM_MAX_P99_MS = 10_000.0
HEADROOM_MAX_BUSY = 0.75

TOO_MANY_PUSHES = Mistake("choose", "keeps Istio's DEBOUNCE_AFTER (100 ms): too many pushes", "batch more (a longer DEBOUNCE_AFTER)")
BATCHES_WAIT = Mistake("choose", "lengthens DEBOUNCE_AFTER but keeps DEBOUNCE_MAX at 10 s: p99 too slow",
                       "while changes never stop, only DEBOUNCE_MAX bounds how long a batch waits")
THROTTLE_CONTENDS = Mistake("choose_with_headroom", "raises PUSH_THROTTLE above the automatic value: istiod too busy",
                            "more pushes in flight only contend for the cores")
TOO_MUCH_WORK = Mistake("choose_with_headroom", "keeps Istio's defaults on a saturated istiod: too busy",
                        "do less work (a longer DEBOUNCE_AFTER, with a DEBOUNCE_MAX that lets batches grow) or contend less "
                        "(a lower PUSH_THROTTLE)")
IDLE_CORES = Mistake("choose_with_headroom", "sets PUSH_THROTTLE below the number of cores: p99 too slow",
                     "fewer pushes in flight than cores leaves cores idle while pushes wait")
LATER_PAST_CORES = Mistake("choose_with_headroom", "raises PUSH_THROTTLE past the cores: p99 too slow",
                           "past the cores, more pushes in flight deliver no sooner and, contending, later")
BATCHES_WAIT_HEADROOM = Mistake("choose_with_headroom", "keeps DEBOUNCE_MAX at 10 s: p99 too slow", BATCHES_WAIT.hint + ": shorten it")
MISTAKES = (TOO_MANY_PUSHES, BATCHES_WAIT, THROTTLE_CONTENDS, TOO_MUCH_WORK, IDLE_CORES, LATER_PAST_CORES, BATCHES_WAIT_HEADROOM)


def run(settings: dict, proxies: int = PROXIES) -> dict:
    options = DebounceOptions(settings["debounce_after_ms"], settings["debounce_max_ms"])
    return simulate_fleet(proxies, busy_minute(), options, throttle=settings.get("push_throttle", 0), cpus=CPUS).summary()


def brief(settings: dict, proxies: int = PROXIES) -> str:
    """The figures the objectives name, on one line."""
    result = run(settings, proxies)
    return (f"{result['pushes']} pushes, p99 propagation {result['propagation_p99_ms']:.0f} ms, "
            f"istiod busy {result['busy_fraction']:.0%}")


def _simulated(choose: Callable[[], dict], proxies: int) -> tuple[dict, dict]:
    """The reader's settings and the simulator's summary for them, or CheckFailed saying what is wrong."""
    settings = answer_of(choose)
    if not isinstance(settings, dict) or not {"debounce_after_ms", "debounce_max_ms"} <= set(settings):
        raise CheckFailed('choose() must return {"debounce_after_ms": ..., "debounce_max_ms": ..., "push_throttle": ...}')
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise CheckFailed(f"unknown setting(s) {', '.join(sorted(unknown))}; the settings are {', '.join(SETTINGS)}")
    for key in SETTINGS:
        value = settings.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CheckFailed(f"{key} must be a number of milliseconds (push_throttle: a whole number, 0 = automatic), got {value!r}")
    if not float(settings.get("push_throttle", 0)).is_integer():
        raise CheckFailed(f"push_throttle must be a whole number of senders (0 = automatic), got {settings['push_throttle']!r}")
    settings = {**settings, "push_throttle": int(settings.get("push_throttle", 0))}
    try:
        return settings, run(settings, proxies)
    except ValueError as error:
        raise CheckFailed(f"these settings cannot be simulated: {error}") from None


def check_settings(choose: Callable[[], dict]) -> None:
    _, result = _simulated(choose, PROXIES)
    if result["pushes"] > MAX_PUSHES:
        raise CheckFailed(f"{result['pushes']} pushes in the minute; at most {MAX_PUSHES} are allowed: {TOO_MANY_PUSHES.hint}")
    if result["propagation_p99_ms"] > MAX_P99_MS:
        raise CheckFailed(f"p99 propagation is {result['propagation_p99_ms']:.0f} ms; at most {MAX_P99_MS:.0f} ms is allowed: {BATCHES_WAIT.hint}")


def check_headroom(choose: Callable[[], dict]) -> None:
    """Open: any settings that keep p99 propagation and istiod's busy fraction within bounds pass.
    A failure names every bound broken, and the usual cause for these settings."""
    settings, result = _simulated(choose, HEADROOM_PROXIES)
    automatic = push_throttle(0, CPUS)
    senders = push_throttle(settings["push_throttle"], CPUS)
    broken = []
    if result["busy_fraction"] > HEADROOM_MAX_BUSY:
        why = (f"PUSH_THROTTLE {senders} is above the automatic {automatic} for {CPUS} cores: {THROTTLE_CONTENDS.hint}"
               if senders > automatic else TOO_MUCH_WORK.hint)
        broken.append(f"istiod is busy {result['busy_fraction']:.0%} of the time; at most {HEADROOM_MAX_BUSY:.0%} is allowed: {why}")
    if result["propagation_p99_ms"] > HEADROOM_MAX_P99_MS:
        if senders < CPUS:
            why = f"PUSH_THROTTLE {senders} keeps at most {senders} of the {CPUS} cores working: {IDLE_CORES.hint}"
        elif senders > automatic:
            why = LATER_PAST_CORES.hint
        else:
            why = BATCHES_WAIT_HEADROOM.hint
        broken.append(f"p99 propagation is {result['propagation_p99_ms']:.0f} ms; at most {HEADROOM_MAX_P99_MS:.0f} ms is allowed: {why}")
    if broken:
        raise CheckFailed("; and ".join(broken))

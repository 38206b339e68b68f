"""Istio's debounce loop (pilot/pkg/xds/discovery.go, ``debounce``), driven by any Clock.

State: the merged pending request, how many events it holds, when its batch started, when the
last event came, a timer, and ``free`` (no debounced push running). Four inputs:

1. an event: with EDS debounce off, a non-full request is pushed at once, regardless of ``free``;
   otherwise it is merged in; the first event of a batch arms the timer for DEBOUNCE_AFTER and
   starts the batch (later events do not re-arm it);
2. the timer fires: the release check runs if no push is running (else the tick is dropped);
3. a debounced push finishes: ``free`` again, and the release check runs at once;
4. the release check: release when the batch is DEBOUNCE_MAX old or quiet for DEBOUNCE_AFTER (a
   push only if something is pending); otherwise re-arm for the rest of the quiet period.

So at most one debounced push runs at a time, events during a push go out right after it if the
quiet period has passed, and DEBOUNCE_MAX is only checked at ticks or push completions.

    DebounceOptions  PILOT_DEBOUNCE_AFTER, PILOT_DEBOUNCE_MAX, PILOT_ENABLE_EDS_DEBOUNCE
    Debouncer        update(request), and the push callback it calls
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from meshlab.xds.pushrequest import PushRequest


@dataclass(frozen=True)
class DebounceOptions:
    """Defaults of Istio 1.30.3 (pilot/pkg/features/tuning.go)."""

    debounce_after_ms: float = 100.0  # PILOT_DEBOUNCE_AFTER
    debounce_max_ms: float = 10_000.0  # PILOT_DEBOUNCE_MAX
    enable_eds_debounce: bool = True  # PILOT_ENABLE_EDS_DEBOUNCE

    def __post_init__(self) -> None:
        if self.debounce_after_ms < 0 or self.debounce_max_ms < 0:
            raise ValueError("debounce_after_ms and debounce_max_ms must be >= 0")

    def environment(self) -> dict[str, str]:
        """The settings as istiod's environment variables, durations in Go's format ("100ms", "10s")."""
        def duration(ms: float) -> str:
            return f"{ms / 1000:g}s" if ms >= 1000 and ms % 1000 == 0 else f"{ms:g}ms"

        return {"PILOT_DEBOUNCE_AFTER": duration(self.debounce_after_ms), "PILOT_DEBOUNCE_MAX": duration(self.debounce_max_ms),
                "PILOT_ENABLE_EDS_DEBOUNCE": str(self.enable_eds_debounce).lower()}


#: push(request, merged_events, done): start a push; call done() when it has finished.
PushFn = Callable[[PushRequest, int, Callable[[], None]], None]


class Debouncer:
    def __init__(self, clock, push: PushFn, options: DebounceOptions = DebounceOptions()) -> None:
        self.clock, self.push, self.options = clock, push, options
        self.request: PushRequest | None = None
        self.events = 0
        self.start_debounce = 0.0
        self.last_update = 0.0
        self.free = True
        self.timer = None
        self.pushes = 0

    def update(self, request: PushRequest) -> None:
        """A configuration or endpoint change arrived."""
        if not self.options.enable_eds_debounce and not request.full:
            self.push(request, 1, lambda: None)  # not debounced, and not waited for
            return
        now = self.clock.now_ms()
        self.last_update = now
        if self.events == 0:
            self._arm(self.options.debounce_after_ms)
            self.start_debounce = now
        self.events += 1
        self.request = request.merge(self.request) if self.request else request

    def _arm(self, delay_ms: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.clock.call_later(delay_ms, self._tick)

    def _tick(self) -> None:
        self.timer = None
        if self.free:
            self._release_check()

    def _push_done(self) -> None:
        self.free = True
        self._release_check()

    def _release_check(self) -> None:
        now = self.clock.now_ms()
        event_delay, quiet = now - self.start_debounce, now - self.last_update
        # With fractional times, the rest of a quiet period can be too small to move the clock at all
        # (now + rest == now); such a rest counts as passed, or the timer would fire at `now` for ever.
        # Exactly that test, and no tolerance: a live clock's `now` is large (monotonic time since boot).
        rest = self.options.debounce_after_ms - quiet
        if event_delay >= self.options.debounce_max_ms or rest <= 0 or now + rest <= now:
            if self.request is not None:
                request, events = self.request, self.events
                self.free = False
                self.request, self.events = None, 0
                self.pushes += 1
                self.push(request, events, self._push_done)
        else:
            self._arm(rest)

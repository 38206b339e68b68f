"""Two clocks for one control plane: simpy's simulated time and asyncio's real time.

The Debouncer and the push queue never read a clock or sleep themselves; they ask a Clock for the
time and for a callback later. The simulator hands them a SimClock (exact simulated milliseconds),
the live control plane an AsyncioClock, and the algorithm is the same object in both.

    Timer         a scheduled callback that can be cancelled
    SimClock      simpy's clock
    AsyncioClock  the running asyncio loop's clock
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import simpy


class Timer:
    def __init__(self) -> None:
        self.cancelled = False
        self._handle = None

    def cancel(self) -> None:
        self.cancelled = True
        if self._handle is not None:
            self._handle.cancel()


class SimClock:
    """Milliseconds of a simpy Environment."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env

    def now_ms(self) -> float:
        return self.env.now

    def call_later(self, delay_ms: float, callback: Callable[[], None]) -> Timer:
        timer = Timer()

        def wait():
            yield self.env.timeout(max(delay_ms, 0))
            if not timer.cancelled:
                callback()

        self.env.process(wait())
        return timer


class AsyncioClock:
    """Milliseconds of the running asyncio loop (monotonic)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_running_loop()

    def now_ms(self) -> float:
        return self.loop.time() * 1000

    def call_later(self, delay_ms: float, callback: Callable[[], None]) -> Timer:
        timer = Timer()
        timer._handle = self.loop.call_later(max(delay_ms, 0) / 1000, callback)
        return timer

"""Istio's push queue (pilot/pkg/xds/pushqueue.go) and push throttle, with a waiting side per clock.

A per-connection FIFO in three parts: ``pending`` (connection -> merged request), the queue order,
and ``processing``. Enqueue merges into a connection being processed, or into its pending entry
(keeping its place), or appends it. Dequeue pops the head into processing. MarkDone takes it out of
processing and, if a request was merged in meanwhile, puts it at the *tail* again.

The algorithm lives once, in PushQueue; only waiting for work differs between simpy and asyncio
(AsyncPushQueue.dequeue is a coroutine, SimPushQueue.dequeue a simpy process step).

    PushQueue       enqueue / try_dequeue / mark_done / pending
    AsyncPushQueue  dequeue(timeout) for asyncio
    SimPushQueue    dequeue(timeout) for simpy
    push_throttle   PILOT_PUSH_THROTTLE, 0 meaning automatic
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable

import simpy

from meshlab.xds.pushrequest import PushRequest, merge

#: processing[proxy] holds requests merged in while the proxy was being pushed to (None: nothing yet)
_NOTHING = None


def push_throttle(setting: int = 0, cpus: int = 2) -> int:
    """Concurrent pushes: PILOT_PUSH_THROTTLE, or when 0 (automatic, since Istio 1.21)
    min(15 + 5 * GOMAXPROCS, 100). Before: 10 in 1.2, 100 in 1.3-1.20."""
    if setting < 0:
        raise ValueError(f"PILOT_PUSH_THROTTLE must be >= 0, got {setting}")
    return setting or min(15 + 5 * cpus, 100)


class PushQueue:
    def __init__(self) -> None:
        self._pending: dict[Hashable, PushRequest] = {}
        self._order: deque[Hashable] = deque()
        self._processing: dict[Hashable, PushRequest | None] = {}

    def enqueue(self, proxy: Hashable, request: PushRequest) -> None:
        if proxy in self._processing:
            self._processing[proxy] = merge(self._processing[proxy], request)
        elif proxy in self._pending:
            self._pending[proxy] = self._pending[proxy].merge(request)
        else:
            self._pending[proxy] = request
            self._order.append(proxy)
            self._wake()

    def try_dequeue(self) -> tuple[Hashable, PushRequest] | None:
        if not self._order:
            return None
        proxy = self._order.popleft()
        self._processing[proxy] = _NOTHING
        return proxy, self._pending.pop(proxy)

    def mark_done(self, proxy: Hashable) -> None:
        request = self._processing.pop(proxy)
        if request is not None:
            self._pending[proxy] = request
            self._order.append(proxy)
            self._wake()

    def pending(self) -> int:
        return len(self._order)

    def processing(self) -> int:
        return len(self._processing)

    def _wake(self) -> None:
        """Overridden by the clock-specific queues to wake a waiting dequeue."""


class AsyncPushQueue(PushQueue):
    def __init__(self) -> None:
        super().__init__()
        self._ready = asyncio.Event()

    def _wake(self) -> None:
        self._ready.set()

    async def dequeue(self, timeout: float | None = None) -> tuple[Hashable, PushRequest] | None:
        """The next (proxy, request), or None when ``timeout`` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while (item := self.try_dequeue()) is None:
            self._ready.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._ready.wait(), remaining)
            except asyncio.TimeoutError:
                return None
        return item


class SimPushQueue(PushQueue):
    def __init__(self, env: simpy.Environment) -> None:
        super().__init__()
        self.env = env
        self._ready = env.event()

    def _wake(self) -> None:
        if not self._ready.triggered:
            self._ready.succeed()

    def dequeue(self, timeout: float | None = None):
        """A simpy step: ``item = yield from queue.dequeue()``; None after ``timeout`` ms."""
        deadline = None if timeout is None else self.env.now + timeout
        while (item := self.try_dequeue()) is None:
            if self._ready.triggered:
                self._ready = self.env.event()
            if deadline is None:
                yield self._ready
            else:
                if self.env.now >= deadline:
                    return None
                yield self._ready | self.env.timeout(deadline - self.env.now)
        return item

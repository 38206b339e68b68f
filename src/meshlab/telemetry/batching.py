"""Batching off the request path: what a proxy's telemetry exporters share.

A proxy hands each record (a finished stream's facts) to a bounded queue and goes on; a sender
thread turns it into what goes on the wire (an access log entry, a span), gathers those until a
batch is big enough or its interval is over, whichever comes first, and sends it. Building the
protobufs there, not on the request path, is most of what a proxy saves. When the queue is full the record is dropped and counted, never waited for:
telemetry must not slow the traffic it describes.

    Batcher   offer(item) -> bool, flush(timeout), close(timeout); counts dropped records, keeps the last error
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Record = TypeVar("Record")
_CLOSE = object()


class Batcher(Generic[Record]):
    """Calls ``send(batch)`` on its own thread with the records offered, each made by ``prepare``
    from what was offered, a batch at a time: when their ``size_of`` reaches ``batch_limit`` or
    ``interval_s`` after the batch's start. ``send`` counts what it wrote or lost itself; the
    Batcher counts what never got queued (``dropped``)."""

    def __init__(self, name: str, send: Callable[[list[Record]], None], interval_s: float, batch_limit: int,
                 prepare: Callable[[Any], Record] = lambda offered: offered, size_of: Callable[[Record], int] = lambda _: 1,
                 max_pending: int = 10000) -> None:
        if interval_s <= 0 or batch_limit < 0 or max_pending < 1:
            raise ValueError(f"{name}: interval must be > 0 s, batch limit >= 0 and max pending >= 1; got {interval_s}, {batch_limit}, {max_pending}")
        self.interval_s, self.batch_limit, self.prepare, self.size_of, self._send = interval_s, batch_limit, prepare, size_of, send
        self.dropped = 0
        self.last_error: str | None = None  # why the last record ``prepare`` could not make was dropped
        self._records: queue.Queue = queue.Queue(max_pending)
        self._idle = threading.Condition()
        self._pending = 0  # offered and not yet through send
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def offer(self, offered: object) -> bool:
        """Queue what ``prepare`` will make a record of; False (and counted as dropped) when the queue is full."""
        with self._idle:
            try:
                self._records.put_nowait(offered)
            except queue.Full:
                self.dropped += 1
                return False
            self._pending += 1
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every record offered so far went through ``send``; False if ``timeout`` passed first.
        A record waits out its batch's interval, so a flush can take that long."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                if not self._idle.wait(max(0.0, deadline - time.monotonic())):
                    return False
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued, then stop the thread."""
        self._records.put(_CLOSE)
        self._thread.join(timeout)

    def _unprepared(self, error: Exception) -> None:
        with self._idle:
            self.dropped += 1
            self._pending -= 1
            self.last_error = f"{type(error).__name__}: {error}"
            self._idle.notify_all()

    def _run(self) -> None:
        closing = False
        while not closing:
            batch: list[Record] = []
            size = 0
            deadline = time.monotonic() + self.interval_s
            while size < self.batch_limit or not batch:
                try:
                    offered = self._records.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if offered is _CLOSE:
                    closing = True
                    break
                try:
                    record = self.prepare(offered)
                except Exception as error:  # a record that cannot be made must not stop the thread
                    self._unprepared(error)
                    continue
                batch.append(record)
                size += self.size_of(record)
            if batch:
                try:
                    self._send(batch)
                finally:
                    with self._idle:
                        self._pending -= len(batch)
                        self._idle.notify_all()

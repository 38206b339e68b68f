"""Requests at a steady pace while something breaks: the measurement behind the lab's failovers.

Each request is sent when it is due (``pace`` seconds after the previous one was due, or at once when
the previous one ran late), timed from the measurement's start, and recorded whatever happens: a
request that raised OSError is a failed one (status 0, no cluster), and the next is sent anyway.

    Sample   one request: seconds since the start, its status (0: no answer), the cluster that answered
    paced    requests from the calling thread (one in a pod's namespace) until a count or a stop
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """One request of a measurement: seconds since it began, the status, the cluster that answered
    (None when the request failed)."""

    t: float
    status: int
    cluster: str | None


def paced(send: Callable[[int], tuple[int, str | None]], started: float, pace: float, count: int | None = None,
          stop: threading.Event | None = None) -> list[Sample]:
    """``send(n)`` (the n-th request: its status and the cluster that answered) every ``pace`` seconds
    from ``started`` (time.monotonic()), until ``count`` requests or ``stop`` is set."""
    samples: list[Sample] = []
    due = started
    while (count is None or len(samples) < count) and not (stop is not None and stop.is_set()):
        time.sleep(max(0.0, due - time.monotonic()))
        now = time.monotonic()
        due = max(due + pace, now)
        try:
            status, cluster = send(len(samples))
        except OSError:
            status, cluster = 0, None
        samples.append(Sample(now - started, status, cluster))
    return samples

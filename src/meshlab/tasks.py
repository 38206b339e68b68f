"""Tasks a server starts and does not await, held until they end.

The event loop keeps only a weak reference to a task it runs. A task nobody else holds can be
collected while it is still waiting; the loop then logs "Task was destroyed but it is pending!" and
what the task served (a proxied connection, a DNS answer) ends half done. Python's documentation of
``asyncio.create_task`` says to keep a reference to every task; a TaskSet is that reference for the
servers that start one task per connection or datagram, and the way they end them all when they stop.
Standard library only: the sidecar imports it before it drops its privileges.

    TaskSet   spawn(coroutine) -> Task, held until it is done; cancel() ends them all and waits
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine


class TaskSet:
    def __init__(self) -> None:
        self._running: set[asyncio.Task] = set()

    def spawn(self, coroutine: Coroutine) -> asyncio.Task:
        """Run ``coroutine`` on the running loop; the task is held until it is done."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    def __len__(self) -> int:
        return len(self._running)

    async def cancel(self) -> None:
        """Cancel every task still running and wait until each has ended."""
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

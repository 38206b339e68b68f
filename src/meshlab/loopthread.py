"""An asyncio event loop on its own thread, for synchronous callers of asynchronous servers.

The live servers (the xDS control plane, the SPIFFE agent) are asyncio code; tests, notebooks and
the CLI call them from ordinary threads. ``LoopThread`` runs one loop in a daemon thread and hands
work to it: ``call`` runs a coroutine or a plain function *on the loop's thread* (so it may touch
the server's state without locks) and returns the result, or raises the error, in the caller's.

    LoopThread   start(), call(work), stop()
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future


class LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    def call(self, work, timeout: float = 30):
        """Run a coroutine, or a plain function, on the loop and return its result."""
        if asyncio.iscoroutine(work):
            return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=timeout)
        future: Future = Future()

        def run():
            try:
                future.set_result(work())
            except Exception as error:  # handed to the caller's thread
                future.set_exception(error)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout=timeout)

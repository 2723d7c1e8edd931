"""Threads for blocking database calls, awaited from the event loop.

``loop.run_in_executor`` goes through a ``concurrent.futures.Future``: a condition
variable taken by every state change and read, and a second future chained to it on
the loop. On PostgreSQL every request makes this trip once, and it cost the event loop
dearly (bench/RESULTS.md). Here a worker settles the loop's own future directly, with
one ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Item = tuple[Callable[[], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class Workers:
    """``size`` daemon threads, started on first use, taking calls in arrival order."""

    def __init__(self, size: int, name: str) -> None:
        if size < 1:
            raise ValueError("Workers needs at least one thread")
        self.size, self.name = size, name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    async def run(self, call: Callable[[], T]) -> T:
        """Runs ``call()`` in a worker; returns or raises what it did. If the awaiting
        task is cancelled, the call still runs to its end (it cannot be interrupted);
        its result is dropped."""
        if len(self._threads) < self.size:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((call, future, loop))
        return await future

    def close(self) -> None:
        """Lets every worker finish the calls queued so far, then end."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        take = self._queue.get
        while (item := take()) is not None:
            call, future, loop = item
            try:
                result = call()
            except BaseException as exc:  # handed to the awaiting task, raised there
                _settle_soon(loop, future, None, exc)
            else:
                _settle_soon(loop, future, result, None)
            del item, call, future  # drop references while idle


def _settle_soon(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits the result
        loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if isinstance(error, StopIteration):  # a future cannot hold one (PEP 479)
        error = RuntimeError(f"the call raised StopIteration: {error!r}")
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)

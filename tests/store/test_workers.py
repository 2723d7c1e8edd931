"""keyturn.store.workers: blocking calls run in worker threads and settle the loop's
future directly."""

from __future__ import annotations

import asyncio
import threading

import pytest

from keyturn.store.workers import Workers


def test_a_call_runs_in_a_worker_and_returns_its_result() -> None:
    workers = Workers(2, "test-workers")

    async def main() -> tuple[int, str]:
        return await workers.run(lambda: (6 * 7, threading.current_thread().name))

    value, thread = asyncio.run(main())
    assert value == 42
    assert thread.startswith("test-workers_")
    assert thread != threading.current_thread().name
    workers.close()


def test_an_exception_raised_in_the_call_is_raised_to_the_awaiting_task() -> None:
    workers = Workers(1, "test-workers")

    def fail() -> None:
        raise LookupError("no such row")

    async def main() -> None:
        await workers.run(fail)

    with pytest.raises(LookupError, match="no such row"):
        asyncio.run(main())
    workers.close()


def test_a_stop_iteration_from_the_call_does_not_leave_the_task_waiting() -> None:
    workers = Workers(1, "test-workers")

    async def main() -> None:
        await asyncio.wait_for(workers.run(lambda: next(iter(()))), 5)

    with pytest.raises(RuntimeError, match="StopIteration"):
        asyncio.run(main())
    workers.close()


def test_calls_run_side_by_side_up_to_the_size() -> None:
    workers = Workers(3, "test-workers")
    barrier = threading.Barrier(3, timeout=5)  # breaks unless three calls wait at once

    def meet() -> str:
        barrier.wait()
        return threading.current_thread().name

    async def main() -> list[str]:
        return await asyncio.gather(*(workers.run(meet) for _ in range(3)))

    assert sorted(asyncio.run(main())) == ["test-workers_0", "test-workers_1", "test-workers_2"]
    workers.close()


def test_a_cancelled_wait_leaves_the_call_to_finish_and_the_workers_usable() -> None:
    workers = Workers(1, "test-workers")
    release, finished = threading.Event(), threading.Event()

    def slow() -> str:
        release.wait(5)
        finished.set()
        return "late"

    async def main() -> str:
        task = asyncio.create_task(workers.run(slow))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        return await workers.run(lambda: "next")

    assert asyncio.run(main()) == "next"
    assert finished.is_set()
    workers.close()


def test_close_ends_the_threads() -> None:
    workers = Workers(2, "test-close")

    async def main() -> None:
        await workers.run(lambda: None)

    asyncio.run(main())
    threads = [thread for thread in threading.enumerate() if thread.name.startswith("test-close_")]
    assert len(threads) == 2
    workers.close()
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        Workers(0, "test-workers")

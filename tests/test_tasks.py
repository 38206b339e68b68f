"""A TaskSet holds the tasks a server does not await, so the garbage collector cannot end them midway."""

import asyncio
import gc
import weakref

from meshlab.tasks import TaskSet


async def _waits_on_its_own_future() -> None:
    # the future is reachable only from this coroutine's frame and points back at the task: a cycle
    # that nothing outside holds, as a connection's task can be while it waits on the network
    await asyncio.get_running_loop().create_future()


def test_a_task_only_the_loop_knows_is_collected_while_pending():
    """Why TaskSet exists: the loop's reference is weak (the check that the next test can fail)."""
    async def scenario():
        task = weakref.ref(asyncio.get_running_loop().create_task(_waits_on_its_own_future()))
        await asyncio.sleep(0)
        gc.collect()
        return task() is None

    assert asyncio.run(scenario())


def test_a_spawned_task_survives_the_collector_and_cancel_ends_it():
    async def scenario():
        tasks = TaskSet()
        task = weakref.ref(tasks.spawn(_waits_on_its_own_future()))
        await asyncio.sleep(0)
        gc.collect()
        alive = task() is not None and not task().done() and len(tasks) == 1
        await tasks.cancel()
        return alive, len(tasks)

    assert asyncio.run(scenario()) == (True, 0)


def test_a_finished_task_is_let_go():
    async def scenario():
        tasks = TaskSet()
        await tasks.spawn(asyncio.sleep(0))
        await asyncio.sleep(0)  # done callbacks run on the next turn of the loop
        return len(tasks)

    assert asyncio.run(scenario()) == 0

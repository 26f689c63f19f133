"""Flag: asyncio.Event's behaviour without allocating for waiters up front."""

from __future__ import annotations

import asyncio

from acp_bridge.rpc._flag import Flag


async def test_wait_returns_at_once_when_set() -> None:
    flag = Flag(True)
    async with asyncio.timeout(1):
        await flag.wait()
    assert flag.is_set()


async def test_set_wakes_every_waiter_and_clear_makes_later_ones_wait() -> None:
    flag = Flag()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)  # let them start waiting
    assert not any(w.done() for w in waiters)
    flag.set()
    async with asyncio.timeout(1):
        await asyncio.gather(*waiters)
    flag.clear()
    late = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert not late.done()
    flag.set()
    async with asyncio.timeout(1):
        await late


async def test_a_cancelled_waiter_leaves_the_others_waiting() -> None:
    flag = Flag()
    first = asyncio.create_task(flag.wait())
    second = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert not second.done()
    flag.set()
    async with asyncio.timeout(1):
        await second
    assert flag._waiters is None  # nothing kept once everyone was woken

"""The outbox on its own: FIFO order, the soft limit with its grace period, the byte cap, waking waiters."""

from __future__ import annotations

import asyncio

from acp_bridge.rpc.outbox import DICT_FRAME_ESTIMATE, Outbox


def make(soft: int = 3, grace: float = 30.0, max_bytes: int = 1 << 20) -> tuple[Outbox, list[str]]:
    reasons: list[str] = []
    return Outbox(
        soft_limit=soft, grace=grace, max_bytes=max_bytes, on_overflow=reasons.append
    ), reasons


async def test_fifo_batches_respect_count_and_bytes() -> None:
    outbox, _ = make(soft=100)
    for i in range(10):
        assert outbox.put(b"x" * (i + 1))
    assert outbox.queued_bytes == sum(range(1, 11))
    first = await outbox.take(max_count=4, max_bytes=1000)
    assert first == [b"x", b"xx", b"xxx", b"xxxx"]
    second = await outbox.take(max_count=100, max_bytes=10)  # stops once 10 bytes are reached
    assert second == [b"x" * 5, b"x" * 6]
    outbox.put({"id": 1})
    assert outbox.queued_bytes == 7 + 8 + 9 + 10 + DICT_FRAME_ESTIMATE


async def test_catching_up_resets_the_grace_period() -> None:
    outbox, reasons = make(soft=2, grace=30.0)
    for i in range(4):
        assert outbox.put(b"%d" % i)
    assert outbox.behind
    await outbox.take(max_count=3, max_bytes=1000)  # down to 1 waiting: caught up
    assert not outbox.behind
    outbox.grace = 0.0  # from now on, being behind at all is too slow
    assert outbox.put(b"a")  # 2 waiting: at the limit, not past it
    assert not outbox.put(b"b")
    assert len(reasons) == 1
    assert "behind" in reasons[0]


async def test_the_timer_cuts_a_client_that_stays_behind() -> None:
    cut = asyncio.Event()
    outbox = Outbox(soft_limit=1, grace=0.02, max_bytes=1 << 20, on_overflow=lambda _: cut.set())
    assert outbox.put(b"1")
    assert outbox.put(b"2")  # behind from here; nothing else is ever sent
    async with asyncio.timeout(5):
        await cut.wait()
    assert not outbox.put(b"3")
    assert len(outbox) == 0  # what was queued is dropped


async def test_put_wait_and_join_wake_on_close() -> None:
    outbox, _ = make(soft=1)
    assert outbox.put(b"1")
    waiting = asyncio.create_task(outbox.put_wait(b"2"))
    joining = asyncio.create_task(outbox.join())
    taking = asyncio.create_task(outbox.take(10, 1000))
    async with asyncio.timeout(5):
        assert await taking == [b"1"]
        assert await waiting  # room appeared once the writer took one
        outbox.close()
        assert not await outbox.put_wait(b"3")
        await joining
        assert await outbox.take(10, 1000) == []


async def test_byte_cap_is_immediate() -> None:
    outbox, reasons = make(soft=1000, max_bytes=10)
    assert outbox.put(b"x" * 10)
    assert not outbox.put(b"y")
    assert reasons == ["11 bytes queued (limit 10)"]


async def test_a_drained_outbox_takes_new_messages_and_wakes_a_waiting_taker() -> None:
    # Drained, the outbox gives its queue back (idle memory); what comes next must still flow.
    outbox, _ = make(soft=2)
    outbox.put(b"a")
    assert await outbox.take(max_count=10, max_bytes=1000) == [b"a"]
    outbox.done(1)
    assert len(outbox) == 0
    waiting = asyncio.create_task(outbox.take(max_count=10, max_bytes=1000))
    await asyncio.sleep(0)  # the taker waits on the empty outbox
    assert outbox.put(b"b")
    async with asyncio.timeout(1):
        assert await waiting == [b"b"]
    outbox.done(1)
    async with asyncio.timeout(1):
        await outbox.join()
        assert await outbox.put_wait(b"c")
    assert len(outbox) == 1
    outbox.close()
    assert len(outbox) == 0
    assert not outbox.put(b"d")


async def test_put_many_queues_in_order_with_one_wake_up() -> None:
    outbox, _ = make(soft=100)
    taker = asyncio.ensure_future(outbox.take(max_count=100, max_bytes=1 << 20))
    await asyncio.sleep(0)  # the taker waits on an empty queue
    assert outbox.put(b"first")
    assert outbox.put_many([b"a", b"bb", b"ccc"])
    assert outbox.put_many([])
    async with asyncio.timeout(5):
        batch = await taker
    assert batch == [b"first", b"a", b"bb", b"ccc"]
    outbox.done(len(batch))
    async with asyncio.timeout(5):
        await outbox.join()
    assert len(outbox) == 0
    assert outbox.queued_bytes == 0


async def test_put_many_keeps_the_limits_of_put() -> None:
    outbox, reasons = make(soft=2, grace=0.0, max_bytes=100)
    assert outbox.put_many([b"1", b"2"])  # at the soft limit, not past it
    assert not outbox.put_many([b"3"])  # past it with no grace: too slow
    assert len(reasons) == 1
    assert "behind" in reasons[0]
    assert not outbox.put_many([b"4"])  # closed now

    capped, reasons = make(soft=100, max_bytes=10)
    assert not capped.put_many([b"x" * 6, b"y" * 6])
    assert reasons == ["12 bytes queued (limit 10)"]

"""Behaviour every EventLog backend must have; each test runs against every backend."""

from __future__ import annotations

import asyncio
import threading

import pytest

from acp_bridge.eventlog import (
    EventLog,
    EventLogClosed,
    InvalidTopic,
    LogEntry,
    LogRecord,
)

from .eventlog_support import MakeLog, hub_of, ids, rec, subscription

BAD_TOPICS = ["", "a/b", "a b", "é", "tab\t", "new\nline", "a:b", "x" * 3 + "*"]


def live_hub_subscriber_count(log: EventLog) -> int:
    return sum(len(subs) for subs in hub_of(log)._by_topic.values())


def test_satisfies_the_protocol(log: EventLog) -> None:
    assert isinstance(log, EventLog)


# Appending and reading.


def test_ids_start_at_one_and_are_gap_free_per_topic(log: EventLog) -> None:
    assert [log.append("a", rec(i)) for i in range(3)] == [1, 2, 3]
    assert log.append("b", rec(0)) == 1
    assert log.append("a", rec(3)) == 4
    assert log.append("b", rec(1)) == 2
    assert ids(log.read_range("a")) == [1, 2, 3, 4]
    assert ids(log.read_range("b")) == [1, 2]
    assert [e.record.payload["i"] for e in log.read_range("a")] == [0, 1, 2, 3]
    assert {e.topic for e in log.read_range("b")} == {"b"}


@pytest.mark.parametrize(
    ("after", "limit", "expected"),
    [
        (0, None, [1, 2, 3, 4, 5]),
        (2, None, [3, 4, 5]),
        (5, None, []),
        (9, None, []),
        (0, 2, [1, 2]),
        (3, 1, [4]),
        (3, 10, [4, 5]),
        (1, 0, []),
    ],
)
def test_read_range_is_strictly_after_and_limited(
    log: EventLog, after: int, limit: int | None, expected: list[int]
) -> None:
    for i in range(5):
        log.append("t", rec(i))
    assert ids(log.read_range("t", after, limit)) == expected
    assert ids(log.read_range("t", after=after, limit=limit)) == expected


def test_read_range_of_an_unknown_topic_is_empty(log: EventLog) -> None:
    assert log.read_range("nothing") == []
    log.append("other", rec(0))
    assert log.read_range("nothing", after=3, limit=2) == []


@pytest.mark.parametrize(("after", "limit"), [(-1, None), (0, -1)])
def test_read_range_rejects_negative_bounds(log: EventLog, after: int, limit: int | None) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        log.read_range("t", after, limit)


def test_latest_and_topics(log: EventLog) -> None:
    assert log.latest("a") is None
    assert log.topics() == []
    log.append("b.2", rec(0))
    log.append("a-1", rec(0))
    log.append("a-1", rec(1))
    assert log.latest("a-1") == 2
    assert log.latest("b.2") == 1
    assert log.latest("c") is None
    assert log.topics() == ["a-1", "b.2"]


@pytest.mark.parametrize("topic", BAD_TOPICS)
def test_invalid_topics_are_rejected(log: EventLog, topic: str) -> None:
    with pytest.raises(InvalidTopic):
        log.append(topic, rec(0))
    with pytest.raises(InvalidTopic):
        log.read_range(topic)
    with pytest.raises(InvalidTopic):
        log.subscribe(topic)
    assert log.topics() == []


def test_a_non_string_topic_is_rejected(log: EventLog) -> None:
    with pytest.raises(InvalidTopic):
        log.append(b"bytes", rec(0))  # type: ignore[arg-type]


def test_append_rejects_what_is_not_a_record(log: EventLog) -> None:
    with pytest.raises(TypeError, match="LogRecord"):
        log.append("t", {"kind": "x"})  # type: ignore[arg-type]
    assert log.latest("t") is None


async def test_every_record_field_is_preserved(log: EventLog) -> None:
    payload = {
        "text": "héllo \u2603 \U0001f600",
        "n": -(2**53),
        "f": 0.1,
        "ok": True,
        "none": None,
        "list": [1, "two", [3.5], {"four": 4}],
        "nested": {"a": {"b": {"c": []}}},
    }
    records = [
        LogRecord("agent.message", payload, {"trace": "t-1", "ü": "✓"}, 1_700_000_000_123),
        LogRecord("", [], {}, 0),
        LogRecord("scalar", "just a string"),
        LogRecord("null", None),
    ]
    for record in records:
        log.append("t", record)

    def check() -> None:
        got = log.read_range("t")
        assert [e.record for e in got] == records
        assert all(isinstance(e.record.headers, dict) for e in got)

    check()  # possibly before the records are stored,
    await log.aflush()
    check()  # and after.


def test_occurred_at_defaults_to_now(log: EventLog) -> None:
    from acp_bridge.eventlog import now_ms

    before = now_ms()
    log.append("t", LogRecord("k", 1))
    after = now_ms()
    assert before <= log.read_range("t")[0].record.occurred_at_ms <= after


def test_appends_from_many_threads_get_distinct_gap_free_ids(log: EventLog) -> None:
    per_thread, n_threads = 500, 4
    results: list[list[int]] = [[] for _ in range(n_threads)]

    def work(k: int) -> None:
        for i in range(per_thread):
            results[k].append(log.append("t", rec(i)))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    for got in results:
        assert got == sorted(got)
    assert sorted(i for got in results for i in got) == list(range(1, per_thread * n_threads + 1))
    assert ids(log.read_range("t")) == list(range(1, per_thread * n_threads + 1))


def test_flush_returns_once_appends_are_stored(log: EventLog) -> None:
    log.flush()
    log.append("t", rec(0))
    log.flush()
    log.flush()
    assert ids(log.read_range("t")) == [1]


async def test_aflush_returns_once_appends_are_stored(log: EventLog) -> None:
    async with asyncio.timeout(5):
        await log.aflush()
        log.append("t", rec(0))
        await log.aflush()
    assert ids(log.read_range("t")) == [1]


# Subscribing.


async def collect(log: EventLog, topic: str, n: int, after: int = 0) -> list[LogEntry]:
    """The first ``n`` entries of a subscription."""
    got: list[LogEntry] = []
    if n == 0:
        return got
    async with asyncio.timeout(5), subscription(log, topic, after) as entries:
        async for entry in entries:
            got.append(entry)
            if len(got) == n:
                break
    return got


async def test_subscribe_yields_history_then_live_entries(log: EventLog) -> None:
    for i in range(3):
        log.append("t", rec(i))
    log.append("other", rec(0))
    async with asyncio.timeout(5), subscription(log, "t") as entries:
        iterator = aiter(entries)
        assert [(await anext(iterator)).id for _ in range(3)] == [1, 2, 3]
        log.append("other", rec(1))
        log.append("t", rec(3))
        entry = await anext(iterator)
    assert (entry.topic, entry.id, entry.record) == ("t", 4, rec(3))


async def test_subscribe_after_skips_what_came_before(log: EventLog) -> None:
    for i in range(5):
        log.append("t", rec(i))
    assert ids(await collect(log, "t", 2, after=3)) == [4, 5]


async def test_subscribe_after_the_head_waits_for_that_id(log: EventLog) -> None:
    log.append("t", rec(0))
    async with asyncio.timeout(5), subscription(log, "t", after=3) as entries:
        iterator = aiter(entries)
        pending = asyncio.ensure_future(anext(iterator))
        for i in range(1, 5):
            log.append("t", rec(i))
        assert (await pending).id == 4
        assert (await anext(iterator)).id == 5


async def test_subscribe_to_an_empty_topic_gets_the_first_entry(log: EventLog) -> None:
    async with asyncio.timeout(5), subscription(log, "t") as entries:
        iterator = aiter(entries)
        pending = asyncio.ensure_future(anext(iterator))
        # Most likely the subscriber now waits on an empty buffer; the test passes either way.
        await asyncio.sleep(0)
        log.append("t", rec(0))
        assert (await pending).id == 1


async def test_several_subscribers_each_get_everything(log: EventLog) -> None:
    log.append("t", rec(0))
    consumers = [asyncio.create_task(collect(log, "t", 50)) for _ in range(3)]
    for i in range(1, 50):
        log.append("t", rec(i))
        if i % 10 == 0:
            await asyncio.sleep(0)  # interleave with the consumers
    async with asyncio.timeout(5):
        results = await asyncio.gather(*consumers)
    for got in results:
        assert ids(got) == list(range(1, 51))


async def test_subscriber_attaching_during_concurrent_appends_sees_each_id_once(
    log: EventLog,
) -> None:
    per_appender = 2_000
    total = 2 * per_appender
    thread_started = threading.Event()

    def thread_appender() -> None:
        for i in range(per_appender):
            log.append("t", rec(i, "thread"))
            if i == 100:
                thread_started.set()

    async def task_appender() -> None:
        for i in range(per_appender):
            log.append("t", rec(i, "task"))
            if i % 25 == 0:
                await asyncio.sleep(0)  # let the subscriber run between appends

    thread = threading.Thread(target=thread_appender)
    thread.start()
    try:
        task = asyncio.create_task(task_appender())
        assert await asyncio.to_thread(thread_started.wait, 5)
        got = await collect(log, "t", total)
        async with asyncio.timeout(5):
            await task
    finally:
        thread.join(5)
    assert not thread.is_alive()
    assert ids(got) == list(range(1, total + 1))
    assert [e.record.kind for e in got].count("thread") == per_appender
    assert got == log.read_range("t")


async def test_lagging_subscriber_catches_up_without_losing_entries(make_log: MakeLog) -> None:
    log = make_log(live_queue_size=4)
    log.append("t", rec(1))
    async with asyncio.timeout(5), subscription(log, "t") as entries:
        iterator = aiter(entries)
        got = [await anext(iterator)]  # the subscriber is now registered and live
        # No await in between: the subscriber's buffer overflows long before it runs again.
        for i in range(2, 52):
            log.append("t", rec(i))
        got += [await anext(iterator) for _ in range(50)]
        assert hub_of(log).lag_count >= 1
        # Having caught up, it is live again.
        for i in range(52, 62):
            log.append("t", rec(i))
        got += [await anext(iterator) for _ in range(10)]
    assert ids(got) == list(range(1, 62))
    assert [e.record.payload["i"] for e in got] == list(range(1, 62))


async def test_lagging_subscriber_fed_from_another_thread_gets_everything(
    make_log: MakeLog,
) -> None:
    log = make_log(live_queue_size=8)
    total = 3_000

    def appender() -> None:
        for i in range(total):
            log.append("t", rec(i))

    thread = threading.Thread(target=appender)
    consumer = asyncio.create_task(collect(log, "t", total))
    await asyncio.sleep(0)  # start the subscription first; correctness doesn't depend on it
    thread.start()
    try:
        got = await consumer
    finally:
        thread.join(5)
    assert ids(got) == list(range(1, total + 1))


async def test_cancelling_a_subscriber_unregisters_it(log: EventLog) -> None:
    log.append("t", rec(0))
    received = asyncio.Event()

    async def consume() -> None:
        async for _ in log.subscribe("t"):
            received.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(5):
        await received.wait()
    assert live_hub_subscriber_count(log) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task
    assert live_hub_subscriber_count(log) == 0


# Closing.


@pytest.mark.parametrize("close_from_thread", [False, True])
async def test_close_ends_subscriptions(log: EventLog, close_from_thread: bool) -> None:
    log.append("t", rec(0))
    received: list[int] = []
    first = asyncio.Event()

    async def consume(topic: str) -> None:
        async for entry in log.subscribe(topic):
            received.append(entry.id)
            first.set()

    consumers = [asyncio.create_task(consume("t")), asyncio.create_task(consume("empty"))]
    async with asyncio.timeout(5):
        await first.wait()
        if close_from_thread:
            await asyncio.to_thread(log.close)
        else:
            log.close()
        await asyncio.gather(*consumers)
    assert received == [1]


async def test_subscribing_to_a_closed_log_fails(log: EventLog) -> None:
    log.close()
    with pytest.raises(EventLogClosed):
        log.subscribe("t")


async def test_a_subscription_started_after_close_ends_at_once(log: EventLog) -> None:
    subscription = log.subscribe("t")
    log.close()
    async with asyncio.timeout(5):
        assert [e async for e in subscription] == []


def test_use_after_close_raises(log: EventLog) -> None:
    log.append("t", rec(0))
    log.close()
    log.close()  # idempotent
    with pytest.raises(EventLogClosed):
        log.append("t", rec(1))
    with pytest.raises(EventLogClosed):
        log.read_range("t")
    with pytest.raises(EventLogClosed):
        log.latest("t")
    with pytest.raises(EventLogClosed):
        log.topics()
    log.flush()  # nothing left to flush


async def test_aflush_after_close_returns(log: EventLog) -> None:
    log.append("t", rec(0))
    log.close()
    async with asyncio.timeout(5):
        await log.aflush()


def test_close_from_several_threads_at_once(log: EventLog) -> None:
    for i in range(1_000):
        log.append("t", rec(i))
    threads = [threading.Thread(target=log.close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()
    with pytest.raises(EventLogClosed):
        log.append("t", rec(0))

"""What only the Redis log does: several processes ("nodes") on one Redis, leases and fencing.

Each test uses two logs on the session's redis-server with one namespace, standing for two nodes.
A lease's expiry is played by deleting its key (what Redis does when the TTL runs out), except in
the renewal test, which lets real TTLs run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import Iterator

import pytest
from redis.crc import key_slot

from acp_bridge.eventlog import EventLogError, LogRecord, NotOwner, RedisEventLog
from tests.support.redis_server import redis_url

from .eventlog_support import ids, rec


@pytest.fixture
def nodes() -> Iterator[list[RedisEventLog]]:
    namespace = "n" + secrets.token_hex(6)
    made: list[RedisEventLog] = []

    def make(**kwargs: object) -> RedisEventLog:
        log = RedisEventLog(redis_url(), namespace=namespace, node_id=f"node{len(made)}", **kwargs)  # type: ignore[arg-type]
        log.group_topics(("ev.",))
        made.append(log)
        return log

    make()
    make()
    yield made
    for log in made:
        with contextlib.suppress(EventLogError):
            log.close()


class LostLeases:
    def __init__(self, log: RedisEventLog) -> None:
        self.groups: list[str] = []
        self.told = threading.Event()
        log.add_lease_listener(self)

    def __call__(self, group: str) -> None:
        self.groups.append(group)
        self.told.set()


def test_one_node_at_a_time_holds_a_lease(nodes: list[RedisEventLog]) -> None:
    a, b = nodes
    token = a.claim("s1")
    assert token is not None
    assert token >= 1
    assert a.claim("s1") == token  # claiming again keeps it
    assert b.claim("s1") is None
    assert b.owner("s1") == "node0"
    assert a.holds("s1")
    assert not b.holds("s1")
    with pytest.raises(NotOwner):
        b.append("ev.s1", rec(0))
    # Ungrouped topics need no lease.
    assert b.append("plain", rec(0)) == 1


def test_grouped_topics_share_the_groups_slot(nodes: list[RedisEventLog]) -> None:
    a, _ = nodes
    a.claim("s1")
    a.append("ev.s1", rec(0))
    a.flush()
    keys = sorted(k.decode() for k in a.client.keys(f"{a.namespace}:*"))
    assert keys == [
        f"{a.namespace}:topics",
        f"{a.namespace}:{{s1}}:events:ev.s1",
        f"{a.namespace}:{{s1}}:fence",
        f"{a.namespace}:{{s1}}:owner",
    ]
    slots = {key_slot(k.encode()) for k in keys if "{s1}" in k}
    assert len(slots) == 1


def test_takeover_continues_the_ids_and_fences_the_former_owner(
    nodes: list[RedisEventLog],
) -> None:
    a, b = nodes
    lost = LostLeases(a)
    assert a.claim("s1") == 1
    assert [a.append("ev.s1", rec(i)) for i in range(3)] == [1, 2, 3]
    a.flush()
    # B sees A's entries without owning anything.
    assert ids(b.read_range("ev.s1")) == [1, 2, 3]
    assert b.committed("ev.s1") == 3
    # A's lease runs out (A is paused, say) and B takes over: a new token, ids continue.
    a.client.delete(f"{a.namespace}:{{s1}}:owner")
    assert b.claim("s1") == 2
    assert b.append("ev.s1", rec(3)) == 4
    b.flush()
    # A still believes it owns the session: its append gets an id, but the fence refuses it,
    # so it is never committed, and A is told it lost the lease.
    assert a.holds("s1")
    stale = a.append("ev.s1", LogRecord("stale", {"from": "a"}))
    assert stale == 4
    a.flush()  # returns: the refused entry is dropped, not pending forever
    assert lost.told.wait(5)
    assert lost.groups == ["s1"]
    assert not a.holds("s1")
    assert a.failure is None  # one group fenced, the log itself is fine
    assert a.committed("ev.s1") == 4
    stored = b.read_range("ev.s1")
    assert ids(stored) == [1, 2, 3, 4]
    assert stored[-1].record == rec(3)
    assert ids(a.read_range("ev.s1")) == [1, 2, 3, 4]
    with pytest.raises(NotOwner):
        a.append("ev.s1", rec(9))


def test_a_lease_is_renewed_and_lost_when_renewal_stops(nodes: list[RedisEventLog]) -> None:
    a, b = nodes
    a.close()
    b.close()
    ttl = 0.6
    a, b = (
        RedisEventLog(redis_url(), namespace=a.namespace, node_id=n, lease_ttl=ttl)
        for n in ("na", "nb")
    )
    nodes += [a, b]
    lost = LostLeases(a)
    assert a.claim("s2") is not None
    # Renewed every ttl/3: after three TTLs, still A's.
    deadline = time.monotonic() + 3 * ttl
    while time.monotonic() < deadline:
        assert b.claim("s2") is None
        threading.Event().wait(ttl / 4)  # pacing the probes, not synchronising
    assert a.holds("s2")
    assert not lost.told.is_set()
    # A stops renewing (paused, partitioned): the lease expires, B gets it.
    a._renew_paused = True
    deadline = time.monotonic() + 5 * ttl
    token = None
    while token is None and time.monotonic() < deadline:
        token = b.claim("s2")
        if token is None:
            threading.Event().wait(ttl / 4)
    assert token is not None
    # A's next renewal finds the lease gone and says so.
    a._renew_paused = False
    assert lost.told.wait(5)
    assert not a.holds("s2")


def test_two_unleased_writers_of_one_topic_stop_the_second(nodes: list[RedisEventLog]) -> None:
    a, b = nodes
    a.append("plain", rec(0))
    a.flush()
    assert b.append("plain", rec(1)) == 2  # B read the head: 1
    b.flush()
    # A still thinks the head is 1: Redis refuses its id 2, and A stops rather than overwrite.
    assert a.append("plain", rec(2)) == 2
    with pytest.raises(EventLogError, match="refused"):
        a.flush()
    assert a.failure is not None
    assert [e.record for e in b.read_range("plain")] == [rec(0), rec(1)]


async def test_a_tail_follows_what_another_node_appends(nodes: list[RedisEventLog]) -> None:
    a, b = nodes
    a.claim("s3")
    a.append("ev.s3", rec(0))
    a.flush()
    got: list[int] = []
    async with asyncio.timeout(10):
        tail = b.tail("ev.s3", after=0, block_ms=200)
        try:
            got.append((await anext(tail)).id)  # stored
            for i in range(1, 4):
                a.append("ev.s3", rec(i))  # live, from the other node
            got += [(await anext(tail)).id for _ in range(3)]
        finally:
            await tail.aclose()
    assert got == [1, 2, 3, 4]


def test_read_ranges_reads_many_topics_in_one_round_trip_as_read_range_would(
    nodes: list[RedisEventLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Node A appends to five topics; B (which appends to none) reads them all, and so does A
    # (which knows its own heads and its entries not acknowledged yet).
    a, b = nodes
    topics = [f"idx.{n}" for n in range(5)]
    for n, topic in enumerate(topics):
        for i in range(n + 1):
            a.append(topic, rec(10 * n + i))
    a.flush()
    afters = {topic: n % 2 for n, topic in enumerate(topics)} | {"idx.none": 0}

    round_trips: list[int] = []
    real_pipeline = b._client.pipeline

    def counting_pipeline(*args: object, **kwargs: object) -> object:
        round_trips.append(1)
        return real_pipeline(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(b._client, "pipeline", counting_pipeline)
    for log in (b, a):
        for limit in (1000, 2):
            pages = log.read_ranges(afters, limit)
            assert pages == {t: log.read_range(t, after, limit) for t, after in afters.items()}
    assert round_trips == [1, 1]
    assert [e.record for e in b.read_ranges({"idx.4": 0}, 1000)["idx.4"]] == [
        rec(40 + i) for i in range(5)
    ]
    assert b.read_ranges({"idx.4": 0}, 0) == {"idx.4": []}

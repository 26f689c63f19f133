"""Retention: expired sessions deleted, sessions capped at N events, the index rewritten; the bridge
enforces it at start."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from acp_bridge.acp import AcpBridge, BridgeConfig
from acp_bridge.acp.retention import INDEX_SLACK, RetentionPolicy, enforce
from acp_bridge.acp.sessions import SESSION_INDEX_TOPIC
from acp_bridge.agents.demo import DemoBackend
from acp_bridge.eventlog import MemoryEventLog, SqliteEventLog
from acp_bridge.events import harn as h
from acp_bridge.sinks import SinkRegistry, agent_events_topic
from tests.support.acp_client import ResponseError

from .conftest import BridgeHarness

CWD = "/tmp/project"
LONG_AGO = "2020-01-01T00:00:00Z"
NOW = dt.datetime.now(dt.UTC)


@asynccontextmanager
async def bridge_on(path: Path, **config: Any) -> AsyncIterator[BridgeHarness]:
    """A started bridge (retention enforced once by start) on the SQLite log at ``path``."""
    log = SqliteEventLog(path)
    bridge = AcpBridge(
        DemoBackend(step_delay=0), log, registry=SinkRegistry(), config=BridgeConfig(**config)
    )
    harness = BridgeHarness(bridge)
    try:
        await bridge.start()
        yield harness
    finally:
        await bridge.shutdown()
        log.close()


async def session_with_turns(harness: BridgeHarness, turns: int) -> str:
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session(CWD)
        for i in range(turns):
            await client.prompt(sid, f"turn {i}")
    return sid


async def exact_load(harness: BridgeHarness, sid: str) -> tuple[dict[str, Any], list[int]]:
    """Load ``sid`` replaying every event; the response and the replayed event ids."""
    async with harness.client() as client:
        await client.initialize()
        result = await client.call(
            "session/load",
            {
                "sessionId": sid,
                "cwd": CWD,
                "mcpServers": [],
                "_meta": {"acp_bridge": {"replay": "exact"}},
            },
        )
        ids = [
            m["params"]["_meta"]["harn"]["eventId"]
            for m in client.received
            if m.get("method") == "session/update" and "_meta" in m["params"]  # from the log
        ]
    return result, ids


async def test_a_session_keeps_only_its_newest_events(tmp_path: Path) -> None:
    async with bridge_on(tmp_path / "log.db") as harness:
        sid = await session_with_turns(harness, 3)
        log = harness.bridge.log
        head = log.latest(agent_events_topic(sid))
        assert head is not None
        assert head > 10
        report = await enforce(harness.bridge.sessions, RetentionPolicy(events_per_session=10))
        assert report.events_deleted == head - 10
        result, ids = await exact_load(harness, sid)
        kept = list(range(head - 9, head + 1))
        assert [e.id for e in log.read_range(agent_events_topic(sid))] == kept
        # Replayed: what is left (events without a standard update are not sent to this client).
        assert ids
        assert set(ids) <= set(kept)
        assert result["_meta"]["harn"]["lastEventId"] == head
        # Enforcing again finds nothing to do.
        again = await enforce(harness.bridge.sessions, RetentionPolicy(events_per_session=10))
        assert again.events_deleted == 0


async def test_a_stale_session_is_deleted_with_its_events(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    async with bridge_on(path) as harness:
        old = await session_with_turns(harness, 1)
        fresh = await session_with_turns(harness, 1)
        manager = harness.bridge.sessions
        manager.index[old].updated_at = LONG_AGO
        # Judged 60 days from now: the old one's events are old then too, the fresh one was
        # updated since.
        manager.index[fresh].updated_at = (NOW + dt.timedelta(days=59)).isoformat()
        report = await enforce(manager, RetentionPolicy(days=30), now=NOW + dt.timedelta(days=60))
        assert report.expired == [old]
        assert report.events_deleted > 0
        assert harness.bridge.log.read_range(agent_events_topic(old)) == []
        async with harness.client() as client:
            await client.initialize()
            listed = await client.call("session/list", {})
            assert [s["sessionId"] for s in listed["sessions"]] == [fresh]
            with pytest.raises(ResponseError):
                await client.call("session/load", {"sessionId": old, "cwd": CWD, "mcpServers": []})
    # Gone for good: a restarted bridge does not know it either.
    async with bridge_on(path) as harness:
        assert set(harness.bridge.sessions.index) == {fresh}


async def test_a_session_in_use_does_not_expire(tmp_path: Path) -> None:
    async with bridge_on(tmp_path / "log.db") as harness, harness.client() as client:
        await client.initialize()
        sid = await client.new_session(CWD)
        harness.bridge.sessions.index[sid].updated_at = LONG_AGO
        report = await enforce(
            harness.bridge.sessions, RetentionPolicy(days=1), now=NOW + dt.timedelta(days=60)
        )
        assert report.expired == []
        assert sid in harness.bridge.sessions.index


async def test_a_session_whose_backend_still_writes_does_not_expire(tmp_path: Path) -> None:
    # A tail-like session: events arrive, no turn touches its updatedAt.
    async with bridge_on(tmp_path / "log.db") as harness:
        ctx = harness.bridge.open_session("mirrored", cwd=CWD)
        ctx.emit(h.AgentMessageChunk(session_id="mirrored", content="still going"))
        await harness.bridge.sessions.flush()
        harness.bridge.sessions.index["mirrored"].updated_at = LONG_AGO
        report = await enforce(harness.bridge.sessions, RetentionPolicy(days=1))
        assert report.expired == []


async def test_the_index_is_rewritten_when_it_outgrows_its_sessions(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    async with bridge_on(path) as harness:
        kept = await session_with_turns(harness, 1)
        closed = await session_with_turns(harness, 0)
        async with harness.client() as client:
            await client.initialize()
            await client.call("session/resume", {"sessionId": closed, "cwd": CWD})
            await client.call("session/close", {"sessionId": closed})
        manager = harness.bridge.sessions
        session = manager.get(kept)
        assert session is not None
        for _ in range(2 * INDEX_SLACK):
            manager.touch(session)
        before = {sid: (r.info(), r.closed, r.epoch) for sid, r in manager.index.items()}
        report = await enforce(manager, RetentionPolicy(events_per_session=1000))
        assert report.index_records_deleted > 2 * INDEX_SLACK
        log = harness.bridge.log
        assert len(log.read_range(SESSION_INDEX_TOPIC)) == len(before)
    async with bridge_on(path) as harness:
        after = {
            sid: (r.info(), r.closed, r.epoch) for sid, r in harness.bridge.sessions.index.items()
        }
        assert after == before


async def test_the_bridge_enforces_retention_when_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    async with bridge_on(path) as harness:
        sid = await session_with_turns(harness, 2)
        head = harness.bridge.log.latest(agent_events_topic(sid))
        assert head is not None
        assert head > 5
    async with bridge_on(path, retain_events_per_session=5) as harness:
        log = harness.bridge.log
        assert [e.id for e in log.read_range(agent_events_topic(sid))] == list(
            range(head - 4, head + 1)
        )


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"retain_days": 0}, "--retain-days"),
        ({"retain_events_per_session": 0}, "--retain-events-per-session"),
    ],
)
def test_limits_that_mean_nothing_are_refused(limits: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AcpBridge(DemoBackend(step_delay=0), MemoryEventLog(), config=BridgeConfig(**limits))


async def test_an_unreadable_update_time_is_never_taken_for_old(tmp_path: Path) -> None:
    async with bridge_on(tmp_path / "log.db") as harness:
        sid = await session_with_turns(harness, 0)
        harness.bridge.sessions.index[sid].updated_at = "not a date"
        report = await enforce(harness.bridge.sessions, RetentionPolicy(days=1))
        assert report.expired == []

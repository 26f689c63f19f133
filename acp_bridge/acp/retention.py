"""Retention: a log that stays bounded however long the bridge runs.

Two limits, either or both (``serve --retain-days``, ``--retain-events-per-session``):

* a session not updated for ``days`` (its ``updatedAt`` and its newest event both older) *expires*: it is deleted as ``session/delete`` deletes it (shut
  down if it is live here and nobody uses it, a ``session_deleted`` tombstone in the index, its events
  deleted);
* a session keeps at most ``events_per_session`` events: older ones are deleted, the newest stay
  (a ``session/load`` then replays what is left; ids go on, never reused).

The session index is itself a topic that grows with every turn (``session_updated``); when it holds
far more records than sessions, :func:`enforce` rewrites it as one record per session and deletes
the old ones. Deleting needs a log that can (:class:`~acp_bridge.eventlog.Prunable`: SQLite, memory);
the freed space goes back to the file system in SQLite files made by this version (older ones: once
``acp-bridge log compact``). See ``docs/decisions/0045-retention.md``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Final

from acp_bridge.eventlog import EventLog, Prunable
from acp_bridge.sinks import agent_events_topic

from .sessions import SESSION_INDEX_TOPIC, Session, SessionManager

__all__ = [
    "INDEX_SLACK",
    "RetentionPolicy",
    "RetentionReport",
    "enforce",
    "enforce_logged",
    "run_retention",
]

logger = logging.getLogger(__name__)

INDEX_SLACK: Final = 64
"""The index is rewritten once it holds more than twice as many records as sessions, plus this."""


@dataclass(frozen=True)
class RetentionPolicy:
    """What the bridge keeps; ``None`` means no limit of that kind."""

    days: float | None = None
    """Sessions not updated for this many days are deleted."""
    events_per_session: int | None = None
    """At most this many events are kept per session (the newest)."""
    interval: float = 3600.0
    """Seconds between two enforcements (the first runs at start)."""

    def __post_init__(self) -> None:
        if self.days is not None and not self.days > 0:
            raise ValueError(f"--retain-days must be more than 0, not {self.days}")
        if self.events_per_session is not None and self.events_per_session < 1:
            raise ValueError(
                f"--retain-events-per-session must be 1 or more, not {self.events_per_session}"
            )
        if not self.interval > 0:
            raise ValueError(f"the retention interval must be more than 0 s, not {self.interval}")

    @property
    def active(self) -> bool:
        """Whether there is anything to enforce."""
        return self.days is not None or self.events_per_session is not None


@dataclass
class RetentionReport:
    """What one enforcement did."""

    expired: list[str] = field(default_factory=list)
    """Sessions deleted for age."""
    events_deleted: int = 0
    """Events deleted, from expired sessions and over the per-session limit."""
    index_records_deleted: int = 0
    """Index records replaced by the rewritten index."""


def _updated_at(text: str) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _last_event_at(log: EventLog, session_id: str) -> dt.datetime:
    """When the session's newest event happened (long ago if it has none)."""
    topic = agent_events_topic(session_id)
    head = log.committed(topic) or 0
    entries = log.read_range(topic, after=head - 1, limit=1) if head else []
    if not entries:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(entries[0].record.occurred_at_ms / 1000, tz=dt.UTC)


def _in_use(session: Session) -> bool:
    return session.turn_lock.locked() or bool(session.participants)


async def enforce(
    manager: SessionManager, policy: RetentionPolicy, *, now: dt.datetime | None = None
) -> RetentionReport:
    """Apply ``policy`` once to ``manager``'s sessions and log; deletions run in a thread."""
    report = RetentionReport()
    log = manager.log
    if not policy.active or not isinstance(log, Prunable):
        return report
    prunable: Prunable = log
    if policy.days is not None:
        cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=policy.days)
        for record in list(manager.index.values()):
            updated = _updated_at(record.updated_at)
            if updated is None or updated >= cutoff:
                continue
            if _last_event_at(log, record.session_id) >= cutoff:
                continue  # a backend still writes to it (a tail, say) without turns touching it
            live = manager.live(record.session_id)
            if live is not None and _in_use(live):
                continue  # someone is on it: it is not stale, whatever its record says
            # As session/delete does it: shut down if live, a tombstone in the index, no events.
            await manager.delete(record.session_id, reclaim=False)
            report.events_deleted += await manager.reclaim(record.session_id)
            report.expired.append(record.session_id)
    if policy.events_per_session is not None:
        keep = policy.events_per_session
        for record in list(manager.index.values()):
            topic = agent_events_topic(record.session_id)
            head = log.committed(topic) or 0
            if head <= keep:
                continue
            first = await asyncio.to_thread(prunable.first_id, topic)
            if first is not None and head - first + 1 > keep:
                report.events_deleted += await asyncio.to_thread(prunable.prune, topic, head - keep)
    report.index_records_deleted = await _rewrite_index(manager, prunable)
    return report


async def _rewrite_index(manager: SessionManager, log: Prunable) -> int:
    """Replace the index's history by one record per session, when it has grown far past that."""
    head = manager.log.latest(SESSION_INDEX_TOPIC) or 0
    first = await asyncio.to_thread(log.first_id, SESSION_INDEX_TOPIC)
    held = 0 if first is None else head - first + 1
    if held <= 2 * len(manager.index) + INDEX_SLACK:
        return 0
    # Appended on the loop, like every index record: whatever is persisted after these comes
    # after them, so the rewritten index plus what follows is the whole truth.
    manager.snapshot_index()
    await manager.log.aflush()
    return await asyncio.to_thread(log.prune, SESSION_INDEX_TOPIC, head)


async def enforce_logged(manager: SessionManager, policy: RetentionPolicy) -> None:
    """:func:`enforce` once, its outcome logged (a failure too: the next run tries again)."""
    try:
        report = await enforce(manager, policy)
    except Exception:
        logger.exception("retention failed; trying again in %.0f s", policy.interval)
        return
    if report.expired or report.events_deleted or report.index_records_deleted:
        logger.info(
            "retention: %d session(s) expired, %d event(s) and %d index record(s) deleted",
            len(report.expired),
            report.events_deleted,
            report.index_records_deleted,
        )


async def run_retention(manager: SessionManager, policy: RetentionPolicy) -> None:
    """Enforce ``policy`` every ``policy.interval`` seconds, until cancelled (the bridge enforces it
    once at start itself, before it serves anyone)."""
    while True:
        await asyncio.sleep(policy.interval)
        await enforce_logged(manager, policy)

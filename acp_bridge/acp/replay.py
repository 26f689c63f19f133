"""A session's history, read back from the event log and written to one attachment as wire messages."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import orjson

from acp_bridge.eventlog import EventLog, LogRecord, Prunable
from acp_bridge.events import (
    EventDecodeError,
    SessionAcpUpdate,
    SessionRuntimeEvent,
    decode_session_event,
)
from acp_bridge.sinks import agent_events_topic, event_of
from acp_bridge.translate import Message, Profile, translate
from acp_bridge.translate.compaction import ReplayCompactor
from acp_bridge.translate.proxied import translate_proxied
from acp_bridge.translate.runtime import RuntimeTranslator, UnmappedRunError

from .delivery import Attachment, stamp_event_id

__all__ = ["REPLAY_PAGE", "replay_history"]

logger = logging.getLogger(__name__)

REPLAY_PAGE: Final = 500
"""Events read from the log at a time."""


async def replay_history(
    log: EventLog,
    session_id: str,
    attachment: Attachment,
    profile: Profile,
    after: int,
    *,
    upto: int,
    compact: bool = False,
    context_window: int | None = None,
) -> tuple[int, int]:
    """Write the session's history in ``(after, upto]``, marked as replayed; returns (count, last id).

    ``upto`` is the last committed id when the replay starts (nothing past it may be shown: a
    crash could take it back). Events committed meanwhile are held by the (already attached)
    attachment and released after the response, so a busy session cannot keep a load from ever
    finishing. With ``compact``, runs of text chunks go out as one update per message, stamped
    with the id of the run's last event (:mod:`acp_bridge.translate.compaction`); ``count`` is the
    number of events covered either way. ``context_window`` is the session's (``usage_update``).
    """
    topic = agent_events_topic(session_id)
    head = upto
    # A client may have acked ids this log no longer has (a crash lost the uncommitted tail):
    # whatever the log assigns from here on is new to it.
    count, last = 0, min(after, head)
    if isinstance(log, Prunable):
        # Retention may have deleted the oldest events: start at the first one left, or a page
        # asked for by count would run past `upto` into events not committed yet.
        first = log.first_id(topic)
        if first is not None:
            last = max(last, min(first - 1, head))
    writer = _ReplayWriter(session_id, attachment, profile, context_window)
    compactor = ReplayCompactor() if compact else None
    read_rows = getattr(log, "read_committed_rows", None)
    while last < head:
        limit = min(REPLAY_PAGE, head - last)
        if compactor is not None and read_rows is not None:
            rows = read_rows(topic, last, limit)
            if not rows:
                break
            for event_id, kind, headers, at, payload in rows:
                if event_id > head:
                    last = head  # (a prune moved the start past it meanwhile): done
                    break
                last = event_id
                count += 1
                raw = _raw_row(kind, headers, at, payload, session_id)
                for covered, out_kind, merged in compactor.feed(event_id, kind, raw):
                    await writer.write(covered, out_kind, merged)
            continue
        entries = log.read_range(topic, after=last, limit=limit)
        if not entries:
            break
        for entry in entries:
            if entry.id > head:  # never past what was committed when the load began
                last = head
                break
            last = entry.id
            count += 1
            raw = _raw_event(entry.record, session_id) if compactor else event_of(entry.record)
            if compactor is None:
                await writer.write(entry.id, entry.record.kind, raw)
                continue
            for covered, out_kind, merged in compactor.feed(entry.id, entry.record.kind, raw):
                await writer.write(covered, out_kind, merged)
    if compactor is not None:
        for event_id, kind, merged in compactor.finish():
            await writer.write(event_id, kind, merged)
    return count, last


def _raw_event(record: LogRecord, session_id: str) -> Any:
    """:func:`event_of` for the compacting path: a record of this session keeps its payload as it
    is, without the session id put back (:meth:`_ReplayWriter.write` does that, once per event it
    writes: most chunks are merged, and a copy per chunk was a third of a long replay's time)."""
    payload = record.payload
    if (
        type(payload) is dict
        and "session_id" not in payload
        and "index_hint" not in payload
        and record.headers.get("session_id") == session_id
    ):
        return payload
    return event_of(record)


def _raw_row(
    kind: str, headers: Mapping[str, Any], at: int, payload: bytes, session_id: str
) -> Any:
    """:func:`_raw_event` for a plain row (``read_committed_rows``): no record built."""
    raw = orjson.loads(payload)
    if (
        type(raw) is dict
        and "session_id" not in raw
        and "index_hint" not in raw
        and headers.get("session_id") == session_id
    ):
        return raw
    return event_of(LogRecord.from_json(kind, payload, dict(headers), at))


class _ReplayWriter:
    """Decodes, translates and stamps one history event, and writes its messages as replayed."""

    __slots__ = ("attachment", "context_window", "profile", "runtime", "session_id", "topic")

    def __init__(
        self,
        session_id: str,
        attachment: Attachment,
        profile: Profile,
        context_window: int | None = None,
    ) -> None:
        self.session_id = session_id
        self.topic = agent_events_topic(session_id)
        self.attachment = attachment
        self.profile = profile
        self.context_window = context_window
        self.runtime = RuntimeTranslator(session_id=session_id, context_window=context_window)

    async def write(self, event_id: int, kind: str, raw: Any) -> None:
        if type(raw) is dict and "session_id" not in raw:
            raw = {"session_id": self.session_id, **raw}  # see _raw_event
        try:
            event = decode_session_event(kind, raw)
        except EventDecodeError as exc:
            logger.warning("skipping undecodable event %d of %s: %s", event_id, self.topic, exc)
            return
        if event.session_id != self.session_id:
            return  # sanitised topic names can collide; Harn re-filters too
        messages: list[Message]
        if isinstance(event, SessionRuntimeEvent):
            try:
                messages = self.runtime.translate(event.event, replay=True).messages
            except UnmappedRunError:  # pragma: no cover - a default session is set
                return
        elif isinstance(event, SessionAcpUpdate):
            messages = translate_proxied(event, profile=self.profile, replay=True)
        else:
            messages = translate(
                event, profile=self.profile, replay=True, context_window=self.context_window
            )
        for message in messages:
            await self.attachment.write_replayed(
                stamp_event_id(message, self.profile, self.session_id, event_id)
            )

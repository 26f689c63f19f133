"""A session's history, read back from the event log and written to one attachment as wire messages."""

from __future__ import annotations

import logging
from typing import Any, Final

from acp_bridge.eventlog import EventLog
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
) -> tuple[int, int]:
    """Write the session's history in ``(after, upto]``, marked as replayed; returns (count, last id).

    ``upto`` is the last committed id when the replay starts (nothing past it may be shown: a
    crash could take it back). Events committed meanwhile are held by the (already attached)
    attachment and released after the response, so a busy session cannot keep a load from ever
    finishing. With ``compact``, runs of text chunks go out as one update per message, stamped
    with the id of the run's last event (:mod:`acp_bridge.translate.compaction`); ``count`` is the
    number of events covered either way.
    """
    topic = agent_events_topic(session_id)
    head = upto
    # A client may have acked ids this log no longer has (a crash lost the uncommitted tail):
    # whatever the log assigns from here on is new to it.
    count, last = 0, min(after, head)
    writer = _ReplayWriter(session_id, attachment, profile)
    compactor = ReplayCompactor() if compact else None
    while last < head:
        entries = log.read_range(topic, after=last, limit=min(REPLAY_PAGE, head - last))
        if not entries:
            break
        for entry in entries:
            last = entry.id
            count += 1
            raw = event_of(entry.record)
            if compactor is None:
                await writer.write(entry.id, entry.record.kind, raw)
                continue
            for event_id, kind, merged in compactor.feed(entry.id, entry.record.kind, raw):
                await writer.write(event_id, kind, merged)
    if compactor is not None:
        for event_id, kind, merged in compactor.finish():
            await writer.write(event_id, kind, merged)
    return count, last


class _ReplayWriter:
    """Decodes, translates and stamps one history event, and writes its messages as replayed."""

    __slots__ = ("attachment", "profile", "runtime", "session_id", "topic")

    def __init__(self, session_id: str, attachment: Attachment, profile: Profile) -> None:
        self.session_id = session_id
        self.topic = agent_events_topic(session_id)
        self.attachment = attachment
        self.profile = profile
        self.runtime = RuntimeTranslator(session_id=session_id)

    async def write(self, event_id: int, kind: str, raw: Any) -> None:
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
            messages = translate(event, profile=self.profile, replay=True)
        for message in messages:
            await self.attachment.write_replayed(
                stamp_event_id(message, self.profile, self.session_id, event_id)
            )

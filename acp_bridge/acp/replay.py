"""A session's history, read back from the event log and written to one attachment as wire messages."""

from __future__ import annotations

import logging
from typing import Final

from acp_bridge.eventlog import EventLog
from acp_bridge.events import EventDecodeError, SessionRuntimeEvent, decode_session_event
from acp_bridge.sinks import agent_events_topic, event_of
from acp_bridge.translate import Message, Profile, translate
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
) -> tuple[int, int]:
    """Write the session's history in ``(after, upto]``, marked as replayed; returns (count, last id).

    ``upto`` is the last committed id when the replay starts (nothing past it may be shown: a
    crash could take it back). Events committed meanwhile are held by the (already attached)
    attachment and released after the response, so a busy session cannot keep a load from ever
    finishing.
    """
    topic = agent_events_topic(session_id)
    head = upto
    # A client may have acked ids this log no longer has (a crash lost the uncommitted tail):
    # whatever the log assigns from here on is new to it.
    count, last = 0, min(after, head)
    runtime = RuntimeTranslator(session_id=session_id)
    while last < head:
        entries = log.read_range(topic, after=last, limit=min(REPLAY_PAGE, head - last))
        if not entries:
            break
        for entry in entries:
            last = entry.id
            raw = event_of(entry.record)
            try:
                event = decode_session_event(entry.record.kind, raw)
            except EventDecodeError as exc:
                logger.warning("skipping undecodable event %d of %s: %s", entry.id, topic, exc)
                continue
            if event.session_id != session_id:
                continue  # sanitised topic names can collide; Harn re-filters too
            messages: list[Message]
            if isinstance(event, SessionRuntimeEvent):
                try:
                    messages = runtime.translate(event.event, replay=True).messages
                except UnmappedRunError:  # pragma: no cover - a default session is set
                    continue
            else:
                messages = translate(event, profile=profile, replay=True)
            for message in messages:
                await attachment.write_replayed(
                    stamp_event_id(message, profile, session_id, entry.id)
                )
            count += 1
    return count, last

"""``EventLogSink``: persists a session's events to the event log, in emit order.

Topic ``observability.agent_events.<session id, sanitised>``; one record per event with kind = the event's
``type`` and headers ``{session_id}`` (Harn's). The payload is the event's serde JSON *without* its
top-level ``session_id``, which every record of the topic would otherwise repeat (the header has it):
:func:`event_of` puts it back. Records written before that change (payload
``{index_hint, session_id, event}``, Harn's own record shape) are read the same way; :func:`harn_payload`
rebuilds that shape for whoever exports records for Harn's tools. Decision 0019.

Harn's first version spawned one task per append and so lost ordering; here the append is synchronous
(the log assigns the id in memory and commits in the background), so records are in emit order and the
id is known at once: :meth:`EventLogSink.append` returns it (the ACP layer's session journal uses that to
stamp what it forwards), and a sink registered after this one can read it with
:meth:`EventLogSink.last_event_id`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson

from acp_bridge.eventlog import EventLog, LogRecord, sanitize_topic_component
from acp_bridge.events.harn import TEXT_CHUNK_TYPES
from acp_bridge.events.session_event import ACP_KIND_PREFIX, RUNTIME_KIND_PREFIX, SessionEvent

__all__ = [
    "AGENT_EVENTS_TOPIC_PREFIX",
    "EventLogSink",
    "agent_events_topic",
    "event_of",
    "harn_payload",
]

logger = logging.getLogger(__name__)

AGENT_EVENTS_TOPIC_PREFIX = "observability.agent_events."


def agent_events_topic(session_id: str) -> str:
    """The event-log topic holding ``session_id``'s agent events."""
    return AGENT_EVENTS_TOPIC_PREFIX + sanitize_topic_component(session_id)


_STATE_LOCK = threading.Lock()

_CHUNK_OPENINGS = {
    chunk.model_fields["type"].default: b'{"type":"%s","content":'
    % chunk.model_fields["type"].default.encode()
    for chunk in TEXT_CHUNK_TYPES
}
"""The serde JSON of a text chunk without its session_id, up to its content string."""


class EventLogSink:
    """Appends every event it receives to ``log`` under the session's topic.

    Failures are logged and counted (``append_errors``), never raised into the emitter.
    """

    def __init__(self, log: EventLog, session_id: str) -> None:
        self.log = log
        self.session_id = session_id
        self.topic = agent_events_topic(session_id)
        self.append_errors = 0
        self._headers = {"session_id": session_id}
        # A copy: orjson over-allocates the buffers it returns (>= 4 KiB), and this one lives long.
        self._session_field = b'"session_id":%s,' % bytes(memoryview(orjson.dumps(session_id)))
        self._prefixes: dict[str, tuple[bytes, int]] = {}
        # Made by the first handle_event: the bridge appends through append() and never needs it.
        self._last: threading.local | None = None

    def handle_event(self, event: SessionEvent) -> None:
        """Append ``event`` and remember its id for the calling thread."""
        self._thread_state().event_id = self.append(event)

    def _thread_state(self) -> threading.local:
        last = self._last
        if last is None:
            with _STATE_LOCK:
                last = self._last
                if last is None:
                    last = self._last = threading.local()
        return last

    def append(self, event: SessionEvent) -> int | None:
        """Append ``event`` and return its id (``None`` if the append failed; that is logged)."""
        now = time.time_ns() // 1_000_000
        kind = event.type
        if (
            type(event) in TEXT_CHUNK_TYPES
            and not event.__pydantic_extra__  # type: ignore[union-attr]
            and event.session_id == self.session_id
        ):
            # The most frequent events: their serde form without session_id, written directly.
            body = _CHUNK_OPENINGS[kind] + orjson.dumps(event.content) + b"}"  # type: ignore[union-attr]
        else:
            # The event is serialised exactly once on its way to disk; only its session_id is cut.
            body = event.to_json()
            cut = self._prefixes.get(kind)
            if cut is None:
                cut = self._prefixes[kind] = self._prefix_of(kind)
            prefix, keep = cut
            if body.startswith(prefix):
                body = body[:keep] + body[len(prefix) :]
        record = LogRecord.from_json(kind, body, self._headers, now)
        try:
            return self.log.append(self.topic, record)
        except Exception as exc:
            self.append_errors += 1
            if self.append_errors == 1 or self.append_errors % 1000 == 0:
                logger.error(
                    "event log append failed for session %s (%d so far): %s",
                    self.session_id,
                    self.append_errors,
                    exc,
                )
            return None

    def _prefix_of(self, kind: str) -> tuple[bytes, int]:
        """Where ``session_id`` sits in the serde JSON of events of ``kind``: the bytes that start
        such an event, and how many of them to keep. Harn events open with ``type`` then
        ``session_id``, runtime events with ``session_id``; an event that doesn't start this way
        (or has nothing after its ``session_id``) is stored whole."""
        if kind.startswith((RUNTIME_KIND_PREFIX, ACP_KIND_PREFIX)):
            return b"{" + self._session_field, 1
        opening = b'{"type":%s,' % orjson.dumps(kind)
        return opening + self._session_field, len(opening)

    def last_event_id(self) -> int | None:
        """The id of the last event this thread appended through this sink (``None`` if it failed)."""
        event_id: int | None = getattr(self._last, "event_id", None) if self._last else None
        return event_id


def event_of(record: LogRecord) -> Any:
    """The event JSON (as decoded JSON) that an :class:`EventLogSink` record holds."""
    payload = record.payload
    if not isinstance(payload, dict):
        return payload
    if "index_hint" in payload and "event" in payload:  # Harn's record shape (older files)
        return payload["event"]
    if "session_id" in payload:
        return payload
    session_id = record.headers.get("session_id")
    if not isinstance(session_id, str):
        return payload
    return {"session_id": session_id, **payload}


def harn_payload(record: LogRecord) -> dict[str, Any]:
    """The record's payload in Harn's record shape, ``{index_hint, session_id, event}``."""
    event = event_of(record)
    session_id = event.get("session_id") if isinstance(event, dict) else None
    return {"index_hint": record.occurred_at_ms, "session_id": session_id, "event": event}

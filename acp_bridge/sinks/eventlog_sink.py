"""``EventLogSink``: persists a session's events to the event log, in emit order.

Topic ``observability.agent_events.<session id, sanitised>``; one record per event with kind = the event's
``type``, payload ``{index_hint, session_id, event}`` and headers ``{session_id}`` (Harn's format).

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

import orjson

from acp_bridge.eventlog import EventLog, LogRecord, sanitize_topic_component
from acp_bridge.events.session_event import SessionEvent

__all__ = ["AGENT_EVENTS_TOPIC_PREFIX", "EventLogSink", "agent_events_topic"]

logger = logging.getLogger(__name__)

AGENT_EVENTS_TOPIC_PREFIX = "observability.agent_events."


def agent_events_topic(session_id: str) -> str:
    """The event-log topic holding ``session_id``'s agent events."""
    return AGENT_EVENTS_TOPIC_PREFIX + sanitize_topic_component(session_id)


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
        self._session_json = bytes(memoryview(orjson.dumps(session_id)))
        self._last = threading.local()

    def handle_event(self, event: SessionEvent) -> None:
        """Append ``event`` and remember its id for the calling thread."""
        self._last.event_id = self.append(event)

    def append(self, event: SessionEvent) -> int | None:
        """Append ``event`` and return its id (``None`` if the append failed; that is logged)."""
        now = time.time_ns() // 1_000_000
        # The payload is built as JSON bytes around the event's own serde encoding, so each event
        # is serialised exactly once on its way to disk.
        payload = b'{"index_hint":%d,"session_id":%s,"event":%s}' % (
            now,
            self._session_json,
            event.to_json(),
        )
        record = LogRecord.from_json(event.type, payload, self._headers, now)
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

    def last_event_id(self) -> int | None:
        """The id of the last event this thread appended through this sink (``None`` if it failed)."""
        event_id: int | None = getattr(self._last, "event_id", None)
        return event_id

"""A session's journal: the one sink a live session has in the registry.

It appends each event to the event log (which gives the event its id) and publishes it, with that
id, to the session's fan-out, in id order, from whichever thread the event was emitted on.
"""

from __future__ import annotations

import asyncio
import threading

from acp_bridge.events.session_event import SessionEvent
from acp_bridge.sinks import EventLogSink

from .delivery import Attachment, SessionFanout

__all__ = ["SessionJournal"]


class SessionJournal:
    """Appends a session's events and publishes them to its fan-out, in the order of their ids.

    Events reach clients in the order of their ids, which is the order of the log, even when several
    threads emit for one session: the append and the hand-off to the event loop happen under one
    lock. On the loop's thread an event is published at once, unless events from other threads are
    still on their way to the loop; then it queues behind them. (Without this, a client could see id
    6 after id 7, ack 7, and lose 6 on its next ``session/load``.)
    """

    def __init__(
        self,
        log_sink: EventLogSink,
        fanout: SessionFanout,
        loop: asyncio.AbstractEventLoop,
        loop_thread: int,
    ) -> None:
        self._log_sink = log_sink
        self._fanout = fanout
        self._loop = loop
        self._loop_thread = loop_thread
        self._lock = threading.Lock()
        self._in_flight = 0  # publishes handed to the loop from another thread, not run yet

    def handle_event(self, event: SessionEvent, exclude: Attachment | None = None) -> None:
        """Append ``event``, then publish it to every attachment but ``exclude``, in id order.

        The registry calls it for every event of the session; the session calls it with ``exclude``
        to show a prompt to every client but the one that sent it.
        """
        on_loop = threading.get_ident() == self._loop_thread
        with self._lock:
            event_id = self._log_sink.append(event)
            direct = on_loop and self._in_flight == 0
            if not direct:
                self._in_flight += 1
                self._loop.call_soon_threadsafe(self._publish_queued, event, event_id, exclude)
        if direct:
            # Nothing queued can run before this: it runs on the loop's own thread, right now.
            self._fanout.publish(event, event_id, exclude)

    def _publish_queued(
        self, event: SessionEvent, event_id: int | None, exclude: Attachment | None
    ) -> None:
        try:
            self._fanout.publish(event, event_id, exclude)
        finally:
            with self._lock:
                self._in_flight -= 1

"""``MultiSink``: one sink that fans an event out to several, in order."""

from __future__ import annotations

import threading

from acp_bridge.events.session_event import SessionEvent

from .registry import AgentEventSink, call_sink

__all__ = ["MultiSink"]


class MultiSink:
    """Fans each event out to its sinks in the order they were pushed.

    The sink list is snapshotted before the fan-out, so a sink may push another sink re-entrantly;
    one sink's exception is logged and the rest still run.
    """

    def __init__(self, sinks: list[AgentEventSink] | None = None) -> None:
        self._lock = threading.Lock()
        self._sinks: tuple[AgentEventSink, ...] = tuple(sinks or ())

    def push(self, sink: AgentEventSink) -> None:
        """Add ``sink`` at the end."""
        with self._lock:
            self._sinks = (*self._sinks, sink)

    def __len__(self) -> int:
        return len(self._sinks)

    def is_empty(self) -> bool:
        """True when no sink has been pushed."""
        return not self._sinks

    def handle_event(self, event: SessionEvent) -> None:
        """Deliver ``event`` to every sink, in order."""
        for sink in self._sinks:
            call_sink(sink, event)

"""The session-scoped sink registry: where every agent event enters the bridge.

Semantics follow Harn's registry (seed 002): sinks are registered per session id and called in
registration order; ``emit_event`` snapshots the session's sinks and calls them without holding any lock
(a sink may emit or register re-entrantly); clearing a session removes all its sinks. Two additions make
it safe to host many sessions in one process: a sink that raises is logged and contained (the emitter and
the other sinks carry on), and the registry is a class, so tests and embedders can own one instead of
sharing the process-wide default.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol, runtime_checkable

from acp_bridge.events.harn import PersistedAgentEvent
from acp_bridge.events.session_event import SessionEvent

__all__ = [
    "AgentEventSink",
    "SinkRegistry",
    "call_sink",
    "clear_session_sinks",
    "default_registry",
    "emit_event",
    "register_sink",
    "reset_all_sinks",
    "session_external_sink_count",
    "unregister_sink",
]

logger = logging.getLogger(__name__)


@runtime_checkable
class AgentEventSink(Protocol):
    """Anything that consumes agent events. ``handle_event`` must not block for long."""

    def handle_event(self, event: SessionEvent) -> None:
        """Consume one event (a Harn event, or a runtime event bound to a session)."""


def call_sink(sink: AgentEventSink, event: SessionEvent) -> None:
    """Call one sink, logging (never propagating) its exception."""
    try:
        sink.handle_event(event)
    except Exception:
        _log_sink_failure(sink, event)


def _log_sink_failure(sink: AgentEventSink, event: SessionEvent) -> None:
    logger.exception(
        "agent event sink %r failed on %s event for session %s",
        sink,
        event.type,
        event.session_id,
    )


class SinkRegistry:
    """Sinks per session id; thread-safe, re-entrant, and lock-free on the emit path.

    Each session's sinks are an immutable tuple replaced on change (copy-on-write), so ``emit_event``
    reads a consistent snapshot without taking the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sinks: dict[str, tuple[AgentEventSink, ...]] = {}

    def register_sink(self, session_id: str, sink: AgentEventSink) -> None:
        """Append ``sink`` to the session's sinks (duplicates allowed, as in Harn)."""
        with self._lock:
            self._sinks[session_id] = (*self._sinks.get(session_id, ()), sink)

    def unregister_sink(self, session_id: str, sink: AgentEventSink) -> bool:
        """Remove one registration of ``sink``; returns whether it was registered."""
        with self._lock:
            sinks = list(self._sinks.get(session_id, ()))
            for i, registered in enumerate(sinks):
                if registered is sink:
                    del sinks[i]
                    if sinks:
                        self._sinks[session_id] = tuple(sinks)
                    else:
                        del self._sinks[session_id]
                    return True
        return False

    def clear_session_sinks(self, session_id: str) -> None:
        """Remove every sink of the session, the persistence sink included."""
        with self._lock:
            self._sinks.pop(session_id, None)

    def reset_all_sinks(self) -> None:
        """Remove every sink of every session."""
        with self._lock:
            self._sinks.clear()

    def session_external_sink_count(self, session_id: str) -> int:
        """How many sinks are registered for the session."""
        return len(self._sinks.get(session_id, ()))

    def emit_event(self, event: SessionEvent | PersistedAgentEvent) -> None:
        """Deliver ``event`` to its session's sinks, in registration order.

        A persisted envelope is accepted and unwrapped. A sink's exception is logged and does not stop
        the other sinks.
        """
        if isinstance(event, PersistedAgentEvent):
            event = event.event
        for sink in self._sinks.get(event.session_id, ()):
            # call_sink's containment, written out: this loop is on every event's path.
            try:
                sink.handle_event(event)
            except Exception:
                _log_sink_failure(sink, event)


default_registry = SinkRegistry()
"""The process-wide registry behind the module-level functions."""


def register_sink(session_id: str, sink: AgentEventSink) -> None:
    """Register ``sink`` for ``session_id`` on the default registry."""
    default_registry.register_sink(session_id, sink)


def unregister_sink(session_id: str, sink: AgentEventSink) -> bool:
    """Remove one registration of ``sink`` from the default registry."""
    return default_registry.unregister_sink(session_id, sink)


def clear_session_sinks(session_id: str) -> None:
    """Remove every sink of ``session_id`` from the default registry."""
    default_registry.clear_session_sinks(session_id)


def reset_all_sinks() -> None:
    """Empty the default registry."""
    default_registry.reset_all_sinks()


def emit_event(event: SessionEvent | PersistedAgentEvent) -> None:
    """Deliver ``event`` through the default registry."""
    default_registry.emit_event(event)


def session_external_sink_count(session_id: str) -> int:
    """How many sinks the default registry holds for ``session_id``."""
    return default_registry.session_external_sink_count(session_id)

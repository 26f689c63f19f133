"""What travels through the sink registry: a Harn event, or a runtime-dialect event bound to a session.

Harn's events carry their session id; the run-style runtime's do not (only ``RunStarted`` names a
session, and its own, not the ACP one). :class:`SessionRuntimeEvent` binds a runtime event to the ACP
session it belongs to, and gives it the two things every sink relies on: a ``type`` (the event-log
record kind, ``runtime.<Variant>``) and ``to_json()`` (what the log and the JSONL file store:
``{"session_id": ..., "runtime": <the event in its own serde form>}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import orjson

from .errors import EventDecodeError
from .harn import AgentEventBase, parse_event
from .runtime import AnyRuntimeEvent, parse_runtime_event

__all__ = [
    "RUNTIME_KIND_PREFIX",
    "SessionEvent",
    "SessionRuntimeEvent",
    "decode_session_event",
]

RUNTIME_KIND_PREFIX: Final = "runtime."


@dataclass(frozen=True, slots=True)
class SessionRuntimeEvent:
    """A runtime-dialect event delivered to one ACP session."""

    session_id: str
    event: AnyRuntimeEvent

    @property
    def type(self) -> str:
        """The record kind in the event log: ``runtime.<Variant>``."""
        return RUNTIME_KIND_PREFIX + self.event.variant

    def to_json(self) -> bytes:
        """``{"session_id": ..., "runtime": {...}}``."""
        return b'{"session_id":%s,"runtime":%s}' % (
            orjson.dumps(self.session_id),
            self.event.to_json(),
        )

    def to_dict(self) -> dict[str, Any]:
        """The same, as a dict."""
        return {"session_id": self.session_id, "runtime": self.event.to_dict()}

    @classmethod
    def from_dict(cls, data: Any) -> SessionRuntimeEvent:
        """Decode what :meth:`to_json` wrote."""
        if not isinstance(data, dict) or not isinstance(data.get("session_id"), str):
            raise EventDecodeError(
                "a session runtime event needs a string session_id", field="session_id"
            )
        runtime = data.get("runtime")
        if not isinstance(runtime, dict):
            raise EventDecodeError(
                "a session runtime event needs a 'runtime' object", field="runtime"
            )
        return cls(data["session_id"], parse_runtime_event(runtime))


SessionEvent: TypeAlias = AgentEventBase | SessionRuntimeEvent
"""Anything a backend emits through the sink registry."""


def decode_session_event(kind: str, data: Any) -> SessionEvent:
    """Rebuild an event from an event-log record (``kind`` tells the dialect)."""
    if kind.startswith(RUNTIME_KIND_PREFIX):
        return SessionRuntimeEvent.from_dict(data)
    return parse_event(data if isinstance(data, dict) else {})

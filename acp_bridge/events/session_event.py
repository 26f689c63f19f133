"""What travels through the sink registry: a Harn event, a runtime-dialect event bound to a session, or
an ACP ``session/update`` of a proxied stdio agent, kept as it came.

Harn's events carry their session id; the run-style runtime's do not (only ``RunStarted`` names a
session, and its own, not the ACP one). :class:`SessionRuntimeEvent` binds a runtime event to the ACP
session it belongs to, and gives it the two things every sink relies on: a ``type`` (the event-log
record kind, ``runtime.<Variant>``) and ``to_json()`` (what the log and the JSONL file store:
``{"session_id": ..., "runtime": <the event in its own serde form>}``).

:class:`SessionAcpUpdate` is the third record kind (``acp.session_update``): the ``update`` object of a
``session/update`` that a proxied ACP agent (``--agent acp:…``) sent, stored exactly as it came,
``{"session_id": ..., "update": {...}}``. Its meaning is ACP's own; nothing here checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

import orjson

from .errors import EventDecodeError
from .harn import AgentEventBase, parse_event
from .runtime import AnyRuntimeEvent, parse_runtime_event

__all__ = [
    "ACP_KIND_PREFIX",
    "ACP_UPDATE_KIND",
    "RUNTIME_KIND_PREFIX",
    "SessionAcpUpdate",
    "SessionEvent",
    "SessionRuntimeEvent",
    "decode_session_event",
]

RUNTIME_KIND_PREFIX: Final = "runtime."
ACP_KIND_PREFIX: Final = "acp."
ACP_UPDATE_KIND: Final = "acp.session_update"
"""The event-log record kind of a proxied agent's ``session/update``."""


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


@dataclass(frozen=True, slots=True)
class SessionAcpUpdate:
    """The ``update`` of a ``session/update`` a proxied ACP agent sent for one session, as it came."""

    session_id: str
    update: dict[str, Any]
    valid: bool | None = field(default=None, compare=False)
    """Whether ``update`` is valid for the ACP schema, if whoever built the event checked it
    (never stored: a decoded event is checked again where it matters)."""

    @property
    def type(self) -> str:
        """The record kind in the event log: ``acp.session_update``."""
        return ACP_UPDATE_KIND

    def to_json(self) -> bytes:
        """``{"session_id": ..., "update": {...}}``."""
        return orjson.dumps({"session_id": self.session_id, "update": self.update})

    def to_dict(self) -> dict[str, Any]:
        """The same, as a dict."""
        return {"session_id": self.session_id, "update": self.update}

    @classmethod
    def from_dict(cls, data: Any) -> SessionAcpUpdate:
        """Decode what :meth:`to_json` wrote."""
        if not isinstance(data, dict) or not isinstance(data.get("session_id"), str):
            raise EventDecodeError(
                "a proxied ACP update needs a string session_id", field="session_id"
            )
        update = data.get("update")
        if not isinstance(update, dict):
            raise EventDecodeError("a proxied ACP update needs an 'update' object", field="update")
        return cls(data["session_id"], update)


SessionEvent: TypeAlias = AgentEventBase | SessionRuntimeEvent | SessionAcpUpdate
"""Anything a backend emits through the sink registry."""


def decode_session_event(kind: str, data: Any) -> SessionEvent:
    """Rebuild an event from an event-log record (``kind`` tells the dialect)."""
    if kind.startswith(RUNTIME_KIND_PREFIX):
        return SessionRuntimeEvent.from_dict(data)
    if kind == ACP_UPDATE_KIND:
        return SessionAcpUpdate.from_dict(data)
    return parse_event(data if isinstance(data, dict) else {})

"""A session's log records as the inspector shows them: the event, and the wire messages it became.

Each record is rendered in the strict profile (what a standard ACP client is sent), stamped with its
event id, measured, and checked: against the schema (:class:`StrictChecker`) and against the
ordering rules (:class:`WireRules`). The user's prompt is shown as the ``session/prompt`` it came
in as (the log keeps its content, not its JSON-RPC id). Secrets are masked (:func:`redact`).
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from acp_bridge.acp.delivery import stamp_event_id
from acp_bridge.eventlog import LogEntry
from acp_bridge.events import (
    EventDecodeError,
    SessionAcpUpdate,
    SessionRuntimeEvent,
    decode_session_event,
)
from acp_bridge.events.harn import UserMessage
from acp_bridge.sinks import event_of
from acp_bridge.translate import Message, Profile, translate
from acp_bridge.translate.proxied import translate_proxied
from acp_bridge.translate.runtime import RuntimeTranslator, UnmappedRunError

from .conformance import StrictChecker, WireRules
from .redact import redact

__all__ = ["RecordReader", "export_line", "strict_checker"]


@functools.cache
def strict_checker() -> StrictChecker:
    """The shared schema checker (built on first use)."""
    return StrictChecker()


def export_line(entry: LogEntry) -> bytes:
    """One line of a session's JSONL export: the log record, secrets masked."""
    record = {
        "eventId": entry.id,
        "kind": entry.record.kind,
        "occurredAtMs": entry.record.occurred_at_ms,
        "event": redact(event_of(entry.record)),
    }
    return orjson.dumps(record) + b"\n"


class RecordReader:
    """Renders one session's records in order (the rules and the runtime translator keep state)."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self._rules = WireRules()
        self._runtime = RuntimeTranslator(session_id=session_id)
        self._checker = strict_checker()

    def item(self, entry: LogEntry) -> dict[str, Any]:
        """``{id, at, kind, event, wire, problem}`` for one log entry."""
        raw = event_of(entry.record)
        item: dict[str, Any] = {
            "id": entry.id,
            "at": entry.record.occurred_at_ms,
            "kind": entry.record.kind,
            "event": redact(raw),
            "wire": [],
            "problem": None,
        }
        try:
            event = decode_session_event(entry.record.kind, raw)
        except EventDecodeError as exc:
            item["problem"] = f"not a known event: {exc}"
            return item
        if event.session_id != self.session_id:
            return item  # sanitised topic names can collide
        if isinstance(event, UserMessage):
            prompt = {
                "jsonrpc": "2.0",
                "method": "session/prompt",
                "params": {"sessionId": self.session_id, "prompt": event.content},
            }
            problem = self._checker.problem(prompt, inbound=True, request=True)
            item["wire"].append(self._wire(prompt, "in", problem))
        messages: list[Message]
        if isinstance(event, SessionRuntimeEvent):
            try:
                messages = self._runtime.translate(event.event).messages
            except UnmappedRunError:  # pragma: no cover - a default session is set
                messages = []
        elif isinstance(event, SessionAcpUpdate):
            # Shown as the agent sent it (valid=True): the inspector's own check flags it if not.
            messages = translate_proxied(event, profile=Profile.STRICT, valid=True)
        else:
            messages = translate(event, profile=Profile.STRICT)
        for message in messages:
            stamp_event_id(message, Profile.STRICT, self.session_id, entry.id)
            problem = self._checker.problem(message, inbound=False) or self._rules.problem(message)
            item["wire"].append(self._wire(message, "out", problem))
        return item

    @staticmethod
    def _wire(message: Message, direction: str, problem: str | None) -> dict[str, Any]:
        params = message.get("params")
        update = params.get("update") if isinstance(params, dict) else None
        return {
            "direction": direction,
            "method": message.get("method"),
            "update": update.get("sessionUpdate") if isinstance(update, dict) else None,
            "size": len(orjson.dumps(message)),
            "message": redact(message),
            "problem": problem,
        }

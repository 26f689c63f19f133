"""Attachment on its own: the gate, the replay seam, tool calls announced before their updates."""

from __future__ import annotations

from typing import Any

import orjson

from acp_bridge.acp.delivery import Attachment
from acp_bridge.translate import Profile


class Collect:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any] | bytes) -> bool:
        self.sent.append(orjson.loads(message) if isinstance(message, bytes) else message)
        return True

    def send_many(self, messages: list[bytes]) -> bool:
        return all([self.send(m) for m in messages])

    async def send_wait(self, message: dict[str, Any] | bytes) -> bool:
        return self.send(message)


def update(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "session/update",
        "params": {"sessionId": "s", "update": {"sessionUpdate": kind, **fields}},
    }


def texts(sink: Collect) -> list[str]:
    return [m["params"]["update"]["content"]["text"] for m in sink.sent]


def chunk(text: str) -> dict[str, Any]:
    return update("agent_message_chunk", content={"type": "text", "text": text})


def test_the_gate_holds_until_opened_and_drops_what_the_replay_covered() -> None:
    sink = Collect()
    attachment = Attachment("s", Profile.STRICT, sink)
    for event_id in (4, 5, 6):
        attachment.deliver(chunk(f"e{event_id}"), event_id)
    assert sink.sent == []
    attachment.replayed_through = 5
    attachment.open_gate()
    assert texts(sink) == ["e6"]


def test_a_late_publish_the_replay_covered_is_not_sent_twice() -> None:
    # An event from another thread may still be on its way to the loop when the gate opens.
    sink = Collect()
    attachment = Attachment("s", Profile.STRICT, sink)
    attachment.replayed_through = 5
    attachment.open_gate()
    attachment.deliver(chunk("e5"), 5)
    attachment.deliver(chunk("e6"), 6)
    attachment.deliver(chunk("no id"))
    assert texts(sink) == ["e6", "no id"]


def test_an_update_for_an_unknown_tool_call_becomes_its_creation() -> None:
    sink = Collect()
    attachment = Attachment("s", Profile.STRICT, sink)
    attachment.open_gate()
    attachment.deliver(update("tool_call_update", toolCallId="t1", status="in_progress"))
    attachment.deliver(update("tool_call_update", toolCallId="t1", status="completed"))
    kinds = [
        (m["params"]["update"]["sessionUpdate"], m["params"]["update"].get("title"))
        for m in sink.sent
    ]
    assert kinds == [("tool_call", "t1"), ("tool_call_update", None)]


def test_the_announced_set_is_made_by_the_first_tool_call_and_then_kept() -> None:
    # Issue 10 (idle memory): an attachment that never sees a tool call holds no set.
    sink = Collect()
    attachment = Attachment("s", Profile.STRICT, sink)
    attachment.open_gate()
    attachment.deliver(chunk("no tools yet"))
    assert attachment.announced is None
    attachment.deliver(update("tool_call", toolCallId="t1", title="Read"))
    attachment.deliver(update("tool_call_update", toolCallId="t1", status="completed"))
    attachment.deliver(update("tool_call_update", toolCallId="t2", status="completed"))
    attachment.ensure_announced({"toolCallId": "t2", "title": "Edit"})
    attachment.ensure_announced({"toolCallId": "t3", "title": "Run"})
    kinds = [
        (m["params"]["update"]["sessionUpdate"], m["params"]["update"]["toolCallId"])
        for m in sink.sent[1:]
    ]
    assert kinds == [
        ("tool_call", "t1"),
        ("tool_call_update", "t1"),
        ("tool_call", "t2"),
        ("tool_call", "t3"),
    ]
    assert attachment.announced == {"t1", "t2", "t3"}

"""Text chunks take the template path in the fan-out and reach every client as the general path would."""

from __future__ import annotations

from typing import Any

import orjson

from acp_bridge.acp.delivery import Attachment, SessionFanout
from acp_bridge.events.harn import AgentMessageChunk, AgentThoughtChunk, ToolCall
from acp_bridge.translate import Profile, encode_message, stamp_event_id, translate


class Raw:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, message: dict[str, Any] | bytes) -> bool:
        self.sent.append(message if isinstance(message, bytes) else orjson.dumps(message))
        return True

    async def send_wait(self, message: dict[str, Any] | bytes) -> bool:
        return self.send(message)


def expected(event: Any, event_id: int, profile: Profile) -> list[bytes]:
    return [
        encode_message(stamp_event_id(m, profile, event.session_id, event_id), profile)
        for m in translate(event, profile=profile)
    ]


def attach(fanout: SessionFanout, profile: Profile, *, open_gate: bool = True) -> Raw:
    sink = Raw()
    attachment = Attachment(fanout.session_id, profile, sink)
    if open_gate:
        attachment.open_gate()
    fanout.attach(attachment)
    return sink


def test_each_client_gets_the_general_paths_bytes() -> None:
    fanout = SessionFanout("s1")
    strict, harn = attach(fanout, Profile.STRICT), attach(fanout, Profile.HARN)
    events = [
        AgentMessageChunk(session_id="s1", content='hello "world" é'),
        AgentThoughtChunk(session_id="s1", content="thinking\n"),
        ToolCall(
            session_id="s1", tool_call_id="t1", tool_name="read", raw_input={}, status="pending"
        ),
        AgentMessageChunk(session_id="s1", content="<think>x</think>y"),
    ]
    for event_id, event in enumerate(events, start=1):
        fanout.publish(event, event_id)
    for sink, profile in ((strict, Profile.STRICT), (harn, Profile.HARN)):
        want = [b for i, e in enumerate(events, start=1) for b in expected(e, i, profile)]
        assert sink.sent == want


def test_closed_gates_excluded_clients_and_replayed_ids_are_respected() -> None:
    fanout = SessionFanout("s1")
    live = attach(fanout, Profile.STRICT)
    held = attach(fanout, Profile.STRICT, open_gate=False)
    excluded_sink = Raw()
    excluded = Attachment("s1", Profile.STRICT, excluded_sink)
    excluded.open_gate()
    fanout.attach(excluded)
    caught_up_sink = Raw()
    caught_up = Attachment("s1", Profile.STRICT, caught_up_sink)
    caught_up.replayed_through = 1
    caught_up.open_gate()
    fanout.attach(caught_up)

    first = AgentMessageChunk(session_id="s1", content="one")
    second = AgentMessageChunk(session_id="s1", content="two")
    fanout.publish(first, 1, exclude=excluded)
    fanout.publish(second, 2)

    assert live.sent == expected(first, 1, Profile.STRICT) + expected(second, 2, Profile.STRICT)
    assert held.sent == []  # held until its session/load or new response
    assert excluded_sink.sent == expected(second, 2, Profile.STRICT)
    assert caught_up_sink.sent == expected(second, 2, Profile.STRICT)

    fanout.attachments[1].open_gate()
    assert held.sent == live.sent


def test_a_chunk_without_an_event_id_takes_the_general_path() -> None:
    fanout = SessionFanout("s1")
    sink = attach(fanout, Profile.STRICT)
    fanout.publish(AgentMessageChunk(session_id="s1", content="no id"), None)
    (message,) = [orjson.loads(b) for b in sink.sent]
    assert message["params"]["update"]["content"]["text"] == "no id"
    assert "_meta" not in message["params"]

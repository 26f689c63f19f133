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
        self.hand_offs = 0

    def send(self, message: dict[str, Any] | bytes) -> bool:
        self.sent.append(message if isinstance(message, bytes) else orjson.dumps(message))
        return True

    def send_many(self, messages: list[bytes]) -> bool:
        self.hand_offs += 1
        self.sent.extend(messages)
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


def run_of(events: list[Any], first_id: int = 1) -> list[tuple[int, Any, Attachment | None]]:
    return [(event_id, event, None) for event_id, event in enumerate(events, start=first_id)]


def test_a_batch_gives_the_same_bytes_as_publishing_one_by_one() -> None:
    events = [
        AgentMessageChunk(session_id="s1", content="a"),
        AgentMessageChunk(session_id="s1", content="b"),
        AgentThoughtChunk(session_id="s1", content="hmm"),
        ToolCall(
            session_id="s1", tool_call_id="t1", tool_name="read", raw_input={}, status="pending"
        ),
        AgentMessageChunk(session_id="s1", content="c"),
        AgentMessageChunk(session_id="s1", content="d"),
    ]
    for profile in (Profile.STRICT, Profile.HARN):
        one_by_one, batched = SessionFanout("s1"), SessionFanout("s1")
        single, batch = attach(one_by_one, profile), attach(batched, profile)
        for event_id, event, _ in run_of(events):
            one_by_one.publish(event, event_id)
        batched.publish_batch(run_of(events))
        assert batch.sent == single.sent
        assert len(batch.sent) == len(events)


def test_a_run_of_chunks_is_one_hand_off_per_strict_client() -> None:
    fanout = SessionFanout("s1")
    first, second = attach(fanout, Profile.STRICT), attach(fanout, Profile.STRICT)
    fanout.publish_batch(
        run_of([AgentMessageChunk(session_id="s1", content=str(i)) for i in range(32)])
    )
    assert (first.hand_offs, second.hand_offs) == (1, 1)
    assert first.sent == second.sent
    assert [orjson.loads(b)["params"]["_meta"]["harn"]["eventId"] for b in first.sent] == list(
        range(1, 33)
    )


def test_a_batch_respects_a_closed_gate_and_the_replay_cursor() -> None:
    fanout = SessionFanout("s1")
    live = attach(fanout, Profile.STRICT)
    held = attach(fanout, Profile.STRICT, open_gate=False)
    events = [AgentMessageChunk(session_id="s1", content=str(i)) for i in range(5)]
    fanout.publish_batch(run_of(events))
    assert len(live.sent) == 5
    assert held.sent == []
    fanout.attachments[1].replayed_through = 3
    fanout.attachments[1].open_gate()
    assert held.sent == live.sent[3:]

    caught_up_sink = Raw()
    caught_up = Attachment("s1", Profile.STRICT, caught_up_sink)
    caught_up.replayed_through = 7
    caught_up.open_gate()
    fanout.attach(caught_up)
    more = [AgentMessageChunk(session_id="s1", content=str(i)) for i in range(5, 10)]
    fanout.publish_batch(run_of(more, first_id=6))
    assert [
        orjson.loads(b)["params"]["update"]["content"]["text"] for b in caught_up_sink.sent
    ] == [
        "7",
        "8",
        "9",
    ]


def test_a_run_of_chunks_that_excludes_a_client_skips_it_and_stays_one_hand_off() -> None:
    fanout = SessionFanout("s1")
    shown = attach(fanout, Profile.STRICT)
    excluded_sink = attach(fanout, Profile.STRICT)
    excluded = fanout.attachments[1]
    run = [(i, AgentMessageChunk(session_id="s1", content=str(i)), excluded) for i in (1, 2, 3)]
    fanout.publish_batch([*run, (4, AgentMessageChunk(session_id="s1", content="4"), None)])
    assert excluded_sink.sent == expected(
        AgentMessageChunk(session_id="s1", content="4"), 4, Profile.STRICT
    )
    assert shown.hand_offs == 2  # the excluding run, then the run for everybody
    assert [orjson.loads(b)["params"]["update"]["content"]["text"] for b in shown.sent] == [
        "1",
        "2",
        "3",
        "4",
    ]

"""Proxied ACP updates (``acp:`` backend): the third record kind, its translation and schema check."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from acp_bridge.eventlog import MemoryEventLog
from acp_bridge.events import SessionAcpUpdate, decode_session_event
from acp_bridge.events.session_event import ACP_UPDATE_KIND
from acp_bridge.sinks import EventLogSink, agent_events_topic, event_of
from acp_bridge.translate import Profile
from acp_bridge.translate.proxied import translate_proxied
from acp_bridge.translate.schema_check import schema_problem, session_update_problem
from tests.support.acp_schema import acp_schema

VALID: list[dict[str, Any]] = [
    {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "hi"}},
    {"sessionUpdate": "agent_thought_chunk", "content": {"type": "text", "text": "hm"}},
    {"sessionUpdate": "user_message_chunk", "content": {"type": "text", "text": "q"}},
    {
        "sessionUpdate": "tool_call",
        "toolCallId": "t1",
        "title": "Read",
        "kind": "read",
        "status": "pending",
        "locations": [{"path": "/a", "line": 3}],
    },
    {
        "sessionUpdate": "tool_call_update",
        "toolCallId": "t1",
        "status": "completed",
        "content": [{"type": "content", "content": {"type": "text", "text": "ok"}}],
    },
    {
        "sessionUpdate": "plan",
        "entries": [{"content": "a", "priority": "high", "status": "pending"}],
    },
    {"sessionUpdate": "current_mode_update", "currentModeId": "ask"},
    {
        "sessionUpdate": "available_commands_update",
        "availableCommands": [{"name": "x", "description": "y"}],
    },
    {
        "sessionUpdate": "agent_message_chunk",
        "content": {"type": "text", "text": "m"},
        "_meta": {"a": 1},
    },
]

INVALID: list[dict[str, Any]] = [
    {"sessionUpdate": "agent_message_chunk"},
    {"sessionUpdate": "agent_message_chunk", "content": {"type": "text"}},
    {"sessionUpdate": "agent_message_chunk", "content": {"type": "nonsense", "text": "x"}},
    {"sessionUpdate": "made_up_kind", "content": {"type": "text", "text": "x"}},
    {"content": {"type": "text", "text": "x"}},
    {"sessionUpdate": "tool_call", "title": "no id"},
    {"sessionUpdate": "tool_call", "toolCallId": "t", "title": "x", "status": "exploded"},
    {"sessionUpdate": "tool_call_update", "toolCallId": 7},
    {"sessionUpdate": "plan", "entries": [{"content": "a"}]},
    {"sessionUpdate": "plan", "entries": "not a list"},
    {"sessionUpdate": "current_mode_update"},
]


@pytest.mark.parametrize("update", VALID + INVALID)
def test_the_bridges_schema_check_agrees_with_jsonschema(update: dict[str, Any]) -> None:
    reference = acp_schema().validator("SessionUpdate")
    expected_valid = not list(reference.iter_errors(update))
    assert (session_update_problem(update) is None) is expected_valid
    assert update in VALID if expected_valid else update in INVALID


def test_a_problem_names_where_it_is() -> None:
    problem = session_update_problem({"sessionUpdate": "tool_call", "title": "no id"})
    assert problem is not None
    assert "toolCallId" in problem
    assert schema_problem({"protocolVersion": 1}, "InitializeResponse") is None
    assert schema_problem({"protocolVersion": "1"}, "InitializeResponse") is not None


@pytest.mark.parametrize("update", VALID)
def test_a_valid_update_goes_to_every_profile_unchanged(update: dict[str, Any]) -> None:
    event = SessionAcpUpdate("s-1", copy.deepcopy(update))
    for profile in (Profile.STRICT, Profile.HARN):
        [message] = translate_proxied(event, profile=profile)
        assert message == {
            "jsonrpc": "2.0",
            "method": "session/update",
            "params": {"sessionId": "s-1", "update": update},
        }
        acp_schema().check("SessionNotification", message["params"])


@pytest.mark.parametrize("update", INVALID)
def test_strict_clients_never_get_an_invalid_update_harn_clients_get_it_as_sent(
    update: dict[str, Any],
) -> None:
    event = SessionAcpUpdate("s-1", update)
    assert translate_proxied(event, profile=Profile.STRICT) == []
    assert translate_proxied(event, profile=Profile.STRICT, valid=False) == []
    [message] = translate_proxied(event, profile=Profile.HARN)
    assert message["params"]["update"] == update


def test_replay_marks_a_copy_and_never_the_stored_update() -> None:
    update = {
        "sessionUpdate": "agent_message_chunk",
        "content": {"type": "text", "text": "hi"},
        "_meta": {"x": {"y": 1}},
    }
    stored = copy.deepcopy(update)
    event = SessionAcpUpdate("s-1", update)
    [message] = translate_proxied(event, profile=Profile.STRICT, replay=True)
    assert message["params"]["update"]["_meta"] == {"x": {"y": 1}, "harn": {"replayed": True}}
    acp_schema().check("SessionNotification", message["params"])
    [harn] = translate_proxied(event, profile=Profile.HARN, replay=True)
    assert harn["_harn"] == {"replayed": True}
    assert update == stored


def test_proxied_updates_are_a_third_record_kind_stored_as_they_came() -> None:
    log = MemoryEventLog()
    sink = EventLogSink(log, "s-1")
    update = {"sessionUpdate": "made_up_kind", "weird": [1, {"s-1": None}]}
    event = SessionAcpUpdate("s-1", update)
    assert sink.append(event) == 1
    [entry] = log.read_range(agent_events_topic("s-1"))
    assert entry.record.kind == ACP_UPDATE_KIND == "acp.session_update"
    assert entry.record.payload == {"update": update}  # the session id lives in the header
    assert decode_session_event(entry.record.kind, event_of(entry.record)) == event


def test_an_earlier_check_is_trusted_and_never_stored() -> None:
    update = {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "hi"}}
    # The backend checked it already: the translation does not check again.
    assert translate_proxied(SessionAcpUpdate("s-1", update, valid=False)) == []
    assert SessionAcpUpdate("s-1", update, valid=True) == SessionAcpUpdate("s-1", update)
    assert b"valid" not in SessionAcpUpdate("s-1", update, valid=True).to_json()

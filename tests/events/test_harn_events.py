"""Harn's AgentEvent models: serde form, round trips, envelopes, unknown types, errors."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from acp_bridge.events import (
    EVENT_TYPES,
    EventDecodeError,
    PersistedAgentEvent,
    UnknownAgentEvent,
    dump_event,
    dump_record,
    parse_event,
    parse_record,
)
from acp_bridge.events import harn as h
from acp_bridge.events.harn_types import (
    ToolCallErrorCategory,
    ToolCallStatus,
    ToolKind,
    WorkerEvent,
)

from .harn_spec import SPEC
from .strategies import any_event, event_strategy


def roundtrip(obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(dump_event(parse_event(orjson.dumps(obj))))
    return result


def test_every_seed_variant_has_a_model() -> None:
    # 61 variants of seed 001 + TurnStart/TurnEnd of seed 002.
    assert len(EVENT_TYPES) == 63
    assert set(EVENT_TYPES) == set(SPEC)


@pytest.mark.parametrize("event_type", sorted(SPEC))
def test_model_fields_follow_the_seed_declaration_order(event_type: str) -> None:
    model_fields = [name for name in EVENT_TYPES[event_type].model_fields if name != "type"]
    assert model_fields == ["session_id", *(name for name, _ in SPEC[event_type])]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(any_event)
def test_json_model_json_is_the_identity(obj: dict[str, Any]) -> None:
    line = orjson.dumps(obj)
    event = parse_event(line)
    assert orjson.loads(event.to_json()) == obj
    assert list(orjson.loads(event.to_json())) == list(obj)  # same key order as serde
    assert parse_event(event.to_json()) == event


@settings(max_examples=25, deadline=None)
@given(event_strategy("tool_call_update"))
def test_byte_identity_for_compact_canonical_lines(obj: dict[str, Any]) -> None:
    # No floats in this variant, so the bytes are fully determined by the canonical form.
    line = orjson.dumps(obj)
    assert dump_event(parse_event(line)) == line


def test_tool_call_update_durations_serialize_when_present_and_skip_when_absent() -> None:
    terminal = h.ToolCallUpdate(
        session_id="s",
        tool_call_id="tc-1",
        tool_name="read",
        status=ToolCallStatus.COMPLETED,
        duration_ms=42,
        execution_duration_ms=7,
    )
    value = terminal.to_dict()
    assert value["duration_ms"] == 42
    assert value["execution_duration_ms"] == 7
    intermediate = h.ToolCallUpdate(
        session_id="s", tool_call_id="tc-1", tool_name="read", status=ToolCallStatus.IN_PROGRESS
    )
    value = intermediate.to_dict()
    assert "duration_ms" not in value
    assert "execution_duration_ms" not in value
    # Fields without skip_serializing_if are always written, as null.
    assert value["raw_output"] is None
    assert value["error"] is None


def test_tool_call_update_deserializes_without_duration_fields_for_back_compat() -> None:
    event = parse_event(
        {
            "type": "tool_call_update",
            "session_id": "s",
            "tool_call_id": "tc-1",
            "tool_name": "read",
            "status": "completed",
            "raw_output": None,
            "error": None,
        }
    )
    assert isinstance(event, h.ToolCallUpdate)
    assert event.duration_ms is None
    assert event.execution_duration_ms is None


def test_option_fields_may_be_missing_on_input() -> None:
    # serde treats a missing Option<T> as None even without #[serde(default)].
    event = parse_event(
        {
            "type": "tool_call_update",
            "session_id": "s",
            "tool_call_id": "t",
            "tool_name": "read",
            "status": "failed",
        }
    )
    assert event.to_dict()["raw_output"] is None


def test_tool_call_status_serde() -> None:
    assert [s.value for s in ToolCallStatus] == ["pending", "in_progress", "completed", "failed"]
    assert json.dumps(ToolCallStatus.IN_PROGRESS) == '"in_progress"'


def test_tool_call_error_category_serializes_as_snake_case() -> None:
    event = parse_event(
        {
            "type": "tool_call_update",
            "session_id": "s",
            "tool_call_id": "t",
            "tool_name": "x",
            "status": "failed",
            "raw_output": None,
            "error": "boom",
            "error_category": "parse_aborted",
        }
    )
    assert event.error_category is ToolCallErrorCategory.PARSE_ABORTED
    assert event.to_dict()["error_category"] == "parse_aborted"


@pytest.mark.parametrize(
    ("serde", "acp"),
    [
        ({"kind": "harn_builtin"}, "harn_builtin"),
        ({"kind": "host_bridge"}, "host_bridge"),
        ({"kind": "provider_native"}, "provider_native"),
        (
            {"kind": "mcp_server", "server_name": "linear"},
            {"kind": "mcp_server", "serverName": "linear"},
        ),
    ],
)
def test_tool_executor_round_trips_with_adjacent_tag(serde: dict[str, str], acp: Any) -> None:
    raw = {
        "type": "tool_call_update",
        "session_id": "s",
        "tool_call_id": "t",
        "tool_name": "x",
        "status": "completed",
        "raw_output": None,
        "error": None,
        "executor": serde,
    }
    event = parse_event(raw)
    assert event.to_dict()["executor"] == serde
    assert event.executor.to_acp() == acp


def test_mcp_executor_requires_server_name() -> None:
    with pytest.raises(EventDecodeError, match="server_name"):
        parse_event(
            {
                "type": "tool_call_update",
                "session_id": "s",
                "tool_call_id": "t",
                "tool_name": "x",
                "status": "completed",
                "executor": {"kind": "mcp_server"},
            }
        )


def test_worker_event_status_strings_cover_all_variants() -> None:
    expected = {
        "WorkerSpawned": ("running", False),
        "WorkerProgressed": ("progressed", False),
        "WorkerWaitingForInput": ("awaiting_input", False),
        "WorkerSuspended": ("suspended", False),
        "WorkerResumed": ("running", False),
        "WorkerCompleted": ("completed", True),
        "WorkerFailed": ("failed", True),
        "WorkerStopped": ("stopped", True),
        "WorkerCancelled": ("cancelled", True),
    }
    assert {e.as_str(): (e.as_status(), e.is_terminal()) for e in WorkerEvent} == expected


def test_worker_update_serializes_event_as_its_variant_name() -> None:
    event = parse_event(
        {
            "type": "worker_update",
            "session_id": "s",
            "worker_id": "w",
            "worker_name": "n",
            "worker_task": "t",
            "worker_mode": "m",
            "event": "WorkerWaitingForInput",
            "status": "awaiting_input",
            "metadata": {},
            "audit": None,
        }
    )
    assert event.event is WorkerEvent.WORKER_WAITING_FOR_INPUT
    assert event.to_dict()["event"] == "WorkerWaitingForInput"


def test_tool_kind_helpers() -> None:
    assert ToolKind.SEARCH.is_read_only()
    assert not ToolKind.EDIT.is_read_only()
    assert ToolKind.MOVE.mutation_class() == "destructive"
    assert ToolKind.EXECUTE.mutation_class() == "ambient_side_effect"


def test_audit_record_is_written_in_full() -> None:
    event = parse_event(
        {
            "type": "tool_call",
            "session_id": "s",
            "tool_call_id": "t",
            "tool_name": "edit",
            "kind": None,
            "status": "pending",
            "raw_input": {},
            "audit": {"session_id": "session_42", "mutation_scope": "apply_workspace"},
        }
    )
    assert event.to_dict()["audit"] == {
        "session_id": "session_42",
        "parent_session_id": None,
        "run_id": None,
        "worker_id": None,
        "execution_kind": None,
        "mutation_scope": "apply_workspace",
        "approval_policy": None,
    }


def test_handoff_artifact_keeps_the_type_key() -> None:
    event = parse_event(
        {
            "type": "handoff",
            "session_id": "s",
            "artifact_id": "a",
            "handoff": {"_type": "handoff_artifact", "id": "handoff-1", "task": "Review"},
        }
    )
    handoff = event.to_dict()["handoff"]
    assert handoff["_type"] == "handoff_artifact"
    assert event.handoff.type_name == "handoff_artifact"
    assert "type_name" not in handoff


def test_every_event_has_session_id() -> None:
    for event_type in SPEC:
        assert "session_id" in EVENT_TYPES[event_type].model_fields


def test_persisted_envelope_is_accepted_wherever_an_event_is() -> None:
    line = (
        b'{"index":3,"emitted_at_ms":1714450000000,"frame_depth":null,'
        b'"type":"iteration_start","session_id":"s","iteration":1}'
    )
    record = parse_record(line)
    assert isinstance(record, PersistedAgentEvent)
    assert record.index == 3
    assert record.session_id == "s"
    assert dump_record(record) == line
    event = parse_event(line)
    assert isinstance(event, h.IterationStart)
    assert event.iteration == 1


def test_unknown_event_type_is_kept_and_round_trips() -> None:
    line = b'{"type":"plan_document_updated","session_id":"s","doc":{"a":1},"kind":"x"}'
    event = parse_event(line)
    assert isinstance(event, UnknownAgentEvent)
    assert event.type == "plan_document_updated"
    assert event.fields == {"doc": {"a": 1}, "kind": "x"}
    assert dump_event(event) == line


def test_unknown_fields_on_a_known_type_are_kept() -> None:
    line = (
        b'{"type":"tool_call_update","session_id":"s","tool_call_id":"t","tool_name":"x",'
        b'"status":"completed","raw_output":null,"error":null,"mutation_status":"applied"}'
    )
    assert dump_event(parse_event(line)) == line


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1,2]", "must be a JSON object"),
        (b'"tool_call"', "must be a JSON object"),
        (b'{"session_id":"s"}', "no string 'type'"),
        (
            b'{"type":"iteration_start","session_id":"s","iteration":"3"}',
            "iteration_start: iteration",
        ),
        (
            b'{"type":"iteration_start","session_id":"s","iteration":-1}',
            "iteration_start: iteration",
        ),
        (
            b'{"type":"iteration_start","session_id":"s","iteration":1.0}',
            "iteration_start: iteration",
        ),
        (
            b'{"type":"tool_call","session_id":"s","tool_call_id":"t","tool_name":"x",'
            b'"status":"bogus","raw_input":{}}',
            "tool_call: status",
        ),
        (b'{"type":"agent_message_chunk","session_id":"s"}', "agent_message_chunk: content"),
        (b'{"type":"agent_message_chunk","session_id":7,"content":"x"}', "session_id"),
        (b'{"type":"future","content":"x"}', "session_id"),
    ],
)
def test_bad_input_raises_a_clear_error(line: bytes, message: str) -> None:
    with pytest.raises(EventDecodeError, match=message):
        parse_event(line)


def test_decode_error_names_type_and_field() -> None:
    with pytest.raises(EventDecodeError) as info:
        parse_event(
            {"type": "skill_activated", "session_id": "s", "skill_name": "x", "iteration": 1}
        )
    assert info.value.event_type == "skill_activated"
    assert info.value.field == "reason"


def test_f64_accepts_integers_like_serde() -> None:
    event = parse_event(
        {
            "type": "budget_exhausted",
            "session_id": "s",
            "max_iterations": 3,
            "cost_usd": 1,
        }
    )
    assert event.cost_usd == 1.0
    assert isinstance(event.cost_usd, float)


def test_events_are_immutable() -> None:
    event = h.AgentMessageChunk(session_id="s", content="x")
    with pytest.raises(Exception, match="frozen"):
        event.content = "y"  # type: ignore[misc]

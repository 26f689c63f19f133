"""Tests for acp_bridge.events.runtime: the externally tagged runtime AgentEvent vocabulary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acp_bridge.events.errors import EventDecodeError
from acp_bridge.events.runtime import (
    FINISH_REASONS,
    TERMINAL_VARIANTS,
    VARIANTS,
    CompactionCircuitOpened,
    ContextBuilt,
    DoomLoopDetected,
    MessageCommitted,
    ModelStarted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    RuntimeEvent,
    RuntimeEventEnvelope,
    RuntimePayload,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionFailure,
    ToolExecutionFinished,
    ToolExecutionStarted,
    ToolExecutionSuccess,
    UnknownFinishReason,
    UnknownRuntimeEvent,
    UsageRecorded,
    dump_runtime_event,
    dump_runtime_record,
    parse_rfc3339,
    parse_runtime_event,
    parse_runtime_record,
)

RUN = "3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b"
SESSION = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
TS = "2026-06-25T15:12:51.123456789Z"

# Reference §2.3, with the elided values written out (17-variant form, then the HEAD-only forms).
REFERENCE_EXAMPLES: list[tuple[str, type[RuntimePayload] | None, bytes]] = [
    (
        "RunStarted",
        RunStarted,
        b'{"RunStarted":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"session_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","provider":"openai",'
        b'"model":"gpt-4o","timestamp":"2026-06-25T15:12:51.123456789Z"}}',
    ),
    (
        "ContextBuilt",
        ContextBuilt,
        b'{"ContextBuilt":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b","message_count":3,'
        b'"timestamp":"2026-06-25T15:12:51.124Z"}}',
    ),
    (
        "ModelStarted",
        ModelStarted,
        b'{"ModelStarted":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b","provider":"openai",'
        b'"model":"gpt-4o","iteration":1,"timestamp":"2026-06-25T15:12:51.125001Z"}}',
    ),
    (
        "TextDelta",
        TextDelta,
        b'{"TextDelta":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b","delta":"Hel",'
        b'"timestamp":"2026-06-25T15:12:52Z"}}',
    ),
    (
        "ToolCallStarted",
        ToolCallStarted,
        b'{"ToolCallStarted":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b","call_id":"call_abc",'
        b'"tool_name":"get_weather","timestamp":"2026-06-25T15:12:52.200000001Z"}}',
    ),
    (
        "ToolCallDelta",
        ToolCallDelta,
        b'{"ToolCallDelta":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b","call_id":"call_abc",'
        b'"delta":"{\\"city\\":\\"Par","timestamp":"2026-06-25T15:12:52.210Z"}}',
    ),
    (
        "ToolCallCompleted",
        ToolCallCompleted,
        b'{"ToolCallCompleted":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"call":{"id":"call_abc","name":"get_weather","arguments":{"city":"Paris"}},'
        b'"timestamp":"2026-06-25T15:12:52.300Z"}}',
    ),
    (
        "ToolExecutionStarted",
        ToolExecutionStarted,
        b'{"ToolExecutionStarted":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"call_id":"call_abc","tool_name":"get_weather","timestamp":"2026-06-25T15:12:52.400Z"}}',
    ),
    (
        "ToolExecutionFinished",
        ToolExecutionFinished,
        b'{"ToolExecutionFinished":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"call_id":"call_abc","tool_name":"get_weather","result":{"Success":{"output":'
        b'{"temp_c":21}}},"duration_ms":42,"timestamp":"2026-06-25T15:12:52.442Z"}}',
    ),
    (
        "ToolExecutionFinished",
        ToolExecutionFinished,
        b'{"ToolExecutionFinished":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"call_id":"call_abc","tool_name":"get_weather","result":{"Failure":{"error":"timeout"}},'
        b'"duration_ms":30000,"timestamp":"2026-06-25T15:13:22.400Z"}}',
    ),
    (
        "AssistantMessageCommitted",
        MessageCommitted,
        b'{"AssistantMessageCommitted":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"message_id":"0b6f3c2a-9e1d-4c8b-a7f6-5e4d3c2b1a09","timestamp":"2026-06-25T15:12:53Z"}}',
    ),
    (
        "ToolMessageCommitted",
        MessageCommitted,
        b'{"ToolMessageCommitted":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"message_id":"9d1e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a","timestamp":"2026-06-25T15:12:54Z"}}',
    ),
    (
        "UsageRecorded",
        UsageRecorded,
        b'{"UsageRecorded":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b","usage":'
        b'{"input_tokens":120,"output_tokens":30,"total_tokens":150},'
        b'"timestamp":"2026-06-25T15:12:52.900Z"}}',
    ),
    (
        "RunCompleted",
        RunCompleted,
        b'{"RunCompleted":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b","finish_reason":"stop",'
        b'"iterations":1,"timestamp":"2026-06-25T15:12:55.000000001Z"}}',
    ),
    (
        "RunCompleted",
        RunCompleted,
        b'{"RunCompleted":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"finish_reason":{"unknown":"end_turn"},"iterations":2,'
        b'"timestamp":"2026-06-25T15:12:55Z"}}',
    ),
    (
        "RunFailed",
        RunFailed,
        b'{"RunFailed":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"error":"iteration limit exceeded: 10","timestamp":"2026-06-25T15:12:55.500Z"}}',
    ),
    (
        "RunCancelled",
        RunCancelled,
        b'{"RunCancelled":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"timestamp":"2026-06-25T15:12:56Z"}}',
    ),
    (
        "DoomLoopDetected",
        DoomLoopDetected,
        b'{"DoomLoopDetected":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"description":"consecutive duplicate: get_weather called 3 times",'
        b'"timestamp":"2026-06-25T15:12:57Z"}}',
    ),
    (
        "CompactionCircuitOpened",
        CompactionCircuitOpened,
        b'{"CompactionCircuitOpened":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"consecutive_failures":1,"timestamp":"2026-06-25T15:12:58Z"}}',
    ),
    # HEAD-only forms.
    (
        "UsageRecorded",
        UsageRecorded,
        b'{"UsageRecorded":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b","usage":'
        b'{"input_tokens":120,"output_tokens":30,"total_tokens":150,'
        b'"cache_creation_input_tokens":null,"cache_read_input_tokens":1024,'
        b'"cached_input_tokens":null},"timestamp":"2026-06-25T15:12:52.900Z"}}',
    ),
    (
        "CacheMetrics",
        None,
        b'{"CacheMetrics":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"cache_creation_input_tokens":0,"cache_read_input_tokens":1024,'
        b'"cached_input_tokens":0,"timestamp":"2026-06-25T15:12:52.901Z"}}',
    ),
]

RUST_FIELD_ORDER: dict[str, list[str]] = {
    "RunStarted": ["run_id", "session_id", "provider", "model", "timestamp"],
    "ContextBuilt": ["run_id", "message_count", "timestamp"],
    "ModelStarted": ["run_id", "provider", "model", "iteration", "timestamp"],
    "TextDelta": ["run_id", "delta", "timestamp"],
    "ToolCallStarted": ["run_id", "call_id", "tool_name", "timestamp"],
    "ToolCallDelta": ["run_id", "call_id", "delta", "timestamp"],
    "ToolCallCompleted": ["run_id", "call", "timestamp"],
    "ToolExecutionStarted": ["run_id", "call_id", "tool_name", "timestamp"],
    "ToolExecutionFinished": [
        "run_id",
        "call_id",
        "tool_name",
        "result",
        "duration_ms",
        "timestamp",
    ],
    "AssistantMessageCommitted": ["run_id", "message_id", "timestamp"],
    "ToolMessageCommitted": ["run_id", "message_id", "timestamp"],
    "UsageRecorded": ["run_id", "usage", "timestamp"],
    "RunCompleted": ["run_id", "finish_reason", "iterations", "timestamp"],
    "RunFailed": ["run_id", "error", "timestamp"],
    "RunCancelled": ["run_id", "timestamp"],
    "DoomLoopDetected": ["run_id", "description", "timestamp"],
    "CompactionCircuitOpened": ["run_id", "consecutive_failures", "timestamp"],
}


def _line(variant: str, **fields: Any) -> bytes:
    return orjson.dumps({variant: {"run_id": RUN, **fields, "timestamp": TS}})


def _decode_error(data: bytes | str | dict[str, Any]) -> EventDecodeError:
    with pytest.raises(EventDecodeError) as info:
        parse_runtime_event(data)
    return info.value


# --- the reference examples --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "model", "line"),
    REFERENCE_EXAMPLES,
    ids=[f"{i:02d}-{v}" for i, (v, _, _) in enumerate(REFERENCE_EXAMPLES)],
)
def test_reference_example_round_trips_byte_identically(
    variant: str, model: type[RuntimePayload] | None, line: bytes
) -> None:
    event = parse_runtime_event(line)
    assert event.variant == variant
    assert event.run_id == RUN
    if model is None:
        assert isinstance(event, UnknownRuntimeEvent)
    else:
        assert isinstance(event, RuntimeEvent)
        assert type(event.payload) is model
    assert dump_runtime_event(event) == line
    assert event.to_dict() == orjson.loads(line)
    assert parse_runtime_event(dump_runtime_event(event)) == event


def test_reference_examples_cover_every_variant() -> None:
    assert {v for v, m, _ in REFERENCE_EXAMPLES if m is not None} == set(VARIANTS)
    assert len(VARIANTS) == 17
    assert list(VARIANTS) == list(RUST_FIELD_ORDER)


@pytest.mark.parametrize(("variant", "fields"), list(RUST_FIELD_ORDER.items()))
def test_payload_fields_are_declared_in_rust_order(variant: str, fields: list[str]) -> None:
    assert list(VARIANTS[variant].model_fields) == fields


def test_decoded_values_are_typed() -> None:
    examples = {
        i: parse_runtime_event(line) for i, (_, m, line) in enumerate(REFERENCE_EXAMPLES) if m
    }
    started = examples[0]
    assert isinstance(started, RuntimeEvent)
    assert isinstance(started.payload, RunStarted)
    assert started.payload.provider == "openai"
    assert started.payload.model == "gpt-4o"
    assert started.session_id == SESSION
    assert started.timestamp == TS

    completed_call = examples[6].payload
    assert isinstance(completed_call, ToolCallCompleted)
    assert completed_call.call == ToolCall(
        id="call_abc", name="get_weather", arguments={"city": "Paris"}
    )

    delta = examples[5].payload
    assert isinstance(delta, ToolCallDelta)
    assert delta.delta == '{"city":"Par'

    success = examples[8].payload
    assert isinstance(success, ToolExecutionFinished)
    assert success.result == ToolExecutionSuccess(output={"temp_c": 21})
    assert success.duration_ms == 42

    failure = examples[9].payload
    assert isinstance(failure, ToolExecutionFinished)
    assert failure.result == ToolExecutionFailure(error="timeout")

    usage = examples[12].payload
    assert isinstance(usage, UsageRecorded)
    assert usage.usage == TokenUsage(input_tokens=120, output_tokens=30, total_tokens=150)

    stop = examples[13].payload
    assert isinstance(stop, RunCompleted)
    assert stop.finish_reason == "stop"
    assert stop.iterations == 1

    unknown = examples[14].payload
    assert isinstance(unknown, RunCompleted)
    assert unknown.finish_reason == UnknownFinishReason(unknown="end_turn")

    breaker = examples[18].payload
    assert isinstance(breaker, CompactionCircuitOpened)
    assert breaker.consecutive_failures == 1


# --- the enum wrapper --------------------------------------------------------------------------


@pytest.mark.parametrize(("variant", "_model", "line"), REFERENCE_EXAMPLES[:19])
def test_is_terminal_exactly_for_completed_failed_cancelled(
    variant: str, _model: object, line: bytes
) -> None:
    event = parse_runtime_event(line)
    assert event.is_terminal() is (variant in {"RunCompleted", "RunFailed", "RunCancelled"})


def test_terminal_variants_constant() -> None:
    assert frozenset({"RunCompleted", "RunFailed", "RunCancelled"}) == TERMINAL_VARIANTS


@pytest.mark.parametrize(("variant", "_model", "line"), REFERENCE_EXAMPLES)
def test_session_id_only_on_run_started(variant: str, _model: object, line: bytes) -> None:
    event = parse_runtime_event(line)
    assert event.session_id == (SESSION if variant == "RunStarted" else None)


def test_assistant_and_tool_message_committed_stay_distinct() -> None:
    payload = MessageCommitted(run_id=RUN, message_id="m", timestamp=TS)
    assistant = RuntimeEvent("AssistantMessageCommitted", payload)
    tool = RuntimeEvent("ToolMessageCommitted", payload)
    assert assistant != tool
    assert dump_runtime_event(assistant).startswith(b'{"AssistantMessageCommitted":')
    assert dump_runtime_event(tool).startswith(b'{"ToolMessageCommitted":')
    assert parse_runtime_event(dump_runtime_event(tool)).variant == "ToolMessageCommitted"
    assert parse_runtime_event(dump_runtime_event(assistant)) == assistant


def test_from_payload_infers_variant_except_for_message_committed() -> None:
    delta = TextDelta(run_id=RUN, delta="hi", timestamp=TS)
    assert RuntimeEvent.from_payload(delta) == RuntimeEvent("TextDelta", delta)
    commit = MessageCommitted(run_id=RUN, message_id="m", timestamp=TS)
    with pytest.raises(ValueError, match="pass variant="):
        RuntimeEvent.from_payload(commit)
    event = RuntimeEvent.from_payload(commit, "ToolMessageCommitted")
    assert event.variant == "ToolMessageCommitted"


def test_runtime_event_rejects_mismatched_payload_or_unknown_variant() -> None:
    delta = TextDelta(run_id=RUN, delta="hi", timestamp=TS)
    with pytest.raises(TypeError, match="RunFailed carries a RunFailed payload"):
        RuntimeEvent("RunFailed", delta)
    with pytest.raises(ValueError, match="UnknownRuntimeEvent"):
        RuntimeEvent("CacheMetrics", delta)
    with pytest.raises(ValueError, match="known variant"):
        UnknownRuntimeEvent("TextDelta", {"run_id": RUN})


def test_match_statement_on_decoded_event() -> None:
    event = parse_runtime_event(_line("TextDelta", delta="hello"))
    match event:
        case RuntimeEvent("TextDelta", TextDelta(delta=text)):
            assert text == "hello"
        case _:
            pytest.fail("pattern did not match")


def test_python_constructed_events_dump_in_serde_form() -> None:
    event = RuntimeEvent(
        "ToolExecutionFinished",
        ToolExecutionFinished(
            run_id=RUN,
            call_id="c",
            tool_name="t",
            result=ToolExecutionSuccess(output=None),
            duration_ms=0,
            timestamp="2026-06-25T15:12:51Z",
        ),
    )
    assert dump_runtime_event(event) == (
        b'{"ToolExecutionFinished":{"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
        b'"call_id":"c","tool_name":"t","result":{"Success":{"output":null}},'
        b'"duration_ms":0,"timestamp":"2026-06-25T15:12:51Z"}}'
    )
    completed = RuntimeEvent(
        "RunCompleted",
        RunCompleted(
            run_id=RUN,
            finish_reason=UnknownFinishReason(unknown="x"),
            iterations=3,
            timestamp=TS,
        ),
    )
    assert b'"finish_reason":{"unknown":"x"}' in dump_runtime_event(completed)


def test_payload_extra_fields_are_kept_after_known_ones() -> None:
    line = (
        b'{"TextDelta":{"run_id":"r","delta":"d","timestamp":"2026-06-25T15:12:51Z",'
        b'"newer_field":[1,{"a":null}]}}'
    )
    event = parse_runtime_event(line)
    assert isinstance(event.payload, TextDelta)
    assert event.payload.model_extra == {"newer_field": [1, {"a": None}]}
    assert dump_runtime_event(event) == line


def test_non_ascii_and_escapes_round_trip() -> None:
    line = (
        '{"TextDelta":{"run_id":"r","delta":"héllo ✓ 😀 \\"q\\" \\\\ \\n\\t\\u0001 /",'
        '"timestamp":"2026-06-25T15:12:51Z"}}'
    ).encode()
    event = parse_runtime_event(line)
    assert isinstance(event.payload, TextDelta)
    assert event.payload.delta == 'héllo ✓ 😀 "q" \\ \n\t\x01 /'
    assert dump_runtime_event(event) == line


@pytest.mark.parametrize(
    "data",
    [
        _line("RunCancelled"),
        _line("RunCancelled").decode(),
        bytearray(_line("RunCancelled")),
        memoryview(_line("RunCancelled")),
        orjson.loads(_line("RunCancelled")),
    ],
    ids=["bytes", "str", "bytearray", "memoryview", "dict"],
)
def test_accepts_every_input_form(data: Any) -> None:
    event = parse_runtime_event(data)
    assert event.variant == "RunCancelled"
    assert dump_runtime_event(event) == _line("RunCancelled")


# --- FinishReason ------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", FINISH_REASONS)
def test_finish_reason_unit_variants(reason: str) -> None:
    line = _line("RunCompleted", finish_reason=reason, iterations=4)
    event = parse_runtime_event(line)
    assert isinstance(event.payload, RunCompleted)
    assert event.payload.finish_reason == reason
    assert dump_runtime_event(event) == line


def test_finish_reason_constant_lists_the_rust_variants() -> None:
    assert FINISH_REASONS == ("stop", "tool_calls", "length", "content_filter", "error")


@pytest.mark.parametrize("raw", ["end_turn", "", "Stop", "stop", "max_tokens"])
def test_finish_reason_unknown_form(raw: str) -> None:
    line = _line("RunCompleted", finish_reason={"unknown": raw}, iterations=1)
    event = parse_runtime_event(line)
    assert isinstance(event.payload, RunCompleted)
    assert event.payload.finish_reason == UnknownFinishReason(unknown=raw)
    assert dump_runtime_event(event) == line


@pytest.mark.parametrize(
    "bad",
    [
        "Stop",
        "end_turn",
        "",
        5,
        None,
        ["stop"],
        {"unknown": 5},
        {"unknown": "x", "extra": 1},
        {"Unknown": "x"},
        {},
    ],
)
def test_finish_reason_invalid_forms(bad: Any) -> None:
    err = _decode_error(_line("RunCompleted", finish_reason=bad, iterations=1))
    assert err.event_type == "RunCompleted"
    assert err.field == "finish_reason"
    assert "RunCompleted" in str(err)
    assert "finish_reason" in str(err)


# --- ToolExecutionResult -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "output", [None, 0, 1.5, "text", [1, "a"], {"nested": {"deep": [True, False, None]}}]
)
def test_tool_execution_success_outputs(output: Any) -> None:
    line = _line(
        "ToolExecutionFinished",
        call_id="c",
        tool_name="t",
        result={"Success": {"output": output}},
        duration_ms=7,
    )
    event = parse_runtime_event(line)
    assert isinstance(event.payload, ToolExecutionFinished)
    assert event.payload.result == ToolExecutionSuccess(output=output)
    assert dump_runtime_event(event) == line


def test_tool_execution_failure() -> None:
    line = _line(
        "ToolExecutionFinished",
        call_id="c",
        tool_name="t",
        result={"Failure": {"error": "boom"}},
        duration_ms=7,
    )
    event = parse_runtime_event(line)
    assert isinstance(event.payload, ToolExecutionFinished)
    assert isinstance(event.payload.result, ToolExecutionFailure)
    assert event.payload.result.error == "boom"
    assert dump_runtime_event(event) == line


def test_tool_execution_result_models_dump_tagged() -> None:
    assert ToolExecutionSuccess(output=[1]).model_dump() == {"Success": {"output": [1]}}
    assert ToolExecutionFailure(error="e").model_dump_json() == '{"Failure":{"error":"e"}}'


@pytest.mark.parametrize(
    ("result", "field"),
    [
        ({"Failure": {"error": 5}}, "result.Failure.error"),
        ({"Failure": {}}, "result.Failure.error"),
        ({"Success": {}}, "result.Success.output"),
        ({"Success": 3}, "result.Success"),
        ({"Oops": {"error": "x"}}, "result"),
        ({"Success": {"output": 1}, "Failure": {"error": "x"}}, "result"),
        ({"output": 1}, "result"),
        ("Success", "result"),
        (None, "result"),
    ],
)
def test_tool_execution_result_invalid_forms(result: Any, field: str) -> None:
    err = _decode_error(
        _line("ToolExecutionFinished", call_id="c", tool_name="t", result=result, duration_ms=1)
    )
    assert err.event_type == "ToolExecutionFinished"
    assert err.field == field


# --- TokenUsage --------------------------------------------------------------------------------


def test_token_usage_without_cache_fields_stays_without() -> None:
    usage = TokenUsage.model_validate({"input_tokens": 1, "output_tokens": 2, "total_tokens": 3})
    assert usage.cached_input_tokens is None
    assert usage.model_dump_json() == '{"input_tokens":1,"output_tokens":2,"total_tokens":3}'
    built = TokenUsage(input_tokens=1, output_tokens=2, total_tokens=3)
    assert built.model_dump() == {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}


@pytest.mark.parametrize(
    "cache",
    [
        {"cache_creation_input_tokens": None, "cache_read_input_tokens": None},
        {
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 1024,
            "cached_input_tokens": None,
        },
        {"cached_input_tokens": 2**64 - 1},
        {"cache_read_input_tokens": 5},
    ],
)
def test_token_usage_cache_fields_round_trip_when_present(cache: dict[str, Any]) -> None:
    usage = {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150, **cache}
    line = _line("UsageRecorded", usage=usage)
    event = parse_runtime_event(line)
    assert isinstance(event.payload, UsageRecorded)
    for name, value in cache.items():
        assert getattr(event.payload.usage, name) == value
    assert dump_runtime_event(event) == line


def test_token_usage_explicit_none_is_written_as_null() -> None:
    usage = TokenUsage(input_tokens=1, output_tokens=1, total_tokens=2, cached_input_tokens=None)
    assert usage.model_dump_json() == (
        '{"input_tokens":1,"output_tokens":1,"total_tokens":2,"cached_input_tokens":null}'
    )


@pytest.mark.parametrize(
    ("usage", "field"),
    [
        ({"input_tokens": 1, "output_tokens": 2}, "usage.total_tokens"),
        ({"input_tokens": -1, "output_tokens": 2, "total_tokens": 3}, "usage.input_tokens"),
        ({"input_tokens": 1, "output_tokens": "2", "total_tokens": 3}, "usage.output_tokens"),
        ({"input_tokens": 1, "output_tokens": 2, "total_tokens": 3.0}, "usage.total_tokens"),
        (
            {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3, "cached_input_tokens": True},
            "usage.cached_input_tokens",
        ),
        (
            {
                "input_tokens": 1,
                "output_tokens": 2,
                "total_tokens": 3,
                "cache_read_input_tokens": 2**64,
            },
            "usage.cache_read_input_tokens",
        ),
    ],
)
def test_token_usage_invalid(usage: dict[str, Any], field: str) -> None:
    err = _decode_error({"UsageRecorded": {"run_id": RUN, "usage": usage, "timestamp": TS}})
    assert err.event_type == "UsageRecorded"
    assert err.field == field


# --- timestamps --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-25T15:12:51Z", datetime(2026, 6, 25, 15, 12, 51, tzinfo=UTC)),
        ("2026-06-25T15:12:51.123Z", datetime(2026, 6, 25, 15, 12, 51, 123000, tzinfo=UTC)),
        ("2026-06-25T15:12:51.123456Z", datetime(2026, 6, 25, 15, 12, 51, 123456, tzinfo=UTC)),
        (
            "2026-06-25T15:12:51.123456789Z",
            datetime(2026, 6, 25, 15, 12, 51, 123456, tzinfo=UTC),
        ),
        ("2026-06-25T15:12:51.999999999Z", datetime(2026, 6, 25, 15, 12, 51, 999999, tzinfo=UTC)),
        ("2026-06-25T17:12:51+02:00", datetime(2026, 6, 25, 15, 12, 51, tzinfo=UTC)),
        ("2026-06-25t15:12:51.5z", datetime(2026, 6, 25, 15, 12, 51, 500000, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_parse_rfc3339(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2026-06-25",
        "2026-06-25T15:12:51",
        "2026-06-25T15:12:51.Z",
        "2026-13-25T15:12:51Z",
        "2026-02-30T15:12:51Z",
        "2026-06-25T24:00:00Z",
        "2026-06-25T15:12:51+2:00",
        "2026-06-25T15:12:51+24:00",
        "2026-06-25T15:12:51Z ",
        "1782400371",
        "\uff12\uff10\uff12\uff16-06-25T15:12:51Z",  # fullwidth digits
    ],
)
def test_invalid_timestamps_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_rfc3339(text)
    err = _decode_error({"RunCancelled": {"run_id": RUN, "timestamp": text}})
    assert err.event_type == "RunCancelled"
    assert err.field == "timestamp"
    assert "RFC 3339" in str(err)


def test_timestamp_string_is_kept_verbatim_and_parsed_on_demand() -> None:
    event = parse_runtime_event(_line("RunCancelled"))
    assert isinstance(event, RuntimeEvent)
    assert event.payload.timestamp == TS
    assert event.payload.timestamp_dt == datetime(2026, 6, 25, 15, 12, 51, 123456, tzinfo=UTC)
    with pytest.raises(EventDecodeError):
        parse_runtime_event({"RunCancelled": {"run_id": RUN, "timestamp": 1782400371}})


# --- envelope ----------------------------------------------------------------------------------

ENVELOPE = (
    b'{"event_id":"0190b8a2-7c1d-7e4f-9a0b-1c2d3e4f5a6b","seq":1,'
    b'"run_id":"3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b",'
    b'"session_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7",'
    b'"event":' + REFERENCE_EXAMPLES[0][2] + b',"emitted_at":"2026-06-25T15:12:51.123461Z"}'
)


def test_envelope_round_trip_and_unwrap() -> None:
    record = parse_runtime_record(ENVELOPE)
    assert isinstance(record, RuntimeEventEnvelope)
    assert record.seq == 1
    assert record.session_id == SESSION
    assert record.event.variant == "RunStarted"
    assert record.emitted_at_dt == datetime(2026, 6, 25, 15, 12, 51, 123461, tzinfo=UTC)
    assert not record.is_terminal()
    assert dump_runtime_record(record) == ENVELOPE
    assert record.model_dump_json().encode() == ENVELOPE
    assert record.to_dict() == orjson.loads(ENVELOPE)
    assert parse_runtime_event(ENVELOPE) == parse_runtime_event(REFERENCE_EXAMPLES[0][2])


def test_envelope_validates_natively_with_pydantic() -> None:
    record = RuntimeEventEnvelope.model_validate_json(ENVELOPE)
    assert record == parse_runtime_record(ENVELOPE)
    schema = RuntimeEventEnvelope.model_json_schema()
    assert schema["properties"]["event"]["maxProperties"] == 1


def test_envelope_with_null_or_missing_session_and_terminal_event() -> None:
    event = _line("RunFailed", error="token budget exceeded: 11 > 10")
    with_null = (
        b'{"event_id":"e","seq":9,"run_id":"r","session_id":null,"event":'
        + event
        + b',"emitted_at":"2026-06-25T15:12:51Z"}'
    )
    record = parse_runtime_record(with_null)
    assert isinstance(record, RuntimeEventEnvelope)
    assert record.session_id is None
    assert record.is_terminal()
    assert dump_runtime_record(record) == with_null
    missing = with_null.replace(b'"session_id":null,', b"")
    assert parse_runtime_record(missing) == record


def test_bare_event_from_parse_runtime_record() -> None:
    record = parse_runtime_record(REFERENCE_EXAMPLES[3][2])
    assert isinstance(record, RuntimeEvent)
    assert dump_runtime_record(record) == REFERENCE_EXAMPLES[3][2]


def test_envelope_with_unknown_variant_round_trips() -> None:
    line = (
        b'{"event_id":"e","seq":2,"run_id":"r","session_id":null,"event":'
        + REFERENCE_EXAMPLES[-1][2]
        + b',"emitted_at":"2026-06-25T15:12:51Z"}'
    )
    record = parse_runtime_record(line)
    assert isinstance(record, RuntimeEventEnvelope)
    assert isinstance(record.event, UnknownRuntimeEvent)
    assert dump_runtime_record(record) == line


@pytest.mark.parametrize(
    ("mutate", "event_type", "field"),
    [
        (lambda d: {**d, "seq": -1}, "RuntimeEventEnvelope", "seq"),
        (lambda d: {**d, "seq": "1"}, "RuntimeEventEnvelope", "seq"),
        (
            lambda d: {k: v for k, v in d.items() if k != "event_id"},
            "RuntimeEventEnvelope",
            "event_id",
        ),
        (lambda d: {**d, "emitted_at": "now"}, "RuntimeEventEnvelope", "emitted_at"),
        (lambda d: {**d, "session_id": 5}, "RuntimeEventEnvelope", "session_id"),
        (lambda d: {**d, "event": []}, "RuntimeEventEnvelope", "event"),
        (
            lambda d: {**d, "event": {"RunStarted": {**d["event"]["RunStarted"], "model": 4}}},
            "RunStarted",
            "model",
        ),
    ],
)
def test_envelope_errors_name_the_field(mutate: Any, event_type: str, field: str) -> None:
    err = _decode_error(mutate(orjson.loads(ENVELOPE)))
    assert err.event_type == event_type
    assert err.field == field


# --- unknown variants --------------------------------------------------------------------------


def test_unknown_variant_is_kept() -> None:
    line = REFERENCE_EXAMPLES[-1][2]
    event = parse_runtime_event(line)
    assert isinstance(event, UnknownRuntimeEvent)
    assert event.variant == "CacheMetrics"
    assert event.run_id == RUN
    assert event.session_id is None
    assert not event.is_terminal()
    assert event.payload["cache_read_input_tokens"] == 1024
    assert dump_runtime_event(event) == line


@pytest.mark.parametrize(
    ("line", "run_id"),
    [
        (b'{"SomethingNew":{"a":1,"run_id":"x","z":[1.5,null]}}', "x"),
        (b'{"SomethingNew":{"run_id":7}}', None),
        (b'{"SomethingNew":{}}', None),
        (b'{"UnitLike":null}', None),
        (b'{"TupleLike":[1,"two"]}', None),
        (b'{"textDelta":"lowercase is not TextDelta"}', None),
    ],
)
def test_any_unknown_variant_round_trips(line: bytes, run_id: str | None) -> None:
    event = parse_runtime_event(line)
    assert isinstance(event, UnknownRuntimeEvent)
    assert event.run_id == run_id
    assert dump_runtime_event(event) == line


# --- decode errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"RunStarted", "not valid JSON"),
        (b"[]", "must be a JSON object, got list"),
        (b'"RunCancelled"', "must be a JSON object, got str"),
        (b"42", "must be a JSON object, got int"),
        (b"null", "must be a JSON object, got NoneType"),
        (b"{}", "exactly one key"),
        (b'{"RunCancelled":{},"RunFailed":{}}', "exactly one key"),
    ],
)
def test_structural_errors(data: bytes, message: str) -> None:
    err = _decode_error(data)
    assert message in str(err)
    assert err.event_type is None


@pytest.mark.parametrize(
    ("variant", "fields", "field"),
    [
        ("RunStarted", {"session_id": SESSION, "provider": "openai", "model": None}, "model"),
        ("RunStarted", {"provider": "openai", "model": "m"}, "session_id"),
        ("ContextBuilt", {"message_count": "3"}, "message_count"),
        ("ContextBuilt", {"message_count": -1}, "message_count"),
        ("ModelStarted", {"provider": "p", "model": "m", "iteration": 1.0}, "iteration"),
        ("ModelStarted", {"provider": "p", "model": "m", "iteration": True}, "iteration"),
        ("TextDelta", {"delta": 5}, "delta"),
        ("ToolCallStarted", {"call_id": "c"}, "tool_name"),
        ("ToolCallDelta", {"call_id": 1, "delta": "x"}, "call_id"),
        ("ToolCallCompleted", {"call": {"id": "c", "name": "n"}}, "call.arguments"),
        ("ToolCallCompleted", {"call": "c"}, "call"),
        ("ToolExecutionStarted", {"call_id": "c", "tool_name": []}, "tool_name"),
        ("AssistantMessageCommitted", {"message_id": 1}, "message_id"),
        ("ToolMessageCommitted", {}, "message_id"),
        ("UsageRecorded", {"usage": None}, "usage"),
        ("RunCompleted", {"finish_reason": "stop", "iterations": 2**64}, "iterations"),
        ("RunFailed", {"error": {"msg": "x"}}, "error"),
        ("DoomLoopDetected", {}, "description"),
        ("CompactionCircuitOpened", {"consecutive_failures": 2**32}, "consecutive_failures"),
    ],
)
def test_field_errors_name_variant_and_field(
    variant: str, fields: dict[str, Any], field: str
) -> None:
    err = _decode_error({variant: {"run_id": RUN, **fields, "timestamp": TS}})
    assert err.event_type == variant
    assert err.field == field
    assert str(err).startswith(f"{variant}: {field}")


def test_run_id_is_required_and_a_string() -> None:
    err = _decode_error({"RunCancelled": {"run_id": 5, "timestamp": TS}})
    assert (err.event_type, err.field) == ("RunCancelled", "run_id")
    err = _decode_error({"RunCancelled": {"timestamp": TS}})
    assert (err.event_type, err.field) == ("RunCancelled", "run_id")


def test_known_variant_payload_must_be_an_object() -> None:
    err = _decode_error(b'{"TextDelta":"hi"}')
    assert err.event_type == "TextDelta"
    assert "TextDelta" in str(err)


def test_ids_are_not_checked_for_uuid_syntax() -> None:
    line = _line("RunStarted", session_id="not-a-uuid", provider="p", model="m")
    event = parse_runtime_event(line)
    assert event.session_id == "not-a-uuid"
    assert dump_runtime_event(event) == line


# --- property tests ----------------------------------------------------------------------------

_text = st.text(max_size=12)
_ids = st.uuids().map(str) | _text
_u64 = st.integers(min_value=0, max_value=2**64 - 1)
_u32 = st.integers(min_value=0, max_value=2**32 - 1)


@st.composite
def _timestamps(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)))
    digits = draw(st.sampled_from([0, 3, 6, 9]))
    fraction = ""
    if digits:
        fraction = "." + str(draw(st.integers(0, 10**digits - 1))).zfill(digits)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}{fraction}Z"
    )


_json: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)


@st.composite
def _token_usage(draw: st.DrawFn) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": draw(_u64),
        "output_tokens": draw(_u64),
        "total_tokens": draw(_u64),
    }
    for name in ("cache_creation_input_tokens", "cache_read_input_tokens", "cached_input_tokens"):
        if draw(st.booleans()):
            usage[name] = draw(st.none() | _u64)
    return usage


_finish_reason = st.sampled_from(FINISH_REASONS) | st.builds(lambda raw: {"unknown": raw}, _text)
_tool_result = st.builds(lambda output: {"Success": {"output": output}}, _json) | st.builds(
    lambda error: {"Failure": {"error": error}}, _text
)

_FIELD_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "session_id": _ids,
    "provider": _text,
    "model": _text,
    "message_count": _u64,
    "iteration": _u64,
    "delta": _text,
    "call_id": _text,
    "tool_name": _text,
    "call": st.builds(lambda i, n, a: {"id": i, "name": n, "arguments": a}, _text, _text, _json),
    "result": _tool_result,
    "duration_ms": _u64,
    "message_id": _ids,
    "usage": _token_usage(),
    "finish_reason": _finish_reason,
    "iterations": _u64,
    "error": _text,
    "description": _text,
    "consecutive_failures": _u32,
}


@st.composite
def _wire_events(draw: st.DrawFn) -> dict[str, Any]:
    """A known event in its serde wire form, built field by field in Rust declaration order."""
    variant = draw(st.sampled_from(sorted(VARIANTS)))
    body: dict[str, Any] = {}
    for name in RUST_FIELD_ORDER[variant]:
        if name == "run_id":
            body[name] = draw(_ids)
        elif name == "timestamp":
            body[name] = draw(_timestamps())
        else:
            body[name] = draw(_FIELD_STRATEGIES[name])
    # Fields from a newer runtime: kept, and written after the known ones.
    extras = draw(st.dictionaries(_text.map(lambda s: "x_" + s), _json, max_size=2))
    return {variant: {**body, **extras}}


_unknown_wire_events = st.builds(
    lambda variant, payload: {variant: payload},
    st.text(min_size=1, max_size=20).filter(lambda name: name not in VARIANTS),
    _json,
)


@st.composite
def _wire_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "event_id": draw(_ids),
        "seq": draw(_u64),
        "run_id": draw(_ids),
        "session_id": draw(st.none() | _ids),
        "event": draw(_wire_events() | _unknown_wire_events),
        "emitted_at": draw(_timestamps()),
    }


_PROPERTY = settings(max_examples=150, deadline=None, database=None)


def _build(wire: dict[str, Any]) -> RuntimeEvent | UnknownRuntimeEvent:
    """Construct the model directly (not through the parser) from a wire dict."""
    ((variant, body),) = wire.items()
    model = VARIANTS.get(variant)
    if model is None:
        return UnknownRuntimeEvent(variant, body)
    return RuntimeEvent(variant, model.model_validate(body))


@_PROPERTY
@given(_wire_events() | _unknown_wire_events)
def test_property_event_round_trip(wire: dict[str, Any]) -> None:
    line = orjson.dumps(wire)
    event = _build(wire)
    assert parse_runtime_event(dump_runtime_event(event)) == event
    assert dump_runtime_event(parse_runtime_event(line)) == line
    assert dump_runtime_event(event) == line
    assert event.is_terminal() is (event.variant in TERMINAL_VARIANTS)


@_PROPERTY
@given(_wire_envelopes())
def test_property_envelope_round_trip(wire: dict[str, Any]) -> None:
    line = orjson.dumps(wire)
    record = parse_runtime_record(line)
    assert isinstance(record, RuntimeEventEnvelope)
    assert dump_runtime_record(record) == line
    assert parse_runtime_record(dump_runtime_record(record)) == record
    assert record.event == _build(wire["event"])
    assert parse_runtime_event(line) == record.event


# --- JSON schema -------------------------------------------------------------------------------


@pytest.mark.parametrize(("variant", "model", "line"), [e for e in REFERENCE_EXAMPLES if e[1]])
def test_reference_examples_match_the_models_json_schema(
    variant: str, model: type[RuntimePayload], line: bytes
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    payload = orjson.loads(line)[variant]
    jsonschema.validate(payload, model.model_json_schema())
    envelope = orjson.loads(ENVELOPE)
    jsonschema.validate(
        {**envelope, "event": {variant: payload}}, RuntimeEventEnvelope.model_json_schema()
    )


def test_tool_execution_result_json_schema_is_externally_tagged() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = ToolExecutionFinished.model_json_schema()
    body = {"run_id": "r", "call_id": "c", "tool_name": "t", "duration_ms": 1, "timestamp": TS}
    jsonschema.validate({**body, "result": {"Failure": {"error": "x"}}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**body, "result": {"error": "x"}}, schema)

"""The runtime dialect: every row of docs/runtime-mapping.md, whole turns, ordering, outcomes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from acp_bridge.events.runtime import parse_runtime_event
from acp_bridge.translate.runtime import (
    RUNTIME_EVENT_KINDS,
    RUNTIME_EVENT_METHOD,
    RUNTIME_ROWS,
    RuntimeTranslation,
    RuntimeTranslator,
    TurnOutcome,
    UnmappedRunError,
    parse_partial_json,
    stop_reason_for,
)
from tests.support.acp_schema import acp_schema

RUN = "3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b"
RUNTIME_SESSION = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
TS = "2026-06-25T15:12:51.123456789Z"


def ev(variant: str, **fields: Any) -> dict[str, Any]:
    return {variant: {"run_id": RUN, **fields, "timestamp": TS}}


def run_started() -> dict[str, Any]:
    return ev("RunStarted", session_id=RUNTIME_SESSION, provider="openai", model="gpt-4o")


def feed(translator: RuntimeTranslator, *events: dict[str, Any]) -> list[RuntimeTranslation]:
    return [translator.translate(parse_runtime_event(e)) for e in events]


def messages(results: list[RuntimeTranslation]) -> list[dict[str, Any]]:
    return [m for r in results for m in r.messages]


def updates(results: list[RuntimeTranslation]) -> list[dict[str, Any]]:
    return [m["params"]["update"] for m in messages(results) if m["method"] == "session/update"]


def ext_kinds(results: list[RuntimeTranslation]) -> list[str]:
    return [m["params"]["kind"] for m in messages(results) if m["method"] == RUNTIME_EVENT_METHOD]


def recorded_turn() -> list[dict[str, Any]]:
    """A turn as the runtime emits it: text, two tool calls (one streamed, one not), usage, completion."""
    return [
        run_started(),
        ev("ContextBuilt", message_count=3),
        ev("ModelStarted", provider="openai", model="gpt-4o", iteration=1),
        ev("TextDelta", delta="Let me check "),
        ev("TextDelta", delta="the weather."),
        ev("ToolCallStarted", call_id="call_a", tool_name="get_weather"),
        ev("ToolCallDelta", call_id="call_a", delta='{"city":'),
        ev("ToolCallDelta", call_id="call_a", delta='"Par'),
        ev("ToolCallCompleted", call={"id": "call_a", "name": "get_weather", "arguments": {"city": "Paris"}}),
        ev("ToolCallCompleted", call={"id": "call_b", "name": "get_time", "arguments": {"tz": "CET"}}),
        ev("UsageRecorded", usage={"input_tokens": 120, "output_tokens": 30, "total_tokens": 150}),
        ev("AssistantMessageCommitted", message_id="0b6f9d1e-0000-4000-8000-000000000001"),
        ev("ToolExecutionStarted", call_id="call_a", tool_name="get_weather"),
        ev("ToolExecutionFinished", call_id="call_a", tool_name="get_weather",
           result={"Success": {"output": {"temp_c": 21}}}, duration_ms=42),
        ev("ToolExecutionFinished", call_id="call_b", tool_name="get_time",
           result={"Failure": {"error": "timezone service down"}}, duration_ms=30000),
        ev("ToolMessageCommitted", message_id="0b6f9d1e-0000-4000-8000-000000000002"),
        ev("ModelStarted", provider="openai", model="gpt-4o", iteration=2),
        ev("TextDelta", delta="It is 21°C in Paris."),
        ev("RunCompleted", finish_reason="stop", iterations=2),
    ]  # fmt: skip


def test_recorded_turn_is_a_valid_well_ordered_acp_turn() -> None:
    results = feed(RuntimeTranslator(session_id="acp-1"), *recorded_turn())
    schema = acp_schema()
    for message in messages(results):
        schema.check_agent_message(message)
        assert message["params"]["sessionId"] == "acp-1"
    ups = updates(results)
    # Every tool-call update comes after the tool_call of its id.
    announced: set[str] = set()
    for update in ups:
        if update["sessionUpdate"] == "tool_call":
            announced.add(update["toolCallId"])
        elif update["sessionUpdate"] == "tool_call_update":
            assert update["toolCallId"] in announced
    text = [u["content"]["text"] for u in ups if u["sessionUpdate"] == "agent_message_chunk"]
    assert "".join(text) == "Let me check the weather.It is 21°C in Paris."
    message_ids = [u["messageId"] for u in ups if u["sessionUpdate"] == "agent_message_chunk"]
    assert message_ids == [f"{RUN}-1", f"{RUN}-1", f"{RUN}-2"]
    finals = {u["toolCallId"]: u for u in ups if u.get("status") in ("completed", "failed")}
    assert finals["call_a"]["status"] == "completed"
    assert finals["call_a"]["rawOutput"] == {"temp_c": 21}
    assert finals["call_a"]["_meta"] == {"acp_bridge": {"durationMs": 42}}
    assert finals["call_b"]["status"] == "failed"
    assert finals["call_b"]["rawOutput"] == {"error": "timezone service down"}
    assert finals["call_b"]["content"][0]["content"]["text"] == "timezone service down"
    # Only the terminal event carries the outcome.
    assert [r.outcome for r in results[:-1]] == [None] * (len(results) - 1)
    assert results[-1].outcome == TurnOutcome(RUN, stop_reason="end_turn")
    assert ext_kinds(results) == [
        "run_started",
        "context_built",
        "model_started",
        "usage_recorded",
        "assistant_message_committed",
        "tool_message_committed",
        "model_started",
        "run_completed",
    ]


def test_streamed_arguments_become_partial_raw_input() -> None:
    results = feed(
        RuntimeTranslator(session_id="acp-1"),
        run_started(),
        ev("ToolCallStarted", call_id="c", tool_name="search"),
        ev("ToolCallDelta", call_id="c", delta='{"q":'),
        ev("ToolCallDelta", call_id="c", delta='"hel'),
    )
    started, unparsable, partial = updates(results)
    assert started == {
        "sessionUpdate": "tool_call",
        "toolCallId": "c",
        "title": "search",
        "status": "pending",
    }
    assert unparsable == {
        "sessionUpdate": "tool_call_update",
        "toolCallId": "c",
        "_meta": {"acp_bridge": {"rawInputPartial": '{"q":'}},
    }
    assert partial == {
        "sessionUpdate": "tool_call_update",
        "toolCallId": "c",
        "rawInput": {"q": "hel"},
    }


def test_unannounced_tool_call_is_created_before_updating_it() -> None:
    # Non-streaming providers emit ToolCallCompleted without ToolCallStarted.
    results = feed(
        RuntimeTranslator(session_id="acp-1"),
        run_started(),
        ev("ToolExecutionStarted", call_id="x", tool_name="ls"),
    )
    [update] = updates(results)
    assert update["sessionUpdate"] == "tool_call"
    assert update["status"] == "in_progress"
    assert update["title"] == "ls"


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("tool_calls", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("error", "end_turn"),
        ({"unknown": "end_turn"}, "end_turn"),
    ],
)
def test_run_completed_maps_finish_reason(finish: Any, stop: str) -> None:
    results = feed(
        RuntimeTranslator(session_id="s"),
        run_started(),
        ev("RunCompleted", finish_reason=finish, iterations=1),
    )
    assert results[-1].outcome == TurnOutcome(RUN, stop_reason=stop)
    if isinstance(finish, str):
        assert stop_reason_for(finish) == stop


def test_run_failed_reports_an_error_and_fails_open_tool_calls() -> None:
    results = feed(
        RuntimeTranslator(session_id="s"),
        run_started(),
        ev("ToolCallStarted", call_id="c", tool_name="grep"),
        ev("DoomLoopDetected", description="consecutive duplicate: grep called 3 times"),
        ev("RunFailed", error="doom loop detected: grep"),
    )
    assert results[-1].outcome == TurnOutcome(RUN, error="doom loop detected: grep")
    assert updates(results)[-1] == {
        "sessionUpdate": "tool_call_update",
        "toolCallId": "c",
        "status": "failed",
    }
    assert ext_kinds(results)[-2:] == ["doom_loop_detected", "run_failed"]


def test_run_cancelled_ends_the_turn_cancelled() -> None:
    results = feed(
        RuntimeTranslator(session_id="s"),
        run_started(),
        ev("ToolCallStarted", call_id="c", tool_name="sleep"),
        ev("RunCancelled"),
    )
    assert results[-1].outcome == TurnOutcome(RUN, stop_reason="cancelled")
    assert updates(results)[-1]["status"] == "failed"


def test_open_tool_calls_complete_with_the_run() -> None:
    # The runtime never emits ToolExecution* events; RunCompleted closes what is still open.
    results = feed(
        RuntimeTranslator(session_id="s"),
        run_started(),
        ev("ToolCallCompleted", call={"id": "c", "name": "read", "arguments": {}}),
        ev("ToolMessageCommitted", message_id="m"),
        ev("RunCompleted", finish_reason="stop", iterations=1),
    )
    assert updates(results)[-1] == {
        "sessionUpdate": "tool_call_update",
        "toolCallId": "c",
        "status": "completed",
    }


def test_other_events_become_extension_notifications() -> None:
    results = feed(
        RuntimeTranslator(session_id="s"),
        run_started(),
        ev("CompactionCircuitOpened", consecutive_failures=1),
        {"CacheMetrics": {"run_id": RUN, "cache_read_input_tokens": 1024, "timestamp": TS}},
    )
    assert ext_kinds(results) == ["run_started", "compaction_circuit_opened", "cache_metrics"]
    compaction = messages(results)[1]["params"]
    assert compaction == {
        "runId": RUN,
        "consecutiveFailures": 1,
        "timestamp": TS,
        "sessionId": "s",
        "kind": "compaction_circuit_opened",
    }
    unknown = messages(results)[2]["params"]
    assert unknown["runId"] == RUN
    assert unknown["payload"]["cache_read_input_tokens"] == 1024


def test_runs_are_bound_by_run_started_without_a_default_session() -> None:
    translator = RuntimeTranslator()
    with pytest.raises(UnmappedRunError, match="before its RunStarted"):
        translator.translate(parse_runtime_event(ev("TextDelta", delta="x")))
    results = feed(translator, run_started(), ev("TextDelta", delta="x"))
    assert {r.session_id for r in results} == {RUNTIME_SESSION}
    assert translator.session_for(RUN) == RUNTIME_SESSION


def test_state_is_dropped_when_the_run_ends() -> None:
    translator = RuntimeTranslator()
    feed(translator, run_started(), ev("RunCompleted", finish_reason="stop", iterations=1))
    with pytest.raises(UnmappedRunError):
        translator.translate(parse_runtime_event(ev("TextDelta", delta="late")))


def test_replay_marks_messages() -> None:
    translator = RuntimeTranslator(session_id="s")
    text = translator.translate(parse_runtime_event(ev("TextDelta", delta="x")), replay=True)
    assert text.messages[0]["params"]["update"]["_meta"] == {"acp_bridge": {"replayed": True}}
    usage = translator.translate(
        parse_runtime_event(
            ev("UsageRecorded", usage={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})
        ),
        replay=True,
    )
    assert usage.messages[0]["params"]["replayed"] is True


def test_every_documented_variant_is_exercised() -> None:
    documented = {variant for variant, _, _ in RUNTIME_ROWS if not variant.startswith("(")}
    seen = {next(iter(e)) for e in recorded_turn()}
    seen |= {"RunFailed", "RunCancelled", "DoomLoopDetected", "CompactionCircuitOpened"}
    assert documented == seen


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"city":"Par', (True, {"city": "Par"})),
        ('{"a":[1,2', (True, {"a": [1, 2]})),
        ('{"a":"x\\', (True, {"a": "x"})),
        ('{"a":1,', (True, {"a": 1})),
        ('{"a":', (False, None)),
        ('{"ci', (False, None)),
        ("", (False, None)),
        ('{"a": "b"}', (True, {"a": "b"})),
    ],
)
def test_parse_partial_json(text: str, expected: tuple[bool, Any]) -> None:
    assert parse_partial_json(text) == expected


def test_the_advertised_runtime_kinds_are_the_documented_ones() -> None:
    documented = {
        kind
        for _, route, _ in RUNTIME_ROWS
        for kind in re.findall(r"runtimeEvent` `([a-z_]+)`", route)
    }
    assert documented == set(RUNTIME_EVENT_KINDS)

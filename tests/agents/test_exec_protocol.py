"""The exec line protocol: decoding the child's stdout lines and the request helpers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from acp_bridge.agents.base import PermissionOutcome, StopReason
from acp_bridge.agents.exec.protocol import (
    DEFAULT_PERMISSION_OPTIONS,
    ErrorLine,
    HarnLine,
    LineError,
    RequestError,
    RequestLine,
    RuntimeLine,
    TurnEndLine,
    UnknownOpLine,
    encode_op,
    parse_child_line,
    permission_params,
    permission_result,
    read_params,
    write_params,
)
from acp_bridge.events.harn import AgentMessageChunk, TurnEnd
from acp_bridge.events.runtime import RuntimeEvent, TextDelta, UnknownRuntimeEvent

RUN = "3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b"
TS = "2026-06-25T15:12:51.123456789Z"
DELTA = {"TextDelta": {"run_id": RUN, "delta": "hi", "timestamp": TS}}


def line(obj: Any) -> bytes:
    return orjson.dumps(obj) + b"\n"


def test_harn_event_bare_and_enveloped() -> None:
    chunk = {"type": "agent_message_chunk", "session_id": "s1", "content": "hi"}
    parsed = parse_child_line(line(chunk), "harn")
    assert isinstance(parsed, HarnLine)
    assert parsed.event == AgentMessageChunk(session_id="s1", content="hi")
    envelope = {"index": 3, "emitted_at_ms": 1, "frame_depth": None, **chunk}
    assert parse_child_line(line(envelope), "harn") == parsed


def test_harn_turn_end_event_is_not_a_control_line() -> None:
    # Harn has an event type "turn_end"; control lines are told apart by having no "type".
    event = {"type": "turn_end", "session_id": "s1", "iteration": 2, "turn_info": {}}
    parsed = parse_child_line(line(event), "harn")
    assert isinstance(parsed, HarnLine)
    assert isinstance(parsed.event, TurnEnd)


@pytest.mark.parametrize("dialect", ["harn", "runtime"])
def test_control_lines(dialect: Any) -> None:
    assert parse_child_line(
        line({"op": "turn_end", "session_id": "s", "turn_id": "t1", "stop_reason": "max_tokens"}),
        dialect,
    ) == TurnEndLine("s", "t1", StopReason.MAX_TOKENS)
    assert parse_child_line(line({"op": "turn_end"}), dialect) == TurnEndLine(
        None, None, StopReason.END_TURN
    )
    assert parse_child_line(
        line({"op": "turn_end", "session_id": "s", "stop_reason": "done"}), dialect
    ) == TurnEndLine("s", None, StopReason.END_TURN, bad_stop_reason="done")
    assert parse_child_line(
        line({"op": "error", "session_id": "s", "turn_id": "t1", "message": "no model"}), dialect
    ) == ErrorLine("s", "t1", "no model")
    assert parse_child_line(line({"op": "error"}), dialect) == ErrorLine(
        None, None, "the agent reported an error"
    )
    assert parse_child_line(
        line({"op": "request", "id": 7, "method": "fs/read_text_file", "params": {"path": "/a"}}),
        dialect,
    ) == RequestLine(7, "fs/read_text_file", {"path": "/a"}, None)
    assert parse_child_line(
        line({"op": "request", "id": "r", "session_id": "s", "method": "terminal/create"}),
        dialect,
    ) == RequestLine("r", "terminal/create", {}, "s")
    assert parse_child_line(line({"op": "dance"}), dialect) == UnknownOpLine("dance")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"this is not json\n", "not valid JSON"),
        (b"[1, 2]\n", "not a JSON object"),
        (b'"text"\n', "not a JSON object"),
        (line({"op": 5}), "op must be a string"),
        (line({"op": "turn_end", "turn_id": 3}), "turn_id must be a string"),
        (line({"op": "request", "method": "x"}), "id must be"),
        (line({"op": "request", "id": True, "method": "x"}), "id must be"),
        (line({"op": "request", "id": 1}), "method"),
        (line({"op": "request", "id": 1, "method": "x", "params": [1]}), "params"),
        (line({"session_id": "s", "content": "no type"}), "neither a Harn event"),
        (line({"type": "agent_message_chunk", "session_id": "s"}), "content"),
        (line({"type": "agent_message_chunk", "content": "no session"}), "session_id"),
    ],
)
def test_harn_lines_that_are_skipped(raw: bytes, reason: str) -> None:
    with pytest.raises(LineError, match=reason):
        parse_child_line(raw, "harn")


def test_runtime_event_bare_wrapped_and_enveloped() -> None:
    bare = parse_child_line(line(DELTA), "runtime")
    assert isinstance(bare, RuntimeLine)
    assert bare.session_id is None
    assert isinstance(bare.event, RuntimeEvent)
    assert isinstance(bare.event.payload, TextDelta)
    wrapped = parse_child_line(line({"session_id": "s1", "event": DELTA}), "runtime")
    assert wrapped == RuntimeLine("s1", bare.event)
    envelope = {
        "event_id": "e1",
        "seq": 1,
        "run_id": RUN,
        "session_id": "s2",
        "event": DELTA,
        "emitted_at": TS,
    }
    assert parse_child_line(line(envelope), "runtime") == RuntimeLine("s2", bare.event)
    assert parse_child_line(line({**envelope, "session_id": None}), "runtime") == RuntimeLine(
        None, bare.event
    )


def test_runtime_unknown_variant_is_kept() -> None:
    parsed = parse_child_line(line({"CacheMetrics": {"run_id": RUN, "hits": 3}}), "runtime")
    assert isinstance(parsed, RuntimeLine)
    assert parsed.event == UnknownRuntimeEvent("CacheMetrics", {"run_id": RUN, "hits": 3})


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({"debug": 1}, "not a runtime event"),
        ({"TextDelta": "x"}, "not a runtime event"),
        ({"A": {}, "B": {}}, "one key"),
        ({}, "one key"),
        ({"session_id": "s", "event": {"lower": {}}}, "not a runtime event"),
        ({"session_id": 3, "event": DELTA}, "session_id must be a string"),
        ({"TextDelta": {"run_id": RUN, "timestamp": TS}}, "delta"),
        ({"type": "agent_message_chunk", "session_id": "s", "content": "x"}, "one key"),
    ],
)
def test_runtime_lines_that_are_skipped(obj: Any, reason: str) -> None:
    with pytest.raises(LineError, match=reason):
        parse_child_line(line(obj), "runtime")


def test_encode_op_is_one_line() -> None:
    data = encode_op(
        "prompt", session_id="s", turn_id="t1", prompt=[{"type": "text", "text": "a\nb"}]
    )
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1
    assert orjson.loads(data) == {
        "op": "prompt",
        "session_id": "s",
        "turn_id": "t1",
        "prompt": [{"type": "text", "text": "a\nb"}],
    }


def test_permission_params_acp_and_snake_case() -> None:
    tool_call, options = permission_params(
        {
            "toolCall": {"toolCallId": "c1", "title": "Edit"},
            "options": [{"optionId": "yes", "name": "Yes", "kind": "allow_always"}],
        }
    )
    assert tool_call == {"toolCallId": "c1", "title": "Edit"}
    assert [(o.option_id, o.name, o.kind) for o in options] == [("yes", "Yes", "allow_always")]
    tool_call, options = permission_params(
        {
            "tool_call": {"tool_call_id": "c2"},
            "options": [{"option_id": "no", "kind": "reject_once"}],
        }
    )
    assert tool_call == {"toolCallId": "c2"}
    assert [(o.option_id, o.name) for o in options] == [("no", "no")]
    assert permission_params({"toolCall": {"toolCallId": "c3"}})[1] == list(
        DEFAULT_PERMISSION_OPTIONS
    )


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"toolCall": {"title": "no id"}},
        {"toolCall": {"toolCallId": "c"}, "options": []},
        {"toolCall": {"toolCallId": "c"}, "options": ["allow"]},
        {"toolCall": {"toolCallId": "c"}, "options": [{"optionId": "a", "kind": "maybe"}]},
    ],
)
def test_permission_params_invalid(params: dict[str, Any]) -> None:
    with pytest.raises(RequestError) as info:
        permission_params(params)
    assert info.value.code == -32602


def test_permission_result() -> None:
    assert permission_result(PermissionOutcome("allow")) == {
        "outcome": {"outcome": "selected", "optionId": "allow"}
    }
    assert permission_result(PermissionOutcome(None, cancelled=True)) == {
        "outcome": {"outcome": "cancelled"}
    }


def test_fs_params() -> None:
    assert read_params({"path": "/a", "line": 3, "limit": 10}) == ("/a", 3, 10)
    assert read_params({"path": "/a"}) == ("/a", None, None)
    assert write_params({"path": "/a", "content": ""}) == ("/a", "")
    for bad in ({}, {"path": "/a", "line": -1}, {"path": "/a", "limit": True}):
        with pytest.raises(RequestError):
            read_params(bad)
    with pytest.raises(RequestError):
        write_params({"path": "/a"})

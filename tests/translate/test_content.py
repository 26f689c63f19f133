"""Content blocks and tool-call updates from plain dicts: our checks agree with the vendored ACP schema."""

from __future__ import annotations

from typing import Any

import pytest

from acp_bridge.translate import content_block_problem, strict_tool_call_update
from tests.support.acp_schema import acp_schema

VALID_BLOCKS: list[dict[str, Any]] = [
    {"type": "text", "text": "hi"},
    {"type": "text", "text": "", "annotations": {"audience": ["user"], "priority": 0.5}},
    {"type": "text", "text": "x", "annotations": None, "_meta": {"k": 1}},
    {"type": "image", "data": "aGk=", "mimeType": "image/png", "uri": "file:///a.png"},
    {"type": "audio", "data": "aGk=", "mimeType": "audio/wav"},
    {"type": "resource_link", "uri": "file:///a", "name": "a", "size": 3, "title": None},
    {"type": "resource", "resource": {"uri": "file:///a", "text": "body"}},
    {"type": "resource", "resource": {"uri": "file:///a", "blob": "aGk=", "mimeType": "x/y"}},
    {"type": "text", "text": "extra keys are allowed", "somethingElse": True},
]

INVALID_BLOCKS: list[Any] = [
    "text",
    {"text": "no type"},
    {"type": "video", "data": "x"},
    {"type": "text"},
    {"type": "text", "text": 3},
    {"type": "text", "text": "x", "annotations": {"audience": ["robot"]}},
    {"type": "text", "text": "x", "annotations": {"audience": [["user"]]}},
    {"type": "text", "text": "x", "annotations": {"priority": "high"}},
    {"type": "text", "text": "x", "annotations": "loud"},
    {"type": "text", "text": "x", "_meta": []},
    {"type": "image", "data": "aGk="},
    {"type": "image", "data": "aGk=", "mimeType": "image/png", "uri": 5},
    {"type": "resource_link", "uri": "file:///a"},
    {"type": "resource_link", "uri": "file:///a", "name": "a", "size": 1.5},
    {"type": "resource", "resource": {"uri": "file:///a"}},
    {"type": "resource", "resource": {"text": "no uri"}},
    {"type": "resource", "resource": "file:///a"},
]


@pytest.mark.parametrize("block", VALID_BLOCKS)
def test_valid_blocks_pass_and_the_schema_agrees(block: dict[str, Any]) -> None:
    assert content_block_problem(block) is None
    assert not list(acp_schema().validator("ContentBlock").iter_errors(block))


@pytest.mark.parametrize("block", INVALID_BLOCKS)
def test_invalid_blocks_have_a_reason_and_the_schema_agrees(block: Any) -> None:
    problem = content_block_problem(block)
    assert isinstance(problem, str)
    assert problem
    assert list(acp_schema().validator("ContentBlock").iter_errors(block))


def test_a_valid_tool_call_update_is_kept_as_is() -> None:
    call = {
        "toolCallId": "t1",
        "title": "Edit main.py",
        "kind": "edit",
        "status": "pending",
        "rawInput": {"path": "main.py"},
        "content": [{"type": "diff", "path": "/p/main.py", "oldText": None, "newText": "x"}],
        "locations": [{"path": "/p/main.py", "line": 3}],
        "_meta": {"harn": {"audit": {}}},
    }
    assert strict_tool_call_update(call) == call
    acp_schema().check("ToolCallUpdate", strict_tool_call_update(call))


def test_invalid_and_unknown_fields_move_to_meta() -> None:
    call = {
        "toolCallId": "t1",
        "title": "Run",
        "kind": "bash",
        "status": ["done"],
        "tool_name": "run_shell",
        "content": [
            {"type": "content", "content": {"type": "text", "text": "ok"}},
            {"type": "content", "content": {"type": "video"}},
            "not an item",
        ],
        "locations": [{"path": "/a", "line": -1}, {"path": "/b"}],
        "_meta": {"mine": 1},
    }
    clean = strict_tool_call_update(call)
    acp_schema().check("ToolCallUpdate", clean)
    assert "kind" not in clean
    assert "status" not in clean
    assert clean["content"] == [{"type": "content", "content": {"type": "text", "text": "ok"}}]
    assert clean["locations"] == [{"path": "/b"}]
    assert clean["_meta"] == {
        "mine": 1,
        "acp_bridge": {
            "fields": {"kind": "bash", "status": ["done"], "tool_name": "run_shell"},
            "dropped": {
                "content": [{"type": "content", "content": {"type": "video"}}, "not an item"],
                "locations": [{"path": "/a", "line": -1}],
            },
        },
    }
    assert call["_meta"] == {"mine": 1}  # the backend's dict is not modified


def test_a_tool_call_without_an_id_is_a_backend_bug() -> None:
    with pytest.raises(ValueError, match="toolCallId"):
        strict_tool_call_update({"title": "x"})

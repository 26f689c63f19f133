"""An ``exec`` child's ``elicitation/create`` request line goes through ``ctx.elicit``."""

from __future__ import annotations

from typing import Any

import pytest

from acp_bridge.agents.base import ElicitationResult
from acp_bridge.agents.exec.protocol import RequestLine
from acp_bridge.agents.exec.requests import reply

from .fakes import FakeSessionContext

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}}


async def answer(ctx: FakeSessionContext, params: dict[str, Any]) -> dict[str, Any]:
    request = RequestLine(7, "elicitation/create", params, ctx.session_id)
    return await reply(request, lambda: ctx, pid=1)


async def test_accepted_content_is_the_result() -> None:
    ctx = FakeSessionContext()
    ctx.elicitation_answer = ElicitationResult("accept", {"name": "Ada"})
    result = await answer(
        ctx, {"message": "Your name?", "requestedSchema": SCHEMA, "toolCallId": "t1"}
    )
    assert result == {"result": {"action": "accept", "content": {"name": "Ada"}}}
    assert ctx.elicitations == [("Your name?", SCHEMA, "t1")]


async def test_snake_case_and_decline() -> None:
    ctx = FakeSessionContext()
    result = await answer(ctx, {"message": "Your name?", "requested_schema": SCHEMA})
    assert result == {"result": {"action": "decline"}}


@pytest.mark.parametrize(
    "params",
    [
        {"requestedSchema": SCHEMA},
        {"message": "x"},
        {"message": "x", "requestedSchema": SCHEMA, "mode": "url"},
        {"message": "x", "requestedSchema": SCHEMA, "toolCallId": 3},
    ],
)
async def test_malformed_requests_are_invalid_params(params: dict[str, Any]) -> None:
    ctx = FakeSessionContext()
    result = await answer(ctx, params)
    assert result["error"]["code"] == -32602
    assert ctx.elicitations == []


async def test_url_mode_and_completion() -> None:
    ctx = FakeSessionContext()
    ctx.elicitation_answer = ElicitationResult("accept", None, "elicit_1")
    result = await answer(
        ctx, {"message": "Sign in", "mode": "url", "url": "https://example.test/login"}
    )
    assert result == {"result": {"action": "accept", "elicitationId": "elicit_1"}}
    assert ctx.elicitations == [("Sign in", "https://example.test/login", None)]
    request = RequestLine(8, "elicitation/complete", {"elicitationId": "elicit_1"}, "sess-demo")
    assert await reply(request, lambda: ctx, pid=1) == {"result": {}}
    assert ctx.completed_elicitations == ["elicit_1"]

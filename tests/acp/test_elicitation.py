"""``ctx.elicit``: form-mode ``elicitation/create`` to the controllers that can show it, arbitrated
like permission requests (decision 0029); every message validated per method."""

from __future__ import annotations

import asyncio
from typing import Any

from acp_bridge.agents.base import CapabilityNotAdvertised, SessionContext, StopReason
from acp_bridge.rpc.principal import Principal, Role
from tests.support.acp_client import FS_CAPABILITIES, ClientScript, RawAcpClient

from .conftest import BridgeHarness, ScriptedBackend, chunk

ELICITING = {**FS_CAPABILITIES, "elicitation": {"form": {}}}
SCHEMA = {
    "type": "object",
    "properties": {"branch": {"type": "string", "title": "Branch name"}},
    "required": ["branch"],
}
ACCEPT = {"action": "accept", "content": {"branch": "fix-parser"}}

answers: list[Any] = []


async def ask_for_branch(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
    chunk(ctx, "I need a branch name.")
    try:
        result = await ctx.elicit("Which branch?", SCHEMA, tool_call_id=None)
    except CapabilityNotAdvertised as exc:
        answers.append(exc)
        chunk(ctx, "I'll pick one myself.")
        return StopReason.END_TURN
    answers.append(result)
    return StopReason.CANCELLED if result.action == "cancel" else StopReason.END_TURN


def asked(client: RawAcpClient) -> list[dict[str, Any]]:
    return [m for m in client.received if m.get("method") == "elicitation/create"]


async def test_the_first_controller_to_answer_decides(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    answers.clear()
    backend.script = ask_for_branch
    async with (
        harness.client(script=ClientScript(elicitation=ACCEPT)) as owner,
        harness.client(script=ClientScript(elicitation="hold")) as other,
        harness.client() as plain,
        harness.client(principal=Principal("eve", Role.OBSERVER)) as observer,
    ):
        await owner.initialize(ELICITING)
        await other.initialize(ELICITING)
        await plain.initialize()
        await observer.initialize(ELICITING)
        sid = await owner.new_session()
        for client in (other, plain, observer):
            await client.call("session/load", {"sessionId": sid, "cwd": "/tmp/project"})
        assert await owner.prompt(sid, "make a branch") == {"stopReason": "end_turn"}
        [request] = asked(owner)
        assert request["params"] == {
            "sessionId": sid,
            "mode": "form",
            "message": "Which branch?",
            "requestedSchema": SCHEMA,
        }
        # The other capable controller was asked too, then the question was withdrawn.
        [copy] = asked(other)
        await other.wait_for(
            lambda m: (
                m.get("method") == "$/cancel_request" and m["params"]["requestId"] == copy["id"]
            )
        )
        assert asked(plain) == []  # it did not advertise elicitation
        assert asked(observer) == []  # observers are never asked
    [result] = answers
    assert result.accepted
    assert result.content == {"branch": "fix-parser"}


async def test_without_a_capable_controller_the_backend_is_told(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    answers.clear()
    backend.script = ask_for_branch
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        assert await client.prompt(sid, "make a branch") == {"stopReason": "end_turn"}
        assert asked(client) == []
    [error] = answers
    assert isinstance(error, CapabilityNotAdvertised)
    assert error.capability == "elicitation.form"


async def test_declining_and_cancelling(scripted: tuple[BridgeHarness, ScriptedBackend]) -> None:
    harness, backend = scripted
    backend.script = ask_for_branch
    answers.clear()
    async with harness.client(script=ClientScript(elicitation={"action": "decline"})) as client:
        await client.initialize(ELICITING)
        sid = await client.new_session()
        assert await client.prompt(sid, "make a branch") == {"stopReason": "end_turn"}
    assert [(a.action, a.content) for a in answers] == [("decline", None)]

    answers.clear()
    async with harness.client(script=ClientScript(elicitation="hold")) as client:
        await client.initialize(ELICITING)
        sid = await client.new_session()
        turn = asyncio.create_task(client.prompt(sid, "make a branch"))
        held = await client.wait_for(lambda m: m.get("method") == "elicitation/create")
        await client.notify("session/cancel", {"sessionId": sid})
        async with asyncio.timeout(5):
            assert await turn == {"stopReason": "cancelled"}
        await client.wait_for(
            lambda m: (
                m.get("method") == "$/cancel_request" and m["params"]["requestId"] == held["id"]
            )
        )
    assert [a.action for a in answers] == ["cancel"]


async def test_an_invalid_answer_is_not_a_decision(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    backend.script = ask_for_branch
    answers.clear()
    bogus = {"action": "accept", "content": "not an object"}
    async with harness.client(script=ClientScript(elicitation=bogus)) as client:
        await client.initialize(ELICITING)
        sid = await client.new_session()
        # The only capable controller gave no valid answer: the agent gets "cancel".
        assert await client.prompt(sid, "make a branch") == {"stopReason": "cancelled"}
    assert [a.action for a in answers] == ["cancel"]


URL_CLIENT = {**FS_CAPABILITIES, "elicitation": {"url": {}}}


async def sign_in(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
    result = await ctx.elicit("Sign in to continue", url="https://example.test/login")
    answers.append(result)
    if result.accepted and result.elicitation_id is not None:
        chunk(ctx, "Waiting for the sign-in…")
        ctx.complete_elicitation(result.elicitation_id)
    return StopReason.END_TURN


async def test_url_mode_then_complete(scripted: tuple[BridgeHarness, ScriptedBackend]) -> None:
    harness, backend = scripted
    backend.script = sign_in
    answers.clear()
    async with (
        harness.client(script=ClientScript(elicitation={"action": "accept"})) as client,
        harness.client(script=ClientScript(elicitation=ACCEPT)) as form_only,
    ):
        await client.initialize(URL_CLIENT)
        await form_only.initialize(ELICITING)
        sid = await client.new_session()
        await form_only.call("session/load", {"sessionId": sid, "cwd": "/tmp/project"})
        assert await client.prompt(sid, "deploy") == {"stopReason": "end_turn"}
        [request] = asked(client)
        elicitation_id = request["params"]["elicitationId"]
        assert request["params"] == {
            "sessionId": sid,
            "mode": "url",
            "message": "Sign in to continue",
            "url": "https://example.test/login",
            "elicitationId": elicitation_id,
        }
        complete = await client.wait_for(lambda m: m.get("method") == "elicitation/complete")
        assert complete["params"] == {"elicitationId": elicitation_id}
        # A form-only client is neither asked nor told.
        assert asked(form_only) == []
        assert not [m for m in form_only.received if m.get("method") == "elicitation/complete"]
    [result] = answers
    assert (result.action, result.elicitation_id) == ("accept", elicitation_id)

"""Extension notifications go only to clients whose ``initialize`` declared them (issue 15, item 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from acp_bridge.acp.extensions import ClientExtensions, client_extensions
from acp_bridge.agents.base import SessionContext, StopReason
from acp_bridge.events import SessionRuntimeEvent
from acp_bridge.events import harn as h
from acp_bridge.rpc.errors import InvalidParams
from acp_bridge.translate import Profile
from tests.support.acp_client import FS_CAPABILITIES, RawAcpClient, ResponseError, declaring

from .conftest import BridgeHarness, ScriptedBackend, make_harness
from .test_runtime_dialect import ev

STANDARD_FROM_AGENT = {"session/update", "session/request_permission", "fs/read_text_file"}
"""Every method a turn of the test backends may legitimately send a client that declared nothing."""


async def mixed_turn(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
    """One turn with Harn-only events (→ ``_harn/agentEvent``) and run-style runtime events."""
    sid = ctx.session_id
    ctx.emit(h.IterationStart(session_id=sid, iteration=1))
    ctx.emit(h.AgentMessageChunk(session_id=sid, content="Thinking done."))
    ctx.emit(SessionRuntimeEvent(sid, ev("RunStarted", session_id=sid, provider="p", model="m")))
    ctx.emit(SessionRuntimeEvent(sid, ev("TextDelta", delta="Checked.")))
    ctx.emit(SessionRuntimeEvent(sid, ev("RunCompleted", finish_reason="stop", iterations=1)))
    ctx.emit(h.BudgetExhausted(session_id=sid, max_iterations=3))
    return StopReason.END_TURN


def methods(client: RawAcpClient) -> set[str]:
    return {m["method"] for m in client.received if "method" in m}


# --- the predicate -----------------------------------------------------------------------------------


def test_nothing_declared_wants_only_standard_methods() -> None:
    wanted = client_extensions(FS_CAPABILITIES, Profile.STRICT)
    assert wanted.wants("session/update")
    assert wanted.wants("session/request_permission")
    assert not wanted.wants("_harn/agentEvent")
    assert not wanted.wants("_acp_bridge/runtimeEvent")


def test_names_and_namespaces() -> None:
    wanted = client_extensions(declaring("_acp_bridge/*", "_harn/agentEvent"), Profile.STRICT)
    assert wanted.wants("_acp_bridge/runtimeEvent")
    assert wanted.wants("_acp_bridge/presence")
    assert wanted.wants("_harn/agentEvent")
    assert not wanted.wants("_harn/other")
    assert not wanted.wants("_acp_bridgeX/runtimeEvent")
    assert wanted.enabled(["_harn/agentEvent", "_acp_bridge/runtimeEvent", "_x/y"]) == [
        "_acp_bridge/runtimeEvent",
        "_harn/agentEvent",
    ]


@pytest.mark.parametrize(
    ("caps", "profile"),
    [
        ({"_meta": {"harn": {}}}, Profile.HARN),
        ({}, Profile.HARN),
        ({"_meta": {"harn": 1}}, Profile.STRICT),
    ],
)
def test_the_harn_key_and_the_harn_profile_imply_harn_extensions(
    caps: dict[str, Any], profile: Profile
) -> None:
    wanted = client_extensions(caps, profile)
    assert wanted.wants("_harn/agentEvent")
    assert not wanted.wants("_acp_bridge/runtimeEvent")


@pytest.mark.parametrize("declared", ["_harn/*", ["_harn/*", 3], {"_harn/*": True}, None])
def test_a_malformed_declaration_is_refused(declared: Any) -> None:
    with pytest.raises(InvalidParams) as caught:
        client_extensions({"_meta": {"acp_bridge": {"extensions": declared}}}, Profile.STRICT)
    assert caught.value.data == {"field": "clientCapabilities._meta.acp_bridge.extensions"}


def test_the_default_wants_no_extension() -> None:
    assert not ClientExtensions().wants("_harn/agentEvent")


# --- over a connection ---------------------------------------------------------------------------


async def test_a_client_that_declared_nothing_gets_only_standard_methods(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    backend.script = mixed_turn
    async with harness.client() as plain, harness.client() as declared:
        init = await plain.initialize()
        await declared.initialize(declaring("_harn/agentEvent", "_acp_bridge/*"))
        sid = await plain.new_session()
        await declared.call("session/load", {"sessionId": sid, "cwd": "/tmp/project"})
        assert await plain.prompt(sid, "go") == {"stopReason": "end_turn"}
        # The declared client saw the turn's extensions, so they were there to be dropped.
        await declared.wait_for(lambda m: m.get("method") == "_acp_bridge/runtimeEvent")
        await declared.wait_for(
            lambda m: (
                m.get("method") == "_harn/agentEvent" and m["params"]["kind"] == "budget_exhausted"
            )
        )
        # A replay of the same turn to a client that declared nothing: standard methods only.
        async with harness.client() as loader:
            await loader.initialize()
            await loader.call("session/load", {"sessionId": sid, "cwd": "/tmp/project"})
            replayed = methods(loader)
    assert methods(plain) <= STANDARD_FROM_AGENT
    assert "session/update" in methods(plain)
    assert replayed == {"session/update"}
    assert {"_harn/agentEvent", "_acp_bridge/runtimeEvent"} <= methods(declared)
    assert init["agentCapabilities"]["_meta"]["acp_bridge"]["extensions"] == {
        "offered": ["_harn/agentEvent", "_acp_bridge/runtimeEvent", "_acp_bridge/presence"],
        "declaredIn": "clientCapabilities._meta.acp_bridge.extensions",
        "enabled": [],
    }


async def test_a_declared_client_is_told_what_it_will_get(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        init = await client.initialize(declaring("_harn/*", "_unknown/thing"))
    extensions = init["agentCapabilities"]["_meta"]["acp_bridge"]["extensions"]
    assert extensions["enabled"] == ["_harn/agentEvent"]


async def test_a_malformed_declaration_gets_invalid_params(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        caps = {"_meta": {"acp_bridge": {"extensions": "_harn/agentEvent"}}}
        with pytest.raises(ResponseError) as caught:
            await client.initialize(caps)
        assert caught.value.code == -32602
        # Not initialized: the client can try again with a correct declaration.
        await client.initialize(declaring("_harn/agentEvent"))


async def test_harn_profile_clients_keep_harn_extensions(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    backend.script = mixed_turn
    async with harness.client(validate=False) as client:
        await client.initialize({"_meta": {"harn": {}}})
        sid = await client.new_session()
        await client.prompt(sid, "go")
    kinds = [m["params"]["kind"] for m in client.received if m.get("method") == "_harn/agentEvent"]
    assert kinds == ["iteration_start", "budget_exhausted"]
    assert "_acp_bridge/runtimeEvent" not in methods(client)  # not declared


async def test_a_forced_harn_profile_sends_harn_extensions_to_everyone(
    tmp_path: Path,
) -> None:
    backend = ScriptedBackend()
    backend.script = mixed_turn
    async with (
        make_harness(tmp_path, backend, profile=Profile.HARN) as harness,
        harness.client(validate=False) as client,
    ):
        await client.initialize()
        sid = await client.new_session()
        await client.prompt(sid, "go")
    assert "_harn/agentEvent" in methods(client)

"""initialize: version negotiation, capabilities, profile resolution, ordering of the handshake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from acp_bridge.agents.demo import DemoBackend
from acp_bridge.translate import Profile, bridge_capability_block, harn_capability_block
from tests.support.acp_client import ResponseError

from .conftest import BridgeHarness, make_harness


@pytest.mark.parametrize("asked", [1, 2, 65535, 0])
async def test_always_answers_protocol_version_1(demo: BridgeHarness, asked: int) -> None:
    async with demo.client() as client:
        result = await client.initialize(version=asked)
    assert result["protocolVersion"] == 1


async def test_advertises_only_what_works(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        result = await client.initialize()
    caps = result["agentCapabilities"]
    assert caps["loadSession"] is True
    assert caps["sessionCapabilities"] == {
        "list": {},
        "resume": {},
        "close": {},
        "delete": {},
        "additionalDirectories": {},
    }
    assert "auth" not in caps  # anonymous: nothing to log out of
    assert caps["promptCapabilities"] == {"image": False, "audio": False, "embeddedContext": True}
    assert "mcpCapabilities" not in caps
    assert result["authMethods"] == []
    assert result["agentInfo"]["name"] == "acp-bridge"
    assert result["agentInfo"]["title"] == "acp-bridge (demo)"


async def test_second_initialize_is_an_invalid_request(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize()
        with pytest.raises(ResponseError) as info:
            await client.initialize()
    assert info.value.code == -32600


async def test_methods_before_initialize_are_refused(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        with pytest.raises(ResponseError) as info:
            await client.call("session/new", {"cwd": "/tmp", "mcpServers": []})
        assert info.value.code == -32600
        # A cancel notification before initialize is ignored, not answered.
        await client.notify("session/cancel", {"sessionId": "x"})
        assert (await client.initialize())["protocolVersion"] == 1


async def test_pipelined_initialize_and_session_new_run_in_order(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.send(
            {"jsonrpc": "2.0", "id": "i", "method": "initialize", "params": {"protocolVersion": 1}}
        )
        await client.send(
            {"jsonrpc": "2.0", "id": "n", "method": "session/new", "params": {"cwd": "/tmp"}}
        )
        response = await client.wait_for(lambda m: m.get("id") == "n")
    assert "result" in response


async def test_auto_profile_is_harn_for_clients_that_advertise_harn(demo: BridgeHarness) -> None:
    async with demo.client(validate=False) as client:
        result = await client.initialize({"_meta": {"harn": {"version": 1}}})
    assert result["agentCapabilities"]["_meta"]["harn"] == harn_capability_block(Profile.HARN)


async def test_auto_profile_is_strict_otherwise(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        result = await client.initialize({})
    assert result["agentCapabilities"]["_meta"]["harn"] == harn_capability_block(Profile.STRICT)


async def test_profile_option_overrides_auto(tmp_path: Path) -> None:
    async with (
        make_harness(tmp_path, DemoBackend(0), profile=Profile.STRICT) as harness,
        harness.client() as client,
    ):
        result = await client.initialize({"_meta": {"harn": {}}})
    assert result["agentCapabilities"]["_meta"]["harn"]["profile"] == "strict"


async def test_unknown_methods_get_method_not_found(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize()
        for method in ("session/fork", "_harn/unknown", "authenticate", "nonsense"):
            response = await client.request(method, {})
            assert response["error"]["code"] == -32601


async def test_unknown_notifications_are_ignored(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize()
        await client.notify("_zed.dev/file_opened", {"path": "/x"})
        await client.notify("$/progress", {})
        sid = await client.new_session()
    assert sid


def _at(message: dict[str, Any], path: str) -> Any:
    value: Any = message
    for key in path.split("."):
        value = value[key]
    return value


@pytest.mark.parametrize("harn", [False, True])
async def test_the_bridge_block_says_where_event_ids_really_are(
    demo: BridgeHarness, harn: bool
) -> None:
    async with demo.client(validate=not harn) as client:
        result = await client.initialize({"_meta": {"harn": {}}} if harn else {})
        block = result["agentCapabilities"]["_meta"]["acp_bridge"]
        sid = await client.new_session()
        await client.prompt(sid, "/echo hi")
        load = await client.call(
            "session/load", {"sessionId": sid, "cwd": "/tmp", "mcpServers": []}
        )
    enabled = ["_harn/agentEvent"] if harn else []
    assert block == bridge_capability_block(Profile.HARN if harn else Profile.STRICT, enabled)
    assert block["sessionLoad"]["lastAckedEventId"] is True
    assert block["extensionMethods"]["_acp_bridge/runtimeEvent"]["forwardsUnknownKinds"] is True
    updates = [m for m in client.received if m.get("method") == "session/update"]
    ids = [_at(m, block["eventIdField"]) for m in updates if "eventId" in str(m)]
    assert ids
    assert all(isinstance(i, int) for i in ids)
    for field in block["sessionLoad"]["resultFields"]:
        assert isinstance(_at(load, field), int)


@pytest.mark.parametrize("params", [{}, {"protocolVersion": "1"}, {"protocolVersion": True}])
async def test_initialize_needs_an_integer_protocol_version(
    demo: BridgeHarness, params: dict[str, Any]
) -> None:
    async with demo.client() as client:
        response = await client.request("initialize", params)
        assert response["error"]["code"] == -32602
        assert response["error"]["data"] == {"field": "protocolVersion"}
        # The connection is not initialized by a refused attempt: a proper one still works.
        assert (await client.initialize())["protocolVersion"] == 1

"""Boolean config options end to end: declared by the backend, shown to clients that can show
them, set by a client, and changed by the backend itself (the demo's ``think_aloud``)."""

from __future__ import annotations

from typing import Any

from tests.support.acp_client import FS_CAPABILITIES

from .conftest import BridgeHarness

BOOLEAN_CLIENT = {**FS_CAPABILITIES, "session": {"configOptions": {"boolean": {}}}}
THINK = {
    "id": "think_aloud",
    "name": "Think aloud",
    "type": "boolean",
    "currentValue": True,
    "description": "Show the agent's thoughts during a turn",
}


def option_updates(updates: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [u["configOptions"] for u in updates if u["sessionUpdate"] == "config_option_update"]


def kinds(updates: list[dict[str, Any]]) -> list[str]:
    return [u["sessionUpdate"] for u in updates]


async def test_a_client_sets_a_boolean_option_and_the_others_hear_it(demo: BridgeHarness) -> None:
    async with demo.client() as setter, demo.client() as watcher, demo.client() as plain:
        await setter.initialize(BOOLEAN_CLIENT)
        await watcher.initialize(BOOLEAN_CLIENT)
        await plain.initialize()
        new = await setter.call("session/new", {"cwd": "/tmp/project", "mcpServers": []})
        sid = new["sessionId"]
        assert new["configOptions"] == [THINK]
        loaded = await watcher.call("session/load", {"sessionId": sid, "cwd": "/tmp/project"})
        assert loaded["configOptions"] == [THINK]
        # A client that cannot show booleans is shown none, and may not set them.
        shown = await plain.call("session/load", {"sessionId": sid, "cwd": "/tmp/project"})
        assert "configOptions" not in shown
        refused = await plain.request(
            "session/set_config_option",
            {"sessionId": sid, "configId": "think_aloud", "type": "boolean", "value": False},
        )
        assert refused["error"]["code"] == -32601

        result = await setter.call(
            "session/set_config_option",
            {"sessionId": sid, "configId": "think_aloud", "type": "boolean", "value": False},
        )
        assert result == {"configOptions": [{**THINK, "currentValue": False}]}
        update = await watcher.wait_for(
            lambda m: (
                m.get("method") == "session/update"
                and m["params"]["update"]["sessionUpdate"] == "config_option_update"
            )
        )
        assert update["params"]["update"]["configOptions"] == [{**THINK, "currentValue": False}]
        assert option_updates(setter.updates(sid)) == []  # the setter has the answer
        assert option_updates(plain.updates(sid)) == []

        # Off: a real turn shows no thoughts; on again: it does.
        await setter.prompt(sid, "Fix the bug")
        assert "agent_thought_chunk" not in kinds(setter.updates(sid))
        await setter.call(
            "session/set_config_option",
            {"sessionId": sid, "configId": "think_aloud", "type": "boolean", "value": True},
        )
        await setter.prompt(sid, "Fix the bug")
        assert "agent_thought_chunk" in kinds(setter.updates(sid))


async def test_the_backend_changes_its_option_and_every_client_hears_it(
    demo: BridgeHarness,
) -> None:
    async with demo.client() as owner, demo.client() as watcher:
        await owner.initialize(BOOLEAN_CLIENT)
        await watcher.initialize(BOOLEAN_CLIENT)
        sid = (await owner.call("session/new", {"cwd": "/tmp/project", "mcpServers": []}))[
            "sessionId"
        ]
        await watcher.call("session/load", {"sessionId": sid, "cwd": "/tmp/project"})
        await owner.prompt(sid, "/think off")
        off = [{**THINK, "currentValue": False}]
        assert option_updates(owner.updates(sid)) == [off]
        seen = await watcher.wait_for(
            lambda m: (
                m.get("method") == "session/update"
                and m["params"]["update"]["sessionUpdate"] == "config_option_update"
            )
        )
        assert seen["params"]["update"]["configOptions"] == off
        listed = await owner.call("session/load", {"sessionId": sid, "cwd": "/tmp/project"})
        assert listed["configOptions"] == off


async def test_wrong_value_types_are_invalid_params(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize(BOOLEAN_CLIENT)
        sid = await client.new_session()
        for params in (
            {"configId": "think_aloud", "value": "off"},
            {"configId": "think_aloud", "type": "boolean", "value": "false"},
            {"configId": "nope", "type": "boolean", "value": True},
        ):
            response = await client.request(
                "session/set_config_option", {"sessionId": sid, **params}
            )
            assert response["error"]["code"] == -32602, params

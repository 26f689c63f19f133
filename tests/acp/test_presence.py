"""Presence: who is attached to a session, in list/load/resume answers and as notifications."""

from __future__ import annotations

from acp_bridge.rpc.principal import Principal, Role

from .conftest import BridgeHarness, ScriptedBackend

LAPTOP = Principal("laptop", Role.CONTROLLER)
DASHBOARD = Principal("dashboard", Role.OBSERVER)
PRESENCE_CAPS = {"_meta": {"acp_bridge": {"extensions": ["_acp_bridge/presence"]}}}


async def test_presence_in_list_and_load_and_as_notifications(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, _ = scripted
    async with harness.client(principal=LAPTOP) as owner:
        await owner.initialize(PRESENCE_CAPS)
        sid = await owner.new_session()
        async with harness.client(principal=DASHBOARD) as watcher:
            await watcher.request(
                "initialize",
                {
                    "protocolVersion": 1,
                    "clientCapabilities": {},
                    "clientInfo": {"name": "dash", "version": "2"},
                },
            )
            loaded = await watcher.call(
                "session/load", {"sessionId": sid, "cwd": "/", "mcpServers": []}
            )
            clients = loaded["_meta"]["acp_bridge"]["clients"]
            assert [(c["name"], c["role"]) for c in clients] == [
                ("laptop", "controller"),
                ("dashboard", "observer"),
            ]
            assert clients[1]["clientInfo"] == {"name": "dash", "version": "2"}
            [item] = (await owner.call("session/list", {}))["sessions"]
            assert [c["name"] for c in item["_meta"]["acp_bridge"]["clients"]] == [
                "laptop",
                "dashboard",
            ]
            attached = await owner.wait_for(lambda m: m.get("method") == "_acp_bridge/presence")
            assert attached["params"]["state"] == "attached"
            assert attached["params"]["client"]["name"] == "dashboard"
        left = await owner.wait_for(
            lambda m: (
                m.get("method") == "_acp_bridge/presence" and m["params"]["state"] == "detached"
            )
        )
        assert left["params"]["client"]["role"] == "observer"
        # The observer did not ask for presence: it was sent none.
        assert not [m for m in watcher.received if m.get("method") == "_acp_bridge/presence"]

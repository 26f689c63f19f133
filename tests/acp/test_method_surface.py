"""Issue 16's "done when": every stable agent-side method of the vendored ``meta.json`` is served,
or answered ``-32601`` on purpose with a recorded decision; each answer valid per method."""

from __future__ import annotations

from typing import Any

from acp_bridge.rpc.principal import Principal
from acp_bridge.schema import load_meta
from tests.support.acp_client import FS_CAPABILITIES

from .conftest import BridgeHarness

CAPABLE = {
    **FS_CAPABILITIES,
    "session": {"configOptions": {"boolean": {}}},
    "elicitation": {"form": {}},
}
DELIBERATELY_NOT_FOUND = {
    "authenticate": "docs/decisions/0026-logout-ends-the-authenticated-connection.md"
}


def requests_for(sid: str) -> dict[str, Any]:
    """A valid request for each method (``initialize`` was sent already)."""
    return {
        "initialize": {"protocolVersion": 1},  # a second one: -32600, but served
        "authenticate": {"methodId": "any"},
        "session/new": {"cwd": "/tmp/p", "mcpServers": [], "additionalDirectories": ["/tmp/q"]},
        "session/load": {"sessionId": sid, "cwd": "/tmp/p", "mcpServers": []},
        "session/resume": {"sessionId": sid, "cwd": "/tmp/p"},
        "session/set_mode": {"sessionId": sid, "modeId": "code"},
        "session/set_config_option": {
            "sessionId": sid,
            "configId": "think_aloud",
            "type": "boolean",
            "value": False,
        },
        "session/prompt": {"sessionId": sid, "prompt": [{"type": "text", "text": "/echo hi"}]},
        "session/cancel": {"sessionId": sid},
        "session/list": {},
        "session/close": {"sessionId": sid},
        "session/delete": {"sessionId": sid},
        "logout": {},
    }


async def test_every_stable_agent_method_is_served(demo: BridgeHarness) -> None:
    methods = list(load_meta()["agentMethods"].values())
    assert len(methods) == 13
    async with demo.client(principal=Principal("alice")) as client:
        await client.initialize(CAPABLE)
        sid = await client.new_session()
        doomed = await client.new_session()
        params = requests_for(sid)
        order = [m for m in methods if m not in ("session/close", "session/delete", "logout")]
        order += ["session/close", "session/delete", "logout"]
        for method in order:
            request = params[method]
            if method == "session/delete":
                request = {"sessionId": doomed}
            if method == "session/cancel":  # a notification in ACP: no answer to check
                await client.notify(method, request)
                continue
            response = await client.request(method, request)
            code = response.get("error", {}).get("code")
            if method in DELIBERATELY_NOT_FOUND:
                assert code == -32601, method
            else:
                assert code != -32601, (method, response)
                if method != "initialize":
                    assert "result" in response, (method, response)

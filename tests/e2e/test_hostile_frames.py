"""Hostile frames over a real WebSocket (and stdio) to a real bridge: each is answered or ignored,
and none ends the connection (issue 9, the defects found by fuzzing)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from acp_bridge.app import BridgeServer

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": "init",
    "method": "initialize",
    "params": {"protocolVersion": 1},
}


async def recv_json(ws: ClientConnection) -> Any:
    async with asyncio.timeout(5):
        return orjson.loads(await ws.recv())


async def assert_still_served(ws: ClientConnection) -> None:
    """The connection still answers a request (and so was not closed by what came before)."""
    await ws.send(orjson.dumps(INITIALIZE).decode())
    reply = await recv_json(ws)
    assert reply["id"] == "init"
    assert reply["result"]["protocolVersion"] == 1


@pytest.mark.parametrize("odd_id", [{"x": 1}, [1, 2], []])
async def test_a_response_with_an_object_or_array_id_does_not_close_1011(
    server: BridgeServer, odd_id: Any
) -> None:
    async with connect(server.url) as ws:
        await ws.send(orjson.dumps({"jsonrpc": "2.0", "id": odd_id, "result": {}}).decode())
        await ws.send(orjson.dumps({"jsonrpc": "2.0", "id": odd_id, "error": {}}).decode())
        await assert_still_served(ws)
        assert ws.close_code is None

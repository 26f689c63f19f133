"""Hostile frames over a real WebSocket (and stdio) to a real bridge: each is answered or ignored,
and none ends the connection (issue 9, the defects found by fuzzing)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
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


# JSON that parses but is no object: `null` used to read as the transport's end of stream (the
# connection closed with 1000 and no answer); the others were already answered and must stay so.
NON_OBJECT_FRAMES = ["null", " null ", "1", "-0.5", "1e400", '"text"', '""', "true", "false"]


@pytest.mark.parametrize("frame", NON_OBJECT_FRAMES)
async def test_a_json_null_or_other_non_object_frame_gets_invalid_request_over_websocket(
    server: BridgeServer, frame: str
) -> None:
    async with connect(server.url) as ws:
        await ws.send(frame)
        reply = await recv_json(ws)
        assert reply["id"] is None
        assert reply["error"]["code"] == (-32700 if frame == "1e400" else -32600)
        await assert_still_served(ws)


async def test_a_json_null_or_other_non_object_line_gets_invalid_request_over_stdio(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("ACP_BRIDGE_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acp_bridge",
        "serve",
        "--stdio",
        "--event-log",
        "memory",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            for frame in NON_OBJECT_FRAMES:
                # Each line is answered before the next is sent: a line that ended the stream
                # would leave this read without an answer (EOF) instead.
                process.stdin.write(frame.encode() + b"\n")
                await process.stdin.drain()
                reply = orjson.loads(await process.stdout.readline())
                assert reply["id"] is None, frame
                assert reply["error"]["code"] == (-32700 if frame == "1e400" else -32600), frame
            process.stdin.write(orjson.dumps(INITIALIZE) + b"\n")
            await process.stdin.drain()
            assert orjson.loads(await process.stdout.readline())["id"] == "init"
            process.stdin.close()
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

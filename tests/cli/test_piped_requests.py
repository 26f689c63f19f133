"""Requests piped into ``acp-bridge connect`` / ``serve --stdio`` with stdin closed right after them
are answered before the process exits (issue 15, item 2): ``echo '<request>' | acp-bridge …``."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from acp_bridge.rpc.transport import Transport
from acp_bridge.transports.websocket_server import (
    ConnectionInfo,
    WebSocketServer,
    WebSocketServerConfig,
)

from .test_serve_errors import running_serve

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": 1, "clientCapabilities": {}},
}


def _request(request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def _ndjson(*messages: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(m) + b"\n" for m in messages)


async def run_piped(tmp_path: Path, args: list[str], stdin: bytes) -> tuple[int, bytes, bytes]:
    """Run ``acp-bridge ARGS`` with ``stdin`` written and closed at once, like ``echo … |``."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("ACP_BRIDGE_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acp_bridge",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        async with asyncio.timeout(60):
            stdout, stderr = await process.communicate(stdin)
        assert process.returncode is not None
        return process.returncode, stdout, stderr
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _responses(stdout: bytes) -> dict[Any, dict[str, Any]]:
    messages = [orjson.loads(line) for line in stdout.splitlines()]
    return {m["id"]: m for m in messages if "method" not in m}


async def test_connect_answers_requests_piped_before_stdin_closed(tmp_path: Path) -> None:
    stdin = _ndjson(INITIALIZE, _request(2, "session/new", {"cwd": "/", "mcpServers": []}))
    async with running_serve(tmp_path, "--event-log", "memory") as (url, _):
        code, stdout, stderr = await run_piped(tmp_path, ["connect", url], stdin)
    assert (code, stderr) == (0, b"")
    answers = _responses(stdout)
    assert set(answers) == {1, 2}
    assert answers[1]["result"]["protocolVersion"] == 1
    assert answers[2]["result"]["sessionId"]


async def test_serve_stdio_answers_requests_piped_before_stdin_closed(tmp_path: Path) -> None:
    stdin = _ndjson(
        INITIALIZE,
        _request(2, "session/new", {"cwd": "/", "mcpServers": []}),
        _request(3, "no/such_method", {}),
    )
    args = ["serve", "--stdio", "--event-log", "memory", "--log-level", "warning"]
    code, stdout, stderr = await run_piped(tmp_path, args, stdin)
    assert code == 0, stderr
    answers = _responses(stdout)
    assert set(answers) == {1, 2, 3}
    assert answers[2]["result"]["sessionId"]
    assert answers[3]["error"]["code"] == -32601


class _Gate:
    """A server that answers each request only once the test opens the gate."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.received: asyncio.Queue[Any] = asyncio.Queue()

    async def handler(self, transport: Transport, info: ConnectionInfo) -> None:
        while (message := await transport.receive()) is not None:
            await self.received.put(message)
            await self.opened.wait()
            await transport.send({"jsonrpc": "2.0", "id": message["id"], "result": {"late": True}})


async def _gate_server(gate: _Gate) -> WebSocketServer:
    server = WebSocketServer(WebSocketServerConfig(port=0), gate.handler)
    await server.start()
    return server


async def test_connect_waits_for_an_answer_that_comes_after_stdin_closed(tmp_path: Path) -> None:
    gate = _Gate()
    server = await _gate_server(gate)
    try:
        run = asyncio.create_task(run_piped(tmp_path, ["connect", server.url], _ndjson(INITIALIZE)))
        async with asyncio.timeout(30):
            await gate.received.get()  # stdin is closed by now: communicate() wrote it all
            gate.opened.set()
            code, stdout, stderr = await run
    finally:
        await server.close()
    assert (code, stderr) == (0, b"")
    assert _responses(stdout) == {1: {"jsonrpc": "2.0", "id": 1, "result": {"late": True}}}


async def test_connect_gives_up_after_the_eof_grace_and_says_what_is_missing(
    tmp_path: Path,
) -> None:
    gate = _Gate()  # never opened: no answer ever comes
    server = await _gate_server(gate)
    try:
        args = ["connect", server.url, "--eof-grace", "0.5"]
        code, stdout, stderr = await run_piped(tmp_path, args, _ndjson(INITIALIZE))
    finally:
        await server.close()
    assert code == 1
    assert stdout == b""
    lines = stderr.decode().splitlines()
    assert len(lines) == 1, stderr
    assert "initialize (id 1)" in lines[0]
    assert "0.5 s" in lines[0]


async def test_connect_to_a_closed_port_says_so(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        code, stdout, stderr = await run_piped(
            tmp_path, ["connect", f"ws://127.0.0.1:{port}/acp"], b""
        )
    assert (code, stdout) == (1, b"")
    assert b"Errno" not in stderr
    assert b"nothing is listening" in stderr
    assert len(stderr.splitlines()) == 1

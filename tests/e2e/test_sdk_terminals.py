"""Every ``terminal/*`` method end to end: a backend runs commands in the client's terminals, and the
official SDK client implements them with real processes (every agent message validated per method)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from acp import RequestError
from acp.schema import (
    ClientCapabilities,
    CreateTerminalResponse,
    KillTerminalResponse,
    ReleaseTerminalResponse,
    TerminalExitStatus,
    TerminalOutputResponse,
    TextContentBlock,
    WaitForTerminalExitResponse,
)

from acp_bridge import (
    AgentMessageChunk,
    BridgeServer,
    FunctionBackend,
    ServerOptions,
    SessionContext,
    StopReason,
)

from .sdk_support import RecordingClient, sdk_websocket_client

CWD = "/tmp/terminal-project"
TIMEOUT = 10


class TerminalClient(RecordingClient):
    """A client whose terminals are real child processes."""

    def __init__(self) -> None:
        super().__init__()
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.output: dict[str, bytes] = {}
        self.calls: list[str] = []
        self._readers: dict[str, asyncio.Task[None]] = {}

    async def create_terminal(
        self, session_id: str, command: str, args: list[str] | None = None, **_: Any
    ) -> CreateTerminalResponse:
        self.calls.append("create")
        terminal_id = f"term-{len(self.processes) + 1}"
        process = await asyncio.create_subprocess_exec(
            command, *(args or []), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        self.processes[terminal_id] = process
        self.output[terminal_id] = b""
        self._readers[terminal_id] = asyncio.create_task(self._read(terminal_id, process))
        return CreateTerminalResponse(terminal_id=terminal_id)

    async def _read(self, terminal_id: str, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while chunk := await process.stdout.read(4096):
            self.output[terminal_id] += chunk

    def _process(self, terminal_id: str) -> asyncio.subprocess.Process:
        if terminal_id not in self.processes:
            raise RequestError.resource_not_found(terminal_id)
        return self.processes[terminal_id]

    async def terminal_output(
        self, session_id: str, terminal_id: str, **_: Any
    ) -> TerminalOutputResponse:
        self.calls.append("output")
        process = self._process(terminal_id)
        status = None
        if process.returncode is not None:
            await self._readers[terminal_id]  # all of it, once it exited
            status = _exit_status(process.returncode)
        return TerminalOutputResponse(
            output=self.output[terminal_id].decode(), truncated=False, exit_status=status
        )

    async def wait_for_terminal_exit(
        self, session_id: str, terminal_id: str, **_: Any
    ) -> WaitForTerminalExitResponse:
        self.calls.append("wait_for_exit")
        code = await self._process(terminal_id).wait()
        status = _exit_status(code)
        return WaitForTerminalExitResponse(exit_code=status.exit_code, signal=status.signal)

    async def kill_terminal(
        self, session_id: str, terminal_id: str, **_: Any
    ) -> KillTerminalResponse:
        self.calls.append("kill")
        process = self._process(terminal_id)
        if process.returncode is None:
            process.kill()
        return KillTerminalResponse()

    async def release_terminal(
        self, session_id: str, terminal_id: str, **_: Any
    ) -> ReleaseTerminalResponse:
        self.calls.append("release")
        process = self.processes.pop(terminal_id)
        if process.returncode is None:
            process.kill()
        await process.wait()
        await self._readers.pop(terminal_id)
        return ReleaseTerminalResponse()

    async def aclose(self) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                process.kill()
            await process.wait()
        await asyncio.gather(*self._readers.values(), return_exceptions=True)


def _exit_status(code: int) -> TerminalExitStatus:
    if code < 0:
        return TerminalExitStatus(exit_code=None, signal="SIGKILL" if code == -9 else str(-code))
    return TerminalExitStatus(exit_code=code, signal=None)


results: dict[str, Any] = {}


async def terminal_turn(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
    """Run a short command to its end, then kill a long one; report what the client said."""
    short = await ctx.terminal_request(
        "terminal/create",
        {"command": sys.executable, "args": ["-c", "print('hello from the terminal')"]},
    )
    short_id = short["terminalId"]
    results["short_exit"] = await ctx.terminal_request(
        "terminal/wait_for_exit", {"terminalId": short_id}
    )
    results["short_output"] = await ctx.terminal_request(
        "terminal/output", {"terminalId": short_id}
    )
    long = await ctx.terminal_request(
        "terminal/create",
        {"command": sys.executable, "args": ["-c", "import time; time.sleep(60)"]},
    )
    long_id = long["terminalId"]
    results["long_running"] = await ctx.terminal_request("terminal/output", {"terminalId": long_id})
    results["kill"] = await ctx.terminal_request("terminal/kill", {"terminalId": long_id})
    results["long_exit"] = await ctx.terminal_request(
        "terminal/wait_for_exit", {"terminalId": long_id}
    )
    for terminal_id in (short_id, long_id):
        results[f"release_{terminal_id}"] = await ctx.terminal_request(
            "terminal/release", {"terminalId": terminal_id}
        )
    text = results["short_output"]["output"].strip()
    ctx.emit(AgentMessageChunk(session_id=ctx.session_id, content=f"ran: {text}"))
    return StopReason.END_TURN


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[BridgeServer]:
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'events.sqlite'}")
    async with BridgeServer(FunctionBackend(terminal_turn, name="terminals"), options) as running:
        yield running


async def test_every_terminal_method_end_to_end(server: BridgeServer) -> None:
    results.clear()
    client = TerminalClient()
    try:
        async with asyncio.timeout(TIMEOUT):
            async with sdk_websocket_client(server.url, client) as (conn, wire):
                await conn.initialize(
                    protocol_version=1, client_capabilities=ClientCapabilities(terminal=True)
                )
                session = await conn.new_session(cwd=CWD, mcp_servers=[])
                result = await conn.prompt(
                    session_id=session.session_id,
                    prompt=[TextContentBlock(type="text", text="run it")],
                )
    finally:
        await client.aclose()
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    methods = [m for m in wire.incoming if "method" in m and m["method"].startswith("terminal/")]
    assert [m["method"] for m in methods] == [
        "terminal/create",
        "terminal/wait_for_exit",
        "terminal/output",
        "terminal/create",
        "terminal/output",
        "terminal/kill",
        "terminal/wait_for_exit",
        "terminal/release",
        "terminal/release",
    ]
    assert all(m["params"]["sessionId"] == session.session_id for m in methods)
    assert results["short_exit"] == {"exitCode": 0}
    assert results["short_output"]["output"] == "hello from the terminal\n"
    assert results["short_output"]["exitStatus"] == {"exitCode": 0}
    assert "exitStatus" not in results["long_running"]  # still running then
    assert results["long_exit"]["signal"] == "SIGKILL"
    assert client.text(session.session_id) == "ran: hello from the terminal"
    assert client.processes == {}  # both released


async def test_terminal_requests_without_the_capability_fail_in_the_turn(
    server: BridgeServer,
) -> None:
    results.clear()
    client = TerminalClient()
    async with asyncio.timeout(TIMEOUT):
        async with sdk_websocket_client(server.url, client) as (conn, wire):
            await conn.initialize(protocol_version=1)
            session = await conn.new_session(cwd=CWD, mcp_servers=[])
            with pytest.raises(RequestError) as failed:
                await conn.prompt(
                    session_id=session.session_id,
                    prompt=[TextContentBlock(type="text", text="run it")],
                )
    assert "terminal" in str(failed.value)
    assert client.calls == []  # never asked: it did not advertise terminals
    assert wire.violations == []

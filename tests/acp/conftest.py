"""Fixtures: a bridge on a real SQLite log, clients over in-memory transports, a scriptable backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from acp_bridge.acp import AcpBridge, BridgeConfig
from acp_bridge.agents.base import BaseBackend, SessionContext, StopReason
from acp_bridge.agents.demo import DemoBackend
from acp_bridge.eventlog import SqliteEventLog
from acp_bridge.events import harn as h
from acp_bridge.rpc.principal import ANONYMOUS, Principal
from acp_bridge.rpc.transport import memory_transport_pair
from acp_bridge.sinks import SinkRegistry
from acp_bridge.translate import Profile
from tests.support.acp_client import ClientScript, RawAcpClient

Script = Callable[[SessionContext, list[dict[str, Any]]], Awaitable[StopReason]]


class ScriptedBackend(BaseBackend):
    """A backend whose turns are whatever coroutine the test sets."""

    def __init__(self) -> None:
        super().__init__(name="scripted")
        self.script: Script | None = None
        self.new_sessions: list[str] = []
        self.loaded_sessions: list[str] = []
        self.closed_sessions: list[str] = []
        self.cancels = 0

    async def new_session(self, ctx: SessionContext) -> None:
        self.new_sessions.append(ctx.session_id)

    async def load_session(self, ctx: SessionContext) -> None:
        self.loaded_sessions.append(ctx.session_id)

    async def close_session(self, ctx: SessionContext) -> None:
        self.closed_sessions.append(ctx.session_id)

    async def cancel(self, ctx: SessionContext) -> None:
        self.cancels += 1

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        assert self.script is not None, "set backend.script in the test"
        return await self.script(ctx, prompt)


def chunk(ctx: SessionContext, text: str) -> None:
    """Emit one agent message chunk."""
    ctx.emit(h.AgentMessageChunk(session_id=ctx.session_id, content=text))


def prompt_params(sid: str, text: str) -> dict[str, Any]:
    return {"sessionId": sid, "prompt": [{"type": "text", "text": text}]}


def prompt_request(request_id: Any, sid: str, text: str) -> dict[str, Any]:
    """A raw ``session/prompt`` request with a chosen id (for pipelining and $/cancel_request)."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "session/prompt",
        "params": prompt_params(sid, text),
    }


class GatedFlushLog(SqliteEventLog):
    """A log whose flushes, once ``armed``, wait until the test sets ``allow`` (``flushing`` says
    one is waiting). Arm it after the session exists: ``session/new`` flushes too."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.armed = False
        self.flushing = asyncio.Event()
        self.allow = asyncio.Event()

    async def aflush(self) -> None:
        if self.armed:
            self.flushing.set()
            await self.allow.wait()
        await super().aflush()


async def prompt_then_cancel(
    client: RawAcpClient, sid: str, text: str, running: asyncio.Event
) -> Any:
    """Prompt, wait until the backend signals ``running``, send ``session/cancel``; the answer."""
    turn = asyncio.create_task(client.prompt(sid, text))
    async with asyncio.timeout(5):
        await running.wait()
    await client.notify("session/cancel", {"sessionId": sid})
    async with asyncio.timeout(5):
        return await turn


class BridgeHarness:
    """A bridge plus a way to open clients on it."""

    def __init__(self, bridge: AcpBridge) -> None:
        self.bridge = bridge
        self.tasks: list[asyncio.Task[None]] = []

    @asynccontextmanager
    async def client(
        self,
        *,
        validate: bool = True,
        script: ClientScript | None = None,
        principal: Principal = ANONYMOUS,
    ) -> AsyncIterator[RawAcpClient]:
        server_side, client_side = memory_transport_pair()
        task = asyncio.create_task(self.bridge.handle_connection(server_side, principal=principal))
        self.tasks.append(task)
        async with RawAcpClient(client_side, validate=validate, script=script) as client:
            yield client
        async with asyncio.timeout(5):
            await task


@asynccontextmanager
async def make_harness(
    tmp_path: Path,
    backend: Any,
    *,
    profile: Profile = Profile.AUTO,
    log_name: str = "log.sqlite",
    permission_timeout: float = 300.0,
    context_window: int | None = None,
) -> AsyncIterator[BridgeHarness]:
    log = SqliteEventLog(tmp_path / log_name)
    config = BridgeConfig(
        profile=profile, permission_timeout=permission_timeout, context_window=context_window
    )
    bridge = AcpBridge(backend, log, registry=SinkRegistry(), config=config)
    harness = BridgeHarness(bridge)
    try:
        yield harness
    finally:
        async with asyncio.timeout(15):
            await bridge.shutdown()
            for task in harness.tasks:
                task.cancel()
            await asyncio.gather(*harness.tasks, return_exceptions=True)
        log.close()


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[BridgeHarness]:
    async with make_harness(tmp_path, DemoBackend(step_delay=0)) as harness:
        yield harness


@pytest.fixture
async def scripted(tmp_path: Path) -> AsyncIterator[tuple[BridgeHarness, ScriptedBackend]]:
    backend = ScriptedBackend()
    async with make_harness(tmp_path, backend) as harness:
        yield harness, backend

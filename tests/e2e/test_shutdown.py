"""Shutdown and start-up failure of a real ``BridgeServer``: order, bounded waits, nothing left behind."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from acp_bridge.agents.base import BackendHost, BaseBackend, SessionContext, StopReason
from acp_bridge.app import BridgeServer, ServerOptions
from acp_bridge.eventlog import EventLogClosed
from acp_bridge.events import harn as h
from acp_bridge.sinks import default_registry
from acp_bridge.transports.websocket import WebSocketTransport
from tests.support.acp_client import RawAcpClient


class SlowToStop(BaseBackend):
    """A turn that takes its time to wind down once cancelled, so shutdown can be observed mid-way."""

    name = "slow-to-stop"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancel_seen = asyncio.Event()
        self.release = asyncio.Event()
        self.starts = 0
        self.acloses = 0
        self.emitted_on_close: list[str] = []
        self.contexts: list[SessionContext] = []

    async def start(self, host: BackendHost) -> None:
        self.starts += 1

    async def new_session(self, ctx: SessionContext) -> None:
        self.contexts.append(ctx)

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        self.started.set()
        await ctx.wait_cancelled()
        self.cancel_seen.set()
        await self.release.wait()
        return StopReason.CANCELLED

    async def aclose(self) -> None:
        self.acloses += 1
        for ctx in self.contexts:  # a backend may still report something on its way out
            ctx.emit(h.AgentThoughtChunk(session_id=ctx.session_id, content="bye"))
            self.emitted_on_close.append(ctx.session_id)


async def test_no_new_connections_while_turns_wind_down(tmp_path: Path) -> None:
    backend = SlowToStop()
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'l.sqlite'}")
    server = BridgeServer(backend, options)
    await server.start()
    stopping: asyncio.Task[None] | None = None
    try:
        async with connect(server.url) as ws, RawAcpClient(WebSocketTransport(ws)) as client:
            await client.initialize()
            sid = await client.new_session()
            turn = asyncio.create_task(client.prompt(sid, "work"))
            async with asyncio.timeout(5):
                await backend.started.wait()
            stopping = asyncio.create_task(server.stop())
            async with asyncio.timeout(5):
                await backend.cancel_seen.wait()
            # The turn is still winding down, and the endpoint no longer takes anyone new.
            with pytest.raises((OSError, InvalidStatus)):
                async with asyncio.timeout(5), connect(server.url, open_timeout=5):
                    pass
            backend.release.set()
            async with asyncio.timeout(10):
                assert await turn == {"stopReason": "cancelled"}
                await stopping
                await client.closed.wait()
            assert ws.close_code == 1001
    finally:
        backend.release.set()
        if stopping is not None:
            await asyncio.gather(stopping, return_exceptions=True)
        await server.stop()
    assert backend.acloses == 1
    # The session's sinks left the process-wide registry with the bridge…
    assert default_registry.session_external_sink_count(sid) == 0
    # …but only after what the backend said on its way out was logged.
    from acp_bridge.eventlog import SqliteEventLog
    from acp_bridge.sinks import agent_events_topic

    log = SqliteEventLog(tmp_path / "l.sqlite")
    try:
        kinds = [e.record.kind for e in log.read_range(agent_events_topic(sid))]
    finally:
        log.close()
    assert kinds[-1] == "agent_thought_chunk"


async def test_a_port_in_use_closes_the_started_backend(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        backend = SlowToStop()
        options = ServerOptions(port=port, event_log=f"sqlite:{tmp_path / 'l.sqlite'}")
        server = BridgeServer(backend, options)
        with pytest.raises(OSError, match="address already in use"):
            await server.start()
    assert (backend.starts, backend.acloses) == (1, 1)
    with pytest.raises(EventLogClosed):
        server.log.latest("any")


async def test_shutdown_with_clients_that_ignore_the_close_handshake_is_bounded() -> None:
    # Issue 9: connections were closed one after another, each waiting out the 2 s close timeout
    # for a client that never answers: 10 such clients held SIGTERM for 20 s.
    options = ServerOptions(port=0, event_log="memory")
    server = BridgeServer(SlowToStop(), options)
    await server.start()
    clients = []
    try:
        async with asyncio.timeout(10):
            for _ in range(10):
                ws = await connect(server.url)
                clients.append(ws)
                # An answered request: the bridge serves this connection from now on.
                await ws.send(
                    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1}}'
                )
                assert '"result"' in await ws.recv()
        assert len(server.bridge.connections) == 10
        for ws in clients:
            # The client stops reading: the server's close frame is never seen, let alone answered.
            ws.transport.pause_reading()
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(30):
            await server.stop()
        assert loop.time() - started < 5
    finally:
        for ws in clients:
            ws.transport.abort()
        await server.stop()

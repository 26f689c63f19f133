"""The bridge over a real WebSocket with raw frames: the exact wire, bad input, slow clients, shutdown."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from acp_bridge.agents.base import BaseBackend, SessionContext, StopReason
from acp_bridge.agents.demo import DemoBackend
from acp_bridge.app import BridgeServer, ServerOptions
from acp_bridge.events import harn as h
from acp_bridge.transports.websocket import WebSocketTransport
from tests.support.acp_client import ClientScript, RawAcpClient


@asynccontextmanager
async def raw_client(url: str, **kwargs: Any) -> AsyncIterator[RawAcpClient]:
    async with (
        connect(url, **kwargs) as ws,
        RawAcpClient(WebSocketTransport(ws), **_client_args(kwargs)) as client,
    ):
        yield client


def _client_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {}


async def read_until_closed(ws: ClientConnection) -> None:
    """Read and drop frames until the connection closes (raises ConnectionClosed)."""
    async with asyncio.timeout(20):
        while True:
            await ws.recv()


async def recv_json(ws: ClientConnection) -> Any:
    async with asyncio.timeout(5):
        return orjson.loads(await ws.recv())


async def test_exact_frames_of_a_short_turn(server: BridgeServer) -> None:
    async with connect(server.url) as ws:
        assert ws.response.headers["Acp-Connection-Id"]
        await ws.send(
            orjson.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {"protocolVersion": 1},
                }
            ).decode()
        )
        init = await recv_json(ws)
        assert init["result"]["protocolVersion"] == 1
        await ws.send(
            orjson.dumps(
                {"jsonrpc": "2.0", "id": 2, "method": "session/new", "params": {"cwd": "/tmp"}}
            ).decode()
        )
        new = await recv_json(ws)
        sid = new["result"]["sessionId"]
        commands = await recv_json(ws)
        assert commands["params"]["update"]["sessionUpdate"] == "available_commands_update"
        await ws.send(
            orjson.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "session/prompt",
                    "params": {
                        "sessionId": sid,
                        "prompt": [{"type": "text", "text": "/echo hello"}],
                    },
                }
            ).decode()
        )
        chunk = await recv_json(ws)
        assert chunk == {
            "jsonrpc": "2.0",
            "method": "session/update",
            "params": {
                "sessionId": sid,
                "update": {
                    "sessionUpdate": "agent_message_chunk",
                    "content": {"type": "text", "text": "hello"},
                },
                "_meta": {"harn": {"eventId": 2}},
            },
        }
        info = await recv_json(ws)
        assert info["params"]["update"] == {
            "sessionUpdate": "session_info_update",
            "title": "/echo hello",
            "updatedAt": info["params"]["update"]["updatedAt"],
        }
        assert await recv_json(ws) == {
            "jsonrpc": "2.0",
            "id": 3,
            "result": {"stopReason": "end_turn"},
        }


async def test_bad_input_gets_errors_and_the_connection_survives(server: BridgeServer) -> None:
    async with connect(server.url) as ws:
        await ws.send("{this is not json")
        assert (await recv_json(ws))["error"]["code"] == -32700
        await ws.send(orjson.dumps([{"jsonrpc": "2.0", "id": 1, "method": "initialize"}]).decode())
        batch = await recv_json(ws)
        assert batch["error"]["code"] == -32600
        assert batch["id"] is None
        await ws.send(b"\x00binary frames are ignored")
        await ws.send(
            orjson.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "initialize",
                    "params": {"protocolVersion": 1},
                }
            ).decode()
        )
        assert (await recv_json(ws))["id"] == 2  # the binary frame produced nothing
        await ws.send(
            orjson.dumps(
                {"jsonrpc": "2.0", "id": 3, "method": "no/such_method", "params": {}}
            ).decode()
        )
        assert (await recv_json(ws))["error"]["code"] == -32601
        await ws.send(
            orjson.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 4,
                    "method": "session/prompt",
                    "params": {"sessionId": "nope", "prompt": []},
                }
            ).decode()
        )
        assert (await recv_json(ws))["error"]["code"] == -32002
        await ws.send(
            orjson.dumps(
                {"jsonrpc": "2.0", "id": 5, "method": "session/new", "params": {"cwd": 42}}
            ).decode()
        )
        assert (await recv_json(ws))["error"]["code"] == -32602


async def test_oversized_frame_closes_1009(tmp_path: Path) -> None:
    options = ServerOptions(port=0, event_log="memory", max_message_bytes=4096)
    async with (
        BridgeServer(DemoBackend(0), options) as running,
        connect(running.url, max_size=None) as ws,
    ):
        await ws.send("x" * 10_000)
        with pytest.raises(ConnectionClosed) as info:
            async with asyncio.timeout(5):
                await ws.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1009


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Bearer t0ken", "Origin": "https://evil.example"}, 403),
    ],
)
async def test_auth_and_origin_are_checked_before_the_upgrade(
    headers: dict[str, str], status: int
) -> None:
    options = ServerOptions(
        port=0, event_log="memory", token="t0ken", allowed_origins=("https://ide.example",)
    )
    async with BridgeServer(DemoBackend(0), options) as running:
        with pytest.raises(InvalidStatus) as info:
            async with connect(running.url, additional_headers=headers):
                pass
        assert info.value.response.status_code == status
        async with connect(
            running.url,
            additional_headers={"Authorization": "Bearer t0ken", "Origin": "https://ide.example"},
        ) as ws:
            await ws.send(
                orjson.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "initialize",
                        "params": {"protocolVersion": 1},
                    }
                ).decode()
            )
            assert (await recv_json(ws))["result"]["protocolVersion"] == 1
        # Browsers cannot set headers: the token as a subprotocol works too.
        async with connect(running.url, subprotocols=["acp.v1", "acp.bearer.t0ken"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "acp.v1"


class Firehose(BaseBackend):
    """Emits many large events as fast as it can."""

    def __init__(self, count: int) -> None:
        super().__init__(name="firehose")
        self.count = count

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        if prompt[0].get("text") == "small":
            ctx.emit(h.AgentMessageChunk(session_id=ctx.session_id, content="ok"))
            return StopReason.END_TURN
        chunk = "y" * 4096
        for i in range(self.count):
            ctx.emit(h.AgentMessageChunk(session_id=ctx.session_id, content=chunk))
            if i % 256 == 0:
                await asyncio.sleep(0)  # let the writers run, as a real agent would between tokens
        return StopReason.END_TURN


async def test_a_burst_far_past_the_outbox_limit_reaches_a_reading_client(tmp_path: Path) -> None:
    # 2,000 chunks of 4 KiB land in the outbox faster than any socket drains them; a client that
    # keeps reading is behind for a moment, not slow, and gets all of them.
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'l.sqlite'}", outbox_limit=64)
    async with (
        BridgeServer(Firehose(count=2000), options) as running,
        raw_client(running.url) as client,
    ):
        await client.initialize()
        sid = await client.new_session()
        async with asyncio.timeout(20):
            assert await client.prompt(sid, "flood") == {"stopReason": "end_turn"}
        chunks = [u for u in client.updates(sid) if u["sessionUpdate"] == "agent_message_chunk"]
        assert len(chunks) == 2000


class LogWatcher(logging.Handler):
    """Sets ``event`` when a record containing ``needle`` is logged (the server runs in-process)."""

    def __init__(self, needle: str, event: asyncio.Event) -> None:
        super().__init__(logging.WARNING)
        self.needle = needle
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.event.set()


def small_buffer_socket(url: str) -> socket.socket:
    """A connected socket whose receive buffer stays small.

    A client that stops reading is slow only once the kernel's buffers are full; with loopback
    autotuning they can hold tens of MiB (``net.ipv4.tcp_rmem``), more than the test sends.
    Setting ``SO_RCVBUF`` before connecting pins the buffer and turns autotuning off.
    """
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(5)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock


async def test_a_slow_client_is_disconnected_without_stalling_others(tmp_path: Path) -> None:
    options = ServerOptions(
        port=0,
        event_log=f"sqlite:{tmp_path / 'l.sqlite'}",
        outbox_limit=64,
        slow_client_grace=0.2,
    )
    slow_cut = asyncio.Event()
    watcher = LogWatcher("client too slow", slow_cut)
    logging.getLogger("acp_bridge.rpc.peer").addHandler(watcher)
    try:
        async with BridgeServer(Firehose(count=5000), options) as running:
            async with (
                connect(running.url, max_queue=1, sock=small_buffer_socket(running.url)) as slow,
                raw_client(running.url) as fast,
            ):
                await slow.send(
                    orjson.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": 1,
                            "method": "initialize",
                            "params": {"protocolVersion": 1},
                        }
                    ).decode()
                )
                await recv_json(slow)
                await slow.send(
                    orjson.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": 2,
                            "method": "session/new",
                            "params": {"cwd": "/tmp"},
                        }
                    ).decode()
                )
                sid = (await recv_json(slow))["result"]["sessionId"]
                # The slow client starts a flood and then stops reading.
                await slow.send(
                    orjson.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": 3,
                            "method": "session/prompt",
                            "params": {
                                "sessionId": sid,
                                "prompt": [{"type": "text", "text": "flood"}],
                            },
                        }
                    ).decode()
                )
                # Meanwhile another client is served promptly.
                await fast.initialize()
                other = await fast.new_session()
                assert await fast.prompt(other, "small") == {"stopReason": "end_turn"}
                # The slow one is cut off once it has been behind for the grace period. Reading it
                # before then would let it catch up, so wait for the bridge to give up on it first.
                async with asyncio.timeout(10):
                    await slow_cut.wait()
                # It was closed with 1013 (try again later).
                with pytest.raises(ConnectionClosed) as info:
                    await read_until_closed(slow)
                assert info.value.rcvd is not None
                assert info.value.rcvd.code == 1013
            # It can come back and load the whole session.
            async with raw_client(running.url) as again:
                await again.initialize()
                result = await again.call("session/load", {"sessionId": sid, "cwd": "/tmp"})
                assert result["_meta"]["harn"]["replayedEvents"] >= 5000
    finally:
        logging.getLogger("acp_bridge.rpc.peer").removeHandler(watcher)


async def test_graceful_shutdown_cancels_turns_and_closes_1001(tmp_path: Path) -> None:
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'l.sqlite'}")
    running = BridgeServer(DemoBackend(0), options)
    await running.start()
    try:
        async with (
            connect(running.url) as ws,
            RawAcpClient(WebSocketTransport(ws), script=ClientScript(permission="hold")) as client,
        ):
            await client.initialize()
            sid = await client.new_session()
            prompt = asyncio.create_task(client.prompt(sid, "Fix it"))
            await client.wait_for(lambda m: m.get("method") == "session/request_permission")
            await running.stop()
            async with asyncio.timeout(10):
                assert await prompt == {"stopReason": "cancelled"}
                await client.closed.wait()
            assert ws.close_code == 1001
    finally:
        await running.stop()
    # Everything the turn emitted reached the log before the socket closed.
    from acp_bridge.eventlog import SqliteEventLog
    from acp_bridge.sinks import agent_events_topic

    log = SqliteEventLog(tmp_path / "l.sqlite")
    try:
        assert len(log.read_range(agent_events_topic(sid))) > 5
    finally:
        log.close()


async def test_healthz_counts(server: BridgeServer) -> None:
    import urllib.request

    async with raw_client(server.url) as client:
        await client.initialize()
        await client.new_session()
        url = server.url.replace("ws://", "http://").rsplit("/", 1)[0] + "/healthz"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
    health = orjson.loads(body)
    assert health["status"] == "ok"
    assert health["sessions"] == 1
    assert health["connections"] == 1
    assert health["eventLog"] == {"ok": True}


async def test_healthz_is_503_degraded_once_the_log_cannot_commit(server: BridgeServer) -> None:
    import urllib.error
    import urllib.request

    from acp_bridge.eventlog import EventLogError, SqliteEventLog

    log = server.log
    assert isinstance(log, SqliteEventLog)

    def fail(batch: object) -> None:
        raise OSError("disk full")

    log._before_write = fail
    async with raw_client(server.url) as client:
        await client.initialize()
        # Its index record is the write that fails; a session that would not survive a restart
        # is refused, with the reason.
        response = await client.request("session/new", {"cwd": "/tmp", "mcpServers": []})
        assert response["error"]["code"] == -32603
        assert response["error"]["data"] == {"reason": "event_log"}
        assert "disk full" in response["error"]["message"]
    with pytest.raises(EventLogError, match="disk full"):
        await log.aflush()
    url = server.url.replace("ws://", "http://").rsplit("/", 1)[0] + "/healthz"

    def fetch() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    code, body = await asyncio.to_thread(fetch)
    health = orjson.loads(body)
    assert code == 503
    assert health["status"] == "degraded"
    assert health["eventLog"] == {"ok": False, "error": "OSError: disk full"}

"""Issue 13: two bridge nodes on one Redis share sessions; one node at a time runs a session.

Every test runs real nodes (in this process, each with its own WebSocket server on 127.0.0.1 port
0 and its own Redis connection) against the test session's redis-server, in a namespace of its own.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from acp_bridge.agents.base import BaseBackend, SessionContext, StopReason
from acp_bridge.app import BridgeServer, ServerOptions
from acp_bridge.eventlog import RedisEventLog
from acp_bridge.events import harn as h
from acp_bridge.sinks import SinkRegistry
from acp_bridge.transports.websocket import WebSocketTransport
from tests.support.acp_client import RawAcpClient, ResponseError
from tests.support.http import http_get
from tests.support.redis_server import redis_url, start_redis_server

CWD = "/tmp/project"


class CountingBackend(BaseBackend):
    """Each turn: three chunks naming the node and the prompt."""

    def __init__(self, node: str) -> None:
        super().__init__(name="counting")
        self.node = node

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        text = "".join(b.get("text", "") for b in prompt)
        for n in range(3):
            ctx.emit(
                h.AgentMessageChunk(session_id=ctx.session_id, content=f"{self.node}:{text}#{n} ")
            )
        return StopReason.END_TURN


@pytest.fixture
def spec() -> str:
    return f"{redis_url()}?namespace=e2e{secrets.token_hex(4)}&lease_ttl=2"


@asynccontextmanager
async def node(spec: str, name: str) -> AsyncIterator[BridgeServer]:
    # A sink registry per node, as if each ran in its own process.
    async with BridgeServer(
        CountingBackend(name), ServerOptions(port=0, event_log=spec), registry=SinkRegistry()
    ) as server:
        yield server


@asynccontextmanager
async def client(server: BridgeServer) -> AsyncIterator[RawAcpClient]:
    async with (
        connect(server.url) as ws,
        RawAcpClient(WebSocketTransport(ws), validate=True) as acp,
    ):
        await acp.initialize()
        yield acp


def events(acp: RawAcpClient, sid: str) -> list[tuple[int, str]]:
    """(event id, text) of the agent message chunks received for ``sid``."""
    return [
        (m["params"]["_meta"]["harn"]["eventId"], m["params"]["update"]["content"]["text"])
        for m in acp.received
        if m.get("method") == "session/update"
        and m["params"]["sessionId"] == sid
        and m["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
    ]


def echoes(acp: RawAcpClient, sid: str) -> list[str]:
    """The texts of the prompt echoes (``user_message_chunk``) received for ``sid``."""
    return [
        u["content"]["text"] for u in acp.updates(sid) if u["sessionUpdate"] == "user_message_chunk"
    ]


async def load(acp: RawAcpClient, sid: str) -> Any:
    return await acp.call(
        "session/load",
        {
            "sessionId": sid,
            "cwd": CWD,
            "mcpServers": [],
            "_meta": {"acp_bridge": {"replay": "exact"}},
        },
    )


async def test_a_session_made_on_one_node_loads_and_continues_on_the_other(spec: str) -> None:
    async with node(spec, "A") as a_node, client(a_node) as a:
        sid = await a.new_session(CWD)
        assert await a.prompt(sid, "one") == {"stopReason": "end_turn"}
        seen_on_a = events(a, sid)
        assert [text for _, text in seen_on_a] == ["A:one#0 ", "A:one#1 ", "A:one#2 "]

        async with node(spec, "B") as b_node, client(b_node) as b:
            # Listed and loaded on B, with the same history and ids.
            listed = await b.call("session/list", {})
            assert sid in [s["sessionId"] for s in listed["sessions"]]
            await load(b, sid)
            assert events(b, sid) == seen_on_a
            # A owns it (its lease is alive): a prompt sent to B runs on A, through the session's
            # command stream; B answers it once B's client has every update of the turn, and A's
            # client sees the turn live too.
            assert await b.prompt(sid, "routed") == {"stopReason": "end_turn"}
            routed = ["A:routed#0 ", "A:routed#1 ", "A:routed#2 "]
            assert [t for _, t in events(b, sid)][-3:] == routed
            await a.wait_for(lambda m: "A:routed#2 " in str(m.get("params", {})), timeout=10)
            assert events(a, sid) == events(b, sid)
            # The prompt's echo goes to every client but the one that sent it, as on one node.
            assert echoes(a, sid) == ["routed"]
            assert echoes(b, sid) == ["one"]  # the replay of A's first prompt only
            seen_on_a = events(a, sid)

        # A stops (releasing its lease); a node that comes up afterwards takes the session over.
    async with node(spec, "B") as b_node, client(b_node) as b:
        await load(b, sid)
        assert await b.prompt(sid, "two") == {"stopReason": "end_turn"}
        ids = [i for i, _ in events(b, sid)]
        assert ids == sorted(set(ids))
        last_of_a = seen_on_a[-1][0]
        after = [(i, t) for i, t in events(b, sid) if i > last_of_a]
        assert [t for _, t in after] == ["B:two#0 ", "B:two#1 ", "B:two#2 "]
        assert len(seen_on_a) == 6
        # The ids continue: the prompt echo comes first, then B's chunks, no gap and no reuse.
        assert after[0][0] > last_of_a

        # A fresh load on yet another node replays every update once, in id order.
        async with node(spec, "C") as c_node, client(c_node) as c:
            await load(c, sid)
            assert events(c, sid) == seen_on_a + after


class PausingBackend(CountingBackend):
    """A turn that emits one chunk, waits for ``go``, emits another, then waits to be cancelled."""

    def __init__(self, node: str) -> None:
        super().__init__(node)
        self.go = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        if self.node == "B":
            return await super().prompt(ctx, prompt)
        ctx.emit(h.AgentMessageChunk(session_id=ctx.session_id, content="before "))
        await self.go.wait()
        ctx.emit(h.AgentMessageChunk(session_id=ctx.session_id, content="stale "))
        await asyncio.Event().wait()  # until cancelled
        return StopReason.END_TURN

    async def cancel(self, ctx: SessionContext) -> None:
        self.cancelled.set()


async def test_a_paused_owner_is_fenced_and_cancels_its_turn(spec: str) -> None:
    backend_a = PausingBackend("A")
    async with (
        BridgeServer(
            backend_a, ServerOptions(port=0, event_log=spec), registry=SinkRegistry()
        ) as a_node,
        client(a_node) as a,
        node(spec, "B") as b_node,
        client(b_node) as b,
    ):
        sid = await a.new_session(CWD)
        turn_a = asyncio.create_task(a.prompt(sid, "long"))
        await a.wait_for(lambda m: m.get("method") == "session/update" and "before" in str(m))
        # A is paused (no renewal) long enough for its lease to expire; B takes the session over.
        log_a = a_node.log
        assert isinstance(log_a, RedisEventLog)
        log_a._renew_paused = True
        log_a.client.delete(f"{log_a.namespace}:{{{sid}}}:owner")
        await load(b, sid)
        async with asyncio.timeout(10):
            assert await b.prompt(sid, "takeover") == {"stopReason": "end_turn"}
        # A wakes up and emits: the fence refuses the append, A learns it lost the session,
        # cancels the agent and ends its turn; the stale event reaches nobody.
        backend_a.go.set()
        async with asyncio.timeout(10):
            await backend_a.cancelled.wait()
            assert await turn_a == {"stopReason": "cancelled"}
        texts = [t for _, t in events(b, sid)]
        assert "stale " not in texts, events(b, sid)
        assert "stale " not in [t for _, t in events(a, sid)]
        async with client(b_node) as fresh:
            await load(fresh, sid)
            replayed = events(fresh, sid)
        assert [t for _, t in replayed] == [
            "before ",
            "B:takeover#0 ",
            "B:takeover#1 ",
            "B:takeover#2 ",
        ]
        ids = [i for i, _ in replayed]
        assert ids == sorted(set(ids))


async def test_healthz_reports_redis_and_owned_sessions_and_degrades_without_redis() -> None:
    server = start_redis_server()  # a server of its own: this test stops it
    try:
        spec = f"{server.url}?namespace=health&lease_ttl=2"
        async with node(spec, "A") as a_node, client(a_node) as a:
            sid = await a.new_session(CWD)
            status, _, body = await http_get(a_node.websocket.port, "/healthz")
            health = orjson.loads(body)
            assert status == 200
            assert health["status"] == "ok"
            assert health["eventLog"]["ok"] is True
            assert health["eventLog"]["ownedSessions"] == [sid]
            assert health["eventLog"]["node"]

            server.stop()
            log = a_node.log
            assert isinstance(log, RedisEventLog)
            # The lease thread pings every ttl/3; the test asks at once instead of waiting for it.
            assert await asyncio.to_thread(log.check_connection) is not None
            status, _, body = await http_get(a_node.websocket.port, "/healthz")
            health = orjson.loads(body)
            assert status == 503
            assert health["status"] == "degraded"
            assert health["eventLog"]["ok"] is False
            assert "Connection" in health["eventLog"]["error"]
            # New work is refused with a clear reason, not accepted and lost.
            with pytest.raises(ResponseError) as refused:
                await a.new_session(CWD)
            assert refused.value.data["reason"] == "event_log"
            with pytest.raises(ResponseError) as refused:
                await a.prompt(sid, "now")
            assert refused.value.data["reason"] == "event_log"
            assert "unreachable" in str(refused.value)
    finally:
        server.stop()


async def test_a_client_on_another_node_sees_the_owners_turn_live(spec: str) -> None:
    async with node(spec, "A") as a_node, client(a_node) as a:
        sid = await a.new_session(CWD)
        await a.prompt(sid, "one")
        async with node(spec, "B") as b_node, client(b_node) as b:
            await load(b, sid)
            assert await a.prompt(sid, "live") == {"stopReason": "end_turn"}
            # B tails the session's stream: A's turn reaches B's client as it happens.
            await b.wait_for(lambda m: "A:live#2 " in str(m.get("params", {})), timeout=10)
            assert events(b, sid) == events(a, sid)
            # The prompt's echo too (A's own client, which sent it, gets none).
            echo = [u for u in b.updates(sid) if u["sessionUpdate"] == "user_message_chunk"]
            assert [u["content"]["text"] for u in echo] == ["one", "live"]

            # A leaves; B takes the session over on the next prompt, and its client carries on:
            # every id once, in order, nothing lost between the tail and B's own events.
            await a_node.stop()
            assert await b.prompt(sid, "two") == {"stopReason": "end_turn"}
            got = events(b, sid)
            assert [t for _, t in got][-3:] == ["B:two#0 ", "B:two#1 ", "B:two#2 "]
            ids = [i for i, _ in got]
            assert ids == sorted(set(ids))
            assert len(got) == 9


async def test_a_cancel_sent_to_another_node_cancels_the_owners_turn(spec: str) -> None:
    backend_a = PausingBackend("A")
    async with (
        BridgeServer(
            backend_a, ServerOptions(port=0, event_log=spec), registry=SinkRegistry()
        ) as a_node,
        client(a_node) as a,
        node(spec, "B") as b_node,
        client(b_node) as b,
    ):
        sid = await a.new_session(CWD)
        await load(b, sid)
        # Prompted on B, run on A (the owner); B's client sees the turn start live.
        turn = asyncio.create_task(b.prompt(sid, "long"))
        await b.wait_for(lambda m: "before " in str(m.get("params", {})), timeout=10)
        await b.notify("session/cancel", {"sessionId": sid})
        async with asyncio.timeout(10):
            await backend_a.cancelled.wait()
            assert await turn == {"stopReason": "cancelled"}


async def test_a_close_sent_to_another_node_closes_the_session_on_its_owner(spec: str) -> None:
    async with (
        node(spec, "A") as a_node,
        client(a_node) as a,
        node(spec, "B") as b_node,
        client(b_node) as b,
    ):
        sid = await a.new_session(CWD)
        await a.prompt(sid, "one")
        await load(b, sid)
        assert await b.call("session/close", {"sessionId": sid}) == {}
        # The owner closed it: no longer listed anywhere, and a prompt on either node is refused.
        for acp in (a, b):
            listed = await acp.call("session/list", {})
            assert sid not in [s["sessionId"] for s in listed["sessions"]]
        assert a_node.bridge.sessions.live(sid) is None
        assert b_node.bridge.sessions.live(sid) is None
        with pytest.raises(ResponseError):
            await a.prompt(sid, "after")


async def test_a_delete_sent_to_another_node_deletes_the_session_on_its_owner(spec: str) -> None:
    async with (
        node(spec, "A") as a_node,
        client(a_node) as a,
        node(spec, "B") as b_node,
        client(b_node) as b,
    ):
        sid = await a.new_session(CWD)
        await a.prompt(sid, "one")
        await load(b, sid)
        assert await b.call("session/delete", {"sessionId": sid}) == {}
        for acp in (a, b):
            listed = await acp.call("session/list", {})
            assert sid not in [s["sessionId"] for s in listed["sessions"]]
        assert sid not in a_node.bridge.sessions.index
        assert sid not in b_node.bridge.sessions.index
    # Gone for a node that comes up afterwards too.
    async with node(spec, "C") as c_node, client(c_node) as c:
        with pytest.raises(ResponseError):
            await load(c, sid)

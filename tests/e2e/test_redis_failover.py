"""Issue 13, "done when": ``kill -9`` of the node that owns a session, and another node carries on.

Two real ``acp-bridge serve`` processes on one redis-server, each with the streaming ``exec:`` agent.
A turn runs on node A; A is killed with SIGKILL mid-turn; node B loads the session (everything a
client saw, same ids), takes it over once A's lease ran out, and runs the next turn; a fresh load
then replays every update any client saw, once, in id order.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import orjson
from websockets.asyncio.client import connect

from tests.support.redis_server import redis_url

from .test_crash_durability import CWD, AcpClient, BridgeProcess

LEASE_TTL = 1.0
CHUNKS = 5_000
KILL_AFTER = 300


async def prompt_when_owned(client: AcpClient, sid: str, label: str, chunks: int) -> float:
    """Prompt on a node that does not own the session yet: forwarded to the dead owner, it fails
    with ``owner_gone`` once the lease expired; the next one takes the session over. Returns the
    seconds until the turn was answered."""
    started = time.monotonic()
    text = orjson.dumps({"label": label, "chunks": chunks}).decode()
    params = {"sessionId": sid, "prompt": [{"type": "text", "text": text}]}
    async with asyncio.timeout(LEASE_TTL + 10):
        while True:
            request_id = next(client._ids)
            future = asyncio.get_running_loop().create_future()
            client._pending[request_id] = future
            message = {"jsonrpc": "2.0", "id": request_id, "method": "session/prompt"}
            await client.ws.send(orjson.dumps({**message, "params": params}).decode())
            response = await future
            if "result" in response:
                assert response["result"]["stopReason"] == "end_turn"
                return time.monotonic() - started
            # Forwarded to the dead owner, answered once its lease expired: prompt again.
            assert response["error"]["data"]["reason"] == "owner_gone", response


async def test_kill_9_of_the_owner_and_the_other_node_takes_over(tmp_path: Path) -> None:
    spec = f"{redis_url()}?namespace=kill{secrets.token_hex(4)}&lease_ttl={LEASE_TTL}"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    node_a = BridgeProcess(tmp_path / "a" / "unused.db", "A", event_log=spec)
    node_b = BridgeProcess(tmp_path / "b" / "unused.db", "B", event_log=spec)
    try:
        url_a, url_b = await node_a.start(), await node_b.start()
        async with connect(url_a, max_size=None) as ws_a:
            on_a = AcpClient(ws_a)
            await on_a.initialize()
            sid = (await on_a.call("session/new", {"cwd": CWD, "mcpServers": []}))["sessionId"]
            killed = asyncio.Event()

            def kill_at(count: int) -> None:
                if count >= KILL_AFTER and not killed.is_set():
                    node_a.kill()
                    killed.set()

            on_a.on_update = kill_at
            turn = on_a.prompt(sid, "first", CHUNKS)
            async with asyncio.timeout(30):
                await killed.wait()
            await asyncio.gather(turn, return_exceptions=True)
            await on_a.close()
        seen_on_a = {u.event_id: u.content for u in on_a.updates}
        assert len(seen_on_a) >= KILL_AFTER

        async with connect(url_b, max_size=None) as ws_b:
            on_b = AcpClient(ws_b)
            await on_b.initialize()
            load = {"sessionId": sid, "cwd": CWD, "mcpServers": []}
            load["_meta"] = {"acp_bridge": {"replay": "exact"}}
            await on_b.call("session/load", load)
            loaded = {u.event_id: u.content for u in on_b.updates}
            # Everything A's client saw is there, under the same ids.
            assert {i: loaded.get(i) for i in seen_on_a} == seen_on_a
            took = await prompt_when_owned(on_b, sid, "second", 200)
            assert took < LEASE_TTL + 5
            await on_b.close()

        async with connect(url_b, max_size=None) as ws_c:
            fresh = AcpClient(ws_c)
            await fresh.initialize()
            await fresh.call("session/load", load)
            await fresh.close()
        replay = [u.event_id for u in fresh.updates]
        assert replay == sorted(set(replay)), "ids repeated or out of order"
        replayed = {u.event_id: u.content for u in fresh.updates}
        for seen in (seen_on_a, {u.event_id: u.content for u in on_b.updates}):
            assert {i: replayed.get(i) for i in seen} == seen
        texts = [u.text() for u in fresh.updates]
        assert texts.count("second#199 ") == 1
        assert texts.count("second#0 ") == 1
    finally:
        await node_a.stop()
        await node_b.stop()

"""End-to-end notifications/s with the Redis event log vs SQLite: ``python bench/redis_bench.py``.

A backend in the bridge's process emits N ``agent_message_chunk`` events for one prompt; each is
appended to the event log, committed (SQLite transaction, or acknowledged by Redis), translated and
sent over a loopback WebSocket to a raw ``websockets`` client that counts frames until the
``session/prompt`` response. Rows:

* **SQLite**: one node, ``sqlite:`` log (the default);
* **Redis, one node**: the same with ``redis://`` (a local redis-server 7, AOF ``everysec``);
* **Redis, client on the other node**: two nodes on one Redis, the session owned by node A, the client
  attached to node B and prompting there: the prompt is forwarded to A through the command stream,
  and every notification reaches the client through B's tail of the session's stream.

The redis-server is started by the benchmark (127.0.0.1, free port, temp dir), as the tests do.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson
from websockets.asyncio.client import connect

from acp_bridge.agents.base import BaseBackend, SessionContext, StopReason
from acp_bridge.app import BridgeServer, ServerOptions
from acp_bridge.events.harn import AgentMessageChunk
from acp_bridge.sinks import SinkRegistry
from acp_bridge.translate import Profile
from bench._machine import machine
from tests.support.redis_server import start_redis_server

N = 20_000
RUNS = 3
TEXT = "chunk of the reply: the parser now keeps a cursor per line, so a failed token no longer rewinds"


class InProcessBackend(BaseBackend):
    """Emits the prompt's N events with ``ctx.emit``, yielding to the loop every 32 events."""

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        n = int(prompt[0]["text"])
        for i in range(n):
            ctx.emit(AgentMessageChunk(session_id=ctx.session_id, content=f"{i} {TEXT}"))
            if i % 32 == 31:
                await asyncio.sleep(0)
        return StopReason.END_TURN


async def _call(ws: Any, request_id: int, method: str, params: dict[str, Any]) -> Any:
    message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    await ws.send(orjson.dumps(message).decode())
    while True:
        reply = orjson.loads(await ws.recv())
        if reply.get("id") == request_id and "method" not in reply:
            assert "result" in reply, reply
            return reply["result"]


async def _prompt(ws: Any, session_id: str, n: int) -> tuple[float, int]:
    prompt = {"sessionId": session_id, "prompt": [{"type": "text", "text": str(n)}]}
    message = {"jsonrpc": "2.0", "id": 9, "method": "session/prompt", "params": prompt}
    frames = 0
    start = time.perf_counter()
    await ws.send(orjson.dumps(message).decode())
    while True:
        frame = await ws.recv(decode=False)
        frames += 1
        if b'"stopReason"' in frame and orjson.loads(frame).get("id") == 9:
            break
    return time.perf_counter() - start, frames


def _options(spec: str) -> ServerOptions:
    return ServerOptions(port=0, event_log=spec, profile=Profile.STRICT)


async def one_node(spec: str, n: int) -> tuple[float, int]:
    backend = InProcessBackend(name="bench")
    async with (
        BridgeServer(backend, _options(spec), registry=SinkRegistry()) as server,
        connect(server.url, max_size=None) as ws,
    ):
        await _call(ws, 1, "initialize", {"protocolVersion": 1})
        session = await _call(ws, 2, "session/new", {"cwd": "/tmp", "mcpServers": []})
        return await _prompt(ws, session["sessionId"], n)


async def two_nodes(spec: str, n: int) -> tuple[float, int]:
    async with (
        BridgeServer(InProcessBackend(name="A"), _options(spec), registry=SinkRegistry()) as a,
        BridgeServer(InProcessBackend(name="B"), _options(spec), registry=SinkRegistry()) as b,
        connect(a.url, max_size=None) as ws_a,
        connect(b.url, max_size=None) as ws_b,
    ):
        await _call(ws_a, 1, "initialize", {"protocolVersion": 1})
        session = await _call(ws_a, 2, "session/new", {"cwd": "/tmp", "mcpServers": []})
        sid = session["sessionId"]
        await _call(ws_b, 1, "initialize", {"protocolVersion": 1})
        await _call(ws_b, 2, "session/load", {"sessionId": sid, "cwd": "/tmp", "mcpServers": []})
        return await _prompt(ws_b, sid, n)


async def main() -> None:
    if shutil.which("redis-server") is None:
        print(
            "### Redis event log, end to end (`bench/redis_bench.py`)\n\nskipped: no redis-server"
        )
        return
    server = start_redis_server()
    rows: list[tuple[str, list[float], int]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)

            def redis_spec() -> str:
                return f"{server.url}?namespace=bench{secrets.token_hex(4)}"

            cases: list[tuple[str, Any]] = [
                ("SQLite, one node", lambda i: one_node(f"sqlite:{root / f'{i}.sqlite'}", N)),
                ("Redis, one node", lambda i: one_node(redis_spec(), N)),
                ("Redis, client on the other node", lambda i: two_nodes(redis_spec(), N)),
            ]
            for label, run in cases:
                await one_node(f"sqlite:{root / 'warm.sqlite'}", 2_000)  # warm-up
                times, frames = [], 0
                for i in range(RUNS):
                    elapsed, frames = await run(f"{label[:5]}-{i}")
                    times.append(elapsed)
                rows.append((label, times, frames))
    finally:
        server.stop()

    print("### Redis event log, end to end (`bench/redis_bench.py`)")
    print()
    print(f"- machine: {machine()}")
    print(
        f"- one prompt, {N:,} `agent_message_chunk` events of ~110 characters emitted in the bridge's "
        "process; strict profile; a raw `websockets` client on loopback counts frames until the "
        "prompt response; redis-server 7 on 127.0.0.1, AOF everysec, started by the benchmark"
    )
    print(f"- median of {RUNS} runs; frames = notifications + the response")
    print()
    print("| event log | frames | median s | notifications/s (median) | best |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, times, frames in rows:
        median = statistics.median(times)
        print(
            f"| {label} | {frames:,} | {median:.2f} | {N / median:,.0f} | {N / min(times):,.0f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())

"""Replay throughput end to end: ``python bench/replay_bench.py``.

A 100,000-event recording (the shipped ``fixtures/recordings/demo-session.jsonl`` repeated, with
tool-call and plan ids rewritten per copy and without its user messages, so that it is one turn)
is served by ``ReplayBackend(speed=0)`` behind a ``BridgeServer`` with the SQLite event log on. One
raw ``websockets`` client initializes, opens a session, prompts once and counts frames until the
prompt response: every event is decoded, logged to SQLite, translated, encoded and sent over
loopback, and the client receives and JSON-decodes each frame.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acp_bridge.agents.replay import ReplayBackend
from acp_bridge.app import BridgeServer, ServerOptions
from bench._machine import machine

N = 100_000
RECORDING = Path(__file__).resolve().parents[1] / "fixtures" / "recordings" / "demo-session.jsonl"


def build_recording(path: Path, count: int) -> None:
    """``count`` events: copies of the shipped recording's events, ids made unique per copy."""
    template = [
        obj
        for obj in (orjson.loads(line) for line in RECORDING.read_bytes().splitlines() if line)
        if obj["type"] != "user_message"
    ]
    first_ms = template[0]["emitted_at_ms"]
    span = template[-1]["emitted_at_ms"] - first_ms + 1_000
    with open(path, "wb") as out:
        for index in range(count):
            copy, position = divmod(index, len(template))
            obj = dict(template[position])
            obj["index"] = index
            obj["emitted_at_ms"] += copy * span
            if "tool_call_id" in obj:
                obj["tool_call_id"] = f"{obj['tool_call_id']}-c{copy}"
            if obj["type"] == "plan" and isinstance(obj["plan"], dict):
                obj["plan"] = {**obj["plan"], "id": f"{obj['plan'].get('id')}-c{copy}"}
            out.write(orjson.dumps(obj) + b"\n")


async def request(ws: Any, id_: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    # A text frame: ACP over WebSocket is JSON-RPC in text frames (orjson gives bytes).
    frame = {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}
    await ws.send(orjson.dumps(frame).decode())
    while True:
        message = orjson.loads(await ws.recv())
        if message.get("id") == id_:
            return dict(message)


async def run(path: Path, log: Path) -> dict[str, Any]:
    options = ServerOptions(port=0, event_log=f"sqlite:{log}")
    async with (
        BridgeServer(ReplayBackend(path, speed=0), options) as server,
        connect(server.url, max_size=None) as ws,
    ):
        await request(ws, 1, "initialize", {"protocolVersion": 1, "clientCapabilities": {}})
        new = await request(ws, 2, "session/new", {"cwd": "/tmp/bench", "mcpServers": []})
        sid = new["result"]["sessionId"]
        started = time.perf_counter()
        await ws.send(
            orjson.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "session/prompt",
                    "params": {"sessionId": sid, "prompt": [{"type": "text", "text": "go"}]},
                }
            ).decode()
        )
        frames = 0
        first: float | None = None
        while True:
            message = orjson.loads(await ws.recv())
            if message.get("id") == 3:
                break
            if first is None:
                first = time.perf_counter()
            frames += 1
        elapsed = time.perf_counter() - started
    return {
        "stop": message.get("result", message.get("error")),
        "frames": frames,
        "elapsed": elapsed,
        "first": (first or started) - started,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big-recording.jsonl"
        t0 = time.perf_counter()
        build_recording(path, N)
        build = time.perf_counter() - t0
        size = path.stat().st_size
        result = asyncio.run(run(path, Path(tmp) / "events.sqlite"))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("### Replay end to end (`bench/replay_bench.py`)")
    print()
    print(f"- machine: {machine()}")
    print(
        f"- a {N:,}-event recording ({size / 1e6:.1f} MB, built in {build:.1f} s), "
        "`ReplayBackend(speed=0)`, SQLite event log on, one raw `websockets` client on loopback "
        "(server and client in one process)"
    )
    print(f"- prompt result: `{orjson.dumps(result['stop']).decode()}`")
    print()
    print(
        "| events | frames | total (prompt → response) | first frame after | events/s | peak RSS |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {N:,} | {result['frames']:,} | {result['elapsed']:.2f} s | "
        f"{result['first'] * 1000:.0f} ms | {N / result['elapsed']:,.0f} | {rss_mb:.0f} MB |"
    )


if __name__ == "__main__":
    main()

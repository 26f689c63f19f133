"""End-to-end throughput of the ``exec`` backend: ``python bench/exec_bench.py``.

A child process answers one prompt by writing N events to its stdout as fast as it can (in batches,
so the child is not what is measured), then ``turn_end``. The bridge reads and decodes each line,
emits it through the sink registry (SQLite event log on, strict profile), translates it and sends it
over a loopback WebSocket to a raw ``websockets`` client, which counts frames until the
``session/prompt`` response. The rate is N / (time from sending the prompt to receiving the response).

Rows, for context:

* **exec, harn** / **exec, runtime**: the path above, with ``agent_message_chunk`` events or wrapped
  ``TextDelta`` events;
* **in-process backend**: the same events emitted with ``ctx.emit`` by a backend in the bridge's
  process (no child, no pipe, no parsing), the same server and client;
* **child → pipe only**: the child's output read line by line by a bare asyncio reader (no bridge):
  the ceiling the child and the pipe allow.

Client and server share one process and one event loop (the client only counts frames), so the
client's receive work is included in every row except the last.
"""

from __future__ import annotations

import asyncio
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
from acp_bridge.agents.exec import ExecBackend
from acp_bridge.app import BridgeServer, ServerOptions
from acp_bridge.events.harn import AgentMessageChunk
from acp_bridge.translate import Profile
from bench._machine import machine

N = 20_000
RUNS = 3
TEXT = "chunk of the reply: the parser now keeps a cursor per line, so a failed token no longer rewinds"

CHILD = r"""
import json, os, sys

TEXT = sys.argv[1]
BATCH = 500
out = sys.stdout.buffer
for line in sys.stdin:
    message = json.loads(line)
    if message["op"] != "prompt":
        continue
    n = int(message["prompt"][0]["text"])
    sid, turn = message["session_id"], message["turn_id"]
    if os.environ["ACP_BRIDGE_DIALECT"] == "harn":
        template = json.dumps({"type": "agent_message_chunk", "session_id": sid, "content": "%d " + TEXT})
    else:
        delta = {"run_id": "run-1", "delta": "%d " + TEXT, "timestamp": "2026-01-01T00:00:00.000000Z"}
        template = json.dumps({"session_id": sid, "event": {"TextDelta": delta}})
    for start in range(0, n, BATCH):
        out.write("".join(template % i + "\n" for i in range(start, min(n, start + BATCH))).encode())
    end = {"op": "turn_end", "session_id": sid, "turn_id": turn, "stop_reason": "end_turn"}
    out.write(json.dumps(end).encode() + b"\n")
    out.flush()
"""


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
    # Text frames: the endpoint ignores binary ones.
    await ws.send(
        orjson.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        ).decode()
    )
    while True:
        message = orjson.loads(await ws.recv())
        if message.get("id") == request_id and "method" not in message:
            return message["result"]


async def through_bridge(backend: Any, log_dir: Path, n: int) -> tuple[float, int]:
    """Seconds from the prompt to its response, and the frames received meanwhile."""
    options = ServerOptions(
        port=0, event_log=f"sqlite:{log_dir / 'events.sqlite'}", profile=Profile.STRICT
    )
    async with BridgeServer(backend, options) as server, connect(server.url, max_size=None) as ws:
        await _call(ws, 1, "initialize", {"protocolVersion": 1})
        session = await _call(ws, 2, "session/new", {"cwd": "/tmp", "mcpServers": []})
        prompt = {"sessionId": session["sessionId"], "prompt": [{"type": "text", "text": str(n)}]}
        frames = 0
        start = time.perf_counter()
        await ws.send(
            orjson.dumps(
                {"jsonrpc": "2.0", "id": 3, "method": "session/prompt", "params": prompt}
            ).decode()
        )
        while True:
            frame = await ws.recv(decode=False)
            frames += 1
            if b'"stopReason"' in frame and orjson.loads(frame).get("id") == 3:
                break
        elapsed = time.perf_counter() - start
    return elapsed, frames


async def pipe_only(script: Path, n: int) -> float:
    """Seconds for the child's N lines to cross the pipe to a reader that only splits lines."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        TEXT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={"ACP_BRIDGE_DIALECT": "harn", "PYTHONUNBUFFERED": "1"},
        limit=32 * 1024 * 1024,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    prompt = {
        "op": "prompt",
        "session_id": "s",
        "turn_id": "t1",
        "prompt": [{"type": "text", "text": str(n)}],
    }
    start = time.perf_counter()
    process.stdin.write(orjson.dumps(prompt) + b"\n")
    lines = 0
    while b'"turn_end"' not in await process.stdout.readline():
        lines += 1
    elapsed = time.perf_counter() - start
    assert lines == n
    process.stdin.close()
    await process.wait()
    return elapsed


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        script = root / "child.py"
        script.write_text(CHILD)
        rows: list[tuple[str, list[float], int]] = []
        cases: list[tuple[str, Any]] = [
            (
                "exec, harn (`agent_message_chunk`)",
                lambda: ExecBackend([sys.executable, str(script), TEXT]),
            ),
            (
                "exec, runtime (wrapped `TextDelta`)",
                lambda: ExecBackend([sys.executable, str(script), TEXT], dialect="runtime"),
            ),
            ("in-process backend (`ctx.emit`, no child)", lambda: InProcessBackend(name="bench")),
        ]
        for label, make in cases:
            await through_bridge(make(), root / f"warm-{len(rows)}", 2_000)  # warm-up
            times, frames = [], 0
            for run in range(RUNS):
                log_dir = root / f"{len(rows)}-{run}"
                log_dir.mkdir()
                elapsed, frames = await through_bridge(make(), log_dir, N)
                times.append(elapsed)
            rows.append((label, times, frames))
        pipe_times = [await pipe_only(script, N) for _ in range(RUNS)]

    print("### exec backend, end to end (`bench/exec_bench.py`)")
    print()
    print(f"- machine: {machine()}")
    print(
        f"- one prompt, {N:,} events of ~110 characters written by a child process as fast as it can; "
        "bridge with the SQLite event log, strict profile; a raw `websockets` client on loopback "
        "counts frames until the prompt response (client and server share one event loop)"
    )
    print(f"- median of {RUNS} runs after a warm-up; frames = updates + the response")
    print()
    print("| path | frames | median s | events/s (median) | best events/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, times, frames in rows:
        median = statistics.median(times)
        print(
            f"| {label} | {frames:,} | {median:.2f} | {N / median:,.0f} | {N / min(times):,.0f} |"
        )
    median = statistics.median(pipe_times)
    print(
        f"| child → pipe only (no bridge) | {N:,} lines | {median:.3f} | {N / median:,.0f} | "
        f"{N / min(pipe_times):,.0f} |"
    )


if __name__ == "__main__":
    asyncio.run(main())

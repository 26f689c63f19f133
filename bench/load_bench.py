"""``session/load`` of long sessions: ``python bench/load_bench.py [--sizes 100000,1000000]``.

A session is created through a real ``BridgeServer`` (SQLite log), the bridge is stopped, and N events
shaped like a long agent session are appended to its log through ``EventLogSink`` (per step: a thought
of 50 chunks, a reply of 200 chunks, a tool call with two updates; 98.8% chunks). The bridge is started
again on the file and one raw ``websockets`` client loads the session, in each replay mode, counting
frames until the response. Reported: seconds from the request to the last replayed update (the
response follows it) and frames received. Target (issue 10): 1M events ≤ 3 s, 100k ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acp_bridge.agents.demo import DemoBackend
from acp_bridge.app import BridgeServer, ServerOptions
from acp_bridge.eventlog import SqliteEventLog
from acp_bridge.events import decode_session_event
from acp_bridge.events.session_event import SessionEvent
from acp_bridge.sinks import EventLogSink
from bench._machine import machine


def step_events(session_id: str, step: int) -> list[SessionEvent]:
    """One step of a long session: a thought, a reply, a tool call and its updates."""
    raws: list[dict[str, Any]] = []
    raws += [{"type": "agent_thought_chunk", "content": f"thinking {i} "} for i in range(50)]
    raws += [{"type": "agent_message_chunk", "content": f"word{i} "} for i in range(200)]
    call = f"call-{step}"
    raws.append(
        {
            "type": "tool_call",
            "tool_call_id": call,
            "tool_name": "read_file",
            "kind": "read",
            "status": "pending",
            "raw_input": {"path": "README.md"},
        }
    )
    raws.append(
        {
            "type": "tool_call_update",
            "tool_call_id": call,
            "tool_name": "read_file",
            "status": "in_progress",
        }
    )
    raws.append(
        {
            "type": "tool_call_update",
            "tool_call_id": call,
            "tool_name": "read_file",
            "status": "completed",
            "raw_output": {"text": "# README"},
        }
    )
    return [decode_session_event(r["type"], {**r, "session_id": session_id}) for r in raws]


async def rpc(ws: Any, id_: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    await ws.send(
        orjson.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}), text=True
    )
    while True:
        message = orjson.loads(await ws.recv())
        if message.get("id") == id_:
            return dict(message)


async def create_session(log: Path) -> str:
    options = ServerOptions(port=0, event_log=f"sqlite:{log}")
    async with BridgeServer(DemoBackend(0), options) as server, connect(server.url) as ws:
        await rpc(ws, 1, "initialize", {"protocolVersion": 1, "clientCapabilities": {}})
        new = await rpc(ws, 2, "session/new", {"cwd": "/tmp/bench", "mcpServers": []})
        return str(new["result"]["sessionId"])


def fill(log: Path, session_id: str, count: int) -> None:
    """Append ``count`` events of the session shape (the same step objects, reused)."""
    events = step_events(session_id, 0)
    store = SqliteEventLog(log)
    sink = EventLogSink(store, session_id)
    for i in range(count):
        sink.append(events[i % len(events)])
    store.close()


async def load(log: Path, session_id: str, mode: str) -> tuple[float, int]:
    options = ServerOptions(port=0, event_log=f"sqlite:{log}")
    async with (
        BridgeServer(DemoBackend(0), options) as server,
        connect(server.url, max_size=None) as ws,
    ):
        await rpc(ws, 1, "initialize", {"protocolVersion": 1, "clientCapabilities": {}})
        params = {
            "sessionId": session_id,
            "cwd": "/tmp/bench",
            "mcpServers": [],
            "_meta": {"acp_bridge": {"replay": mode}},
        }
        started = time.perf_counter()
        await ws.send(
            orjson.dumps({"jsonrpc": "2.0", "id": 2, "method": "session/load", "params": params}),
            text=True,  # the bridge ignores binary frames
        )
        frames = 0
        while True:
            message = orjson.loads(await ws.recv())
            if message.get("id") == 2:
                break
            frames += 1
        return time.perf_counter() - started, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--modes", default="compact,exact")
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "load.db"
            session_id = asyncio.run(create_session(log))
            fill(log, session_id, size)
            for mode in args.modes.split(","):
                elapsed, frames = asyncio.run(load(log, session_id, mode))
                rows.append((size, mode, elapsed, frames))
    print("### Session load (`bench/load_bench.py`)")
    print()
    print(f"- machine: {machine()}")
    print(
        "- a session of N events (98.8% chunks: per step a 50-chunk thought, a 200-chunk reply, a tool"
        " call and two updates) in SQLite, loaded by one raw websockets client; seconds from the"
        " request to the response (after the last replayed update). Targets: 1M ≤ 3 s, 100k ≤ 0.5 s"
        " (compact, the strict profile's default)"
    )
    print()
    print("| events | replay mode | seconds | frames |")
    print("|---:|---|---:|---:|")
    for size, mode, elapsed, frames in rows:
        print(f"| {size:,} | {mode} | {elapsed:.2f} | {frames:,} |")


if __name__ == "__main__":
    main()

"""End to end over loopback: the bridge against the official SDK and a raw websockets floor.

Run: ``.venv/bin/python bench/server_bench.py`` (needs the dev extra for ``agent-client-protocol``).
Prints one markdown section for ``bench/RESULTS.md``; takes about 1.5 minutes.

Three servers, each in its own process pinned to CPU 0, stream the same ``session/update``
``agent_message_chunk`` notification (a 100-character text) to the same raw ``websockets`` client, in
another process pinned to CPU 1, which timestamps every frame as it receives it:

* **acp_bridge**: a backend whose prompt emits ``AgentMessageChunk`` events with ``ctx.emit`` (sink
  registry → session journal → ``EventLogSink`` on SQLite → fan-out → translation → outbox →
  WebSocket), strict profile, compression off (the bridge default), GC tuned as ``acp-bridge serve``
  does; the same in Harn's profile is measured for context;
* **ACP SDK**: the official SDK's ``AgentSideConnection`` served by a plain ``websockets`` server through
  a 15-line ``Transport`` adapter, sending with ``conn.session_update(...)`` from its prompt handler;
* **floor**: a plain ``websockets`` server sending dicts encoded with ``orjson``.

Every text starts with the 19-digit ``time.monotonic_ns()`` (``CLOCK_MONOTONIC``, one clock for every
process on Linux) taken right before the event is built and emitted; the client subtracts it from its
own ``time.monotonic_ns()`` on receipt.

Also measured: the idle memory (RSS of the server process) per connected session, with 1,000 sessions
on 1,000 connections, and 1,000 sessions on one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import multiprocessing as mp
import os
import re
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from bench._machine import machine

SYSTEMS = ("bridge", "bridge-harn", "sdk", "sdk-json", "floor")
"""Flat out; ``bridge-harn`` (Harn's wire profile) and ``sdk-json`` (the SDK behind the reference's
stdlib-``json`` adapter) are shown for context."""
PACED_SYSTEMS = ("bridge", "sdk", "floor")
LABELS = {
    "bridge": "acp_bridge (SQLite log, strict)",
    "bridge-harn": "acp_bridge (SQLite log, harn profile; context)",
    "sdk": "ACP SDK 0.12.1 `AgentSideConnection`, orjson adapter",
    "sdk-json": "ACP SDK 0.12.1, stdlib-`json` adapter (context)",
    "floor": "floor: `websockets` + `orjson`",
}

FLAT_N = 30_000
FLAT_RUNS = 3
WARMUP_N = 3_000
FLAT_BATCH = 32
"""Flat out, every agent yields to the event loop (``asyncio.sleep(0)``) after this many events."""
PACED_RATE = 5_000
PACED_SECONDS = 4.0
PACED_RUNS = 3
TICK = 0.001
"""Paced agents emit what is due, then sleep to the next tick deadline."""
MEM_SESSIONS = 1_000
MEM_CONNECT_CONCURRENCY = 50

SERVER_CPU = 0
CLIENT_CPU = 1

TEXT_LEN = 100
_FILLER = (
    " The parser now keeps a cursor per line, so a failed token no longer rewinds to the start."
    " The tests cover it."
)
PROMPT_ID = 3

# Issue 10's targets (the earlier ones were 2x the SDK with stdlib json, 0.5x, 10 ms, 50 KiB).
TARGET_VS_SDK = 1.7
TARGET_VS_FLOOR = 0.85
TARGET_P99_MS = 2.0
TARGET_KIB_PER_SESSION = 24.0


def make_text(stamp_ns: int) -> str:
    """A 100-character chunk text whose first 19 characters are the emit timestamp."""
    return (f"{stamp_ns:019d}" + _FILLER)[:TEXT_LEN]


def chunk_message(session_id: str, text: str) -> dict[str, Any]:
    """The plain ACP notification the SDK sends and the floor encodes."""
    return {
        "jsonrpc": "2.0",
        "method": "session/update",
        "params": {
            "sessionId": session_id,
            "update": {
                "sessionUpdate": "agent_message_chunk",
                "content": {"type": "text", "text": text},
            },
        },
    }


def parse_command(text: str) -> tuple[int, int]:
    """The prompt text names the run: ``bench N RATE`` (RATE 0 is flat out)."""
    _, n, rate = text.split()
    return int(n), int(rate)


async def drive(n: int, rate: int, emit_one: Callable[[], Any], is_async: bool) -> None:
    """Emit ``n`` events flat out (rate 0) or at ``rate`` events/s; the same loop for every system."""
    if rate <= 0:
        for i in range(n):
            result = emit_one()
            if is_async:
                await result
            if i % FLAT_BATCH == FLAT_BATCH - 1:
                await asyncio.sleep(0)
        return
    t0 = time.monotonic()
    sent = 0
    while sent < n:
        due = min(n, int((time.monotonic() - t0) * rate) + 1)
        while sent < due:
            result = emit_one()
            if is_async:
                await result
            sent += 1
        next_tick = (math.floor((time.monotonic() - t0) / TICK) + 1) * TICK
        await asyncio.sleep(max(0.0, t0 + next_tick - time.monotonic()))


# --- process plumbing -------------------------------------------------------------------------------


def _pin(cpu: int) -> None:
    with contextlib.suppress(AttributeError, OSError):
        if cpu < (os.cpu_count() or 1):
            os.sched_setaffinity(0, {cpu})


def _raise_nofile(want: int = 8192) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """utime + stime of a process's main thread and of its other threads, from /proc."""
    main = others = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            if task.name == str(pid):
                main += seconds
            else:
                others += seconds
    return main, others


# --- servers (each runs in its own process) -----------------------------------------------------------


async def _serve_bridge(log_path: str, harn: bool = False) -> tuple[Any, str]:
    from acp_bridge.agents.base import BaseBackend, SessionContext, StopReason
    from acp_bridge.app import BridgeServer, ServerOptions
    from acp_bridge.events.harn import AgentMessageChunk
    from acp_bridge.translate import Profile

    class BenchBackend(BaseBackend):
        async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
            n, rate = parse_command(prompt[0]["text"])
            emit, sid, clock = ctx.emit, ctx.session_id, time.monotonic_ns

            def emit_one() -> None:
                emit(AgentMessageChunk(session_id=sid, content=make_text(clock())))

            await drive(n, rate, emit_one, False)
            return StopReason.END_TURN

    # tune_gc: as `acp-bridge serve` runs it.
    profile = Profile.HARN if harn else Profile.STRICT
    options = ServerOptions(port=0, event_log=f"sqlite:{log_path}", profile=profile, tune_gc=True)
    server = BridgeServer(BenchBackend(name="bench"), options)
    await server.start()
    return server.stop, server.url


async def _serve_sdk(stdlib_json: bool = False) -> tuple[Any, str]:
    import json

    from acp import PROTOCOL_VERSION, update_agent_message_text
    from acp.agent.connection import AgentSideConnection
    from acp.schema import InitializeResponse, NewSessionResponse, PromptResponse
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    class WsServerTransport:
        """The SDK's ``Transport`` over a websockets server connection (orjson: the SDK's best case)."""

        def __init__(self, ws: Any) -> None:
            self.ws = ws

        async def send(self, message: dict[str, Any]) -> None:
            if stdlib_json:
                await self.ws.send(json.dumps(message, separators=(",", ":")))
            else:
                await self.ws.send(orjson.dumps(message), text=True)

        async def receive(self) -> dict[str, Any] | None:
            try:
                while True:
                    frame = await self.ws.recv()
                    if isinstance(frame, str):
                        message: dict[str, Any] = (
                            json.loads(frame) if stdlib_json else orjson.loads(frame)
                        )
                        return message
            except ConnectionClosed:
                return None

        async def close(self) -> None:
            await self.ws.close()

    class SdkBenchAgent:
        def __init__(self, conn: AgentSideConnection) -> None:
            self.conn = conn

        async def initialize(self, protocol_version: int, **kwargs: Any) -> InitializeResponse:
            return InitializeResponse(protocol_version=PROTOCOL_VERSION)

        async def new_session(self, cwd: str, **kwargs: Any) -> NewSessionResponse:
            return NewSessionResponse(session_id=f"sdk-{uuid.uuid4().hex}")

        async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
            n, rate = parse_command(prompt[0].text)
            update, clock = self.conn.session_update, time.monotonic_ns

            def emit_one() -> Any:
                return update(session_id, update_agent_message_text(make_text(clock())))

            await drive(n, rate, emit_one, True)
            return PromptResponse(stop_reason="end_turn")

    async def handler(ws: Any) -> None:
        conn = AgentSideConnection(cast(Any, SdkBenchAgent), WsServerTransport(ws), listening=False)
        await conn.listen()

    server = await serve(handler, "127.0.0.1", 0, compression=None)
    port = server.sockets[0].getsockname()[1]

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    return stop, f"ws://127.0.0.1:{port}/"


async def _serve_floor() -> tuple[Any, str]:
    from websockets.asyncio.server import serve

    async def stream(ws: Any, sid: str, n: int, rate: int) -> None:
        if rate <= 0:
            prebuilt = iter([chunk_message(sid, make_text(0)) for _ in range(n)])

            def emit_one() -> Any:
                return ws.send(orjson.dumps(next(prebuilt)), text=True)
        else:
            clock = time.monotonic_ns

            def emit_one() -> Any:
                return ws.send(orjson.dumps(chunk_message(sid, make_text(clock()))), text=True)

        await drive(n, rate, emit_one, True)

    async def handler(ws: Any) -> None:
        async for frame in ws:
            message = orjson.loads(frame)
            method, request_id = message.get("method"), message.get("id")
            if method == "initialize":
                result: dict[str, Any] = {"protocolVersion": 1, "agentCapabilities": {}}
            elif method == "session/new":
                result = {"sessionId": f"floor-{uuid.uuid4().hex}"}
            elif method == "session/prompt":
                params = message["params"]
                n, rate = parse_command(params["prompt"][0]["text"])
                await stream(ws, params["sessionId"], n, rate)
                result = {"stopReason": "end_turn"}
            else:
                continue
            reply = {"jsonrpc": "2.0", "id": request_id, "result": result}
            await ws.send(orjson.dumps(reply), text=True)

    server = await serve(handler, "127.0.0.1", 0, compression=None)
    port = server.sockets[0].getsockname()[1]

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    return stop, f"ws://127.0.0.1:{port}/"


def server_main(system: str, pipe: Any, log_path: str, trace: bool) -> None:
    """Child process: serve ``system`` until told to stop; answer memory questions on ``pipe``."""
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    _pin(SERVER_CPU)
    _raise_nofile()
    if trace:
        import tracemalloc

        tracemalloc.start(1)
    asyncio.run(_server_loop(system, pipe, log_path))


async def _server_loop(system: str, pipe: Any, log_path: str) -> None:
    if system == "bridge":
        stop, url = await _serve_bridge(log_path)
    elif system == "bridge-harn":
        stop, url = await _serve_bridge(log_path, harn=True)
    elif system == "sdk":
        stop, url = await _serve_sdk()
    elif system == "sdk-json":
        stop, url = await _serve_sdk(stdlib_json=True)
    else:
        stop, url = await _serve_floor()
    pipe.send(("ready", url))
    baseline = None
    try:
        while True:
            try:
                command = await asyncio.to_thread(pipe.recv)
            except EOFError:
                break
            if command == "stop":
                break
            if command == "measure":
                await asyncio.sleep(0.2)
                gc.collect()
                reply: dict[str, Any] = {"rss_kib": _rss_kib()}
                import tracemalloc

                if tracemalloc.is_tracing():
                    snapshot = tracemalloc.take_snapshot()
                    reply["traced"] = tracemalloc.get_traced_memory()[0]
                    if baseline is None:
                        baseline = snapshot
                    else:
                        stats = snapshot.compare_to(baseline, "lineno")
                        reply["top"] = [
                            (str(s.traceback[0]), s.size_diff, s.count_diff) for s in stats[:8]
                        ]
                pipe.send(reply)
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await stop()


# --- the client (its own process) ---------------------------------------------------------------------


async def _request(ws: Any, request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    await ws.send(orjson.dumps(message), text=True)
    async with asyncio.timeout(20):
        while True:
            reply = orjson.loads(await ws.recv(decode=False))
            if reply.get("id") == request_id and "method" not in reply:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result


def _connect(url: str) -> Any:
    from websockets.asyncio.client import connect

    return connect(url, compression=None, ping_interval=None, max_size=2**24, open_timeout=20)


async def _open_session(ws: Any) -> str:
    await _request(ws, 1, "initialize", {"protocolVersion": 1, "clientCapabilities": {}})
    result = await _request(ws, 2, "session/new", {"cwd": "/tmp", "mcpServers": []})
    return str(result["sessionId"])


async def stream_run(url: str, n: int, rate: int) -> dict[str, Any]:
    """One turn: prompt, then receive and timestamp every chunk until the prompt's response."""
    async with _connect(url) as ws:
        sid = await _open_session(ws)
        prompt = {
            "jsonrpc": "2.0",
            "id": PROMPT_ID,
            "method": "session/prompt",
            "params": {"sessionId": sid, "prompt": [{"type": "text", "text": f"bench {n} {rate}"}]},
        }
        keep = rate > 0
        frames: list[bytes] = []
        stamps: list[int] = []
        count = 0
        t_first = t_last = 0
        size = 0
        response: Any = None
        clock, recv = time.monotonic_ns, ws.recv
        gc.disable()
        cpu0 = time.process_time()
        t_send = clock()
        await ws.send(orjson.dumps(prompt), text=True)
        try:
            async with asyncio.timeout(90):
                while True:
                    data = await recv(decode=False)
                    now = clock()
                    if b'"agent_message_chunk"' in data:
                        if count == 0:
                            t_first, size = now, len(data)
                        count += 1
                        t_last = now
                        if keep:
                            frames.append(data)
                            stamps.append(now)
                        continue
                    message = orjson.loads(data)
                    if message.get("id") == PROMPT_ID and "method" not in message:
                        response = message
                        break
        except Exception as exc:
            response = {"error": f"{type(exc).__name__}: {exc} (close code {ws.close_code})"}
        finally:
            cpu = time.process_time() - cpu0
            gc.enable()
    end = t_last if count else clock()
    result: dict[str, Any] = {
        "count": count,
        "expected": n,
        "ok": count == n and "result" in (response or {}),
        "error": None if response is None else response.get("error"),
        "seconds": (end - t_send) / 1e9,
        "rate": count / ((end - t_send) / 1e9) if count else 0.0,
        "first_ms": (t_first - t_send) / 1e6 if count else None,
        "client_cpu": cpu,
        "client_wall": (clock() - t_send) / 1e9,
        "frame_bytes": size,
    }
    if keep and frames:
        latencies = sorted(
            (stamp - int(orjson.loads(frame)["params"]["update"]["content"]["text"][:19])) / 1e6
            for frame, stamp in zip(frames, stamps, strict=True)
        )
        result["lat"] = {
            "p50": _percentile(latencies, 50),
            "p99": _percentile(latencies, 99),
            "max": latencies[-1],
            "min": latencies[0],
        }
    return result


def _percentile(ordered: list[float], pct: float) -> float:
    rank = max(0, math.ceil(pct / 100 * len(ordered)) - 1)
    return ordered[rank]


async def hold_sessions(url: str, connections: int, per_connection: int, pipe: Any) -> None:
    """Open ``connections`` x ``per_connection`` sessions, report, and hold them until told to close."""
    gate = asyncio.Semaphore(MEM_CONNECT_CONCURRENCY)
    opened: list[Any] = []

    async def open_one() -> None:
        async with gate:
            ws = await _connect(url)
            opened.append(ws)
            await _request(ws, 1, "initialize", {"protocolVersion": 1, "clientCapabilities": {}})
            for k in range(per_connection):
                await _request(ws, 2 + k, "session/new", {"cwd": "/tmp", "mcpServers": []})

    try:
        await asyncio.gather(*(open_one() for _ in range(connections)))
        pipe.send(("held", len(opened)))
        await asyncio.to_thread(pipe.recv)
    finally:

        async def close(ws: Any) -> None:
            async with gate:
                with contextlib.suppress(Exception):
                    await ws.close()

        async with asyncio.timeout(30):
            await asyncio.gather(*(close(ws) for ws in opened))


def client_main(pipe: Any) -> None:
    """Child process: run what the driver asks, one job at a time."""
    _pin(CLIENT_CPU)
    _raise_nofile()
    while True:
        try:
            job = pipe.recv()
        except EOFError:
            return
        kind = job[0]
        if kind == "stop":
            return
        try:
            if kind == "stream":
                pipe.send(asyncio.run(stream_run(*job[1:])))
            elif kind == "hold":
                _, url, connections, per_connection = job
                asyncio.run(hold_sessions(url, connections, per_connection, pipe))
        except Exception as exc:
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))


# --- the driver ------------------------------------------------------------------------------------------


class Child:
    """A child process with a duplex pipe; always reaped, with bounded waits."""

    def __init__(self, target: Callable[..., None], *args: Any, stop_message: Any = "stop") -> None:
        ctx = mp.get_context("spawn")
        self.stop_message = stop_message
        self.pipe, child_end = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(*args[:1], child_end, *args[1:]))
        self.process.daemon = True
        self.process.start()
        child_end.close()

    def ask(self, message: Any, timeout: float = 120.0) -> Any:
        self.pipe.send(message)
        return self.wait(timeout)

    def wait(self, timeout: float = 120.0) -> Any:
        if not self.pipe.poll(timeout):
            raise TimeoutError(f"no answer from {self.process.name} in {timeout} s")
        return self.pipe.recv()

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.pipe.send(self.stop_message)
        self.process.join(15)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(3)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(3)
        self.pipe.close()


def start_server(system: str, workdir: Path, trace: bool = False) -> tuple[Child, str]:
    log_path = str(workdir / f"{system}-{uuid.uuid4().hex[:8]}.sqlite")
    child = Child(server_main, system, log_path, trace)
    tag, url = child.wait(60)
    assert tag == "ready", tag
    return child, url


def start_client() -> Child:
    return Child(_client_entry, stop_message=("stop",))


def _client_entry(pipe: Any) -> None:
    client_main(pipe)


def _machine_busy() -> tuple[float, float]:
    """CPU seconds the whole machine spent busy (steal excluded) and stolen by the hypervisor."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def stream(client: Child, server: Child, url: str, n: int, rate: int) -> dict[str, Any]:
    main0, others0 = _cpu_seconds(server.pid)
    client0 = sum(_cpu_seconds(client.pid))
    busy0, steal0 = _machine_busy()
    start = time.monotonic()
    result: dict[str, Any] = client.ask(("stream", url, n, rate), timeout=150)
    if isinstance(result, tuple):
        raise RuntimeError(f"client failed: {result[1]}")
    wall = time.monotonic() - start
    busy1, steal1 = _machine_busy()
    client1 = sum(_cpu_seconds(client.pid))
    main1, others1 = _cpu_seconds(server.pid)
    result["server_cpu"] = (main1 - main0) + (others1 - others0)
    result["server_cpu_others"] = others1 - others0
    ours = result["server_cpu"] + (client1 - client0)
    # Whatever else ran on the machine meanwhile (other people's tests...), in cores.
    result["foreign"] = max(0.0, (busy1 - busy0) - ours) / wall
    result["steal"] = (steal1 - steal0) / wall
    return result


def memory_run(
    client: Child, system: str, workdir: Path, connections: int, per_connection: int, trace: bool
) -> dict[str, Any]:
    server, url = start_server(system, workdir, trace)
    try:
        # Warm-up: a few sessions opened and closed, so imports and caches are in the baseline.
        client.pipe.send(("hold", url, 5, 2))
        assert client.wait(60)[0] == "held"
        client.pipe.send("release")
        time.sleep(0.5)
        before = server.ask("measure")
        client.pipe.send(("hold", url, connections, per_connection))
        reply = client.wait(120)
        if reply[0] != "held" or reply[1] != connections:
            raise RuntimeError(f"client could not open {connections} connections: {reply}")
        time.sleep(1.0)
        after = server.ask("measure")
        client.pipe.send("release")
        time.sleep(0.5)
    finally:
        server.stop()
    sessions = connections * per_connection
    result = {
        "before": before["rss_kib"],
        "after": after["rss_kib"],
        "per_session": (after["rss_kib"] - before["rss_kib"]) / sessions,
        "held": reply[1],
    }
    if trace:
        result["traced_per_session"] = (after["traced"] - before["traced"]) / sessions / 1024
        result["top"] = after.get("top", [])
    return result


def verdict(ok: bool) -> str:
    return "PASS" if ok else "**MISS**"


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="server-bench-"))
    nofile = _raise_nofile()
    children: list[Child] = []
    started = time.monotonic()
    try:
        client = start_client()
        children.append(client)
        servers: dict[str, tuple[Child, str]] = {}
        for system in SYSTEMS:
            servers[system] = start_server(system, workdir)
            children.append(servers[system][0])

        flat: dict[str, list[dict[str, Any]]] = {s: [] for s in SYSTEMS}
        paced: dict[str, list[dict[str, Any]]] = {s: [] for s in PACED_SYSTEMS}
        for system in SYSTEMS:
            server, url = servers[system]
            warm = stream(client, server, url, WARMUP_N, 0)
            if not warm["ok"]:
                raise RuntimeError(f"{system} warm-up failed: {warm}")
        # Interleaved, so slow drift of the shared VM hits every system alike.
        for _ in range(FLAT_RUNS):
            for system in SYSTEMS:
                server, url = servers[system]
                flat[system].append(stream(client, server, url, FLAT_N, 0))
        paced_n = int(PACED_RATE * PACED_SECONDS)
        for _ in range(PACED_RUNS):
            for system in PACED_SYSTEMS:
                server, url = servers[system]
                paced[system].append(stream(client, server, url, paced_n, PACED_RATE))
        for system in SYSTEMS:
            servers[system][0].stop()

        memory = {
            "bridge": memory_run(client, "bridge", workdir, MEM_SESSIONS, 1, False),
            "bridge-1conn": memory_run(client, "bridge", workdir, 1, MEM_SESSIONS, False),
            "bridge-traced": memory_run(client, "bridge", workdir, MEM_SESSIONS, 1, True),
            "sdk": memory_run(client, "sdk", workdir, MEM_SESSIONS, 1, False),
            "floor": memory_run(client, "floor", workdir, MEM_SESSIONS, 1, False),
        }
    finally:
        for child in reversed(children):
            child.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report(flat, paced, memory, nofile, time.monotonic() - started)
    return 0


def report(
    flat: dict[str, list[dict[str, Any]]],
    paced: dict[str, list[dict[str, Any]]],
    memory: dict[str, dict[str, Any]],
    nofile: int,
    elapsed: float,
) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    rate = {s: med([r["rate"] for r in flat[s]]) for s in SYSTEMS}
    failures = [
        f"{s} {kind} run: {r['count']:,}/{r['expected']:,} chunks, {r['error']}"
        for kind, runs in (("flat-out", flat), ("paced", paced))
        for s in runs
        for r in runs[s]
        if not r["ok"]
    ]
    print("### End to end over loopback (`bench/server_bench.py`)")
    print()
    print(f"- machine: {machine()}")
    everything = [r for runs in (flat, paced) for system_runs in runs.values() for r in system_runs]
    foreign = statistics.mean(r["foreign"] for r in everything)
    worst_foreign = max(r["foreign"] for r in everything)
    steal = statistics.mean(r["steal"] for r in everything)
    print(
        f"- other load during the runs: {foreign:.2f} cores on average (worst run {worst_foreign:.2f}) "
        f"used by processes other than this benchmark's, {steal:.2f} stolen by the hypervisor"
        + (
            "; **the machine was shared while measuring, so the numbers are noisier than usual**"
            if worst_foreign > 0.15
            else ""
        )
    )
    clock = time.get_clock_info("monotonic")
    print(
        "- method: each server in its own process pinned to CPU 0, one raw `websockets` client "
        "process pinned to CPU 1 (compression off everywhere); the client opens a connection, "
        "`initialize`, `session/new`, sends `session/prompt` with the run's parameters and "
        "timestamps every `agent_message_chunk` frame on receipt, until the prompt's response"
    )
    print(
        f"- payload: one `session/update` `agent_message_chunk` per event, a {TEXT_LEN}-character "
        "text; the bridge's strict frame also carries its event-log id (`params._meta.harn.eventId`), "
        "hence its slightly larger frame"
    )
    print(
        f"- flat out: {FLAT_N:,} notifications per run, the agent yielding to its event loop every "
        f"{FLAT_BATCH} events; rate = chunks / (last chunk received - prompt sent); median of "
        f"{FLAT_RUNS} runs, interleaved across systems, after a {WARMUP_N:,}-event warm-up each. "
        "Server CPU is the server process's utime+stime over the run, all threads (in brackets: "
        "threads other than the event loop's, i.e. the bridge's SQLite writer); server core busy = "
        "that CPU x the rate (the server has one core)"
    )
    print(
        f"- latency: {PACED_RATE:,} events/s for {PACED_SECONDS:g} s ({int(PACED_RATE * PACED_SECONDS):,} "
        f"events), emitted in {TICK * 1000:g} ms ticks (what is due, then `asyncio.sleep` to the next "
        f"tick deadline); latency = client receipt - emit, both `time.monotonic_ns()` "
        f"(`{clock.implementation}`, system-wide on Linux); per-run percentiles, median of "
        f"{PACED_RUNS} runs (max: the largest of all)"
    )
    print(
        "- the SDK agent is a plain class served with `AgentSideConnection(agent, transport, "
        "listening=False).listen()`; the target is judged against the SDK behind an `orjson` "
        "Transport adapter (its best case); the reference's stdlib-`json` adapter "
        "(`json.dumps(m, separators=...)`) is shown for context. The floor sends pre-built dicts "
        "flat out and builds one per event when paced. The client disables its own GC while "
        "receiving"
    )
    print()
    print(
        "| system | frame bytes | notifications/s (flat out) | runs | server CPU µs/notif "
        "(other threads) | server core busy | client CPU busy | other load, cores (worst run) |"
    )
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for s in SYSTEMS:
        runs = flat[s]
        cpu_us = med([r["server_cpu"] / max(1, r["count"]) * 1e6 for r in runs])
        other_us = med([r["server_cpu_others"] / max(1, r["count"]) * 1e6 for r in runs])
        busy = med([r["client_cpu"] / r["client_wall"] for r in runs])
        runs_text = " / ".join(f"{r['rate'] / 1000:.1f}k" for r in runs)
        print(
            f"| {LABELS[s]} | {runs[0]['frame_bytes']} | {rate[s]:,.0f} | {runs_text} | "
            f"{cpu_us:.1f} ({other_us:.1f}) | {cpu_us * rate[s] / 1e6:.0%} | {busy:.0%} | "
            f"{max(r['foreign'] for r in runs):.2f} |"
        )
    print()
    print(
        f"| system, paced at {PACED_RATE:,}/s | received/s | p50 ms | p99 ms (per run) | max ms | "
        "server CPU µs/notif | other load, cores (worst run) |"
    )
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for s in PACED_SYSTEMS:
        runs = paced[s]
        lat = [r["lat"] for r in runs if "lat" in r]
        p50 = med([x["p50"] for x in lat]) if lat else float("nan")
        p99 = med([x["p99"] for x in lat]) if lat else float("nan")
        worst = max(x["max"] for x in lat) if lat else float("nan")
        per_run = ", ".join(f"{x['p99']:.2f}" for x in lat)
        cpu_us = med([r["server_cpu"] / max(1, r["count"]) * 1e6 for r in runs])
        print(
            f"| {LABELS[s]} | {med([r['rate'] for r in runs]):,.0f} | {p50:.2f} | "
            f"{p99:.2f} ({per_run}) | {worst:.1f} | {cpu_us:.1f} | "
            f"{max(r['foreign'] for r in runs):.2f} |"
        )
    print()
    bridge_lat = [r["lat"]["p99"] for r in paced["bridge"] if "lat" in r]
    p99 = med(bridge_lat) if bridge_lat else float("nan")
    mem = memory["bridge"]
    one = memory["bridge-1conn"]
    traced = memory["bridge-traced"]
    print("| target | measured | result |")
    print("| --- | --- | --- |")
    print(
        f"| bridge rate ≥ {TARGET_VS_SDK:g}x the SDK's | {rate['bridge'] / rate['sdk']:.2f}x "
        f"({rate['bridge']:,.0f} vs {rate['sdk']:,.0f}/s; {rate['bridge'] / rate['sdk-json']:.2f}x "
        f"the stdlib-json adapter's {rate['sdk-json']:,.0f}/s) | "
        f"{verdict(rate['bridge'] >= TARGET_VS_SDK * rate['sdk'])} |"
    )
    print(
        f"| bridge rate ≥ {TARGET_VS_FLOOR:g}x the floor's | {rate['bridge'] / rate['floor']:.2f}x "
        f"({rate['bridge']:,.0f} vs {rate['floor']:,.0f}/s) | {verdict(rate['bridge'] >= TARGET_VS_FLOOR * rate['floor'])} |"
    )
    print(
        f"| bridge p99 ≤ {TARGET_P99_MS:g} ms at {PACED_RATE:,} events/s | {p99:.2f} ms (runs: "
        f"{', '.join(f'{x:.2f}' for x in bridge_lat)}) | {verdict(p99 <= TARGET_P99_MS)} |"
    )
    print(
        f"| bridge idle memory ≤ {TARGET_KIB_PER_SESSION:g} KiB per connected session "
        f"({MEM_SESSIONS:,} sessions, one connection each) | {mem['per_session']:.1f} KiB | "
        f"{verdict(mem['per_session'] <= TARGET_KIB_PER_SESSION)} |"
    )
    print()
    print(
        f"Idle memory: server RSS (`/proc/PID/status` VmRSS after `gc.collect()`: everything the "
        "process holds, C libraries and SQLite included, which `tracemalloc` would miss) before and "
        "after the sessions are opened and left idle for 1 s, divided by the session count; the "
        "baseline is taken after 5 warm-up connections. File descriptors: the soft `ulimit -n` is "
        f"raised to {nofile:,} in each process."
    )
    print()
    print("| server | layout | RSS before → after | per session |")
    print("| --- | --- | --- | ---: |")
    rows = [
        ("bridge", LABELS["bridge"], f"{MEM_SESSIONS:,} connections x 1 session", mem),
        ("bridge-1conn", LABELS["bridge"], f"1 connection x {MEM_SESSIONS:,} sessions", one),
        ("sdk", LABELS["sdk"], f"{MEM_SESSIONS:,} connections x 1 session", memory["sdk"]),
        ("floor", "`websockets` alone", f"{MEM_SESSIONS:,} connections", memory["floor"]),
    ]
    for _, label, layout, m in rows:
        print(
            f"| {label} | {layout} | {m['before'] / 1024:.1f} → {m['after'] / 1024:.1f} MiB | "
            f"{m['per_session']:.1f} KiB |"
        )
    print()
    print(
        f"`tracemalloc` (a separate run, {MEM_SESSIONS:,} connections x 1 session): "
        f"{traced['traced_per_session']:.1f} KiB of Python allocations per session; largest growth:"
    )
    print()
    for where, size, count in traced.get("top", [])[:6]:
        short = re.split(r"site-packages/|/lib/python3\.\d+/", where)[-1]
        short = short.removeprefix(str(Path(__file__).resolve().parents[1]) + "/")
        print(f"- `{short}`: {size / MEM_SESSIONS / 1024:.2f} KiB/session ({count:,} blocks)")
    if failures:
        print()
        print("Runs that did not complete (counted as measured):")
        for failure in failures:
            print(f"- {failure}")
    print()
    print(f"Whole script: {elapsed:.0f} s.")


if __name__ == "__main__":
    sys.exit(main())

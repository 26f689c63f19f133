"""``kill -9`` of a real ``acp-bridge serve`` in the middle of a turn loses nothing a client saw.

The README promises per-session event ids and reconnects without loss or duplicates. This
test checks it the way an operator would break it (issue 9, item 3): a SQLite event log, an ``exec:``
agent streaming 10,000 chunks per turn, SIGKILL of the bridge at a seeded random point of the turn,
a restart on the same database and ``session/load`` from id 0. After the restart:

* every event the client received before the kill is replayed, with the same id and content;
* the replay holds no id twice;
* the next turn works and gives no id the client saw to a different event.

Each round kills the bridge in its own slice of the turn, so early, middle and late kills are all
covered. All rounds run before the verdict, so a failure reports every round at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import re
import shlex
import signal
import sys
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

AGENT = Path(__file__).resolve().parents[1] / "support" / "streaming_agent.py"
SEED = 20240609
ROUNDS = 5
CHUNKS = 10_000  # per killed turn: long enough to kill it anywhere, short enough to stay fast
NEXT_TURN_CHUNKS = 2_000  # the reuse check sees the lost ids this turn reaches: make it reach many
CWD = "/tmp/project"
START_TIMEOUT = 10  # python start-up + import + SQLite open, on a slow CI machine
STEP_TIMEOUT = 15  # one turn, one replay, one shutdown


@dataclass(frozen=True)
class Update:
    """One ``session/update`` as the client received it: its event id and what it said."""

    event_id: int
    # The ``update`` object without its ``_meta``: a replay adds ``replayed: true`` there.
    content: dict[str, Any]

    def text(self) -> str:
        return str(self.content.get("content", {}).get("text", self.content))


class BridgeProcess:
    """``acp-bridge serve`` as a subprocess on 127.0.0.1, a SQLite log and the streaming agent.

    The bridge runs the agent in its own process group, so killing the bridge does not kill the
    agent: the agent writes its pid to a file, and :meth:`stop` kills it too if it is still there.
    """

    def __init__(self, db: Path, name: str, event_log: str | None = None) -> None:
        self.db = db
        self.name = name
        self.event_log = event_log or f"sqlite:{db}"
        self.agent_pidfile = db.parent / f"{name}-agent.pid"
        self.process: asyncio.subprocess.Process | None = None
        self.url = ""
        self.stderr: deque[str] = deque(maxlen=40)  # the end of the bridge's log, for failures
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Start it and return its WebSocket URL (``--port 0``: the banner names the real port)."""
        agent = shlex.join([sys.executable, str(AGENT), str(self.agent_pidfile)])
        self.process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "acp_bridge", "serve", "--host", "127.0.0.1", "--port", "0"],
            *["--event-log", self.event_log, "--agent", f"exec:{agent}"],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "XDG_DATA_HOME": str(self.db.parent / "data")},
        )
        assert self.process.stderr is not None
        async with asyncio.timeout(START_TIMEOUT):
            while not self.url:
                line = (await self.process.stderr.readline()).decode(errors="replace")
                if not line:
                    raise RuntimeError(f"{self.name} exited at start:\n{self.log()}")
                self.stderr.append(line.rstrip())
                if match := re.search(r"WebSocket:\s+(ws://\S+)", line):
                    self.url = match.group(1)
        # Keep reading its log: a full stderr pipe would stall the bridge.
        self._drain = asyncio.create_task(self._read_stderr(self.process.stderr))
        return self.url

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.stderr.append(line.decode(errors="replace").rstrip())

    def kill(self) -> None:
        """SIGKILL, synchronously: called from the client's reader the moment it sees chunk N."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()

    async def stop(self) -> None:
        """Kill the bridge and its agent and reap the bridge; safe to call more than once."""
        self.kill()
        try:
            if self.process is not None:
                async with asyncio.timeout(STEP_TIMEOUT):
                    await self.process.wait()
                    if self._drain is not None:
                        await self._drain
        finally:
            self._kill_agent()

    def _kill_agent(self) -> None:
        # The agent exits by itself once the bridge is gone (EOF on stdin, EPIPE on stdout), so
        # this is a safety net. It checks the pid still runs *our* agent before signalling it.
        try:
            pid = int(self.agent_pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if str(self.agent_pidfile).encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        return "\n".join(self.stderr)


class AcpClient:
    """A lean raw ACP client over ``websockets``: requests, and every ``session/update`` recorded.

    Deliberately minimal (no schema validation): it has to read 10,000 updates as fast as the
    bridge sends them, or the bridge would have committed everything long before the kill.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.updates: list[Update] = []
        self.on_update: Callable[[int], None] | None = None  # called with len(updates)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.create_task(self._read())  # ends when the connection does

    async def _read(self) -> None:
        error: Exception = ConnectionError("the bridge closed the connection")
        try:
            async for frame in self.ws:
                message = orjson.loads(frame)
                if message.get("method") == "session/update":
                    self._record(message["params"])
                elif "method" not in message:
                    future = self._pending.pop(message["id"], None)
                    if future is not None and not future.done():
                        future.set_result(message)
        except ConnectionClosed:
            pass  # a killed bridge resets the connection: what was received so far is recorded
        except Exception as exc:  # a bad message: the waiting request fails with the real cause
            error = exc
            raise
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)

    def _record(self, params: dict[str, Any]) -> None:
        if params["update"]["sessionUpdate"] == "session_info_update":
            return  # the session's metadata, not one of its events: it has no event id
        event_id = params.get("_meta", {}).get("harn", {}).get("eventId")
        assert isinstance(event_id, int), f"a session/update without an event id: {params}"
        content = {k: v for k, v in params["update"].items() if k != "_meta"}
        self.updates.append(Update(event_id, content))
        if self.on_update is not None:
            self.on_update(len(self.updates))

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a request; return its result (an ``AssertionError`` on a JSON-RPC error)."""
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        await self.ws.send(orjson.dumps(message).decode())
        response = await future
        assert "error" not in response, f"{method} failed: {response['error']}"
        result: dict[str, Any] = response["result"]
        return result

    async def initialize(self) -> None:
        # No clientCapabilities._meta.harn: the bridge serves the strict profile, where the id is
        # params._meta.harn.eventId.
        await self.call("initialize", {"protocolVersion": 1, "clientCapabilities": {}})

    def prompt(self, session_id: str, label: str, chunks: int) -> asyncio.Task[dict[str, Any]]:
        """Start a turn of the streaming agent: ``chunks`` chunks reading ``<label>#<n>``."""
        text = orjson.dumps({"label": label, "chunks": chunks}).decode()
        params = {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}
        return asyncio.create_task(self.call("session/prompt", params))

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self.reader, return_exceptions=True)


def id_ranges(ids: list[int], limit: int = 6) -> str:
    """``[1, 2, 3, 7, 9, 10]`` → ``"1..3, 7, 9..10"`` (at most ``limit`` ranges)."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    shown = [str(a) if a == b else f"{a}..{b}" for a, b in runs[:limit]]
    return ", ".join(shown) + (f", … ({len(runs) - limit} more runs)" if len(runs) > limit else "")


async def crash_round(tmp_path: Path, number: int, kill_after: int) -> list[str]:
    """One round: a turn killed after ``kill_after`` chunks, a restart, a replay, a next turn.

    Returns what went wrong, in words (an empty list when the round kept every promise).
    """
    db = tmp_path / f"round-{number}" / "events.sqlite"
    db.parent.mkdir()
    first, second = BridgeProcess(db, "first"), BridgeProcess(db, "restarted")
    try:
        # --- a turn, killed after the client has received `kill_after` chunks ---------------------
        url = await first.start()
        async with asyncio.timeout(STEP_TIMEOUT), connect(url) as ws:
            client = AcpClient(ws)
            await client.initialize()
            session = await client.call("session/new", {"cwd": CWD, "mcpServers": []})
            sid = session["sessionId"]

            def kill_at_chunk(received: int) -> None:
                if received == kill_after:
                    first.kill()

            client.on_update = kill_at_chunk
            turn = client.prompt(sid, f"r{number}-killed", CHUNKS)
            await asyncio.wait([turn, client.reader], return_when=asyncio.FIRST_COMPLETED)
            if not client.reader.done():  # the turn failed (or ended) while the bridge was alive
                raise AssertionError(
                    f"round {number}: the turn ended before the kill: {turn.result()}"
                )
            # The reader has read everything the bridge wrote before it died, so `seen` is whole.
            await client.reader  # (re-raises if the reader itself failed)
            await asyncio.gather(turn, return_exceptions=True)  # failed with the connection
            seen = client.updates
        await first.stop()

        # --- restart on the same file, replay everything, then a next turn -------------------------
        url = await second.start()
        async with asyncio.timeout(STEP_TIMEOUT), connect(url) as ws:
            client = AcpClient(ws)
            await client.initialize()
            load = {
                "sessionId": sid,
                "cwd": CWD,
                "mcpServers": [],
                "lastAckedEventId": 0,
                "_meta": {"acp_bridge": {"replay": "exact"}},  # ids compared one by one
            }
            await client.call("session/load", load)
            replay = list(client.updates)
            result = await client.prompt(sid, f"r{number}-next", NEXT_TURN_CHUNKS)
            after = client.updates[len(replay) :]
            await client.close()
    except Exception as exc:  # not the verdict but a breakdown: the bridges' logs say why
        exc.add_note(f"round {number}, first bridge's log:\n{first.log()}")
        exc.add_note(f"round {number}, restarted bridge's log:\n{second.log()}")
        raise
    finally:
        await first.stop()
        await second.stop()
    return check(f"round {number} (killed after {kill_after} chunks)", seen, replay, after, result)


def check(
    name: str, seen: list[Update], replay: list[Update], after: list[Update], result: dict[str, Any]
) -> list[str]:
    """Compare what the client saw before the kill with the replay and the next turn."""
    problems: list[str] = []
    replayed = {u.event_id: u for u in replay}
    lost = [u for u in seen if u.event_id not in replayed]
    changed = [u for u in seen if u.event_id in replayed and replayed[u.event_id] != u]
    if lost:
        problems.append(
            f"{len(lost)} of the {len(seen)} events seen by the client are missing after "
            f"restart: ids {id_ranges([u.event_id for u in lost])} "
            f"(the replay ends at id {max(replayed, default=0)})"
        )
    if changed:
        u = changed[0]
        problems.append(
            f"{len(changed)} replayed events differ from what the client saw: ids "
            f"{id_ranges([u.event_id for u in changed])} (id {u.event_id}: saw {u.text()!r}, "
            f"replayed {replayed[u.event_id].text()!r})"
        )
    duplicates = sorted(i for i, n in Counter(u.event_id for u in replay).items() if n > 1)
    if duplicates:
        problems.append(
            f"{len(duplicates)} ids appear twice in the replay: {id_ranges(duplicates)}"
        )
    later = {u.event_id: u for u in after}
    reused = [u for u in seen if u.event_id in later and later[u.event_id] != u]
    if reused:
        u = reused[0]
        problems.append(
            f"{len(reused)} ids the client saw were handed to new events by the next turn "
            f"({NEXT_TURN_CHUNKS} chunks): ids "
            f"{id_ranges([u.event_id for u in reused])} (id {u.event_id}: saw {u.text()!r}, "
            f"then {later[u.event_id].text()!r})"
        )
    if result.get("stopReason") != "end_turn":
        problems.append(f"the next turn answered {result!r}, not end_turn")
    elif len(after) != NEXT_TURN_CHUNKS:
        problems.append(f"the next turn delivered {len(after)} of {NEXT_TURN_CHUNKS} chunks")
    return [f"{name}: {p}" for p in problems]


async def test_kill_9_mid_turn_loses_and_reuses_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    # One kill point per slice of the turn, so a run covers its start, middle and end.
    slice_size = CHUNKS // ROUNDS
    kill_points = [rng.randrange(k * slice_size, (k + 1) * slice_size) + 1 for k in range(ROUNDS)]
    problems: list[str] = []
    for number, kill_after in enumerate(kill_points, start=1):
        problems += await crash_round(tmp_path, number, kill_after)
    assert not problems, (
        f"kill -9 broke the event log's promises (seed {SEED}, kill points {kill_points}):\n"
        + "\n".join(problems)
    )

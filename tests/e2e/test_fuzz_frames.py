"""Fuzzing a real bridge over a real WebSocket with mixed valid, malformed and hostile frames.

Issue 9, item 5: a few thousand frames from a seeded generator (a failure names its seed, and the same
seed replays the same frames), sent by several clients at once to a bridge on 127.0.0.1. Whatever
arrives, the bridge must not close a connection with 1011, must not put a traceback in anything it
sends, must answer every request (a frame with an ``id`` and a ``method``: with that id when the id
is a valid JSON-RPC id, else with id ``null``), and must still report itself healthy afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from acp_bridge.agents.demo import DemoBackend
from acp_bridge.app import BridgeServer, ServerOptions
from tests.support.http import http_get

SEEDS: Final = (9, 90, 900, 9000)
"""One client per seed, all at once."""
FRAMES_PER_CLIENT: Final = 750
MAX_MESSAGE_BYTES: Final = 2 * 1024 * 1024
"""The server's frame limit; the largest fuzz frame stays just under it (a bigger one is a 1009 close,
which is right, but ends the connection)."""

NO_PARAMS: Final = object()
"""Marks a request sent without a ``params`` member."""

METHODS: Final = (
    "initialize",
    "session/new",
    "session/load",
    "session/resume",
    "session/list",
    "session/prompt",
    "session/set_mode",
    "session/set_config_option",
    "session/close",
    "authenticate",
)
UNKNOWN_METHODS: Final = (
    "nope",
    "session/fork",
    "_vendor/custom",
    "$/cancel_request",
    "",
    "SESSION/NEW",
    "session/new ",
    "x" * 4096,
    "\u0000",
    "é/ü",
)
NOTIFICATIONS: Final = ("session/cancel", "$/cancel_request", "initialized", "_vendor/note", "nope")


def _junk(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, sometimes nested."""
    kinds = ["null", "bool", "int", "float", "str", "bigint"]
    if depth < 3:
        kinds += ["list", "dict"]
    match rng.choice(kinds):
        case "null":
            return None
        case "bool":
            return rng.random() < 0.5
        case "int":
            return rng.randint(-(2**63), 2**64 - 1)
        case "float":
            return rng.uniform(-1e300, 1e300)
        case "str":
            return "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 40)))
        case "bigint":
            return rng.choice([0, -1, 2**31, 2**53 + 1, 2**63 - 1])
        case "list":
            return [_junk(rng, depth + 1) for _ in range(rng.randint(0, 4))]
        case _:
            return {
                rng.choice(["sessionId", "cwd", "prompt", "x", "_meta", ""]): _junk(rng, depth + 1)
                for _ in range(rng.randint(0, 4))
            }


def _odd_id(rng: random.Random) -> Any:
    """An id no JSON-RPC peer should send: an object, array, boolean, fraction, or null."""
    return rng.choice([{"x": 1}, [1], [], {}, True, False, 1.5, -0.0, None, [[{"a": [1]}]]])


def _nested(depth: int) -> str:
    """JSON text nested ``depth`` deep (written by hand: the encoder stops at 255 levels)."""
    return '{"n":[' * (depth // 2) + '"bottom"' + "]}" * (depth // 2)


@dataclass
class Client:
    """One fuzzing client: what it sent, what the server owes it, and what came back."""

    seed: int
    ws: ClientConnection
    rng: random.Random = field(init=False)
    answer_rng: random.Random = field(init=False)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    sessions: list[str] = field(default_factory=list)
    expected: set[Any] = field(default_factory=set)
    """Ids the server must answer, each exactly once."""
    expected_nulls: int = 0
    answers: Counter[Any] = field(default_factory=Counter)
    nulls: int = 0
    problems: list[str] = field(default_factory=list)
    progress: asyncio.Condition = field(default_factory=asyncio.Condition)
    """Notified on every answer, and when the connection ends."""
    closed: bool = False

    def __post_init__(self) -> None:
        # Frames come from their own generator, untouched by what the server says or when, so a
        # seed always sends the same frames; the answers to the server's requests have another.
        self.rng = random.Random(self.seed)
        self.answer_rng = random.Random(f"{self.seed}-answers")

    # --- what is sent -----------------------------------------------------------------------

    def new_id(self) -> Any:
        """A fresh valid id: an integer (some beyond 2**53) or a string."""
        n = next(self.ids)
        return self.rng.choice([n, f"req-{n}", 2**63 + n, -n, f"é{n}\u2028"])

    def session_id(self) -> Any:
        """Mostly one of ours (drawing the same randomness however many there are by now)."""
        pick = self.rng.randrange(1 << 30)
        if self.rng.random() < 0.7:
            return self.sessions[pick % len(self.sessions)]
        return self.rng.choice(["no-such-session", "", _junk(self.rng)])

    def good_params(self, method: str) -> dict[str, Any]:
        """Params of the right shape for ``method`` (the values may still be refused)."""
        rng = self.rng
        text = rng.choice(["hello", "/echo hi", "/plan a thing", "/explain x", "Fix it", ""])
        match method:
            case "initialize":
                caps = rng.choice([{}, {"fs": {"readTextFile": True, "writeTextFile": True}}])
                return {"protocolVersion": rng.choice([1, 1, 2, 0]), "clientCapabilities": caps}
            case "session/new":
                return {"cwd": "/tmp/fuzz", "mcpServers": []}
            case "session/load" | "session/resume":
                return {"sessionId": self.session_id(), "cwd": "/tmp/fuzz", "mcpServers": []}
            case "session/prompt":
                return {"sessionId": self.session_id(), "prompt": [{"type": "text", "text": text}]}
            case "session/set_mode":
                return {"sessionId": self.session_id(), "modeId": rng.choice(["default", "x"])}
            case "session/set_config_option":
                return {"sessionId": self.session_id(), "configId": "mode", "value": "x"}
            case "session/close" | "session/cancel":
                return {"sessionId": self.session_id()}
            case _:
                return {}

    def request(self, method: str, params: Any = NO_PARAMS) -> dict[str, Any]:
        """A request with a fresh id (not yet sent, nor counted)."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.new_id(), "method": method}
        if params is not NO_PARAMS:
            message["params"] = params
        return message

    def frame(self) -> str | bytes:
        """The next frame; records what the server owes for it."""
        rng = self.rng
        kind = rng.choices(
            [
                "valid",
                "wrong_params",
                "unknown_method",
                "notification",
                "odd_response",
                "odd_id_request",
                "bad_json",
                "non_object",
                "batch",
                "nested",
                "big",
                "binary",
                "not_quite_a_request",
            ],
            weights=[24, 14, 5, 8, 10, 5, 8, 5, 4, 4, 1, 5, 7],
        )[0]
        match kind:
            case "valid":
                method = rng.choice(METHODS)
                return self.send_request(self.request(method, self.good_params(method)))
            case "wrong_params":
                method = rng.choice(METHODS)
                params: Any = self.good_params(method)
                if rng.random() < 0.3 or not params:
                    params = rng.choice([[], [1, "x"], "params", 42, None, True])
                else:
                    params[rng.choice([*params, "extra"])] = _junk(rng)
                return self.send_request(self.request(method, params))
            case "unknown_method":
                return self.send_request(self.request(rng.choice(UNKNOWN_METHODS), _junk(rng)))
            case "notification":
                method = rng.choice(NOTIFICATIONS)
                params = (
                    {"requestId": rng.choice([_odd_id(rng), next(self.ids), "req-1"])}
                    if method == "$/cancel_request"
                    else rng.choice([self.good_params("session/cancel"), _junk(rng)])
                )
                return orjson.dumps({"jsonrpc": "2.0", "method": method, "params": params}).decode()
            case "odd_response":
                body = rng.choice(
                    [{"result": _junk(rng)}, {"error": _junk(rng)}, {"result": 1, "error": 2}]
                )
                if rng.random() < 0.2:
                    # Beyond 64 bits: only writable as text, and decoded as a float.
                    return '{"jsonrpc":"2.0","id":' + "9" * rng.randint(20, 400) + ',"result":{}}'
                response_id = rng.choice([_odd_id(rng), rng.randint(-5, 50), "zz"])
                return orjson.dumps({"jsonrpc": "2.0", "id": response_id, **body}).decode()
            case "odd_id_request":
                self.expected_nulls += 1
                method = rng.choice(METHODS + UNKNOWN_METHODS)
                if rng.random() < 0.3:
                    huge = "-" * rng.randint(0, 1) + "1" + "0" * rng.randint(20, 300)
                    return (
                        f'{{"jsonrpc":"2.0","id":{huge},"method":{orjson.dumps(method).decode()}}}'
                    )
                message = {"jsonrpc": "2.0", "id": _odd_id(rng), "method": method}
                return orjson.dumps(message).decode()
            case "bad_json":
                whole = orjson.dumps(self.request("session/new", {"cwd": "/"})).decode()
                return rng.choice(
                    [
                        whole[: rng.randint(0, len(whole) - 1)],
                        "{",
                        "}",
                        "[1,",
                        "{'a': 1}",
                        "NaN",
                        "Infinity",
                        '{"a":1}{"b":2}',
                        "",
                        "   ",
                        '{"jsonrpc":"2.0","id":1,"method":"x",}',
                        '"\\ud800"',
                        "[" * 5000 + "]" * 5000,
                        "1e400",
                    ]
                )
            case "non_object":
                return rng.choice(["null", "0", "-1.5", '"text"', "true", "false", '""', "[]"])
            case "batch":
                batch = [
                    rng.choice([self.request("session/list", {}), _junk(rng), {"jsonrpc": "2.0"}])
                    for _ in range(rng.randint(1, 5))
                ]
                return orjson.dumps(batch).decode()
            case "nested":
                # Deep, but within what the parser accepts (1024 levels): the handler gets it.
                request = self.request(rng.choice(METHODS + UNKNOWN_METHODS))
                head = self.send_request(request)[:-1]
                deep = _nested(rng.randint(50, 1000))
                return f'{head},"params":{{"sessionId":{deep},"prompt":{_nested(300)}}}}}'
            case "big":
                size = rng.randint(256 * 1024, MAX_MESSAGE_BYTES - 4096)
                method = rng.choice(["session/prompt", "session/new", "nope"])
                params = self.good_params(method) | {"_meta": {"pad": "é" * (size // 4)}}
                if method == "session/prompt":
                    params["prompt"] = [{"type": "text", "text": "/echo " + "y" * (size // 4)}]
                return self.send_request(self.request(method, params))
            case "binary":
                return rng.randbytes(rng.randint(0, 2048))
            case _:
                # Has an id but no method: not a request (it gets an error with that id).
                return orjson.dumps(
                    rng.choice(
                        [
                            {"jsonrpc": "2.0", "id": self.new_id()},
                            {"id": self.new_id(), "result": None},
                            {"jsonrpc": "1.0", "id": self.new_id(), "params": {}},
                            {"jsonrpc": "2.0", "id": self.new_id(), "method": None},
                        ]
                    )
                ).decode()

    def send_request(self, message: dict[str, Any]) -> str:
        """Encode a request and record the answer it is owed."""
        # Now and then without "jsonrpc": still a request, so still answered (an error, its id).
        if self.rng.random() < 0.05:
            message.pop("jsonrpc")
        self.expected.add(message["id"])
        return orjson.dumps(message).decode()

    # --- what comes back --------------------------------------------------------------------

    async def read(self) -> None:
        """Check every message; answer the server's own requests; count answers to ours."""
        try:
            await self._read()
        finally:
            self.closed = True
            async with self.progress:
                self.progress.notify_all()

    async def _read(self) -> None:
        async for frame in self.ws:
            if not isinstance(frame, str):
                self.problems.append(f"binary frame from the server: {frame[:80]!r}")
                continue
            if "Traceback" in frame or 'File "' in frame:
                self.problems.append(f"traceback sent to the client: {frame[:300]}")
            message = orjson.loads(frame)
            if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
                self.problems.append(f"not a JSON-RPC 2.0 object: {frame[:300]}")
                continue
            if "method" in message:
                if "id" in message:
                    await self.answer_server_request(message)
                continue
            if ("result" in message) == ("error" in message):
                self.problems.append(f"a response needs result xor error: {frame[:300]}")
            if "error" in message and not isinstance(message["error"].get("code"), int):
                self.problems.append(f"error without an integer code: {frame[:300]}")
            result = message.get("result")
            if isinstance(result, dict) and isinstance(result.get("sessionId"), str):
                self.sessions.append(result["sessionId"])
            async with self.progress:
                if message.get("id") is None:
                    self.nulls += 1
                else:
                    self.answers[message["id"]] += 1
                self.progress.notify_all()

    async def answer_server_request(self, request: dict[str, Any]) -> None:
        """Answer a request of the agent's (permission, fs) as a hostile client might."""
        # Always a well-formed response (the agent waits for it), with hostile content at times.
        rng = self.answer_rng
        request_id = request["id"]
        if request["method"] == "session/request_permission" and rng.random() < 0.8:
            options = request.get("params", {}).get("options") or [{"optionId": "x"}]
            outcome = rng.choice(
                [
                    {"outcome": "selected", "optionId": rng.choice(options)["optionId"]},
                    {"outcome": "cancelled"},
                    {"outcome": "selected", "optionId": _junk(rng)},
                    _junk(rng),
                ]
            )
            reply: dict[str, Any] = {"id": request_id, "result": {"outcome": outcome}}
        elif rng.random() < 0.5:
            reply = {"id": request_id, "result": _junk(rng)}
        else:
            reply = {"id": request_id, "error": {"code": rng.randint(-33000, 0), "message": "no"}}
        await self.ws.send(orjson.dumps({"jsonrpc": "2.0", **reply}).decode())

    async def start(self) -> None:
        """Initialize and open two sessions, so that later frames reach sessions and turns."""
        for method in ("initialize", "session/new", "session/new"):
            message = self.request(method, self.good_params(method))
            if method == "initialize":
                message["params"]["protocolVersion"] = 1
            self.expected.add(message["id"])
            await self.ws.send(orjson.dumps(message).decode())
            async with self.progress:
                await self.progress.wait_for(
                    lambda sent=message["id"]: sent in self.answers or self.closed
                )

    def all_answered(self) -> bool:
        """Whether every request sent so far has had its answer."""
        return self.expected <= self.answers.keys() and self.nulls >= self.expected_nulls


async def fuzz(url: str, seed: int) -> Client:
    """One client's run: handshake, the fuzz frames, then wait until everything is answered."""
    async with connect(url, max_size=None) as ws:
        client = Client(seed, ws)
        reader = asyncio.create_task(client.read())
        try:
            async with asyncio.timeout(10):
                await client.start()
            for _ in range(FRAMES_PER_CLIENT):
                try:
                    await ws.send(client.frame())
                except ConnectionClosed:
                    break  # reported below with its close code
            async with asyncio.timeout(30), client.progress:
                await client.progress.wait_for(lambda: client.all_answered() or client.closed)
        finally:
            # Still open after all that: anything that closed it (1011 included) shows up here.
            client.problems += [] if ws.close_code is None else [f"closed with {ws.close_code}"]
            await ws.close()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    return client


async def test_fuzzed_frames_never_crash_a_connection_or_leak_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    options = ServerOptions(
        port=0, event_log=f"sqlite:{tmp_path / 'l.sqlite'}", max_message_bytes=MAX_MESSAGE_BYTES
    )
    async with BridgeServer(DemoBackend(step_delay=0), options) as server:
        async with asyncio.timeout(60):
            clients = await asyncio.gather(*(fuzz(server.url, seed) for seed in SEEDS))
            status, _, body = await http_get(server.websocket.port, "/healthz")
    for client in clients:
        unanswered = client.expected - client.answers.keys()
        twice = {i: n for i, n in client.answers.items() if n > 1 and i in client.expected}
        assert not client.problems, f"seed {client.seed}: {client.problems[:5]}"
        assert not unanswered, f"seed {client.seed}: unanswered {sorted(map(str, unanswered))[:10]}"
        assert client.nulls >= client.expected_nulls, f"seed {client.seed}"
        assert not twice, f"seed {client.seed}: answered more than once {twice}"
    health = orjson.loads(body)
    assert status == 200
    assert health["status"] == "ok"
    assert health["eventLog"] == {"ok": True}
    # A handler that raised is answered -32603 without a trace (or, for the whole connection,
    # closed with 1011); the log still shows it.
    failures = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith(("acp_bridge.rpc", "acp_bridge.transports")) and "failed" in r.msg
    ]
    assert failures == []

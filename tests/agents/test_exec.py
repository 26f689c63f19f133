"""The exec backend against real child processes (small Python scripts), with a fake session context.

Most tests use :data:`SCRIPTED_CHILD`: each prompt's text is a JSON list of actions the child performs
in order (emit a line, print garbage, write to stderr, send a request, wait for a cancel, exit…), so
a test says exactly what the child does and when, without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from acp_bridge.agents import registry
from acp_bridge.agents.base import BackendError, StopReason
from acp_bridge.agents.exec import ExecBackend, create_backend
from acp_bridge.agents.registry import BackendOptions
from acp_bridge.events.harn import AgentEventBase, AgentMessageChunk
from acp_bridge.events.session_event import SessionRuntimeEvent
from tests.agents.fakes import CANCEL
from tests.agents.fakes import FakeSessionContext as _FakeSessionContext

SCRIPTED_CHILD = r"""
import json, os, signal, sys, threading

ops = []                # every op received, in order
op_seen = threading.Condition()
cancels = {}            # turn id -> Event
responses = {}          # request id -> [Event, response]
out = threading.Lock()

def write(text):
    with out:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

def fill(value, sid, turn):
    if isinstance(value, str):
        return value.replace("$SID", sid).replace("$TURN", turn)
    if isinstance(value, list):
        return [fill(v, sid, turn) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, sid, turn) for k, v in value.items()}
    return value

def chunk(sid, text):
    write(json.dumps({"type": "agent_message_chunk", "session_id": sid, "content": text}))

def run(sid, turn, actions, start):
    for action in actions:
        (kind, arg), = action.items()
        arg = fill(arg, sid, turn)
        if kind == "emit":
            write(json.dumps(arg))
        elif kind == "print":        # print() without flush: relies on PYTHONUNBUFFERED
            print(json.dumps(arg))
        elif kind == "raw":
            write(arg)
        elif kind == "stderr":
            print(arg, file=sys.stderr, flush=True)
        elif kind == "end":
            write(json.dumps({"op": "turn_end", "session_id": sid, "turn_id": turn, "stop_reason": arg}))
        elif kind == "error":
            write(json.dumps({"op": "error", "session_id": sid, "turn_id": turn, "message": arg}))
        elif kind == "exit":
            sys.stdout.flush()
            os._exit(arg)
        elif kind == "wait_cancel":
            cancels[turn].wait()
        elif kind == "block":
            threading.Event().wait()
        elif kind == "wait_op":      # until an op of this kind arrives after this turn's prompt
            with op_seen:
                op_seen.wait_for(lambda: any(o["op"] == arg for o in ops[start + 1:]))
        elif kind == "request":
            rid = len(responses) + 1
            waiter = responses[rid] = [threading.Event(), None]
            write(json.dumps({"op": "request", "id": rid, **arg}))
            waiter[0].wait()
            chunk(sid, json.dumps(waiter[1]))
        elif kind == "send_request":  # without waiting for the response
            rid = len(responses) + 1
            responses[rid] = [threading.Event(), None]
            write(json.dumps({"op": "request", "id": rid, **arg}))
        elif kind == "responses":
            chunk(sid, json.dumps([r[1] for r in responses.values()]))
        elif kind == "ops":
            chunk(sid, json.dumps([[o["op"], o.get("session_id")] for o in ops]))
        elif kind == "full_ops":
            chunk(sid, json.dumps([o for o in ops if o["op"] != "prompt"]))

if os.environ.get("STUBBORN"):  # ignores SIGTERM, and stays when stdin closes
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
for line in sys.stdin:
    message = json.loads(line)
    with op_seen:
        ops.append(message)
        op_seen.notify_all()
    op = message["op"]
    if op == "prompt":
        cancels[message["turn_id"]] = threading.Event()
        actions = json.loads(message["prompt"][0]["text"])
        args = (message["session_id"], message["turn_id"], actions, len(ops) - 1)
        threading.Thread(target=run, args=args, daemon=True).start()
    elif op == "cancel":
        cancels[message["turn_id"]].set()
    elif op == "response":
        waiter = responses.setdefault(message["id"], [threading.Event(), None])
        waiter[1] = message
        waiter[0].set()
if os.environ.get("STUBBORN"):
    threading.Event().wait()
"""

TIMEOUT = 10


class FakeSessionContext(_FakeSessionContext):
    """The shared fake, plus a way to wait until the backend has emitted something."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._grew = asyncio.Event()

    def emit(self, event: Any) -> None:
        super().emit(event)
        self._grew.set()

    async def wait_events(self, count: int = 1) -> None:
        """Return once at least ``count`` events were emitted."""
        while len(self.events) < count:
            self._grew.clear()
            await self._grew.wait()


def actions(*steps: dict[str, Any]) -> list[dict[str, Any]]:
    """A prompt whose text tells the scripted child what to do."""
    return [{"type": "text", "text": orjson.dumps(list(steps)).decode()}]


def chunk(text: str, session: str = "$SID") -> dict[str, Any]:
    return {"emit": {"type": "agent_message_chunk", "session_id": session, "content": text}}


def texts(ctx: FakeSessionContext) -> list[str]:
    return [e.content for e in ctx.events if isinstance(e, AgentMessageChunk)]


def last_json(ctx: FakeSessionContext) -> Any:
    return orjson.loads(texts(ctx)[-1])


@pytest.fixture
def child_script(tmp_path: Path) -> Path:
    path = tmp_path / "child.py"
    path.write_text(SCRIPTED_CHILD)
    return path


MakeBackend = Callable[..., ExecBackend]


@pytest.fixture
async def make_backend(child_script: Path) -> AsyncIterator[MakeBackend]:
    backends: list[ExecBackend] = []

    def make(**kwargs: Any) -> ExecBackend:
        backend = ExecBackend([sys.executable, str(child_script)], **kwargs)
        backends.append(backend)
        return backend

    yield make
    async with asyncio.timeout(TIMEOUT):
        for backend in backends:
            await backend.aclose()


async def prompt(backend: ExecBackend, ctx: FakeSessionContext, *steps: dict[str, Any]) -> Any:
    ctx.new_turn()
    async with asyncio.timeout(TIMEOUT):
        return await backend.prompt(ctx, actions(*steps))


# --- lifecycle ---------------------------------------------------------------------------------


async def test_starts_lazily_and_announces_the_session(make_backend: MakeBackend) -> None:
    backend = make_backend()
    assert backend.pid is None
    ctx = FakeSessionContext("s1", "/work/p")
    await backend.new_session(ctx)
    assert backend.pid is not None
    assert await prompt(backend, ctx, {"ops": True}, {"end": "end_turn"}) == StopReason.END_TURN
    assert last_json(ctx) == [["new_session", "s1"], ["prompt", "s1"]]
    assert backend.starts == 1


async def test_the_child_gets_cwd_mcp_servers_and_roots_with_the_session(
    make_backend: MakeBackend,
) -> None:
    backend = make_backend()
    server = {"name": "fs", "command": "/usr/bin/mcp-fs", "args": [], "env": []}
    ctx = FakeSessionContext(
        "s1", "/work/p", mcp_servers=[server], additional_directories=["/work/lib"]
    )
    await backend.new_session(ctx)
    assert (
        await prompt(backend, ctx, {"full_ops": True}, {"end": "end_turn"}) == StopReason.END_TURN
    )
    assert last_json(ctx) == [
        {
            "op": "new_session",
            "session_id": "s1",
            "cwd": "/work/p",
            "mcp_servers": [server],
            "additional_directories": ["/work/lib"],
        }
    ]


async def test_events_arrive_in_stdout_order(make_backend: MakeBackend) -> None:
    backend = make_backend()
    ctx = FakeSessionContext("s1")
    await backend.new_session(ctx)
    steps = [chunk(f"c{i}") for i in range(100)]
    steps.insert(
        50, {"print": {"type": "agent_thought_chunk", "session_id": "$SID", "content": "t"}}
    )
    assert await prompt(backend, ctx, *steps, {"end": "end_turn"}) == StopReason.END_TURN
    assert texts(ctx) == [f"c{i}" for i in range(100)]
    assert ctx.types[50] == "agent_thought_chunk"


@pytest.mark.parametrize(
    ("stop", "expected"),
    [("max_tokens", StopReason.MAX_TOKENS), ("refusal", StopReason.REFUSAL), ("bogus", "end_turn")],
)
async def test_turn_end_stop_reasons(make_backend: MakeBackend, stop: str, expected: str) -> None:
    backend = make_backend()
    ctx = FakeSessionContext("s1")
    await backend.new_session(ctx)
    assert await prompt(backend, ctx, {"end": stop}) == expected


async def test_error_line_fails_the_turn_and_the_session_goes_on(make_backend: MakeBackend) -> None:
    backend = make_backend()
    ctx = FakeSessionContext("s1")
    await backend.new_session(ctx)
    with pytest.raises(BackendError, match=r"^the model is unavailable$"):
        await prompt(backend, ctx, {"error": "the model is unavailable"})
    assert await prompt(backend, ctx, {"end": "end_turn"}) == StopReason.END_TURN
    assert backend.starts == 1


async def test_crash_mid_turn_fails_the_prompt_and_the_next_one_restarts(
    make_backend: MakeBackend,
) -> None:
    backend = make_backend()
    ctx, other = FakeSessionContext("s1"), FakeSessionContext("s2")
    await backend.new_session(ctx)
    await backend.new_session(other)
    first_pid = backend.pid
    with pytest.raises(BackendError) as info:
        await prompt(backend, ctx, chunk("before"), {"stderr": "boom: out of tea"}, {"exit": 3})
    assert str(info.value) == "agent process exited with code 3 (boom: out of tea)"
    assert texts(ctx) == ["before"]
    assert backend.pid is None
    # The next prompt starts a new child, which first hears about the session.
    assert await prompt(backend, ctx, {"ops": True}, {"end": "end_turn"}) == StopReason.END_TURN
    assert last_json(ctx) == [["load_session", "s1"], ["prompt", "s1"]]
    assert backend.pid not in (None, first_pid)
    assert backend.starts == 2
    # The other session is re-announced before its own next prompt only.
    assert await prompt(backend, other, {"ops": True}, {"end": "end_turn"}) == StopReason.END_TURN
    assert last_json(other) == [
        ["load_session", "s1"],
        ["prompt", "s1"],
        ["load_session", "s2"],
        ["prompt", "s2"],
    ]


async def test_killed_child_is_named_by_its_signal(make_backend: MakeBackend) -> None:
    backend = make_backend()
    ctx = FakeSessionContext("s1")
    await backend.new_session(ctx)
    ctx.new_turn()
    turn = asyncio.create_task(backend.prompt(ctx, actions(chunk("x"), {"block": True})))
    async with asyncio.timeout(TIMEOUT):
        await ctx.wait_events()
        pid = backend.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(BackendError, match="killed by SIGKILL"):
            await turn


async def test_stderr_goes_to_the_child_logger(
    make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="acp_bridge.agents.exec")
    backend = make_backend()
    ctx = FakeSessionContext("s1")
    await backend.new_session(ctx)
    await prompt(backend, ctx, {"stderr": "loading model weights"}, {"end": "end_turn"})
    records = [r for r in caplog.records if r.name == "acp_bridge.agents.exec.child"]
    assert [r.getMessage() for r in records] == [f"agent[{backend.pid}]: loading model weights"]
    assert ctx.events == []


async def test_spawn_failure_is_a_backend_error(tmp_path: Path) -> None:
    backend = ExecBackend([str(tmp_path / "no-such-agent")])
    with pytest.raises(BackendError, match="could not start the agent command"):
        await backend.new_session(FakeSessionContext("s1"))
    await backend.aclose()


async def test_aclose_kills_a_child_that_ignores_eof_and_sigterm(
    make_backend: MakeBackend,
) -> None:
    backend = make_backend(env={"STUBBORN": "1"}, terminate_timeout=0.2)
    ctx = FakeSessionContext("s1")
    await backend.new_session(ctx)
    await prompt(backend, ctx, {"end": "end_turn"})
    child = backend._child
    assert child is not None
    async with asyncio.timeout(TIMEOUT):
        await backend.aclose()
    assert child.process.returncode == -9
    assert child.exited.done()
    with pytest.raises(BackendError, match="shut down"):
        await backend.new_session(FakeSessionContext("s2"))


async def test_close_session_is_forwarded(make_backend: MakeBackend) -> None:
    backend = make_backend()
    a, b = FakeSessionContext("a"), FakeSessionContext("b")
    await backend.new_session(a)
    await backend.new_session(b)
    await backend.close_session(a)
    await prompt(backend, b, {"ops": True}, {"end": "end_turn"})
    assert last_json(b) == [
        ["new_session", "a"],
        ["new_session", "b"],
        ["close_session", "a"],
        ["prompt", "b"],
    ]


# --- bad output --------------------------------------------------------------------------------


async def test_garbage_is_logged_with_its_line_number_and_skipped(
    make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend = make_backend()
    ctx = FakeSessionContext("s1")
    await backend.new_session(ctx)
    stop = await prompt(
        backend,
        ctx,
        chunk("one"),
        {"raw": "Loading... 100%"},
        {"raw": ""},
        {"raw": "[1, 2, 3]"},
        {"emit": {"op": "dance"}},
        {"emit": {"hello": "world"}},
        chunk("lost", session="nobody"),
        {"emit": {"type": "tool_call", "session_id": "$SID"}},
        chunk("two"),
        {"end": "end_turn"},
    )
    assert stop == StopReason.END_TURN
    assert texts(ctx) == ["one", "two"]
    assert backend.skipped_lines == 6
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 6
    assert warnings[0].startswith(f"agent[{backend.pid}] stdout line 2 skipped: not valid JSON")
    assert "'Loading... 100%'" in warnings[0]
    assert "line 4 skipped: not a JSON object" in warnings[1]
    assert "line 5 skipped: unknown op 'dance'" in warnings[2]
    assert "line 6 skipped" in warnings[3]
    assert "line 7 skipped: event for unknown session 'nobody'" in warnings[4]
    assert "line 8 skipped: tool_call" in warnings[5]


async def test_a_line_over_the_limit_is_skipped(
    make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend = make_backend(stream_limit=1024)
    ctx = FakeSessionContext("s1")
    await backend.new_session(ctx)
    stop = await prompt(
        backend,
        ctx,
        chunk("x" * 5000),
        chunk("fits"),
        chunk("y" * 100_000),
        chunk("fits too"),
        {"end": "end_turn"},
    )
    assert stop == StopReason.END_TURN
    assert texts(ctx) == ["fits", "fits too"]
    assert backend.skipped_lines == 2
    assert "stdout line 1 skipped: longer than 1024 bytes" in caplog.text
    assert "stdout line 3 skipped" in caplog.text


# --- cancellation ------------------------------------------------------------------------------


def cancel_on(text: str) -> Callable[[AgentEventBase], bool]:
    return lambda event: isinstance(event, AgentMessageChunk) and event.content == text


async def test_cancel_reaches_the_child_which_ends_the_turn(make_backend: MakeBackend) -> None:
    backend = make_backend()
    ctx = FakeSessionContext("s1", cancel_when=cancel_on("working"))
    await backend.new_session(ctx)
    stop = await prompt(
        backend,
        ctx,
        chunk("working"),
        {"wait_cancel": True},
        chunk("stopping"),
        {"end": "cancelled"},
    )
    assert stop == StopReason.CANCELLED
    assert texts(ctx) == ["working", "stopping"]


async def test_cancelled_turn_answers_cancelled_whatever_the_child_says(
    make_backend: MakeBackend,
) -> None:
    backend = make_backend()
    ctx = FakeSessionContext("s1", cancel_when=cancel_on("working"))
    await backend.new_session(ctx)
    stop = await prompt(
        backend, ctx, chunk("working"), {"wait_cancel": True}, {"error": "interrupted"}
    )
    assert stop == StopReason.CANCELLED


async def test_a_child_that_ignores_cancel_is_given_up_on_and_its_late_events_dropped(
    make_backend: MakeBackend,
) -> None:
    backend = make_backend(cancel_grace=0.2)
    a = FakeSessionContext("a", cancel_when=cancel_on("working"))
    b = FakeSessionContext("b")
    await backend.new_session(a)
    stop = await prompt(
        backend,
        a,
        chunk("working"),
        {"wait_cancel": True},
        {"wait_op": "new_session"},  # goes on only once the test says so (below)
        chunk("too late"),
        {"end": "cancelled"},
        chunk("a is done", session="b"),  # b has no turn running: delivered as is
    )
    assert stop == StopReason.CANCELLED
    await backend.new_session(b)
    async with asyncio.timeout(TIMEOUT):
        await b.wait_events()  # stdout is ordered: a's late lines have been handled
    assert texts(b) == ["a is done"]
    assert texts(a) == ["working"]
    a.cancel_when = None
    assert await prompt(backend, a, chunk("fresh"), {"end": "end_turn"}) == StopReason.END_TURN
    assert texts(a) == ["working", "fresh"]


async def test_cancel_method_writes_the_cancel_line(make_backend: MakeBackend) -> None:
    backend = make_backend()
    ctx = FakeSessionContext("s1")
    await backend.new_session(ctx)
    ctx.new_turn()
    turn = asyncio.create_task(
        backend.prompt(ctx, actions(chunk("go"), {"wait_cancel": True}, {"end": "cancelled"}))
    )
    async with asyncio.timeout(TIMEOUT):
        await ctx.wait_events()
        await backend.cancel(ctx)  # the ACP layer calls this; the context is not cancelled here
        assert await turn == StopReason.CANCELLED


# --- requests ----------------------------------------------------------------------------------


def request(method: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"request": {"session_id": "$SID", "method": method, "params": params, **extra}}


async def test_permission_round_trip(make_backend: MakeBackend) -> None:
    backend = make_backend()
    ctx = FakeSessionContext("s1", permission=("allow",))
    await backend.new_session(ctx)
    tool = {
        "type": "tool_call",
        "session_id": "$SID",
        "tool_call_id": "c1",
        "tool_name": "edit",
        "status": "pending",
        "raw_input": {},
    }
    params = {
        "toolCall": {"toolCallId": "c1", "title": "Edit"},
        "options": [
            {"optionId": "allow", "name": "Allow", "kind": "allow_once"},
            {"optionId": "reject", "name": "Reject", "kind": "reject_once"},
        ],
    }
    stop = await prompt(
        backend,
        ctx,
        {"emit": tool},
        request("session/request_permission", params),
        {"end": "end_turn"},
    )
    assert stop == StopReason.END_TURN
    assert ctx.types == ["tool_call", "agent_message_chunk"]
    assert ctx.permission_requests[0].tool_call == {"toolCallId": "c1", "title": "Edit"}
    assert [o.option_id for o in ctx.permission_requests[0].options] == ["allow", "reject"]
    assert last_json(ctx) == {
        "op": "response",
        "id": 1,
        "result": {"outcome": {"outcome": "selected", "optionId": "allow"}},
    }


async def test_permission_cancelled_turn(make_backend: MakeBackend) -> None:
    backend = make_backend()
    ctx = FakeSessionContext("s1", permission=(CANCEL,))
    await backend.new_session(ctx)
    stop = await prompt(
        backend,
        ctx,
        request("session/request_permission", {"toolCall": {"toolCallId": "c1"}}),
        {"end": "cancelled"},
    )
    assert stop == StopReason.CANCELLED
    assert last_json(ctx)["result"] == {"outcome": {"outcome": "cancelled"}}


class HangingPermission(FakeSessionContext):
    async def request_permission(self, tool_call: Any, options: Any) -> Any:
        await asyncio.Event().wait()


async def test_requests_still_open_when_the_turn_ends_are_answered(
    make_backend: MakeBackend,
) -> None:
    backend = make_backend()
    ctx = HangingPermission("s1")
    await backend.new_session(ctx)
    ask = {"session_id": "$SID", "method": "session/request_permission"}
    params = {"toolCall": {"toolCallId": "c1"}}
    stop = await prompt(
        backend, ctx, {"send_request": {**ask, "params": params}}, {"end": "end_turn"}
    )
    assert stop == StopReason.END_TURN
    await prompt(backend, ctx, {"responses": True}, {"end": "end_turn"})
    assert last_json(ctx) == [
        {
            "op": "response",
            "id": 1,
            "error": {"code": -32800, "message": "cancelled: the turn is over"},
        }
    ]


async def test_fs_requests(make_backend: MakeBackend) -> None:
    backend = make_backend()
    ctx = FakeSessionContext("s1", files={"/p/a.txt": "one\ntwo\nthree\n"})
    await backend.new_session(ctx)
    await prompt(
        backend,
        ctx,
        request("fs/read_text_file", {"path": "/p/a.txt", "line": 2, "limit": 1}),
        request("fs/read_text_file", {"path": "/p/missing"}),
        request("fs/write_text_file", {"path": "/p/b.txt", "content": "x"}),
        request("terminal/create", {"command": "ls"}),
        {"end": "end_turn"},
    )
    read, missing, write, terminal = (orjson.loads(t) for t in texts(ctx))
    assert read == {"op": "response", "id": 1, "result": {"content": "two\n"}}
    assert missing["error"]["code"] == -32002
    assert "Resource not found" in missing["error"]["message"]
    # The fake client advertises neither fs.writeTextFile nor terminal.
    assert write["error"]["code"] == -32601
    assert "fs.writeTextFile" in write["error"]["message"]
    assert terminal["error"]["code"] == -32601


async def test_fs_read_without_the_capability_answers_an_error(make_backend: MakeBackend) -> None:
    backend = make_backend()
    ctx = FakeSessionContext("s1", fs_read=False)
    await backend.new_session(ctx)
    stop = await prompt(
        backend, ctx, request("fs/read_text_file", {"path": "/p/a.txt"}), {"end": "end_turn"}
    )
    assert stop == StopReason.END_TURN
    assert last_json(ctx)["error"] == {
        "code": -32601,
        "message": "the client did not advertise 'fs.readTextFile', so fs/read_text_file is unavailable",
    }
    assert ctx.reads == []


async def test_bad_requests_are_answered_with_errors(make_backend: MakeBackend) -> None:
    backend = make_backend()
    ctx = FakeSessionContext("s1")
    await backend.new_session(ctx)
    await prompt(
        backend,
        ctx,
        request("session/prompt", {}),
        request("fs/read_text_file", {"line": 1}),
        request("fs/read_text_file", {"path": "/a"}, session_id="nobody"),
        {"request": {"method": "fs/read_text_file", "params": {"path": "/a"}}},  # no session_id
        {"end": "end_turn"},
    )
    unknown, invalid, nobody, implicit = (orjson.loads(t) for t in texts(ctx))
    assert unknown["error"] == {"code": -32601, "message": "unknown method 'session/prompt'"}
    assert invalid["error"]["code"] == -32602
    assert nobody["error"] == {"code": -32602, "message": "unknown session 'nobody'"}
    # Without a session_id the request belongs to the only running turn.
    assert implicit["error"]["code"] == -32002


# --- runtime dialect ---------------------------------------------------------------------------

RUN = "3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b"
TS = "2026-06-25T15:12:51.123456789Z"


def rt(variant: str, **fields: Any) -> dict[str, Any]:
    return {variant: {"run_id": RUN, **fields, "timestamp": TS}}


def variants(ctx: FakeSessionContext) -> list[str]:
    return [e.event.variant for e in ctx.events if isinstance(e, SessionRuntimeEvent)]


async def test_runtime_turn_ends_with_run_completed(make_backend: MakeBackend) -> None:
    backend = make_backend(dialect="runtime")
    ctx = FakeSessionContext("s1")
    await backend.new_session(ctx)
    stop = await prompt(
        backend,
        ctx,
        {"emit": rt("RunStarted", session_id="x", provider="p", model="m")},
        {"emit": {"session_id": "$SID", "event": rt("TextDelta", delta="hi")}},
        {"emit": rt("CacheMetrics", hits=1)},
        {"emit": rt("RunCompleted", finish_reason="length", iterations=1)},
    )
    assert stop == StopReason.MAX_TOKENS
    assert variants(ctx) == ["RunStarted", "TextDelta", "CacheMetrics", "RunCompleted"]
    assert all(e.session_id == "s1" for e in ctx.events)


async def test_runtime_run_failed_and_cancelled(make_backend: MakeBackend) -> None:
    backend = make_backend(dialect="runtime")
    ctx = FakeSessionContext("s1")
    await backend.new_session(ctx)
    with pytest.raises(BackendError, match=r"^provider returned 500$"):
        await prompt(backend, ctx, {"emit": rt("RunFailed", error="provider returned 500")})
    assert await prompt(backend, ctx, {"emit": rt("RunCancelled")}) == StopReason.CANCELLED
    # turn_end works in this dialect too; one after RunCompleted is ignored.
    assert await prompt(backend, ctx, {"end": "refusal"}) == StopReason.REFUSAL
    stop = await prompt(
        backend,
        ctx,
        {"emit": rt("RunCompleted", finish_reason="stop", iterations=1)},
        {"end": "max_tokens"},
    )
    assert stop == StopReason.END_TURN
    assert await prompt(backend, ctx, {"end": "end_turn"}) == StopReason.END_TURN


async def test_bare_runtime_events_are_dropped_when_two_turns_run(
    make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend = make_backend(dialect="runtime")
    a, b = FakeSessionContext("a"), FakeSessionContext("b")
    await backend.new_session(a)
    await backend.new_session(b)
    a.new_turn()
    b.new_turn()
    turn_a = asyncio.create_task(
        backend.prompt(
            a,
            actions(
                {"emit": rt("TextDelta", delta="alone")},
                {"wait_op": "prompt"},  # b's prompt: two turns are running from here on
                {"emit": rt("TextDelta", delta="ambiguous")},
                {
                    "emit": {
                        "session_id": "$SID",
                        "event": rt("RunCompleted", finish_reason="stop", iterations=1),
                    }
                },
            ),
        )
    )
    async with asyncio.timeout(TIMEOUT):
        await a.wait_events()
        # b's turn lasts until the test cancels it, after a's turn (and its ambiguous line).
        turn_b = asyncio.create_task(
            backend.prompt(
                b,
                actions(
                    {"wait_cancel": True},
                    {"emit": {"session_id": "$SID", "event": rt("RunCancelled")}},
                ),
            )
        )
        assert await turn_a == StopReason.END_TURN
        b.cancel()
        stop_b = await turn_b
    assert stop_b == StopReason.CANCELLED
    assert variants(a) == ["TextDelta", "RunCompleted"]
    assert variants(b) == ["RunCancelled"]
    assert "a bare runtime event without a session_id, and 2 sessions have a turn running" in (
        caplog.text
    )


# --- create_backend ----------------------------------------------------------------------------


def test_registry_knows_exec() -> None:
    backend = registry.create_backend(f"exec:{shlex.quote(sys.executable)} -u", BackendOptions())
    assert isinstance(backend, ExecBackend)
    assert backend.command == (sys.executable, "-u")
    assert backend.dialect == "harn"


def test_create_backend_splits_the_command() -> None:
    backend = create_backend(
        f"{shlex.quote(sys.executable)} -c 'print(1)'", BackendOptions(dialect="runtime")
    )
    assert backend.command == (sys.executable, "-c", "print(1)")
    assert backend.dialect == "runtime"
    assert backend.name == "exec"


@pytest.mark.parametrize(
    ("arg", "dialect", "message"),
    [
        (None, "harn", "exec needs a command"),
        ("   ", "harn", "exec needs a command"),
        ("no-such-agent-command-xyz --flag", "harn", "command not found"),
        ("python 'unbalanced", "harn", "quotation"),
        (sys.executable, "klingon", "unknown dialect"),
    ],
)
def test_create_backend_errors(arg: str | None, dialect: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_backend(arg, BackendOptions(dialect=dialect))

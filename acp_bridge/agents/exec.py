"""The ``exec`` backend: an agent runtime as a child process, driven over a JSON-lines protocol.

``acp-bridge serve --agent "exec:python my_agent.py" [--dialect runtime]`` runs the command once per
bridge (lazily, on the first session) and multiplexes every session over its stdin and stdout; the
protocol is :mod:`acp_bridge.agents.exec_protocol`, specified for agent authors in
``docs/agent-protocol.md``.

How the pieces fit:

* one reader task per child decodes stdout in order and emits the events through the owning
  session's context, so clients see them in the order the child wrote them; control lines end or
  fail turns and start request tasks (a slow client never stalls the event stream);
* every line to stdin is a single ``write()``, so lines never interleave; ``cancel`` is written
  without waiting for buffer room, so it reaches the child at once even while a prompt is flowing;
* stderr is free-form logging, forwarded to the ``acp_bridge.agents.exec.child`` logger;
* a child that exits fails its running turns with its exit code and last stderr line; the next use
  starts a new one and re-announces each session (``load_session``) before its next prompt;
* :meth:`ExecBackend.aclose` closes stdin, then terminates and kills the child's process group, and
  reaps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shlex
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from acp_bridge.agents.base import (
    CANCEL_GRACE_SECONDS,
    BackendError,
    BaseBackend,
    CapabilityNotAdvertised,
    ClientRequestFailed,
    PromptCapabilities,
    SessionContext,
    StopReason,
)
from acp_bridge.agents.exec_protocol import (
    DIALECTS,
    PROTOCOL_VERSION,
    ChildLine,
    Dialect,
    ErrorLine,
    HarnLine,
    LineError,
    RequestError,
    RequestLine,
    RuntimeLine,
    TurnEndLine,
    UnknownOpLine,
    encode_op,
    parse_child_line,
    permission_params,
    permission_result,
    read_params,
    write_params,
)
from acp_bridge.agents.registry import BackendOptions
from acp_bridge.events.runtime import RunCancelled, RunCompleted, RunFailed, RuntimeEvent
from acp_bridge.events.session_event import SessionEvent, SessionRuntimeEvent
from acp_bridge.translate.runtime import stop_reason_for

__all__ = [
    "CANCEL_GRACE_SECONDS",
    "STREAM_LIMIT",
    "TERMINATE_TIMEOUT_SECONDS",
    "ExecBackend",
    "create_backend",
]

logger = logging.getLogger(__name__)
child_logger = logging.getLogger(f"{__name__}.child")

STREAM_LIMIT: Final = 32 * 1024 * 1024
"""Longest stdout/stderr line read (a tool result can be a whole file); longer lines are skipped."""

"""After ``cancel``, how long the child has to end the turn before the prompt answers anyway."""
TERMINATE_TIMEOUT_SECONDS: Final = 2.0
"""After SIGTERM, how long the child has to exit before SIGKILL."""
STDIN_EOF_GRACE_SECONDS: Final = 0.5
"""On shutdown, how long a child may take to exit by itself once its stdin is closed."""
EXIT_WAIT_SECONDS: Final = 2.0
"""After the child closes stdout, how long it has to exit before it is terminated."""
STDERR_DRAIN_SECONDS: Final = 1.0
"""Once the child exited, how long to wait for the rest of its stderr (the last line says why)."""
_YIELD_EVERY: Final = 64
"""stdout lines handled between two yields to the event loop."""
_PREVIEW_CHARS: Final = 200
_STDERR_LOG_CHARS: Final = 8000


def _preview(data: bytes) -> str:
    text = data.decode("utf-8", "replace").rstrip("\r\n")
    return repr(text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "…")


async def _readline(stream: asyncio.StreamReader) -> bytes | None:
    """The next line with its newline; ``b""`` at EOF; ``None`` for a line over the stream limit.

    An over-long line is read and discarded up to its newline, so the next call starts cleanly on
    the following line (``StreamReader.readline`` would hand back the line's tail as a line).
    """
    try:
        return await stream.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        return exc.partial  # the last line had no newline (or b"" at EOF)
    except asyncio.LimitOverrunError as exc:
        consumed = exc.consumed
    while True:
        await stream.readexactly(consumed)
        try:
            await stream.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as exc:
            consumed = exc.consumed
            continue
        return None


class _ChildGone(Exception):
    """The child's stdin is closed: it exited or is exiting."""


@dataclass(eq=False)
class _Child:
    """One running child process and what the backend tracks about it."""

    process: asyncio.subprocess.Process
    number: int
    """1 for the first child of the backend, 2 after the first restart…"""
    exited: asyncio.Future[str]
    """Resolved, with a description of the exit, once the child is gone and reaped."""
    stdin: asyncio.StreamWriter
    last_stderr: str = ""
    line_number: int = 0
    stopping: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    requests: dict[asyncio.Task[None], tuple[RequestLine, str | None]] = field(default_factory=dict)
    """Request tasks in flight, with the request and the session it is for."""

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        # Until it is reaped: a crashed child's stdin may close before its last stdout lines are
        # read, and a new child must not start while those are still being delivered.
        return not self.exited.done()

    def write(self, line: bytes) -> bool:
        """Queue one line on stdin now (one ``write()``: lines never interleave); False if gone."""
        if not self.alive or self.stdin.is_closing():
            return False
        try:
            self.stdin.write(line)
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def send(self, line: bytes) -> None:
        """Write one line and wait for room in the pipe; :class:`_ChildGone` if the child left."""
        if not self.write(line):
            raise _ChildGone
        try:
            await self.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise _ChildGone from exc

    def describe_exit(self, *, with_stderr: bool = True) -> str:
        """How the child ended, with its last stderr line (which usually says why)."""
        code = self.process.returncode
        if code is None:
            text = "agent process closed its output"
        elif code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            text = f"agent process was killed by {name}"
        else:
            text = f"agent process exited with code {code}"
        if with_stderr and self.last_stderr:
            text += f" ({self.last_stderr})"
        return text


@dataclass(eq=False)
class _Turn:
    """A prompt the child is working on."""

    turn_id: str
    session_id: str
    outcome: asyncio.Future[StopReason | BackendError]
    """How the child ended the turn (an error is a value here, never a future exception)."""
    child: _Child | None = None
    """Set once the ``prompt`` line is on its way to this child."""
    cancel_sent: bool = False


@dataclass(eq=False)
class _SessionState:
    ctx: SessionContext
    child: _Child | None = None
    """The child this session was announced to (``new_session``/``load_session``)."""
    abandoned_turn: str | None = None
    """A turn the bridge answered before the child ended it: its late events are dropped."""


class ExecBackend(BaseBackend):
    """Runs ``command`` as one child process per bridge and speaks the exec line protocol with it.

    ``dialect`` is the event vocabulary the child writes (``harn`` or ``runtime``). ``cwd`` and
    ``env`` (added to the bridge's environment) configure the child; ``cancel_grace`` is how long a
    cancelled turn waits for the child's ``turn_end``; ``stream_limit`` is the longest line read.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        dialect: Dialect = "harn",
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        cancel_grace: float = CANCEL_GRACE_SECONDS,
        terminate_timeout: float = TERMINATE_TIMEOUT_SECONDS,
        stream_limit: int = STREAM_LIMIT,
        prompt_capabilities: PromptCapabilities | None = None,
    ) -> None:
        if not command:
            raise ValueError("exec needs a command to run")
        if dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}; expected one of: {', '.join(DIALECTS)}")
        super().__init__(
            name="exec",
            prompt_capabilities=prompt_capabilities or PromptCapabilities(embedded_context=True),
        )
        self.command = tuple(command)
        self.dialect: Dialect = dialect
        self.cwd = cwd
        self.env = dict(env or {})
        self.cancel_grace = cancel_grace
        self.terminate_timeout = terminate_timeout
        self.stream_limit = stream_limit
        self.skipped_lines = 0
        """stdout lines skipped so far (not JSON, unknown shape, unknown session…)."""
        self.starts = 0
        """How many child processes were started (1 + the restarts)."""
        self._child: _Child | None = None
        self._spawn_lock = asyncio.Lock()
        self._sessions: dict[str, _SessionState] = {}
        self._turns: dict[str, _Turn] = {}
        self._turn_numbers = itertools.count(1)
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The running child's process id (``None`` before the first use or after an exit)."""
        child = self._child
        return child.pid if child is not None and child.alive else None

    # --- the child process -----------------------------------------------------------------------

    async def _ensure_child(self) -> _Child:
        async with self._spawn_lock:
            child = self._child
            if (
                child is not None
                and child.alive
                and child.stdin.is_closing()
                and not child.stopping
            ):
                # It died between turns and is being reaped: let that finish, then start another.
                await self._gone(child)
            if child is not None and child.alive:
                return child
            if self._closed:
                raise BackendError("the agent process is shut down")
            self._child = await self._spawn()
            return self._child

    async def _spawn(self) -> _Child:
        env = {
            **os.environ,
            **self.env,
            # The child's stdout is a pipe: a Python child would block-buffer its events.
            "PYTHONUNBUFFERED": "1",
            "ACP_BRIDGE_EXEC_PROTOCOL": str(PROTOCOL_VERSION),
            "ACP_BRIDGE_DIALECT": self.dialect,
        }
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.cwd,
                env=env,
                limit=self.stream_limit,
                # Its own process group: a Ctrl-C on the bridge's terminal reaches the child only
                # through the bridge's orderly shutdown, which can then signal the whole group.
                start_new_session=True,
            )
        except OSError as exc:
            raise BackendError(
                f"could not start the agent command {shlex.join(self.command)}: {exc}"
            ) from exc
        assert process.stdin is not None
        self.starts += 1
        child = _Child(
            process=process,
            number=self.starts,
            exited=asyncio.get_running_loop().create_future(),
            stdin=process.stdin,
        )
        child.tasks = [
            asyncio.create_task(self._read_stderr(child), name=f"exec-stderr-{child.pid}"),
            asyncio.create_task(self._read_stdout(child), name=f"exec-stdout-{child.pid}"),
        ]
        logger.info("started agent process %d: %s", child.pid, shlex.join(self.command))
        return child

    def _signal(self, child: _Child, sig: signal.Signals) -> None:
        if child.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if hasattr(os, "killpg"):
                os.killpg(child.pid, sig)  # the group: grandchildren holding our pipes go too
            else:  # pragma: no cover - Windows
                child.process.send_signal(sig)

    async def _terminate(self, child: _Child, *, grace: float) -> None:
        """Make sure the child exits: wait ``grace``, then SIGTERM, then SIGKILL; reap it."""
        process = child.process
        for sig, wait in ((None, grace), (signal.SIGTERM, self.terminate_timeout)):
            if sig is not None:
                self._signal(child, sig)
            if process.returncode is None and wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), wait)
            if process.returncode is not None:
                return
        self._signal(child, signal.SIGKILL)
        await process.wait()

    async def _read_stderr(self, child: _Child) -> None:
        assert child.process.stderr is not None
        stream = child.process.stderr
        while True:
            line = await _readline(stream)
            if line is None:
                child_logger.info("agent[%d]: (a line longer than the limit, skipped)", child.pid)
                continue
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if text.strip():
                child.last_stderr = text.strip()[:_PREVIEW_CHARS]
                child_logger.info("agent[%d]: %s", child.pid, text[:_STDERR_LOG_CHARS])

    async def _read_stdout(self, child: _Child) -> None:
        assert child.process.stdout is not None
        stream = child.process.stdout
        try:
            while True:
                line = await _readline(stream)
                child.line_number += 1
                if line is None:
                    self.skipped_lines += 1
                    logger.warning(
                        "agent[%d] stdout line %d skipped: longer than %d bytes",
                        child.pid,
                        child.line_number,
                        self.stream_limit,
                    )
                    continue
                if not line:
                    break
                self._handle_line(child, line)
                if child.line_number % _YIELD_EVERY == 0:
                    # readuntil() does not suspend while whole lines are buffered: let the
                    # connections' writers send what was emitted so far.
                    await asyncio.sleep(0)
        except Exception:  # pragma: no cover - a bug here must not leave turns hanging
            logger.exception("agent[%d]: reading stdout failed", child.pid)
        finally:
            await self._reap(child)

    async def _reap(self, child: _Child) -> None:
        """stdout is closed: wait for the exit, collect the last stderr line, fail running turns."""
        try:
            await self._terminate(child, grace=EXIT_WAIT_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(child.tasks[0]), STDERR_DRAIN_SECONDS)
        finally:
            child.stdin.close()
            description = child.describe_exit()
            if not child.exited.done():
                child.exited.set_result(description)
            if self._child is child:
                self._child = None
            for task in child.requests:
                task.cancel()
            running = [t.session_id for t in self._turns.values() if t.child is child]
            if child.stopping:
                logger.info(
                    "agent[%d] stopped: %s", child.pid, child.describe_exit(with_stderr=False)
                )
            elif running:
                logger.warning(
                    "agent[%d] exited during turns of %s: %s", child.pid, running, description
                )
            else:
                logger.info("agent[%d] ended: %s", child.pid, description)

    async def _gone(self, child: _Child) -> BackendError:
        """The error for a child whose stdin closed under us: its exit description, once known."""
        wait = EXIT_WAIT_SECONDS + 2 * self.terminate_timeout + STDERR_DRAIN_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(child.exited), wait)
        if child.exited.done():
            return BackendError(child.exited.result())
        return BackendError("the agent process stopped reading its input")

    # --- stdout lines ----------------------------------------------------------------------------

    def _skip(self, child: _Child, reason: str, line: bytes | None = None) -> None:
        self.skipped_lines += 1
        preview = f": {_preview(line)}" if line is not None else ""
        logger.warning(
            "agent[%d] stdout line %d skipped: %s%s", child.pid, child.line_number, reason, preview
        )

    def _handle_line(self, child: _Child, line: bytes) -> None:
        if not line.strip():
            return
        try:
            parsed = parse_child_line(line, self.dialect)
        except LineError as exc:
            self._skip(child, str(exc), line)
            return
        try:
            self._dispatch(child, parsed)
        except Exception:  # a broken line, or a sink that failed, must not stop the reader
            logger.exception("agent[%d] stdout line %d failed", child.pid, child.line_number)

    def _sole_turn(self, child: _Child) -> str | None:
        """The session whose turn is running on ``child``, if exactly one is."""
        running = [t.session_id for t in self._turns.values() if t.child is child]
        return running[0] if len(running) == 1 else None

    def _route(self, child: _Child, session_id: str | None, what: str) -> str | None:
        if session_id is not None:
            return session_id
        sole = self._sole_turn(child)
        if sole is None:
            running = sum(1 for t in self._turns.values() if t.child is child)
            self._skip(
                child,
                f"{what} without a session_id, and {running} sessions have a turn running "
                "(name the session when several can run)",
            )
        return sole

    def _dispatch(self, child: _Child, parsed: ChildLine) -> None:
        if isinstance(parsed, HarnLine):
            self._deliver(child, parsed.event.session_id, parsed.event)
        elif isinstance(parsed, RuntimeLine):
            session_id = self._route(child, parsed.session_id, "a bare runtime event")
            if session_id is not None:
                self._deliver_runtime(child, session_id, parsed)
        elif isinstance(parsed, TurnEndLine):
            session_id = self._route(child, parsed.session_id, "turn_end")
            if session_id is None:
                return
            if parsed.bad_stop_reason is not None:
                logger.warning(
                    "agent[%d] stdout line %d: unknown stop_reason %r, ending the turn as end_turn",
                    child.pid,
                    child.line_number,
                    parsed.bad_stop_reason,
                )
            self._end_turn(child, session_id, parsed.turn_id, parsed.stop_reason)
        elif isinstance(parsed, ErrorLine):
            session_id = self._route(child, parsed.session_id, "error")
            if session_id is not None:
                self._end_turn(child, session_id, parsed.turn_id, BackendError(parsed.message))
        elif isinstance(parsed, RequestLine):
            task = asyncio.create_task(self._answer(child, parsed))
            child.requests[task] = (parsed, parsed.session_id or self._sole_turn(child))
            task.add_done_callback(lambda done: child.requests.pop(done, None))
        elif isinstance(parsed, UnknownOpLine):
            self._skip(child, f"unknown op {parsed.op!r}")

    def _session(self, child: _Child, session_id: str) -> _SessionState | None:
        state = self._sessions.get(session_id)
        if state is None:
            self._skip(child, f"event for unknown session {session_id!r}")
            return None
        if state.abandoned_turn is not None:
            # The prompt was already answered (cancel grace expired): these belong to that turn.
            self.skipped_lines += 1
            logger.debug("agent[%d]: late event of an abandoned turn dropped", child.pid)
            return None
        return state

    def _deliver(self, child: _Child, session_id: str, event: SessionEvent) -> None:
        state = self._session(child, session_id)
        if state is not None:
            state.ctx.emit(event)

    def _deliver_runtime(self, child: _Child, session_id: str, line: RuntimeLine) -> None:
        event = line.event
        terminal = isinstance(event, RuntimeEvent) and event.is_terminal()
        state = self._sessions.get(session_id)
        if terminal and state is not None and state.abandoned_turn is not None:
            state.abandoned_turn = None  # the end of the abandoned run: the session is clean again
            return
        self._deliver(child, session_id, SessionRuntimeEvent(session_id, event))
        if not terminal:
            return
        assert isinstance(event, RuntimeEvent)
        payload = event.payload
        result: StopReason | BackendError
        if isinstance(payload, RunCompleted):
            result = StopReason(stop_reason_for(payload.to_dict()["finish_reason"]))
        elif isinstance(payload, RunFailed):
            result = BackendError(payload.error)
        else:
            assert isinstance(payload, RunCancelled)
            result = StopReason.CANCELLED
        turn = self._turns.get(session_id)
        if turn is not None and turn.child is child and not turn.outcome.done():
            turn.outcome.set_result(result)

    def _end_turn(
        self,
        child: _Child,
        session_id: str,
        turn_id: str | None,
        result: StopReason | BackendError,
    ) -> None:
        turn = self._turns.get(session_id)
        if turn is not None and turn.child is child and turn_id in (None, turn.turn_id):
            if not turn.outcome.done():
                turn.outcome.set_result(result)
            return
        state = self._sessions.get(session_id)
        if (
            state is not None
            and state.abandoned_turn is not None
            and turn_id in (None, state.abandoned_turn)
        ):
            state.abandoned_turn = None
            return
        # Routine in the runtime dialect (RunCompleted, then turn_end), so not worth a warning.
        logger.debug(
            "agent[%d] stdout line %d: end of turn %s of session %r, which is not running; ignored",
            child.pid,
            child.line_number,
            turn_id,
            session_id,
        )

    # --- requests from the child -----------------------------------------------------------------

    async def _answer(self, child: _Child, request: RequestLine) -> None:
        reply: dict[str, Any]
        try:
            reply = {"result": await self._perform(child, request)}
        except RequestError as exc:
            reply = {"error": {"code": exc.code, "message": exc.message}}
        except CapabilityNotAdvertised as exc:
            reply = {"error": {"code": -32601, "message": str(exc)}}
        except ClientRequestFailed as exc:
            reply = {"error": {"code": exc.code, "message": exc.message}}
        except BackendError as exc:
            reply = {"error": {"code": exc.rpc_code, "message": str(exc)}}
        except Exception as exc:
            logger.exception("agent[%d]: request %s failed", child.pid, request.method)
            reply = {"error": {"code": -32603, "message": f"{type(exc).__name__}: {exc}"}}
        task = asyncio.current_task()
        if task is not None and child.requests.pop(task, None) is None:
            return  # the turn ended meanwhile and _cancel_requests answered: one answer per id
        with contextlib.suppress(_ChildGone):
            await child.send(encode_op("response", id=request.id, **reply))

    async def _perform(self, child: _Child, request: RequestLine) -> Any:
        session_id = request.session_id or self._sole_turn(child)
        if session_id is None:
            raise RequestError(-32602, "session_id is required (no single turn is running)")
        state = self._sessions.get(session_id)
        if state is None:
            raise RequestError(-32602, f"unknown session {session_id!r}")
        ctx, method, params = state.ctx, request.method, request.params
        if method == "session/request_permission":
            tool_call, options = permission_params(params)
            return permission_result(await ctx.request_permission(tool_call, options))
        if method == "fs/read_text_file":
            path, line, limit = read_params(params)
            return {"content": await ctx.read_text_file(path, line=line, limit=limit)}
        if method == "fs/write_text_file":
            await ctx.write_text_file(*write_params(params))
            return {}
        if method.startswith("terminal/"):
            forwarded = {k: v for k, v in params.items() if k != "sessionId"}
            return await ctx.terminal_request(method, forwarded)
        raise RequestError(-32601, f"unknown method {method!r}")

    def _cancel_requests(self, child: _Child | None, session_id: str) -> None:
        """The session's turn is over: abandon its requests, answering each (no child hangs).

        The answer is written here rather than by the task, which may not have started yet.
        """
        if child is None:
            return
        for task, (request, owner) in list(child.requests.items()):
            if owner == session_id:
                del child.requests[task]
                task.cancel()
                error = {"code": -32800, "message": "cancelled: the turn is over"}
                child.write(encode_op("response", id=request.id, error=error))

    # --- sessions --------------------------------------------------------------------------------

    def _state(self, ctx: SessionContext) -> _SessionState:
        state = self._sessions.get(ctx.session_id)
        if state is None:
            state = self._sessions[ctx.session_id] = _SessionState(ctx)
        state.ctx = ctx
        return state

    async def _announce(self, state: _SessionState, child: _Child, op: str) -> None:
        state.child = child
        try:
            await child.send(
                encode_op(
                    op,
                    session_id=state.ctx.session_id,
                    cwd=state.ctx.cwd,
                    mcp_servers=list(state.ctx.mcp_servers),
                )
            )
        except _ChildGone:
            raise await self._gone(child) from None

    async def new_session(self, ctx: SessionContext) -> None:
        """Start the child if needed and send it ``new_session``."""
        await self._announce(self._state(ctx), await self._ensure_child(), "new_session")

    async def load_session(self, ctx: SessionContext) -> None:
        """Start the child if needed and send it ``load_session`` unless it knows the session."""
        state = self._state(ctx)
        child = await self._ensure_child()
        if state.child is not child:
            await self._announce(state, child, "load_session")

    async def close_session(self, ctx: SessionContext) -> None:
        """Tell the child (if it knows the session) and forget the session."""
        state = self._sessions.pop(ctx.session_id, None)
        child = self._child
        if state is None or child is None or state.child is not child:
            return
        self._cancel_requests(child, ctx.session_id)
        with contextlib.suppress(_ChildGone):
            await child.send(encode_op("close_session", session_id=ctx.session_id))

    # --- turns -----------------------------------------------------------------------------------

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        """Send the prompt to the child and wait for it to end the turn (see the module docstring).

        Raises :class:`BackendError` when the child fails the turn (``error``, ``RunFailed``) or
        exits during it; returns ``cancelled`` once a cancelled turn is ended by the child, or
        after ``cancel_grace``.
        """
        session_id = ctx.session_id
        if session_id in self._turns:
            raise BackendError(f"session {session_id} already has a turn running")
        state = self._state(ctx)
        state.abandoned_turn = None  # a new turn: nothing can tell its events from the old one's
        loop = asyncio.get_running_loop()
        turn = _Turn(f"t{next(self._turn_numbers)}", session_id, loop.create_future())
        self._turns[session_id] = turn
        cancel_watch = asyncio.ensure_future(ctx.wait_cancelled())
        try:
            child = await self._ensure_child()
            if state.child is not child:
                await self._announce(state, child, "load_session")
            if ctx.cancelled:
                return StopReason.CANCELLED
            turn.child = child
            try:
                await child.send(
                    encode_op("prompt", session_id=session_id, turn_id=turn.turn_id, prompt=prompt)
                )
            except _ChildGone:
                raise await self._gone(child) from None
            return await self._wait_turn(ctx, turn, child, cancel_watch)
        finally:
            cancel_watch.cancel()
            if self._turns.get(session_id) is turn:
                del self._turns[session_id]
            if turn.child is not None and turn.child.alive and not turn.outcome.done():
                state.abandoned_turn = turn.turn_id
            if not turn.outcome.done():
                turn.outcome.cancel()
            self._cancel_requests(turn.child, session_id)

    async def _wait_turn(
        self,
        ctx: SessionContext,
        turn: _Turn,
        child: _Child,
        cancel_watch: asyncio.Future[None],
    ) -> StopReason:
        loop = asyncio.get_running_loop()
        waiting: set[asyncio.Future[Any]] = {turn.outcome, child.exited, cancel_watch}
        deadline: float | None = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait(
                waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            # The outcome first: a child that ended the turn and then exited did end the turn.
            if turn.outcome.done():
                result = turn.outcome.result()
                if ctx.cancelled:
                    if isinstance(result, BackendError):
                        logger.info("cancelled turn %s failed: %s", turn.turn_id, result)
                    return StopReason.CANCELLED
                if isinstance(result, BackendError):
                    raise result
                return result
            if child.exited.done():
                if ctx.cancelled:
                    return StopReason.CANCELLED
                raise BackendError(child.exited.result())
            if cancel_watch in done:
                waiting.discard(cancel_watch)
                self._send_cancel(turn)
                deadline = loop.time() + self.cancel_grace
            elif deadline is not None and loop.time() >= deadline:
                logger.warning(
                    "agent[%d] did not end cancelled turn %s of session %s within %.1f s",
                    child.pid,
                    turn.turn_id,
                    turn.session_id,
                    self.cancel_grace,
                )
                return StopReason.CANCELLED

    def _send_cancel(self, turn: _Turn) -> None:
        # No waiting for room in the pipe: the line goes out now, behind what is already queued.
        if turn.cancel_sent or turn.child is None:
            return
        turn.cancel_sent = True
        turn.child.write(encode_op("cancel", session_id=turn.session_id, turn_id=turn.turn_id))

    async def cancel(self, ctx: SessionContext) -> None:
        """Write ``cancel`` for the session's running turn now (the prompt waits for turn_end)."""
        turn = self._turns.get(ctx.session_id)
        if turn is not None:
            self._send_cancel(turn)

    async def aclose(self) -> None:
        """Stop the child: close its stdin, then SIGTERM, then SIGKILL its process group; reap."""
        self._closed = True
        async with self._spawn_lock:
            child = self._child
        if child is None:
            return
        child.stopping = True
        child.stdin.close()  # a well-behaved child exits on EOF
        await self._terminate(child, grace=STDIN_EOF_GRACE_SECONDS)
        reader = child.tasks[1]
        done, _ = await asyncio.wait({reader}, timeout=EXIT_WAIT_SECONDS + STDERR_DRAIN_SECONDS)
        if not done:  # pragma: no cover - a grandchild outside the group holds stdout open
            for task in child.tasks:
                task.cancel()
            await asyncio.gather(*child.tasks, return_exceptions=True)


def create_backend(arg: str | None, options: BackendOptions) -> ExecBackend:
    """``--agent exec:COMMAND``: ``COMMAND`` is split like a shell would (``shlex``)."""
    command = shlex.split(arg) if arg else []
    if not command:
        raise ValueError('exec needs a command, e.g. --agent "exec:python examples/harn_agent.py"')
    if shutil.which(command[0]) is None:
        raise ValueError(f"exec: command not found: {command[0]!r}")
    if options.dialect not in DIALECTS:
        raise ValueError(
            f"unknown dialect {options.dialect!r}; expected one of: {', '.join(DIALECTS)}"
        )
    dialect: Dialect = "runtime" if options.dialect == "runtime" else "harn"
    return ExecBackend(command, dialect=dialect)

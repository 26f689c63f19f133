"""The ``exec`` backend: sessions and turns multiplexed over one child process.

The child's stdout lines arrive here, in order, from its reader (:mod:`.child`): events are emitted
through the owning session's context, so clients see them in the order the child wrote them;
control lines end or fail turns, and start request tasks (:mod:`.requests`), so a slow client never
stalls the event stream. ``cancel`` is written without waiting for room in the pipe, so it reaches
the child at once even while a prompt is flowing. A child that exits fails its running turns; the
next use starts a new one and re-announces each session (``load_session``) before its next prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from acp_bridge.agents.base import (
    CANCEL_GRACE_SECONDS,
    BackendError,
    BackendOptions,
    BaseBackend,
    PromptCapabilities,
    SessionContext,
    StopReason,
)
from acp_bridge.agents.exec.child import (
    STREAM_LIMIT,
    TERMINATE_TIMEOUT_SECONDS,
    Child,
    ChildGone,
    start_child,
)
from acp_bridge.agents.exec.protocol import (
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
)
from acp_bridge.agents.exec.requests import cancelled_response, reply
from acp_bridge.events.runtime import RunCancelled, RunCompleted, RunFailed, RuntimeEvent
from acp_bridge.events.session_event import SessionEvent, SessionRuntimeEvent
from acp_bridge.translate.runtime import stop_reason_for

__all__ = ["ExecBackend", "create_backend"]

logger = logging.getLogger("acp_bridge.agents.exec")  # the name from before exec was a package

_PREVIEW_CHARS: Final = 200


def _preview(data: bytes) -> str:
    text = data.decode("utf-8", "replace").rstrip("\r\n")
    return repr(text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "…")


@dataclass(eq=False)
class _Turn:
    """A prompt the child is working on."""

    turn_id: str
    session_id: str
    outcome: asyncio.Future[StopReason | BackendError]
    """How the child ended the turn (an error is a value here, never a future exception)."""
    child: Child | None = None
    """Set once the ``prompt`` line is on its way to this child."""
    cancel_sent: bool = False


@dataclass(eq=False)
class _SessionState:
    ctx: SessionContext
    child: Child | None = None
    """The child this session was announced to (``new_session``/``load_session``)."""
    abandoned_turn: str | None = None
    """A turn the bridge answered before the child ended it: its late events are dropped."""


@dataclass(frozen=True, slots=True)
class _Request:
    """A child's request being performed, and the session whose turn it belongs to."""

    child: Child
    line: RequestLine
    session_id: str | None


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
        self._child: Child | None = None
        self._spawn_lock = asyncio.Lock()
        self._sessions: dict[str, _SessionState] = {}
        self._turns: dict[str, _Turn] = {}
        self._turn_numbers = itertools.count(1)
        self._requests: dict[asyncio.Task[None], _Request] = {}
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The running child's process id (``None`` before the first use or after an exit)."""
        child = self._child
        return child.pid if child is not None and child.alive else None

    # --- the child process -----------------------------------------------------------------------

    async def _ensure_child(self) -> Child:
        async with self._spawn_lock:
            child = self._child
            if (
                child is not None
                and child.alive
                and child.stdin.is_closing()
                and not child.stopping
            ):
                # It died between turns and is being reaped: let that finish, then start another.
                await child.exit_error()
            if child is not None and child.alive:
                return child
            if self._closed:
                raise BackendError("the agent process is shut down")
            self._child = await start_child(
                self.command,
                number=self.starts + 1,
                listener=self,
                cwd=self.cwd,
                env={
                    **self.env,
                    "ACP_BRIDGE_EXEC_PROTOCOL": str(PROTOCOL_VERSION),
                    "ACP_BRIDGE_DIALECT": self.dialect,
                },
                stream_limit=self.stream_limit,
                terminate_timeout=self.terminate_timeout,
            )
            self.starts += 1
            return self._child

    def child_exited(self, child: Child) -> None:
        """(For the child's reader.) Forget the child and its requests; say why it ended."""
        if self._child is child:
            self._child = None
        for task, request in self._requests.items():
            if request.child is child:
                task.cancel()
        running = [t.session_id for t in self._turns.values() if t.child is child]
        if child.stopping:
            logger.info("agent[%d] stopped: %s", child.pid, child.describe_exit(with_stderr=False))
        elif running:
            logger.warning(
                "agent[%d] exited during turns of %s: %s", child.pid, running, child.describe_exit()
            )
        else:
            logger.info("agent[%d] ended: %s", child.pid, child.describe_exit())

    # --- stdout lines ----------------------------------------------------------------------------

    def _skip(self, child: Child, reason: str, line: bytes | None = None) -> None:
        self.skipped_lines += 1
        preview = f": {_preview(line)}" if line is not None else ""
        logger.warning(
            "agent[%d] stdout line %d skipped: %s%s", child.pid, child.line_number, reason, preview
        )

    def line_too_long(self, child: Child) -> None:
        """(For the child's reader.) Count and log a line that was over the stream limit."""
        self._skip(child, f"longer than {self.stream_limit} bytes")

    def line_received(self, child: Child, line: bytes) -> None:
        """(For the child's reader.) Decode one stdout line and act on it; bad lines are skipped."""
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

    def _sole_turn(self, child: Child) -> str | None:
        """The session whose turn is running on ``child``, if exactly one is."""
        running = [t.session_id for t in self._turns.values() if t.child is child]
        return running[0] if len(running) == 1 else None

    def _route(self, child: Child, session_id: str | None, what: str) -> str | None:
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

    def _dispatch(self, child: Child, parsed: ChildLine) -> None:
        if isinstance(parsed, HarnLine):
            self._deliver(child, parsed.event.session_id, parsed.event)
        elif isinstance(parsed, RuntimeLine):
            session_id = self._route(child, parsed.session_id, "a bare runtime event")
            if session_id is not None:
                self._deliver_runtime(child, session_id, parsed)
        elif isinstance(parsed, TurnEndLine):
            self._turn_end(child, parsed)
        elif isinstance(parsed, ErrorLine):
            session_id = self._route(child, parsed.session_id, "error")
            if session_id is not None:
                self._end_turn(child, session_id, parsed.turn_id, BackendError(parsed.message))
        elif isinstance(parsed, RequestLine):
            task = asyncio.create_task(self._answer(child, parsed))
            owner = parsed.session_id or self._sole_turn(child)
            self._requests[task] = _Request(child, parsed, owner)
            task.add_done_callback(lambda done: self._requests.pop(done, None))
        elif isinstance(parsed, UnknownOpLine):
            self._skip(child, f"unknown op {parsed.op!r}")

    def _turn_end(self, child: Child, line: TurnEndLine) -> None:
        session_id = self._route(child, line.session_id, "turn_end")
        if session_id is None:
            return
        if line.bad_stop_reason is not None:
            logger.warning(
                "agent[%d] stdout line %d: unknown stop_reason %r, ending the turn as end_turn",
                child.pid,
                child.line_number,
                line.bad_stop_reason,
            )
        self._end_turn(child, session_id, line.turn_id, line.stop_reason)

    def _session(self, child: Child, session_id: str) -> _SessionState | None:
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

    def _deliver(self, child: Child, session_id: str, event: SessionEvent) -> None:
        state = self._session(child, session_id)
        if state is not None:
            state.ctx.emit(event)

    def _deliver_runtime(self, child: Child, session_id: str, line: RuntimeLine) -> None:
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
        child: Child,
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

    async def _answer(self, child: Child, request: RequestLine) -> None:
        answer = await reply(request, lambda: self._request_ctx(child, request), child.pid)
        task = asyncio.current_task()
        if task is not None and self._requests.pop(task, None) is None:
            return  # the turn ended meanwhile and _cancel_requests answered: one answer per id
        with contextlib.suppress(ChildGone):
            await child.send(encode_op("response", id=request.id, **answer))

    def _request_ctx(self, child: Child, request: RequestLine) -> SessionContext:
        session_id = request.session_id or self._sole_turn(child)
        if session_id is None:
            raise RequestError(-32602, "session_id is required (no single turn is running)")
        state = self._sessions.get(session_id)
        if state is None:
            raise RequestError(-32602, f"unknown session {session_id!r}")
        return state.ctx

    def _cancel_requests(self, child: Child | None, session_id: str) -> None:
        """The session's turn is over: abandon its requests, answering each (no child hangs).

        The answer is written here rather than by the task, which may not have started yet.
        """
        if child is None:
            return
        for task, request in list(self._requests.items()):
            if request.child is child and request.session_id == session_id:
                del self._requests[task]
                task.cancel()
                child.write(cancelled_response(request.line))

    # --- sessions --------------------------------------------------------------------------------

    def _state(self, ctx: SessionContext) -> _SessionState:
        state = self._sessions.get(ctx.session_id)
        if state is None:
            state = self._sessions[ctx.session_id] = _SessionState(ctx)
        state.ctx = ctx
        return state

    async def _announce(self, state: _SessionState, child: Child, op: str) -> None:
        state.child = child
        try:
            await child.send(
                encode_op(
                    op,
                    session_id=state.ctx.session_id,
                    cwd=state.ctx.cwd,
                    mcp_servers=list(state.ctx.mcp_servers),
                    additional_directories=list(_directories(state.ctx)),
                )
            )
        except ChildGone:
            raise await child.exit_error() from None

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
        with contextlib.suppress(ChildGone):
            await child.send(encode_op("close_session", session_id=ctx.session_id))

    # --- turns -----------------------------------------------------------------------------------

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        """Send the prompt to the child and wait for it to end the turn.

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
                    encode_op(
                        "prompt",
                        session_id=session_id,
                        turn_id=turn.turn_id,
                        prompt=prompt,
                        additional_directories=list(_directories(ctx)),
                    )
                )
            except ChildGone:
                raise await child.exit_error() from None
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
        child: Child,
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
        await child.stop()


def create_backend(arg: str | None, options: BackendOptions | None = None) -> ExecBackend:
    """``--agent exec:COMMAND``: ``COMMAND`` is split like a shell would (``shlex``)."""
    command = shlex.split(arg) if arg else []
    if not command:
        raise ValueError('exec needs a command, e.g. --agent "exec:python examples/harn_agent.py"')
    if shutil.which(command[0]) is None:
        raise ValueError(f"exec: command not found: {command[0]!r}")
    options = options or BackendOptions()
    if options.dialect not in DIALECTS:
        raise ValueError(
            f"unknown dialect {options.dialect!r}; expected one of: {', '.join(DIALECTS)}"
        )
    dialect: Dialect = "runtime" if options.dialect == "runtime" else "harn"
    return ExecBackend(command, dialect=dialect)


def _directories(ctx: SessionContext) -> Sequence[str]:
    """``ctx.additional_directories``, or none for a context written before it existed."""
    return getattr(ctx, "additional_directories", ())

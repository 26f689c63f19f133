"""The ``acp`` backend: any stdio ACP agent behind the bridge, the bridge being its ACP client.

One child per backend, started when the first client initializes or the first session needs it (its
``initialize`` answer shapes what the bridge advertises), and started again at the next use after it
died, with the reason logged. Client connections come and go without reaching it: the child's
sessions belong to the bridge's sessions, whose ids it never sees (each bridge session maps to a
session of the current child, created or re-created on demand).

Every ``session/update`` the child writes is emitted as a :class:`SessionAcpUpdate` through the
session's context, so it is logged (a record of its own kind, as it came), given an event id and fanned
out like native events; load and resume are answered from that log, never by the child. Updates that
are not valid for the schema are logged and counted (:meth:`AcpBackend.health_details`); the fan-out
keeps them from strict clients. The child's requests (``session/request_permission``, ``fs/*``,
``terminal/*``) go through the context like a native backend's, and each gets an answer, an error if
nobody can serve it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from acp_bridge._version import __version__
from acp_bridge.agents.base import (
    CANCEL_GRACE_SECONDS,
    BackendError,
    BackendOptions,
    BaseBackend,
    ConfigOption,
    PromptCapabilities,
    SessionContext,
    SessionMode,
    StopReason,
)
from acp_bridge.agents.exec.child import (
    STREAM_LIMIT,
    TERMINATE_TIMEOUT_SECONDS,
    Child,
    start_child,
)
from acp_bridge.agents.exec.protocol import RequestError, RequestLine
from acp_bridge.agents.exec.requests import reply
from acp_bridge.events.session_event import SessionAcpUpdate
from acp_bridge.translate.schema_check import session_update_problem

from .link import AgentLink, Incoming, decode_line

__all__ = ["INITIALIZE_TIMEOUT_SECONDS", "AcpBackend", "create_backend"]

logger = logging.getLogger("acp_bridge.agents.acp")
child_stderr_logger = logging.getLogger("acp_bridge.agents.acp.child")
"""The ACP agent's stderr, one record per line."""

INITIALIZE_TIMEOUT_SECONDS: Final = 30.0
"""How long the child has to answer ``initialize`` (and ``session/new``/``load``)."""
_CLIENT_CAPABILITIES: Final = {
    "fs": {"readTextFile": True, "writeTextFile": True},
    "terminal": True,
}
"""What the bridge tells the child it can do: it routes these to the prompting client, and answers
with an error when that client cannot."""
_PREVIEW_CHARS: Final = 200
_STOP_REASONS: Final = frozenset(r.value for r in StopReason)
_TURN_KINDS: Final = frozenset(
    {
        "user_message_chunk",
        "agent_message_chunk",
        "agent_thought_chunk",
        "tool_call",
        "tool_call_update",
        "plan",
    }
)
"""Updates that belong to a turn (others, like ``available_commands_update``, may come any time)."""


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "…"


@dataclass(eq=False)
class _Session:
    ctx: SessionContext
    child_session_id: str | None = None
    link: AgentLink | None = None
    """The child the session was created on (a session of a dead child must be re-created)."""
    config: list[dict[str, Any]] = field(default_factory=list)
    """The child's ``configOptions`` (select type) as it last described them."""
    mode_id: str | None = None
    turn: asyncio.Future[Any] | None = None
    """The running ``session/prompt`` request."""
    muted: bool = False
    """Set while the child replays the session on its own ``session/load`` (dropped: the bridge
    already has those updates in its log)."""
    abandoned: asyncio.Future[Any] | None = None
    """A cancelled turn the bridge answered before the child ended it: until the child does, the
    turn's late updates are dropped (ACP: none after the prompt response)."""


class AcpBackend(BaseBackend):
    """Runs ``command`` as a stdio ACP agent, one process for the whole bridge."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        cancel_grace: float = CANCEL_GRACE_SECONDS,
        initialize_timeout: float = INITIALIZE_TIMEOUT_SECONDS,
        terminate_timeout: float = TERMINATE_TIMEOUT_SECONDS,
        stream_limit: int = STREAM_LIMIT,
    ) -> None:
        if not command:
            raise ValueError("acp needs a command to run")
        super().__init__(name="acp", prompt_capabilities=PromptCapabilities())
        self.command = tuple(command)
        self.cwd = cwd
        self.env = dict(env or {})
        self.cancel_grace = cancel_grace
        self.initialize_timeout = initialize_timeout
        self.terminate_timeout = terminate_timeout
        self.stream_limit = stream_limit
        self.starts = 0
        """How many child processes were started (1 + the restarts)."""
        self.invalid_messages = 0
        """Messages from the child that were not valid (not JSON-RPC, or not valid for the schema)."""
        self.oversized_lines = 0
        """stdout lines over the size limit (dropped)."""
        self.last_exit: str | None = None
        """How the last child ended (``None`` while the first one runs)."""
        self.agent_info: dict[str, Any] = {}
        """The child's ``initialize`` result (empty until it answered)."""
        self._modes: list[SessionMode] = []
        self._link: AgentLink | None = None
        self._spawn_lock = asyncio.Lock()
        self._sessions: dict[str, _Session] = {}
        self._by_child_id: dict[str, _Session] = {}
        self._requests: dict[asyncio.Task[None], AgentLink] = {}
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The running child's process id (``None`` before the first start or after an exit)."""
        link = self._link
        return link.child.pid if link is not None and link.child.alive else None

    # --- the child -------------------------------------------------------------------------------

    async def _ensure_link(self) -> AgentLink:
        async with self._spawn_lock:
            link = self._link
            if link is not None and link.child.alive and link.closed_reason is None:
                return link
            if self._closed:
                raise BackendError("the agent process is shut down")
            if self.starts:
                logger.warning(
                    "restarting the agent (start #%d): the previous process %s",
                    self.starts + 1,
                    self.last_exit or "stopped",
                )
            child = await start_child(
                self.command,
                number=self.starts + 1,
                listener=self,
                cwd=self.cwd,
                env=self.env,
                stream_limit=self.stream_limit,
                terminate_timeout=self.terminate_timeout,
                stderr_log=child_stderr_logger,
            )
            self.starts += 1
            link = self._link = AgentLink(child)
            self._by_child_id = {}
            try:
                result = await link.request(
                    "initialize",
                    {
                        "protocolVersion": 1,
                        "clientCapabilities": _CLIENT_CAPABILITIES,
                        "clientInfo": {"name": "acp-bridge", "version": __version__},
                    },
                    self.initialize_timeout,
                )
            except BackendError as exc:
                await child.stop()
                raise BackendError(f"the agent did not initialize: {exc}") from None
            self._initialized(result if isinstance(result, dict) else {})
            return link

    def _initialized(self, result: dict[str, Any]) -> None:
        self.agent_info = result
        caps = result.get("agentCapabilities")
        prompt = caps.get("promptCapabilities") if isinstance(caps, dict) else None
        if isinstance(prompt, dict):
            self.prompt_capabilities = PromptCapabilities(
                image=prompt.get("image") is True,
                audio=prompt.get("audio") is True,
                embedded_context=prompt.get("embeddedContext") is True,
            )

    def _capability(self, *path: str) -> bool:
        value: Any = self.agent_info.get("agentCapabilities")
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return False
            value = value[key]
        return value is not None and value is not False

    async def agent_initialize(self) -> Mapping[str, Any]:
        """Start the child if needed and return its ``initialize`` result.

        Called by the bridge when a client initializes: the child's capabilities (prompt content,
        MCP transports) and identity shape the bridge's answer.
        """
        await self._ensure_link()
        return self.agent_info

    async def authenticate(self, params: Mapping[str, Any]) -> Any:
        """Forward ``authenticate`` (the child's ``authMethods`` are the bridge's)."""
        link = await self._ensure_link()
        return await link.request("authenticate", dict(params), self.initialize_timeout)

    def health_details(self) -> dict[str, Any]:
        """For ``/healthz``: the child's pid and starts, how it last ended, what it got wrong."""
        return {
            "command": shlex.join(self.command),
            "pid": self.pid,
            "starts": self.starts,
            "lastExit": self.last_exit,
            "invalidMessages": self.invalid_messages,
            "oversizedLines": self.oversized_lines,
        }

    # --- the child's reader (ChildListener) ------------------------------------------------------

    def line_too_long(self, child: Child) -> None:
        """(For the child's reader.) A stdout line over the limit: dropped, counted."""
        self.oversized_lines += 1
        self.invalid_messages += 1
        logger.warning(
            "agent[%d] stdout line %d dropped: longer than %d bytes",
            child.pid,
            child.line_number,
            self.stream_limit,
        )

    def child_exited(self, child: Child) -> None:
        """(For the child's reader.) Fail what waits on the child; the next use starts another."""
        reason = child.describe_exit(with_stderr=not child.stopping)
        link = self._link
        if link is not None and link.child is child:
            self.last_exit = reason
            link.close(f"the agent process ended ({reason}); the next prompt restarts it")
        for task, owner in list(self._requests.items()):
            if owner.child is child:
                task.cancel()
        if child.stopping:
            logger.info("agent[%d] stopped: %s", child.pid, reason)
        else:
            logger.warning("agent[%d] ended: %s; restarting it at its next use", child.pid, reason)

    def _invalid(self, child: Child, what: str, detail: Any = None) -> None:
        self.invalid_messages += 1
        logger.warning(
            "agent[%d] stdout line %d invalid (%d so far): %s%s",
            child.pid,
            child.line_number,
            self.invalid_messages,
            what,
            f": {_preview(detail)}" if detail is not None else "",
        )

    def line_received(self, child: Child, line: bytes) -> None:
        """(For the child's reader.) One NDJSON message from the child, acted on in order."""
        if not line.strip():
            return
        link = self._link
        if link is None or link.child is not child:
            return
        incoming = decode_line(line)
        try:
            self._dispatch(link, incoming)
        except Exception:  # a sink that failed must not stop the reader
            logger.exception("agent[%d] stdout line %d failed", child.pid, child.line_number)

    def _dispatch(self, link: AgentLink, incoming: Incoming) -> None:
        child, message = link.child, incoming.message
        if incoming.kind == "invalid":
            self._invalid(child, incoming.problem, line_preview(message))
        elif incoming.kind == "response":
            if not link.response(message):
                self._invalid(child, "a response to no pending request", message.get("id"))
        elif incoming.kind == "notification":
            self._notification(link, message["method"], message.get("params") or {})
        else:
            task = asyncio.create_task(self._answer(link, message))
            self._requests[task] = link
            task.add_done_callback(lambda done: self._requests.pop(done, None))

    def _notification(self, link: AgentLink, method: str, params: dict[str, Any]) -> None:
        if method != "session/update":
            if not method.startswith("_"):
                logger.debug("agent[%d]: notification %s ignored", link.child.pid, method)
            return
        child_id, update = params.get("sessionId"), params.get("update")
        state = self._by_child_id.get(child_id) if isinstance(child_id, str) else None
        if state is None:
            self._invalid(link.child, "session/update for an unknown session", child_id)
            return
        if state.muted:
            return
        kind = update.get("sessionUpdate") if isinstance(update, dict) else None
        if state.abandoned is not None and kind in _TURN_KINDS:
            logger.debug("agent: late update of an abandoned turn of %s dropped", child_id)
            return
        if not isinstance(update, dict):
            self._invalid(link.child, "session/update without an update object", update)
            return
        problem = session_update_problem(update)
        if problem is not None:
            self._invalid(
                link.child, f"session/update not valid for the schema ({problem})", update
            )
        elif update.get("sessionUpdate") == "config_option_update":
            options = update.get("configOptions")
            if isinstance(options, list):
                state.config = [o for o in options if isinstance(o, dict)]
        elif update.get("sessionUpdate") == "current_mode_update":
            state.mode_id = update.get("currentModeId")
        state.ctx.emit(SessionAcpUpdate(state.ctx.session_id, update, valid=problem is None))

    # --- the child's requests --------------------------------------------------------------------

    async def _answer(self, link: AgentLink, message: dict[str, Any]) -> None:
        params = message.get("params") or {}
        child_id = params.get("sessionId")
        state = self._by_child_id.get(child_id) if isinstance(child_id, str) else None
        request_id, method = message["id"], message["method"]
        request = RequestLine(request_id, method, params, None)

        def find_ctx() -> SessionContext:
            if state is None:
                raise RequestError(-32602, f"unknown session {child_id!r}")
            return state.ctx

        try:
            answer = await reply(request, find_ctx, link.child.pid)
        except asyncio.CancelledError:
            answer = {"error": {"code": -32603, "message": "the bridge stopped this request"}}
            link.respond(request_id, answer)
            raise
        link.respond(request_id, answer)

    # --- sessions --------------------------------------------------------------------------------

    def _state(self, ctx: SessionContext) -> _Session:
        state = self._sessions.get(ctx.session_id)
        if state is None:
            state = self._sessions[ctx.session_id] = _Session(ctx)
        state.ctx = ctx
        return state

    def _session_params(self, ctx: SessionContext) -> dict[str, Any]:
        params: dict[str, Any] = {"cwd": ctx.cwd, "mcpServers": list(ctx.mcp_servers)}
        # Only to an agent that advertised them (ACP: a client sends what the agent supports).
        directories = list(ctx.additional_directories)
        if directories and self._capability("sessionCapabilities", "additionalDirectories"):
            params["additionalDirectories"] = directories
        return params

    async def _child_session(self, state: _Session) -> tuple[AgentLink, str]:
        """The child and its session id for ``state``, (re)creating the session on a new child."""
        link = await self._ensure_link()
        if state.link is link and state.child_session_id is not None:
            return link, state.child_session_id
        previous = state.child_session_id
        if previous is not None and self._capability("loadSession"):
            # The child can restore its own context; what it replays is already in our log.
            state.muted = True
            self._by_child_id[previous] = state
            try:
                result = await link.request(
                    "session/load",
                    {"sessionId": previous, **self._session_params(state.ctx)},
                    self.initialize_timeout,
                )
                state.link = link
                self._adopt(state, result)
                return link, previous
            except BackendError as exc:
                logger.warning("agent could not load session %s again: %s", previous, exc)
                self._by_child_id.pop(previous, None)
            finally:
                state.muted = False

        def created(result: Any) -> None:
            # Runs as the response line is read: updates right behind it find their session.
            child_id = result.get("sessionId") if isinstance(result, dict) else None
            if not isinstance(child_id, str):
                raise BackendError("the agent answered session/new without a sessionId")
            state.link, state.child_session_id = link, child_id
            self._by_child_id[child_id] = state
            self._adopt(state, result)

        await link.request(
            "session/new", self._session_params(state.ctx), self.initialize_timeout, created
        )
        child_id = state.child_session_id
        assert child_id is not None
        if previous is not None:
            logger.warning(
                "session %s continues on a new agent session %s (the agent restarted and cannot "
                "load %s); the agent has lost its context, the bridge's history is intact",
                state.ctx.session_id,
                child_id,
                previous,
            )
        return link, child_id

    def _adopt(self, state: _Session, result: Any) -> None:
        """Take the modes and config options of a ``session/new``/``load`` answer."""
        if not isinstance(result, dict):
            return
        modes = result.get("modes")
        if isinstance(modes, dict) and isinstance(modes.get("availableModes"), list):
            self._modes = [
                SessionMode(m["id"], str(m.get("name", m["id"])), m.get("description"))
                for m in modes["availableModes"]
                if isinstance(m, dict) and isinstance(m.get("id"), str)
            ]
            current = modes.get("currentModeId")
            state.mode_id = current if isinstance(current, str) else None
        options = result.get("configOptions")
        if isinstance(options, list):
            state.config = [o for o in options if isinstance(o, dict)]

    async def new_session(self, ctx: SessionContext) -> None:
        """Create the session on the child (starting it if needed)."""
        await self._child_session(self._state(ctx))

    async def load_session(self, ctx: SessionContext) -> None:
        """Nothing to ask the child: the history comes from the bridge's log.

        A session the current child does not know (the bridge or the child restarted) is created
        on it at its next prompt.
        """
        self._state(ctx)

    async def close_session(self, ctx: SessionContext) -> None:
        """Forget the session; tell the child if it offers ``session/close``."""
        state = self._sessions.pop(ctx.session_id, None)
        if state is None or state.child_session_id is None:
            return
        self._by_child_id.pop(state.child_session_id, None)
        link = self._link
        if (
            link is state.link
            and link is not None
            and self._capability("sessionCapabilities", "close")
        ):
            with contextlib.suppress(BackendError):
                await link.request(
                    "session/close", {"sessionId": state.child_session_id}, self.cancel_grace
                )

    # --- turns -----------------------------------------------------------------------------------

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        """Forward ``session/prompt`` and wait for the child's answer.

        The child's death fails the turn with its exit reason (the next prompt restarts it); a
        cancelled turn that the child does not end within ``cancel_grace`` answers ``cancelled``.
        """
        state = self._state(ctx)
        link, child_id = await self._child_session(state)
        if ctx.cancelled:
            return StopReason.CANCELLED
        abandoned = state.abandoned
        if abandoned is not None and not abandoned.done():
            # The child's updates carry no turn: let the old turn end (its updates dropped)
            # before this one starts, for at most the cancel grace.
            await asyncio.wait({abandoned}, timeout=self.cancel_grace)
        state.abandoned = None  # from here on, nothing tells the old turn's updates from ours
        turn = link.start_request("session/prompt", {"sessionId": child_id, "prompt": prompt})
        state.turn = turn
        cancel_watch = asyncio.ensure_future(ctx.wait_cancelled())
        try:
            done, _ = await asyncio.wait({turn, cancel_watch}, return_when=asyncio.FIRST_COMPLETED)
            if turn not in done:
                link.notify("session/cancel", {"sessionId": child_id})
                done, _ = await asyncio.wait({turn}, timeout=self.cancel_grace)
                if not done:
                    logger.warning(
                        "agent did not end cancelled turn of session %s within %.1f s",
                        ctx.session_id,
                        self.cancel_grace,
                    )
                    return StopReason.CANCELLED
            try:
                result = turn.result()
            except BackendError:
                if ctx.cancelled:
                    return StopReason.CANCELLED
                raise
        finally:
            cancel_watch.cancel()
            state.turn = None
            if not turn.done():
                self._abandon(state, turn)
        stop = result.get("stopReason") if isinstance(result, dict) else None
        if ctx.cancelled:
            return StopReason.CANCELLED
        if stop not in _STOP_REASONS:
            logger.warning("agent ended a turn with unknown stopReason %r: end_turn", stop)
            return StopReason.END_TURN
        return StopReason(stop)

    def _abandon(self, state: _Session, turn: asyncio.Future[Any]) -> None:
        """Drop the turn's updates until the child answers its prompt (or is gone)."""
        state.abandoned = turn

        def ended(done: asyncio.Future[Any]) -> None:
            if not done.cancelled():
                done.exception()  # retrieved: nobody awaits an abandoned turn
            if state.abandoned is done:
                state.abandoned = None

        turn.add_done_callback(ended)

    async def cancel(self, ctx: SessionContext) -> None:
        """Forward ``session/cancel`` (the prompt waits for the child to end the turn)."""
        state = self._sessions.get(ctx.session_id)
        link = self._link
        if state is not None and state.turn is not None and link is state.link and link:
            link.notify("session/cancel", {"sessionId": state.child_session_id})

    # --- modes and config options ----------------------------------------------------------------

    def modes(self) -> Sequence[SessionMode]:
        """The modes the child offered in its latest ``session/new`` answer."""
        return self._modes

    def config_options(self, ctx: SessionContext) -> Sequence[ConfigOption]:
        """The child's select-type config options for the session."""
        state = self._sessions.get(ctx.session_id)
        if state is None:
            return ()
        options = []
        for raw in state.config:
            choices = raw.get("options")
            if raw.get("type") != "select" or not isinstance(choices, list):
                continue
            flat = [c for c in choices if isinstance(c, dict) and "value" in c]
            options.append(
                ConfigOption(
                    id=str(raw.get("id")),
                    name=str(raw.get("name", raw.get("id"))),
                    current_value=str(raw.get("currentValue")),
                    options=tuple((str(c["value"]), str(c.get("name", c["value"]))) for c in flat),
                    description=raw.get("description"),
                    category=raw.get("category"),
                )
            )
        return options

    async def set_mode(self, ctx: SessionContext, mode_id: str) -> None:
        """Forward ``session/set_mode``."""
        state = self._state(ctx)
        link, child_id = await self._child_session(state)
        await link.request(
            "session/set_mode", {"sessionId": child_id, "modeId": mode_id}, self.initialize_timeout
        )
        state.mode_id = mode_id

    async def set_config_option(
        self, ctx: SessionContext, config_id: str, value: str | bool
    ) -> None:
        """Forward ``session/set_config_option``; the child's answer is the new option state."""
        state = self._state(ctx)
        link, child_id = await self._child_session(state)
        result = await link.request(
            "session/set_config_option",
            {"sessionId": child_id, "configId": config_id, "value": value},
            self.initialize_timeout,
        )
        self._adopt(state, result)

    async def aclose(self) -> None:
        """Stop the child: close its stdin, then SIGTERM, then SIGKILL its process group."""
        self._closed = True
        async with self._spawn_lock:
            link = self._link
        if link is not None and link.child.alive:
            await link.child.stop()


def line_preview(message: Any) -> Any:
    """What of an invalid message goes to the log (``None`` when it was not even JSON)."""
    return message or None


def create_backend(arg: str | None, options: BackendOptions | None = None) -> AcpBackend:
    """``--agent acp:COMMAND``: ``COMMAND`` is split like a shell would (``shlex``)."""
    command = shlex.split(arg) if arg else []
    if not command:
        raise ValueError(
            'acp needs a command, e.g. --agent "acp:python -m my_agent" or "acp:gemini --acp"'
        )
    if shutil.which(command[0]) is None:
        raise ValueError(f"acp: command not found: {command[0]!r}")
    return AcpBackend(command)

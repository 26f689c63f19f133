"""One client connection speaking the agent side of ACP v1.

:class:`AcpConnection` registers the ACP methods on a :class:`~acp_bridge.rpc.peer.JsonRpcPeer`,
keeps what the client said in ``initialize`` (capabilities, info, the resolved profile) and the
connection's attachments to sessions. Sessions themselves belong to the bridge and outlive the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from acp_bridge._version import __version__
from acp_bridge.agents.base import BackendError, StopReason
from acp_bridge.events import EventDecodeError, SessionRuntimeEvent, decode_session_event
from acp_bridge.events.harn import SessionClosed
from acp_bridge.rpc.errors import (
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ResourceNotFound,
    RpcError,
)
from acp_bridge.rpc.peer import JsonRpcPeer, Reply, RequestContext
from acp_bridge.rpc.transport import CloseReason, Transport
from acp_bridge.sinks import agent_events_topic
from acp_bridge.translate import (
    Message,
    Profile,
    bridge_capability_block,
    content_block_problem,
    harn_capability_block,
    translate,
)
from acp_bridge.translate.runtime import RuntimeTranslator, UnmappedRunError

from .delivery import Attachment, stamp_event_id
from .sessions import PromptTicket, Session

if TYPE_CHECKING:
    from .bridge import AcpBridge

__all__ = ["PROTOCOL_VERSION", "AcpConnection"]

logger = logging.getLogger(__name__)

PROTOCOL_VERSION: Final = 1
REPLAY_PAGE: Final = 500

_PROMPT_GATES: Final = {"image": "image", "audio": "audio", "resource": "embedded_context"}


def _agent_failure(exc: Exception, session_id: str, method: str) -> RpcError:
    """The JSON-RPC error for a backend that raised: its own code for a :class:`BackendError` that
    names one, ``-32603`` with a one-line detail otherwise (the traceback goes to the log only)."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, BackendError) and exc.rpc_code != InternalError.code:
        return RpcError(str(exc), data={"sessionId": session_id}, code=exc.rpc_code)
    logger.info(
        "%s for session %s failed: %s",
        method,
        session_id,
        exc,
        exc_info=not isinstance(exc, BackendError),
    )
    return InternalError(
        f"the agent failed: {exc}",
        data={"detail": f"{type(exc).__name__}: {exc}", "sessionId": session_id},
    )


def _mcp_servers(params: Mapping[str, Any]) -> tuple[dict[str, Any], ...] | None:
    """``mcpServers`` as given (``None`` when absent: Harn hosts may omit it)."""
    servers = params.get("mcpServers")
    if servers is None:
        return None
    if not isinstance(servers, list) or not all(
        isinstance(server, dict) and isinstance(server.get("name"), str) for server in servers
    ):
        raise InvalidParams(
            "mcpServers must be a list of MCP server objects with a name",
            data={"field": "mcpServers"},
        )
    return tuple(servers)


def _session_id(params: Mapping[str, Any]) -> str:
    value = params.get("sessionId")
    if not isinstance(value, str) or not value:
        raise InvalidParams("sessionId is required", data={"field": "sessionId"})
    return value


def _absolute_cwd(params: Mapping[str, Any], *, required: bool = True) -> str | None:
    cwd = params.get("cwd")
    if cwd is None and not required:
        return None
    if not isinstance(cwd, str) or not os.path.isabs(cwd):
        raise InvalidParams("cwd must be an absolute path", data={"field": "cwd"})
    return cwd


class AcpConnection:
    """The agent side of ACP for one client connection."""

    def __init__(
        self, bridge: AcpBridge, transport: Transport, *, connection_id: str | None = None
    ):
        self.bridge = bridge
        self.connection_id = connection_id or uuid.uuid4().hex
        self.peer = JsonRpcPeer(
            transport,
            name=f"conn-{self.connection_id[:8]}",
            outbox_limit=bridge.config.outbox_limit,
            slow_client_grace=bridge.config.slow_client_grace,
            outbox_max_bytes=bridge.config.outbox_max_bytes,
            request_timeout=bridge.config.client_request_timeout,
        )
        self.initialized = False
        self.client_capabilities: Mapping[str, Any] = {}
        self.client_info: Mapping[str, Any] | None = None
        self.profile = Profile.STRICT
        self._attachments: dict[str, Attachment] = {}
        self._prompt_handlers: set[asyncio.Task[Any]] = set()
        self._register()

    # --- plumbing ----------------------------------------------------------------------------------

    def _register(self) -> None:
        peer = self.peer
        peer.add_method("initialize", self._initialize, inline=True)
        for method, handler in (
            ("session/new", self._session_new),
            ("session/load", self._session_load),
            ("session/resume", self._session_resume),
            ("session/close", self._session_close),
            ("session/list", self._session_list),
            ("session/set_mode", self._session_set_mode),
            ("session/set_config_option", self._session_set_config_option),
        ):
            peer.add_method(method, self._initialized(handler))
        # A prompt read before a session/cancel is cancelled by it, even if its handler has not
        # started yet: the session's cancel generation is captured on arrival.
        # $/cancel_request on a prompt cancels that prompt's turn; the prompt still answers, with
        # stopReason "cancelled", after everything its turn emitted.
        peer.add_method(
            "session/prompt",
            self._initialized(self._session_prompt),
            on_arrival=self._prompt_arrived,
            answers_own_cancel=True,
        )
        # session/cancel is a notification in ACP; Harn also accepts it as a request.
        peer.add_method("session/cancel", self._initialized(self._cancel_request), inline=True)
        peer.add_notification("session/cancel", self._cancel_notification)

    def _initialized(self, handler: Any) -> Any:
        async def guarded(params: dict[str, Any], ctx: RequestContext) -> Any:
            if not self.initialized:
                raise InvalidRequest("initialize must be the first request on a connection")
            return await handler(params, ctx)

        return guarded

    async def run(self) -> None:
        """Serve the connection until it closes; its sessions live on."""
        try:
            await self.peer.run()
        finally:
            for session_id in list(self._attachments):
                self._detach(session_id)

    def attachment(self, session_id: str) -> Attachment | None:
        """This connection's attachment to a session, if it opened it."""
        return self._attachments.get(session_id)

    def _attach(self, session: Session) -> Attachment:
        self._detach(session.session_id)
        attachment = Attachment(session.session_id, self.profile, self.peer)
        self._attachments[session.session_id] = attachment
        session.attach(attachment)
        return attachment

    def _detach(self, session_id: str) -> None:
        attachment = self._attachments.pop(session_id, None)
        session = self.bridge.sessions.sessions.get(session_id)
        if attachment is not None and session is not None:
            session.detach(attachment)

    def _attached_session(self, params: Mapping[str, Any]) -> tuple[Session, Attachment]:
        session_id = _session_id(params)
        attachment = self._attachments.get(session_id)
        session = self.bridge.sessions.sessions.get(session_id)
        if attachment is None or session is None:
            raise ResourceNotFound(
                "session not open on this connection (use session/new, session/load or session/resume)",
                data={"sessionId": session_id},
            )
        return session, attachment

    def _opened(self, session: Session, attachment: Attachment) -> None:
        """Right after a new/load/resume response: release held messages, announce commands."""
        attachment.open_gate()
        commands = self.bridge.backend.commands()
        if commands:
            available = []
            for command in commands:
                entry: dict[str, Any] = {"name": command.name, "description": command.description}
                if command.input_hint:
                    entry["input"] = {"hint": command.input_hint}
                available.append(entry)
            attachment.deliver(
                {
                    "jsonrpc": "2.0",
                    "method": "session/update",
                    "params": {
                        "sessionId": session.session_id,
                        "update": {
                            "sessionUpdate": "available_commands_update",
                            "availableCommands": available,
                        },
                    },
                }
            )

    def _session_setup(self, session: Session) -> dict[str, Any]:
        """``modes`` and ``configOptions`` of a new/load/resume response, when the backend has them."""
        result: dict[str, Any] = {}
        modes = self.bridge.backend.modes()
        if modes:
            result["modes"] = {
                "currentModeId": session.mode_id or modes[0].id,
                "availableModes": [
                    {
                        "id": m.id,
                        "name": m.name,
                        **({"description": m.description} if m.description else {}),
                    }
                    for m in modes
                ],
            }
        options = self._config_options(session)
        if options:
            result["configOptions"] = options
        return result

    def _config_options(self, session: Session) -> list[dict[str, Any]]:
        wire = []
        for option in self.bridge.backend.config_options(session.context):
            entry: dict[str, Any] = {
                "id": option.id,
                "name": option.name,
                "type": "select",
                "currentValue": option.current_value,
                "options": [{"value": value, "name": name} for value, name in option.options],
            }
            if option.description:
                entry["description"] = option.description
            if option.category:
                entry["category"] = option.category
            wire.append(entry)
        return wire

    # --- initialize --------------------------------------------------------------------------------

    async def _initialize(self, params: dict[str, Any], ctx: RequestContext) -> Any:
        if self.initialized:
            raise InvalidRequest("initialize was already called on this connection")
        version = params.get("protocolVersion")
        if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= 65535:
            raise InvalidParams(
                "protocolVersion must be an integer (ACP v1 is 1)",
                data={"field": "protocolVersion"},
            )
        caps = params.get("clientCapabilities")
        self.client_capabilities = caps if isinstance(caps, dict) else {}
        info = params.get("clientInfo")
        self.client_info = info if isinstance(info, dict) else None
        self.profile = self.bridge.resolve_profile(self.client_capabilities)
        self.initialized = True
        backend = self.bridge.backend
        prompt = backend.prompt_capabilities
        capabilities: dict[str, Any] = {
            "loadSession": True,
            "promptCapabilities": {
                "image": prompt.image,
                "audio": prompt.audio,
                "embeddedContext": prompt.embedded_context,
            },
            "sessionCapabilities": {"list": {}, "resume": {}, "close": {}},
            "_meta": {
                "harn": harn_capability_block(self.profile),
                "acp_bridge": bridge_capability_block(self.profile),
            },
        }
        # ACP: the agent answers with the latest version it supports, whatever the client asked.
        return {
            "protocolVersion": PROTOCOL_VERSION,
            "agentCapabilities": capabilities,
            "authMethods": [],
            "agentInfo": {
                "name": "acp-bridge",
                "title": f"acp-bridge ({backend.name})",
                "version": __version__,
            },
        }

    # --- sessions ------------------------------------------------------------------------------------

    async def _session_new(self, params: dict[str, Any], ctx: RequestContext) -> Any:
        cwd = _absolute_cwd(params)
        assert cwd is not None
        mcp_servers = _mcp_servers(params)
        self._refuse_when_closing()
        session = self.bridge.sessions.create(cwd)
        session.mcp_servers = mcp_servers or ()
        attachment = self._attach(session)
        with self._opening(session, "session/new", new=True):
            await self.bridge.start_backend_session(session, new=True)
        result = {"sessionId": session.session_id, **self._session_setup(session)}
        return Reply(result, then=lambda: self._opened(session, attachment))

    def _refuse_when_closing(self) -> None:
        """Once the bridge shuts down, nothing new starts (a turn would run into a closed backend)."""
        if self.bridge.closing:
            raise InternalError(
                "the bridge is shutting down; reconnect and session/load later",
                data={"reason": "shutting_down"},
            )

    def _existing_session(self, params: Mapping[str, Any]) -> Session:
        """The session a load/resume names (``-32002`` if unknown), with its new ``mcpServers``."""
        self._refuse_when_closing()
        session_id = _session_id(params)
        _absolute_cwd(params, required=False)
        mcp_servers = _mcp_servers(params)
        session = self.bridge.sessions.get(session_id)
        if session is None:
            raise ResourceNotFound("unknown session", data={"sessionId": session_id})
        if mcp_servers is not None:
            session.mcp_servers = mcp_servers
        return session

    @contextlib.contextmanager
    def _opening(self, session: Session, method: str, *, new: bool = False) -> Iterator[None]:
        """Undo a failed new/load/resume: detach (the attachment would hold messages forever), drop
        a new session (it never existed for the client), and map the backend's exception."""
        try:
            yield
        except BaseException as exc:
            self._detach(session.session_id)
            if new:
                self.bridge.sessions.discard(session)
            if isinstance(exc, Exception):
                raise _agent_failure(exc, session.session_id, method) from None
            raise

    async def _session_load(self, params: dict[str, Any], ctx: RequestContext) -> Any:
        after = params.get("lastAckedEventId", 0)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise InvalidParams("lastAckedEventId must be a non-negative integer")
        session = self._existing_session(params)
        attachment = self._attach(session)
        with self._opening(session, "session/load"):
            replayed, last = await self._replay(session, attachment, after)
            attachment.replayed_through = last
            await self.bridge.start_backend_session(session, new=False)
        result = {
            **self._session_setup(session),
            "_meta": {"harn": {"replayedEvents": replayed, "lastEventId": last}},
        }
        return Reply(result, then=lambda: self._opened(session, attachment))

    async def _replay(
        self, session: Session, attachment: Attachment, after: int
    ) -> tuple[int, int]:
        """Write the session's history after event ``after``, marked as replayed; returns (count, last id).

        The history is what the log holds when the replay starts. Events appended meanwhile are held
        by the (already attached) attachment and released after the response, so a busy session
        cannot keep a load from ever finishing.
        """
        log = self.bridge.log
        topic = agent_events_topic(session.session_id)
        head = log.latest(topic) or 0
        # A client may have acked ids this log no longer has (a crash lost the uncommitted tail):
        # whatever the log assigns from here on is new to it.
        count, last = 0, min(after, head)
        runtime = RuntimeTranslator(session_id=session.session_id)
        while last < head:
            entries = log.read_range(topic, after=last, limit=min(REPLAY_PAGE, head - last))
            if not entries:
                break
            for entry in entries:
                last = entry.id
                payload = entry.record.payload
                raw = payload.get("event") if isinstance(payload, dict) else None
                try:
                    event = decode_session_event(entry.record.kind, raw)
                except EventDecodeError as exc:
                    logger.warning("skipping undecodable event %d of %s: %s", entry.id, topic, exc)
                    continue
                if event.session_id != session.session_id:
                    continue  # sanitised topic names can collide; Harn re-filters too
                messages: list[Message]
                if isinstance(event, SessionRuntimeEvent):
                    try:
                        messages = runtime.translate(event.event, replay=True).messages
                    except UnmappedRunError:  # pragma: no cover - a default session is set
                        continue
                else:
                    messages = translate(event, profile=self.profile, replay=True)
                for message in messages:
                    await attachment.write_replayed(
                        stamp_event_id(message, self.profile, session.session_id, entry.id)
                    )
                count += 1
        return count, last

    async def _session_resume(self, params: dict[str, Any], ctx: RequestContext) -> Any:
        session = self._existing_session(params)
        attachment = self._attach(session)
        topic = agent_events_topic(session.session_id)
        attachment.replayed_through = self.bridge.log.latest(topic) or 0
        with self._opening(session, "session/resume"):
            await self.bridge.start_backend_session(session, new=False)
        return Reply(self._session_setup(session), then=lambda: self._opened(session, attachment))

    async def _session_close(self, params: dict[str, Any], ctx: RequestContext) -> Any:
        session_id = _session_id(params)
        session = self.bridge.sessions.get(session_id)
        if session is None:
            raise ResourceNotFound("unknown session", data={"sessionId": session_id})
        session.cancel()
        session.context.emit(
            SessionClosed(
                session_id=session_id,
                reason="client_request",
                status="closed",
                metadata={"protocol": "acp", "method": "session/close"},
            )
        )
        await self.bridge.close_session(session)
        return {}

    async def _session_list(self, params: dict[str, Any], ctx: RequestContext) -> Any:
        cwd = _absolute_cwd(params, required=False)
        cursor = params.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidParams("cursor must be a string")
        try:
            records, next_cursor = self.bridge.sessions.list(cwd, cursor)
        except ValueError as exc:
            raise InvalidParams(str(exc)) from None
        result: dict[str, Any] = {"sessions": [r.info() for r in records]}
        if next_cursor is not None:
            result["nextCursor"] = next_cursor
        return result

    async def _session_set_mode(self, params: dict[str, Any], ctx: RequestContext) -> Any:
        modes = {m.id for m in self.bridge.backend.modes()}
        if not modes:
            # Not offered (session/new had no modes), so, to the client, not a method at all.
            raise MethodNotFound(
                "session/set_mode is not offered: this agent has no session modes",
                data={"method": "session/set_mode"},
            )
        session, attachment = self._attached_session(params)
        mode_id = params.get("modeId")
        if mode_id not in modes:
            raise InvalidParams(
                "unknown modeId", data={"modeId": mode_id, "available": sorted(modes)}
            )
        await self.bridge.backend.set_mode(session.context, mode_id)
        session.mode_id = mode_id
        update = {"sessionUpdate": "current_mode_update", "currentModeId": mode_id}
        return Reply(
            {},
            then=lambda: session.fanout.broadcast(
                self._update(session, update), exclude=attachment
            ),
        )

    async def _session_set_config_option(self, params: dict[str, Any], ctx: RequestContext) -> Any:
        session, attachment = self._attached_session(params)
        config_id, value = params.get("configId"), params.get("value")
        known = {o.id for o in self.bridge.backend.config_options(session.context)}
        if not known:
            raise MethodNotFound(
                "session/set_config_option is not offered: this agent has no config options",
                data={"method": "session/set_config_option"},
            )
        if config_id not in known:
            raise InvalidParams("unknown configId", data={"configId": config_id})
        if not isinstance(value, str):
            raise InvalidParams(
                "value must be a string (select option)", data={"configId": config_id}
            )
        await self.bridge.backend.set_config_option(session.context, config_id, value)
        options = self._config_options(session)
        update = {"sessionUpdate": "config_option_update", "configOptions": options}
        return Reply(
            {"configOptions": options},
            then=lambda: session.fanout.broadcast(
                self._update(session, update), exclude=attachment
            ),
        )

    @staticmethod
    def _update(session: Session, update: dict[str, Any]) -> dict[str, Any]:
        return {
            "jsonrpc": "2.0",
            "method": "session/update",
            "params": {"sessionId": session.session_id, "update": update},
        }

    # --- turns -----------------------------------------------------------------------------------------

    def _check_prompt(self, prompt: Any) -> list[dict[str, Any]]:
        if not isinstance(prompt, list):
            raise InvalidParams("prompt must be a list of content blocks", data={"field": "prompt"})
        caps = self.bridge.backend.prompt_capabilities
        for i, block in enumerate(prompt):
            problem = content_block_problem(block)
            if problem is not None:
                raise InvalidParams(f"prompt[{i}]: {problem}", data={"field": f"prompt[{i}]"})
            gate = _PROMPT_GATES.get(block["type"])
            if gate is not None and not getattr(caps, gate):
                raise InvalidParams(
                    f"this agent does not accept {block['type']} content in prompts",
                    data={"field": "prompt", "type": block["type"]},
                )
        return prompt

    def _prompt_arrived(self, params: dict[str, Any]) -> int | None:
        session_id = params.get("sessionId")
        session = (
            self.bridge.sessions.sessions.get(session_id) if isinstance(session_id, str) else None
        )
        return session.cancel_generation if session is not None else None

    async def _session_prompt(self, params: dict[str, Any], ctx: RequestContext) -> Any:
        session, attachment = self._attached_session(params)
        prompt = self._check_prompt(params.get("prompt"))
        self._refuse_when_closing()
        generation = ctx.arrival if isinstance(ctx.arrival, int) else session.cancel_generation
        handler = asyncio.current_task()
        if handler is not None:
            self._prompt_handlers.add(handler)
            handler.add_done_callback(self._prompt_handlers.discard)
        # The session's next turn waits until this prompt's answer (result or error) is queued.
        ticket = PromptTicket(generation, cancelled=ctx.cancelled_by_peer)
        ctx.after_response = ticket.answered.set
        # $/cancel_request cancels this prompt's turn (or skips it while queued); the handler stays
        # and answers "cancelled" once the turn is over, after everything the turn emitted.
        ctx.on_cancel = lambda: session.cancel_prompt(ticket)
        turn = asyncio.ensure_future(session.run_turn(self, prompt, attachment, ticket))
        try:
            return await self._answer_prompt(session, turn)
        except asyncio.CancelledError:
            # Torn down (the connection closed, the bridge stops): no response of ours will follow,
            # so the next turn may start as soon as this one is over.
            if turn.done():
                ticket.answered.set()
            else:
                turn.add_done_callback(lambda _: ticket.answered.set())
            raise

    async def _answer_prompt(
        self, session: Session, turn: asyncio.Future[StopReason]
    ) -> dict[str, Any]:
        try:
            # Shielded: if this connection goes away the turn goes on (decision 0003).
            stop = await asyncio.shield(turn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._durability_barrier()
            raise _agent_failure(exc, session.session_id, "session/prompt") from None
        result: dict[str, Any] = {"stopReason": stop.value}
        persistence_error = await self._durability_barrier()
        if persistence_error is not None:
            result["_meta"] = {"harn": {"persistenceError": persistence_error}}
        return result

    async def _durability_barrier(self) -> str | None:
        """Wait until the turn's events are committed; returns the error text if that failed."""
        try:
            await self.bridge.log.aflush()
        except Exception as exc:
            logger.error("event log flush failed: %s", exc)
            return str(exc)
        return None

    async def _cancel_notification(self, params: dict[str, Any]) -> None:
        if self.initialized:
            self._cancel(params)

    async def _cancel_request(self, params: dict[str, Any], ctx: RequestContext) -> Any:
        self._cancel(params)
        return {}

    def _cancel(self, params: Mapping[str, Any]) -> None:
        session_id = params.get("sessionId")
        session = (
            self.bridge.sessions.sessions.get(session_id) if isinstance(session_id, str) else None
        )
        if session is not None:
            session.cancel()

    async def finish_prompts(self, timeout: float) -> None:  # noqa: ASYNC109 - bounded by design
        """Wait (bounded) until every prompt of this connection has been answered and sent."""
        if self._prompt_handlers:
            await asyncio.wait(set(self._prompt_handlers), timeout=timeout)
        await self.peer.drain_for(timeout)

    async def close(self, reason: CloseReason = CloseReason.GOING_AWAY) -> None:
        """Close the connection (its sessions live on)."""
        await self.peer.close(reason)

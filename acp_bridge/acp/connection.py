"""One client connection speaking the agent side of ACP v1.

:class:`AcpConnection` owns the connection's :class:`~acp_bridge.rpc.peer.JsonRpcPeer`, what the
client said in ``initialize`` (capabilities, the resolved profile) and the connection's attachments
to sessions. The ACP methods themselves live in :mod:`acp_bridge.acp.handlers`, one module per
family, and are registered once in an :class:`AcpMethods` table that every connection shares. Sessions belong to the
:class:`~acp_bridge.acp.sessions.SessionManager` and outlive the connection.

The connection is the :class:`~acp_bridge.acp.ports.TurnOwner` of the turns it prompts: the
backend's file and terminal requests go to it; permission requests go to every controller of the
session (:mod:`acp_bridge.acp.arbiter`). Its :class:`~acp_bridge.rpc.principal.Principal` (what its
credentials named, decided by the transport) says what it may call (:mod:`acp_bridge.acp.roles`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from acp_bridge.rpc.errors import InvalidRequest, ResourceNotFound
from acp_bridge.rpc.peer import JsonRpcPeer, MethodTable, RequestContext
from acp_bridge.rpc.principal import ANONYMOUS, Principal
from acp_bridge.rpc.transport import CloseReason, Transport
from acp_bridge.translate import Profile

from .config import BridgeConfig
from .delivery import Attachment
from .extensions import NO_EXTENSIONS, ClientExtensions
from .params import session_id_of
from .ports import ConnectionHost
from .roles import check_allowed, may_notify
from .sessions import Session, SessionManager

__all__ = ["AcpConnection", "AcpMethods", "MethodHandler", "NotificationHandler"]

logger = logging.getLogger(__name__)

MethodHandler = Callable[["AcpConnection", dict[str, Any], RequestContext], Awaitable[Any]]
"""An ACP request handler: the connection, the params, the request's context."""
NotificationHandler = Callable[["AcpConnection", dict[str, Any]], Awaitable[None]]
"""An ACP notification handler."""


ArrivalHook = Callable[["AcpConnection", dict[str, Any]], Any]
"""Runs when a request is read, before any later message (see the peer's ``on_arrival``)."""


class AcpMethods:
    """The ACP methods a connection serves, registered once and shared by every connection.

    Handlers get the connection first; the checks every method shares (``initialize`` first, the
    caller's role) wrap them here, once, not per connection.
    """

    def __init__(self) -> None:
        self.table = MethodTable()

    def add_method(
        self,
        method: str,
        handler: MethodHandler,
        *,
        before_initialize: bool = False,
        inline: bool = False,
        on_arrival: ArrivalHook | None = None,
        answers_own_cancel: bool = False,
    ) -> None:
        """Serve ``method`` with ``handler`` (refused until ``initialize`` unless ``before_initialize``).

        ``inline``, ``on_arrival`` and ``answers_own_cancel`` are the peer's
        (:meth:`~acp_bridge.rpc.peer.JsonRpcPeer.add_method`); ``on_arrival`` gets the connection.
        """
        self.table.add_method(
            method,
            functools.partial(_call_any if before_initialize else _call_ready, method, handler),
            inline=inline,
            on_arrival=on_arrival,
            answers_own_cancel=answers_own_cancel,
        )

    def add_notification(self, method: str, handler: NotificationHandler) -> None:
        """Handle notifications of ``method`` (ignored before ``initialize``)."""
        self.table.add_notification(method, functools.partial(_notify_ready, method, handler))


class AcpConnection:
    """The agent side of ACP for one client connection."""

    def __init__(
        self,
        transport: Transport,
        *,
        host: ConnectionHost,
        sessions: SessionManager,
        config: BridgeConfig,
        connection_id: str | None = None,
        methods: AcpMethods | None = None,
        principal: Principal = ANONYMOUS,
    ):
        self.host = host
        self.principal = principal
        self.sessions = sessions
        self.connection_id = connection_id or uuid.uuid4().hex
        self.peer = JsonRpcPeer(
            transport,
            name=f"conn-{self.connection_id[:8]}",
            outbox_limit=config.outbox_limit,
            slow_client_grace=config.slow_client_grace,
            outbox_max_bytes=config.outbox_max_bytes,
            request_timeout=config.client_request_timeout,
            eof_grace=config.eof_grace,
            table=None if methods is None else methods.table,
            target=self,
        )
        self.initialized = False
        self.client_capabilities: Mapping[str, Any] = {}
        self.client_info: Mapping[str, Any] | None = None
        self.profile = Profile.STRICT
        self.extensions: ClientExtensions = NO_EXTENSIONS
        """The extension methods the client declared in ``initialize`` (see :meth:`wants`)."""
        self._attachments: dict[str, Attachment] = {}
        self._prompt_handlers: set[asyncio.Task[Any]] | None = None  # made by the first prompt

    def wants(self, method: str) -> bool:
        """Does the client want messages of ``method``? (Extension methods only when declared.)"""
        return self.extensions.wants(method)

    # --- TurnOwner ---------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection has ended."""
        return self.peer.closed

    async def request(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the peer enforces it (and sends $/cancel_request)
    ) -> Any:
        """A server→client request on this connection."""
        return await self.peer.request(method, params, timeout=timeout)

    def attachment(self, session_id: str) -> Attachment | None:
        """This connection's attachment to a session, if it opened it."""
        return self._attachments.get(session_id)

    # --- Participant -------------------------------------------------------------------------------

    def wants_extension(self, method: str) -> bool:
        """Whether the client declared the extension notification ``method`` (see :meth:`wants`)."""
        return self.extensions.wants(method)

    # --- attachments -------------------------------------------------------------------------------

    def attach(self, session: Session) -> Attachment:
        """Attach to ``session`` (replacing an earlier attachment); its gate stays closed."""
        self.detach(session.session_id)
        attachment = Attachment(
            session.session_id,
            self.profile,
            self.peer,
            on_closed=self._forget,
            extensions=self.extensions,
        )
        self._attachments[session.session_id] = attachment
        session.attach(attachment, self)
        return attachment

    def detach(self, session_id: str) -> None:
        """Stop receiving the session's messages."""
        attachment = self._attachments.pop(session_id, None)
        session = self.sessions.live(session_id)
        if attachment is not None and session is not None:
            session.detach(attachment)

    def _forget(self, attachment: Attachment) -> None:
        """The session closed under ``attachment``."""
        if self._attachments.get(attachment.session_id) is attachment:
            del self._attachments[attachment.session_id]

    def attached_session(self, params: Mapping[str, Any]) -> tuple[Session, Attachment]:
        """The session ``params`` names and this connection's attachment to it (``-32002`` if none)."""
        session_id = session_id_of(params)
        attachment = self._attachments.get(session_id)
        session = self.sessions.live(session_id)
        if attachment is None or session is None:
            raise ResourceNotFound(
                "session not open on this connection (use session/new, session/load or session/resume)",
                data={"sessionId": session_id},
            )
        return session, attachment

    # --- lifecycle ---------------------------------------------------------------------------------

    def track_prompt(self, handler: asyncio.Task[Any]) -> None:
        """Count ``handler`` among the prompts :meth:`finish_prompts` waits for."""
        handlers = self._prompt_handlers
        if handlers is None:
            handlers = self._prompt_handlers = set()
        handlers.add(handler)
        handler.add_done_callback(handlers.discard)

    async def run(self) -> None:
        """Serve the connection until it closes; its sessions live on."""
        try:
            await self.peer.run()
        finally:
            for session_id in list(self._attachments):
                self.detach(session_id)

    async def finish_prompts(self, timeout: float) -> None:  # noqa: ASYNC109 - bounded by design
        """Wait (bounded) until every prompt of this connection has been answered and sent."""
        if self._prompt_handlers:
            await asyncio.wait(set(self._prompt_handlers), timeout=timeout)
        await self.peer.drain_for(timeout)

    async def close(self, reason: CloseReason = CloseReason.GOING_AWAY) -> None:
        """Close the connection (its sessions live on)."""
        await self.peer.close(reason)


async def _call_ready(
    method: str,
    handler: MethodHandler,
    conn: AcpConnection,
    params: dict[str, Any],
    ctx: RequestContext,
) -> Any:
    if not conn.initialized:
        raise InvalidRequest("initialize must be the first request on a connection")
    check_allowed(conn.principal, method)
    return await handler(conn, params, ctx)


async def _call_any(
    method: str,
    handler: MethodHandler,
    conn: AcpConnection,
    params: dict[str, Any],
    ctx: RequestContext,
) -> Any:
    check_allowed(conn.principal, method)
    return await handler(conn, params, ctx)


async def _notify_ready(
    method: str, handler: NotificationHandler, conn: AcpConnection, params: dict[str, Any]
) -> None:
    if not conn.initialized:
        return
    if not may_notify(conn.principal, method):
        logger.debug("ignoring %s from %s (%s)", method, conn.principal.name, conn.principal.role)
        return
    await handler(conn, params)

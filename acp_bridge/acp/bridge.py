"""The ACP agent side as a whole: one backend, one event log, sessions, and any number of connections.

:class:`AcpBridge` is transport-agnostic: hand :meth:`AcpBridge.handle_connection` any
:class:`~acp_bridge.rpc.transport.Transport` (a WebSocket, stdio, an in-memory pair) and it serves ACP on
it until the transport ends. It is the :class:`~acp_bridge.acp.ports.ConnectionHost` of its
connections and the :class:`~acp_bridge.agents.base.BackendHost` of its backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping
from typing import Any

from acp_bridge._version import __version__
from acp_bridge.agents.base import CANCEL_GRACE_SECONDS, AgentBackend, SessionContext
from acp_bridge.eventlog import EventLog, Prunable
from acp_bridge.rpc.principal import ANONYMOUS, Principal
from acp_bridge.rpc.transport import CloseReason, Transport
from acp_bridge.sinks import SinkRegistry, agent_events_topic, default_registry
from acp_bridge.translate import Profile

from .config import BridgeConfig
from .connection import AcpConnection
from .context import BridgeSessionContext
from .handlers import acp_methods
from .retention import RetentionPolicy, enforce_logged, run_retention
from .sessions import SessionManager

__all__ = ["AcpBridge", "BridgeConfig"]

logger = logging.getLogger(__name__)

BACKEND_CLOSE_TIMEOUT = 10.0
"""Seconds a backend's ``aclose()`` may take at shutdown (e.g. a subprocess winding down)."""


class AcpBridge:
    """Serves ACP for one backend over any number of connections."""

    def __init__(
        self,
        backend: AgentBackend,
        log: EventLog,
        *,
        registry: SinkRegistry | None = None,
        config: BridgeConfig | None = None,
    ) -> None:
        self.backend = backend
        self.log = log
        self.registry = registry if registry is not None else default_registry
        self.config = config or BridgeConfig()
        self.connections: set[AcpConnection] = set()
        self.closing = False
        """Set when :meth:`shutdown` starts: no new turn or session may begin from then on."""
        self._sessions: SessionManager | None = None
        self.retention = RetentionPolicy(
            self.config.retain_days,
            self.config.retain_events_per_session,
            self.config.retention_interval,
        )
        """What the log keeps (checked here: a bad limit fails before anything starts)."""
        self._retention_task: asyncio.Task[None] | None = None

    @property
    def sessions(self) -> SessionManager:
        """The session manager (created on first use, inside the running event loop)."""
        if self._sessions is None:
            self._sessions = SessionManager(
                log=self.log,
                registry=self.registry,
                backend=self.backend,
                context_factory=functools.partial(BridgeSessionContext, registry=self.registry),
                permission_timeout=self.config.permission_timeout,
                context_window=self.config.context_window,
            )
        return self._sessions

    async def start(self) -> None:
        """Start the backend (it may open sessions of its own through the bridge, e.g. ``tail``)."""
        _ = self.sessions
        await self.backend.start(self)
        if self.retention.active:
            if not isinstance(self.log, Prunable):
                logger.warning("retention is set, but this event log cannot delete; ignoring it")
                return
            await enforce_logged(self.sessions, self.retention)
            self._retention_task = asyncio.create_task(
                run_retention(self.sessions, self.retention), name="retention"
            )

    # --- BackendHost -------------------------------------------------------------------------------

    def open_session(
        self, session_id: str, *, cwd: str, title: str | None = None
    ) -> SessionContext:
        """Create or restore a session on the backend's behalf (no client involved)."""
        session = self.sessions.get(session_id)
        if session is None:
            if session_id in self.sessions.index:
                raise ValueError(f"session {session_id!r} was closed")
            session = self.sessions.create(cwd, session_id=session_id, title=title)
        return session.context

    def logged_event_count(self, session_id: str) -> int:
        """How many events of the session the log holds."""
        return self.log.latest(agent_events_topic(session_id)) or 0

    # --- connections ---------------------------------------------------------------------------------

    def resolve_profile(self, client_capabilities: Mapping[str, Any]) -> Profile:
        """The profile for a client: the configured one, or for ``auto`` harn iff it advertises Harn."""
        if self.config.profile is not Profile.AUTO:
            return self.config.profile
        meta = client_capabilities.get("_meta")
        return Profile.HARN if isinstance(meta, Mapping) and "harn" in meta else Profile.STRICT

    async def handle_connection(
        self,
        transport: Transport,
        connection_id: str | None = None,
        *,
        principal: Principal = ANONYMOUS,
    ) -> None:
        """Serve ACP on ``transport`` until it ends, for ``principal`` (what its credentials
        named, decided by the transport's authentication; a controller by default)."""
        connection = AcpConnection(
            transport,
            host=self,
            sessions=self.sessions,  # created here, before any handler runs, if not yet
            config=self.config,
            connection_id=connection_id,
            principal=principal,
            methods=acp_methods(),
        )
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)

    def health(self) -> dict[str, Any]:
        """``GET /healthz``: status (``ok``, or ``degraded`` once the event log failed) and numbers."""
        live = self._sessions.sessions if self._sessions else {}
        # A log that cannot commit any more makes the bridge degraded: it still serves, but what
        # it sends is no longer persisted (load and restart would lose it).
        failure = getattr(self.log, "failure", None)
        # A shared log (Redis) also reports whether its server answers now: while it does not,
        # nothing new can be committed, so the node is degraded until it does again.
        unreachable = getattr(self.log, "connection_error", None)
        problem = failure or unreachable
        event_log: dict[str, Any] = (
            {"ok": True} if problem is None else {"ok": False, "error": str(problem)}
        )
        if self._sessions is not None and self._sessions.leases is not None:
            event_log["node"] = self._sessions.leases.node_id
            event_log["ownedSessions"] = self._sessions.owned()
        health: dict[str, Any] = {
            "status": "ok" if problem is None else "degraded",
            "eventLog": event_log,
            "version": __version__,
            "backend": self.backend.name,
            "sessions": len(live),
            "activeTurns": sum(1 for s in live.values() if s.current_turn is not None),
            "connections": len(self.connections),
        }
        # An optional backend hook: a proxied agent's process and the invalid messages it sent.
        details = getattr(self.backend, "health_details", None)
        if callable(details):
            health["details"] = {"backend": details()}
        return health

    async def shutdown(self) -> None:
        """Wind down: cancel turns, let them answer, close the backend, flush the log, close sockets.

        The order matters. Cancelled turns answer ``cancelled`` and those answers reach the wire
        while the sockets are still open; the backend closes while its sessions' sinks are still
        registered, so anything it emits on the way out is logged; every turn is over (it records
        its session's activity last) before the log is flushed for the last time; events are
        committed and sent before the clients see 1001, so a client that reconnects to the
        restarted bridge and loads finds everything it was sent. Every wait is bounded.
        """
        self.closing = True
        if self._retention_task is not None:
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention_task
        sessions = list(self._sessions.sessions.values()) if self._sessions else []
        for session in sessions:
            session.cancel()
        if self.connections:
            waits = [
                asyncio.ensure_future(c.finish_prompts(3 * CANCEL_GRACE_SECONDS))
                for c in self.connections
            ]
            _, pending = await asyncio.wait(waits, timeout=4 * CANCEL_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CANCEL_GRACE_SECONDS)
        if self._sessions is not None:
            # Turns whose connection is gone are not among the prompts above.
            await self._sessions.quiesce(3 * CANCEL_GRACE_SECONDS)
        try:
            async with asyncio.timeout(BACKEND_CLOSE_TIMEOUT):
                await self.backend.aclose()
        except TimeoutError:
            logger.error("backend aclose() did not finish within %.0f s", BACKEND_CLOSE_TIMEOUT)
        except Exception:
            logger.exception("backend aclose() failed")
        if self._sessions is not None:
            # What was emitted reaches the clients (committed first) before they see 1001.
            for session in list(self._sessions.sessions.values()):
                await self._sessions.settle(session)
            self._sessions.release()
        try:
            await self.log.aflush()
        except Exception:
            logger.exception("event log flush failed during shutdown")
        # All at once: each close may wait out the close timeout of a client that never answers.
        await asyncio.gather(*(c.close(CloseReason.GOING_AWAY) for c in list(self.connections)))

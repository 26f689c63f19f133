"""What several families of ACP methods share: error mapping, session setup blocks, updates."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from acp_bridge.agents.base import AgentBackend, BackendError
from acp_bridge.rpc.errors import InternalError, RpcError

from ..config_options import wire_options
from ..connection import AcpConnection
from ..sessions import Session

__all__ = [
    "agent_failure",
    "config_options",
    "refuse_when_closing",
    "session_setup",
    "session_update",
]

logger = logging.getLogger(__name__)


def agent_failure(exc: Exception, session_id: str, method: str) -> RpcError:
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


def refuse_when_closing(conn: AcpConnection) -> None:
    """Once the bridge shuts down, nothing new starts (a turn would run into a closed backend)."""
    if conn.host.closing:
        raise InternalError(
            "the bridge is shutting down; reconnect and session/load later",
            data={"reason": "shutting_down"},
        )


def session_setup(
    backend: AgentBackend, session: Session, client_capabilities: Mapping[str, Any]
) -> dict[str, Any]:
    """``modes`` and ``configOptions`` of a new/load/resume response, when the backend has them."""
    result: dict[str, Any] = {}
    modes = backend.modes()
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
    options = config_options(backend, session, client_capabilities)
    if options:
        result["configOptions"] = options
    return result


def config_options(
    backend: AgentBackend, session: Session, client_capabilities: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The session's config options on the wire, as this client may see them."""
    return wire_options(backend.config_options(session.context), client_capabilities)


def session_update(session_id: str, update: dict[str, Any]) -> dict[str, Any]:
    """A ``session/update`` notification carrying ``update``."""
    return {
        "jsonrpc": "2.0",
        "method": "session/update",
        "params": {"sessionId": session_id, "update": update},
    }

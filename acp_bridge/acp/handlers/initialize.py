"""``initialize``: version negotiation, the client's capabilities, the agent's; and ``logout``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from acp_bridge._version import __version__
from acp_bridge.rpc.errors import InvalidParams, InvalidRequest, MethodNotFound
from acp_bridge.rpc.peer import Reply, RequestContext
from acp_bridge.rpc.principal import ANONYMOUS
from acp_bridge.rpc.transport import CloseReason
from acp_bridge.translate import bridge_capability_block, harn_capability_block
from acp_bridge.translate.capabilities import OFFERED_EXTENSION_METHODS

from ..connection import AcpConnection, AcpMethods
from ..extensions import client_extensions
from ._common import agent_failure

__all__ = [
    "LOGOUT_DRAIN_SECONDS",
    "PROTOCOL_VERSION",
    "authenticate",
    "initialize",
    "logout",
    "register",
]

PROTOCOL_VERSION: Final = 1
LOGOUT_DRAIN_SECONDS: Final = 5.0
"""Longest ``logout`` waits for its answer to leave before the connection closes."""

logger = logging.getLogger(__name__)


def register(conn: AcpMethods) -> None:
    """Serve ``initialize`` on every connection (inline: nothing else is read before it is answered)."""
    conn.add_method("initialize", initialize, before_initialize=True, inline=True)
    conn.add_method("logout", logout)
    conn.add_method("authenticate", authenticate)


def _authenticated(conn: AcpConnection) -> bool:
    """Whether the connection presented a credential (a token named its principal)."""
    return conn.principal is not ANONYMOUS


async def logout(conn: AcpConnection, params: dict[str, Any], ctx: RequestContext) -> Any:
    """End the authenticated connection (decision 0026): answer, then close it; its sessions
    live on, and a client continues by reconnecting with a credential."""
    if not _authenticated(conn):
        raise MethodNotFound(
            "logout is not offered: this connection presented no credential",
            data={"method": "logout"},
        )

    async def close_after_answer() -> None:
        await conn.peer.drain_for(LOGOUT_DRAIN_SECONDS)
        await conn.close(CloseReason.NORMAL)

    def schedule() -> None:
        task = asyncio.get_running_loop().create_task(close_after_answer())
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    return Reply({}, then=schedule)


_closing: set[asyncio.Task[None]] = set()


async def initialize(conn: AcpConnection, params: dict[str, Any], ctx: RequestContext) -> Any:
    """Record the client's capabilities and profile; answer with the agent's."""
    if conn.initialized:
        raise InvalidRequest("initialize was already called on this connection")
    version = params.get("protocolVersion")
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= 65535:
        raise InvalidParams(
            "protocolVersion must be an integer (ACP v1 is 1)",
            data={"field": "protocolVersion"},
        )
    caps = params.get("clientCapabilities")
    client_capabilities = caps if isinstance(caps, dict) else {}
    profile = conn.host.resolve_profile(client_capabilities)
    extensions = client_extensions(client_capabilities, profile)  # may refuse the declaration
    conn.client_capabilities, conn.profile, conn.extensions = (
        client_capabilities,
        profile,
        extensions,
    )
    info = params.get("clientInfo")
    conn.client_info = info if isinstance(info, dict) else None
    conn.initialized = True
    backend = conn.host.backend
    agent = await _proxied_agent(backend)
    prompt = backend.prompt_capabilities
    capabilities: dict[str, Any] = {
        "loadSession": True,
        "promptCapabilities": {
            "image": prompt.image,
            "audio": prompt.audio,
            "embeddedContext": prompt.embedded_context,
        },
        "sessionCapabilities": {
            "list": {},
            "resume": {},
            "close": {},
            "delete": {},
            "additionalDirectories": {},
        },
        "_meta": {
            "harn": harn_capability_block(conn.profile),
            "acp_bridge": bridge_capability_block(
                conn.profile, extensions.enabled(OFFERED_EXTENSION_METHODS)
            ),
        },
    }
    if _authenticated(conn):
        capabilities["auth"] = {"logout": {}}
    title = f"acp-bridge ({backend.name})"
    agent_caps = agent.get("agentCapabilities")
    if isinstance(agent_caps, dict) and isinstance(agent_caps.get("mcpCapabilities"), dict):
        capabilities["mcpCapabilities"] = agent_caps["mcpCapabilities"]
    agent_info = agent.get("agentInfo")
    if isinstance(agent_info, dict) and isinstance(agent_info.get("name"), str):
        title = f"acp-bridge ({backend.name}: {agent_info.get('title') or agent_info['name']})"
    # ACP: the agent answers with the latest version it supports, whatever the client asked.
    return {
        "protocolVersion": PROTOCOL_VERSION,
        "agentCapabilities": capabilities,
        "authMethods": _auth_methods(agent),
        "agentInfo": {"name": "acp-bridge", "title": title, "version": __version__},
    }


def _auth_methods(agent: dict[str, Any]) -> list[Any]:
    """The proxied agent's ``authMethods`` (``authenticate`` is forwarded to it), else none."""
    methods = agent.get("authMethods")
    return [m for m in methods if isinstance(m, dict)] if isinstance(methods, list) else []


async def authenticate(conn: AcpConnection, params: dict[str, Any], ctx: RequestContext) -> Any:
    """Forward ``authenticate`` to a proxied agent (backend hook ``authenticate(params)``).

    The agent process serves every session and client, so once it accepted a method it stays
    authenticated for all of them. Backends without the hook offer no auth methods: -32601
    (decision 0026: the bridge's own credentials are the transport's tokens).
    """
    hook = getattr(conn.host.backend, "authenticate", None)
    if hook is None:
        raise MethodNotFound(
            "authenticate is not offered: this agent has no auth methods",
            data={"method": "authenticate"},
        )
    try:
        result = await hook(params)
    except Exception as exc:
        raise agent_failure(exc, "", "authenticate") from None
    return result if isinstance(result, dict) else {}


async def _proxied_agent(backend: Any) -> dict[str, Any]:
    """The ``initialize`` result of the agent behind a proxying backend (``acp:``), or ``{}``.

    An optional backend hook, ``agent_initialize()``: the proxied agent's prompt capabilities
    (which the backend adopts), MCP capabilities and name shape this answer. Loading, resuming,
    listing, closing and deleting sessions are the bridge's own and advertised whatever the agent
    says. An agent that cannot start is logged; the bridge still answers, and sessions report the
    error.
    """
    hook = getattr(backend, "agent_initialize", None)
    if hook is None:
        return {}
    try:
        result = await hook()
    except Exception as exc:
        logger.warning("the agent could not be initialized: %s", exc)
        return {}
    return dict(result) if isinstance(result, dict) else {}

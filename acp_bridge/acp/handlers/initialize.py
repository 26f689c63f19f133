"""``initialize``: version negotiation, the client's capabilities, the agent's."""

from __future__ import annotations

from typing import Any, Final

from acp_bridge._version import __version__
from acp_bridge.rpc.errors import InvalidParams, InvalidRequest
from acp_bridge.rpc.peer import RequestContext
from acp_bridge.translate import bridge_capability_block, harn_capability_block
from acp_bridge.translate.capabilities import OFFERED_EXTENSION_METHODS

from ..connection import AcpConnection, AcpMethods
from ..extensions import client_extensions

__all__ = ["PROTOCOL_VERSION", "initialize", "register"]

PROTOCOL_VERSION: Final = 1


def register(conn: AcpMethods) -> None:
    """Serve ``initialize`` on every connection (inline: nothing else is read before it is answered)."""
    conn.add_method("initialize", initialize, before_initialize=True, inline=True)


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
            "harn": harn_capability_block(conn.profile),
            "acp_bridge": bridge_capability_block(
                conn.profile, extensions.enabled(OFFERED_EXTENSION_METHODS)
            ),
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

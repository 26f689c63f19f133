"""The narrow interfaces between the pieces of the ACP layer.

Sessions, connections and the bridge need a little of each other; each side depends on one of these
protocols instead of on the other's class, so no module of ``acp/`` imports another in a circle.

* :class:`TurnOwner`: what a running turn (and the backend's session context) needs from the
  connection that sent its ``session/prompt``: its capabilities, its profile, and a way to ask it.
* :class:`Participant`: a turn owner seen from its session: who it is (principal, ``clientInfo``)
  and which extension notifications it wants. Permission arbitration and presence work on these.
* :class:`ConnectionHost`: what a connection needs from the bridge beyond the session manager.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from acp_bridge.agents.base import AgentBackend
from acp_bridge.rpc.principal import Principal
from acp_bridge.translate import Profile

from .delivery import Attachment

__all__ = ["ConnectionHost", "Participant", "TurnOwner"]


class TurnOwner(Protocol):
    """The client connection driving a turn; server→client requests of the turn go to it."""

    @property
    def profile(self) -> Profile:
        """The wire profile of the connection."""

    @property
    def client_capabilities(self) -> Mapping[str, Any]:
        """The ``clientCapabilities`` the client sent in ``initialize``."""

    @property
    def closed(self) -> bool:
        """True once the connection is gone (nobody can answer a request any more)."""

    def attachment(self, session_id: str) -> Attachment | None:
        """The connection's attachment to the session, if it has one."""

    async def request(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the peer enforces it (and sends $/cancel_request)
    ) -> Any:
        """Send a request to the client and return its result (raises ``RpcError``/``PeerClosed``)."""


class Participant(TurnOwner, Protocol):
    """A connection attached to a session, as the session's arbiter and presence see it."""

    @property
    def connection_id(self) -> str:
        """The connection's id (``Acp-Connection-Id`` over WebSocket)."""

    @property
    def principal(self) -> Principal:
        """Who its credentials named, and its role."""

    @property
    def client_info(self) -> Mapping[str, Any] | None:
        """The ``clientInfo`` it sent in ``initialize``, if any."""

    def wants_extension(self, method: str) -> bool:
        """Whether it asked for the extension notification ``method`` (``_acp_bridge/…``)."""


class ConnectionHost(Protocol):
    """What a connection needs from the bridge that serves it."""

    @property
    def backend(self) -> AgentBackend:
        """The agent backend behind every session."""

    @property
    def closing(self) -> bool:
        """True once the bridge is shutting down: nothing new may start."""

    def resolve_profile(self, client_capabilities: Mapping[str, Any]) -> Profile:
        """The profile for a client that sent these capabilities."""

"""Plain HTTP pages mounted beside the WebSocket endpoint (the inspector), as the transport sees them.

The transport authenticates and checks ``Host`` and origin; what a path means is the mounted app's
business. :class:`MountedApp` is the narrow interface: a read-only ``handle`` for GET requests, and
a ``stream`` handler for the one WebSocket path the app owns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from acp_bridge.rpc.principal import Principal
from acp_bridge.rpc.transport import Transport

__all__ = ["HttpRequest", "HttpResponse", "MountedApp"]


@dataclass(frozen=True)
class HttpRequest:
    """A GET (or HEAD) request for a path under the app's prefix."""

    path: str
    """The path as sent (percent-encoded), without the query."""
    query: Mapping[str, str]
    """The query's parameters (the last value of each)."""
    principal: Principal | None
    """Who the request's credentials name; ``None`` when a token is required and none was valid."""


@dataclass(frozen=True)
class HttpResponse:
    """What the app answers; the transport adds the security headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


class MountedApp(Protocol):
    """A read-only HTTP app served under :attr:`prefix`, with one WebSocket path for live updates."""

    @property
    def prefix(self) -> str:
        """The path the app owns, and everything below it (``/inspect``)."""

    @property
    def stream_path(self) -> str:
        """The path of its WebSocket (authenticated like the ACP endpoint)."""

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one GET request."""

    async def stream(self, transport: Transport, principal: Principal) -> None:
        """Serve one accepted WebSocket until it ends."""

"""Tunables of the ACP layer."""

from __future__ import annotations

from dataclasses import dataclass

from acp_bridge.rpc.transport import DEFAULT_EOF_GRACE
from acp_bridge.translate import Profile

__all__ = ["BridgeConfig"]


@dataclass(frozen=True)
class BridgeConfig:
    """Tunables of the ACP layer."""

    profile: Profile = Profile.AUTO
    """``auto``: the harn profile for clients that advertise ``clientCapabilities._meta.harn``."""
    outbox_limit: int = 8192
    """Messages a client may fall behind before the slow-client clock starts."""
    slow_client_grace: float = 5.0
    """Seconds a client may stay more than ``outbox_limit`` messages behind before it is disconnected
    with 1013 (it can come back with ``session/load``)."""
    outbox_max_bytes: int = 64 * 1024 * 1024
    """Bytes that may wait for one client at once; past this it is disconnected immediately."""
    client_request_timeout: float = 120.0
    """How long file and terminal requests to the client may take."""
    eof_grace: float = DEFAULT_EOF_GRACE
    """Seconds a stdio client's requests may take to be answered after its input ended."""
    permission_timeout: float = 300.0
    """Seconds a permission request waits for a controller to attach while none is attached; then
    it is answered ``cancelled``."""

    def __post_init__(self) -> None:
        if not self.permission_timeout >= 0:
            raise ValueError(
                f"the permission timeout must be 0 or more seconds, not {self.permission_timeout}"
            )

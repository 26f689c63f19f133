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

    retain_days: float | None = None
    """Sessions not updated for this many days are deleted, with their events (``None``: kept)."""
    retain_events_per_session: int | None = None
    """At most this many events are kept per session, the newest (``None``: all)."""
    retention_interval: float = 3600.0
    """Seconds between two retention runs (the first runs at start)."""
    context_window: int | None = None
    """The agent model's context window in tokens, if known: ``usage_update`` (which needs it) is
    sent for events that count tokens only when it is (decision 0027)."""

    def __post_init__(self) -> None:
        if self.context_window is not None and self.context_window <= 0:
            raise ValueError(
                f"the context window must be a positive number of tokens, not {self.context_window}"
            )
        if not self.permission_timeout >= 0:
            raise ValueError(
                f"the permission timeout must be 0 or more seconds, not {self.permission_timeout}"
            )

"""What each role may ask of the bridge (decision 0010).

A controller may call every method. An observer may only look: the methods in
:data:`OBSERVER_METHODS`; anything else answers :class:`Forbidden` (``-32011``, ``data.reason:
"forbidden"``), and notifications it may not send (``session/cancel``) are ignored. The list is an
allow-list on purpose: a method added later is a controller's until it is added here.
"""

from __future__ import annotations

from typing import Final

from acp_bridge.rpc.errors import RpcError
from acp_bridge.rpc.principal import Principal

__all__ = ["FORBIDDEN_CODE", "OBSERVER_METHODS", "Forbidden", "check_allowed", "may_notify"]

FORBIDDEN_CODE: Final = -32011
"""The code Harn's WebSocket hub uses for a role that may not call a method."""

OBSERVER_METHODS: Final = frozenset(
    {"initialize", "authenticate", "logout", "session/list", "session/load", "session/resume"}
)
"""The requests an observer may send."""


class Forbidden(RpcError):
    """The connection's role may not call this method."""

    code = FORBIDDEN_CODE
    default_message = "forbidden"


def check_allowed(principal: Principal, method: str) -> None:
    """Raise :class:`Forbidden` unless ``principal`` may call ``method``."""
    if principal.controls or method in OBSERVER_METHODS:
        return
    raise Forbidden(
        f"{method} is not allowed for the {principal.role.value} role of {principal.name!r}",
        data={"reason": "forbidden", "method": method, "role": principal.role.value},
    )


def may_notify(principal: Principal, method: str) -> bool:
    """Whether a notification ``method`` from ``principal`` is acted on (an observer's
    ``session/cancel`` is not: it cannot stop a controller's turn)."""
    return principal.controls or method in OBSERVER_METHODS

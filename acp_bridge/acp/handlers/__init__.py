"""The ACP methods of the agent side, one module per family, the way pygls groups features.

Each family's ``register(conn)`` serves its methods on an
:class:`~acp_bridge.acp.connection.AcpConnection`; handlers are plain functions of
``(connection, params, request context)``.
"""

from ..connection import AcpConnection
from . import initialize, prompt, session_config, sessions
from .initialize import PROTOCOL_VERSION

__all__ = ["FAMILIES", "PROTOCOL_VERSION", "register_all"]

FAMILIES = (initialize, sessions, prompt, session_config)
"""Every family of methods, in the order they are registered."""


def register_all(conn: AcpConnection) -> None:
    """Serve every ACP method on ``conn``."""
    for family in FAMILIES:
        family.register(conn)

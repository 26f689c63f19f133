"""The ACP methods of the agent side, one module per family, the way pygls groups features.

Each family's ``register(methods)`` adds its methods to the :class:`~acp_bridge.acp.connection.AcpMethods`
table every connection shares (built once, :func:`acp_methods`); handlers are plain functions of
``(connection, params, request context)``.
"""

import functools

from ..connection import AcpMethods
from . import initialize, prompt, session_config, sessions
from .initialize import PROTOCOL_VERSION

__all__ = ["FAMILIES", "PROTOCOL_VERSION", "acp_methods", "register_all"]

FAMILIES = (initialize, sessions, prompt, session_config)
"""Every family of methods, in the order they are registered."""


def register_all(methods: AcpMethods) -> None:
    """Add every ACP method to ``methods``."""
    for family in FAMILIES:
        family.register(methods)


@functools.cache
def acp_methods() -> AcpMethods:
    """The ACP methods, registered once per process and shared by every connection."""
    methods = AcpMethods()
    register_all(methods)
    return methods

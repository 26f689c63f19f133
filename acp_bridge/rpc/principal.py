"""Who is on the other end of a connection: the principal its credentials name, and its role.

The transport layer decides it (from the bearer token, before the upgrade) and hands it up with the
connection; the protocol layers only read it. Roles are access levels, not protocol semantics: a
``controller`` may do everything, an ``observer`` may only watch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ANONYMOUS", "Principal", "Role"]


class Role(enum.StrEnum):
    """What a principal may do."""

    CONTROLLER = "controller"
    """Everything a client may do: open sessions, prompt, cancel, answer permission requests."""
    OBSERVER = "observer"
    """Watch only: list and load sessions and receive their updates; never asked anything."""


@dataclass(frozen=True)
class Principal:
    """An authenticated identity: the name its token has (never the secret) and its role."""

    name: str
    role: Role = Role.CONTROLLER

    @property
    def controls(self) -> bool:
        """True for a controller."""
        return self.role is Role.CONTROLLER

    def describe(self) -> dict[str, str]:
        """``{"name", "role"}`` as shown in presence and audit records."""
        return {"name": self.name, "role": self.role.value}


ANONYMOUS = Principal("anonymous", Role.CONTROLLER)
"""A connection no credential was asked of (no token configured, stdio): a controller."""

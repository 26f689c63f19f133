"""Translation of a proxied ACP agent's stored updates (:class:`SessionAcpUpdate`) to wire messages.

The update is ACP already: it becomes a ``session/update`` for its session, unchanged but for the
replay marker. A strict client gets it only if it is valid for the schema (an update the agent got
wrong would break a strict client's parser, and ACP has no way to repair an unknown shape); the
harn profile gets it as the agent sent it. Pure: the stored update is never modified.
"""

from __future__ import annotations

from typing import Any

from acp_bridge.events.session_event import SessionAcpUpdate

from .schema_check import session_update_problem
from .wire import Message, Profile, mark_replayed, session_update

__all__ = ["translate_proxied"]


def _fresh(update: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``update`` that stamping and replay marks may write into (its ``_meta`` too)."""
    fresh = dict(update)
    meta = fresh.get("_meta")
    if isinstance(meta, dict):
        fresh["_meta"] = {k: dict(v) if isinstance(v, dict) else v for k, v in meta.items()}
    return fresh


def translate_proxied(
    event: SessionAcpUpdate,
    *,
    profile: Profile = Profile.STRICT,
    replay: bool = False,
    valid: bool | None = None,
) -> list[Message]:
    """The ``session/update`` for ``event`` in ``profile`` (none for an invalid one in strict).

    ``valid`` is the result of an earlier schema check of the same update, if the caller has one
    (else the event's own :attr:`~SessionAcpUpdate.valid`); otherwise the update is checked here
    (strict profile only).
    """
    if profile is not Profile.HARN:
        if valid is None:
            valid = event.valid
        if valid is None:
            valid = session_update_problem(event.update) is None
        if not valid:
            return []
    message = session_update(event.session_id, _fresh(event.update))
    if replay:
        mark_replayed(message, profile)
    return [message]

"""Presence: which clients are attached to a session, and telling the others when that changes.

``session/list`` items and the ``session/load``/``resume`` answers carry the attached clients under
``_meta.acp_bridge.clients`` (token name, role, ``clientInfo``, connection id). A client that asked
for the ``_acp_bridge/presence`` extension (see :meth:`Participant.wants_extension`) is sent
``_acp_bridge/presence {sessionId, state: "attached" | "detached", client}`` when another client
attaches to or leaves a session it has open.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from acp_bridge.translate.capabilities import PRESENCE_METHOD

from .delivery import Attachment
from .ports import Participant

__all__ = ["PRESENCE_METHOD", "announce", "client_entry", "clients_meta"]


def client_entry(participant: Participant) -> dict[str, Any]:
    """One attached client as presence shows it (never a secret: the token's name only)."""
    entry: dict[str, Any] = {
        "connectionId": participant.connection_id,
        **participant.principal.describe(),
    }
    if participant.client_info is not None:
        entry["clientInfo"] = dict(participant.client_info)
    return entry


def clients_meta(participants: Iterable[Participant]) -> dict[str, Any]:
    """The ``_meta.acp_bridge`` block naming ``participants``."""
    return {"clients": [client_entry(p) for p in participants if not p.closed]}


def announce(
    session_id: str,
    subject: Participant,
    state: str,
    audience: Iterable[tuple[Attachment, Participant]],
) -> None:
    """Tell every participant of ``audience`` but ``subject`` that wants it that ``subject`` came
    or went (through its attachment, so never before that client's own session response)."""
    message = None
    for attachment, participant in audience:
        if participant is subject or participant.closed:
            continue
        if not participant.wants_extension(PRESENCE_METHOD):
            continue
        if message is None:
            message = {
                "jsonrpc": "2.0",
                "method": PRESENCE_METHOD,
                "params": {
                    "sessionId": session_id,
                    "state": state,
                    "client": client_entry(subject),
                },
            }
        attachment.deliver(message)

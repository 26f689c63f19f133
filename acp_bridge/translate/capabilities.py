"""The ``agentCapabilities._meta`` blocks: ``harn`` (generated from the translation table) and ``acp_bridge``.

Harn advertises its lifecycle extensions under ``agentCapabilities._meta.harn`` (harn#820). The lists here
are computed from :data:`acp_bridge.translate.harn.ROWS`, so a profile advertises exactly the non-standard
update names and ``_harn/agentEvent`` kinds it can emit (Harn's own lists drifted; ours cannot).

``agentCapabilities._meta.acp_bridge`` describes what the bridge adds on top: where event ids are, the
``lastAckedEventId`` resume point of ``session/load``, and the ``_acp_bridge/runtimeEvent`` extension of
the run-style runtime dialect, and which extension methods the connection will receive: a client
gets an extension notification only when it declared it (``EXTENSION_DECLARATION_FIELD``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from .harn import CONTENT_EXTENSION_FIELDS, ROWS, TOOL_LIFECYCLE_EXTENSION_FIELDS, Route
from .runtime import RUNTIME_EVENT_KINDS, RUNTIME_EVENT_METHOD
from .wire import HARN_AGENT_EVENT_METHOD, SESSION_UPDATE_METHOD, Profile

__all__ = [
    "ACP_SCHEMA_COMPATIBILITY",
    "EXTENSION_DECLARATION_FIELD",
    "OFFERED_EXTENSION_METHODS",
    "PRESENCE_METHOD",
    "agent_event_kinds",
    "bridge_capability_block",
    "harn_capability_block",
    "session_update_extensions",
]

ACP_SCHEMA_COMPATIBILITY: Final = (
    "agentclientprotocol/agent-client-protocol schema v1 (schema-v1.21.0)"
)
AGENT_EVENT_SCHEMA: Final = "https://harnlang.com/spec/harn-extensions/agent-event/v1"
EXTENSION_CONTRACT: Final = "https://harnlang.com/spec/harn-extensions/v1"
EXTENSION_DECLARATION_FIELD: Final = "clientCapabilities._meta.acp_bridge.extensions"
"""Where a client lists the extension methods it wants to receive (names, or ``"namespace/*"``)."""
PRESENCE_METHOD: Final = "_acp_bridge/presence"
"""Which clients come and go on a session the client has open (sent only to those that declare it)."""
OFFERED_EXTENSION_METHODS: Final = (HARN_AGENT_EVENT_METHOD, RUNTIME_EVENT_METHOD, PRESENCE_METHOD)
"""Every extension notification the bridge can send."""


def _routes(profile: Profile) -> list[Route]:
    routes: list[Route] = []
    for row in ROWS.values():
        routes.extend(row.harn if profile is Profile.HARN else row.strict)
    return routes


def session_update_extensions(profile: Profile | str) -> list[str]:
    """The non-standard ``sessionUpdate`` names ``profile`` can emit (none for strict)."""
    profile = Profile(profile)
    return sorted(
        {r.name for r in _routes(profile) if r.method == SESSION_UPDATE_METHOD and not r.standard}
    )


def agent_event_kinds(profile: Profile | str) -> list[str]:
    """The ``_harn/agentEvent`` kinds ``profile`` can emit for known events.

    Unknown events are forwarded with their own ``type`` as kind, so this list is open-ended on purpose:
    the block says so in ``forwardsUnknownKinds``.
    """
    profile = Profile(profile)
    return sorted({r.name for r in _routes(profile) if r.method == HARN_AGENT_EVENT_METHOD})


def harn_capability_block(profile: Profile | str) -> dict[str, Any]:
    """The value of ``agentCapabilities._meta.harn`` for a connection speaking ``profile``."""
    profile = Profile(profile)
    return {
        "profile": profile.value,
        "schemaCompatibility": ACP_SCHEMA_COMPATIBILITY,
        "sessionUpdateExtensions": session_update_extensions(profile),
        "toolLifecycleExtensionFields": list(TOOL_LIFECYCLE_EXTENSION_FIELDS),
        "contentExtensionFields": list(CONTENT_EXTENSION_FIELDS) if profile is Profile.HARN else [],
        "extensionMethods": {
            HARN_AGENT_EVENT_METHOD: {
                "description": "Agent-loop events that have no canonical ACP session/update mapping.",
                "kinds": agent_event_kinds(profile),
                "forwardsUnknownKinds": True,
                "schema": AGENT_EVENT_SCHEMA,
            }
        },
        "extensionContract": EXTENSION_CONTRACT,
    }


def bridge_capability_block(
    profile: Profile | str, enabled_extensions: Sequence[str] = ()
) -> dict[str, Any]:
    """The value of ``agentCapabilities._meta.acp_bridge`` for a connection speaking ``profile``.

    ``enabled_extensions`` are the extension methods this connection declared (and so will receive).
    """
    profile = Profile(profile)
    return {
        "eventIdField": "_harn.eventId" if profile is Profile.HARN else "params._meta.harn.eventId",
        "sessionLoad": {
            "lastAckedEventId": True,
            "epoch": True,
            "resultFields": ["_meta.harn.replayedEvents", "_meta.harn.lastEventId"],
            "epochResetField": "_meta.harn.epochReset",
            # Runs of text chunks replayed as one update per message (stamped with the run's last
            # event id), or every event as it was sent; the answer says which in _meta.harn.replay.
            "replayModes": ["exact", "compact"],
            "replayModeParam": "_meta.acp_bridge.replay",
            "defaultReplayMode": "exact" if profile is Profile.HARN else "compact",
        },
        # Every session/new, load and resume answer names the session's epoch: event ids are
        # comparable only within one (a recreated log numbers a session from 1 again).
        "epochField": "_meta.harn.epoch",
        "promptResultFields": ["_meta.harn.persistenceError"],
        "extensionMethods": {
            RUNTIME_EVENT_METHOD: {
                "description": "Run-style runtime events with no ACP session/update mapping.",
                "kinds": list(RUNTIME_EVENT_KINDS),
                "forwardsUnknownKinds": True,
            }
        },
        "extensions": {
            "offered": list(OFFERED_EXTENSION_METHODS),
            "declaredIn": EXTENSION_DECLARATION_FIELD,
            "enabled": list(enabled_extensions),
        },
    }

"""JSON-RPC message shapes the translator builds, and how they are encoded for the wire.

Messages are plain ``dict``s (the hot path builds dicts and never validates per message). They share
nested opaque values with the event they came from, so treat them as read-only once built.
"""

from __future__ import annotations

import enum
from typing import Any, Final

import orjson

__all__ = [
    "HARN_AGENT_EVENT_METHOD",
    "SESSION_UPDATE_METHOD",
    "Message",
    "Profile",
    "agent_event",
    "encode_message",
    "mark_replayed",
    "merge_harn_meta",
    "session_update",
    "stamp_event_id",
]

SESSION_UPDATE_METHOD: Final = "session/update"
HARN_AGENT_EVENT_METHOD: Final = "_harn/agentEvent"

Message = dict[str, Any]
"""A JSON-RPC 2.0 notification as a plain dict."""


class Profile(enum.StrEnum):
    """Which wire contract to speak.

    ``harn`` reproduces Harn's adapter exactly; ``strict`` is valid ACP v1 for every client (see
    ``docs/decisions/0002-strict-profile-mapping.md``). ``auto`` is resolved per connection by the server.
    """

    HARN = "harn"
    STRICT = "strict"
    AUTO = "auto"


def session_update(session_id: str, update: dict[str, Any]) -> Message:
    """A ``session/update`` notification."""
    return {
        "jsonrpc": "2.0",
        "method": SESSION_UPDATE_METHOD,
        "params": {"sessionId": session_id, "update": update},
    }


def agent_event(session_id: str, kind: str, payload: dict[str, Any]) -> Message:
    """A ``_harn/agentEvent`` notification; ``sessionId`` and ``kind`` win over payload keys (as in Harn)."""
    payload["sessionId"] = session_id
    payload["kind"] = kind
    return {"jsonrpc": "2.0", "method": HARN_AGENT_EVENT_METHOD, "params": payload}


def merge_harn_meta(target: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Merge ``fields`` into ``target["_meta"]["harn"]``; a no-op when ``fields`` is empty."""
    if fields:
        meta = target.get("_meta")
        if not isinstance(meta, dict):
            target["_meta"] = {"harn": fields}
        else:
            harn = meta.get("harn")
            if isinstance(harn, dict):
                harn.update(fields)
            else:
                meta["harn"] = fields
    return target


def mark_replayed(message: Message, profile: Profile) -> Message:
    """Add the replay markers: ``_meta.harn.replayed`` on updates, ``params.replayed`` on extensions.

    The harn profile also adds Harn's custom root member ``"_harn": {"replayed": true}``.
    """
    params = message["params"]
    if message["method"] == SESSION_UPDATE_METHOD:
        merge_harn_meta(params["update"], {"replayed": True})
    else:
        params["replayed"] = True
    if profile is Profile.HARN:
        message["_harn"] = {"replayed": True}
    return message


def stamp_event_id(message: Message, profile: Profile, session_id: str, event_id: int) -> Message:
    """Put the event-log id on a message (in place) the way ``profile`` carries it."""
    if profile is Profile.HARN:
        annotation = message.get("_harn")
        replayed = bool(annotation.get("replayed")) if isinstance(annotation, dict) else False
        message["_harn"] = {"eventId": event_id, "sessionId": session_id, "replayed": replayed}
    else:
        params = message["params"]
        meta = params.get("_meta")
        if not isinstance(meta, dict):
            params["_meta"] = {"harn": {"eventId": event_id}}
        else:
            meta.setdefault("harn", {})["eventId"] = event_id
    return message


_SORTED: Final = orjson.OPT_SORT_KEYS


def encode_message(message: Message, profile: Profile = Profile.STRICT) -> bytes:
    """Compact UTF-8 JSON for one message.

    Harn's ``serde_json`` is built without ``preserve_order``, so its keys come out sorted at every
    level; the harn profile sorts too, to be byte-identical.
    """
    if profile is Profile.HARN:
        return orjson.dumps(message, option=_SORTED)
    return orjson.dumps(message)

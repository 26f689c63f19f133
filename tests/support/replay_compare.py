"""What a compacted replay should look like, worked out from the live stream a client saw.

Written from the rule, not from the implementation: consecutive ``agent_message_chunk`` (or
``agent_thought_chunk``) updates of one session with text content become one update whose text is
theirs joined and whose other fields (event id included) are the last one's; consecutive
``tool_call_update`` updates of one tool call become one update holding every field any of them set
(the later one winning, ``_meta.harn`` field by field, its ``TRANSIENT`` fields from the last
one only), with the last one's event id.
"""

from __future__ import annotations

import copy
from typing import Any

MERGED = ("agent_message_chunk", "agent_thought_chunk")
TRANSIENT = frozenset({"parsing", "rawInputPartial", "error", "errorCategory"})
"""``_meta.harn`` fields of a tool call update that a merged update takes from the last one only."""
EXACT = {"_meta": {"acp_bridge": {"replay": "exact"}}}
"""``session/load`` params that ask for every event as it was sent."""


def _chunk_kind(message: dict[str, Any]) -> str | None:
    if message.get("method") != "session/update":
        return None
    update = message["params"]["update"]
    kind = update.get("sessionUpdate")
    content = update.get("content")
    if kind in MERGED and isinstance(content, dict) and content.get("type") == "text":
        return str(kind)
    return None


def compact_stream(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with each run of chunks merged into its last message."""
    out: list[dict[str, Any]] = []
    run_kind: str | None = None
    run_session: str | None = None
    for message in messages:
        kind = _chunk_kind(message)
        session = message.get("params", {}).get("sessionId")
        call = _tool_update_of(message)
        if call is not None and out and _tool_update_of(out[-1]) == call:
            merged = copy.deepcopy(message)
            merged["params"]["update"] = overlay_update(
                out[-1]["params"]["update"], message["params"]["update"]
            )
            out[-1] = merged
            run_kind = None
            continue
        if kind is not None and kind == run_kind and session == run_session:
            text = out[-1]["params"]["update"]["content"]["text"]
            merged = copy.deepcopy(message)
            merged["params"]["update"]["content"]["text"] = text + _text(message)
            out[-1] = merged
            continue
        out.append(message)
        run_kind, run_session = kind, session
    return out


def _text(message: dict[str, Any]) -> str:
    text: str = message["params"]["update"]["content"]["text"]
    return text


def _tool_update_of(message: dict[str, Any]) -> tuple[Any, Any] | None:
    if message.get("method") != "session/update":
        return None
    update = message["params"]["update"]
    if update.get("sessionUpdate") != "tool_call_update":
        return None
    return (message["params"].get("sessionId"), update.get("toolCallId"))


def overlay_update(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """One ``tool_call_update`` saying what ``earlier`` then ``later`` said."""
    merged = {**copy.deepcopy(earlier), **copy.deepcopy(later)}
    meta_a, meta_b = earlier.get("_meta") or {}, later.get("_meta") or {}
    if meta_a or meta_b:
        meta = {k: v for k, v in {**meta_a, **meta_b}.items() if k != "harn"}
        # What held at one moment only (still parsing, an error recovered from) is the last's.
        harn_a = {k: v for k, v in (meta_a.get("harn") or {}).items() if k not in TRANSIENT}
        harn = {**harn_a, **(meta_b.get("harn") or {})}
        if harn:
            meta["harn"] = copy.deepcopy(harn)
        if meta:
            merged["_meta"] = meta
        else:
            merged.pop("_meta", None)
    return merged

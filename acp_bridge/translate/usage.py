"""ACP ``usage_update`` from the token counts agent events carry (decision 0027). Pure.

ACP's ``UsageUpdate`` needs ``used`` (tokens in context) and ``size`` (the context window). No event
vocabulary reports the window reliably, so ``size`` is the window the event names (Harn's
``iteration_info.context_window``) or else the one the bridge was told (``--context-window``); with
neither, no ``usage_update`` is sent (the counts still go out as extension notifications).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .wire import Message, session_update

__all__ = ["USAGE_UPDATE", "context_used", "usage_update"]

USAGE_UPDATE: Final = "usage_update"


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def context_used(usage: Mapping[str, Any]) -> int | None:
    """Tokens in context after one model call: what it read plus what it wrote.

    ``total_tokens`` when given (else input + output), plus Anthropic-style cache tokens
    (``cache_creation_input_tokens``, ``cache_read_input_tokens``), which are counted apart from
    the input; OpenAI's ``cached_input_tokens`` is part of the input already and is not added.
    """
    total = _count(usage.get("total_tokens"))
    if total is None:
        read, wrote = _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))
        if read is None or wrote is None:
            return None
        total = read + wrote
    for cache in ("cache_creation_input_tokens", "cache_read_input_tokens"):
        total += _count(usage.get(cache)) or 0
    return total


def usage_update(
    session_id: str, used: int | None, size: Any, meta: dict[str, Any] | None = None
) -> list[Message]:
    """``[session/update usage_update]``, or ``[]`` when ``used`` or a valid ``size`` is missing."""
    window = _count(size)
    if used is None or window is None or window == 0:
        return []
    update: dict[str, Any] = {"sessionUpdate": USAGE_UPDATE, "used": used, "size": window}
    if meta:
        update["_meta"] = meta
    return [session_update(session_id, update)]

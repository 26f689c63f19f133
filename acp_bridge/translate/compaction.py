"""Compacted replay: consecutive text chunks of a history merged into one event per message.

A long agent session is mostly chunks (a streamed reply is hundreds of them), and a client that loads
the session shows each message whole anyway. :class:`ReplayCompactor` reads the history's raw events
(event-log record kind and decoded JSON, before any model is built) and merges every run of
consecutive chunks that belong together into one event whose text is theirs joined, so replay decodes,
translates and sends one event per message instead of one per chunk. Each event it gives back carries
the id of the *last* event it covers: a client that acknowledges it has seen everything up to there,
so resume cursors stay exact.

A merged run stops growing at :data:`MAX_MERGED_CHARS` characters and the next chunk starts a new one,
so no replayed message is larger than a client's frame limit would allow (a flood of chunks would
otherwise become one message of megabytes).

What merges: Harn ``agent_message_chunk`` runs and ``agent_thought_chunk`` runs (the same session,
nothing but ``type``/``session_id``/``content``), runtime ``TextDelta`` runs of one run (the merged
event keeps the last chunk's timestamp), and runs of consecutive Harn ``tool_call_update`` events of one
tool call, replayed as one update with the call's final state (each field as the last update that set
it; transient ones — ``parsing``, ``raw_input_partial``, ``error`` — only from the last). A ``tool_call`` itself is never merged: a client must see the call before its update. Anything
else passes through unchanged and ends a run.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

__all__ = ["MAX_MERGED_CHARS", "Compacted", "ReplayCompactor"]

Compacted: TypeAlias = tuple[int, str, Any]
"""``(id of the last event covered, record kind, raw event JSON)``."""

MAX_MERGED_CHARS: Final = 32 * 1024
"""Most characters of text one merged event carries."""

_NOTHING: Final[tuple[Compacted, ...]] = ()
_HARN_CHUNKS: Final = frozenset({"agent_message_chunk", "agent_thought_chunk"})
_HARN_KEYS: Final = (frozenset({"type", "content"}), frozenset({"type", "session_id", "content"}))
_TEXT_DELTA: Final = "runtime.TextDelta"
_TOOL_UPDATE: Final = "tool_call_update"


def _update_key(kind: str, raw: Any) -> tuple[Any, ...] | None:
    """What consecutive tool call updates must share to be replayed as one: the same call."""
    if kind == _TOOL_UPDATE and type(raw) is dict and type(raw.get("tool_call_id")) is str:
        return (kind, raw.get("session_id"), raw["tool_call_id"])
    return None


_TRANSIENT: Final = frozenset({"parsing", "raw_input_partial", "error", "error_category"})
"""Fields that describe one moment of a call (still parsing, a partial input, an error the call
recovered from): the final state has them only if the last update says them."""


def _overlay(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """A tool call update that says what ``earlier`` then ``later`` said: a field ``later`` sets
    (not ``None``) wins, one only ``earlier`` set stays, unless it is transient."""
    kept = {k: v for k, v in earlier.items() if k not in _TRANSIENT}
    return {**kept, **{k: v for k, v in later.items() if v is not None}}


def _run_key(kind: str, raw: Any) -> tuple[Any, ...] | None:
    """What a chunk must share with its neighbours to merge with them; ``None`` if it can't merge."""
    if type(raw) is not dict:
        return None
    if kind in _HARN_CHUNKS:
        if raw.keys() in _HARN_KEYS and type(raw["content"]) is str:
            return (kind, raw.get("session_id"))
        return None
    if kind == _TEXT_DELTA:
        runtime = raw.get("runtime")
        inner = runtime.get("TextDelta") if type(runtime) is dict and len(runtime) == 1 else None
        if type(inner) is dict and type(inner.get("delta")) is str:
            return (kind, raw.get("session_id"), frozenset(inner), inner.get("run_id"))
    return None


def _text_of(kind: str, raw: dict[str, Any]) -> str:
    text: str = raw["content"] if kind in _HARN_CHUNKS else raw["runtime"]["TextDelta"]["delta"]
    return text


def _with_text(kind: str, raw: dict[str, Any], text: str) -> dict[str, Any]:
    if kind in _HARN_CHUNKS:
        return {**raw, "content": text}
    inner = raw["runtime"]["TextDelta"]
    return {**raw, "runtime": {"TextDelta": {**inner, "delta": text}}}


class ReplayCompactor:
    """Feed it a history's events in id order; it gives back the compacted events, in order.

    Call :meth:`finish` after the last event to get the run still open.
    """

    __slots__ = ("_key", "_kind", "_last_id", "_last_raw", "_parts", "_size")

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._kind = ""
        self._last_id = 0
        self._last_raw: dict[str, Any] = {}
        self._parts: list[str] = []
        self._size = 0

    def feed(self, event_id: int, kind: str, raw: Any) -> tuple[Compacted, ...]:
        """Take the next event; return the events that are complete now (often none)."""
        key = _run_key(kind, raw)
        if key is None and kind == _TOOL_UPDATE:
            return self._feed_update(event_id, kind, raw)
        if key is not None and key == self._key:
            text = _text_of(kind, raw)
            if self._size + len(text) <= MAX_MERGED_CHARS:
                self._parts.append(text)
                self._size += len(text)
                self._last_id, self._last_raw = event_id, raw
                return _NOTHING
        done = self.finish()
        if key is None:
            return (*done, (event_id, kind, raw))
        text = _text_of(kind, raw)
        self._key, self._kind, self._last_id, self._last_raw = key, kind, event_id, raw
        self._parts, self._size = [text], len(text)
        return done

    def _feed_update(self, event_id: int, kind: str, raw: Any) -> tuple[Compacted, ...]:
        key = _update_key(kind, raw)
        if key is not None and key == self._key:
            self._last_id, self._last_raw = event_id, _overlay(self._last_raw, raw)
            return _NOTHING
        done = self.finish()
        if key is None:
            return (*done, (event_id, kind, raw))
        # A run of one call's updates: no text parts, the overlaid update is the run's event.
        self._key, self._kind, self._last_id, self._last_raw = key, kind, event_id, raw
        self._parts, self._size = [], 0
        return done

    def finish(self) -> tuple[Compacted, ...]:
        """End the open run, if any, and return it as one event."""
        if self._key is None:
            return _NOTHING
        parts, self._parts, self._key = self._parts, [], None
        raw = (
            self._last_raw
            if len(parts) <= 1  # one chunk, or a run of tool call updates (no parts)
            else _with_text(self._kind, self._last_raw, "".join(parts))
        )
        return ((self._last_id, self._kind, raw),)

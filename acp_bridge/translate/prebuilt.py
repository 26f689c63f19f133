"""Wire bytes of the most frequent events without building the message: text-chunk templates.

An agent streams its answer as thousands of ``agent_message_chunk`` / ``agent_thought_chunk`` events,
and their notifications differ only in the text (and, in the harn profile, the text's visible copy)
and the event id. For those, :func:`chunk_template` derives, once per session and profile, the bytes
around those slots from the real translation (an event with a sentinel text, stamped with a sentinel
id, encoded), and :meth:`ChunkTemplate.encode` fills the slots: the same bytes as
``encode_message(stamp_event_id(translate(event)[0], …))`` at a fraction of the cost. A template is
checked against the real translation on probe texts when it is made; a translation it cannot
reproduce gets no template and takes the general path.
"""

from __future__ import annotations

from typing import Final

import orjson

from acp_bridge.events import harn as ev

from .harn import translate
from .visible_text import sanitize_visible_text
from .wire import Profile, encode_message, stamp_event_id

__all__ = ["CHUNK_TYPES", "ChunkTemplate", "chunk_template"]

CHUNK_TYPES: Final = ev.TEXT_CHUNK_TYPES
"""The event types whose translation is one message embedding ``content`` verbatim."""

# Padded, so the visible copy (trimmed) is told from the text itself.
_SENTINEL_TEXT: Final = "  \ue000acp-bridge-chunk-text\ue001  "
_SENTINEL_ID: Final = 8_642_097_531_864_209_753
_TEXT, _VISIBLE, _ID = "text", "visible", "id"
_HARN_MESSAGE: Final = (_ID, _VISIBLE, _VISIBLE, _TEXT)

_PROBES: Final = (
    "",
    "plain prose",
    "  padded\n",
    'quotes " and \\ and \x00 \u2028 é 中',
    "<think>hidden</think> shown",
    "DONE",
    "a\r\n\n\n\nb",
    '```json\n{"plan": 1}\n```',
)
"""Texts a new template must encode exactly as the general path does (markup included)."""


class ChunkTemplate:
    """The encoded notification of one chunk type in one session and profile, minus its slots."""

    __slots__ = ("_format", "_order")

    def __init__(self, parts: list[bytes], order: tuple[str, ...]) -> None:
        if len(parts) != len(order) + 1:
            raise ValueError("a template has one more part than slots")
        pieces = [parts[0].replace(b"%", b"%%")]
        for slot, part in zip(order, parts[1:], strict=True):
            pieces.append(b"%d" if slot == _ID else b"%b")
            pieces.append(part.replace(b"%", b"%%"))
        self._format = b"".join(pieces)
        self._order = order

    def encode(self, text: str, event_id: int) -> bytes:
        """The notification for a chunk of ``text`` that the log numbered ``event_id``."""
        order = self._order
        if order == (_TEXT, _ID):  # strict
            return self._format % (orjson.dumps(text), event_id)
        if order == (_ID, _TEXT):  # harn thought chunks (sorted keys: "_harn" first)
            return self._format % (event_id, orjson.dumps(text))
        if order == _HARN_MESSAGE:  # visible_delta, visible_text, then the text itself
            visible = orjson.dumps(sanitize_visible_text(text, partial=True))
            return self._format % (event_id, visible, visible, orjson.dumps(text))
        text_json = orjson.dumps(text)
        visible_json = (
            orjson.dumps(sanitize_visible_text(text, partial=True)) if _VISIBLE in order else b""
        )
        values = {_TEXT: text_json, _VISIBLE: visible_json, _ID: event_id}
        return self._format % tuple(values[slot] for slot in order)


def _general(
    chunk_type: type[ev.AgentMessageChunk] | type[ev.AgentThoughtChunk],
    session_id: str,
    profile: Profile,
    text: str,
    event_id: int,
) -> bytes | None:
    messages = translate(chunk_type(session_id=session_id, content=text), profile=profile)
    if len(messages) != 1:
        return None
    return encode_message(stamp_event_id(messages[0], profile, session_id, event_id), profile)


def chunk_template(
    chunk_type: type[ev.AgentMessageChunk] | type[ev.AgentThoughtChunk],
    session_id: str,
    profile: Profile,
) -> ChunkTemplate | None:
    """The template for ``chunk_type`` events of ``session_id`` in ``profile``, or ``None`` when the
    translation is not one message whose text, visible copies and id can be slotted (then use the
    general path)."""
    data = _general(chunk_type, session_id, profile, _SENTINEL_TEXT, _SENTINEL_ID)
    if data is None:
        return None
    markers = {
        _TEXT: orjson.dumps(_SENTINEL_TEXT),
        _VISIBLE: orjson.dumps(sanitize_visible_text(_SENTINEL_TEXT, partial=True)),
        _ID: b"%d" % _SENTINEL_ID,
    }
    found: list[tuple[int, str]] = []
    for slot, marker in markers.items():
        at = data.find(marker)
        while at >= 0:
            found.append((at, slot))
            at = data.find(marker, at + len(marker))
    found.sort()
    if [slot for _, slot in found].count(_TEXT) != 1 or [s for _, s in found].count(_ID) != 1:
        return None
    parts, start = [], 0
    for at, slot in found:
        if at < start:
            return None  # overlapping markers: not a template
        parts.append(data[start:at])
        start = at + len(markers[slot])
    parts.append(data[start:])
    template = ChunkTemplate(parts, tuple(slot for _, slot in found))
    for probe_id, probe in enumerate(_PROBES, start=1):
        if template.encode(probe, probe_id) != _general(
            chunk_type, session_id, profile, probe, probe_id
        ):
            return None
    return template

"""Wire bytes of the most frequent events without building the message: text-chunk templates.

An agent streams its answer as thousands of ``agent_message_chunk`` / ``agent_thought_chunk`` events,
and their notifications differ only in the text and the event id. For those, :func:`chunk_template`
derives, once per session and profile, the bytes around the two slots from the real translation (an
event with a sentinel text, stamped with a sentinel id, encoded), and :meth:`ChunkTemplate.encode`
fills the slots: the same bytes as ``encode_message(stamp_event_id(translate(event)[0], …))``, at a
fraction of the cost. A translation that does not carry the text exactly once (the harn profile's
message chunks add ``visible_text`` copies) gets no template and takes the general path.
"""

from __future__ import annotations

from typing import Final

import orjson

from acp_bridge.events import harn as ev

from .harn import translate
from .wire import Profile, encode_message, stamp_event_id

__all__ = ["CHUNK_TYPES", "ChunkTemplate", "chunk_template"]

CHUNK_TYPES: Final = ev.TEXT_CHUNK_TYPES
"""The event types whose translation is one message embedding ``content`` verbatim."""

_SENTINEL_TEXT: Final = "\ue000acp-bridge-chunk-text\ue001"
_SENTINEL_ID: Final = 8_642_097_531_864_209_753


class ChunkTemplate:
    """The encoded notification of one chunk type in one session and profile, minus two slots."""

    __slots__ = ("_id_first", "_middle", "_prefix", "_suffix")

    def __init__(self, prefix: bytes, middle: bytes, suffix: bytes, *, id_first: bool) -> None:
        self._prefix = prefix
        self._middle = middle
        self._suffix = suffix
        self._id_first = id_first

    def encode(self, text: str, event_id: int) -> bytes:
        """The notification for a chunk of ``text`` that the log numbered ``event_id``."""
        if self._id_first:
            return b"%b%d%b%b%b" % (
                self._prefix,
                event_id,
                self._middle,
                orjson.dumps(text),
                self._suffix,
            )
        return b"%b%b%b%d%b" % (
            self._prefix,
            orjson.dumps(text),
            self._middle,
            event_id,
            self._suffix,
        )


def chunk_template(
    chunk_type: type[ev.AgentMessageChunk] | type[ev.AgentThoughtChunk],
    session_id: str,
    profile: Profile,
) -> ChunkTemplate | None:
    """The template for ``chunk_type`` events of ``session_id`` in ``profile``, or ``None`` when the
    translation does not have exactly one text slot and one id slot (then use the general path)."""
    event = chunk_type(session_id=session_id, content=_SENTINEL_TEXT)
    messages = translate(event, profile=profile)
    if len(messages) != 1:
        return None
    message = stamp_event_id(messages[0], profile, session_id, _SENTINEL_ID)
    data = encode_message(message, profile)
    text_slot = orjson.dumps(_SENTINEL_TEXT)
    id_slot = b"%d" % _SENTINEL_ID
    if data.count(text_slot) != 1 or data.count(id_slot) != 1:
        return None
    text_at, id_at = data.index(text_slot), data.index(id_slot)
    if text_at < id_at:  # strict: the id is in params._meta, after the update
        first, first_len, second, second_len = text_at, len(text_slot), id_at, len(id_slot)
    else:  # harn: keys sorted, the root's "_harn" member comes first
        first, first_len, second, second_len = id_at, len(id_slot), text_at, len(text_slot)
    return ChunkTemplate(
        data[:first],
        data[first + first_len : second],
        data[second + second_len :],
        id_first=id_at < text_at,
    )

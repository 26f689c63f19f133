"""The seam between bytes and protocol: a transport moves decoded JSON-RPC messages.

A transport (WebSocket, stdio NDJSON, an in-memory pair) frames and decodes; everything above it sees
Python values. What it receives is one of: a decoded JSON value (normally a ``dict``), a
:class:`Malformed` marker for a frame that was not JSON (the peer answers ``-32700``), or ``None`` at end
of stream. Since ``None`` means the end, a frame holding JSON ``null`` arrives as :data:`JSON_NULL`
(transports decode with :func:`decode_message`, which does that). What it sends is a ``dict``
(encoded by the transport) or ``bytes`` that are already one encoded JSON message — the ACP layer
pre-encodes session updates once and fans the same bytes out to every attached connection.

A transport may also offer ``send_many(messages)``, sending a batch with one write (same frames, fewer
system calls); the peer uses it when present. A transport whose ``receive`` returning ``None`` ends
only the input (stdio: stdin closed, stdout still read) says so with ``output_outlives_input = True``;
the peer then answers what it already read before it closes.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

import orjson

__all__ = [
    "DEFAULT_EOF_GRACE",
    "JSON_NULL",
    "CloseReason",
    "JsonNull",
    "Malformed",
    "MemoryTransport",
    "Outgoing",
    "Transport",
    "decode_message",
    "memory_transport_pair",
]

DEFAULT_EOF_GRACE: Final = 30.0
"""Seconds the requests already read may take to be answered once a stdio peer's input ends.

A script that pipes requests in and closes its end (``echo … | acp-bridge connect URL``) still
reads the answers; the bound keeps a server that never answers from holding the process forever.
"""

Outgoing = dict[str, Any] | bytes
"""A message to send: a JSON-RPC object, or its UTF-8 JSON encoding."""


@dataclass(frozen=True, slots=True)
class Malformed:
    """A received frame that is not valid JSON."""

    reason: str


class JsonNull(enum.Enum):
    """The type of :data:`JSON_NULL`."""

    NULL = "null"


JSON_NULL: Final = JsonNull.NULL
"""What ``receive`` returns for a message that is JSON ``null`` (``None`` means end of stream)."""


def decode_message(data: bytes | str) -> Any | Malformed:
    """A received frame or line as a JSON value (``null``: :data:`JSON_NULL`) or :class:`Malformed`.

    Every transport decodes here, so none of them can hand up a ``None`` that a reader would take
    for the end of the stream (a client sending ``null`` would end its own connection unanswered).
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Malformed(str(exc))
    return JSON_NULL if value is None else value


class CloseReason(enum.Enum):
    """Why a connection is being closed, in transport-neutral terms (WebSocket maps them to codes)."""

    NORMAL = "normal"
    GOING_AWAY = "going_away"
    """Server shutdown (WebSocket 1001)."""
    TOO_BIG = "too_big"
    """A frame over the size limit (WebSocket 1009)."""
    TRY_AGAIN_LATER = "try_again_later"
    """The client fell too far behind (WebSocket 1013); it may reconnect and ``session/load``."""
    POLICY = "policy"
    """A protocol violation (WebSocket 1008)."""
    INTERNAL = "internal"
    """A server-side failure (WebSocket 1011)."""


@runtime_checkable
class Transport(Protocol):
    """Moves decoded JSON-RPC messages in both directions."""

    async def send(self, message: Outgoing) -> None:
        """Send one message; may block while the peer applies backpressure."""

    async def receive(self) -> Any | Malformed | None:
        """The next message, a :class:`Malformed` marker, or ``None`` when the stream ended.

        A message that is JSON ``null`` is :data:`JSON_NULL`, never ``None``.
        """

    async def close(self, reason: CloseReason = CloseReason.NORMAL, detail: str = "") -> None:
        """Close the connection; idempotent."""


class MemoryTransport:
    """One end of an in-process transport pair (used by tests and embedders).

    Messages are JSON-encoded and decoded on the way, exactly like a real transport, so a test over a
    memory pair sees what a socket would carry.
    """

    def __init__(self, inbox: asyncio.Queue[bytes | None], outbox: asyncio.Queue[bytes | None]):
        self._inbox = inbox
        self._outbox = outbox
        self.closed = False
        self.close_reason: CloseReason | None = None

    async def send(self, message: Outgoing) -> None:
        """Queue one message for the other end."""
        if self.closed:
            raise ConnectionError("transport is closed")
        await self._outbox.put(message if isinstance(message, bytes) else orjson.dumps(message))

    async def send_raw(self, data: bytes) -> None:
        """Queue raw bytes as one frame (lets tests send malformed input)."""
        await self._outbox.put(data)

    async def receive(self) -> Any | Malformed | None:
        """The next message from the other end."""
        if self.closed:
            return None
        data = await self._inbox.get()
        if data is None:
            self.closed = True
            return None
        return decode_message(data)

    async def close(self, reason: CloseReason = CloseReason.NORMAL, detail: str = "") -> None:
        """End this side; the other side's ``receive`` returns ``None``."""
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            await self._outbox.put(None)
            # Wake our own pending receive() as well.
            self._inbox.put_nowait(None)


def memory_transport_pair() -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected in-memory transports."""
    a_to_b: asyncio.Queue[bytes | None] = asyncio.Queue()
    b_to_a: asyncio.Queue[bytes | None] = asyncio.Queue()
    return MemoryTransport(b_to_a, a_to_b), MemoryTransport(a_to_b, b_to_a)

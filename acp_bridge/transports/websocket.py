"""A :class:`~acp_bridge.rpc.transport.Transport` over one WebSocket connection.

Each JSON-RPC message travels in one text frame (the ACP remote-transport RFD); binary frames are
ignored. The wrapped connection is a ``websockets`` asyncio connection, server or client side, so the
same class serves the bridge's endpoint and any client that wants decoded messages.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

import orjson
from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.protocol import SERVER, State

from acp_bridge.rpc.transport import CloseReason, Malformed, Outgoing, decode_message

__all__ = ["CLOSE_CODES", "WebSocketTransport", "text_frame_header"]

logger = logging.getLogger(__name__)

CLOSE_CODES: dict[CloseReason, int] = {
    CloseReason.NORMAL: CloseCode.NORMAL_CLOSURE,
    CloseReason.GOING_AWAY: CloseCode.GOING_AWAY,
    CloseReason.POLICY: CloseCode.POLICY_VIOLATION,
    CloseReason.TOO_BIG: CloseCode.MESSAGE_TOO_BIG,
    CloseReason.INTERNAL: CloseCode.INTERNAL_ERROR,
    CloseReason.TRY_AGAIN_LATER: CloseCode.TRY_AGAIN_LATER,
}
"""The WebSocket close code sent for each :class:`CloseReason`."""

# RFC 6455 §5.5: a control frame's payload is at most 125 bytes, two of which hold the code.
_MAX_CLOSE_REASON_BYTES = 123


_HEADER_16 = struct.Struct("!BBH").pack
_HEADER_64 = struct.Struct("!BBQ").pack
_FIN_TEXT = 0x81  # FIN bit set, opcode 1 (text)


def text_frame_header(length: int) -> bytes:
    """The RFC 6455 header of an unmasked, unfragmented text frame of ``length`` payload bytes."""
    if length < 126:
        return bytes((_FIN_TEXT, length))
    if length < 65536:
        return _HEADER_16(_FIN_TEXT, 126, length)
    return _HEADER_64(_FIN_TEXT, 127, length)


def _close_reason_text(detail: str) -> str:
    # Cut on a byte budget without splitting a UTF-8 sequence, or the library refuses the frame.
    return detail.encode()[:_MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


class WebSocketTransport:
    """Decoded JSON-RPC messages over a ``websockets`` asyncio connection.

    ``receive`` must be called by one task at a time (the connection's own rule); ``send`` may be
    called from several tasks at once. ``send`` raises :class:`ConnectionError` once the connection
    is closed, like :class:`~acp_bridge.rpc.transport.MemoryTransport`.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        # websockets writes a whole unfragmented frame atomically, but ordering between tasks that
        # wait on backpressure is only guaranteed by a lock: FIFO, so senders keep their turn.
        self._send_lock = asyncio.Lock()
        self._close_requested = False

    @property
    def connection(self) -> Connection:
        """The wrapped ``websockets`` connection."""
        return self._connection

    @property
    def close_code(self) -> int | None:
        """The close code the peer sent (1006 if it vanished without one), ``None`` while open."""
        return self._connection.close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason the peer sent, ``None`` while open."""
        return self._connection.close_reason

    async def receive(self) -> Any | Malformed | None:
        """The next text frame decoded as JSON, a :class:`Malformed` marker, or ``None`` once closed.

        A frame holding JSON ``null`` is :data:`~acp_bridge.rpc.transport.JSON_NULL`.

        A frame over the size limit makes the library close the connection with 1009; that, like
        any other closure, ends the stream with ``None``.
        """
        while True:
            try:
                data = await self._connection.recv()
            except ConnectionClosed:
                return None
            if isinstance(data, bytes):
                # The ACP RFD says binary frames are ignored, not answered or fatal.
                logger.debug("ignoring a binary frame of %d bytes", len(data))
                continue
            return decode_message(data)

    async def send(self, message: Outgoing) -> None:
        """Send one message as a text frame; ``bytes`` must already be one encoded JSON message."""
        data = message if isinstance(message, bytes) else orjson.dumps(message)
        try:
            async with self._send_lock:
                # text=True: the bytes go out as a text frame without a decode/encode round trip.
                await self._connection.send(data, text=True)
        except ConnectionClosed as exc:
            raise ConnectionError(f"WebSocket connection is closed ({exc})") from exc

    async def send_many(self, messages: list[Outgoing]) -> None:
        """Send several messages, one text frame each, in one socket write.

        A write per frame costs a system call each; a bridge streaming agent events spends most of its
        time there. This frames every message inside the connection's own ``send_context`` (which
        checks the state, then drains with backpressure), and hands the frames to the socket joined,
        so the peer sees exactly the frames ``send`` would have produced.

        A server connection without extensions (no compression: the bridge's default) frames text
        itself: the header is two or four bytes and the payload goes unmasked, so going through the
        library's general frame path (a ``Frame`` object, extension hooks, a copy) for each message
        would cost more than the rest of the write. Anything else goes through the library.
        """
        connection = self._connection
        frames = [m if isinstance(m, bytes) else orjson.dumps(m) for m in messages]
        try:
            async with self._send_lock:
                if connection.protocol.state is not State.OPEN:
                    for frame in frames:  # let send() raise the usual way
                        await connection.send(frame, text=True)
                    return
                async with connection.send_context():
                    protocol = connection.protocol
                    if (
                        protocol.side is SERVER
                        and not protocol.extensions
                        and not protocol.expect_continuation_frame
                        and not protocol.debug
                    ):
                        # Whatever the protocol still holds (normally nothing) goes first.
                        parts = protocol.data_to_send()
                        for frame in frames:
                            parts.append(text_frame_header(len(frame)))
                            parts.append(frame)
                    else:
                        for frame in frames:
                            protocol.send_text(frame)
                        parts = protocol.data_to_send()
                    # send_context would write each frame separately on exit; one write instead.
                    connection.transport.write(b"".join(parts))
        except ConnectionClosed as exc:
            raise ConnectionError(f"WebSocket connection is closed ({exc})") from exc

    async def close(self, reason: CloseReason = CloseReason.NORMAL, detail: str = "") -> None:
        """Close with the code mapped from ``reason``; waits for the closing handshake; idempotent.

        The wait is bounded by the connection's ``close_timeout``, after which the TCP connection
        is dropped, even when the close frame cannot be written because the peer stopped reading.
        """
        if self._close_requested:
            return
        self._close_requested = True
        connection = self._connection
        try:
            # The library's own close timeout only starts once the close frame is written; behind
            # a full send buffer (a peer that stopped reading) close() would wait until keepalive
            # gave up, if ever, and so would a slow-client disconnect and a shutdown.
            async with asyncio.timeout(connection.close_timeout):
                # A no-op if the peer already closed: websockets' close() is idempotent as well.
                await connection.close(CLOSE_CODES[reason], _close_reason_text(detail))
        except TimeoutError:
            logger.debug("closing handshake timed out; dropping the connection")
            connection.transport.abort()

"""Newline-delimited JSON over byte streams: ACP's stdio transport.

One JSON-RPC message per line, UTF-8, terminated by ``\\n`` (ACP v1 §transports). Lines are read with
a hard size bound: an oversized line is reported once as :class:`Malformed` and skipped without ever
being held in memory, so a misbehaving peer cannot make the process buffer without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import selectors
import stat
import sys
from typing import Any, Protocol

import orjson

from acp_bridge.rpc.transport import CloseReason, Malformed, Outgoing, decode_message

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "LineReader",
    "LineWriter",
    "NdjsonTransport",
    "Oversized",
    "close_writer",
    "open_stdio_streams",
    "open_stdio_transport",
]

DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024
"""Largest message (one line, without its newline) accepted by default."""

_CHUNK = 64 * 1024


class LineWriter(Protocol):
    """What :class:`NdjsonTransport` writes to: an :class:`asyncio.StreamWriter` or look-alike."""

    def write(self, data: bytes) -> object:
        """Buffer ``data`` for writing."""

    async def drain(self) -> None:
        """Wait until the buffer is flushed enough to write more."""

    def close(self) -> object:
        """Close the stream."""


class Oversized:
    """A line that exceeded the limit and was discarded; ``size`` counts its bytes."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


class LineReader:
    """Reads ``\\n``-terminated lines from a :class:`asyncio.StreamReader` with a size bound.

    The reader's own ``limit`` is irrelevant: data is pulled in chunks and split here, so lines of up
    to ``max_line_bytes`` work whatever the reader was created with.
    """

    def __init__(self, reader: asyncio.StreamReader, max_line_bytes: int) -> None:
        if max_line_bytes <= 0:
            raise ValueError("max_line_bytes must be positive")
        self._reader = reader
        self._max = max_line_bytes
        self._buffer = bytearray()
        self._eof = False

    @property
    def max_line_bytes(self) -> int:
        """The size bound of one line, newline excluded."""
        return self._max

    async def readline(self) -> bytes | Oversized | None:
        """The next line without its ``\\n``, :class:`Oversized`, or ``None`` at end of stream.

        A final line without a newline before end of stream still counts as a line.
        """
        scanned = 0
        while True:
            end = self._buffer.find(b"\n", scanned)
            if end >= 0:
                line = bytes(self._buffer[:end])
                # Deleting a bytearray's head is amortised O(1) in CPython.
                del self._buffer[: end + 1]
                return Oversized(len(line)) if len(line) > self._max else line
            if len(self._buffer) > self._max:
                return Oversized(await self._discard_rest_of_line())
            scanned = len(self._buffer)
            if self._eof or not await self._fill():
                if not self._buffer:
                    return None
                line = bytes(self._buffer)
                self._buffer.clear()
                return line

    async def _fill(self) -> bool:
        chunk = await self._reader.read(_CHUNK)
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    async def _discard_rest_of_line(self) -> int:
        size = len(self._buffer)
        self._buffer.clear()
        while not self._eof and await self._fill():
            end = self._buffer.find(b"\n")
            if end >= 0:
                size += end
                del self._buffer[: end + 1]
                return size
            size += len(self._buffer)
            self._buffer.clear()
        return size


def _encode_line(message: Outgoing) -> bytes:
    if isinstance(message, bytes):
        # Pre-encoded bytes from orjson never hold a newline; anything else that does (pretty-printed
        # JSON) would split into two "messages", so it is re-encoded compactly. JSON strings cannot
        # contain a raw newline, so this changes whitespace only.
        if b"\n" in message:
            message = orjson.dumps(orjson.loads(message))
        return message + b"\n"
    return orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE)


class NdjsonTransport:
    """Decoded JSON-RPC messages as newline-delimited JSON over a reader and a writer.

    ``read_transport``, when given, is closed by :meth:`close` so that a pending :meth:`receive`
    wakes up with ``None``; without it, a pending receive only ends when the peer closes its end.
    The end of the input is not the end of the output: messages can still be sent after
    :meth:`receive` returned ``None``, until :meth:`close`.
    """

    output_outlives_input = True
    """Stdin closing does not close stdout: the peer may still answer what it read."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: LineWriter,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        read_transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self._lines = LineReader(reader, max_message_bytes)
        self._writer = writer
        self._read_transport = read_transport
        # One line must reach the writer whole before the next starts; drain() may yield mid-way.
        self._send_lock = asyncio.Lock()
        self.closed = False

    async def receive(self) -> Any | Malformed | None:
        """The next message, :class:`Malformed` for a bad or oversized line, ``None`` at EOF.

        A line holding JSON ``null`` is :data:`~acp_bridge.rpc.transport.JSON_NULL`.
        """
        while not self.closed:
            line = await self._lines.readline()
            if line is None:
                return None
            if isinstance(line, Oversized):
                return Malformed(
                    f"message of {line.size} bytes exceeds the limit of "
                    f"{self._lines.max_line_bytes} bytes"
                )
            if not line.strip():
                continue
            return decode_message(line)
        return None

    async def send(self, message: Outgoing) -> None:
        """Write one message as one line; raises :class:`ConnectionError` once closed."""
        if self.closed:
            raise ConnectionError("transport is closed")
        data = _encode_line(message)
        async with self._send_lock:
            self._writer.write(data)
            await self._writer.drain()

    async def send_many(self, messages: list[Outgoing]) -> None:
        """Write several messages, one line each, with one write."""
        if self.closed:
            raise ConnectionError("transport is closed")
        data = b"".join(_encode_line(message) for message in messages)
        async with self._send_lock:
            self._writer.write(data)
            await self._writer.drain()

    async def close(self, reason: CloseReason = CloseReason.NORMAL, detail: str = "") -> None:
        """Close both directions; ``reason`` has no wire form on stdio. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._read_transport is not None:
            self._read_transport.close()
        await close_writer(self._writer)


async def close_writer(writer: LineWriter, grace: float = 5.0) -> None:
    """Close ``writer`` and wait (bounded) until what it buffered is flushed, if it can tell."""
    writer.close()
    wait_closed = getattr(writer, "wait_closed", None)
    if wait_closed is None:
        return
    # The peer may be gone (broken pipe) or not reading; either way we are done with the stream.
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(grace):
            await wait_closed()


class _PipeWriter(asyncio.Protocol):
    """A :class:`LineWriter` over an asyncio write-pipe transport, with flow control.

    Used instead of :class:`asyncio.StreamWriter`, whose ``wait_closed`` needs a reader-side
    protocol that a write-only pipe does not have.
    """

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None
        self._paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self._transport = transport

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)
        self._wake(exc or ConnectionResetError("the output stream was closed"))

    def _wake(self, exc: Exception | None) -> None:
        for waiter in self._drain_waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)
        self._drain_waiters.clear()

    def write(self, data: bytes) -> None:
        """Queue ``data``; raises :class:`ConnectionResetError` once the stream is closed."""
        assert self._transport is not None
        if self._transport.is_closing():
            # The pipe transport would only log and drop the data.
            raise ConnectionResetError("the output stream is closed")
        self._transport.write(data)

    async def drain(self) -> None:
        """Wait while the pipe is above its high-water mark."""
        if self._lost.done():
            raise ConnectionResetError("the output stream is closed")
        if self._paused:
            waiter = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def close(self) -> None:
        """Close once the buffered data is written."""
        assert self._transport is not None
        self._transport.close()

    async def wait_closed(self) -> None:
        """Wait until the pipe is closed and its buffer flushed (or the peer went away)."""
        await asyncio.shield(self._lost)


class _BlockingFileWriter:
    """A writer for a file the event loop cannot poll (a regular file, ``/dev/null``).

    Writes to such files do not block for long, so they are done inline.
    """

    def __init__(self, file: io.FileIO) -> None:
        self._file = file

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            view = view[written or 0 :]

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self._file.close()


async def _feed_from_file(reader: asyncio.StreamReader, file: io.FileIO) -> None:
    # Regular files never block for long; a worker thread still keeps the loop free meanwhile.
    try:
        while chunk := await asyncio.to_thread(file.read, _CHUNK):
            reader.feed_data(chunk)
    finally:
        reader.feed_eof()
        file.close()


_background: set[asyncio.Task[None]] = set()


async def open_stdio_streams(
    stdin_fd: int | None = None, stdout_fd: int | None = None
) -> tuple[asyncio.StreamReader, LineWriter, asyncio.BaseTransport | None]:
    """Asyncio streams over the process's stdin and stdout (or the given descriptors).

    Pipes, sockets and terminals are driven by the event loop. Descriptors it cannot poll (a
    regular file or ``/dev/null`` redirected in) fall back to plain reads and writes. The
    descriptors are duplicated, so closing the streams leaves ``sys.stdin``/``sys.stdout`` intact.

    Returns the reader, the writer, and the read transport (``None`` on the fallback path).
    """
    loop = asyncio.get_running_loop()
    in_file = io.FileIO(os.dup(sys.stdin.fileno() if stdin_fd is None else stdin_fd), "rb")
    out_file = io.FileIO(os.dup(sys.stdout.fileno() if stdout_fd is None else stdout_fd), "wb")

    # The reader's limit only matters for readline(), which LineReader never calls.
    reader = asyncio.StreamReader()
    read_transport: asyncio.BaseTransport | None = None
    if _pollable(in_file.fileno(), selectors.EVENT_READ):
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), in_file
        )
    else:
        task = loop.create_task(_feed_from_file(reader, in_file))
        _background.add(task)
        task.add_done_callback(_background.discard)

    writer: LineWriter
    if _pollable(out_file.fileno(), selectors.EVENT_WRITE):
        _, writer = await loop.connect_write_pipe(_PipeWriter, out_file)
    else:
        writer = _BlockingFileWriter(out_file)
    return reader, writer, read_transport


def _pollable(fd: int, events: int) -> bool:
    # The loop's pipe transports accept only pipes, sockets and character devices, and register
    # with the selector in a later callback, where a refusal (epoll: EPERM for /dev/null) would
    # only be logged and leave the stream hanging. So ask a throwaway selector first.
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
        return False
    with selectors.DefaultSelector() as selector:
        try:
            selector.register(fd, events)
        except (OSError, ValueError):
            return False
    return True


async def open_stdio_transport(
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> NdjsonTransport:
    """An :class:`NdjsonTransport` over the process's stdin and stdout.

    Once this is open, stdout belongs to the transport: nothing else may write to it (log to
    stderr). With a pipe on stdout the descriptor is switched to non-blocking mode, which is shared
    with any other descriptor for the same open file (e.g. a terminal also used as stderr).
    """
    reader, writer, read_transport = await open_stdio_streams()
    return NdjsonTransport(
        reader, writer, max_message_bytes=max_message_bytes, read_transport=read_transport
    )

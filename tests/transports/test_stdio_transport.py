"""NdjsonTransport: one JSON message per line over byte streams, with a hard line-size bound."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from acp_bridge.rpc.transport import JSON_NULL, Malformed, Transport
from acp_bridge.transports.stdio import (
    LineReader,
    NdjsonTransport,
    Oversized,
    open_stdio_streams,
)


class CollectingWriter:
    """A LineWriter that keeps what was written and yields on drain, like a real stream."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        # Written in two halves so an unserialised concurrent sender would interleave.
        half = len(data) // 2
        self.data += data[:half]
        self._rest = data[half:]

    async def drain(self) -> None:
        await asyncio.sleep(0)
        self.data += self._rest
        self._rest = b""

    def close(self) -> None:
        self.closed = True


def fed_reader(*chunks: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    if eof:
        reader.feed_eof()
    return reader


async def receive_all(transport: NdjsonTransport) -> list[object]:
    received = []
    async with asyncio.timeout(5):
        while (message := await transport.receive()) is not None:
            received.append(message)
    return received


@pytest.fixture
async def pipe_transport() -> AsyncIterator[tuple[NdjsonTransport, int, int]]:
    """A transport over two real pipes; yields it with the peer's write and read descriptors."""
    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    reader, writer, read_transport = await open_stdio_streams(in_read, out_write)
    # open_stdio_streams works on duplicates; the originals are ours to close.
    os.close(in_read)
    os.close(out_write)
    transport = NdjsonTransport(reader, writer, read_transport=read_transport)
    try:
        yield transport, in_write, out_read
    finally:
        await transport.close()
        for fd in (in_write, out_read):
            with contextlib.suppress(OSError):
                os.close(fd)


def test_is_a_transport() -> None:
    assert issubclass(NdjsonTransport, Transport)


async def test_round_trip_over_real_pipes(
    pipe_transport: tuple[NdjsonTransport, int, int],
) -> None:
    transport, peer_write, peer_read = pipe_transport
    os.write(peer_write, b'{"jsonrpc":"2.0","id":1,"method":"initialize"}\n')
    async with asyncio.timeout(5):
        assert await transport.receive() == {"jsonrpc": "2.0", "id": 1, "method": "initialize"}
        await transport.send({"jsonrpc": "2.0", "id": 1, "result": {"é": True}})
        await transport.send(b'{"jsonrpc":"2.0","method":"session/update"}')
        expected = (
            b'{"jsonrpc":"2.0","id":1,"result":{"\xc3\xa9":true}}\n'
            b'{"jsonrpc":"2.0","method":"session/update"}\n'
        )
        output = b""
        while len(output) < len(expected):
            output += await asyncio.to_thread(os.read, peer_read, 65536)
    assert output == expected
    os.close(peer_write)
    async with asyncio.timeout(5):
        assert await transport.receive() is None


async def test_a_json_null_line_is_received_as_json_null_not_end_of_stream() -> None:
    transport = NdjsonTransport(fed_reader(b'null\n 1\n"x"\n{"after":true}\n'), CollectingWriter())
    assert await receive_all(transport) == [JSON_NULL, 1, "x", {"after": True}]


async def test_close_wakes_a_pending_receive(
    pipe_transport: tuple[NdjsonTransport, int, int],
) -> None:
    transport, _, peer_read = pipe_transport
    lines = transport._lines
    read_line = lines.readline
    reading = asyncio.Event()

    async def signalling_readline() -> Any:
        reading.set()  # the task goes straight on into the real read and blocks on the pipe
        return await read_line()

    lines.readline = signalling_readline  # type: ignore[method-assign]
    async with asyncio.timeout(5):
        pending = asyncio.create_task(transport.receive())
        await reading.wait()
        assert not pending.done()
        await transport.close()
        assert await pending is None
        await transport.close()
        # The peer sees end of stream on our output.
        assert await asyncio.to_thread(os.read, peer_read, 10) == b""
    with pytest.raises(ConnectionError):
        await transport.send({"late": True})


async def test_blank_lines_are_skipped() -> None:
    reader = fed_reader(b'\n  \n{"a":1}\r\n\n\t\n{"b":2}\n\n')
    transport = NdjsonTransport(reader, CollectingWriter())
    assert await receive_all(transport) == [{"a": 1}, {"b": 2}]


async def test_malformed_line_is_reported_and_the_stream_continues() -> None:
    reader = fed_reader(b'{"a":1}\nnot json\n{"b":\n{"c":3}\n')
    transport = NdjsonTransport(reader, CollectingWriter())
    received = await receive_all(transport)
    assert received[0] == {"a": 1}
    assert isinstance(received[1], Malformed)
    assert isinstance(received[2], Malformed)
    assert received[3] == {"c": 3}


async def test_final_line_without_newline_still_counts() -> None:
    transport = NdjsonTransport(fed_reader(b'{"a":1}\n{"b":2}'), CollectingWriter())
    assert await receive_all(transport) == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 10_000])
async def test_oversized_line_is_skipped_and_the_next_line_parses(chunk_size: int) -> None:
    big = b'{"big":"' + b"x" * 500 + b'"}'
    data = b'{"before":1}\n' + big + b'\n{"after":2}\n' + b"y" * 150
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    transport = NdjsonTransport(fed_reader(*chunks), CollectingWriter(), max_message_bytes=100)
    received = await receive_all(transport)
    assert received[0] == {"before": 1}
    assert received[1] == Malformed(f"message of {len(big)} bytes exceeds the limit of 100 bytes")
    assert received[2] == {"after": 2}
    # An oversized last line cut by end of stream is reported too.
    assert received[3] == Malformed("message of 150 bytes exceeds the limit of 100 bytes")
    assert len(received) == 4


async def test_line_exactly_at_the_limit_is_accepted() -> None:
    line = b'{"k":"' + b"x" * 92 + b'"}'
    assert len(line) == 100
    transport = NdjsonTransport(fed_reader(line + b"\n"), CollectingWriter(), max_message_bytes=100)
    assert await receive_all(transport) == [{"k": "x" * 92}]


async def test_oversized_line_is_never_buffered_whole() -> None:
    reader = asyncio.StreamReader()
    lines = LineReader(reader, max_line_bytes=1000)
    pending = asyncio.create_task(lines.readline())
    async with asyncio.timeout(5):
        for _ in range(200):
            reader.feed_data(b"z" * 5000)
            await asyncio.sleep(0)
            assert len(lines._buffer) <= 1000 + 65536
        reader.feed_data(b'z\n{"ok":true}\n')
        reader.feed_eof()
        result = await pending
        assert isinstance(result, Oversized)
        assert result.size == 200 * 5000 + 1
        assert await lines.readline() == b'{"ok":true}'
        assert await lines.readline() is None


async def test_sends_are_serialised_into_whole_lines() -> None:
    writer = CollectingWriter()
    transport = NdjsonTransport(fed_reader(), writer)

    async def sender(worker: int) -> None:
        for n in range(20):
            await transport.send({"worker": worker, "n": n})

    async with asyncio.timeout(5):
        await asyncio.gather(*(sender(worker) for worker in range(5)))
    messages = [orjson.loads(line) for line in bytes(writer.data).splitlines()]
    assert len(messages) == 100
    for worker in range(5):
        assert [m["n"] for m in messages if m["worker"] == worker] == list(range(20))


async def test_pre_encoded_bytes_with_newlines_are_made_one_line() -> None:
    writer = CollectingWriter()
    transport = NdjsonTransport(fed_reader(), writer)
    await transport.send(orjson.dumps({"a": [1, 2], "b": "x"}, option=orjson.OPT_INDENT_2))
    assert bytes(writer.data) == b'{"a":[1,2],"b":"x"}\n'
    await transport.close()
    assert writer.closed


# The process's own stdin/stdout, driven as a subprocess.

ECHO_SCRIPT = """
import asyncio
from acp_bridge.transports.stdio import open_stdio_transport

async def main():
    transport = await open_stdio_transport(max_message_bytes=64)
    while (message := await transport.receive()) is not None:
        await transport.send({"echo": repr(message) if not isinstance(message, dict) else message})
    await transport.close()

asyncio.run(main())
"""


async def test_open_stdio_transport_over_pipes() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        ECHO_SCRIPT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(10):
        stdout, stderr = await process.communicate(
            b'{"a":1}\n\n' + b'{"big":"' + b"x" * 100 + b'"}\n{"b":2}\n'
        )
    assert process.returncode == 0, stderr
    lines = [orjson.loads(line) for line in stdout.splitlines()]
    assert lines[0] == {"echo": {"a": 1}}
    assert "exceeds the limit of 64 bytes" in lines[1]["echo"]
    assert lines[2] == {"echo": {"b": 2}}
    assert stderr == b""


def test_open_stdio_transport_with_regular_files(tmp_path: Path) -> None:
    # Event loops cannot poll regular files; the transport falls back to plain reads and writes.
    source = tmp_path / "in.ndjson"
    source.write_bytes(b'{"a":1}\n{"b":2}\n')
    target = tmp_path / "out.ndjson"
    with source.open("rb") as stdin, target.open("wb") as stdout:
        result = subprocess.run(
            [sys.executable, "-c", ECHO_SCRIPT],
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=10,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == b'{"echo":{"a":1}}\n{"echo":{"b":2}}\n'


def test_open_stdio_transport_with_dev_null() -> None:
    result = subprocess.run(
        [sys.executable, "-c", ECHO_SCRIPT],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""

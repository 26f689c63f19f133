"""WebSocketTransport through a real server: framing, decoding, limits and close codes."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from acp_bridge.rpc.transport import JSON_NULL, CloseReason, Malformed, Transport
from acp_bridge.transports.websocket import CLOSE_CODES, WebSocketTransport, text_frame_header
from acp_bridge.transports.websocket_server import ConnectionInfo

from .conftest import Recorder, StartServer, dumps


def test_is_a_transport() -> None:
    assert issubclass(WebSocketTransport, Transport)


async def test_text_json_round_trip(start_server: StartServer) -> None:
    server = await start_server()
    message = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"é": [1, 2.5, None]}}
    async with asyncio.timeout(5), connect(server.url) as ws:
        await ws.send(dumps(message))
        reply = await ws.recv()
    assert isinstance(reply, str)
    assert orjson.loads(reply) == message


async def test_malformed_text_frame_reaches_the_handler_as_malformed(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = await start_server(recorder)
    async with asyncio.timeout(5), connect(server.url) as ws:
        await ws.send("{not json")
        await ws.send(dumps({"after": True}))
        first = await recorder.received.get()
        second = await recorder.received.get()
    assert isinstance(first, Malformed)
    assert first.reason
    assert second == {"after": True}


async def test_a_json_null_frame_is_received_as_json_null_not_end_of_stream(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = await start_server(recorder)
    async with asyncio.timeout(5), connect(server.url) as ws:
        await ws.send("null")
        await ws.send(dumps({"after": True}))
        assert await recorder.received.get() is JSON_NULL
        assert await recorder.received.get() == {"after": True}


async def test_binary_frame_is_ignored(start_server: StartServer, recorder: Recorder) -> None:
    server = await start_server(recorder)
    async with asyncio.timeout(5), connect(server.url) as ws:
        await ws.send(b'{"binary": true}')
        await ws.send(dumps({"text": True}))
        assert await recorder.received.get() == {"text": True}
        await ws.close()
        assert await recorder.received.get() is None


async def test_oversized_frame_closes_1009_and_ends_the_stream(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = await start_server(recorder, max_message_bytes=1024)
    async with asyncio.timeout(5), connect(server.url) as ws:
        await ws.send(dumps({"fits": "x" * 100}))
        assert await recorder.received.get() == {"fits": "x" * 100}
        await ws.send(dumps({"big": "x" * 2000}))
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1009
        assert await recorder.received.get() is None


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (CloseReason.NORMAL, 1000),
        (CloseReason.GOING_AWAY, 1001),
        (CloseReason.POLICY, 1008),
        (CloseReason.TOO_BIG, 1009),
        (CloseReason.INTERNAL, 1011),
        (CloseReason.TRY_AGAIN_LATER, 1013),
    ],
)
async def test_close_reason_maps_to_close_code(
    start_server: StartServer, reason: CloseReason, code: int
) -> None:
    assert CLOSE_CODES[reason] == code
    server = await start_server()
    async with asyncio.timeout(5), connect(server.url) as ws:
        await ws.send(dumps({"close": reason.value, "detail": "bye"}))
        await ws.wait_closed()
    assert ws.close_code == code
    assert ws.close_reason == "bye"


async def test_close_is_idempotent_and_truncates_long_details(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = await start_server(recorder)
    async with asyncio.timeout(5), connect(server.url) as ws:
        transport, _ = await recorder.connections.get()
        await transport.close(CloseReason.POLICY, "é" * 200)
        await transport.close(CloseReason.INTERNAL, "second")
        await ws.wait_closed()
        assert isinstance(transport, WebSocketTransport)
        assert transport.close_code == 1008
    assert ws.close_code == 1008
    assert ws.close_reason == "é" * 61  # 123 bytes hold 61 two-byte characters


async def test_send_bytes_goes_out_unchanged(start_server: StartServer) -> None:
    server = await start_server()
    raw = '{"id" :  7, "result":{ }}'
    async with asyncio.timeout(5), connect(server.url) as ws:
        await ws.send(dumps({"raw": raw}))
        assert await ws.recv() == raw


async def test_concurrent_sends_arrive_whole(start_server: StartServer) -> None:
    async def flood(transport: Transport, info: ConnectionInfo) -> None:
        async def sender(worker: int) -> None:
            for n in range(50):
                await transport.send({"worker": worker, "n": n, "pad": "x" * 4000})

        await asyncio.gather(*(sender(worker) for worker in range(8)))
        await transport.receive()

    server = await start_server(flood)
    seen: dict[int, list[int]] = {}
    async with asyncio.timeout(5), connect(server.url) as ws:
        for _ in range(8 * 50):
            message = orjson.loads(await ws.recv())
            seen.setdefault(message["worker"], []).append(message["n"])
    assert seen == {worker: list(range(50)) for worker in range(8)}


async def test_send_after_close_raises_connection_error(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = await start_server(recorder)
    async with asyncio.timeout(5), connect(server.url) as ws:
        transport, _ = await recorder.connections.get()
        await ws.close()
        assert await recorder.received.get() is None
        with pytest.raises(ConnectionError):
            await transport.send({"late": True})
        assert await transport.receive() is None


async def test_close_to_a_peer_that_stopped_reading_with_a_full_buffer_is_bounded(
    start_server: StartServer, recorder: Recorder
) -> None:
    # The library bounds its wait for the peer's close frame, but only once our close frame is
    # written; behind a full send buffer that never happened, so a slow client sent 1013 (or a
    # shutdown sent 1001) stayed connected until keepalive gave up, if it ever did.
    server = await start_server(recorder, ping_interval=None)
    async with asyncio.timeout(20), connect(server.url) as ws:
        ws.transport.pause_reading()
        transport, _ = await recorder.connections.get()
        assert isinstance(transport, WebSocketTransport)
        connection = transport.connection
        buffer_full = asyncio.Event()
        pause_writing = connection.pause_writing

        def record_pause() -> None:
            pause_writing()
            buffer_full.set()

        connection.pause_writing = record_pause  # type: ignore[method-assign]

        async def flood() -> None:
            with contextlib.suppress(ConnectionError):
                while True:
                    await transport.send(b'"' + b"x" * (1 << 20) + b'"')

        flooding = asyncio.create_task(flood())
        await buffer_full.wait()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await transport.close(CloseReason.TRY_AGAIN_LATER, "client too slow")
        assert loop.time() - started < connection.close_timeout + 1  # type: ignore[operator]
        await flooding  # the blocked send ends with the connection
        assert connection.state is State.CLOSED
        ws.transport.abort()


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_send_many_frames_every_length_as_the_library_would(
    start_server: StartServer, recorder: Recorder, compression: str | None
) -> None:
    # The bridge writes text-frame headers itself (no compression): 7-bit, 16-bit and 64-bit
    # lengths at their edges must reach a standard client intact, in order, as text frames.
    server = await start_server(recorder, compression=compression is not None)
    sizes = [0, 1, 125, 126, 127, 65_535, 65_536, 200_000]
    payloads = [
        orjson.dumps({"n": i, "pad": "é" * max(0, size // 2 - 20)}) for i, size in enumerate(sizes)
    ]
    async with (
        asyncio.timeout(10),
        connect(server.url, max_size=None, compression=compression) as ws,
    ):
        transport, _ = await recorder.connections.get()
        assert isinstance(transport, WebSocketTransport)
        await transport.send_many(list(payloads))
        await transport.send_many([payloads[1]])  # a batch of one takes the same path
        received = [await ws.recv() for _ in range(len(payloads) + 1)]
    assert all(isinstance(frame, str) for frame in received)
    assert [frame.encode() for frame in received] == [*payloads, payloads[1]]


def test_text_frame_headers_follow_rfc_6455() -> None:
    assert text_frame_header(0) == b"\x81\x00"
    assert text_frame_header(125) == b"\x81\x7d"
    assert text_frame_header(126) == b"\x81\x7e\x00\x7e"
    assert text_frame_header(65_535) == b"\x81\x7e\xff\xff"
    assert text_frame_header(65_536) == b"\x81\x7f" + (65_536).to_bytes(8, "big")

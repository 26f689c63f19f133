"""Fixtures for the WebSocket endpoint: real servers on 127.0.0.1, port 0, closed after each test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import orjson
import pytest

from acp_bridge.rpc.transport import CloseReason, Malformed, Transport
from acp_bridge.transports.websocket_server import (
    ConnectionHandler,
    ConnectionInfo,
    WebSocketServer,
    WebSocketServerConfig,
)

StartServer = Callable[..., Awaitable[WebSocketServer]]


async def echo_handler(transport: Transport, info: ConnectionInfo) -> None:
    """Echo every message, with a few commands a test can send.

    ``{"close": "<CloseReason value>", "detail": "..."}`` closes with that reason;
    ``{"raise": true}`` raises; ``{"raw": "<text>"}`` sends ``<text>`` as pre-encoded bytes;
    a malformed frame is answered with ``{"malformed": reason}``.
    """
    while (message := await transport.receive()) is not None:
        if isinstance(message, Malformed):
            await transport.send({"malformed": message.reason})
        elif isinstance(message, dict) and "close" in message:
            await transport.close(CloseReason(message["close"]), message.get("detail", ""))
            return
        elif isinstance(message, dict) and "raise" in message:
            raise RuntimeError("handler failed on purpose")
        elif isinstance(message, dict) and "raw" in message:
            await transport.send(message["raw"].encode())
        else:
            await transport.send(message)


class Recorder:
    """A handler that records connections and every message received, then the end of stream."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[tuple[Transport, ConnectionInfo]] = asyncio.Queue()
        self.received: asyncio.Queue[Any] = asyncio.Queue()
        self.close_codes: asyncio.Queue[int | None] = asyncio.Queue()

    async def __call__(self, transport: Transport, info: ConnectionInfo) -> None:
        await self.connections.put((transport, info))
        while (message := await transport.receive()) is not None:
            await self.received.put(message)
        await self.received.put(None)
        await self.close_codes.put(getattr(transport, "close_code", None))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """``await start_server(handler=echo_handler, health=None, **config)`` → a started server."""
    servers: list[WebSocketServer] = []

    async def start(
        handler: ConnectionHandler = echo_handler,
        *,
        health: Callable[[], Mapping[str, Any]] | None = None,
        **config: Any,
    ) -> WebSocketServer:
        config.setdefault("port", 0)
        server = WebSocketServer(WebSocketServerConfig(**config), handler, health=health)
        await server.start()
        servers.append(server)
        return server

    yield start
    async with asyncio.timeout(10):
        for server in servers:
            await server.close()


def dumps(value: Any) -> str:
    """Compact JSON text, as a client would put in a text frame."""
    return orjson.dumps(value).decode()

"""Transports: serve and move decoded JSON-RPC messages over bytes, knowing nothing of ACP.

- :mod:`.websocket_server`: the endpoint (``/acp``, ``GET /healthz``): binding, auth, ``Origin``,
  limits, keepalive, shutdown; each accepted connection goes to a handler as a transport.
- :mod:`.websocket`: one message per WebSocket text frame (:class:`WebSocketTransport`).
- :mod:`.stdio`: newline-delimited JSON over byte streams (:class:`NdjsonTransport`).
- :mod:`.relay`: the stdio ↔ WebSocket relay behind ``acp-bridge connect``.
"""

from .stdio import NdjsonTransport, open_stdio_transport
from .websocket import WebSocketTransport

__all__ = ["NdjsonTransport", "WebSocketTransport", "open_stdio_transport"]

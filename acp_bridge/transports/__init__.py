"""Transports: move decoded JSON-RPC messages over bytes, knowing nothing of ACP.

- :mod:`.websocket`: one message per WebSocket text frame (:class:`WebSocketTransport`).
- :mod:`.stdio`: newline-delimited JSON over byte streams (:class:`NdjsonTransport`).
- :mod:`.relay`: the stdio ↔ WebSocket relay behind ``acp-bridge connect`` (not imported here, so
  ``python -m acp_bridge.transports.relay`` runs it without a double import).
"""

from .stdio import NdjsonTransport, open_stdio_transport
from .websocket import WebSocketTransport

__all__ = ["NdjsonTransport", "WebSocketTransport", "open_stdio_transport"]

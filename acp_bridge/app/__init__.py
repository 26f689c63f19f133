"""The composition root: builds the event log, backend, ACP bridge and transports from options.

Nothing below this package knows how the pieces are put together; ``acp-bridge serve`` and embedding
programs (``acp_bridge.serve``) both start here.
"""

from .server import (
    BridgeServer,
    ServerOptions,
    backend_for,
    default_event_log_spec,
    serve,
    serve_stdio,
    tune_gc,
)

__all__ = [
    "BridgeServer",
    "ServerOptions",
    "backend_for",
    "default_event_log_spec",
    "serve",
    "serve_stdio",
    "tune_gc",
]

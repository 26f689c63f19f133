"""The inspector: ``GET /inspect``, a page and a read-only API to watch the bridge's sessions live.

:class:`Inspector` is mounted on the WebSocket server (it reads sessions and the event log, and
changes nothing); ``static/`` holds the page, shipped as package data with no build step.
"""

from .service import INSPECT_PATH, Inspector

__all__ = ["INSPECT_PATH", "Inspector"]

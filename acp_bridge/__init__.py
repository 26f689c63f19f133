"""acp_bridge: serve agent runtimes to IDE clients over the Agent Client Protocol (ACP v1).

This module is the public Python API; ``docs/python-api.md`` is its guide. Write a backend — subclass
:class:`BaseBackend` and implement ``prompt``, or write one ``async def prompt(ctx, prompt)``
function — report what it does by emitting Harn events through its :class:`SessionContext`, and
serve it::

    from acp_bridge import AgentMessageChunk, SessionContext, StopReason, FunctionBackend, serve

    async def prompt(ctx: SessionContext, prompt: list[dict]) -> StopReason:
        ctx.emit(AgentMessageChunk(session_id=ctx.session_id, content="Hello!"))
        return StopReason.END_TURN

    await serve(FunctionBackend(prompt))            # or: acp-bridge serve --agent python:my_agent:prompt

What is here:

* the backend contract — :class:`AgentBackend`, :class:`BaseBackend`, :class:`FunctionBackend`,
  :class:`SessionContext`, :class:`BackendHost`, :class:`StopReason`, :class:`PermissionOption`,
  :class:`PermissionOutcome`, :class:`PromptCapabilities`, :class:`SlashCommand`,
  :class:`SessionMode`, :class:`ConfigOption`, :class:`ElicitationResult`, and the errors :class:`BackendError`,
  :class:`SessionReadOnly`, :class:`CapabilityNotAdvertised`, :class:`ClientRequestFailed`;
* running it — :func:`serve`, :class:`BridgeServer`, :class:`ServerOptions`, :func:`serve_stdio`,
  :class:`Profile`;
* events — the :mod:`acp_bridge.events` package (``events.harn`` holds every Harn event model), the
  events almost every agent emits (:class:`AgentMessageChunk`, :class:`AgentThoughtChunk`,
  :class:`ToolCall`, :class:`ToolCallUpdate`, :class:`Plan`) with the enums they take
  (:class:`ToolKind`, :class:`ToolCallStatus`, :class:`ToolCallErrorCategory`), and
  :func:`emit_event`, Harn's process-wide emission;
* ``__version__``.

Compatibility: the names in ``__all__`` are the stable API and follow semantic versioning (before 1.0,
a minor release may change them, after a release that warns with ``DeprecationWarning``). Every other
module is importable but internal.

``import acp_bridge`` is cheap: the names above are imported on first use, so nothing (pydantic, the
WebSocket server) is loaded until a program asks for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from ._version import __version__

if TYPE_CHECKING:
    from . import events
    from .agents.base import (
        AgentBackend,
        BackendError,
        BackendHost,
        BaseBackend,
        CapabilityNotAdvertised,
        ClientRequestFailed,
        ConfigOption,
        ElicitationResult,
        PermissionOption,
        PermissionOutcome,
        PromptCapabilities,
        SessionContext,
        SessionMode,
        SessionReadOnly,
        SlashCommand,
        StopReason,
    )
    from .agents.python import FunctionBackend
    from .app.server import BridgeServer, ServerOptions, serve, serve_stdio
    from .events.harn import AgentMessageChunk, AgentThoughtChunk, Plan, ToolCall, ToolCallUpdate
    from .events.harn_types import ToolCallErrorCategory, ToolCallStatus, ToolKind
    from .sinks.registry import emit_event
    from .translate.wire import Profile

__all__ = [
    "AgentBackend",
    "AgentMessageChunk",
    "AgentThoughtChunk",
    "BackendError",
    "BackendHost",
    "BaseBackend",
    "BridgeServer",
    "CapabilityNotAdvertised",
    "ClientRequestFailed",
    "ConfigOption",
    "ElicitationResult",
    "FunctionBackend",
    "PermissionOption",
    "PermissionOutcome",
    "Plan",
    "Profile",
    "PromptCapabilities",
    "ServerOptions",
    "SessionContext",
    "SessionMode",
    "SessionReadOnly",
    "SlashCommand",
    "StopReason",
    "ToolCall",
    "ToolCallErrorCategory",
    "ToolCallStatus",
    "ToolCallUpdate",
    "ToolKind",
    "__version__",
    "emit_event",
    "events",
    "serve",
    "serve_stdio",
]

_BASE: Final = "acp_bridge.agents.base"
_LAZY: Final[dict[str, str]] = {
    # the backend contract
    "AgentBackend": _BASE,
    "BackendError": _BASE,
    "BackendHost": _BASE,
    "BaseBackend": _BASE,
    "CapabilityNotAdvertised": _BASE,
    "ClientRequestFailed": _BASE,
    "ConfigOption": _BASE,
    "ElicitationResult": _BASE,
    "PermissionOption": _BASE,
    "PermissionOutcome": _BASE,
    "PromptCapabilities": _BASE,
    "SessionContext": _BASE,
    "SessionMode": _BASE,
    "SessionReadOnly": _BASE,
    "SlashCommand": _BASE,
    "StopReason": _BASE,
    "FunctionBackend": "acp_bridge.agents.python",
    # running it
    "BridgeServer": "acp_bridge.app.server",
    "ServerOptions": "acp_bridge.app.server",
    "serve": "acp_bridge.app.server",
    "serve_stdio": "acp_bridge.app.server",
    "Profile": "acp_bridge.translate.wire",
    # events
    "AgentMessageChunk": "acp_bridge.events.harn",
    "AgentThoughtChunk": "acp_bridge.events.harn",
    "Plan": "acp_bridge.events.harn",
    "ToolCall": "acp_bridge.events.harn",
    "ToolCallUpdate": "acp_bridge.events.harn",
    "ToolCallErrorCategory": "acp_bridge.events.harn_types",
    "ToolCallStatus": "acp_bridge.events.harn_types",
    "ToolKind": "acp_bridge.events.harn_types",
    "emit_event": "acp_bridge.sinks.registry",
}
"""Where each lazily imported public name lives (``events`` is the subpackage itself)."""

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        """Import a public name on first use, and keep it (PEP 562)."""
        if name == "events":
            value = importlib.import_module("acp_bridge.events")
        elif name in _LAZY:
            value = getattr(importlib.import_module(_LAZY[name]), name)
        else:
            raise AttributeError(f"module 'acp_bridge' has no attribute {name!r}")
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    """The public names, with whatever else the module holds."""
    return sorted(set(globals()) | set(__all__))

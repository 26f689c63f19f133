"""The :class:`~acp_bridge.agents.base.SessionContext` the bridge gives a backend.

``emit`` goes through the sink registry (the only path from a backend to a client). Client requests
(permission, files, terminals) go to the connection that sent the running prompt, gated on the
capabilities *that* client advertised: an un-advertised method is refused locally with
:class:`~acp_bridge.agents.base.CapabilityNotAdvertised`, without sending anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from acp_bridge.agents.base import (
    CapabilityNotAdvertised,
    ClientRequestFailed,
    PermissionOption,
    PermissionOutcome,
)
from acp_bridge.events.session_event import SessionEvent
from acp_bridge.rpc.errors import RpcError
from acp_bridge.rpc.peer import PeerClosed
from acp_bridge.sinks import SinkRegistry
from acp_bridge.translate import Profile, strict_tool_call_update

from .ports import TurnOwner
from .sessions import Session, Turn

__all__ = ["PERMISSION_TIMEOUT_SECONDS", "BridgeSessionContext"]

logger = logging.getLogger(__name__)

PERMISSION_TIMEOUT_SECONDS: Final = 24 * 3600.0
"""A person decides a permission request; only a cancel or a disconnect ends the wait early."""

_CANCELLED: Final = PermissionOutcome(None, cancelled=True)


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # emitted from a thread without an event loop
        return None


def _capability(caps: Mapping[str, Any], *path: str) -> bool:
    value: Any = caps
    for key in path:
        if not isinstance(value, Mapping):
            return False
        value = value.get(key)
    return value is True


class BridgeSessionContext:
    """A session's context; see the module docstring."""

    def __init__(self, session: Session, registry: SinkRegistry) -> None:
        self._session = session
        self._registry = registry

    @property
    def session_id(self) -> str:
        """The ACP session id."""
        return self._session.session_id

    @property
    def cwd(self) -> str:
        """The session's working directory."""
        return self._session.record.cwd

    @property
    def mcp_servers(self) -> Sequence[Mapping[str, Any]]:
        """The MCP servers of the latest ``session/new``/``load``/``resume`` (in memory only)."""
        return self._session.mcp_servers

    @property
    def _turn(self) -> Turn | None:
        return self._session.current_turn

    @property
    def _owner(self) -> TurnOwner | None:
        turn = self._turn
        if turn is None or turn.owner.closed:
            return None
        return turn.owner

    @property
    def client_capabilities(self) -> Mapping[str, Any]:
        """The capabilities of the client driving the current turn (empty if none)."""
        owner = self._owner
        return owner.client_capabilities if owner is not None else {}

    @property
    def cancelled(self) -> bool:
        """True once the current turn was cancelled."""
        turn = self._turn
        return turn is not None and turn.cancelled.is_set()

    async def wait_cancelled(self) -> None:
        """Return when the current turn is cancelled (never, outside a turn)."""
        turn = self._turn
        if turn is None:
            await asyncio.Event().wait()
            return
        await turn.cancelled.wait()

    def emit(self, event: SessionEvent) -> None:
        """Report an event through the sink registry."""
        if event.session_id != self.session_id:
            raise ValueError(
                f"event for session {event.session_id!r} emitted through session {self.session_id!r}"
            )
        if self._abandoned():
            logger.debug(
                "dropping %s event from an abandoned turn of %s", event.type, self.session_id
            )
            return
        self._registry.emit_event(event)

    def _abandoned(self) -> bool:
        """True when called from a backend task the session gave up on after a cancel.

        Such a task belongs to a turn that has been answered; the session's current turn (if any)
        is somebody else's, so nothing it does may reach a client.
        """
        abandoned = self._session.abandoned
        return bool(abandoned) and _current_task() in abandoned

    async def request_permission(
        self, tool_call: Mapping[str, Any], options: Sequence[PermissionOption]
    ) -> PermissionOutcome:
        """Ask the prompting client; ``cancelled`` when the turn is cancelled or nobody can answer."""
        turn = self._turn
        owner = self._owner
        if turn is None or owner is None or turn.cancelled.is_set() or self._abandoned():
            return _CANCELLED
        # The request follows everything the turn emitted before it (committed, then sent).
        await self._session.settle()
        if turn.cancelled.is_set() or owner.closed:
            return _CANCELLED
        # A strict client gets a valid ToolCallUpdate; Harn hosts get the backend's dict as is.
        call = (
            dict(tool_call) if owner.profile is Profile.HARN else strict_tool_call_update(tool_call)
        )
        attachment = owner.attachment(self.session_id)
        if attachment is not None:
            attachment.ensure_announced(call)
        params = {
            "sessionId": self.session_id,
            "toolCall": call,
            "options": [{"optionId": o.option_id, "name": o.name, "kind": o.kind} for o in options],
        }
        request = asyncio.ensure_future(
            owner.request("session/request_permission", params, timeout=PERMISSION_TIMEOUT_SECONDS)
        )
        turn.permission_requests.add(request)
        try:
            result = await request
        except asyncio.CancelledError:
            if turn.cancelled.is_set():
                return _CANCELLED  # session/cancel: ACP answers pending permissions "cancelled"
            raise
        except (RpcError, PeerClosed) as exc:
            logger.info("permission request failed (%s); treating it as cancelled", exc)
            return _CANCELLED
        finally:
            turn.permission_requests.discard(request)
        outcome = result.get("outcome") if isinstance(result, dict) else None
        if isinstance(outcome, dict) and outcome.get("outcome") == "selected":
            option_id = outcome.get("optionId")
            if isinstance(option_id, str) and option_id in {o.option_id for o in options}:
                return PermissionOutcome(option_id)
        # Anything else, including a malformed answer, fails closed.
        return _CANCELLED

    async def _client_request(
        self, capability: tuple[str, ...], method: str, params: dict[str, Any]
    ) -> Any:
        owner = self._owner
        if self._abandoned():
            raise ClientRequestFailed(method, -32800, "the turn was cancelled")
        if owner is None or not _capability(owner.client_capabilities, *capability):
            raise CapabilityNotAdvertised(".".join(capability), method)
        await self._session.settle()  # after what the turn emitted before it
        try:
            return await owner.request(method, {"sessionId": self.session_id, **params})
        except RpcError as exc:
            raise ClientRequestFailed(method, exc.code, exc.message, exc.data) from exc
        except PeerClosed as exc:
            raise ClientRequestFailed(method, -32603, "the client disconnected") from exc

    async def read_text_file(
        self, path: str, *, line: int | None = None, limit: int | None = None
    ) -> str:
        """``fs/read_text_file`` on the prompting client."""
        params: dict[str, Any] = {"path": path}
        if line is not None:
            params["line"] = line
        if limit is not None:
            params["limit"] = limit
        result = await self._client_request(("fs", "readTextFile"), "fs/read_text_file", params)
        content = result.get("content") if isinstance(result, dict) else None
        if not isinstance(content, str):
            raise ClientRequestFailed("fs/read_text_file", -32603, "the client returned no content")
        return content

    async def write_text_file(self, path: str, content: str) -> None:
        """``fs/write_text_file`` on the prompting client (a ``null`` or ``{}`` result are both fine)."""
        await self._client_request(
            ("fs", "writeTextFile"), "fs/write_text_file", {"path": path, "content": content}
        )

    async def terminal_request(self, method: str, params: Mapping[str, Any]) -> Any:
        """A ``terminal/*`` request on the prompting client."""
        if not method.startswith("terminal/"):
            raise ValueError(f"not a terminal method: {method}")
        return await self._client_request(("terminal",), method, dict(params))

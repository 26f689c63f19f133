"""The :class:`~acp_bridge.agents.base.SessionContext` the bridge gives a backend.

``emit`` goes through the sink registry (the only path from a backend to a client). Permission
requests go to every controller attached to the session through the session's
:class:`~acp_bridge.acp.arbiter.Arbiter` (first valid answer wins). File and terminal requests go to
the connection that sent the running prompt, gated on the capabilities *that* client advertised: an
un-advertised method is refused locally with
:class:`~acp_bridge.agents.base.CapabilityNotAdvertised`, without sending anything.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from acp_bridge.agents.base import (
    CapabilityNotAdvertised,
    ClientRequestFailed,
    ElicitationResult,
    PermissionOption,
    PermissionOutcome,
)
from acp_bridge.events.session_event import SessionEvent
from acp_bridge.rpc.errors import RpcError
from acp_bridge.rpc.peer import PeerClosed
from acp_bridge.sinks import SinkRegistry
from acp_bridge.translate import Profile, strict_tool_call_update

from .arbiter import Question
from .ports import Participant, TurnOwner
from .sessions import Session, Turn

__all__ = ["BridgeSessionContext"]

logger = logging.getLogger(__name__)

_CANCELLED: Final = PermissionOutcome(None, cancelled=True)
_ELICITATION_CANCELLED: Final = ElicitationResult("cancel")
_ELICITATION_ACTIONS: Final = frozenset({"accept", "decline", "cancel"})


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # emitted from a thread without an event loop
        return None


def _permission_answer(option_ids: set[str], result: Any) -> dict[str, Any] | None:
    """What a client's answer to a permission request means; ``None`` if it is not valid ACP."""
    outcome = result.get("outcome") if isinstance(result, dict) else None
    if not isinstance(outcome, dict):
        return None
    if outcome.get("outcome") == "cancelled":
        return {"outcome": "cancelled"}
    option_id = outcome.get("optionId")
    if outcome.get("outcome") == "selected" and option_id in option_ids:
        return {"outcome": "selected", "optionId": option_id}
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
    def additional_directories(self) -> Sequence[str]:
        """The session's workspace roots besides ``cwd`` (persisted with the session)."""
        return self._session.record.additional_directories

    def config_options_changed(self) -> None:
        """The backend changed the session's options itself: tell every client."""
        self._session.announce_config_options()

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
        session = self._session
        if event.session_id != session.session_id:
            raise ValueError(
                f"event for session {event.session_id!r} emitted through session {self.session_id!r}"
            )
        if session.abandoned and self._abandoned():
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
        return bool(abandoned) and abandoned is not None and _current_task() in abandoned

    async def request_permission(
        self, tool_call: Mapping[str, Any], options: Sequence[PermissionOption]
    ) -> PermissionOutcome:
        """Ask every controller of the session; the first valid answer (:mod:`.arbiter`).

        ``cancelled`` when the turn is cancelled, when no controller attaches in time, or when
        none gave a valid answer.
        """
        turn = self._turn
        if turn is None or turn.cancelled.is_set() or self._abandoned():
            return _CANCELLED
        # The request follows everything the turn emitted before it (committed, then sent).
        await self._session.settle()
        if turn.cancelled.is_set():
            return _CANCELLED
        option_ids = {o.option_id for o in options}
        question = Question(
            "session/request_permission",
            functools.partial(self._permission_params, tool_call, options),
            functools.partial(_permission_answer, option_ids),
            target={"toolCallId": tool_call.get("toolCallId")},
        )
        request = asyncio.ensure_future(self._session.arbiter.ask(question))
        turn.permission_requests.add(request)
        try:
            decision = await request
        except asyncio.CancelledError:
            if turn.cancelled.is_set():
                return _CANCELLED  # session/cancel: ACP answers pending permissions "cancelled"
            raise
        finally:
            turn.permission_requests.discard(request)
        answer = decision.value
        if isinstance(answer, dict) and answer.get("outcome") == "selected":
            return PermissionOutcome(answer["optionId"])
        return _CANCELLED

    async def elicit(
        self,
        message: str,
        requested_schema: Mapping[str, Any] | None = None,
        *,
        url: str | None = None,
        tool_call_id: str | None = None,
    ) -> ElicitationResult:
        """``elicitation/create`` to every controller that advertised the mode (a form, or a
        URL); the first valid answer (:mod:`.arbiter`, decision 0029)."""
        if (requested_schema is None) == (url is None):
            raise ValueError("elicit() takes a requested_schema (form) or a url, not both")
        mode = "form" if url is None else "url"
        can_show = functools.partial(_can_elicit, mode)
        turn = self._turn
        if turn is None or turn.cancelled.is_set() or self._abandoned():
            return _ELICITATION_CANCELLED
        if not any(can_show(p) for p in self._session.controllers()):
            raise CapabilityNotAdvertised(f"elicitation.{mode}", "elicitation/create")
        await self._session.settle()  # after what the turn emitted before it
        if turn.cancelled.is_set():
            return _ELICITATION_CANCELLED
        params: dict[str, Any] = {"sessionId": self.session_id, "mode": mode, "message": message}
        elicitation_id = None
        if url is not None:
            elicitation_id = f"elicit_{uuid.uuid4().hex}"
            params.update(url=url, elicitationId=elicitation_id)
        else:
            params["requestedSchema"] = dict(requested_schema or {})
        if tool_call_id is not None:
            params["toolCallId"] = tool_call_id
        question = Question(
            "elicitation/create",
            lambda _participant: dict(params),
            _elicitation_answer,
            target={"toolCallId": tool_call_id} if tool_call_id is not None else {},
            eligible=can_show,
        )
        request = asyncio.ensure_future(self._session.arbiter.ask(question))
        turn.permission_requests.add(request)  # a cancelled turn withdraws it like a permission
        try:
            decision = await request
        except asyncio.CancelledError:
            if turn.cancelled.is_set():
                return _ELICITATION_CANCELLED
            raise
        finally:
            turn.permission_requests.discard(request)
        answer = decision.value
        if not isinstance(answer, dict):
            return _ELICITATION_CANCELLED
        return ElicitationResult(answer["action"], answer.get("content"), elicitation_id)

    def complete_elicitation(self, elicitation_id: str) -> None:
        """``elicitation/complete`` to every attached controller that can show URL elicitations."""
        message = {
            "jsonrpc": "2.0",
            "method": "elicitation/complete",
            "params": {"elicitationId": elicitation_id},
        }
        for attachment, participant in list(self._session.participants.items()):
            if participant.principal.controls and _can_elicit("url", participant):
                attachment.deliver(dict(message))

    def _permission_params(
        self,
        tool_call: Mapping[str, Any],
        options: Sequence[PermissionOption],
        participant: Participant,
    ) -> dict[str, Any]:
        """One controller's copy of a permission request, in its profile."""
        # A strict client gets a valid ToolCallUpdate; Harn hosts get the backend's dict as is.
        call = (
            dict(tool_call)
            if participant.profile is Profile.HARN
            else strict_tool_call_update(tool_call)
        )
        attachment = participant.attachment(self.session_id)
        if attachment is not None:
            attachment.ensure_announced(call)
        return {
            "sessionId": self.session_id,
            "toolCall": call,
            "options": [{"optionId": o.option_id, "name": o.name, "kind": o.kind} for o in options],
        }

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


def _can_elicit(mode: str, participant: Participant) -> bool:
    """Whether the client advertised elicitation in ``mode`` (``elicitation.form``/``.url``)."""
    elicitation = participant.client_capabilities.get("elicitation")
    return isinstance(elicitation, Mapping) and isinstance(elicitation.get(mode), Mapping)


def _elicitation_answer(result: Any) -> dict[str, Any] | None:
    """What a client's answer to an elicitation means; ``None`` if it is not a valid one."""
    action = result.get("action") if isinstance(result, dict) else None
    if action not in _ELICITATION_ACTIONS:
        return None
    if action != "accept":
        return {"action": action}
    content = result.get("content")
    if content is not None and not isinstance(content, dict):
        return None
    return {"action": "accept", "content": content or {}}

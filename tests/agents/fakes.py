"""A fake :class:`~acp_bridge.agents.base.SessionContext` for driving backends in tests.

It records what the backend does (events, permission requests, file reads and writes), answers
permission requests from a script, serves files from a dict, and can cancel the turn when a chosen
event is emitted or when a permission request or a read arrives, the way the ACP layer would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from acp_bridge.agents.base import (
    CapabilityNotAdvertised,
    ClientRequestFailed,
    ElicitationResult,
    PermissionOption,
    PermissionOutcome,
)
from acp_bridge.events.harn import AgentEventBase

CANCEL = "<cancel>"
"""A permission answer: cancel the turn, then answer ``cancelled`` (as the ACP layer does)."""


@dataclass(frozen=True)
class PermissionRequest:
    """One recorded ``session/request_permission``."""

    tool_call: dict[str, Any]
    options: list[PermissionOption]


@dataclass(frozen=True)
class Read:
    """One recorded ``fs/read_text_file``."""

    path: str
    line: int | None
    limit: int | None


class FakeSessionContext:
    """Records everything; scripted answers; see the module docstring."""

    def __init__(
        self,
        session_id: str = "sess-demo",
        cwd: str = "/work/project",
        *,
        fs_read: bool = True,
        files: Mapping[str, str] | None = None,
        permission: Sequence[str] = ("allow",),
        cancel_when: Callable[[AgentEventBase], bool] | None = None,
        read_error: Exception | None = None,
        read_hangs: bool = False,
        mcp_servers: Sequence[Mapping[str, Any]] = (),
        additional_directories: Sequence[str] = (),
    ) -> None:
        self._session_id = session_id
        self.config_changes = 0
        self.elicitations: list[tuple[str, Any, str | None]] = []
        self.completed_elicitations: list[str] = []
        self.elicitation_answer = ElicitationResult("decline")
        self._additional_directories = tuple(additional_directories)
        self._cwd = cwd
        self._mcp_servers = tuple(mcp_servers)
        self._capabilities: dict[str, Any] = {
            "fs": {"readTextFile": fs_read, "writeTextFile": False},
            "terminal": False,
        }
        self.files = dict(files or {})
        self._answers = list(permission)
        self.cancel_when = cancel_when
        self.read_error = read_error
        self.read_hangs = read_hangs
        self.events: list[AgentEventBase] = []
        self.permission_requests: list[PermissionRequest] = []
        self.reads: list[Read] = []
        self.writes: list[tuple[str, str]] = []
        self._cancelled = asyncio.Event()

    # --- test controls ---------------------------------------------------------------------------

    def cancel(self) -> None:
        """Cancel the current turn (what ``session/cancel`` does)."""
        self._cancelled.set()

    def new_turn(self) -> None:
        """Reset the cancel flag, as the ACP layer does for each prompt."""
        self._cancelled = asyncio.Event()

    @property
    def types(self) -> list[str]:
        """The ``type`` of every emitted event, in order."""
        return [e.type for e in self.events]

    # --- SessionContext ------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def cwd(self) -> str:
        return self._cwd

    @property
    def mcp_servers(self) -> Sequence[Mapping[str, Any]]:
        return self._mcp_servers

    def config_options_changed(self) -> None:
        self.config_changes += 1

    async def elicit(
        self,
        message: str,
        requested_schema: Mapping[str, Any] | None = None,
        *,
        url: str | None = None,
        tool_call_id: str | None = None,
    ) -> ElicitationResult:
        self.elicitations.append(
            (message, dict(requested_schema) if requested_schema else url, tool_call_id)
        )
        return self.elicitation_answer

    def complete_elicitation(self, elicitation_id: str) -> None:
        self.completed_elicitations.append(elicitation_id)

    @property
    def additional_directories(self) -> Sequence[str]:
        return self._additional_directories

    @property
    def client_capabilities(self) -> Mapping[str, Any]:
        return self._capabilities

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    async def wait_cancelled(self) -> None:
        await self._cancelled.wait()

    def emit(self, event: AgentEventBase) -> None:
        assert event.session_id == self._session_id
        self.events.append(event)
        if self.cancel_when is not None and self.cancel_when(event):
            self.cancel()

    async def request_permission(
        self, tool_call: Mapping[str, Any], options: Sequence[PermissionOption]
    ) -> PermissionOutcome:
        self.permission_requests.append(PermissionRequest(dict(tool_call), list(options)))
        if self.cancelled:
            return PermissionOutcome(None, cancelled=True)
        answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if answer == CANCEL:
            self.cancel()
            return PermissionOutcome(None, cancelled=True)
        return PermissionOutcome(answer)

    async def read_text_file(
        self, path: str, *, line: int | None = None, limit: int | None = None
    ) -> str:
        if not self._capabilities["fs"]["readTextFile"]:
            raise CapabilityNotAdvertised("fs.readTextFile", "fs/read_text_file")
        self.reads.append(Read(path, line, limit))
        if self.read_hangs:
            self.cancel()
            await asyncio.Event().wait()
        if self.read_error is not None:
            raise self.read_error
        if path not in self.files:
            raise ClientRequestFailed("fs/read_text_file", -32002, f"Resource not found: {path}")
        lines = self.files[path].splitlines(keepends=True)
        start = (line or 1) - 1
        return "".join(lines[start : None if limit is None else start + limit])

    async def write_text_file(self, path: str, content: str) -> None:
        self.writes.append((path, content))
        raise CapabilityNotAdvertised("fs.writeTextFile", "fs/write_text_file")

    async def terminal_request(self, method: str, params: Mapping[str, Any]) -> Any:
        raise CapabilityNotAdvertised("terminal", method)

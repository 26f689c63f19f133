"""Driving the bridge with the official ACP Python SDK client, with every agent message validated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from acp import RequestError, connect_to_agent
from acp.client.connection import ClientSideConnection
from acp.connection import StreamDirection, StreamEvent
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    ReadTextFileResponse,
    RequestPermissionResponse,
    WriteTextFileResponse,
)
from acp.ws import create_websocket_stream

from tests.support.acp_schema import SchemaViolation, acp_schema
from tests.support.replay_compare import overlay_update


def declaring(*extensions: str) -> ClientCapabilities:
    """SDK client capabilities that declare the given extension methods (see docs/clients.md)."""
    return ClientCapabilities(field_meta={"acp_bridge": {"extensions": list(extensions)}})


class WireValidator:
    """An SDK stream observer: validates every message the agent sends, per method."""

    def __init__(self) -> None:
        self.methods: dict[Any, str] = {}
        self.violations: list[str] = []
        self.incoming: list[dict[str, Any]] = []

    def __call__(self, event: StreamEvent) -> None:
        message = event.message
        if event.direction is StreamDirection.OUTGOING:
            if "method" in message and "id" in message:
                self.methods[message["id"]] = message["method"]
            return
        self.incoming.append(message)
        method = None if "method" in message else self.methods.get(message.get("id"))
        try:
            acp_schema().check_agent_message(message, request_method=method)
        except SchemaViolation as exc:
            self.violations.append(str(exc))


class RecordingClient:
    """The client side: records updates, answers permission and file requests.

    A plain class on purpose: subclassing the SDK's ``Client`` protocol would answer unknown methods
    with ``null`` instead of ``-32601``.
    """

    def __init__(
        self, permission: str | None = "allow", files: dict[str, str] | None = None
    ) -> None:
        self.permission = permission
        self.files = files or {}
        self.updates: list[tuple[str, Any]] = []
        self.permission_requests: list[Any] = []
        self.ext: list[tuple[str, dict[str, Any]]] = []
        self.hold_permission: asyncio.Event | None = None
        self.permission_asked = asyncio.Event()

    async def request_permission(
        self, session_id: str, tool_call: Any, options: list[Any], **_: Any
    ) -> RequestPermissionResponse:
        self.permission_requests.append(tool_call)
        self.permission_asked.set()
        if self.hold_permission is not None:
            await self.hold_permission.wait()
        if self.permission is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=self.permission)
        )

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        self.updates.append((session_id, update))

    async def read_text_file(
        self,
        session_id: str,
        path: str,
        line: int | None = None,
        limit: int | None = None,
        **_: Any,
    ) -> ReadTextFileResponse:
        if path not in self.files:
            raise RequestError.resource_not_found(path)
        return ReadTextFileResponse(content=self.files[path])

    async def write_text_file(
        self, session_id: str, path: str, content: str, **_: Any
    ) -> WriteTextFileResponse:
        self.files[path] = content
        return WriteTextFileResponse()

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RequestError.method_not_found(method)

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        self.ext.append((method, params))

    def on_connect(self, conn: Any) -> None:
        pass

    def kinds(self, session_id: str | None = None) -> list[str]:
        """The ``sessionUpdate`` discriminators received, in order."""
        return [
            u.session_update for sid, u in self.updates if session_id is None or sid == session_id
        ]

    def text(self, session_id: str) -> str:
        """The concatenated agent message text of a session."""
        return "".join(
            u.content.text
            for sid, u in self.updates
            if sid == session_id and u.session_update == "agent_message_chunk"
        )


@asynccontextmanager
async def sdk_websocket_client(
    url: str, client: RecordingClient, *, token: str | None = None, unstable: bool = False
) -> AsyncIterator[tuple[ClientSideConnection, WireValidator]]:
    """An SDK ``ClientSideConnection`` over the SDK's own WebSocket transport.

    ``unstable`` turns on the SDK's methods it still calls unstable (elicitation, in the SDK
    release we test with, though schema v1.21 has it stable)."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    transport = await create_websocket_stream(url, headers=headers)
    validator = WireValidator()
    conn = connect_to_agent(  # type: ignore[arg-type]
        client, transport, observers=[validator], use_unstable_protocol=unstable
    )
    try:
        yield conn, validator
    finally:
        await conn.close()


def history(updates: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Updates as comparable dicts, for "load replays what the live client saw" checks.

    Left out: replay markers, the user's prompts (a live client is not echoed its own prompt; a replay
    includes it), command announcements (sent after the new/load response, so at a different place)
    and session info (the session's title and activity now, not history: ``session/list`` has it).
    """
    out = []
    for _, update in updates:
        if update.session_update in (
            "available_commands_update",
            "user_message_chunk",
            "session_info_update",
        ):
            continue
        dumped = update.model_dump(mode="json", by_alias=True, exclude_none=True)
        meta = dumped.pop("_meta", None) or {}
        harn = {k: v for k, v in (meta.get("harn") or {}).items() if k != "replayed"}
        rest = {k: v for k, v in meta.items() if k != "harn"}
        if harn:
            rest["harn"] = harn
        if rest:
            dumped["_meta"] = rest
        out.append(dumped)
    return out


def compacted(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``history(...)`` of a live stream as a compacted replay shows it: each run of consecutive
    agent message (or thought) text chunks merged into one with their text joined and the last
    chunk's other fields (its event id); each run of one tool call's updates merged into one."""
    out: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("sessionUpdate")
        if (
            kind == "tool_call_update"
            and out
            and out[-1].get("sessionUpdate") == kind
            and out[-1].get("toolCallId") == item.get("toolCallId")
        ):
            out[-1] = overlay_update(out[-1], item)  # one call's updates: its final state
            continue
        content = item.get("content")
        mergeable = kind in ("agent_message_chunk", "agent_thought_chunk") and (
            isinstance(content, dict) and content.get("type") == "text"
        )
        if mergeable and out and out[-1].get("sessionUpdate") == kind and _is_text(out[-1]):
            merged = {
                **item,
                "content": {**content, "text": out[-1]["content"]["text"] + content["text"]},
            }
            out[-1] = merged
        else:
            out.append(item)
    return out


def _is_text(item: dict[str, Any]) -> bool:
    content = item.get("content")
    return isinstance(content, dict) and content.get("type") == "text"

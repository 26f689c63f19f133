"""The demo's two tool calls: ``read`` (through the client when it can) and ``edit`` (never written).

Which file they work on is chosen here too: the demo always reads and proposes to edit the same one.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any, Final

from acp_bridge.agents.base import PermissionOption
from acp_bridge.agents.demo.turn import Turn, TurnCancelled, unless_cancelled
from acp_bridge.events.harn import ToolCall, ToolCallUpdate
from acp_bridge.events.harn_types import (
    ToolCallErrorCategory,
    ToolCallStatus,
    ToolExecutorHarnBuiltin,
    ToolKind,
)

__all__ = ["display_path", "edit", "pick_path", "read"]

READ_TOOL: Final = "read_file"
EDIT_TOOL: Final = "edit_file"

ALLOW: Final = PermissionOption(option_id="allow", name="Allow", kind="allow_once")
REJECT: Final = PermissionOption(option_id="reject", name="Reject", kind="reject_once")

READ_LIMIT: Final = 20
"""Lines asked for with ``fs/read_text_file``."""
EXCERPT_CHARS: Final = 2000
REVIEW_NOTE: Final = "> Reviewed by the acp-bridge demo agent."
CANNED_EXCERPT: Final = (
    "# Demo project\n"
    "\n"
    "This excerpt is canned: the demo agent could not read the file through the client.\n"
)
# Fixed, plausible timings: the demo is deterministic, so nothing here is measured.
READ_DURATION_MS: Final = 12
READ_EXECUTION_MS: Final = 9
EDIT_DURATION_MS: Final = 7
EDIT_EXECUTION_MS: Final = 4


def pick_path(cwd: str) -> str:
    """``README.md`` under ``cwd``, else the first (sorted, non-hidden) file there.

    The bridge may not share the client's filesystem; when ``cwd`` cannot be listed locally the
    README path is used anyway and the client decides.
    """
    readme = os.path.join(cwd, "README.md")
    try:
        if os.path.isfile(readme):
            return readme
        with os.scandir(cwd) as entries:
            names = sorted(e.name for e in entries if not e.name.startswith(".") and e.is_file())
    except OSError:
        return readme
    return os.path.join(cwd, names[0]) if names else readme


def display_path(path: str, cwd: str) -> str:
    """``path`` relative to ``cwd`` when it is under it, as the demo names it to the user."""
    try:
        relative = os.path.relpath(path, cwd)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith("..") else relative


def _fs_read_advertised(capabilities: Mapping[str, Any]) -> bool:
    fs = capabilities.get("fs")
    return isinstance(fs, Mapping) and fs.get("readTextFile") is True


def _excerpt(text: str) -> tuple[str, bool]:
    """At most :data:`READ_LIMIT` lines and :data:`EXCERPT_CHARS` characters; and whether it was cut."""
    lines = text.splitlines(keepends=True)
    excerpt = "".join(lines[:READ_LIMIT])
    truncated = len(lines) > READ_LIMIT
    if len(excerpt) > EXCERPT_CHARS:
        excerpt, truncated = excerpt[:EXCERPT_CHARS], True
    return excerpt, truncated


def _proposed_edit(content: str) -> tuple[str, str]:
    """``(old_text, new_text)``: add a review note under the first non-blank line of ``content``."""
    for line in content.splitlines():
        if line.strip():
            old = line + "\n"
            return old, f"{old}\n{REVIEW_NOTE}\n"
    return "", REVIEW_NOTE + "\n"


def _unified_diff(old: str, new: str, name: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
    )


async def _call(turn: Turn, call_id: str, tool: str, kind: ToolKind, raw_input: Any) -> None:
    """Announce a tool call (``pending``); it counts in the iteration's ``tool_count``."""
    turn.tool_count += 1
    await turn.step(
        ToolCall(
            session_id=turn.ctx.session_id,
            tool_call_id=call_id,
            tool_name=tool,
            kind=kind,
            status=ToolCallStatus.PENDING,
            raw_input=raw_input,
        )
    )


async def _fetch(turn: Turn, path: str) -> tuple[str, dict[str, Any]]:
    """The file's text, and the start of the tool's output saying where the text came from."""
    ctx = turn.ctx
    output: dict[str, Any] = {"path": path}
    if not _fs_read_advertised(ctx.client_capabilities):
        output |= {"source": "canned", "note": "the client did not advertise fs.readTextFile"}
        return CANNED_EXCERPT, output
    try:
        text = await unless_cancelled(ctx, ctx.read_text_file(path, limit=READ_LIMIT))
    except TurnCancelled:
        raise
    except Exception as error:  # a client error must never fail the demo turn
        output |= {"source": "canned", "note": f"reading through the client failed: {error}"}
        return CANNED_EXCERPT, output
    output["source"] = "client"
    return text, output


async def read(turn: Turn, path: str) -> str:
    """The ``read`` tool call; returns the text read (or the canned excerpt)."""
    sid = turn.ctx.session_id
    call_id = f"tool-{turn.turn}-read"
    await _call(turn, call_id, READ_TOOL, ToolKind.READ, {"path": path})
    await turn.step(
        ToolCallUpdate(
            session_id=sid,
            tool_call_id=call_id,
            tool_name=READ_TOOL,
            status=ToolCallStatus.IN_PROGRESS,
        )
    )
    text, output = await _fetch(turn, path)
    text, truncated = _excerpt(text)
    output |= {"content": text, "lines": len(text.splitlines()), "truncated": truncated}
    await turn.step(
        ToolCallUpdate(
            session_id=sid,
            tool_call_id=call_id,
            tool_name=READ_TOOL,
            status=ToolCallStatus.COMPLETED,
            raw_output=output,
            duration_ms=READ_DURATION_MS,
            execution_duration_ms=READ_EXECUTION_MS,
            executor=ToolExecutorHarnBuiltin(),
        )
    )
    return text


async def _permission(turn: Turn, request: dict[str, Any]) -> tuple[bool, str | None]:
    """Whether the user allowed the edit, and the error when the client could not ask."""
    turn.check()
    try:
        outcome = await turn.ctx.request_permission(request, [ALLOW, REJECT])
    except Exception as exc:  # the client could not answer: treat it as a refusal
        turn.check()
        return False, f"permission request failed: {exc}"
    if outcome.cancelled:
        raise TurnCancelled
    turn.check()
    return outcome.allowed, None


async def edit(turn: Turn, path: str, shown: str, content: str) -> str:
    """The ``edit`` tool call behind a permission request; returns a closing sentence."""
    call_id = f"tool-{turn.turn}-edit"
    old_text, new_text = _proposed_edit(content)
    raw_input = {"path": path, "old_text": old_text, "new_text": new_text}
    await _call(turn, call_id, EDIT_TOOL, ToolKind.EDIT, raw_input)
    allowed, error = await _permission(
        turn,
        {
            "toolCallId": call_id,
            "title": f"Edit {shown}",
            "kind": "edit",
            "rawInput": raw_input,
            "content": [{"type": "diff", "path": path, "oldText": old_text, "newText": new_text}],
        },
    )
    if not allowed:
        await turn.step(
            ToolCallUpdate(
                session_id=turn.ctx.session_id,
                tool_call_id=call_id,
                tool_name=EDIT_TOOL,
                status=ToolCallStatus.FAILED,
                error=error or "rejected by the user",
                error_category=ToolCallErrorCategory.PERMISSION_DENIED,
            )
        )
        return f"The edit was not allowed, so {shown} stays as it is."
    await turn.step(
        ToolCallUpdate(
            session_id=turn.ctx.session_id,
            tool_call_id=call_id,
            tool_name=EDIT_TOOL,
            status=ToolCallStatus.COMPLETED,
            raw_output={"diff": _unified_diff(old_text, new_text, shown)},
            duration_ms=EDIT_DURATION_MS,
            execution_duration_ms=EDIT_EXECUTION_MS,
            executor=ToolExecutorHarnBuiltin(),
        )
    )
    return f"You allowed the edit; being a demo, I left {shown} untouched (the diff is in the tool output)."

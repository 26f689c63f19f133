"""A small ACP agent in Python: it keeps your notes in NOTES.md, asking before each edit.

Each prompt is a note. The agent streams a reply, reports an ``append_note`` tool call, asks the
client's permission, and once allowed appends the note to NOTES.md in the session's directory through
the client (``fs/read_text_file`` and ``fs/write_text_file``). A cancelled turn stops at once.

Serve it with either of

    acp-bridge serve --agent python:examples.python_agent:agent
    python examples/python_agent.py

and point an ACP client at ws://127.0.0.1:8765/acp (docs/python-api.md explains every part).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import uuid
from typing import Any

from acp_bridge import (
    AgentMessageChunk,
    BackendError,
    BaseBackend,
    ClientRequestFailed,
    PermissionOption,
    SessionContext,
    StopReason,
    ToolCall,
    ToolCallErrorCategory,
    ToolCallStatus,
    ToolCallUpdate,
    ToolKind,
    serve,
)

ALLOW = PermissionOption(option_id="allow", name="Allow", kind="allow_once")
REJECT = PermissionOption(option_id="reject", name="Reject", kind="reject_once")
RESOURCE_NOT_FOUND = -32002  # what a client answers fs/read_text_file for a missing file


class NotesAgent(BaseBackend):
    """Appends each prompt to NOTES.md, with the user's permission."""

    def __init__(self, word_delay: float = 0.02) -> None:
        super().__init__(name="notes")
        self.word_delay = word_delay  # stands in for a model producing tokens

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        note = " ".join(b["text"] for b in prompt if b.get("type") == "text").strip()
        if not note:
            await self.say(ctx, "Send me some text and I will add it to NOTES.md.")
            return StopReason.CANCELLED if ctx.cancelled else StopReason.END_TURN

        # 1. Stream a reply.
        await self.say(ctx, f"Noted: “{note}”. I'll add it to NOTES.md if you allow it.\n")
        if ctx.cancelled:
            return StopReason.CANCELLED

        # 2. Report a tool call, and read the file it will change.
        path = os.path.join(ctx.cwd, "NOTES.md")
        call_id = f"note-{uuid.uuid4().hex[:12]}"  # unique in the session, across restarts too

        def update(status: ToolCallStatus, **fields: Any) -> None:
            ctx.emit(
                ToolCallUpdate(
                    session_id=ctx.session_id,
                    tool_call_id=call_id,
                    tool_name="append_note",
                    status=status,
                    **fields,
                )
            )

        ctx.emit(
            ToolCall(
                session_id=ctx.session_id,
                tool_call_id=call_id,
                tool_name="append_note",
                kind=ToolKind.EDIT,
                status=ToolCallStatus.PENDING,
                raw_input={"path": path, "note": note},
            )
        )
        try:
            old = await read_or_empty(ctx, path)
        except BackendError as error:  # no fs capability, or the client refused
            update(ToolCallStatus.FAILED, error=str(error))
            await self.say(ctx, f"I cannot read NOTES.md: {error}")
            return StopReason.CANCELLED if ctx.cancelled else StopReason.END_TURN
        new = old + ("\n" if old and not old.endswith("\n") else "") + f"- {note}\n"

        # 3. Ask permission, showing the diff.
        outcome = await ctx.request_permission(
            {
                "toolCallId": call_id,
                "title": "Append to NOTES.md",
                "kind": "edit",
                "content": [{"type": "diff", "path": path, "oldText": old or None, "newText": new}],
            },
            [ALLOW, REJECT],
        )
        if outcome.cancelled:  # the turn was cancelled while the user was deciding
            update(
                ToolCallStatus.FAILED,
                error="cancelled",
                error_category=ToolCallErrorCategory.CANCELLED,
            )
            return StopReason.CANCELLED
        if not outcome.allowed:
            update(
                ToolCallStatus.FAILED,
                error="rejected by the user",
                error_category=ToolCallErrorCategory.PERMISSION_DENIED,
            )
            await self.say(ctx, "Fine, NOTES.md stays as it is.")
            return StopReason.CANCELLED if ctx.cancelled else StopReason.END_TURN

        # 4. Make the edit through the client, and report how it went.
        try:
            await ctx.write_text_file(path, new)
        except BackendError as error:
            update(ToolCallStatus.FAILED, error=str(error))
            await self.say(ctx, f"I could not write NOTES.md: {error}")
        else:
            update(ToolCallStatus.COMPLETED, raw_output={"path": path, "content": new})
            await self.say(ctx, "Done: the note is in NOTES.md.")
        return StopReason.CANCELLED if ctx.cancelled else StopReason.END_TURN

    async def say(self, ctx: SessionContext, text: str) -> None:
        """Stream ``text`` word by word; stop as soon as the turn is cancelled."""
        for word in re.findall(r"\S+\s*", text):
            if ctx.cancelled:
                return
            ctx.emit(AgentMessageChunk(session_id=ctx.session_id, content=word))
            await asyncio.sleep(self.word_delay)


async def read_or_empty(ctx: SessionContext, path: str) -> str:
    """The client's file at ``path``, or ``""`` if it does not exist yet."""
    try:
        return await ctx.read_text_file(path)
    except ClientRequestFailed as error:
        if error.code == RESOURCE_NOT_FOUND:
            return ""
        raise


agent = NotesAgent()


async def main() -> None:
    logging.basicConfig(level=logging.INFO)  # shows the URL it serves at
    await serve(agent, host="127.0.0.1", port=8765)  # until Ctrl-C


if __name__ == "__main__":
    asyncio.run(main())

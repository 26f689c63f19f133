"""The demo backend: a deterministic, scripted agent with no model and no network.

It is the embedded default of ``acp-bridge serve``. Each turn emits a realistic Harn turn: an iteration
start, a skill activation, thoughts, a streamed reply that quotes the prompt, a ``harn.plan.v1`` plan,
a ``read`` tool call (through the client's ``fs/read_text_file`` when it was advertised, otherwise a
canned excerpt), an ``edit`` tool call that asks the user's permission (and never writes anything),
a closing message, the completed plan and an iteration end.

Everything is derived from the session id, the turn number, the prompt and the file that was read, so
the same prompt gives the same events. The turn honours cancellation between every step.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import os
import re
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from acp_bridge.agents.base import (
    BackendError,
    BaseBackend,
    PermissionOption,
    PromptCapabilities,
    SessionContext,
    SessionMode,
    SlashCommand,
    StopReason,
)
from acp_bridge.events.harn import (
    AgentEventBase,
    AgentMessageChunk,
    AgentThoughtChunk,
    IterationEnd,
    IterationStart,
    Plan,
    SkillActivated,
    ToolCall,
    ToolCallUpdate,
)
from acp_bridge.events.harn_types import (
    ToolCallErrorCategory,
    ToolCallStatus,
    ToolExecutorHarnBuiltin,
    ToolKind,
)

__all__ = ["DemoBackend", "create_backend"]

PROVIDER: Final = "demo"
MODEL: Final = "scripted-1"
SKILL: Final = "demo-skill"
READ_TOOL: Final = "read_file"
EDIT_TOOL: Final = "edit_file"

ALLOW: Final = PermissionOption(option_id="allow", name="Allow", kind="allow_once")
REJECT: Final = PermissionOption(option_id="reject", name="Reject", kind="reject_once")

MODES: Final = (
    SessionMode(
        id="ask", name="Ask", description="Answer and propose edits, asking before each one"
    ),
    SessionMode(id="code", name="Code", description="Work on the code (the demo still asks first)"),
)
DEFAULT_MODE: Final = MODES[0].id

COMMANDS: Final = (
    SlashCommand(
        name="plan",
        description="Draft a plan for a task, without running tools",
        input_hint="what to plan",
    ),
    SlashCommand(
        name="explain",
        description="Read a file and explain it, without editing anything",
        input_hint="what to explain",
    ),
    SlashCommand(
        name="echo",
        description="Echo the text back (a short turn, no tools)",
        input_hint="text to echo",
    ),
)

READ_LIMIT: Final = 20
"""Lines asked for with ``fs/read_text_file``."""
EXCERPT_CHARS: Final = 2000
QUOTE_CHARS: Final = 200
WORDS_PER_CHUNK: Final = 6
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
RESPONSE_MS: Final = 240

_T = TypeVar("_T")
_WORD = re.compile(r"\S+\s*")
_COMMAND = re.compile(r"/(\w+)(?:\s+(.*))?\Z", re.DOTALL)


class _TurnCancelled(Exception):
    """Raised inside a turn once ``ctx.cancelled`` is seen; the turn returns ``cancelled``."""


@dataclass
class _SessionState:
    turns: int = 0
    iterations: int = 0
    mode: str = DEFAULT_MODE


@dataclass(frozen=True, slots=True)
class _Prompt:
    """What the demo understood of a prompt."""

    text: str
    """The text blocks, joined by blank lines and stripped."""
    resources: tuple[str, ...]
    """URIs of ``resource_link`` and ``resource`` blocks."""
    others: tuple[str, ...]
    """Short descriptions of the remaining blocks (images, audio, unknown types)."""


def _parse_prompt(blocks: Sequence[Any]) -> _Prompt:
    texts: list[str] = []
    resources: list[str] = []
    others: list[str] = []
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "resource_link" and isinstance(block.get("uri"), str):
            resources.append(block["uri"])
        elif kind == "resource":
            resource = block.get("resource")
            uri = resource.get("uri") if isinstance(resource, Mapping) else None
            resources.append(uri if isinstance(uri, str) else "an embedded resource")
        elif kind in ("image", "audio"):
            mime = block.get("mimeType")
            others.append(f"an {kind} ({mime})" if isinstance(mime, str) else f"an {kind}")
        elif isinstance(kind, str):
            others.append(f"a {kind} block")
    return _Prompt("\n\n".join(texts).strip(), tuple(resources), tuple(others))


def _quote(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _chunks(text: str) -> list[str]:
    """Split ``text`` into word groups whose concatenation is ``text``."""
    words = _WORD.findall(text)
    return [
        "".join(words[i : i + WORDS_PER_CHUNK]) for i in range(0, len(words), WORDS_PER_CHUNK)
    ] or ([text] if text else [])


def _sentence(prefix: str, quoted: str) -> str:
    """``prefix`` + ``quoted``, ended by a full stop unless the quote already ends a sentence."""
    return prefix + quoted + ("" if quoted[-2:-1] in (".", "!", "?", "…") else ".")


def _word_count(text: str) -> int:
    return len(text.split())


def _fs_read_advertised(capabilities: Mapping[str, Any]) -> bool:
    fs = capabilities.get("fs")
    return isinstance(fs, Mapping) and fs.get("readTextFile") is True


def _pick_path(cwd: str) -> str:
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


def _display_path(path: str, cwd: str) -> str:
    try:
        relative = os.path.relpath(path, cwd)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith("..") else relative


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


async def _unless_cancelled(ctx: SessionContext, work: Coroutine[Any, Any, _T]) -> _T:
    """Await ``work``, or raise :class:`_TurnCancelled` as soon as the turn is cancelled."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(ctx.wait_cancelled())
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        pending = [t for t in (task, watcher) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    if task.done() and not task.cancelled():
        return task.result()
    raise _TurnCancelled


class _Turn:
    """One turn's emitting, pacing and cancellation checks, and the counters for ``iteration_end``."""

    def __init__(self, ctx: SessionContext, delay: float, turn: int, iteration: int) -> None:
        self.ctx = ctx
        self.delay = delay
        self.turn = turn
        self.iteration = iteration
        self.output_words = 0
        self.tool_count = 0

    def check(self) -> None:
        if self.ctx.cancelled:
            raise _TurnCancelled

    async def step(self, event: AgentEventBase) -> None:
        """Emit one event, pause when pacing is on, and stop if the turn was cancelled meanwhile."""
        self.check()
        self.ctx.emit(event)
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        self.check()

    async def thought(self, text: str) -> None:
        self.output_words += _word_count(text)
        await self.step(AgentThoughtChunk(session_id=self.ctx.session_id, content=text))

    async def say(self, text: str) -> None:
        """Stream ``text`` as several message chunks."""
        self.output_words += _word_count(text)
        for chunk in _chunks(text):
            await self.step(AgentMessageChunk(session_id=self.ctx.session_id, content=chunk))


class DemoBackend(BaseBackend):
    """A scripted agent: same prompt, same events; no model, no network, never writes files.

    ``step_delay`` seconds pass between streamed steps so that a real client looks alive; tests pass
    ``0`` (no sleeping at all). Sessions start in the first of :meth:`modes` (``ask``).
    """

    def __init__(self, step_delay: float = 0.03) -> None:
        super().__init__(name="demo", prompt_capabilities=PromptCapabilities(embedded_context=True))
        self.step_delay = step_delay
        self._sessions: dict[str, _SessionState] = {}

    # --- sessions ------------------------------------------------------------------------------

    def _state(self, ctx: SessionContext) -> _SessionState:
        return self._sessions.setdefault(ctx.session_id, _SessionState())

    async def new_session(self, ctx: SessionContext) -> None:
        """Start the session's turn and iteration counters at zero, in the default mode."""
        self._sessions[ctx.session_id] = _SessionState()

    async def load_session(self, ctx: SessionContext) -> None:
        """Keep the session's state if it is known; a session from before a restart starts afresh."""
        self._state(ctx)

    async def close_session(self, ctx: SessionContext) -> None:
        """Forget the session's counters and mode."""
        self._sessions.pop(ctx.session_id, None)

    def modes(self) -> Sequence[SessionMode]:
        """``ask`` (the default) and ``code``; the reply mentions the current one."""
        return MODES

    async def set_mode(self, ctx: SessionContext, mode_id: str) -> None:
        """Store the session's mode; an unknown mode is a :class:`BackendError`."""
        if mode_id not in {mode.id for mode in MODES}:
            raise BackendError(f"unknown mode {mode_id!r}")
        self._state(ctx).mode = mode_id

    def mode_of(self, session_id: str) -> str:
        """The current mode of a session (the default for an unknown session)."""
        state = self._sessions.get(session_id)
        return state.mode if state is not None else DEFAULT_MODE

    def commands(self) -> Sequence[SlashCommand]:
        """``/plan``, ``/explain`` and ``/echo``."""
        return COMMANDS

    async def cancel(self, ctx: SessionContext) -> None:
        """Nothing to do: the turn checks ``ctx.cancelled`` between steps and stops there."""

    # --- turns ---------------------------------------------------------------------------------

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        """Run one scripted turn; ``cancelled`` as soon as the turn is cancelled, else ``end_turn``.

        ``/echo <text>`` answers ``<text>`` as one message chunk and nothing else; ``/plan`` stops
        after the plan (no tools); ``/explain`` reads but does not edit; anything else runs the
        whole turn.
        """
        state = self._state(ctx)
        turn_number = state.turns
        state.turns += 1
        parsed = _parse_prompt(prompt)
        match = _COMMAND.match(parsed.text)
        command = f"/{match[1]}" if match else ""
        argument = (match[2] or "") if match else ""
        if command == "/echo":
            turn = _Turn(ctx, self.step_delay, turn_number, state.iterations)
            try:
                turn.check()
                if argument:
                    await turn.step(AgentMessageChunk(session_id=ctx.session_id, content=argument))
            except _TurnCancelled:
                return StopReason.CANCELLED
            return StopReason.END_TURN
        if command in ("/plan", "/explain"):
            parsed = _Prompt(argument.strip(), parsed.resources, parsed.others)
        else:
            command = ""
        turn = _Turn(ctx, self.step_delay, turn_number, state.iterations)
        state.iterations += 1
        try:
            await self._run(turn, parsed, command, state.mode)
        except _TurnCancelled:
            return StopReason.CANCELLED
        return StopReason.END_TURN

    async def _run(self, turn: _Turn, prompt: _Prompt, command: str, mode: str) -> None:
        ctx = turn.ctx
        sid = ctx.session_id
        read = command != "/plan"
        edit = command == ""
        path = _pick_path(ctx.cwd)
        shown = _display_path(path, ctx.cwd)

        await turn.step(
            IterationStart(session_id=sid, iteration=turn.iteration, provider=PROVIDER, model=MODEL)
        )
        await turn.step(
            SkillActivated(
                session_id=sid,
                skill_name=SKILL,
                iteration=turn.iteration,
                reason="the demo agent always works with its demo skill",
            )
        )

        # Thinking.
        about = f"“{_quote(prompt.text, 80)}”" if prompt.text else "a prompt without text"
        await turn.thought(_sentence("The user sent ", about) + " I'll plan a short, safe turn. ")
        if command == "/plan":
            await turn.thought("They asked for a plan only, so no tools this time.")
        elif command == "/explain":
            await turn.thought(f"I'll read {shown} and explain what I find, without editing it.")
        else:
            await turn.thought(
                f"I'll read {shown} for context, then propose a small edit and wait for approval."
            )

        # The reply quotes the prompt.
        quoted = f"“{_quote(prompt.text, QUOTE_CHARS)}”" if prompt.text else ""
        if command:
            parts = [
                _sentence(f"You asked for {command}: ", quoted)
                if quoted
                else f"You asked for {command}."
            ]
        else:
            parts = [_sentence("You wrote: ", quoted) if quoted else "Your prompt had no text."]
        if prompt.resources:
            parts.append("You attached " + ", ".join(prompt.resources) + ".")
        if prompt.others:
            parts.append("It also contained " + ", ".join(prompt.others) + ".")
        parts.append(f"(Session mode: {mode}.) I am the scripted demo agent: no model, no network.")
        if command == "/plan":
            parts.append("Here is the plan I would follow.")
        elif command == "/explain":
            parts.append(f"Let me read {shown} and explain it.")
        else:
            parts.append(
                f"Let me read {shown}, then propose an edit; I will ask before touching anything."
            )
        await turn.say(" ".join(parts) + "\n\n")

        # The plan.
        steps: list[tuple[str, str]] = [("Understand the request", "high")]
        if read:
            steps.append((f"Read {shown} for context", "medium"))
        if edit:
            steps.append((f"Propose an edit to {shown}, with your permission", "medium"))
        steps.append(("Summarise what happened", "low"))
        plan_id = "plan_" + hashlib.sha256(f"{sid}\0{turn.turn}".encode()).hexdigest()[:12]
        title = _quote(prompt.text, 60) or "Demo turn"

        def plan(statuses: Sequence[str]) -> Plan:
            return Plan(
                session_id=sid,
                plan={
                    "_type": "plan_artifact",
                    "schema_version": "harn.plan.v1",
                    "tool": "emit_plan",
                    "title": title,
                    "summary": f"A scripted demo turn in {len(steps)} steps.",
                    "steps": [
                        {
                            "id": f"step-{i}",
                            "content": step_text,
                            "status": status,
                            "priority": priority,
                        }
                        for i, ((step_text, priority), status) in enumerate(
                            zip(steps, statuses, strict=True), start=1
                        )
                    ],
                    "assumptions": [],
                    "open_questions": [],
                    "verification_commands": [],
                    "approval": {"state": "unrequested"},
                    "id": plan_id,
                },
            )

        if command == "/plan":
            await turn.step(plan(["completed"] + ["pending"] * (len(steps) - 1)))
            await turn.say("Run the prompt without /plan to see the demo carry it out.")
        else:
            await turn.step(plan(["completed", "in_progress"] + ["pending"] * (len(steps) - 2)))
            content = await self._read(turn, path)
            closing: list[str] = []
            if edit:
                closing.append(await self._edit(turn, path, shown, content))
            else:
                first = next((line.strip() for line in content.splitlines() if line.strip()), "")
                closing.append(
                    f"{shown} starts with “{_quote(first, 80)}”, and I read "
                    f"{len(content.splitlines())} lines of it. "
                    "That is as far as a scripted agent can explain."
                )
            closing.append("That was the whole demo turn.")
            await turn.say(" ".join(closing))
            await turn.step(plan(["completed"] * len(steps)))

        await turn.step(
            IterationEnd(
                session_id=sid,
                iteration=turn.iteration,
                iteration_info={
                    "tool_count": turn.tool_count,
                    "provider": PROVIDER,
                    "model": MODEL,
                    "response_ms": RESPONSE_MS,
                    "input_tokens": _word_count(prompt.text) + 8 * len(prompt.resources),
                    "output_tokens": turn.output_words,
                },
            )
        )

    async def _read(self, turn: _Turn, path: str) -> str:
        """The ``read`` tool call; returns the text read (or the canned excerpt)."""
        ctx = turn.ctx
        sid = ctx.session_id
        call_id = f"tool-{turn.turn}-read"
        turn.tool_count += 1
        await turn.step(
            ToolCall(
                session_id=sid,
                tool_call_id=call_id,
                tool_name=READ_TOOL,
                kind=ToolKind.READ,
                status=ToolCallStatus.PENDING,
                raw_input={"path": path},
            )
        )
        await turn.step(
            ToolCallUpdate(
                session_id=sid,
                tool_call_id=call_id,
                tool_name=READ_TOOL,
                status=ToolCallStatus.IN_PROGRESS,
            )
        )
        output: dict[str, Any] = {"path": path}
        if not _fs_read_advertised(ctx.client_capabilities):
            text = CANNED_EXCERPT
            output |= {"source": "canned", "note": "the client did not advertise fs.readTextFile"}
        else:
            try:
                text = await _unless_cancelled(ctx, ctx.read_text_file(path, limit=READ_LIMIT))
            except _TurnCancelled:
                raise
            except Exception as error:  # a client error must never fail the demo turn
                text = CANNED_EXCERPT
                output |= {
                    "source": "canned",
                    "note": f"reading through the client failed: {error}",
                }
            else:
                output["source"] = "client"
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

    async def _edit(self, turn: _Turn, path: str, shown: str, content: str) -> str:
        """The ``edit`` tool call behind a permission request; returns a closing sentence."""
        ctx = turn.ctx
        sid = ctx.session_id
        call_id = f"tool-{turn.turn}-edit"
        old_text, new_text = _proposed_edit(content)
        raw_input = {"path": path, "old_text": old_text, "new_text": new_text}
        turn.tool_count += 1
        await turn.step(
            ToolCall(
                session_id=sid,
                tool_call_id=call_id,
                tool_name=EDIT_TOOL,
                kind=ToolKind.EDIT,
                status=ToolCallStatus.PENDING,
                raw_input=raw_input,
            )
        )
        request = {
            "toolCallId": call_id,
            "title": f"Edit {shown}",
            "kind": "edit",
            "rawInput": raw_input,
            "content": [{"type": "diff", "path": path, "oldText": old_text, "newText": new_text}],
        }
        turn.check()
        error: str | None = None
        try:
            outcome = await ctx.request_permission(request, [ALLOW, REJECT])
        except Exception as exc:  # the client could not answer: treat it as a refusal
            turn.check()
            allowed, error = False, f"permission request failed: {exc}"
        else:
            if outcome.cancelled:
                raise _TurnCancelled
            turn.check()
            allowed = outcome.allowed
        if allowed:
            update = ToolCallUpdate(
                session_id=sid,
                tool_call_id=call_id,
                tool_name=EDIT_TOOL,
                status=ToolCallStatus.COMPLETED,
                raw_output={"diff": _unified_diff(old_text, new_text, shown)},
                duration_ms=EDIT_DURATION_MS,
                execution_duration_ms=EDIT_EXECUTION_MS,
                executor=ToolExecutorHarnBuiltin(),
            )
            sentence = f"You allowed the edit; being a demo, I left {shown} untouched (the diff is in the tool output)."
        else:
            update = ToolCallUpdate(
                session_id=sid,
                tool_call_id=call_id,
                tool_name=EDIT_TOOL,
                status=ToolCallStatus.FAILED,
                error=error or "rejected by the user",
                error_category=ToolCallErrorCategory.PERMISSION_DENIED,
            )
            sentence = f"The edit was not allowed, so {shown} stays as it is."
        await turn.step(update)
        return sentence


def create_backend(arg: str | None, options: object = None) -> DemoBackend:
    """``--agent demo`` (takes no argument)."""
    if arg:
        raise ValueError("the demo agent takes no argument")
    return DemoBackend()

"""Run-style runtime events (seed 000) → ACP notifications, with turn outcomes.

Unlike Harn's events these carry no session id (only ``RunStarted`` does) and no tool-call status, so the
translator keeps a little state per run: the run → session binding, the tool calls it has announced and
their streamed arguments, and the current model iteration. Text and tool events become standard ACP
updates; the rest become ``_acp_bridge/runtimeEvent`` extension notifications (``kind`` = the variant in
snake_case), which strict clients ignore. Terminal events also yield a :class:`TurnOutcome` so the server
can answer ``session/prompt``.

The output is valid ACP v1 whatever the profile (Harn hosts have no runtime-dialect contract to match);
the table lives in ``docs/runtime-mapping.md`` and is generated from :data:`RUNTIME_ROWS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from acp_bridge.events import runtime as rt

from .usage import context_used, usage_update
from .wire import Message, session_update

__all__ = [
    "RUNTIME_EVENT_KINDS",
    "RUNTIME_EVENT_METHOD",
    "RUNTIME_META_KEY",
    "RUNTIME_ROWS",
    "RuntimeTranslation",
    "RuntimeTranslator",
    "TurnOutcome",
    "UnmappedRunError",
    "parse_partial_json",
    "stop_reason_for",
]

RUNTIME_EVENT_METHOD: Final = "_acp_bridge/runtimeEvent"
RUNTIME_EVENT_KINDS: Final = (
    "run_started",
    "context_built",
    "model_started",
    "assistant_message_committed",
    "tool_message_committed",
    "usage_recorded",
    "run_completed",
    "run_failed",
    "run_cancelled",
    "doom_loop_detected",
    "compaction_circuit_opened",
)
"""The ``kind`` values of ``_acp_bridge/runtimeEvent`` for known variants (unknown ones use their own)."""
RUNTIME_META_KEY: Final = "acp_bridge"
"""The ``_meta`` namespace for runtime-dialect extras on standard updates."""

_STOP_REASONS: Final = {
    "stop": "end_turn",
    "tool_calls": "end_turn",
    "length": "max_tokens",
    "content_filter": "refusal",
    "error": "end_turn",
}


def stop_reason_for(finish_reason: Any) -> str:
    """The ACP ``stopReason`` for a runtime ``FinishReason`` (an unknown reason ends the turn normally)."""
    return (
        _STOP_REASONS.get(finish_reason, "end_turn")
        if isinstance(finish_reason, str)
        else "end_turn"
    )


RUNTIME_ROWS: Final[tuple[tuple[str, str, str], ...]] = (
    ("RunStarted", "`_acp_bridge/runtimeEvent` `run_started`", "binds `run_id` → session; `runId, provider, model, timestamp`"),
    ("ContextBuilt", "`_acp_bridge/runtimeEvent` `context_built`", "`runId, messageCount, timestamp`"),
    ("ModelStarted", "`_acp_bridge/runtimeEvent` `model_started`", "`runId, provider, model, iteration, timestamp`; sets the `messageId` of following text"),
    ("TextDelta", "`session/update` `agent_message_chunk`", "`content: {type: text, text: delta}`, `messageId: <run_id>-<iteration>`"),
    ("ToolCallStarted", "`session/update` `tool_call`", "`toolCallId: call_id, title: tool_name, status: pending`"),
    ("ToolCallDelta", "`session/update` `tool_call_update`", "arguments so far: `rawInput` (best-effort parse of the partial JSON) or `_meta.acp_bridge.rawInputPartial`"),
    ("ToolCallCompleted", "`session/update` `tool_call_update` (or `tool_call` if not announced)", "`toolCallId: call.id, title: call.name, rawInput: call.arguments`"),
    ("ToolExecutionStarted", "`session/update` `tool_call_update` (or `tool_call`)", "`status: in_progress`"),
    ("ToolExecutionFinished", "`session/update` `tool_call_update` (or `tool_call`)", "`status: completed` + `rawOutput: output` / `status: failed` + `rawOutput: {error}`; text `content`; `_meta.acp_bridge.durationMs`"),
    ("AssistantMessageCommitted", "`_acp_bridge/runtimeEvent` `assistant_message_committed`", "`runId, messageId, timestamp`"),
    ("ToolMessageCommitted", "`_acp_bridge/runtimeEvent` `tool_message_committed`", "`runId, messageId, timestamp`"),
    ("UsageRecorded", "`_acp_bridge/runtimeEvent` `usage_recorded` + `session/update` `usage_update`", "`runId, usage`; `usage_update` only when the context window is known (`--context-window`, decision 0027): `used` = total (or input + output) + Anthropic cache tokens, `size` = the window"),
    ("RunCompleted", "`_acp_bridge/runtimeEvent` `run_completed` + turn outcome", "tool calls still open → `completed`; `stopReason`: stop/tool_calls/error/unknown → `end_turn`, length → `max_tokens`, content_filter → `refusal`"),
    ("RunFailed", "`_acp_bridge/runtimeEvent` `run_failed` + turn outcome", "open tool calls → `failed`; the prompt gets a JSON-RPC error with the message"),
    ("RunCancelled", "`_acp_bridge/runtimeEvent` `run_cancelled` + turn outcome", "open tool calls → `failed`; `stopReason: cancelled`"),
    ("DoomLoopDetected", "`_acp_bridge/runtimeEvent` `doom_loop_detected`", "`runId, description, timestamp`"),
    ("CompactionCircuitOpened", "`_acp_bridge/runtimeEvent` `compaction_circuit_opened`", "`runId, consecutiveFailures, timestamp`"),
    ("(unknown variant)", "`_acp_bridge/runtimeEvent` `<variant in snake_case>`", "`runId` (if present) and the raw payload under `payload`"),
)  # fmt: skip
"""The mapping table (variant, wire, fields), rendered into ``docs/runtime-mapping.md``."""


class UnmappedRunError(ValueError):
    """An event of a run whose session is unknown: no ``RunStarted`` seen and no default session."""


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """How a run ended: a ``stop_reason`` for ``session/prompt``, or an ``error`` (``RunFailed``)."""

    run_id: str
    stop_reason: str | None = None
    error: str | None = None


@dataclass(slots=True)
class RuntimeTranslation:
    """The messages one runtime event produced, and the turn outcome if it was terminal."""

    session_id: str
    messages: list[Message]
    outcome: TurnOutcome | None = None


@dataclass(slots=True)
class _Run:
    session_id: str
    iteration: int = 0
    open_calls: dict[str, str] = field(default_factory=dict)  # call id -> tool name
    arguments: dict[str, str] = field(default_factory=dict)  # call id -> streamed argument text


def _snake(name: str) -> str:
    out: list[str] = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


_CLOSERS: Final = {"{": "}", "[": "]"}


def parse_partial_json(text: str) -> tuple[bool, Any]:
    """Best-effort parse of a JSON prefix (streamed tool arguments): ``(ok, value)``.

    Closes an open string and any open brackets, dropping a dangling ``,`` or ``:``; returns ``(False,
    None)`` when even that does not parse (e.g. the prefix ends inside a key or a literal).
    """
    if not text.strip():
        return False, None
    try:
        return True, orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    stack: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in _CLOSERS:
            stack.append(_CLOSERS[ch])
        elif ch in "}]" and stack:
            stack.pop()
    candidate = text
    if in_string:
        # Drop a dangling escape character, then close the string.
        candidate = (candidate[:-1] if escaped else candidate) + '"'
    candidate = candidate.rstrip()
    while candidate and candidate[-1] in ",:":
        candidate = candidate[:-1].rstrip()
    candidate += "".join(reversed(stack))
    try:
        return True, orjson.loads(candidate)
    except orjson.JSONDecodeError:
        return False, None


class RuntimeTranslator:
    """Translates one stream of runtime events; keeps the per-run state described in the module doc.

    ``session_id``, when given, is the ACP session every run is bound to (the server's session, or the
    ``--session-id`` of ``acp-bridge translate``); otherwise runs are bound to their ``RunStarted``'s
    ``session_id``.
    """

    def __init__(self, *, session_id: str | None = None, context_window: int | None = None) -> None:
        self.default_session_id = session_id
        self.context_window = context_window
        """The model's context window in tokens, if known: ``usage_update`` needs it (0027)."""
        self._runs: dict[str, _Run] = {}

    def session_for(self, run_id: str) -> str | None:
        """The ACP session a run is bound to, if known."""
        run = self._runs.get(run_id)
        return run.session_id if run else self.default_session_id

    def _run(self, run_id: str | None, started_session: str | None = None) -> _Run:
        key = run_id or ""
        run = self._runs.get(key)
        if run is None:
            session = self.default_session_id or started_session
            if session is None:
                raise UnmappedRunError(
                    f"event for run {run_id!r} before its RunStarted, and no default session id"
                )
            run = self._runs[key] = _Run(session)
        return run

    def translate(self, event: rt.AnyRuntimeEvent, *, replay: bool = False) -> RuntimeTranslation:
        """Translate one event; raises :class:`UnmappedRunError` for an event of an unknown run."""
        if isinstance(event, rt.UnknownRuntimeEvent):
            run = self._run(event.run_id)
            payload: dict[str, Any] = {"payload": event.payload}
            if event.run_id is not None:
                payload["runId"] = event.run_id
            messages = [self._ext(run, _snake(event.variant), payload)]
            return self._finish(run, messages, None, replay)
        p = event.payload
        run = self._run(event.run_id, event.session_id)
        handler = getattr(self, f"_on_{_snake(event.variant)}")
        messages, outcome = handler(run, p)
        if outcome is not None:
            self._runs.pop(event.run_id, None)
        return self._finish(run, messages, outcome, replay)

    @staticmethod
    def _finish(
        run: _Run, messages: list[Message], outcome: TurnOutcome | None, replay: bool
    ) -> RuntimeTranslation:
        if replay:
            for message in messages:
                params = message["params"]
                if message["method"] == "session/update":
                    _merge_meta(params["update"], {"replayed": True})
                else:
                    params["replayed"] = True
        return RuntimeTranslation(run.session_id, messages, outcome)

    # --- builders --------------------------------------------------------------------------------

    @staticmethod
    def _ext(run: _Run, kind: str, payload: dict[str, Any]) -> Message:
        payload["sessionId"] = run.session_id
        payload["kind"] = kind
        return {"jsonrpc": "2.0", "method": RUNTIME_EVENT_METHOD, "params": payload}

    @staticmethod
    def _committed(p: Any) -> dict[str, Any]:
        return {"runId": p.run_id, "messageId": p.message_id, "timestamp": p.timestamp}

    def _tool(self, run: _Run, call_id: str, name: str | None, fields: dict[str, Any]) -> Message:
        """A ``tool_call_update``, or the ``tool_call`` itself if this call was never announced."""
        if call_id in run.open_calls:
            update = {"sessionUpdate": "tool_call_update", "toolCallId": call_id, **fields}
            if name is not None and name != run.open_calls[call_id]:
                run.open_calls[call_id] = update["title"] = name
        else:
            run.open_calls[call_id] = name or call_id
            update = {
                "sessionUpdate": "tool_call",
                "toolCallId": call_id,
                "title": name or call_id,
                "status": "pending",
                **fields,
            }
        return session_update(run.session_id, update)

    def _close_open_calls(self, run: _Run, status: str) -> list[Message]:
        messages = [
            session_update(
                run.session_id,
                {"sessionUpdate": "tool_call_update", "toolCallId": call_id, "status": status},
            )
            for call_id in run.open_calls
        ]
        run.open_calls.clear()
        return messages

    # --- per-variant handlers (dispatched by name) ------------------------------------------------

    def _on_run_started(self, run: _Run, p: rt.RunStarted) -> tuple[list[Message], None]:
        payload = {
            "runId": p.run_id,
            "provider": p.provider,
            "model": p.model,
            "timestamp": p.timestamp,
        }
        return [self._ext(run, "run_started", payload)], None

    def _on_context_built(self, run: _Run, p: rt.ContextBuilt) -> tuple[list[Message], None]:
        payload = {"runId": p.run_id, "messageCount": p.message_count, "timestamp": p.timestamp}
        return [self._ext(run, "context_built", payload)], None

    def _on_model_started(self, run: _Run, p: rt.ModelStarted) -> tuple[list[Message], None]:
        run.iteration = p.iteration
        payload = {
            "runId": p.run_id,
            "provider": p.provider,
            "model": p.model,
            "iteration": p.iteration,
            "timestamp": p.timestamp,
        }
        return [self._ext(run, "model_started", payload)], None

    def _on_text_delta(self, run: _Run, p: rt.TextDelta) -> tuple[list[Message], None]:
        update = {
            "sessionUpdate": "agent_message_chunk",
            "content": {"type": "text", "text": p.delta},
            "messageId": f"{p.run_id}-{run.iteration}",
        }
        return [session_update(run.session_id, update)], None

    def _on_tool_call_started(self, run: _Run, p: rt.ToolCallStarted) -> tuple[list[Message], None]:
        return [self._tool(run, p.call_id, p.tool_name, {})], None

    def _on_tool_call_delta(self, run: _Run, p: rt.ToolCallDelta) -> tuple[list[Message], None]:
        text = run.arguments[p.call_id] = run.arguments.get(p.call_id, "") + p.delta
        ok, value = parse_partial_json(text)
        fields: dict[str, Any] = {"rawInput": value} if ok else {}
        message = self._tool(run, p.call_id, None, fields)
        if not ok:
            _merge_meta(message["params"]["update"], {"rawInputPartial": text})
        return [message], None

    def _on_tool_call_completed(
        self, run: _Run, p: rt.ToolCallCompleted
    ) -> tuple[list[Message], None]:
        run.arguments.pop(p.call.id, None)
        fields = {"title": p.call.name, "rawInput": p.call.arguments}
        return [self._tool(run, p.call.id, p.call.name, fields)], None

    def _on_tool_execution_started(
        self, run: _Run, p: rt.ToolExecutionStarted
    ) -> tuple[list[Message], None]:
        return [self._tool(run, p.call_id, p.tool_name, {"status": "in_progress"})], None

    def _on_tool_execution_finished(
        self, run: _Run, p: rt.ToolExecutionFinished
    ) -> tuple[list[Message], None]:
        result = p.result
        if isinstance(result, rt.ToolExecutionFailure):
            status, raw_output, text = "failed", {"error": result.error}, result.error
        else:
            output = result.output
            status, raw_output = "completed", output
            text = output if isinstance(output, str) else orjson.dumps(output).decode()
        fields = {
            "status": status,
            "rawOutput": raw_output,
            "content": [{"type": "content", "content": {"type": "text", "text": text}}],
        }
        message = self._tool(run, p.call_id, p.tool_name, fields)
        _merge_meta(message["params"]["update"], {"durationMs": p.duration_ms})
        run.open_calls.pop(p.call_id, None)
        return [message], None

    def _on_assistant_message_committed(
        self, run: _Run, p: rt.MessageCommitted
    ) -> tuple[list[Message], None]:
        return [self._ext(run, "assistant_message_committed", self._committed(p))], None

    def _on_tool_message_committed(
        self, run: _Run, p: rt.MessageCommitted
    ) -> tuple[list[Message], None]:
        return [self._ext(run, "tool_message_committed", self._committed(p))], None

    def _on_usage_recorded(self, run: _Run, p: rt.UsageRecorded) -> tuple[list[Message], None]:
        usage = p.usage.to_dict()
        payload = {"runId": p.run_id, "usage": usage, "timestamp": p.timestamp}
        messages = [self._ext(run, "usage_recorded", payload)]
        messages += usage_update(run.session_id, context_used(usage), self.context_window)
        return messages, None

    def _on_run_completed(self, run: _Run, p: rt.RunCompleted) -> tuple[list[Message], TurnOutcome]:
        finish = p.to_dict()["finish_reason"]
        messages = self._close_open_calls(run, "completed")
        payload = {
            "runId": p.run_id,
            "finishReason": finish,
            "iterations": p.iterations,
            "timestamp": p.timestamp,
        }
        messages.append(self._ext(run, "run_completed", payload))
        return messages, TurnOutcome(p.run_id, stop_reason=stop_reason_for(finish))

    def _on_run_failed(self, run: _Run, p: rt.RunFailed) -> tuple[list[Message], TurnOutcome]:
        messages = self._close_open_calls(run, "failed")
        payload = {"runId": p.run_id, "error": p.error, "timestamp": p.timestamp}
        messages.append(self._ext(run, "run_failed", payload))
        return messages, TurnOutcome(p.run_id, error=p.error)

    def _on_run_cancelled(self, run: _Run, p: rt.RunCancelled) -> tuple[list[Message], TurnOutcome]:
        messages = self._close_open_calls(run, "failed")
        messages.append(
            self._ext(run, "run_cancelled", {"runId": p.run_id, "timestamp": p.timestamp})
        )
        return messages, TurnOutcome(p.run_id, stop_reason="cancelled")

    def _on_doom_loop_detected(
        self, run: _Run, p: rt.DoomLoopDetected
    ) -> tuple[list[Message], None]:
        payload = {"runId": p.run_id, "description": p.description, "timestamp": p.timestamp}
        return [self._ext(run, "doom_loop_detected", payload)], None

    def _on_compaction_circuit_opened(
        self, run: _Run, p: rt.CompactionCircuitOpened
    ) -> tuple[list[Message], None]:
        payload = {
            "runId": p.run_id,
            "consecutiveFailures": p.consecutive_failures,
            "timestamp": p.timestamp,
        }
        return [self._ext(run, "compaction_circuit_opened", payload)], None


def _merge_meta(target: dict[str, Any], fields: dict[str, Any]) -> None:
    meta = target.setdefault("_meta", {})
    meta.setdefault(RUNTIME_META_KEY, {}).update(fields)

"""Harn events → ACP ``session/update`` and ``_harn/agentEvent`` notifications, in both profiles.

The mapping is one table, :data:`ROWS`: for every event type, the routes each profile can take
(method + ``sessionUpdate``/``kind``) and a builder per profile. :func:`translate` dispatches on the
event's ``type``; the capability block and ``docs/event-mapping.md`` are generated from the same table,
so what is advertised and documented is what is emitted.

The harn profile reproduces Harn's v3 adapter (``harn-serve`` ``acp/events.rs`` @ ``aaf66ad6``) including
its quirks; the strict profile follows ``docs/decisions/0002-strict-profile-mapping.md``. Payload fields
are built by hand, top-level names in camelCase, nested opaque JSON passed through unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, cast

from acp_bridge.events import harn as ev
from acp_bridge.events.harn import AgentEventBase

from .content import is_content_block
from .usage import context_used, usage_update
from .visible_text import sanitize_visible_text
from .wire import (
    HARN_AGENT_EVENT_METHOD,
    SESSION_UPDATE_METHOD,
    Message,
    Profile,
    agent_event,
    mark_replayed,
    merge_harn_meta,
    session_update,
)

__all__ = [
    "CONTENT_EXTENSION_FIELDS",
    "ROWS",
    "TOOL_LIFECYCLE_EXTENSION_FIELDS",
    "Route",
    "Row",
    "translate",
]

Builder = Callable[[Any], list[Message]]


@dataclass(frozen=True, slots=True)
class Route:
    """One way an event can reach the wire: a method and its ``sessionUpdate`` value or ``kind``."""

    method: str
    name: str
    standard: bool = False
    """True when ``name`` is a standard ACP v1 ``sessionUpdate`` variant."""

    @property
    def label(self) -> str:
        """Short form for tables: ``session/update plan`` / ``_harn/agentEvent loop_stuck``."""
        return f"{self.method} `{self.name}`"


@dataclass(frozen=True, slots=True)
class Row:
    """How one event type is translated in each profile."""

    event_type: str
    harn: tuple[Route, ...]
    strict: tuple[Route, ...]
    fields: str
    harn_build: Builder
    strict_build: Builder


def _std(name: str) -> Route:
    return Route(SESSION_UPDATE_METHOD, name, standard=True)


def _su_ext(name: str) -> Route:
    return Route(SESSION_UPDATE_METHOD, name)


def _kind(name: str) -> Route:
    return Route(HARN_AGENT_EVENT_METHOD, name)


ROWS: dict[str, Row] = {}


def _row(
    event_type: str,
    harn: Iterable[Route],
    strict: Iterable[Route],
    fields: str,
    harn_build: Builder,
    strict_build: Builder | None = None,
) -> None:
    ROWS[event_type] = Row(
        event_type, tuple(harn), tuple(strict), fields, harn_build, strict_build or harn_build
    )


def _ext_n(
    event_type: str,
    payload: Callable[[Any], dict[str, Any]],
    fields: str,
    *,
    kind: str | None = None,
    strict_payload: Callable[[Any], dict[str, Any]] | None = None,
) -> None:
    """An event Harn sends as a ``_harn/agentEvent`` (EXT-N row); strict's kind is always the type."""
    harn_kind = kind or event_type
    s_payload = strict_payload or payload

    def harn_build(e: Any) -> list[Message]:
        return [agent_event(e.session_id, harn_kind, payload(e))]

    def strict_build(e: Any) -> list[Message]:
        return [agent_event(e.session_id, event_type, s_payload(e))]

    _row(event_type, [_kind(harn_kind)], [_kind(event_type)], fields, harn_build, strict_build)


def _renamed(meta: dict[str, Any], renames: dict[str, str | None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key in renames:
            new = renames[key]
            if new is not None:
                out[new] = value
        else:
            out[key] = value
    return out


def _ext_su(
    event_type: str,
    meta: Callable[[Any], dict[str, Any]],
    fields: str,
    *,
    update: str | None = None,
    renames: dict[str, str | None] | None = None,
) -> None:
    """An event Harn sends as a non-standard ``sessionUpdate`` with its data under ``_meta.harn``.

    Strict sends the same object as a ``_harn/agentEvent`` of kind ``event_type``; ``renames`` moves keys
    that would collide with the envelope (``None`` drops a key that only repeats the kind).
    """
    name = update or event_type
    strict_renames = renames or {}

    def harn_build(e: Any) -> list[Message]:
        return [session_update(e.session_id, merge_harn_meta({"sessionUpdate": name}, meta(e)))]

    def strict_build(e: Any) -> list[Message]:
        return [agent_event(e.session_id, event_type, _renamed(meta(e), strict_renames))]

    _row(event_type, [_su_ext(name)], [_kind(event_type)], fields, harn_build, strict_build)


def _flat(value: Any) -> dict[str, Any]:
    """Harn merges an opaque object payload flat; a non-object (Harn would panic) is kept under ``payload``."""
    if isinstance(value, dict):
        return dict(value)
    return {"payload": value}


def _opt(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def _dump(model: Any) -> Any:
    return None if model is None else model.to_dict()


# --- streaming content --------------------------------------------------------------------------


def _agent_message_chunk(e: ev.AgentMessageChunk) -> list[Message]:
    # The display copy, as Harn's adapter computes it: this chunk alone, sanitised as streaming
    # text (no state across chunks), so visible_text and visible_delta are the same string.
    visible = sanitize_visible_text(e.content, partial=True)
    block = {
        "type": "text",
        "text": e.content,
        "_meta": {"harn": {"visible_text": visible, "visible_delta": visible}},
    }
    return [
        session_update(e.session_id, {"sessionUpdate": "agent_message_chunk", "content": block})
    ]


def _agent_message_chunk_strict(e: ev.AgentMessageChunk) -> list[Message]:
    # Harn's visible_text/visible_delta copies equal the text here (nothing to sanitise), so strict
    # frames skip them: half the bytes of the most frequent message.
    block = {"type": "text", "text": e.content}
    return [
        session_update(e.session_id, {"sessionUpdate": "agent_message_chunk", "content": block})
    ]


_row(
    "agent_message_chunk",
    [_std("agent_message_chunk")],
    [_std("agent_message_chunk")],
    "`content` → text block; harn: `_meta.harn.visible_text`/`visible_delta` on the block, both the chunk without hidden blocks (think, tool calls, done, results, planner JSON) per Harn's sanitizer",
    _agent_message_chunk,
    _agent_message_chunk_strict,
)


def _agent_thought_chunk(e: ev.AgentThoughtChunk) -> list[Message]:
    update = {
        "sessionUpdate": "agent_thought_chunk",
        "content": {"type": "text", "text": e.content},
    }
    return [session_update(e.session_id, update)]


_row(
    "agent_thought_chunk",
    [_std("agent_thought_chunk")],
    [_std("agent_thought_chunk")],
    "`content` → text block",
    _agent_thought_chunk,
)


def _user_message_harn(e: ev.UserMessage) -> list[Message]:
    update = {"sessionUpdate": "user_message", "messageId": e.message_id, "content": e.content}
    return [session_update(e.session_id, update)]


def _user_message_strict(e: ev.UserMessage) -> list[Message]:
    if e.content and all(is_content_block(block) for block in e.content):
        return [
            session_update(
                e.session_id,
                {
                    "sessionUpdate": "user_message_chunk",
                    "content": block,
                    "messageId": e.message_id,
                },
            )
            for block in e.content
        ]
    return [
        agent_event(e.session_id, "user_message", {"messageId": e.message_id, "content": e.content})
    ]


_row(
    "user_message",
    [_su_ext("user_message")],
    [_std("user_message_chunk"), _kind("user_message")],
    "`messageId`, `content` (blocks); strict: one `user_message_chunk` per block with `messageId`",
    _user_message_harn,
    _user_message_strict,
)


# --- tool lifecycle -------------------------------------------------------------------------------

TOOL_LIFECYCLE_EXTENSION_FIELDS: Final = (
    "audit",
    "durationMs",
    "error",
    "errorCategory",
    "executionDurationMs",
    "executor",
    "parsing",
    "rawInputPartial",
)
"""The ``_meta.harn`` keys a ``tool_call``/``tool_call_update`` can carry."""

CONTENT_EXTENSION_FIELDS: Final = ("visible_delta", "visible_text")
"""The ``_meta.harn`` keys an ``agent_message_chunk`` content block carries."""


def _tool_call(e: ev.ToolCall) -> list[Message]:
    update: dict[str, Any] = {
        "sessionUpdate": "tool_call",
        "toolCallId": e.tool_call_id,
        "title": e.tool_name,
        "status": e.status.value,
        "rawInput": e.raw_input,
    }
    if e.kind is not None:
        update["kind"] = e.kind.value
    meta: dict[str, Any] = {}
    _opt(meta, "parsing", e.parsing)
    _opt(meta, "audit", _dump(e.audit))
    return [session_update(e.session_id, merge_harn_meta(update, meta))]


_row(
    "tool_call",
    [_std("tool_call")],
    [_std("tool_call")],
    "`toolCallId`, `title`←tool_name, `status`, `rawInput`, `kind`? ; `_meta.harn`: `parsing`?, `audit`?",
    _tool_call,
)


def _tool_call_update(e: ev.ToolCallUpdate) -> list[Message]:
    update: dict[str, Any] = {
        "sessionUpdate": "tool_call_update",
        "toolCallId": e.tool_call_id,
        "title": e.tool_name,
        "status": e.status.value,
    }
    _opt(update, "rawOutput", e.raw_output)
    _opt(update, "rawInput", e.raw_input)
    meta: dict[str, Any] = {}
    _opt(meta, "error", e.error)
    _opt(meta, "durationMs", e.duration_ms)
    _opt(meta, "executionDurationMs", e.execution_duration_ms)
    if e.error_category is not None:
        meta["errorCategory"] = e.error_category.value
    if e.executor is not None:
        meta["executor"] = e.executor.to_acp()
    _opt(meta, "parsing", e.parsing)
    _opt(meta, "audit", _dump(e.audit))
    _opt(meta, "rawInputPartial", e.raw_input_partial)
    return [session_update(e.session_id, merge_harn_meta(update, meta))]


_row(
    "tool_call_update",
    [_std("tool_call_update")],
    [_std("tool_call_update")],
    "`toolCallId`, `title`, `status`, `rawOutput`?, `rawInput`? ; `_meta.harn`: `error`?, `durationMs`?, "
    "`executionDurationMs`?, `errorCategory`?, `executor`?, `parsing`?, `audit`?, `rawInputPartial`?",
    _tool_call_update,
)


# --- plans and progress ----------------------------------------------------------------------------

PLAN_SCHEMA_VERSION: Final = "harn.plan.v1"
_PRIORITIES: Final = frozenset({"high", "medium", "low"})
_PLAN_STATUSES: Final = frozenset({"pending", "in_progress", "completed"})


def _plan_entries(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Harn's ``plan_entries``: ACP entries from a ``harn.plan.v1`` artifact's steps."""
    entries: list[dict[str, Any]] = []
    steps = plan.get("steps")
    if isinstance(steps, list):
        for step in steps:
            content = step.get("content") if isinstance(step, dict) else None
            if not isinstance(content, str) or not content.strip():
                continue
            status = step.get("status")
            entry: dict[str, Any] = {
                "content": content.strip(),
                "status": status if isinstance(status, str) else "pending",
            }
            if step.get("priority") is not None:
                entry["priority"] = step["priority"]
            entries.append(entry)
    if not entries:
        summary = plan.get("summary")
        text = summary.strip() if isinstance(summary, str) else ""
        return [{"content": text or "Plan emitted", "status": "pending"}]
    return entries


def _is_harn_plan(plan: Any) -> bool:
    return isinstance(plan, dict) and plan.get("schema_version") == PLAN_SCHEMA_VERSION


def _plan_harn(e: ev.Plan) -> list[Message]:
    if _is_harn_plan(e.plan):
        update = {"sessionUpdate": "plan", "entries": _plan_entries(e.plan), "harnPlan": e.plan}
    else:
        update = {"sessionUpdate": "plan", "entries": e.plan}
    return [session_update(e.session_id, update)]


def _strict_entries(entries: Any) -> list[dict[str, Any]] | None:
    """ACP-valid plan entries, or ``None`` when ``entries`` cannot be expressed as such."""
    if not isinstance(entries, list):
        return None
    out: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
            return None
        priority = entry.get("priority")
        status = entry.get("status")
        normal: dict[str, Any] = {
            "content": entry["content"],
            "priority": priority if priority in _PRIORITIES else "medium",
            "status": status if status in _PLAN_STATUSES else "pending",
        }
        kept: dict[str, Any] = {}
        if "priority" in entry and priority not in _PRIORITIES:
            kept["priority"] = priority
        if "status" in entry and status not in _PLAN_STATUSES:
            kept["status"] = status
        meta = entry.get("_meta")
        if isinstance(meta, dict):
            normal["_meta"] = dict(meta)
        out.append(merge_harn_meta(normal, kept) if kept else normal)
    return out


def _plan_strict(e: ev.Plan) -> list[Message]:
    if _is_harn_plan(e.plan):
        entries = _strict_entries(_plan_entries(e.plan))
        assert entries is not None  # _plan_entries always yields objects with string content
        update = merge_harn_meta({"sessionUpdate": "plan", "entries": entries}, {"plan": e.plan})
        return [session_update(e.session_id, update)]
    entries = _strict_entries(e.plan)
    if entries is None:
        return [agent_event(e.session_id, "plan", {"plan": e.plan})]
    return [session_update(e.session_id, {"sessionUpdate": "plan", "entries": entries})]


_row(
    "plan",
    [_std("plan")],
    [_std("plan"), _kind("plan")],
    "`harn.plan.v1` artifact → `entries` from its steps + root `harnPlan` (strict: `_meta.harn.plan`); "
    "otherwise `entries` = plan verbatim (strict: normalised, or `_harn/agentEvent` `plan` if impossible)",
    _plan_harn,
    _plan_strict,
)


def _has_entries(entries: Any) -> bool:
    return isinstance(entries, list) and len(entries) > 0


def _progress_harn(e: ev.ProgressReported) -> list[Message]:
    if _has_entries(e.entries):
        return [session_update(e.session_id, {"sessionUpdate": "plan", "entries": e.entries})]
    if e.message is not None:
        meta = {"phase": "narration", "message": e.message}
        return [session_update(e.session_id, merge_harn_meta({"sessionUpdate": "progress"}, meta))]
    payload = {"message": None, "entries": e.entries, "replace": e.replace, "metadata": e.metadata}
    return [agent_event(e.session_id, "progress_reported", payload)]


def _progress_strict(e: ev.ProgressReported) -> list[Message]:
    if _has_entries(e.entries):
        entries = _strict_entries(e.entries)
        if entries is not None:
            meta = {"message": e.message, "replace": e.replace, "metadata": e.metadata}
            update = merge_harn_meta({"sessionUpdate": "plan", "entries": entries}, meta)
            return [session_update(e.session_id, update)]
    payload = {
        "message": e.message,
        "entries": e.entries,
        "replace": e.replace,
        "metadata": e.metadata,
    }
    return [agent_event(e.session_id, "progress_reported", payload)]


_row(
    "progress_reported",
    [_std("plan"), _su_ext("progress"), _kind("progress_reported")],
    [_std("plan"), _kind("progress_reported")],
    "non-empty `entries` → `plan` (harn drops message/replace/metadata; strict keeps them in "
    "`_meta.harn`); else `message` → `progress` `{phase:narration, message}`; else `_harn/agentEvent` "
    "`{message, entries, replace, metadata}`",
    _progress_harn,
    _progress_strict,
)


# --- _harn/agentEvent rows --------------------------------------------------------------------------

_ext_n(
    "compass_routing_decision",
    lambda e: _with_opt(
        {
            "toolCallId": e.tool_call_id,
            "mode": e.mode,
            "action": e.action,
            "persona": e.persona,
            "originalTool": e.original_tool,
            "routedTool": e.routed_tool,
            "targetTool": e.target_tool,
        },
        path=e.path,
    ),
    "`toolCallId, mode, action, persona, originalTool, routedTool, targetTool, path?`",
)


def _with_opt(payload: dict[str, Any], **optional: Any) -> dict[str, Any]:
    for key, value in optional.items():
        if value is not None:
            payload[key] = value
    return payload


_ext_n(
    "agent_scratchpad_reorganization",
    lambda e: {"iteration": e.iteration, "status": e.status, "details": e.details},
    "`iteration, status, details`",
)


def _artifact_meta(e: ev.Artifact) -> dict[str, Any]:
    return {
        "artifactId": e.artifact_id,
        "kind": e.kind,
        "title": e.title,
        "mimeType": e.mime_type,
        "spec": e.spec,
        "fallback": e.fallback,
        "sizeBytes": e.size_bytes,
        "provenance": e.provenance,
        "metadata": e.metadata,
    }


_ext_su(
    "artifact",
    _artifact_meta,
    "`artifactId, kind (strict: artifactKind), title (null ok), mimeType, spec, fallback, sizeBytes, "
    "provenance, metadata`",
    renames={"kind": "artifactKind"},
)


def _iteration_start(e: ev.IterationStart) -> dict[str, Any]:
    payload: dict[str, Any] = {"iteration": e.iteration}
    if e.provider:
        payload["provider"] = e.provider
    if e.model:
        payload["model"] = e.model
    return payload


_ext_n(
    "iteration_start", _iteration_start, "`iteration`, `provider`?/`model`? (omitted when empty)"
)
_ext_n(
    "iteration_end",
    lambda e: {"iteration": e.iteration, "iterationInfo": e.iteration_info},
    "`iteration, iterationInfo`",
)
_ext_n(
    "session_closed",
    lambda e: {"reason": e.reason, "status": e.status, "metadata": e.metadata},
    "`reason, status, metadata`",
)
_ext_n(
    "anchor_changed",
    lambda e: {
        "previous": e.previous,
        "current": e.current,
        "carryTranscript": e.carry_transcript,
        "compacted": e.compacted,
        "reason": e.reason,
    },
    "`previous (null ok), current, carryTranscript, compacted, reason (null ok)`",
)
_ext_n(
    "judge_decision",
    lambda e: {
        "iteration": e.iteration,
        "verdict": e.verdict,
        "reasoning": e.reasoning,
        "nextStep": e.next_step,
        "judgeDurationMs": e.judge_duration_ms,
        "trigger": e.trigger,
    },
    "`iteration, verdict, reasoning, nextStep (null ok), judgeDurationMs, trigger (null ok)`",
)
_ext_n(
    "step_judge_decision",
    lambda e: {
        "iteration": e.iteration,
        "verdict": e.verdict,
        "reasoning": e.reasoning,
        "critique": e.critique,
        "confidence": e.confidence,
        "judgeDurationMs": e.judge_duration_ms,
        "vetoed": e.vetoed,
        "skipped": e.skipped,
        "reason": e.reason,
        "judgeError": e.judge_error,
        "onVeto": e.on_veto,
        "inputTokens": e.input_tokens,
        "outputTokens": e.output_tokens,
        "costUsd": e.cost_usd,
        "provider": e.provider,
        "model": e.model,
    },
    "`iteration, verdict, reasoning, critique, confidence, judgeDurationMs, vetoed, skipped, reason "
    "(null ok), judgeError, onVeto, inputTokens, outputTokens, costUsd, provider, model`",
)
_ext_n(
    "structural_validator_decision",
    lambda e: {
        "iteration": e.iteration,
        "rule": e.rule,
        "diagnostic": e.diagnostic,
        "recommendedAction": e.recommended_action,
        "vetoed": e.vetoed,
        "skipped": e.skipped,
        "reason": e.reason,
        "onFailure": e.on_failure,
        "attempts": e.attempts,
        "maxAttempts": e.max_attempts,
    },
    "`iteration, rule, diagnostic, recommendedAction, vetoed, skipped, reason (null ok), onFailure, "
    "attempts, maxAttempts`",
)
_ext_n(
    "scope_classifier_verdict",
    lambda e: {
        "iteration": e.iteration,
        "label": e.label,
        "originalLabel": e.original_label,
        "confidence": e.confidence,
        "confidenceThreshold": e.confidence_threshold,
        "evidence": e.evidence,
        "skipMainTurn": e.skip_main_turn,
        "classifierKind": e.classifier_kind,
        "model": e.model,
        "error": e.error,
    },
    "`iteration, label, originalLabel, confidence, confidenceThreshold, evidence, skipMainTurn, "
    "classifierKind, model, error` (last 3 null ok)",
)
_ext_n(
    "missing_tool_call_verdict",
    lambda e: {
        "iteration": e.iteration,
        "action": e.action,
        "originalAction": e.original_action,
        "toolName": e.tool_name,
        "confidence": e.confidence,
        "confidenceThreshold": e.confidence_threshold,
        "evidence": e.evidence,
        "language": e.language,
        "classifierKind": e.classifier_kind,
        "model": e.model,
        "error": e.error,
    },
    "`iteration, action, originalAction, toolName, confidence, confidenceThreshold, evidence, "
    "language, classifierKind, model, error` (last 4 null ok)",
)
_ext_n("typed_checkpoint", lambda e: {"checkpoint": e.checkpoint}, "`checkpoint`")
_ext_n(
    "feedback_injected",
    lambda e: {"feedbackKind": e.kind, "content": e.content},
    "`feedbackKind`←kind, `content`",
)
_ext_n(
    "budget_exhausted",
    lambda e: _with_opt(
        {"maxIterations": e.max_iterations},
        budgetKind=e.kind,
        costUsd=e.cost_usd,
        wallClockMs=e.wall_clock_ms,
    ),
    "`maxIterations`, `budgetKind`?←kind, `costUsd`?, `wallClockMs`?",
)
_ext_n(
    "budget_circuit_breaker",
    lambda e: {
        "breakerKind": e.kind,
        "consecutiveCount": e.consecutive_count,
        "pausedForMs": e.paused_for_ms,
    },
    "`breakerKind`←kind, `consecutiveCount, pausedForMs`",
)
_ext_n(
    "loop_stuck",
    lambda e: {
        "maxNudges": e.max_nudges,
        "lastIteration": e.last_iteration,
        "tailExcerpt": e.tail_excerpt,
    },
    "`maxNudges, lastIteration, tailExcerpt`",
)
_ext_n(
    "loop_stuck_signal",
    lambda e: _flat(e.payload),
    "harn: kind `loop_stuck` (shared with loop_stuck), payload merged flat; strict: own kind, `{payload}`",
    kind="loop_stuck",
    strict_payload=lambda e: {"payload": e.payload},
)
_ext_n(
    "reserved_terminal_verify",
    lambda e: _flat(e.payload),
    "harn: payload merged flat; strict: `{payload}`",
    strict_payload=lambda e: {"payload": e.payload},
)
_ext_n(
    "daemon_watchdog_tripped",
    lambda e: {"attempts": e.attempts, "elapsedMs": e.elapsed_ms},
    "`attempts, elapsedMs`",
)


# --- session-update extension rows (EXT-SU) -------------------------------------------------------------

_ext_su(
    "skill_activated",
    lambda e: {"skillName": e.skill_name, "iteration": e.iteration, "reason": e.reason},
    "`skillName, iteration, reason`",
)
_ext_su(
    "skill_deactivated",
    lambda e: {"skillName": e.skill_name, "iteration": e.iteration},
    "`skillName, iteration`",
)
_ext_su(
    "skill_scope_tools",
    lambda e: {"skillName": e.skill_name, "allowedTools": e.allowed_tools},
    "`skillName, allowedTools`",
)
_ext_su(
    "skill_narrow",
    lambda e: _with_opt(
        {"reason": e.reason, "removedTools": e.removed_tools, "remainingTools": e.remaining_tools},
        policy=e.policy,
        removedToolDetails=e.removed_tool_details,
        keptToolDetails=e.kept_tool_details,
    ),
    "`reason, removedTools, remainingTools`, `policy?, removedToolDetails?, keptToolDetails?` (non-null)",
)


def _stance_meta(e: ev.StanceTransition) -> dict[str, Any]:
    meta: dict[str, Any] = {"phase": e.phase, "escapeTool": e.escape_tool}
    if e.allowed_tools:
        meta["allowedTools"] = e.allowed_tools
    if e.justification:
        meta["justification"] = e.justification
    if e.consent:
        meta["consent"] = e.consent
    if e.reason:
        meta["reason"] = e.reason
    return meta


_ext_su(
    "stance_transition",
    _stance_meta,
    "`phase, escapeTool`, `allowedTools?, justification?, consent?, reason?` (non-empty)",
)
_ext_su(
    "tool_search_query",
    lambda e: {
        "toolUseId": e.tool_use_id,
        "name": e.name,
        "query": e.query,
        "strategy": e.strategy,
        "mode": e.mode,
    },
    "`toolUseId, name, query, strategy, mode`",
)
_ext_su(
    "tool_search_result",
    lambda e: {
        "toolUseId": e.tool_use_id,
        "promoted": e.promoted,
        "strategy": e.strategy,
        "mode": e.mode,
    },
    "`toolUseId, promoted, strategy, mode`",
)
_ext_su(
    "transcript_compacted",
    lambda e: _with_opt(
        {
            "mode": e.mode,
            "reason": e.reason,
            "strategy": e.strategy,
            "archivedMessages": e.archived_messages,
            "estimatedTokensBefore": e.estimated_tokens_before,
            "estimatedTokensAfter": e.estimated_tokens_after,
            "snapshotAssetId": e.snapshot_asset_id,
        },
        instructionMode=e.instruction_mode,
        instructionSource=e.instruction_source,
        compactionPolicy=e.compaction_policy,
    ),
    "`mode, reason, strategy, archivedMessages, estimatedTokensBefore, estimatedTokensAfter, "
    "snapshotAssetId (null ok)`, `instructionMode?, instructionSource?, compactionPolicy?`",
)


def _projected_meta(e: ev.TranscriptProjected) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "policy": e.policy,
        "reason": e.reason,
        "prefixHash": e.prefix_hash,
        "keptCount": e.kept_count,
        "droppedCount": e.dropped_count,
        "providerSafetyBlocked": e.provider_safety_blocked,
    }
    if e.redacted_count > 0:
        meta["redactedCount"] = e.redacted_count
    if e.reclaimed_tokens > 0:
        meta["reclaimedTokens"] = e.reclaimed_tokens
    if e.roots_consulted:
        meta["rootsConsulted"] = e.roots_consulted
    if e.redaction_pointers:
        meta["redactionPointers"] = e.redaction_pointers
    return meta


_ext_su(
    "transcript_projected",
    _projected_meta,
    "`policy, reason, prefixHash, keptCount, droppedCount, providerSafetyBlocked`, `redactedCount?, "
    "reclaimedTokens?` (>0), `rootsConsulted?, redactionPointers?` (non-empty)",
)
_ext_su(
    "reminder_emitted",
    lambda e: {
        "reminder": {
            "reminderId": e.reminder_id,
            "tags": e.tags,
            "body": e.body,
            "roleHint": e.role_hint,
            "renderedRole": e.rendered_role,
            "source": e.source,
            "ttlTurns": e.ttl_turns,
        }
    },
    "`reminder {reminderId, tags, body, roleHint, renderedRole, source, ttlTurns (null ok)}`",
)
_ext_su(
    "handoff",
    lambda e: {
        "handoffId": e.handoff.id,
        "artifactId": e.artifact_id,
        "handoff": e.handoff.to_dict(),
    },
    "`handoffId`←handoff.id, `artifactId`, `handoff` (serde form)",
)
_ext_su(
    "fs_watch",
    lambda e: {
        "subscriptionId": e.subscription_id,
        "events": [event.to_dict() for event in e.events],
    },
    "`subscriptionId, events` (serde form)",
)
_ext_su(
    "staged_writes_pending",
    lambda e: {
        "phase": "fs_staging",
        "message": "staged writes pending",
        "progress": e.pending_count,
        "kind": "staged_writes_pending",
        "pendingCount": e.pending_count,
        "totalBytes": e.total_bytes,
    },
    "harn: `progress` `{phase:fs_staging, message, progress, kind, pendingCount, totalBytes}`",
    update="progress",
    renames={"kind": None},
)
_ext_su(
    "safe_text_patch_result",
    lambda e: _with_opt(
        {
            "phase": "safe_text_patch",
            "message": f"safe_text_patch: {e.result}",
            "kind": "safe_text_patch_result",
            "path": e.path,
            "result": e.result,
            "hunksCount": e.hunks_count,
            "bytesWritten": e.bytes_written,
        },
        failedHunkIndex=e.failed_hunk_index,
    ),
    "harn: `progress` `{phase:safe_text_patch, message, kind, path, result, hunksCount, bytesWritten, "
    "failedHunkIndex?}`",
    update="progress",
    renames={"kind": None},
)
_ext_n(
    "control_outcome",
    lambda e: _with_opt(
        {
            "controlId": e.control_id,
            "method": e.method,
            "outcome": e.outcome,
            "status": e.status,
            "actor": e.actor,
            "target": e.target,
        },
        reason=e.reason,
        metadata=e.metadata,
    ),
    "`controlId, method, outcome, status, actor, target`, `reason?`, `metadata?` (non-null)",
)


def _worker_meta(e: ev.WorkerUpdate) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "workerId": e.worker_id,
        "workerName": e.worker_name,
        "workerTask": e.worker_task,
        "workerMode": e.worker_mode,
        "event": e.event.as_str(),
        "status": e.status,
        "terminal": e.event.is_terminal(),
        "metadata": e.metadata,
    }
    if e.audit is not None:
        meta["audit"] = e.audit
    return meta


_ext_su(
    "worker_update",
    _worker_meta,
    "`workerId, workerName, workerTask, workerMode, event (PascalCase), status, terminal, metadata, "
    "audit?`",
)
_ext_su(
    "hitl_requested",
    lambda e: {"requestId": e.request_id, "kind": e.kind, "payload": e.payload},
    "harn: update `hitl_request`; `requestId, kind (strict: hitlKind), payload`",
    update="hitl_request",
    renames={"kind": "hitlKind"},
)
_ext_su(
    "hitl_resolved",
    lambda e: {"requestId": e.request_id, "kind": e.kind, "outcome": e.outcome},
    "`requestId, kind (strict: hitlKind), outcome`",
    renames={"kind": "hitlKind"},
)
_ext_n(
    "loop_control_decision",
    lambda e: {
        "iteration": e.iteration,
        "action": e.action,
        "oldLimit": e.old_limit,
        "newLimit": e.new_limit,
        "reason": e.reason,
        "status": e.status,
    },
    "`iteration, action, oldLimit, newLimit, reason, status`",
)
_ext_n(
    "agent_loop_stall_warning",
    lambda e: _flat(e.warning),
    "harn: `warning` merged flat; strict: `{warning}`",
    strict_payload=lambda e: {"warning": e.warning},
)
_ext_n(
    "capability_gap",
    lambda e: _with_opt(
        {
            "level": e.level,
            "capability": e.capability,
            "provider": e.provider,
            "model": e.model,
            "fallbackToolFormat": e.fallback_tool_format,
            "message": e.message,
        },
        requestedToolFormat=e.requested_tool_format,
    ),
    "`level, capability, provider, model, fallbackToolFormat, message, requestedToolFormat?`",
)
_ext_n(
    "tool_format_override",
    lambda e: _with_opt(
        {
            "provider": e.provider,
            "model": e.model,
            "requestedFormat": e.requested_format,
            "recommendedFormat": e.recommended_format,
            "catalogParity": e.catalog_parity,
        },
        overrideReason=e.override_reason,
    ),
    "`provider, model, requestedFormat, recommendedFormat, catalogParity, overrideReason?`",
)
_ext_n(
    "tool_call_audit",
    lambda e: _with_opt(
        {"toolCallId": e.tool_call_id, "toolName": e.tool_name, "audit": e.audit},
        receipt=_dump(e.receipt),
    ),
    "`toolCallId, toolName, audit, receipt?` (serde form)",
)
for _cache_type in ("cache_hit", "cache_miss"):
    _ext_n(
        _cache_type,
        lambda e: _flat(e.payload),
        "harn: `payload` merged flat (key/backend/namespace not sent); strict: "
        "`{key, backend, namespace, payload}`",
        strict_payload=lambda e: {
            "key": e.key,
            "backend": e.backend,
            "namespace": e.namespace,
            "payload": e.payload,
        },
    )


# --- composition ------------------------------------------------------------------------------------


def _composition_run(e: Any) -> dict[str, Any]:
    run: Any = e.run
    return {
        "runId": run.run_id,
        "language": run.language,
        "snippetHash": run.snippet_hash,
        "bindingManifestHash": run.binding_manifest_hash,
        "requestedSideEffectCeiling": run.requested_side_effect_ceiling.value,
        "stdout": run.stdout,
        "stderr": run.stderr,
        "artifacts": run.artifacts,
        "result": run.result,
        "failureCategory": None if run.failure_category is None else run.failure_category.value,
        "error": run.error,
        "durationMs": run.duration_ms,
        "metadata": run.metadata,
    }


_RUN_FIELDS: Final = (
    "run envelope `runId, language, snippetHash, bindingManifestHash, requestedSideEffectCeiling, "
    "stdout, stderr, artifacts, result, failureCategory, error, durationMs, metadata` (all present)"
)
for _composition_type in ("composition_start", "composition_finish", "composition_error"):
    _ext_n(_composition_type, _composition_run, _RUN_FIELDS)


def _composition_child_call(e: ev.CompositionChildCall) -> dict[str, Any]:
    call = e.call
    return {
        "runId": call.run_id,
        "toolCallId": call.tool_call_id,
        "toolName": call.tool_name,
        "operationIndex": call.operation_index,
        "annotations": _dump(call.annotations),
        "requestedSideEffectLevel": call.requested_side_effect_level.value,
        "policyContext": call.policy_context,
        "rawInput": call.raw_input,
    }


_ext_n(
    "composition_child_call",
    _composition_child_call,
    "`runId, toolCallId, toolName, operationIndex, annotations (null ok), requestedSideEffectLevel, "
    "policyContext, rawInput`",
)


def _composition_child_result(e: ev.CompositionChildResult) -> dict[str, Any]:
    result = e.result
    return {
        "runId": result.run_id,
        "toolCallId": result.tool_call_id,
        "toolName": result.tool_name,
        "operationIndex": result.operation_index,
        "status": result.status.value,
        "rawOutput": result.raw_output,
        "error": result.error,
        "errorCategory": None if result.error_category is None else result.error_category.value,
        "executor": None if result.executor is None else result.executor.to_acp(),
        "durationMs": result.duration_ms,
        "executionDurationMs": result.execution_duration_ms,
    }


_ext_n(
    "composition_child_result",
    _composition_child_result,
    "`runId, toolCallId, toolName, operationIndex, status, rawOutput, error, errorCategory, executor, "
    "durationMs, executionDurationMs` (all present, null ok)",
)


def _loop_checkpoint(seam_key: str) -> Callable[[Any], dict[str, Any]]:
    def payload(e: ev.LoopCheckpoint) -> dict[str, Any]:
        out: dict[str, Any] = {"iteration": e.iteration, seam_key: e.kind, "delivered": e.delivered}
        if e.inbox_delivered > 0:
            out["inboxDelivered"] = e.inbox_delivered
        if e.dispatch_skipped:
            out["dispatchSkipped"] = True
        return out

    return payload


_ext_n(
    "loop_checkpoint",
    _loop_checkpoint("kind"),
    "`iteration, delivered, inboxDelivered? (>0), dispatchSkipped? (true)`; harn loses the seam (its "
    "`kind` is overwritten), strict sends it as `checkpointKind`",
    strict_payload=_loop_checkpoint("checkpointKind"),
)
_ext_n(
    "mcp_notification",
    lambda e: {
        "server": e.server,
        "method": e.method,
        "direction": e.direction,
        "params": e.params,
    },
    "`server, method, direction, params`",
)
_ext_n(
    "mcp_catalog_changed",
    lambda e: {"server": e.server, "reason": e.reason},
    "`server (null when allowlist-wide), reason`",
)
_ext_n(
    "mcp_auth_required",
    lambda e: {"server": e.server, "resource": e.resource, "scope": e.scope},
    "`server, resource, scope (null when absent)`",
)
_ext_n("turn_start", lambda e: {"iteration": e.iteration}, "`iteration`")
_ext_n(
    "turn_end",
    lambda e: {"iteration": e.iteration, "turnInfo": e.turn_info},
    "`iteration, turnInfo`",
)

UNKNOWN_ROW_FIELDS: Final = (
    "kind = the event's `type`; harn: its raw fields merged flat; strict: raw fields under `fields`"
)


def _unknown_harn(e: ev.UnknownAgentEvent) -> list[Message]:
    return [agent_event(e.session_id, e.type, e.fields)]


def _unknown_strict(e: ev.UnknownAgentEvent) -> list[Message]:
    return [agent_event(e.session_id, e.type, {"fields": e.fields})]


_USAGE_TYPES: Final = frozenset({"iteration_end", "transcript_compacted"})

_HARN_BUILDERS: Final = {t: row.harn_build for t, row in ROWS.items()}
_STRICT_BUILDERS: Final = {t: row.strict_build for t, row in ROWS.items()}


def _strict_usage(event: AgentEventBase, context_window: int | None) -> list[Message]:
    """Strict profile: the ``usage_update`` a token-counting event implies (decision 0027)."""
    if isinstance(event, ev.IterationEnd):
        info = event.iteration_info if isinstance(event.iteration_info, dict) else {}
        size = info.get("context_window", context_window)
        return usage_update(event.session_id, context_used(info), size)
    if isinstance(event, ev.TranscriptCompacted):
        return usage_update(event.session_id, event.estimated_tokens_after, context_window)
    return []


USAGE_ROW_NOTE: Final = (
    "strict: + STD `usage_update` when the context window is known (`iteration_info.context_window`"
    " or `--context-window`; decision 0027)"
)
for _type in _USAGE_TYPES:
    _usage_row = ROWS[_type]
    ROWS[_type] = dataclasses.replace(
        _usage_row,
        strict=(*_usage_row.strict, _std("usage_update")),
        fields=f"{_usage_row.fields}; {USAGE_ROW_NOTE}",
    )


def translate(
    event: AgentEventBase,
    *,
    profile: Profile | str = Profile.STRICT,
    replay: bool = False,
    context_window: int | None = None,
) -> list[Message]:
    """Translate one Harn event into the JSON-RPC notifications of ``profile``.

    Pure and stateless. ``replay=True`` marks the messages as replayed history (``session/load``).
    ``profile`` must be ``harn`` or ``strict``; ``auto`` is resolved per connection by the server.
    ``context_window`` (tokens), when known, lets the strict profile add ``usage_update`` to events
    that count tokens (the harn profile is Harn's wire, unchanged).
    """
    if type(profile) is not Profile:
        profile = Profile(profile)
    unknown = isinstance(event, ev.UnknownAgentEvent)
    if profile is Profile.HARN:
        messages = (
            _unknown_harn(cast(ev.UnknownAgentEvent, event))
            if unknown
            else (_HARN_BUILDERS[event.type](event))
        )
    elif profile is Profile.STRICT:
        messages = (
            _unknown_strict(cast(ev.UnknownAgentEvent, event))
            if unknown
            else (_STRICT_BUILDERS[event.type](event))
        )
        if event.type in _USAGE_TYPES:
            messages = [*messages, *_strict_usage(event, context_window)]
    else:
        raise ValueError(
            f"translate() needs a concrete profile ('harn' or 'strict'), not {profile!r}"
        )
    if replay:
        for message in messages:
            mark_replayed(message, profile)
    return messages

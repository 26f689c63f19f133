"""Harn's `AgentEvent`: every variant of `harn_vm::agent_events::AgentEvent`, plus `TurnStart`/`TurnEnd`.

One pydantic model per variant, in one union discriminated on ``"type"`` (the snake_case variant
name). The JSON form is Harn's serde form exactly (see :mod:`acp_bridge.events._serde`), so
``dump_event(parse_event(line)) == line`` for every line Harn writes.

Decoding entry points:

* :func:`parse_event` takes a JSON line (``bytes``/``str``) or an already decoded ``dict``; a
  ``PersistedAgentEvent`` envelope (``{index, emitted_at_ms, frame_depth, ...event}``) is accepted
  and unwrapped;
* :func:`parse_record` keeps the envelope when there is one;
* an unknown ``type`` becomes :class:`UnknownAgentEvent` (kept, with its raw fields, so it can be
  forwarded); anything else malformed raises :class:`~acp_bridge.events.errors.EventDecodeError`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, TypeAlias

from pydantic import ConfigDict, Field, SerializeAsAny, ValidationError

from ._serde import (
    F64,
    I64,
    U32,
    U64,
    Bool,
    Json,
    SerdeModel,
    Str,
    skip_if_empty,
    skip_if_false,
    skip_if_none,
    skip_if_null,
    skip_if_zero,
)
from .errors import EventDecodeError, JsonInput, decode_error_from_validation, load_json_object
from .harn_types import (
    CompositionChildCallRecord,
    CompositionChildResultRecord,
    CompositionRunEnvelope,
    FsWatchEvent,
    HandoffArtifact,
    MutationSessionRecord,
    ToolCallErrorCategory,
    ToolCallReceipt,
    ToolCallStatus,
    ToolExecutor,
    ToolKind,
    WorkerEvent,
)

__all__ = [
    "EVENT_TYPES",
    "TEXT_CHUNK_TYPES",
    "AgentEvent",
    "AgentEventBase",
    "AgentLoopStallWarning",
    "AgentMessageChunk",
    "AgentScratchpadReorganization",
    "AgentThoughtChunk",
    "AnchorChanged",
    "Artifact",
    "BudgetCircuitBreaker",
    "BudgetExhausted",
    "CacheHit",
    "CacheMiss",
    "CapabilityGap",
    "CompassRoutingDecision",
    "CompositionChildCall",
    "CompositionChildResult",
    "CompositionError",
    "CompositionFinish",
    "CompositionStart",
    "ControlOutcome",
    "DaemonWatchdogTripped",
    "FeedbackInjected",
    "FsWatch",
    "Handoff",
    "HarnEvent",
    "HitlRequested",
    "HitlResolved",
    "IterationEnd",
    "IterationStart",
    "JudgeDecision",
    "LoopCheckpoint",
    "LoopControlDecision",
    "LoopStuck",
    "LoopStuckSignal",
    "McpAuthRequired",
    "McpCatalogChanged",
    "McpNotification",
    "MissingToolCallVerdict",
    "PersistedAgentEvent",
    "Plan",
    "ProgressReported",
    "ReminderEmitted",
    "ReservedTerminalVerify",
    "SafeTextPatchResult",
    "ScopeClassifierVerdict",
    "SessionClosed",
    "SkillActivated",
    "SkillDeactivated",
    "SkillNarrow",
    "SkillScopeTools",
    "StagedWritesPending",
    "StanceTransition",
    "StepJudgeDecision",
    "StructuralValidatorDecision",
    "ToolCall",
    "ToolCallAudit",
    "ToolCallUpdate",
    "ToolFormatOverride",
    "ToolSearchQuery",
    "ToolSearchResult",
    "TranscriptCompacted",
    "TranscriptProjected",
    "TurnEnd",
    "TurnStart",
    "TypedCheckpoint",
    "UnknownAgentEvent",
    "UserMessage",
    "WorkerUpdate",
    "dump_event",
    "dump_record",
    "parse_event",
    "parse_record",
]


class AgentEventBase(SerdeModel):
    """Fields and behaviour shared by every Harn event.

    ``type`` is the serde tag; ``session_id`` routes the event through the sink registry.
    """

    type: str
    session_id: Str

    EVENT_TYPE: ClassVar[str] = ""


# --- streaming content -------------------------------------------------------------------------


class AgentMessageChunk(AgentEventBase):
    """A chunk of assistant text."""

    type: Literal["agent_message_chunk"] = "agent_message_chunk"
    content: Str


class AgentThoughtChunk(AgentEventBase):
    """A chunk of model reasoning."""

    type: Literal["agent_thought_chunk"] = "agent_thought_chunk"
    content: Str


TEXT_CHUNK_TYPES: tuple[type[AgentMessageChunk], type[AgentThoughtChunk]] = (
    AgentMessageChunk,
    AgentThoughtChunk,
)
"""The streaming text events: ``type``, ``session_id`` and a ``content`` string, nothing else.

An agent emits thousands of them per answer, so the log and the fan-out build their bytes directly
(for an instance without extra fields), checked byte for byte against the general serialisers.
"""


class UserMessage(AgentEventBase):
    """A user message delivered into the session (e.g. a `session/inject`), as ACP content blocks."""

    type: Literal["user_message"] = "user_message"
    message_id: Str
    content: list[Json]


# --- tool lifecycle ----------------------------------------------------------------------------


class ToolCall(AgentEventBase):
    """A tool call was created (or detected while its arguments stream, ``parsing=True``)."""

    type: Literal["tool_call"] = "tool_call"
    tool_call_id: Str
    tool_name: Str
    kind: ToolKind | None = None
    status: ToolCallStatus
    raw_input: Json
    parsing: Bool | None = skip_if_none()
    audit: MutationSessionRecord | None = skip_if_none()


class ToolCallUpdate(AgentEventBase):
    """A tool call changed status, streamed arguments, or finished."""

    type: Literal["tool_call_update"] = "tool_call_update"
    tool_call_id: Str
    tool_name: Str
    status: ToolCallStatus
    raw_output: Json | None = None
    error: Str | None = None
    duration_ms: U64 | None = skip_if_none()
    execution_duration_ms: U64 | None = skip_if_none()
    error_category: ToolCallErrorCategory | None = skip_if_none()
    executor: ToolExecutor | None = skip_if_none()
    parsing: Bool | None = skip_if_none()
    raw_input: Json | None = skip_if_none()
    raw_input_partial: Str | None = skip_if_none()
    audit: MutationSessionRecord | None = skip_if_none()


# --- plans and progress ------------------------------------------------------------------------


class Plan(AgentEventBase):
    """A plan: an ACP entry list, or a `harn.plan.v1` plan artifact."""

    type: Literal["plan"] = "plan"
    plan: Json


class ProgressReported(AgentEventBase):
    """Progress narration and/or plan-like entries reported by a pipeline."""

    type: Literal["progress_reported"] = "progress_reported"
    message: Str | None = None
    entries: Json
    replace: Bool
    metadata: Json


class CompassRoutingDecision(AgentEventBase):
    """The compass suggested, rewrote, or fell back on a freeform edit."""

    type: Literal["compass_routing_decision"] = "compass_routing_decision"
    tool_call_id: Str
    mode: Str
    action: Str
    persona: Str
    original_tool: Str
    routed_tool: Str
    target_tool: Str
    path: Str | None = skip_if_none()


class AgentScratchpadReorganization(AgentEventBase):
    """An agent scratchpad reorganisation attempt finished."""

    type: Literal["agent_scratchpad_reorganization"] = "agent_scratchpad_reorganization"
    iteration: U64
    status: Str
    details: Json


class Artifact(AgentEventBase):
    """A renderable, declarative artifact spec emitted by an agent."""

    type: Literal["artifact"] = "artifact"
    artifact_id: Str
    kind: Str
    title: Str | None = skip_if_none()
    mime_type: Str
    spec: Json
    fallback: Str
    size_bytes: U64
    provenance: Json
    metadata: Json


# --- loop lifecycle ----------------------------------------------------------------------------


class IterationStart(AgentEventBase):
    """Top of a model round trip inside an agent loop."""

    type: Literal["iteration_start"] = "iteration_start"
    iteration: U64
    provider: Str = skip_if_empty()
    model: Str = skip_if_empty()


class IterationEnd(AgentEventBase):
    """Bottom of a model round trip, with the post-call snapshot."""

    type: Literal["iteration_end"] = "iteration_end"
    iteration: U64
    iteration_info: Json


class SessionClosed(AgentEventBase):
    """A first-class agent session was explicitly closed."""

    type: Literal["session_closed"] = "session_closed"
    reason: Str
    status: Str
    metadata: Json


class AnchorChanged(AgentEventBase):
    """The session's primary workspace anchor was swapped."""

    type: Literal["anchor_changed"] = "anchor_changed"
    previous: Json | None = None
    current: Json
    carry_transcript: Bool
    compacted: Bool
    reason: Str | None = None


class JudgeDecision(AgentEventBase):
    """A completion judge decided whether the loop should continue."""

    type: Literal["judge_decision"] = "judge_decision"
    iteration: U64
    verdict: Str
    reasoning: Str
    next_step: Str | None = None
    judge_duration_ms: U64
    trigger: Str | None = skip_if_none()


class StepJudgeDecision(AgentEventBase):
    """A per-step critique decision, fired before tool dispatch."""

    type: Literal["step_judge_decision"] = "step_judge_decision"
    iteration: U64
    verdict: Str
    reasoning: Str
    critique: Str
    confidence: F64
    judge_duration_ms: U64
    vetoed: Bool
    skipped: Bool = skip_if_false()
    reason: Str | None = skip_if_none()
    judge_error: Bool = skip_if_false()
    on_veto: Str
    input_tokens: U64
    output_tokens: U64
    cost_usd: F64
    provider: Str
    model: Str


class StructuralValidatorDecision(AgentEventBase):
    """A deterministic pre-dispatch critique from the structural validator."""

    type: Literal["structural_validator_decision"] = "structural_validator_decision"
    iteration: U64
    rule: Str
    diagnostic: Str
    recommended_action: Str
    vetoed: Bool
    skipped: Bool = skip_if_false()
    reason: Str | None = skip_if_none()
    on_failure: Str
    attempts: U64
    max_attempts: U64


class ScopeClassifierVerdict(AgentEventBase):
    """The scope classifier labelled a turn."""

    type: Literal["scope_classifier_verdict"] = "scope_classifier_verdict"
    iteration: U64
    label: Str
    original_label: Str
    confidence: F64
    confidence_threshold: F64
    evidence: Str
    skip_main_turn: Bool
    classifier_kind: Str | None = skip_if_none()
    model: Str | None = skip_if_none()
    error: Str | None = skip_if_none()


class MissingToolCallVerdict(AgentEventBase):
    """The classifier judged whether a text-only turn should have called a tool."""

    type: Literal["missing_tool_call_verdict"] = "missing_tool_call_verdict"
    iteration: U64
    action: Str
    original_action: Str
    tool_name: Str
    confidence: F64
    confidence_threshold: F64
    evidence: Str
    language: Str | None = skip_if_none()
    classifier_kind: Str | None = skip_if_none()
    model: Str | None = skip_if_none()
    error: Str | None = skip_if_none()


class TypedCheckpoint(AgentEventBase):
    """A typed checkpoint of the loop's state."""

    type: Literal["typed_checkpoint"] = "typed_checkpoint"
    checkpoint: Json


class FeedbackInjected(AgentEventBase):
    """Feedback was injected into the transcript."""

    type: Literal["feedback_injected"] = "feedback_injected"
    kind: Str
    content: Str


class BudgetExhausted(AgentEventBase):
    """The loop ran out of its iteration (or other) budget."""

    type: Literal["budget_exhausted"] = "budget_exhausted"
    max_iterations: U64
    kind: Str | None = skip_if_none()
    cost_usd: F64 | None = skip_if_none()
    wall_clock_ms: U64 | None = skip_if_none()


class BudgetCircuitBreaker(AgentEventBase):
    """A budget circuit breaker tripped after consecutive retryable failures."""

    type: Literal["budget_circuit_breaker"] = "budget_circuit_breaker"
    kind: Str
    consecutive_count: U64
    paused_for_ms: U64


class LoopStuck(AgentEventBase):
    """The loop broke because consecutive text-only turns hit ``max_nudges``."""

    type: Literal["loop_stuck"] = "loop_stuck"
    max_nudges: U64
    last_iteration: U64
    tail_excerpt: Str


class LoopStuckSignal(AgentEventBase):
    """A pipeline-authored stuck/escalation signal (payload preserved)."""

    type: Literal["loop_stuck_signal"] = "loop_stuck_signal"
    payload: Json


class ReservedTerminalVerify(AgentEventBase):
    """The reserved-budget terminal-verify guard fired (payload preserved)."""

    type: Literal["reserved_terminal_verify"] = "reserved_terminal_verify"
    payload: Json


class DaemonWatchdogTripped(AgentEventBase):
    """The daemon idle-wait watchdog tripped."""

    type: Literal["daemon_watchdog_tripped"] = "daemon_watchdog_tripped"
    attempts: U64
    elapsed_ms: U64


# --- skills, stances, tool surface -------------------------------------------------------------


class SkillActivated(AgentEventBase):
    """A skill was activated."""

    type: Literal["skill_activated"] = "skill_activated"
    skill_name: Str
    iteration: U64
    reason: Str


class SkillDeactivated(AgentEventBase):
    """A skill was deactivated."""

    type: Literal["skill_deactivated"] = "skill_deactivated"
    skill_name: Str
    iteration: U64


class SkillScopeTools(AgentEventBase):
    """A skill's ``allowed_tools`` narrowed the tool surface."""

    type: Literal["skill_scope_tools"] = "skill_scope_tools"
    skill_name: Str
    allowed_tools: list[Str]


class SkillNarrow(AgentEventBase):
    """The loop ratcheted the model-visible tool surface narrower."""

    type: Literal["skill_narrow"] = "skill_narrow"
    reason: Str
    removed_tools: list[Str]
    remaining_tools: list[Str]
    policy: Json = skip_if_null()
    removed_tool_details: Json = skip_if_null()
    kept_tool_details: Json = skip_if_null()


class StanceTransition(AgentEventBase):
    """A read-only stance lifecycle step (armed, write access granted/denied, disarmed)."""

    type: Literal["stance_transition"] = "stance_transition"
    phase: Str
    escape_tool: Str
    allowed_tools: list[Str] = skip_if_empty(list)
    justification: Str = skip_if_empty()
    consent: Str = skip_if_empty()
    reason: Str = skip_if_empty()


class ToolSearchQuery(AgentEventBase):
    """The model issued a ``tool_search`` query."""

    type: Literal["tool_search_query"] = "tool_search_query"
    tool_use_id: Str
    name: Str
    query: Json
    strategy: Str
    mode: Str


class ToolSearchResult(AgentEventBase):
    """A ``tool_search`` resolved, promoting tools into the surface."""

    type: Literal["tool_search_result"] = "tool_search_result"
    tool_use_id: Str
    promoted: list[Str]
    strategy: Str
    mode: Str


# --- transcript --------------------------------------------------------------------------------


class TranscriptCompacted(AgentEventBase):
    """The transcript was compacted."""

    type: Literal["transcript_compacted"] = "transcript_compacted"
    mode: Str
    reason: Str
    strategy: Str
    archived_messages: U64
    estimated_tokens_before: U64
    estimated_tokens_after: U64
    snapshot_asset_id: Str | None = None
    instruction_mode: Str | None = skip_if_none()
    instruction_source: Str | None = skip_if_none()
    compaction_policy: Json | None = skip_if_none()


class TranscriptProjected(AgentEventBase):
    """A model-visible prefix was derived from the raw transcript."""

    type: Literal["transcript_projected"] = "transcript_projected"
    policy: Str
    reason: Str
    prefix_hash: Str
    kept_count: U64
    dropped_count: U64
    provider_safety_blocked: Bool
    redacted_count: U64 = skip_if_zero()
    reclaimed_tokens: U64 = skip_if_zero()
    roots_consulted: list[Str] = skip_if_empty(list)
    redaction_pointers: list[Json] = skip_if_empty(list)


class ReminderEmitted(AgentEventBase):
    """A pending system reminder was rendered into the next provider request."""

    type: Literal["reminder_emitted"] = "reminder_emitted"
    reminder_id: Str
    tags: list[Str]
    body: Str
    role_hint: Str
    rendered_role: Str
    source: Str
    ttl_turns: I64 | None = None


class Handoff(AgentEventBase):
    """A handoff artifact was produced."""

    type: Literal["handoff"] = "handoff"
    artifact_id: Str
    handoff: HandoffArtifact


class FsWatch(AgentEventBase):
    """Filesystem watch notifications for a subscription."""

    type: Literal["fs_watch"] = "fs_watch"
    subscription_id: Str
    events: list[FsWatchEvent]


class StagedWritesPending(AgentEventBase):
    """Hostlib staged filesystem state changed."""

    type: Literal["staged_writes_pending"] = "staged_writes_pending"
    pending_count: U64
    total_bytes: U64


class SafeTextPatchResult(AgentEventBase):
    """Per-call outcome of ``hostlib_fs_safe_text_patch``."""

    type: Literal["safe_text_patch_result"] = "safe_text_patch_result"
    path: Str
    result: Str
    hunks_count: U64
    bytes_written: U64
    failed_hunk_index: U64 | None = skip_if_none()


class ControlOutcome(AgentEventBase):
    """An ACP control-plane arbitration outcome (accepted, idempotent, rejected)."""

    type: Literal["control_outcome"] = "control_outcome"
    control_id: Str
    method: Str
    outcome: Str
    status: Str
    actor: Json
    target: Json
    reason: Str | None = skip_if_none()
    metadata: Json = skip_if_null()


class WorkerUpdate(AgentEventBase):
    """Lifecycle update of a delegated/background worker."""

    type: Literal["worker_update"] = "worker_update"
    worker_id: Str
    worker_name: Str
    worker_task: Str
    worker_mode: Str
    event: WorkerEvent
    status: Str
    metadata: Json
    audit: Json | None = None


class HitlRequested(AgentEventBase):
    """A human-in-the-loop primitive suspended the script and awaits a response."""

    type: Literal["hitl_requested"] = "hitl_requested"
    request_id: Str
    kind: Str
    payload: Json


class HitlResolved(AgentEventBase):
    """A human-in-the-loop waitpoint resolved (answered, timeout, cancelled)."""

    type: Literal["hitl_resolved"] = "hitl_resolved"
    request_id: Str
    kind: Str
    outcome: Str


class LoopControlDecision(AgentEventBase):
    """The adaptive iteration budget extended or stopped the loop."""

    type: Literal["loop_control_decision"] = "loop_control_decision"
    iteration: U64
    action: Str
    old_limit: U64
    new_limit: U64
    reason: Str
    status: Str


class AgentLoopStallWarning(AgentEventBase):
    """Adjacent repeated tool calls with identical arguments were detected."""

    type: Literal["agent_loop_stall_warning"] = "agent_loop_stall_warning"
    warning: Json


class CapabilityGap(AgentEventBase):
    """A provider/model pair lacks a catalog recommendation; a fallback was chosen."""

    type: Literal["capability_gap"] = "capability_gap"
    level: Str
    capability: Str
    provider: Str
    model: Str
    fallback_tool_format: Str
    requested_tool_format: Str | None = skip_if_none()
    message: Str


class ToolFormatOverride(AgentEventBase):
    """A caller forced a tool format that differs from the catalog's recommendation."""

    type: Literal["tool_format_override"] = "tool_format_override"
    provider: Str
    model: Str
    requested_format: Str
    recommended_format: Str
    catalog_parity: Str
    override_reason: Str | None = skip_if_none()


class ToolCallAudit(AgentEventBase):
    """Middleware attached structured audit metadata to a tool call."""

    type: Literal["tool_call_audit"] = "tool_call_audit"
    tool_call_id: Str
    tool_name: Str
    audit: Json
    receipt: ToolCallReceipt | None = skip_if_none()


class CacheHit(AgentEventBase):
    """A cached lookup returned a hit."""

    type: Literal["cache_hit"] = "cache_hit"
    key: Str
    backend: Str
    namespace: Str
    payload: Json


class CacheMiss(AgentEventBase):
    """A cached lookup missed and the fresh result was stored."""

    type: Literal["cache_miss"] = "cache_miss"
    key: Str
    backend: Str
    namespace: Str
    payload: Json


# --- composition -------------------------------------------------------------------------------


class CompositionStart(AgentEventBase):
    """A tool-composition snippet started."""

    type: Literal["composition_start"] = "composition_start"
    run: CompositionRunEnvelope


class CompositionChildCall(AgentEventBase):
    """A composition snippet dispatched a child binding call."""

    type: Literal["composition_child_call"] = "composition_child_call"
    call: CompositionChildCallRecord


class CompositionChildResult(AgentEventBase):
    """A child binding operation reported a status or result."""

    type: Literal["composition_child_result"] = "composition_child_result"
    result: CompositionChildResultRecord


class CompositionFinish(AgentEventBase):
    """A composition run finished successfully."""

    type: Literal["composition_finish"] = "composition_finish"
    run: CompositionRunEnvelope


class CompositionError(AgentEventBase):
    """A composition run failed."""

    type: Literal["composition_error"] = "composition_error"
    run: CompositionRunEnvelope


class LoopCheckpoint(AgentEventBase):
    """One pass through a named steering seam of the agent loop (``kind`` is the seam)."""

    type: Literal["loop_checkpoint"] = "loop_checkpoint"
    iteration: U64
    kind: Str
    delivered: U64
    inbox_delivered: U64 = skip_if_zero()
    dispatch_skipped: Bool = skip_if_false()


# --- MCP -----------------------------------------------------------------------------------------


class McpNotification(AgentEventBase):
    """A peer MCP server sent a server-to-client message during the session."""

    type: Literal["mcp_notification"] = "mcp_notification"
    server: Str
    method: Str
    direction: Str
    params: Json


class McpCatalogChanged(AgentEventBase):
    """The effective MCP catalog changed."""

    type: Literal["mcp_catalog_changed"] = "mcp_catalog_changed"
    server: Str | None = skip_if_none()
    reason: Str


class McpAuthRequired(AgentEventBase):
    """An MCP server answered 401: an OAuth authorisation is needed."""

    type: Literal["mcp_auth_required"] = "mcp_auth_required"
    server: Str
    resource: Str
    scope: Str | None = skip_if_none()


# --- Harn's second contract (older runtimes) ----------------------------------------------------


class TurnStart(AgentEventBase):
    """Start of a loop turn (Harn's earlier name for ``iteration_start``)."""

    type: Literal["turn_start"] = "turn_start"
    iteration: U64


class TurnEnd(AgentEventBase):
    """End of a loop turn (Harn's earlier name for ``iteration_end``)."""

    type: Literal["turn_end"] = "turn_end"
    iteration: U64
    turn_info: Json


# --- forward compatibility ---------------------------------------------------------------------


class UnknownAgentEvent(AgentEventBase):
    """An event whose ``type`` this bridge does not know; its raw fields are kept in model extras.

    It round-trips unchanged and is forwarded as a ``_harn/agentEvent`` notification, so a newer
    runtime is not cut off by an older bridge.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    type: Str

    @property
    def fields(self) -> dict[str, Any]:
        """The event's fields other than ``type`` and ``session_id``, as they came."""
        return dict(self.__pydantic_extra__ or {})


_KNOWN: tuple[type[AgentEventBase], ...] = (
    AgentMessageChunk,
    AgentThoughtChunk,
    UserMessage,
    ToolCall,
    ToolCallUpdate,
    Plan,
    ProgressReported,
    CompassRoutingDecision,
    AgentScratchpadReorganization,
    Artifact,
    IterationStart,
    IterationEnd,
    SessionClosed,
    AnchorChanged,
    JudgeDecision,
    StepJudgeDecision,
    StructuralValidatorDecision,
    ScopeClassifierVerdict,
    MissingToolCallVerdict,
    TypedCheckpoint,
    FeedbackInjected,
    BudgetExhausted,
    BudgetCircuitBreaker,
    LoopStuck,
    LoopStuckSignal,
    ReservedTerminalVerify,
    DaemonWatchdogTripped,
    SkillActivated,
    SkillDeactivated,
    SkillScopeTools,
    SkillNarrow,
    StanceTransition,
    ToolSearchQuery,
    ToolSearchResult,
    TranscriptCompacted,
    TranscriptProjected,
    ReminderEmitted,
    Handoff,
    FsWatch,
    StagedWritesPending,
    SafeTextPatchResult,
    ControlOutcome,
    WorkerUpdate,
    HitlRequested,
    HitlResolved,
    LoopControlDecision,
    AgentLoopStallWarning,
    CapabilityGap,
    ToolFormatOverride,
    ToolCallAudit,
    CacheHit,
    CacheMiss,
    CompositionStart,
    CompositionChildCall,
    CompositionChildResult,
    CompositionFinish,
    CompositionError,
    LoopCheckpoint,
    McpNotification,
    McpCatalogChanged,
    McpAuthRequired,
    TurnStart,
    TurnEnd,
)

for _cls in _KNOWN:
    _cls.EVENT_TYPE = _cls.model_fields["type"].default

EVENT_TYPES: dict[str, type[AgentEventBase]] = {cls.EVENT_TYPE: cls for cls in _KNOWN}
"""Every known ``type`` tag mapped to its model class (63 entries)."""

AgentEvent: TypeAlias = Annotated[
    AgentMessageChunk
    | AgentThoughtChunk
    | UserMessage
    | ToolCall
    | ToolCallUpdate
    | Plan
    | ProgressReported
    | CompassRoutingDecision
    | AgentScratchpadReorganization
    | Artifact
    | IterationStart
    | IterationEnd
    | SessionClosed
    | AnchorChanged
    | JudgeDecision
    | StepJudgeDecision
    | StructuralValidatorDecision
    | ScopeClassifierVerdict
    | MissingToolCallVerdict
    | TypedCheckpoint
    | FeedbackInjected
    | BudgetExhausted
    | BudgetCircuitBreaker
    | LoopStuck
    | LoopStuckSignal
    | ReservedTerminalVerify
    | DaemonWatchdogTripped
    | SkillActivated
    | SkillDeactivated
    | SkillScopeTools
    | SkillNarrow
    | StanceTransition
    | ToolSearchQuery
    | ToolSearchResult
    | TranscriptCompacted
    | TranscriptProjected
    | ReminderEmitted
    | Handoff
    | FsWatch
    | StagedWritesPending
    | SafeTextPatchResult
    | ControlOutcome
    | WorkerUpdate
    | HitlRequested
    | HitlResolved
    | LoopControlDecision
    | AgentLoopStallWarning
    | CapabilityGap
    | ToolFormatOverride
    | ToolCallAudit
    | CacheHit
    | CacheMiss
    | CompositionStart
    | CompositionChildCall
    | CompositionChildResult
    | CompositionFinish
    | CompositionError
    | LoopCheckpoint
    | McpNotification
    | McpCatalogChanged
    | McpAuthRequired
    | TurnStart
    | TurnEnd,
    Field(discriminator="type"),
]
"""The discriminated union of the 63 known Harn event models (for typing and schema use)."""

HarnEvent: TypeAlias = AgentEventBase
"""Any decoded Harn event: one of :data:`AgentEvent`'s members or an :class:`UnknownAgentEvent`."""


class PersistedAgentEvent(SerdeModel):
    """The JSONL envelope of Harn's ``JsonlEventSink``: ``{index, emitted_at_ms, frame_depth, ...event}``.

    The event's fields are flattened into the envelope on the wire; in Python the event is
    :attr:`event`.
    """

    index: U64
    emitted_at_ms: I64
    frame_depth: U32 | None = None
    event: SerializeAsAny[AgentEventBase]

    @property
    def session_id(self) -> str:
        """The wrapped event's session id."""
        return self.event.session_id

    def to_json(self) -> bytes:
        """Serialise as one flattened JSON object (Harn's JSONL line, without the newline)."""
        head = b'{"index":%d,"emitted_at_ms":%d,"frame_depth":%s,' % (
            self.index,
            self.emitted_at_ms,
            b"null" if self.frame_depth is None else str(self.frame_depth).encode(),
        )
        return head + self.event.to_json()[1:]


_ENVELOPE_KEYS = ("index", "emitted_at_ms", "frame_depth")


def _decode_event(obj: dict[str, Any]) -> AgentEventBase:
    tag = obj.get("type")
    if not isinstance(tag, str):
        raise EventDecodeError("event has no string 'type' tag", field="type")
    cls = EVENT_TYPES.get(tag)
    try:
        if cls is None:
            return UnknownAgentEvent.model_validate(obj)
        return cls.model_validate(obj)
    except ValidationError as exc:
        raise decode_error_from_validation(tag, exc) from None


def parse_record(
    data: JsonInput,
) -> AgentEventBase | PersistedAgentEvent:
    """Decode one JSON object as a bare event or a persisted envelope, keeping the envelope."""
    obj = load_json_object(data)
    if "index" not in obj or "emitted_at_ms" not in obj:
        return _decode_event(obj)
    fields = dict(obj)
    envelope = {key: fields.pop(key, None) for key in _ENVELOPE_KEYS}
    event = _decode_event(fields)
    try:
        return PersistedAgentEvent.model_validate({**envelope, "event": event})
    except ValidationError as exc:
        raise decode_error_from_validation("persisted envelope", exc) from None


def parse_event(data: JsonInput) -> AgentEventBase:
    """Decode one Harn event; a persisted envelope is accepted and unwrapped."""
    record = parse_record(data)
    return record.event if isinstance(record, PersistedAgentEvent) else record


def dump_event(event: AgentEventBase) -> bytes:
    """Serialise an event in Harn's serde form."""
    return event.to_json()


def dump_record(record: AgentEventBase | PersistedAgentEvent) -> bytes:
    """Serialise an event or a persisted envelope in Harn's serde form."""
    return record.to_json()

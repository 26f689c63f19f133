"""Helper types carried inside Harn events (tool metadata, workers, audit, handoffs, composition).

Each mirrors a Rust type of Harn's VM at the v3 contract (May 2026), with its serde form: enum strings,
tagging, ``#[serde(default)]`` structs whose ``Option`` fields are written as ``null``. Where Harn later
added fields, the newer fields are accepted and kept as model extras (see decision 0001), and where they
are skipped when absent they are modelled here with the same rule.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import Field

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
    skip_if_none,
)

__all__ = [
    "CompletionEvidenceRole",
    "CompositionChildCallRecord",
    "CompositionChildResultRecord",
    "CompositionFailureCategory",
    "CompositionRunEnvelope",
    "FsWatchEvent",
    "HandoffArtifact",
    "HandoffBudgetRemainingRecord",
    "HandoffDeadlineCheckbackRecord",
    "HandoffEvidenceRefRecord",
    "HandoffReceiptLinkRecord",
    "HandoffTargetRecord",
    "MutationSessionRecord",
    "SideEffectLevel",
    "ToolAnnotations",
    "ToolApprovalPolicy",
    "ToolArgSchema",
    "ToolCallErrorCategory",
    "ToolCallReceipt",
    "ToolCallStatus",
    "ToolExecutor",
    "ToolExecutorHarnBuiltin",
    "ToolExecutorHostBridge",
    "ToolExecutorMcpServer",
    "ToolExecutorProviderNative",
    "ToolKind",
    "WorkerEvent",
]


class ToolKind(enum.StrEnum):
    """What a tool does; the strings are ACP's ``ToolKind`` values (Harn never sends ``switch_mode``)."""

    READ = "read"
    EDIT = "edit"
    DELETE = "delete"
    MOVE = "move"
    SEARCH = "search"
    EXECUTE = "execute"
    THINK = "think"
    FETCH = "fetch"
    OTHER = "other"

    def is_read_only(self) -> bool:
        """True for kinds that cannot change anything (read, search, think, fetch)."""
        return self in _READ_ONLY_KINDS

    def mutation_class(self) -> str:
        """Harn's mutation class: ``read_only``, ``workspace_write``, ``destructive``, ``ambient_side_effect`` or ``other``."""
        return _MUTATION_CLASS[self]


_READ_ONLY_KINDS = frozenset({ToolKind.READ, ToolKind.SEARCH, ToolKind.THINK, ToolKind.FETCH})
_MUTATION_CLASS = {
    ToolKind.READ: "read_only",
    ToolKind.SEARCH: "read_only",
    ToolKind.THINK: "read_only",
    ToolKind.FETCH: "read_only",
    ToolKind.EDIT: "workspace_write",
    ToolKind.DELETE: "destructive",
    ToolKind.MOVE: "destructive",
    ToolKind.EXECUTE: "ambient_side_effect",
    ToolKind.OTHER: "other",
}


class SideEffectLevel(enum.StrEnum):
    """The side-effect ceiling of a tool or composition, ordered by :meth:`rank`."""

    NONE = "none"
    READ_ONLY = "read_only"
    WORKSPACE_WRITE = "workspace_write"
    PROCESS_EXEC = "process_exec"
    NETWORK = "network"
    DESKTOP_CONTROL = "desktop_control"

    def rank(self) -> int:
        """0 (``none``) to 5 (``desktop_control``)."""
        return list(SideEffectLevel).index(self)


class CompletionEvidenceRole(enum.StrEnum):
    """What a tool's result proves about task completion."""

    OBSERVATION = "observation"
    MUTATION = "mutation"
    VERIFICATION = "verification"


class ToolCallStatus(enum.StrEnum):
    """Lifecycle status of a tool call; identical to ACP's ``ToolCallStatus``."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


class ToolCallErrorCategory(enum.StrEnum):
    """Structured classification of a failed tool call (sent as ``errorCategory``)."""

    SCHEMA_VALIDATION = "schema_validation"
    TOOL_ERROR = "tool_error"
    MCP_SERVER_ERROR = "mcp_server_error"
    HOST_BRIDGE_ERROR = "host_bridge_error"
    PERMISSION_DENIED = "permission_denied"
    REJECTED_LOOP = "rejected_loop"
    PARSE_ABORTED = "parse_aborted"
    TIMEOUT = "timeout"
    NETWORK = "network"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    # Added by later Harn releases; accepted so newer runtimes are not rejected.
    ABANDONED_AT_LOOP_EXIT = "abandoned_at_loop_exit"
    RESOURCE_BUSY = "resource_busy"
    ENVIRONMENT = "environment"


class _ExecutorBase(SerdeModel):
    def to_acp(self) -> Any:
        """The ACP wire form: a bare string, or ``{"kind":"mcp_server","serverName":...}``."""
        return self.kind  # type: ignore[attr-defined]


class ToolExecutorHarnBuiltin(_ExecutorBase):
    """The tool ran inside Harn."""

    kind: Literal["harn_builtin"] = "harn_builtin"


class ToolExecutorHostBridge(_ExecutorBase):
    """The tool ran through the host bridge."""

    kind: Literal["host_bridge"] = "host_bridge"


class ToolExecutorMcpServer(_ExecutorBase):
    """The tool ran on an MCP server."""

    kind: Literal["mcp_server"] = "mcp_server"
    server_name: Str

    def to_acp(self) -> Any:
        """``{"kind":"mcp_server","serverName":<name>}``."""
        return {"kind": "mcp_server", "serverName": self.server_name}


class ToolExecutorProviderNative(_ExecutorBase):
    """The tool ran natively at the model provider."""

    kind: Literal["provider_native"] = "provider_native"


ToolExecutor: TypeAlias = Annotated[
    ToolExecutorHarnBuiltin
    | ToolExecutorHostBridge
    | ToolExecutorMcpServer
    | ToolExecutorProviderNative,
    Field(discriminator="kind"),
]
"""Where a tool actually ran; serde form ``{"kind": ...}`` (``server_name`` for ``mcp_server``)."""


class WorkerEvent(enum.StrEnum):
    """A worker lifecycle step; serialised as the variant name itself (PascalCase)."""

    WORKER_SPAWNED = "WorkerSpawned"
    WORKER_PROGRESSED = "WorkerProgressed"
    WORKER_WAITING_FOR_INPUT = "WorkerWaitingForInput"
    WORKER_SUSPENDED = "WorkerSuspended"
    WORKER_RESUMED = "WorkerResumed"
    WORKER_COMPLETED = "WorkerCompleted"
    WORKER_FAILED = "WorkerFailed"
    WORKER_STOPPED = "WorkerStopped"
    WORKER_CANCELLED = "WorkerCancelled"

    def as_str(self) -> str:
        """The variant name, as it appears on the ACP wire."""
        return self.value

    def as_status(self) -> str:
        """The worker status string Harn derives from this event."""
        return _WORKER_STATUS[self]

    def is_terminal(self) -> bool:
        """True once the worker can no longer change state."""
        return self in _TERMINAL_WORKER_EVENTS


_WORKER_STATUS = {
    WorkerEvent.WORKER_SPAWNED: "running",
    WorkerEvent.WORKER_PROGRESSED: "progressed",
    WorkerEvent.WORKER_WAITING_FOR_INPUT: "awaiting_input",
    WorkerEvent.WORKER_SUSPENDED: "suspended",
    WorkerEvent.WORKER_RESUMED: "running",
    WorkerEvent.WORKER_COMPLETED: "completed",
    WorkerEvent.WORKER_FAILED: "failed",
    WorkerEvent.WORKER_STOPPED: "stopped",
    WorkerEvent.WORKER_CANCELLED: "cancelled",
}
_TERMINAL_WORKER_EVENTS = frozenset(
    {
        WorkerEvent.WORKER_COMPLETED,
        WorkerEvent.WORKER_FAILED,
        WorkerEvent.WORKER_STOPPED,
        WorkerEvent.WORKER_CANCELLED,
    }
)


class FsWatchEvent(SerdeModel):
    """One filesystem notification of an ``fs_watch`` subscription."""

    kind: Str
    paths: list[Str]
    relative_paths: list[Str]
    raw_kind: Str
    error: Str | None = None


class ToolApprovalPolicy(SerdeModel):
    """Glob lists deciding which tool calls are auto-approved, denied, or need approval."""

    auto_approve: list[Str] = Field(default_factory=list)
    auto_deny: list[Str] = Field(default_factory=list)
    require_approval: list[Str] = Field(default_factory=list)
    write_path_allowlist: list[Str] = Field(default_factory=list)


class MutationSessionRecord(SerdeModel):
    """The mutation-session audit context of a write-capable tool dispatch (every key always written)."""

    session_id: Str = ""
    parent_session_id: Str | None = None
    run_id: Str | None = None
    worker_id: Str | None = None
    execution_kind: Str | None = None
    mutation_scope: Str = ""
    approval_policy: ToolApprovalPolicy | None = None


class HandoffTargetRecord(SerdeModel):
    """Who a handoff is for: a persona, a human, an A2A agent or a worker queue."""

    kind: Str = ""
    id: Str | None = None
    label: Str | None = None
    uri: Str | None = None


class HandoffEvidenceRefRecord(SerdeModel):
    """A pointer to evidence supporting a handoff."""

    artifact_id: Str | None = None
    kind: Str | None = None
    label: Str | None = None
    path: Str | None = None
    uri: Str | None = None


class HandoffBudgetRemainingRecord(SerdeModel):
    """Budget left for the receiver of a handoff."""

    tokens: I64 | None = None
    tool_calls: I64 | None = None
    dollars: F64 | None = None


class HandoffDeadlineCheckbackRecord(SerdeModel):
    """When a handoff is due and when to check back."""

    deadline: Str | None = None
    checkback_at: Str | None = None


class HandoffReceiptLinkRecord(SerdeModel):
    """A link from a handoff to a run receipt or artifact."""

    kind: Str = ""
    label: Str | None = None
    run_id: Str | None = None
    artifact_id: Str | None = None
    path: Str | None = None
    href: Str | None = None


class HandoffArtifact(SerdeModel):
    """A structured handoff between personas, humans or workers (``_type: "handoff_artifact"``)."""

    type_name: Str = Field(default="", alias="_type", serialization_alias="_type")
    kind: Str = ""
    id: Str = ""
    parent_run_id: Str | None = None
    source_persona: Str = ""
    target_persona_or_human: HandoffTargetRecord = Field(default_factory=HandoffTargetRecord)
    task: Str = ""
    reason: Str = ""
    evidence_refs: list[HandoffEvidenceRefRecord] = Field(default_factory=list)
    files_or_entities_touched: list[Str] = Field(default_factory=list)
    open_questions: list[Str] = Field(default_factory=list)
    blocked_on: list[Str] = Field(default_factory=list)
    requested_capabilities: list[Str] = Field(default_factory=list)
    allowed_side_effects: list[Str] = Field(default_factory=list)
    policy_override: Json | None = skip_if_none()
    reminder_propagation: list[Json] = skip_if_empty(list)
    effects: list[Json] = skip_if_empty(list)
    budget_remaining: HandoffBudgetRemainingRecord | None = None
    deadline_checkback: HandoffDeadlineCheckbackRecord | None = None
    confidence: F64 | None = None
    receipt_links: list[HandoffReceiptLinkRecord] = Field(default_factory=list)
    route_decision: Json | None = None
    created_at: Str = ""
    metadata: dict[str, Json] = Field(default_factory=dict)


class ToolCallReceipt(SerdeModel):
    """A stable, privacy-preserving record of one tool call (schema ``tool-call-receipt.v1``)."""

    schema_version: U32
    session_id: Str
    run_id: Str | None = None
    tool_call_id: Str
    tool_name: Str
    iteration: U64
    turn_index: U64 | None = None
    emit_order: U64
    reason: Str | None = None
    kind: Str | None = None
    executor: Str | None = None
    status: Str
    error_category: Str | None = None
    duration_ms: U64
    args_hash: Str
    result_hash: Str | None = None
    audit: Json
    emitted_at: Str
    model: Str | None = None
    provider: Str | None = None


class ToolArgSchema(SerdeModel):
    """Which arguments of a tool are paths, and their aliases."""

    path_params: list[Str] = Field(default_factory=list)
    arg_aliases: dict[str, Str] = Field(default_factory=dict)
    required: list[Str] = Field(default_factory=list)


class ToolAnnotations(SerdeModel):
    """Harn's static annotations of a tool (snake_case keys, except the MCP ``*Hint`` fields)."""

    kind: ToolKind = ToolKind.OTHER
    side_effect_level: SideEffectLevel = SideEffectLevel.NONE
    completion_evidence_role: CompletionEvidenceRole | None = skip_if_none()
    arg_schema: ToolArgSchema = Field(default_factory=ToolArgSchema)
    capabilities: dict[str, list[Str]] = Field(default_factory=dict)
    emits_artifacts: Bool = False
    result_readers: list[Str] = Field(default_factory=list)
    inline_result: Bool = False
    read_only_hint: Bool | None = Field(
        default=None, alias="readOnlyHint", exclude_if=lambda v: v is None
    )
    destructive_hint: Bool | None = Field(
        default=None, alias="destructiveHint", exclude_if=lambda v: v is None
    )
    idempotent_hint: Bool | None = Field(
        default=None, alias="idempotentHint", exclude_if=lambda v: v is None
    )
    open_world_hint: Bool | None = Field(
        default=None, alias="openWorldHint", exclude_if=lambda v: v is None
    )


class CompositionFailureCategory(enum.StrEnum):
    """Why a composition run failed."""

    UNSUPPORTED_LANGUAGE = "unsupported_language"
    SCHEMA_VALIDATION = "schema_validation"
    POLICY_DENIED = "policy_denied"
    CHILD_TOOL_ERROR = "child_tool_error"
    EXECUTION_ERROR = "execution_error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class CompositionRunEnvelope(SerdeModel):
    """Identity and (when finished) outcome of a tool-composition run."""

    run_id: Str = ""
    language: Str = ""
    snippet_hash: Str = ""
    binding_manifest_hash: Str = ""
    requested_side_effect_ceiling: SideEffectLevel = SideEffectLevel.READ_ONLY
    stdout: Str | None = None
    stderr: Str | None = None
    artifacts: list[Json] = Field(default_factory=list)
    result: Json | None = None
    failure_category: CompositionFailureCategory | None = None
    error: Str | None = None
    duration_ms: U64 | None = None
    metadata: Json = Field(default_factory=dict)


class CompositionChildCallRecord(SerdeModel):
    """A child binding call dispatched by a composition (Rust ``CompositionChildCall``)."""

    run_id: Str = ""
    tool_call_id: Str = ""
    tool_name: Str = ""
    operation_index: U64 = 0
    annotations: ToolAnnotations | None = None
    requested_side_effect_level: SideEffectLevel = SideEffectLevel.NONE
    policy_context: Json = Field(default_factory=dict)
    raw_input: Json = None


class CompositionChildResultRecord(SerdeModel):
    """The status or result of a composition's child call (Rust ``CompositionChildResult``)."""

    run_id: Str = ""
    tool_call_id: Str = ""
    tool_name: Str = ""
    operation_index: U64 = 0
    status: ToolCallStatus = ToolCallStatus.PENDING
    raw_output: Json | None = None
    error: Str | None = None
    error_category: ToolCallErrorCategory | None = None
    executor: ToolExecutor | None = None
    duration_ms: U64 | None = None
    execution_duration_ms: U64 | None = None

"""The run-style runtime's ``AgentEvent`` (17 variants, externally tagged) and its envelope.

The Rust source is a plain ``enum AgentEvent { RunStarted(RunStarted), ... }`` with no serde
attributes, so each event is written as a one-key object ``{"VariantName": {payload fields}}``.
Every payload struct has ``run_id`` first and ``timestamp`` last; this module has one pydantic model
per payload struct (``AssistantMessageCommitted`` and ``ToolMessageCommitted`` share
:class:`MessageCommitted` and differ only in :attr:`RuntimeEvent.variant`).

Wire fidelity (see :mod:`acp_bridge.events._serde`): field declaration order is serialisation
order, scalars are strict, and timestamps keep the exact string they arrived as (chrono writes 0, 3,
6 or 9 fraction digits; Python's ``datetime`` holds only 6), so
``dump_runtime_event(parse_runtime_event(line)) == line`` for every line serde writes.
:attr:`RuntimePayload.timestamp_dt` gives the parsed value.

Decoding entry points:

* :func:`parse_runtime_event` takes a JSON line (``bytes``/``str``) or an already decoded
  ``dict``; a :class:`RuntimeEventEnvelope` (``{event_id, seq, run_id, session_id, event,
  emitted_at}``) is accepted and unwrapped;
* :func:`parse_runtime_record` keeps the envelope when there is one;
* a variant this bridge does not know (``CacheMetrics`` from newer runtimes, or anything later)
  becomes an :class:`UnknownRuntimeEvent` holding the raw payload, which round-trips unchanged;
  anything else malformed raises :class:`~acp_bridge.events.errors.EventDecodeError` naming the
  variant and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeAlias, cast

import pydantic_core
from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    PlainValidator,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from ._serde import U32, U64, Json, SerdeModel, Str
from .errors import EventDecodeError, JsonInput, decode_error_from_validation, load_json_object

__all__ = [
    "FINISH_REASONS",
    "TERMINAL_VARIANTS",
    "VARIANTS",
    "AnyRuntimeEvent",
    "CompactionCircuitOpened",
    "ContextBuilt",
    "DoomLoopDetected",
    "FinishReason",
    "KnownFinishReason",
    "MessageCommitted",
    "ModelStarted",
    "RunCancelled",
    "RunCompleted",
    "RunFailed",
    "RunStarted",
    "RuntimeEvent",
    "RuntimeEventEnvelope",
    "RuntimePayload",
    "TextDelta",
    "Timestamp",
    "TokenUsage",
    "ToolCall",
    "ToolCallCompleted",
    "ToolCallDelta",
    "ToolCallStarted",
    "ToolExecutionFailure",
    "ToolExecutionFinished",
    "ToolExecutionResult",
    "ToolExecutionStarted",
    "ToolExecutionSuccess",
    "UnknownFinishReason",
    "UnknownRuntimeEvent",
    "UsageRecorded",
    "dump_runtime_event",
    "dump_runtime_record",
    "parse_rfc3339",
    "parse_runtime_event",
    "parse_runtime_record",
]


# --- timestamps --------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})[Tt ]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<off_hour>[0-9]{2}):(?P<off_minute>[0-9]{2}))"
)
_TIMESTAMP_EXAMPLE = "2026-06-25T15:12:51.123456789Z"


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (chrono's ``DateTime<Utc>`` serde form) to an aware UTC datetime.

    Fraction digits beyond microseconds are truncated (not rounded); a leap second (``:60``) becomes
    ``:59.999999``; an explicit offset is converted to UTC. Raises ``ValueError`` when ``value`` is
    not RFC 3339 or names an impossible date or time.
    """
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(
            f"not an RFC 3339 timestamp: {value!r} (expected e.g. {_TIMESTAMP_EXAMPLE!r})"
        )
    second = int(match["second"])
    fraction = match["fraction"] or ""
    microsecond = int(fraction[:6].ljust(6, "0"))
    if second == 60:
        second, microsecond = 59, 999_999
    if match["utc"]:
        tz: timezone = UTC
    else:
        off_hour, off_minute = int(match["off_hour"]), int(match["off_minute"])
        if off_hour > 23 or off_minute > 59:
            raise ValueError(f"not an RFC 3339 timestamp: {value!r} (offset out of range)")
        offset = timedelta(hours=off_hour, minutes=off_minute)
        tz = timezone(-offset if match["sign"] == "-" else offset)
    try:
        parsed = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            second,
            microsecond,
            tzinfo=tz,
        )
    except ValueError as exc:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r} ({exc})") from None
    return parsed.astimezone(UTC)


def _check_timestamp(value: str) -> str:
    parse_rfc3339(value)
    return value


Timestamp = Annotated[Str, AfterValidator(_check_timestamp)]
"""Rust ``DateTime<Utc>``: an RFC 3339 string, validated but kept verbatim (nanoseconds and all)."""


# --- referenced types --------------------------------------------------------------------------

KnownFinishReason: TypeAlias = Literal["stop", "tool_calls", "length", "content_filter", "error"]
"""The unit variants of ``FinishReason`` in their ``snake_case`` serde form."""

FINISH_REASONS: tuple[KnownFinishReason, ...] = (
    "stop",
    "tool_calls",
    "length",
    "content_filter",
    "error",
)
"""Every :data:`KnownFinishReason`, in Rust declaration order."""


class UnknownFinishReason(SerdeModel):
    """``FinishReason::Unknown(raw)``, ``{"unknown": raw}``: a reason the runtime did not map."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unknown: Str


_FINISH_REASON_EXPECTED = (
    'expected one of "stop", "tool_calls", "length", "content_filter", "error" '
    'or {"unknown": <string>}'
)


def _validate_finish_reason(value: object) -> KnownFinishReason | UnknownFinishReason:
    if isinstance(value, UnknownFinishReason):
        return value
    if isinstance(value, str):
        if value in FINISH_REASONS:
            return value
        raise ValueError(f"unknown finish reason {value!r}; {_FINISH_REASON_EXPECTED}")
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("unknown"), str):
        return UnknownFinishReason(unknown=value["unknown"])
    raise ValueError(f"invalid finish reason {value!r}; {_FINISH_REASON_EXPECTED}")


def _finish_reason_to_wire(value: KnownFinishReason | UnknownFinishReason) -> str | dict[str, str]:
    return {"unknown": value.unknown} if isinstance(value, UnknownFinishReason) else value


FinishReason = Annotated[
    KnownFinishReason | UnknownFinishReason,
    PlainValidator(
        _validate_finish_reason,
        json_schema_input_type=KnownFinishReason | UnknownFinishReason,
    ),
    PlainSerializer(_finish_reason_to_wire),
]
"""Rust ``FinishReason``: a :data:`KnownFinishReason` string or an :class:`UnknownFinishReason`."""


_CACHE_FIELDS = ("cache_creation_input_tokens", "cache_read_input_tokens", "cached_input_tokens")


class TokenUsage(SerdeModel):
    """Token counts of one model call.

    The three cache fields exist only in newer runtimes (``Option<u64>``, written as ``null`` when
    unset). They are written back only when the input had them, so an older runtime's
    ``{"input_tokens","output_tokens","total_tokens"}`` round-trips unchanged, and a newer one's
    ``null`` stays ``null``.
    """

    input_tokens: U64
    output_tokens: U64
    total_tokens: U64
    cache_creation_input_tokens: U64 | None = None
    cache_read_input_tokens: U64 | None = None
    cached_input_tokens: U64 | None = None

    @model_serializer(mode="wrap")
    def _omit_absent_cache_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in _CACHE_FIELDS:
            if name not in self.model_fields_set:
                data.pop(name, None)
        return data


class ToolCall(SerdeModel):
    """A complete tool call requested by the model; ``arguments`` is a JSON value, not a string."""

    id: Str
    name: Str
    arguments: Json


class _ExternallyTagged(SerdeModel):
    """A struct variant of a plain serde enum: ``{TAG: {fields}}`` on the wire."""

    TAG: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _untag(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.TAG in data:
            if len(data) != 1:
                raise ValueError(f"expected an object with the single key {cls.TAG!r}")
            return data[cls.TAG]
        return data

    @model_serializer(mode="wrap")
    def _tag(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {self.TAG: handler(self)}

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        body = dict(handler.resolve_ref_schema(handler(schema)))
        title = body.pop("title", cls.__name__)
        return {
            "title": title,
            "type": "object",
            "properties": {cls.TAG: body},
            "required": [cls.TAG],
            "additionalProperties": False,
        }


class ToolExecutionSuccess(_ExternallyTagged):
    """``ToolExecutionResult::Success``: ``{"Success": {"output": <json>}}``."""

    TAG: ClassVar[str] = "Success"

    output: Json


class ToolExecutionFailure(_ExternallyTagged):
    """``ToolExecutionResult::Failure``: ``{"Failure": {"error": "..."}}``."""

    TAG: ClassVar[str] = "Failure"

    error: Str


def _tool_execution_result_tag(value: Any) -> str | None:
    if isinstance(value, ToolExecutionSuccess | ToolExecutionFailure):
        return value.TAG
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        if key in ("Success", "Failure"):
            return cast(str, key)
    return None


ToolExecutionResult = Annotated[
    Annotated[ToolExecutionSuccess, Tag("Success")]
    | Annotated[ToolExecutionFailure, Tag("Failure")],
    Discriminator(
        _tool_execution_result_tag,
        custom_error_type="invalid_tool_execution_result",
        custom_error_message=(
            'expected {"Success": {"output": ...}} or {"Failure": {"error": "..."}}'
        ),
    ),
]
"""Rust ``ToolExecutionResult``: :class:`ToolExecutionSuccess` or :class:`ToolExecutionFailure`."""


# --- payload structs ---------------------------------------------------------------------------


class RuntimePayload(SerdeModel):
    """Base of the payload structs: ``run_id`` first; each subclass ends with ``timestamp``.

    ``timestamp`` is declared by each subclass (not here) so that it stays the last field, as in
    Rust.
    """

    run_id: Str

    if TYPE_CHECKING:
        timestamp: str

    @property
    def timestamp_dt(self) -> datetime:
        """``timestamp`` as an aware UTC ``datetime`` (sub-microsecond digits truncated)."""
        return parse_rfc3339(self.timestamp)

    def to_json(self) -> bytes:
        """Serialise the payload alone in serde's form (compact JSON, declaration order)."""
        return self.__pydantic_serializer__.to_json(self)

    def to_dict(self) -> dict[str, Any]:
        """The payload's serde form as a JSON-compatible ``dict``."""
        result: dict[str, Any] = self.__pydantic_serializer__.to_python(self, mode="json")
        return result


class RunStarted(RuntimePayload):
    """A run has started; the only payload that carries the session id."""

    session_id: Str
    provider: Str
    model: Str
    timestamp: Timestamp


class ContextBuilt(RuntimePayload):
    """The model context has been built."""

    message_count: U64
    timestamp: Timestamp


class ModelStarted(RuntimePayload):
    """A model call has started (``iteration`` counts loop iterations)."""

    provider: Str
    model: Str
    iteration: U64
    timestamp: Timestamp


class TextDelta(RuntimePayload):
    """A chunk of assistant text from the model."""

    delta: Str
    timestamp: Timestamp


class ToolCallStarted(RuntimePayload):
    """The model started streaming a tool call."""

    call_id: Str
    tool_name: Str
    timestamp: Timestamp


class ToolCallDelta(RuntimePayload):
    """A fragment of a tool call's raw argument JSON text."""

    call_id: Str
    delta: Str
    timestamp: Timestamp


class ToolCallCompleted(RuntimePayload):
    """A tool call is complete, with its parsed arguments."""

    call: ToolCall
    timestamp: Timestamp


class ToolExecutionStarted(RuntimePayload):
    """A tool started executing (defined by the runtime but not emitted by its run loop)."""

    call_id: Str
    tool_name: Str
    timestamp: Timestamp


class ToolExecutionFinished(RuntimePayload):
    """A tool finished executing (defined by the runtime but not emitted by its run loop)."""

    call_id: Str
    tool_name: Str
    result: ToolExecutionResult
    duration_ms: U64
    timestamp: Timestamp


class MessageCommitted(RuntimePayload):
    """A message was committed to the store (payload of both ``*MessageCommitted`` variants)."""

    message_id: Str
    timestamp: Timestamp


class UsageRecorded(RuntimePayload):
    """Token usage of a model call was recorded."""

    usage: TokenUsage
    timestamp: Timestamp


class RunCompleted(RuntimePayload):
    """The run completed (terminal)."""

    finish_reason: FinishReason
    iterations: U64
    timestamp: Timestamp


class RunFailed(RuntimePayload):
    """The run failed (terminal); ``error`` is the runtime error's display text."""

    error: Str
    timestamp: Timestamp


class RunCancelled(RuntimePayload):
    """The run was cancelled (terminal)."""

    timestamp: Timestamp


class DoomLoopDetected(RuntimePayload):
    """A repeated tool-call pattern was detected; a ``RunFailed`` follows."""

    description: Str
    timestamp: Timestamp


class CompactionCircuitOpened(RuntimePayload):
    """The compaction circuit breaker opened after repeated compaction failures."""

    consecutive_failures: U32
    timestamp: Timestamp


VARIANTS: dict[str, type[RuntimePayload]] = {
    "RunStarted": RunStarted,
    "ContextBuilt": ContextBuilt,
    "ModelStarted": ModelStarted,
    "TextDelta": TextDelta,
    "ToolCallStarted": ToolCallStarted,
    "ToolCallDelta": ToolCallDelta,
    "ToolCallCompleted": ToolCallCompleted,
    "ToolExecutionStarted": ToolExecutionStarted,
    "ToolExecutionFinished": ToolExecutionFinished,
    "AssistantMessageCommitted": MessageCommitted,
    "ToolMessageCommitted": MessageCommitted,
    "UsageRecorded": UsageRecorded,
    "RunCompleted": RunCompleted,
    "RunFailed": RunFailed,
    "RunCancelled": RunCancelled,
    "DoomLoopDetected": DoomLoopDetected,
    "CompactionCircuitOpened": CompactionCircuitOpened,
}
"""Every known variant name mapped to its payload model, in Rust declaration order (17 entries)."""

TERMINAL_VARIANTS: frozenset[str] = frozenset({"RunCompleted", "RunFailed", "RunCancelled"})
"""The variants for which ``AgentEvent::is_terminal()`` is true."""


# --- the enum ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuntimeEvent:
    """One known ``AgentEvent``: the variant name and its payload model.

    ``RuntimeEvent("TextDelta", TextDelta(...))``; :meth:`from_payload` infers the variant from the
    payload type where that is unambiguous. Works with ``match``::

        match event:
            case RuntimeEvent("TextDelta", TextDelta(delta=text)): ...
    """

    variant: str
    payload: RuntimePayload

    def __post_init__(self) -> None:
        expected = VARIANTS.get(self.variant)
        if expected is None:
            raise ValueError(
                f"{self.variant!r} is not a known runtime event variant; use UnknownRuntimeEvent"
            )
        if not isinstance(self.payload, expected):
            raise TypeError(
                f"{self.variant} carries a {expected.__name__} payload, "
                f"got {type(self.payload).__name__}"
            )

    @classmethod
    def from_payload(cls, payload: RuntimePayload, variant: str | None = None) -> RuntimeEvent:
        """Wrap ``payload``; ``variant`` is needed only for a :class:`MessageCommitted` payload."""
        if variant is None:
            names = [name for name, model in VARIANTS.items() if model is type(payload)]
            if len(names) != 1:
                raise ValueError(
                    f"cannot infer the variant of a {type(payload).__name__} payload; "
                    f"pass variant= (one of {', '.join(names) or 'none'})"
                )
            variant = names[0]
        return cls(variant, payload)

    @property
    def run_id(self) -> str:
        """The run this event belongs to (``AgentEvent::run_id()``)."""
        return self.payload.run_id

    @property
    def session_id(self) -> str | None:
        """The session id; only ``RunStarted`` carries one, every other variant gives ``None``."""
        return self.payload.session_id if isinstance(self.payload, RunStarted) else None

    @property
    def timestamp(self) -> str:
        """The payload's ``timestamp``, verbatim."""
        return self.payload.timestamp

    def is_terminal(self) -> bool:
        """True exactly for ``RunCompleted``, ``RunFailed`` and ``RunCancelled``."""
        return self.variant in TERMINAL_VARIANTS

    def to_json(self) -> bytes:
        """Serialise as serde does: compact ``{"Variant":{...}}``, fields in declaration order."""
        return b'{"%s":%s}' % (self.variant.encode(), self.payload.to_json())

    def to_dict(self) -> dict[str, Any]:
        """The serde form as a JSON-compatible ``dict``."""
        return {self.variant: self.payload.to_dict()}


@dataclass(frozen=True, slots=True)
class UnknownRuntimeEvent:
    """A variant this bridge does not know (e.g. ``CacheMetrics``): its name and raw payload.

    It round-trips unchanged, so a newer runtime's events pass through an older bridge.
    """

    variant: str
    payload: Json

    def __post_init__(self) -> None:
        if self.variant in VARIANTS:
            raise ValueError(f"{self.variant!r} is a known variant; decode it as a RuntimeEvent")

    @property
    def run_id(self) -> str | None:
        """The payload's ``run_id`` when it is an object with a string ``run_id``, else ``None``."""
        run_id = self.payload.get("run_id") if isinstance(self.payload, dict) else None
        return run_id if isinstance(run_id, str) else None

    @property
    def session_id(self) -> None:
        """Always ``None``: only ``RunStarted`` carries a session id."""
        return None

    def is_terminal(self) -> bool:
        """Always false: the terminal variants are all known."""
        return False

    def to_json(self) -> bytes:
        """Serialise as ``{"Variant": <raw payload>}`` (compact JSON, original key order)."""
        return pydantic_core.to_json({self.variant: self.payload})

    def to_dict(self) -> dict[str, Any]:
        """The wire form as a ``dict``."""
        return {self.variant: self.payload}


AnyRuntimeEvent: TypeAlias = RuntimeEvent | UnknownRuntimeEvent
"""Any decoded runtime event: a known :class:`RuntimeEvent` or an :class:`UnknownRuntimeEvent`."""


# --- decoding ----------------------------------------------------------------------------------

_Input: TypeAlias = JsonInput


def _decode_event(obj: dict[str, Any]) -> AnyRuntimeEvent:
    if len(obj) != 1:
        keys = ", ".join(repr(key) for key in obj) or "none"
        raise EventDecodeError(
            "a runtime event must be an object with exactly one key (the variant name), "
            f"got {len(obj)} keys: {keys}"
        )
    ((variant, body),) = obj.items()
    if not isinstance(variant, str):
        raise EventDecodeError(f"the variant name must be a string, got {variant!r}")
    model = VARIANTS.get(variant)
    if model is None:
        return UnknownRuntimeEvent(variant, body)
    try:
        payload = model.model_validate(body)
    except ValidationError as exc:
        raise decode_error_from_validation(variant, exc) from None
    return RuntimeEvent(variant, payload)


def _coerce_event(value: Any) -> AnyRuntimeEvent:
    if isinstance(value, RuntimeEvent | UnknownRuntimeEvent):
        return value
    if not isinstance(value, dict):
        raise EventDecodeError(f"a runtime event must be a JSON object, got {type(value).__name__}")
    return _decode_event(value)


def _event_to_wire(event: AnyRuntimeEvent) -> dict[str, Any]:
    return event.to_dict()


class _WireEvent:
    """Pydantic hook for a field holding an ``AgentEvent`` in its externally tagged wire form."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _coerce_event,
            serialization=core_schema.plain_serializer_function_ser_schema(_event_to_wire),
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "description": 'An externally tagged AgentEvent: {"VariantName": {payload}}.',
        }


class RuntimeEventEnvelope(SerdeModel):
    """The transport-neutral envelope the runtime stores and fans out (``RuntimeEventEnvelope``).

    ``seq`` is monotonic per ``run_id`` starting at 1 and ``event_id`` is a globally unique dedupe
    key (a UUIDv7 string); ``session_id`` is ``null`` until the run's ``RunStarted`` is seen.
    """

    event_id: Str
    seq: U64
    run_id: Str
    session_id: Str | None = None
    event: Annotated[AnyRuntimeEvent, _WireEvent()]
    emitted_at: Timestamp

    @property
    def emitted_at_dt(self) -> datetime:
        """``emitted_at`` as an aware UTC ``datetime`` (sub-microsecond digits truncated)."""
        return parse_rfc3339(self.emitted_at)

    def is_terminal(self) -> bool:
        """Whether the wrapped event is terminal."""
        return self.event.is_terminal()

    def to_json(self) -> bytes:
        """Serialise in serde's form (compact JSON, declaration order)."""
        return self.__pydantic_serializer__.to_json(self)

    def to_dict(self) -> dict[str, Any]:
        """The serde form as a JSON-compatible ``dict``."""
        result: dict[str, Any] = self.__pydantic_serializer__.to_python(self, mode="json")
        return result


def parse_runtime_record(data: _Input) -> RuntimeEventEnvelope | AnyRuntimeEvent:
    """Decode one JSON object as a bare event or a :class:`RuntimeEventEnvelope` (kept as such).

    An object with more than one key that has an ``"event"`` key is taken as an envelope.
    """
    obj = load_json_object(data, "a runtime event")
    if len(obj) <= 1 or "event" not in obj:
        return _decode_event(obj)
    raw_event = obj["event"]
    if not isinstance(raw_event, dict):
        raise EventDecodeError(
            f"RuntimeEventEnvelope: event: expected a JSON object, got {type(raw_event).__name__}",
            event_type="RuntimeEventEnvelope",
            field="event",
        )
    event = _decode_event(raw_event)
    try:
        return RuntimeEventEnvelope.model_validate({**obj, "event": event})
    except ValidationError as exc:
        raise decode_error_from_validation("RuntimeEventEnvelope", exc) from None


def parse_runtime_event(data: _Input) -> AnyRuntimeEvent:
    """Decode one runtime event; a :class:`RuntimeEventEnvelope` is accepted and unwrapped."""
    record = parse_runtime_record(data)
    return record.event if isinstance(record, RuntimeEventEnvelope) else record


def dump_runtime_event(event: AnyRuntimeEvent) -> bytes:
    """Serialise an event in serde's externally tagged form (compact JSON)."""
    return event.to_json()


def dump_runtime_record(record: RuntimeEventEnvelope | AnyRuntimeEvent) -> bytes:
    """Serialise an event or an envelope in serde's form (compact JSON)."""
    return record.to_json()

"""The line protocol between the ``exec`` backend and its child process (no I/O here).

The bridge writes one JSON object per line to the child's stdin, each with an ``"op"``
(:func:`encode_op`). The child writes one JSON object per line to its stdout: agent events in the
dialect chosen with ``--dialect``, and control lines with an ``"op"`` and no ``"type"``.
:func:`parse_child_line` decodes one stdout line into a :data:`ChildLine`, or raises
:class:`LineError` for a line that is not JSON or not a known shape (the backend logs and skips it).

The request helpers turn a child's ``request`` params into what
:class:`~acp_bridge.agents.base.SessionContext` takes, and its answers back into ACP results.
``docs/agent-protocol.md`` is the user-facing specification.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

import orjson

from acp_bridge.agents.base import PermissionOption, PermissionOutcome, StopReason
from acp_bridge.events.errors import EventDecodeError
from acp_bridge.events.harn import AgentEventBase, parse_event
from acp_bridge.events.runtime import (
    AnyRuntimeEvent,
    RuntimeEventEnvelope,
    parse_runtime_event,
    parse_runtime_record,
)

__all__ = [
    "DEFAULT_PERMISSION_OPTIONS",
    "DIALECTS",
    "PROTOCOL_VERSION",
    "ChildLine",
    "Dialect",
    "ErrorLine",
    "HarnLine",
    "LineError",
    "RequestError",
    "RequestId",
    "RequestLine",
    "RuntimeLine",
    "TurnEndLine",
    "UnknownOpLine",
    "encode_op",
    "parse_child_line",
    "permission_params",
    "permission_result",
    "read_params",
    "write_params",
]

PROTOCOL_VERSION: Final = 1
"""Given to the child in ``ACP_BRIDGE_EXEC_PROTOCOL``; bumped only for incompatible changes."""

Dialect: TypeAlias = Literal["harn", "runtime"]
DIALECTS: Final[tuple[Dialect, ...]] = ("harn", "runtime")

RequestId: TypeAlias = int | str

DEFAULT_PERMISSION_OPTIONS: Final = (
    PermissionOption(option_id="allow", name="Allow", kind="allow_once"),
    PermissionOption(option_id="reject", name="Reject", kind="reject_once"),
)
"""Offered when a permission request gives no ``options``."""

_PERMISSION_KINDS: Final = frozenset({"allow_once", "allow_always", "reject_once", "reject_always"})
# A runtime variant is a Rust enum variant name; anything else single-keyed is not an event (a
# stray `{"debug": 1}` must not be forwarded to clients as an unknown runtime event).
_VARIANT: Final = re.compile(r"[A-Z][A-Za-z0-9]*\Z")


class LineError(ValueError):
    """A stdout line that is not valid JSON or not a known shape; the message says why."""


class RequestError(Exception):
    """A child's request that cannot be performed: answered with this JSON-RPC code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- child → bridge ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HarnLine:
    """A Harn event (bare, or unwrapped from a persisted envelope); it names its session."""

    event: AgentEventBase


@dataclass(frozen=True, slots=True)
class RuntimeLine:
    """A runtime-dialect event; ``session_id`` is ``None`` when bare (for the running turn)."""

    session_id: str | None
    event: AnyRuntimeEvent


@dataclass(frozen=True, slots=True)
class TurnEndLine:
    """``turn_end``: the child finished a turn.

    ``stop_reason`` is end_turn when the line gave none; ``bad_stop_reason`` holds a value that is
    not an ACP stop reason (the turn still ends, as end_turn, and the bridge logs it).
    """

    session_id: str | None
    turn_id: str | None
    stop_reason: StopReason
    bad_stop_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorLine:
    """``error``: the child failed a turn; the prompt is answered with a JSON-RPC error."""

    session_id: str | None
    turn_id: str | None
    message: str


@dataclass(frozen=True, slots=True)
class RequestLine:
    """``request``: the child asks the client something; answered with a ``response`` line."""

    id: RequestId
    method: str
    params: dict[str, Any]
    session_id: str | None


@dataclass(frozen=True, slots=True)
class UnknownOpLine:
    """A control line with an ``op`` this bridge does not know (logged and skipped)."""

    op: str


ChildLine: TypeAlias = (
    HarnLine | RuntimeLine | TurnEndLine | ErrorLine | RequestLine | UnknownOpLine
)
"""Any decoded stdout line."""


def _optional_str(obj: Mapping[str, Any], key: str, what: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise LineError(f"{what}: {key} must be a string, got {type(value).__name__}")


def _control(obj: dict[str, Any]) -> ChildLine:
    op = obj["op"]
    if not isinstance(op, str):
        raise LineError(f"op must be a string, got {type(op).__name__}")
    if op == "turn_end":
        session_id = _optional_str(obj, "session_id", op)
        turn_id = _optional_str(obj, "turn_id", op)
        raw = obj.get("stop_reason")
        if raw is None:
            return TurnEndLine(session_id, turn_id, StopReason.END_TURN)
        try:
            return TurnEndLine(session_id, turn_id, StopReason(raw))
        except ValueError:
            return TurnEndLine(session_id, turn_id, StopReason.END_TURN, bad_stop_reason=str(raw))
    if op == "error":
        message = obj.get("message")
        return ErrorLine(
            _optional_str(obj, "session_id", op),
            _optional_str(obj, "turn_id", op),
            message if isinstance(message, str) and message else "the agent reported an error",
        )
    if op == "request":
        request_id = obj.get("id")
        if isinstance(request_id, bool) or not isinstance(request_id, int | str):
            raise LineError("request: id must be a number or a string")
        method = obj.get("method")
        if not isinstance(method, str) or not method:
            raise LineError("request: method must be a non-empty string")
        params = obj.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise LineError("request: params must be an object")
        return RequestLine(request_id, method, params, _optional_str(obj, "session_id", op))
    return UnknownOpLine(op)


def _runtime_event(raw: Any) -> AnyRuntimeEvent:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise LineError('a runtime event is an object with one key: {"Variant": {...}}')
    ((variant, payload),) = raw.items()
    if not _VARIANT.match(variant) or not isinstance(payload, dict):
        raise LineError(f'{variant!r} is not a runtime event: expected {{"Variant": {{...}}}}')
    return parse_runtime_event(raw)


def _runtime(obj: dict[str, Any]) -> RuntimeLine:
    if "event" in obj and len(obj) > 1:
        if obj.keys() == {"session_id", "event"}:
            return RuntimeLine(
                _optional_str(obj, "session_id", "event"), _runtime_event(obj["event"])
            )
        _runtime_event(obj["event"])  # the same shape check as a bare event
        record = parse_runtime_record(obj)  # the runtime's own RuntimeEventEnvelope
        assert isinstance(record, RuntimeEventEnvelope)
        return RuntimeLine(record.session_id, record.event)
    return RuntimeLine(None, _runtime_event(obj))


def parse_child_line(line: bytes | str, dialect: Dialect) -> ChildLine:
    """Decode one line of the child's stdout; :class:`LineError` says why one is skipped."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise LineError(f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise LineError(f"not a JSON object (got {type(obj).__name__})")
    # Harn has an event whose type is "turn_end": control lines are told apart by having no "type".
    if "op" in obj and "type" not in obj:
        return _control(obj)
    try:
        if dialect == "harn":
            if not isinstance(obj.get("type"), str):
                raise LineError('neither a Harn event (no "type") nor a control line (no "op")')
            return HarnLine(parse_event(obj))
        return _runtime(obj)
    except EventDecodeError as exc:
        raise LineError(str(exc)) from None


# --- bridge → child ----------------------------------------------------------------------------


def encode_op(op: str, **fields: Any) -> bytes:
    """One line for the child's stdin: ``{"op": op, **fields}`` and a newline."""
    return orjson.dumps({"op": op, **fields}) + b"\n"


# --- requests ----------------------------------------------------------------------------------


def _invalid(message: str) -> RequestError:
    return RequestError(-32602, message)


def elicitation_params(
    params: Mapping[str, Any],
) -> tuple[str, dict[str, Any] | None, str | None, str | None]:
    """The ``(message, requestedSchema, url, toolCallId)`` of an ``elicitation/create`` request:
    ``mode`` ``form`` (the default; needs ``requestedSchema``) or ``url`` (needs ``url``);
    snake_case names accepted too."""
    message = params.get("message")
    mode = params.get("mode", "form")
    schema = params.get("requestedSchema", params.get("requested_schema"))
    url = params.get("url")
    tool_call_id = params.get("toolCallId", params.get("tool_call_id"))
    if not isinstance(message, str):
        raise _invalid("elicitation/create needs a message string")
    if mode == "form":
        if not isinstance(schema, dict):
            raise _invalid("a form elicitation needs a requestedSchema object")
        url = None
    elif mode == "url":
        if not isinstance(url, str) or not url:
            raise _invalid("a url elicitation needs a url")
        schema = None
    else:
        raise _invalid("elicitation mode must be 'form' or 'url'")
    if tool_call_id is not None and not isinstance(tool_call_id, str):
        raise _invalid("toolCallId must be a string")
    return message, schema, url, tool_call_id


def permission_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[PermissionOption]]:
    """The ``(tool_call, options)`` of a ``session/request_permission`` request.

    ACP's field names (``toolCall``, ``optionId``) and snake_case ones (``tool_call``,
    ``option_id``) are both accepted; without ``options`` the child gets Allow/Reject.
    """
    tool_call = params.get("toolCall", params.get("tool_call"))
    if not isinstance(tool_call, dict):
        raise _invalid("session/request_permission needs a toolCall object")
    if "toolCallId" not in tool_call and isinstance(tool_call.get("tool_call_id"), str):
        tool_call = {"toolCallId": tool_call["tool_call_id"], **tool_call}
        del tool_call["tool_call_id"]
    if not isinstance(tool_call.get("toolCallId"), str):
        raise _invalid("toolCall.toolCallId must be a string")
    raw_options = params.get("options")
    if raw_options is None:
        return tool_call, list(DEFAULT_PERMISSION_OPTIONS)
    if not isinstance(raw_options, list) or not raw_options:
        raise _invalid("options must be a non-empty list")
    options = []
    for raw in raw_options:
        if not isinstance(raw, dict):
            raise _invalid("each option must be an object")
        option_id = raw.get("optionId", raw.get("option_id"))
        name, kind = raw.get("name", option_id), raw.get("kind")
        if not isinstance(option_id, str) or not isinstance(name, str):
            raise _invalid("each option needs a string optionId (and name)")
        if kind not in _PERMISSION_KINDS:
            raise _invalid(f"option kind must be one of {', '.join(sorted(_PERMISSION_KINDS))}")
        options.append(PermissionOption(option_id=option_id, name=name, kind=kind))
    return tool_call, options


def permission_result(outcome: PermissionOutcome) -> dict[str, Any]:
    """ACP's ``RequestPermissionResponse`` for an outcome."""
    if outcome.cancelled or outcome.option_id is None:
        return {"outcome": {"outcome": "cancelled"}}
    return {"outcome": {"outcome": "selected", "optionId": outcome.option_id}}


def _optional_int(params: Mapping[str, Any], key: str) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(f"{key} must be a non-negative integer")
    return value


def read_params(params: Mapping[str, Any]) -> tuple[str, int | None, int | None]:
    """``(path, line, limit)`` of an ``fs/read_text_file`` request."""
    path = params.get("path")
    if not isinstance(path, str) or not path:
        raise _invalid("fs/read_text_file needs a path")
    return path, _optional_int(params, "line"), _optional_int(params, "limit")


def write_params(params: Mapping[str, Any]) -> tuple[str, str]:
    """``(path, content)`` of an ``fs/write_text_file`` request."""
    path, content = params.get("path"), params.get("content")
    if not isinstance(path, str) or not path or not isinstance(content, str):
        raise _invalid("fs/write_text_file needs a path and a string content")
    return path, content

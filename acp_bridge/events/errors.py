"""Decoding errors for event vocabularies."""

from __future__ import annotations

from typing import Any, TypeAlias

import orjson
from pydantic import ValidationError

__all__ = ["EventDecodeError", "JsonInput", "decode_error_from_validation", "load_json_object"]

JsonInput: TypeAlias = bytes | bytearray | memoryview | str | dict[str, Any]
"""What the decoders accept: one JSON document, or an already decoded object."""


class EventDecodeError(ValueError):
    """An input is not a valid event: not JSON, not an object, or a known type with a bad field.

    ``event_type`` and ``field`` name what was wrong when known, so a caller (the ``translate`` command,
    the ``exec`` backend) can report it precisely.
    """

    def __init__(self, message: str, *, event_type: str | None = None, field: str | None = None):
        super().__init__(message)
        self.event_type = event_type
        self.field = field


def load_json_object(data: JsonInput, what: str = "an event") -> dict[str, Any]:
    """Decode ``data`` into a JSON object, or raise :class:`EventDecodeError` saying why not."""
    if isinstance(data, dict):
        return data
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise EventDecodeError(f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj


def decode_error_from_validation(event_type: str, exc: ValidationError) -> EventDecodeError:
    """Turn a pydantic ``ValidationError`` into an :class:`EventDecodeError` naming type and field."""
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )
    return EventDecodeError(f"{event_type}: {problems}", event_type=event_type, field=field)

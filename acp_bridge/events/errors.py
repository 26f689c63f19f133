"""Decoding errors for event vocabularies."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["EventDecodeError", "decode_error_from_validation"]


class EventDecodeError(ValueError):
    """An input is not a valid event: not JSON, not an object, or a known type with a bad field.

    ``event_type`` and ``field`` name what was wrong when known, so a caller (the ``translate`` command,
    the ``exec`` backend) can report it precisely.
    """

    def __init__(self, message: str, *, event_type: str | None = None, field: str | None = None):
        super().__init__(message)
        self.event_type = event_type
        self.field = field


def decode_error_from_validation(event_type: str, exc: ValidationError) -> EventDecodeError:
    """Turn a pydantic ``ValidationError`` into an :class:`EventDecodeError` naming type and field."""
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )
    return EventDecodeError(f"{event_type}: {problems}", event_type=event_type, field=field)

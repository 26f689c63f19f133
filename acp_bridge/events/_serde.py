"""Building blocks that make pydantic write exactly what Rust's serde writes.

Harn's events are Rust structs serialised by serde. Three things matter on the wire and are easy to get
subtly wrong in Python, so they live here, once:

* **scalar strictness**: serde does not coerce (`"5"` is not a `usize`, `1.0` is not a `u64`, `true` is
  not an integer), so fields use pydantic's strict scalars; an `f64` still accepts a JSON integer;
* **absent vs `null`**: a field without `skip_serializing_if` is always written (`null` for `None`); a
  field with one is omitted exactly when the predicate holds. `skip_if_none()` and friends attach the
  predicate through pydantic's `exclude_if`, which runs inside the Rust serializer's field loop;
* **input defaults**: `Option<T>` and `#[serde(default)]` fields may be missing on input; any other field
  is required.

Field declaration order is serialisation order, as with serde, so `model_dump_json()` of a decoded
Harn line reproduces the line byte for byte.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

__all__ = [
    "F64",
    "I64",
    "U32",
    "U64",
    "Bool",
    "Json",
    "SerdeModel",
    "Str",
    "skip_if_empty",
    "skip_if_false",
    "skip_if_none",
    "skip_if_null",
    "skip_if_zero",
]

Str = StrictStr
"""Rust `String`."""
U64 = Annotated[StrictInt, Field(ge=0, le=2**64 - 1)]
"""Rust `u64` / `usize`."""
U32 = Annotated[StrictInt, Field(ge=0, le=2**32 - 1)]
"""Rust `u32`."""
I64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
"""Rust `i64`."""
F64 = StrictFloat
"""Rust `f64` (a JSON integer is accepted, as serde_json does)."""
Bool = StrictBool
"""Rust `bool`."""
Json = Any
"""`serde_json::Value`: opaque JSON, passed through untouched."""


class SerdeModel(BaseModel):
    """Base of every model that mirrors a serde struct.

    Unknown fields are kept (``extra="allow"``) and written back after the known ones, so an event
    from a newer runtime survives a trip through an older bridge; instances are immutable because one
    event object is handed to many sinks.
    """

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    def to_json(self) -> bytes:
        """Serialise in serde form: compact JSON, fields in declaration order."""
        return self.__pydantic_serializer__.to_json(self)

    def to_dict(self) -> dict[str, Any]:
        """The serde form as a JSON-compatible ``dict``."""
        result: dict[str, Any] = self.__pydantic_serializer__.to_python(self, mode="json")
        return result


def _is_none(value: object) -> bool:
    return value is None


def _is_empty(value: object) -> bool:
    return not value


def _is_zero(value: object) -> bool:
    return value == 0


def _is_false(value: object) -> bool:
    return value is False


def skip_if_none() -> Any:
    """`#[serde(default, skip_serializing_if = "Option::is_none")]`."""
    return Field(default=None, exclude_if=_is_none)


def skip_if_null() -> Any:
    """`#[serde(default, skip_serializing_if = "serde_json::Value::is_null")]`."""
    return Field(default=None, exclude_if=_is_none)


def skip_if_empty(default_factory: Any = str) -> Any:
    """`#[serde(default, skip_serializing_if = "String::is_empty" | "Vec::is_empty")]`."""
    return Field(default_factory=default_factory, exclude_if=_is_empty)


def skip_if_zero() -> Any:
    """`#[serde(default, skip_serializing_if = "is_zero_usize")]`."""
    return Field(default=0, exclude_if=_is_zero)


def skip_if_false() -> Any:
    """`#[serde(default, skip_serializing_if = "std::ops::Not::not")]`."""
    return Field(default=False, exclude_if=_is_false)

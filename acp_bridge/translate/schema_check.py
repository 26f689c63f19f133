"""A small, pure JSON Schema checker for the vendored ACP schema (``acp_bridge.schema``).

The bridge passes on messages it did not build (a proxied agent's ``session/update``); before one
reaches a strict client it must be valid for the schema. ``jsonschema`` is a test dependency only,
and the ACP schema uses a handful of keywords, so this evaluates those: ``$ref`` (local), ``type``,
``const``, ``enum``, ``required``, ``properties``, ``additionalProperties``, ``items``, ``allOf``,
``anyOf``, ``oneOf``, ``not``, ``minimum``, ``maximum``. Annotations (``description``, ``format``,
``discriminator``, ``x-…``) are ignored, and so is ``unevaluatedProperties`` (extra members are
what ``_meta`` and forward compatibility allow anyway). The tests check that it agrees with
``jsonschema`` on valid and broken updates. No I/O beyond reading the packaged schema once.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Final

from acp_bridge.schema import load_schema

__all__ = ["schema_problem", "session_update_problem"]

_CONST: Final = "expected the constant"
_TYPES: Final[dict[str, Any]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


@cache
def _defs() -> Mapping[str, Any]:
    defs: Mapping[str, Any] = load_schema()["$defs"]
    return defs


def _resolve(ref: str) -> Any:
    prefix = "#/$defs/"
    if not ref.startswith(prefix):
        raise ValueError(f"unsupported $ref {ref!r}")
    return _defs()[ref[len(prefix) :]]


def _check(value: Any, schema: Any, path: str) -> str | None:
    """The first problem of ``value`` against ``schema``, or ``None``."""
    if schema is True or not isinstance(schema, dict):
        return None
    if schema is False:  # pragma: no cover - not used by the ACP schema
        return f"{path}: not allowed"
    ref = schema.get("$ref")
    if isinstance(ref, str):
        problem = _check(value, _resolve(ref), path)
        if problem is not None:
            return problem
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_TYPES[k](value) for k in kinds if k in _TYPES):
            return f"{path}: expected {'/'.join(kinds)}"
    if "const" in schema and value != schema["const"]:
        return f"{path}: {_CONST} {schema['const']!r}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: {value!r} is not one of {schema['enum']}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{path}: below {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{path}: above {schema['maximum']}"
    if isinstance(value, dict):
        problem = _check_object(value, schema, path)
        if problem is not None:
            return problem
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problem = _check(item, schema["items"], f"{path}[{index}]")
            if problem is not None:
                return problem
    for sub in schema.get("allOf", ()):
        problem = _check(value, sub, path)
        if problem is not None:
            return problem
    if "anyOf" in schema:
        problems = [_check(value, sub, path) for sub in schema["anyOf"]]
        if all(p is not None for p in problems):
            return _branch_problem(path, problems)
    if "oneOf" in schema:
        problems = [_check(value, sub, path) for sub in schema["oneOf"]]
        matched = sum(1 for p in problems if p is None)
        if matched == 0:
            return _branch_problem(path, problems)
        if matched > 1:
            return f"{path}: matches {matched} alternatives, expected exactly one"
    if "not" in schema and _check(value, schema["not"], path) is None:
        return f"{path}: matches a forbidden shape"
    return None


def _check_object(value: dict[str, Any], schema: dict[str, Any], path: str) -> str | None:
    for name in schema.get("required", ()):
        if name not in value:
            return f"{path}: missing {name!r}"
    properties = schema.get("properties", {})
    for name, sub in properties.items():
        if name in value:
            problem = _check(value[name], sub, f"{path}.{name}")
            if problem is not None:
                return problem
    extra = schema.get("additionalProperties")
    if extra is not None and extra is not True:
        for name, item in value.items():
            if name in properties:
                continue
            if extra is False:
                return f"{path}: unexpected member {name!r}"
            problem = _check(item, extra, f"{path}.{name}")
            if problem is not None:
                return problem
    return None


def _branch_problem(path: str, problems: list[str | None]) -> str:
    # A branch whose tag (a constant) did not match is not the one the value meant to be; of the
    # others, the deepest problem usually names the real mistake.
    found = [p for p in problems if p is not None]
    meant = [p for p in found if _CONST not in p] or found
    best = max(meant, key=lambda p: p.count(".") + p.count("["))
    return best if best.startswith(path) and best != path else f"{path}: matches no alternative"


def schema_problem(value: Any, definition: str) -> str | None:
    """Why ``value`` is not a valid ``$defs/<definition>`` of the ACP schema, or ``None`` if it is."""
    return _check(value, _defs()[definition], "$")


def session_update_problem(update: Any) -> str | None:
    """Why ``update`` is not a valid ACP ``SessionUpdate`` (the ``update`` of ``session/update``)."""
    return _check(update, _defs()["SessionUpdate"], "update")

"""Hypothesis strategies for canonical Harn event JSON, built from the hand-written spec table."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from .harn_spec import ENUMS, HELPER_SPEC, SPEC

U64_MAX = 2**64 - 1
I64 = (-(2**63), 2**63 - 1)

text = st.text(max_size=12)
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=10)
u64 = st.one_of(st.integers(0, 1000), st.integers(0, U64_MAX))
i64 = st.integers(*I64)
f64 = st.floats(allow_nan=False, allow_infinity=False, width=64)

json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), f64, text)
json_value: st.SearchStrategy[Any] = st.recursive(
    json_scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(text, children, max_size=3)
    ),
    max_leaves=8,
)
json_object = st.dictionaries(text, json_value, max_size=3)

executor = st.one_of(
    st.sampled_from(
        [{"kind": "harn_builtin"}, {"kind": "host_bridge"}, {"kind": "provider_native"}]
    ),
    st.builds(lambda name: {"kind": "mcp_server", "server_name": name}, ids),
)


def _record(name: str) -> st.SearchStrategy[dict[str, Any]]:
    return fields_strategy(HELPER_SPEC[name])


_BASE: dict[str, st.SearchStrategy[Any]] = {
    "str": text,
    "u64": u64,
    "u32": st.integers(0, 2**32 - 1),
    "i64": i64,
    "f64": f64,
    "bool": st.booleans(),
    "json": json_value,
    "json_object": json_object,
    "json_str_map": st.dictionaries(text, text, max_size=3),
    "json_capabilities": st.dictionaries(text, st.lists(text, max_size=2), max_size=2),
    "executor": executor,
}


def value_strategy(spec: str) -> st.SearchStrategy[Any]:
    """A strategy for one field type of the spec table."""
    if spec in _BASE:
        return _BASE[spec]
    if spec in ENUMS:
        return st.sampled_from(ENUMS[spec])
    if spec.startswith("list[") and spec.endswith("]"):
        return st.lists(value_strategy(spec[5:-1]), max_size=3)
    if spec in HELPER_SPEC:
        return st.deferred(lambda: _record(spec))
    raise KeyError(spec)


_ABSENT = object()


def _field(spec: str) -> st.SearchStrategy[Any]:
    mode, _, inner = spec.partition(":")
    if not inner:
        return value_strategy(spec)
    if mode == "opt":
        return st.one_of(st.none(), value_strategy(inner))
    if mode == "skip":
        # serde reads a JSON null as None for Option<Value>, so null never survives a skipped field.
        return st.one_of(st.just(_ABSENT), value_strategy(inner).filter(lambda v: v is not None))
    if mode == "skipnull":
        return st.one_of(st.just(_ABSENT), value_strategy(inner).filter(lambda v: v is not None))
    if mode == "skipempty":
        return st.one_of(st.just(_ABSENT), value_strategy(inner).filter(bool))
    if mode == "skipzero":
        return st.one_of(st.just(_ABSENT), value_strategy(inner).filter(lambda v: v != 0))
    if mode == "skipfalse":
        return st.sampled_from([_ABSENT, True])
    raise KeyError(spec)


def fields_strategy(fields: list[tuple[str, str]]) -> st.SearchStrategy[dict[str, Any]]:
    """A canonical object (declaration order, skipped fields absent) for a list of field specs."""
    names = [name for name, _ in fields]
    values = st.tuples(*(_field(spec) for _, spec in fields))
    return values.map(
        lambda vals: {n: v for n, v in zip(names, vals, strict=True) if v is not _ABSENT}
    )


def event_strategy(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    """Canonical Harn JSON for one event type."""
    return st.tuples(ids, fields_strategy(SPEC[event_type])).map(
        lambda pair: {"type": event_type, "session_id": pair[0], **pair[1]}
    )


any_event = st.sampled_from(sorted(SPEC)).flatmap(event_strategy)
"""Canonical Harn JSON for any of the 63 known event types."""

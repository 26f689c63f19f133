"""Why a wire message would be refused by a strict ACP v1 client, if it would.

Each method is checked against its own params definition of the vendored schema (found through the
``x-method``/``x-side`` annotations): the schema's root accepts any params through its catch-all
extension branch, so a whole-message check could not fail. ``_``-prefixed methods are free-form.
:class:`WireRules` adds the ordering rules a log can show: ``tool_call`` before any update of its id.
"""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]
from referencing import Registry, Resource

from acp_bridge.schema import load_schema

__all__ = ["StrictChecker", "WireRules"]


class StrictChecker:
    """Validates messages per method against the ACP v1 schema (built once; a few hundred ms)."""

    def __init__(self) -> None:
        schema = load_schema()
        self._registry: Registry[Any] = Registry().with_resource(
            "urn:acp", Resource.from_contents(schema)
        )
        self._definitions: dict[tuple[str, str, bool], str] = {}
        """(side handling it, method, is a request) → params definition."""
        for name, definition in schema["$defs"].items():
            method, side = definition.get("x-method"), definition.get("x-side")
            if method is None or name.endswith("Response"):
                continue
            self._definitions[side, method, name.endswith("Request")] = name
        self._validators: dict[str, Any] = {}

    def problem(self, message: Any, *, inbound: bool, request: bool | None = None) -> str | None:
        """The reason ``message`` is not valid ACP v1, or ``None``.

        ``inbound``: sent by the client (checked as a method the agent handles), else by the agent.
        ``request``: checked as a request (default: whether it has an ``id``).
        """
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return "not a JSON-RPC 2.0 object"
        method = message.get("method")
        if not isinstance(method, str):
            return None  # responses are not in the log
        params = message.get("params")
        if method.startswith("_"):
            return None if isinstance(params, dict) else "extension params must be an object"
        side = "agent" if inbound else "client"
        name = self._definitions.get(
            (side, method, "id" in message if request is None else request)
        )
        if name is None:
            return f"{method} is not a method the {side} handles in ACP v1"
        errors = sorted(self._validator(name).iter_errors(params), key=lambda e: list(e.path))
        if not errors:
            return None
        first = errors[0]
        where = "/".join(str(part) for part in first.path) or "params"
        return f"{name} at {where}: {first.message[:200]}"

    def _validator(self, name: str) -> Any:
        validator = self._validators.get(name)
        if validator is None:
            validator = jsonschema.Draft202012Validator(
                {"$ref": f"urn:acp#/$defs/{name}"}, registry=self._registry
            )
            self._validators[name] = validator
        return validator


class WireRules:
    """The protocol's ordering rules, followed through one session's messages in order."""

    def __init__(self) -> None:
        self._tool_calls: set[str] = set()

    def problem(self, message: Any) -> str | None:
        """The rule ``message`` breaks given the messages seen before it, or ``None``."""
        params = message.get("params") if isinstance(message, dict) else None
        update = params.get("update") if isinstance(params, dict) else None
        if not isinstance(update, dict):
            return None
        kind, tool_call_id = update.get("sessionUpdate"), update.get("toolCallId")
        if not isinstance(tool_call_id, str):
            return None
        if kind == "tool_call":
            if tool_call_id in self._tool_calls:
                return f"tool call {tool_call_id} announced twice"
            self._tool_calls.add(tool_call_id)
        elif kind == "tool_call_update" and tool_call_id not in self._tool_calls:
            # Clients drop updates of an unknown id; the bridge sends this one as the tool_call.
            self._tool_calls.add(tool_call_id)
            return f"tool_call_update before the tool_call of {tool_call_id}"
        return None

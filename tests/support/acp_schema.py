"""Per-method validation of agent-side ACP messages against the official v1 schema.

The schema's root accepts any ``params`` through its catch-all ``ExtNotification`` branch, so a
whole-message check would pass a bogus ``session/update``. Instead each method is mapped to its params or
result definition through the ``x-method``/``x-side`` annotations of ``$defs`` and validated against that
definition alone. On top of the schema (which leaves ``additionalProperties`` open) a closed-world check
rejects custom fields at the root of spec types, which ACP forbids: the message is round-tripped through
the official SDK's pydantic models, which drop unknown fields, and any key that disappears (outside
``_meta`` and opaque values) is reported.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from acp import schema as sdk
from pydantic import BaseModel
from referencing import Registry, Resource

from acp_bridge.schema import load_schema

__all__ = ["AcpSchema", "SchemaViolation", "acp_schema"]


class SchemaViolation(AssertionError):
    """A message the bridge emitted is not valid ACP v1."""


# The SDK model for each params/result definition we want the closed-world check on.
_SDK_MODELS: dict[str, type[BaseModel]] = {
    "SessionNotification": sdk.SessionNotification,
    "RequestPermissionRequest": sdk.RequestPermissionRequest,
    "InitializeResponse": sdk.InitializeResponse,
    "NewSessionResponse": sdk.NewSessionResponse,
    "LoadSessionResponse": sdk.LoadSessionResponse,
    "ResumeSessionResponse": sdk.ResumeSessionResponse,
    "ListSessionsResponse": sdk.ListSessionsResponse,
    "PromptResponse": sdk.PromptResponse,
    "ReadTextFileRequest": sdk.ReadTextFileRequest,
    "WriteTextFileRequest": sdk.WriteTextFileRequest,
}

# Values whose content is free-form JSON in the schema.
_OPAQUE_KEYS = frozenset({"_meta", "rawInput", "rawOutput"})


def _missing_keys(original: Any, dumped: Any, path: str = "") -> list[str]:
    missing: list[str] = []
    if isinstance(original, dict) and isinstance(dumped, dict):
        for key, value in original.items():
            where = f"{path}.{key}" if path else key
            if key not in dumped:
                missing.append(where)
            elif key not in _OPAQUE_KEYS:
                missing.extend(_missing_keys(value, dumped[key], where))
    elif isinstance(original, list) and isinstance(dumped, list):
        for i, (a, b) in enumerate(zip(original, dumped, strict=False)):
            missing.extend(_missing_keys(a, b, f"{path}[{i}]"))
    return missing


class AcpSchema:
    """Validators for every agent-side method, built once from the vendored schema."""

    def __init__(self) -> None:
        schema = load_schema()
        self.defs: dict[str, Any] = schema["$defs"]
        resource = Resource.from_contents(schema)
        self._registry = Registry().with_resource("urn:acp", resource)
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        # (side, method) -> definition name; side "agent" = handled by the agent.
        self.requests: dict[tuple[str, str], str] = {}
        self.responses: dict[tuple[str, str], str] = {}
        self.notifications: dict[tuple[str, str], str] = {}
        for name, definition in self.defs.items():
            method = definition.get("x-method")
            side = definition.get("x-side")
            if method is None:
                continue
            if name.endswith("Request"):
                self.requests[side, method] = name
            elif name.endswith("Response"):
                self.responses[side, method] = name
            elif name.endswith("Notification"):
                self.notifications[side, method] = name

    def validator(self, definition: str) -> jsonschema.protocols.Validator:
        """A Draft 2020-12 validator for one ``$defs`` entry."""
        if definition not in self._validators:
            cls = jsonschema.Draft202012Validator
            self._validators[definition] = cls(
                {"$ref": f"urn:acp#/$defs/{definition}"}, registry=self._registry
            )
        return self._validators[definition]

    def check(self, definition: str, value: Any) -> None:
        """Validate ``value`` against a definition, plus the closed-world check where we can."""
        errors = sorted(self.validator(definition).iter_errors(value), key=lambda e: list(e.path))
        if errors:
            detail = "; ".join(f"{list(e.path)}: {e.message[:300]}" for e in errors[:3])
            raise SchemaViolation(f"{definition}: {detail}")
        model = _SDK_MODELS.get(definition)
        if model is not None:
            dumped = model.model_validate(value).model_dump(
                mode="json", by_alias=True, exclude_unset=True
            )
            missing = _missing_keys(value, dumped)
            if missing:
                raise SchemaViolation(f"{definition}: custom fields not in ACP v1: {missing}")

    def check_agent_message(self, message: Any, *, request_method: str | None = None) -> None:
        """Validate one message the agent sent.

        ``request_method`` is the method of the client request a response answers (needed to pick the
        result definition).
        """
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise SchemaViolation(f"not a JSON-RPC 2.0 object: {message!r:.200}")
        method = message.get("method")
        if method is None:
            self._check_response(message, request_method)
            return
        if not isinstance(method, str):
            raise SchemaViolation(f"method must be a string: {message!r:.200}")
        params = message.get("params")
        is_request = "id" in message
        if method.startswith("_"):
            if not isinstance(params, dict):
                raise SchemaViolation(f"extension {method} params must be an object")
            return
        if method == "$/cancel_request":
            self.check("CancelRequestNotification", params)
            return
        table = self.requests if is_request else self.notifications
        definition = table.get(("client", method))
        if definition is None:
            raise SchemaViolation(f"agent sent a method the client does not handle: {method}")
        self.check(definition, params)

    def _check_response(self, message: dict[str, Any], request_method: str | None) -> None:
        if "id" not in message:
            raise SchemaViolation(f"response without id: {message!r:.200}")
        has_result, has_error = "result" in message, "error" in message
        if has_result == has_error:
            raise SchemaViolation(f"response needs exactly one of result/error: {message!r:.200}")
        if has_error:
            error = message["error"]
            if not (
                isinstance(error, dict)
                and isinstance(error.get("code"), int)
                and isinstance(error.get("message"), str)
            ):
                raise SchemaViolation(f"malformed error object: {error!r:.200}")
            return
        if request_method is None or request_method.startswith("_"):
            return
        definition = self.responses.get(("agent", request_method))
        if definition is None:
            raise SchemaViolation(
                f"a result for a method the agent does not handle: {request_method}"
            )
        self.check(definition, message["result"])


_SCHEMA: AcpSchema | None = None


def acp_schema() -> AcpSchema:
    """The shared validator (built on first use; building it costs a few hundred ms)."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = AcpSchema()
    return _SCHEMA

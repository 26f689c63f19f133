"""Keep secrets out of what the inspector shows: values under names that usually hold one are masked."""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["REDACTED", "redact"]

REDACTED: Final = "«redacted»"

# Matched against whole keys, case-insensitively: "env" masks an MCP server's environment,
# "headers" its HTTP headers; "token" alone (not "tokens", "input_tokens") masks a credential.
_SECRET_KEY: Final = re.compile(
    r"(?i)^(?:.*(?:secret|password|passwd|api[_-]?key|authorization|cookie|credential).*"
    r"|env|headers|token|access[_-]?token|refresh[_-]?token|bearer)$"
)


def redact(value: Any) -> Any:
    """A copy of ``value`` with the values of secret-looking keys replaced by :data:`REDACTED`."""
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and _SECRET_KEY.match(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value

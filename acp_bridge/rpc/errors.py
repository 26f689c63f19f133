"""JSON-RPC errors as named values, mapped to wire codes in one place.

Handlers raise these; the peer turns them into ``{"code", "message", "data"}``. Any other exception is an
internal error: logged with its traceback, sent as ``-32603`` with a one-line detail in ``data``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthRequired",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "MethodNotFound",
    "ParseError",
    "RequestCancelled",
    "RequestTimeout",
    "ResourceNotFound",
    "RpcError",
    "error_from_wire",
]


class RpcError(Exception):
    """A JSON-RPC error; subclasses fix the ``code`` and a default message."""

    code: ClassVar[int] = -32603
    default_message: ClassVar[str] = "Internal error"

    def __init__(self, message: str | None = None, data: Any = None, *, code: int | None = None):
        self.message = message or self.default_message
        self.data = data
        if code is not None:
            self.code = code  # type: ignore[misc]
        super().__init__(self.message)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` object."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ParseError(RpcError):
    """-32700: the message is not valid JSON."""

    code = -32700
    default_message = "Parse error"


class InvalidRequest(RpcError):
    """-32600: not a valid JSON-RPC 2.0 request (this includes batches, which ACP v1 does not have)."""

    code = -32600
    default_message = "Invalid request"


class MethodNotFound(RpcError):
    """-32601: the method does not exist or is not offered on this connection."""

    code = -32601
    default_message = "Method not found"


class InvalidParams(RpcError):
    """-32602: the params do not fit the method."""

    code = -32602
    default_message = "Invalid params"


class InternalError(RpcError):
    """-32603: the handler failed; details stay in the log."""

    code = -32603
    default_message = "Internal error"


class RequestCancelled(RpcError):
    """-32800: the request was cancelled (``$/cancel_request``, a timeout, or shutdown)."""

    code = -32800
    default_message = "Request cancelled"


class AuthRequired(RpcError):
    """-32000: authentication is required."""

    code = -32000
    default_message = "Authentication required"


class ResourceNotFound(RpcError):
    """-32002: a resource (file, session) does not exist."""

    code = -32002
    default_message = "Resource not found"


class RequestTimeout(RequestCancelled):
    """An outbound request got no response in time (it is cancelled with ``$/cancel_request``)."""

    default_message = "Request timed out"


_BY_CODE: dict[int, type[RpcError]] = {
    cls.code: cls
    for cls in (
        ParseError,
        InvalidRequest,
        MethodNotFound,
        InvalidParams,
        InternalError,
        RequestCancelled,
        AuthRequired,
        ResourceNotFound,
    )
}


def error_from_wire(error: Any) -> RpcError:
    """The named error for a received JSON-RPC ``error`` object (``RpcError`` for other codes)."""
    if not isinstance(error, dict):
        return InternalError("malformed error response", data=error)
    code = error.get("code")
    message = error.get("message")
    cls = _BY_CODE.get(code, RpcError) if isinstance(code, int) else RpcError
    result = cls(str(message) if message is not None else None, error.get("data"))
    if cls is RpcError and isinstance(code, int):
        result.code = code  # type: ignore[misc]
    return result

"""JSON-RPC 2.0 with a stdio ACP agent: the bridge is its client, one message per stdout/stdin line.

The ``agents`` layer may not use :mod:`acp_bridge.rpc` (backends know nothing of JSON-RPC peers
that serve connections), and a child needs less: requests out with correlation, the child's requests
and notifications in, every pending request failed at once when the child goes. The child process
itself (start, stdout lines with a size limit, stderr to the log, exit) is :mod:`..exec.child`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from acp_bridge.agents.base import BackendError
from acp_bridge.agents.exec.child import Child

__all__ = ["AgentLink", "AgentRpcError", "Incoming", "OnResult", "decode_line"]

JSONRPC: Final = "2.0"

OnResult = Callable[[Any], None]
"""Called with a request's result the moment its response is read (may raise BackendError)."""


class AgentRpcError(BackendError):
    """The agent answered a request with a JSON-RPC error; its code is passed on to the client."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.method = method
        self.rpc_code = code
        self.data = data


@dataclass(frozen=True, slots=True)
class Incoming:
    """A decoded line: a request (``id`` set) or notification from the agent, or a response."""

    kind: str  # "request" | "notification" | "response" | "invalid"
    message: dict[str, Any] = field(default_factory=dict)
    problem: str = ""


def _valid_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


def decode_line(line: bytes) -> Incoming:
    """Classify one stdout line (pure): which JSON-RPC message it is, or why it is none."""
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return Incoming("invalid", problem=f"not JSON ({exc})")
    if not isinstance(message, dict):
        return Incoming("invalid", problem="not a JSON object (batches are not used by ACP)")
    if message.get("jsonrpc") != JSONRPC:
        return Incoming("invalid", message, 'no "jsonrpc": "2.0"')
    method = message.get("method")
    if method is not None:
        if not isinstance(method, str):
            return Incoming("invalid", message, "method is not a string")
        params = message.get("params", {})
        if params is not None and not isinstance(params, dict):
            return Incoming("invalid", message, "params is not an object")
        if "id" in message:
            if not _valid_id(message["id"]):
                return Incoming("invalid", message, "bad request id")
            return Incoming("request", message)
        return Incoming("notification", message)
    if "id" in message and ("result" in message or "error" in message):
        return Incoming("response", message)
    return Incoming("invalid", message, "neither a request, a notification nor a response")


class AgentLink:
    """Outbound requests to one child, correlated by id; fails them all when the child is gone."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[Any], OnResult | None]] = {}
        self.closed_reason: str | None = None

    def _encode(self, message: dict[str, Any]) -> bytes:
        return orjson.dumps(message) + b"\n"

    def notify(self, method: str, params: dict[str, Any]) -> bool:
        """Write a notification now (no waiting for room in the pipe); False if the child is gone."""
        return self.child.write(
            self._encode({"jsonrpc": JSONRPC, "method": method, "params": params})
        )

    def respond(self, request_id: Any, answer: dict[str, Any]) -> bool:
        """Answer one of the child's requests with ``{"result": …}`` or ``{"error": …}``."""
        return self.child.write(self._encode({"jsonrpc": JSONRPC, "id": request_id, **answer}))

    def start_request(
        self, method: str, params: dict[str, Any], on_result: OnResult | None = None
    ) -> asyncio.Future[Any]:
        """Send a request; the future resolves with its result, or fails with a
        :class:`BackendError` (an :class:`AgentRpcError` for the agent's own error).

        ``on_result`` is called with the result as soon as the response line is read, before the
        next line is: what the agent writes right after it (a ``session/update`` for the session a
        ``session/new`` just created) already finds what the callback set up.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.closed_reason is not None:
            future.set_exception(BackendError(self.closed_reason))
            return future
        request_id = next(self._ids)
        self._pending[request_id] = (method, future, on_result)
        message = {"jsonrpc": JSONRPC, "id": request_id, "method": method, "params": params}
        if not self.child.write(self._encode(message)):
            del self._pending[request_id]
            future.set_exception(BackendError("the agent process is not running"))
        return future

    async def request(
        self,
        method: str,
        params: dict[str, Any],
        timeout: float,  # noqa: ASYNC109 - every wait on the child is bounded
        on_result: OnResult | None = None,
    ) -> Any:
        """Send a request and wait at most ``timeout`` seconds for its result."""
        future = self.start_request(method, params, on_result)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            future.cancel()
            raise BackendError(
                f"the agent did not answer {method} within {timeout:.0f} s"
            ) from None

    def response(self, message: dict[str, Any]) -> bool:
        """A response line: resolve its request. False for an id nobody waits for."""
        request_id = message.get("id")
        entry = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if entry is None:
            return False
        method, future, on_result = entry
        if future.done():
            return True
        error = message.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            text = error.get("message") if isinstance(error, dict) else None
            future.set_exception(
                AgentRpcError(
                    method,
                    code if isinstance(code, int) and not isinstance(code, bool) else -32603,
                    text if isinstance(text, str) else f"{method} failed",
                    error.get("data") if isinstance(error, dict) else None,
                )
            )
        else:
            result = message.get("result")
            if on_result is not None:
                try:
                    on_result(result)
                except BackendError as exc:
                    future.set_exception(exc)
                    return True
            future.set_result(result)
        return True

    def close(self, reason: str) -> None:
        """The child is gone: every pending request fails with ``reason``."""
        self.closed_reason = reason
        pending, self._pending = self._pending, {}
        for _, future, _ in pending.values():
            if not future.done():
                future.set_exception(BackendError(reason))
                future.exception()  # retrieved: a request nobody awaits any more is no error

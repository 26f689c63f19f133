"""A raw ACP client for tests: sees the exact wire, validates what the agent sends, answers its requests.

It runs over any :class:`~acp_bridge.rpc.transport.Transport` (in-memory pairs, WebSockets). Every
message the agent sends is recorded in ``received`` (in order) and, in strict mode, validated per method
against the official schema — so any test that drives the bridge through this client also checks the
bridge's output.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from acp_bridge.rpc.transport import Transport

from .acp_schema import acp_schema

TIMEOUT = 10.0
FS_CAPABILITIES: dict[str, Any] = {"fs": {"readTextFile": True, "writeTextFile": True}}


def declaring(*extensions: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Client capabilities (fs on, unless ``base``) that declare the given extension methods."""
    caps = dict(FS_CAPABILITIES if base is None else base)
    caps["_meta"] = {"acp_bridge": {"extensions": list(extensions)}}
    return caps


class ResponseError(Exception):
    """The agent answered a request with a JSON-RPC error."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = error.get("message")
        self.data = error.get("data")


@dataclass
class ClientScript:
    """How the client answers the agent's requests."""

    permission: str | None = (
        "allow"  # option id to select; None = answer cancelled; "hold" = never answer
    )
    files: dict[str, str] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)
    elicitation: Any = None
    """The result to answer ``elicitation/create`` with; None = -32601; "hold" = never answer."""


class RawAcpClient:
    """See the module docstring."""

    def __init__(
        self,
        transport: Transport,
        *,
        validate: bool = True,
        script: ClientScript | None = None,
    ) -> None:
        self.transport = transport
        self.validate = validate
        self.script = script or ClientScript()
        self.received: list[dict[str, Any]] = []
        self.sent_methods: dict[Any, str] = {}
        self.held_requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._pending: dict[Any, asyncio.Future[Any]] = {}
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    async def __aenter__(self) -> RawAcpClient:
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.transport.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    # --- reading -------------------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:
                message = await self.transport.receive()
                if message is None:
                    break
                assert isinstance(message, dict), f"agent sent a non-object: {message!r}"
                self.received.append(message)
                self._check(message)
                if "method" not in message:
                    future = self._pending.pop(message.get("id"), None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif "id" in message:
                    await self._answer(message)
                async with self._changed:
                    self._changed.notify_all()
        finally:
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))
            async with self._changed:
                self._changed.notify_all()

    def _check(self, message: dict[str, Any]) -> None:
        if not self.validate:
            return
        method = self.sent_methods.get(message.get("id")) if "method" not in message else None
        acp_schema().check_agent_message(message, request_method=method)

    async def _answer(self, request: dict[str, Any]) -> None:
        method, params, rid = request["method"], request.get("params") or {}, request["id"]
        if method == "session/request_permission":
            choice = self.script.permission
            if choice == "hold":
                self.held_requests.append(request)
                return
            outcome = (
                {"outcome": "cancelled"}
                if choice is None
                else {"outcome": "selected", "optionId": choice}
            )
            await self.respond(rid, {"outcome": outcome})
        elif method == "fs/read_text_file":
            path = params.get("path")
            if path in self.script.files:
                await self.respond(rid, {"content": self.script.files[path]})
            else:
                await self.respond_error(rid, -32002, "Resource not found", {"uri": path})
        elif method == "elicitation/create" and self.script.elicitation is not None:
            if self.script.elicitation == "hold":
                self.held_requests.append(request)
                return
            await self.respond(rid, self.script.elicitation)
        elif method == "fs/write_text_file":
            self.script.written[params["path"]] = params["content"]
            await self.respond(rid, None)
        else:
            await self.respond_error(rid, -32601, "Method not found")

    async def respond(self, request_id: Any, result: Any) -> None:
        """Answer one of the agent's requests."""
        await self.transport.send({"jsonrpc": "2.0", "id": request_id, "result": result})

    async def respond_error(
        self, request_id: Any, code: int, message: str, data: Any = None
    ) -> None:
        """Answer one of the agent's requests with an error."""
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        await self.transport.send({"jsonrpc": "2.0", "id": request_id, "error": error})

    # --- writing -------------------------------------------------------------------------------------

    async def send(self, message: Any) -> None:
        """Send any message as is."""
        if isinstance(message, dict) and "id" in message and "method" in message:
            self.sent_methods[message["id"]] = message["method"]
        await self.transport.send(message)

    async def request(
        self, method: str, params: Any = None, *, request_id: Any = None
    ) -> dict[str, Any]:
        """Send a request and return the whole response message."""
        rid = next(self._ids) if request_id is None else request_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        async with asyncio.timeout(TIMEOUT):
            response: dict[str, Any] = await future
        return response

    async def call(self, method: str, params: Any = None) -> Any:
        """Send a request and return its result (raising :class:`ResponseError` on an error)."""
        response = await self.request(method, params)
        if "error" in response:
            raise ResponseError(response["error"])
        return response["result"]

    async def notify(self, method: str, params: Any) -> None:
        """Send a notification."""
        await self.send({"jsonrpc": "2.0", "method": method, "params": params})

    # --- conveniences --------------------------------------------------------------------------------

    async def initialize(self, capabilities: dict[str, Any] | None = None, version: int = 1) -> Any:
        """``initialize`` with fs capabilities on by default."""
        caps = capabilities if capabilities is not None else FS_CAPABILITIES
        return await self.call(
            "initialize",
            {
                "protocolVersion": version,
                "clientCapabilities": caps,
                "clientInfo": {"name": "raw-test", "version": "1"},
            },
        )

    async def new_session(self, cwd: str = "/tmp/project") -> str:
        """``session/new``; returns the session id."""
        result = await self.call("session/new", {"cwd": cwd, "mcpServers": []})
        session_id: str = result["sessionId"]
        return session_id

    async def prompt(self, session_id: str, text: str) -> Any:
        """``session/prompt`` with one text block; returns the result."""
        return await self.call(
            "session/prompt", {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}
        )

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        """Wait for (and return) the first received message matching ``predicate``."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                while True:
                    for message in self.received:
                        if predicate(message):
                            return message
                    if self.closed.is_set():
                        raise ConnectionError("connection closed while waiting")
                    await self._changed.wait()

    def updates(self, session_id: str | None = None) -> list[dict[str, Any]]:
        """The ``update`` objects of the ``session/update`` notifications received so far."""
        return [
            m["params"]["update"]
            for m in self.received
            if m.get("method") == "session/update"
            and (session_id is None or m["params"]["sessionId"] == session_id)
        ]

    def index_of_response(self, request_id: Any) -> int:
        """Position of a response in ``received``."""
        for i, message in enumerate(self.received):
            if "method" not in message and message.get("id") == request_id:
                return i
        raise LookupError(request_id)

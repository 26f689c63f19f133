"""A JSON-RPC 2.0 peer over any :class:`~acp_bridge.rpc.transport.Transport`.

One object per connection owns both directions:

* **inbound**: a classifier sorts each received message into request, notification, response or
  garbage. Requests and notifications go to ``jsonrpcserver``'s ``async_dispatch`` with an explicit
  method table (it binds params and shapes ``-32601``/``-32602``/``-32603``); responses resolve our own
  pending-request table; garbage gets ``-32700``/``-32600``. Requests run as their own tasks, so a long
  ``session/prompt`` never blocks a ``session/cancel``; methods registered ``inline`` (and every
  notification) run in the receive loop, in arrival order;
* **outbound**: :meth:`JsonRpcPeer.request` allocates an id, waits with a timeout and sends
  ``$/cancel_request`` when it gives up; :meth:`JsonRpcPeer.notify` and responses go through one FIFO
  :class:`~acp_bridge.rpc.outbox.Outbox` drained by a writer task, so message order is the order of the
  calls, and a client that stays behind past a grace period (or lets too many bytes pile up) is
  disconnected (``TRY_AGAIN_LATER``) instead of stalling the agent;
* **errors**: the single exception-to-wire boundary: :class:`~acp_bridge.rpc.errors.RpcError` subclasses
  keep their code; any other exception becomes ``-32603`` with a one-line ``data.detail`` (the traceback
  goes to the log, never to the wire).

The peer knows nothing of ACP: methods are strings and params are dicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ._flag import Flag
from ._jsonrpcserver import JsonRpcError, Success, dispatch_to_serializable
from .errors import (
    InternalError,
    InvalidParams,
    InvalidRequest,
    ParseError,
    RequestCancelled,
    RequestTimeout,
    RpcError,
    error_from_wire,
)
from .outbox import Outbox
from .transport import CloseReason, Malformed, Outgoing, Transport

__all__ = [
    "CANCEL_REQUEST_METHOD",
    "Handler",
    "JsonRpcPeer",
    "MethodTable",
    "NotificationHandler",
    "PeerClosed",
    "Reply",
    "RequestContext",
    "TargetHandler",
    "TargetNotificationHandler",
]

logger = logging.getLogger(__name__)

CANCEL_REQUEST_METHOD: Final = "$/cancel_request"
DEFAULT_OUTBOX_LIMIT: Final = 8192
DEFAULT_SLOW_CLIENT_GRACE: Final = 5.0
DEFAULT_OUTBOX_MAX_BYTES: Final = 64 * 1024 * 1024
DEFAULT_REQUEST_TIMEOUT: Final = 120.0


class PeerClosed(ConnectionError):
    """The connection ended while a request was waiting for its response."""


@dataclass(slots=True)
class RequestContext:
    """What a request handler knows about the request it is answering."""

    peer: JsonRpcPeer
    request_id: Any
    method: str
    cancelled_by_peer: bool = False
    after_response: Callable[[], None] | None = None
    """Runs right after the response is queued (not at all if the handler is torn down)."""
    arrival: Any = None
    """What the method's ``on_arrival`` hook returned when the request was read."""
    on_cancel: Callable[[], None] | None = None
    """For methods registered with ``answers_own_cancel``: called on ``$/cancel_request`` (if the
    handler has set it by then; before that, the handler checks ``cancelled_by_peer``)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler result plus a callback run right after the response is queued.

    The callback runs synchronously, before anything else can be queued, so whatever it sends follows
    the response on the wire (ACP: no ``session/update`` before the ``session/new`` response).
    """

    result: Any
    then: Callable[[], None] | None = None


Handler = Callable[[dict[str, Any], RequestContext], Awaitable[Any]]
"""A request handler: params in, result (or :class:`Reply`) out; raise :class:`RpcError` to fail."""
NotificationHandler = Callable[[dict[str, Any]], Awaitable[None]]
"""A notification handler; it runs in the receive loop, so it must not wait for long."""


_LAST_WRITE_SECONDS: Final = 1.0
"""At the end of the grace after input ended: how long the answers already queued may take to be
written."""

_MAX_WRITE_BATCH: Final = 256
_MAX_WRITE_BYTES: Final = 256 * 1024


def _chain(
    first: Callable[[], None] | None, second: Callable[[], None] | None
) -> Callable[[], None] | None:
    if first is None or second is None:
        return first or second

    def both() -> None:
        first()
        second()

    return both


def _identity(value: Any) -> Any:
    return value


def _valid_id(value: Any) -> bool:
    # JSON-RPC ids are strings, integers or null (ACP's RequestId); bool is an int in Python.
    return (
        value is None
        or isinstance(value, str)
        or (isinstance(value, int) and not isinstance(value, bool))
    )


def error_response(request_id: Any, error: RpcError) -> dict[str, Any]:
    """A JSON-RPC error response."""
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_wire()}


TargetHandler = Callable[[Any, dict[str, Any], RequestContext], Awaitable[Any]]
"""A request handler of a :class:`MethodTable`: the peer's ``target`` first, then like :data:`Handler`."""
TargetNotificationHandler = Callable[[Any, dict[str, Any]], Awaitable[None]]
"""A notification handler of a :class:`MethodTable`: the peer's ``target`` first."""

_Invoke = Callable[[RequestContext, dict[str, Any]], Awaitable[Any]]


def _request_entry(method: str, invoke: _Invoke) -> Callable[..., Awaitable[Any]]:
    """The dispatcher's callable for a request method: errors to JSON-RPC, :class:`Reply` unwrapped."""

    async def call(ctx: RequestContext, *args: Any, **params: Any) -> Any:
        if args:
            raise JsonRpcError(InvalidParams.code, "Invalid params", "params must be an object")
        try:
            result = await invoke(ctx, params)
        except RpcError as exc:
            raise JsonRpcError(exc.code, exc.message, exc.data) from None
        except Exception as exc:
            logger.exception("%s: handler for %s failed", ctx.peer.name, method)
            error = InternalError(data={"detail": f"{type(exc).__name__}: {exc}"})
            raise JsonRpcError(error.code, error.message, error.data) from None
        if isinstance(result, Reply):
            ctx.after_response = _chain(ctx.after_response, result.then)
            result = result.result
        return Success(result)

    return call


def _notification_entry(invoke: _Invoke) -> Callable[..., Awaitable[Any]]:
    async def call(ctx: RequestContext, *args: Any, **params: Any) -> Any:
        await invoke(ctx, params)
        return Success(None)

    return call


async def _invoke_with_target(
    handler: TargetHandler, ctx: RequestContext, params: dict[str, Any]
) -> Any:
    return await handler(ctx.peer.target, params, ctx)


async def _notify_with_target(
    handler: TargetNotificationHandler, ctx: RequestContext, params: dict[str, Any]
) -> None:
    await handler(ctx.peer.target, params)


def _arrival_with_target(
    hook: Callable[[Any, dict[str, Any]], Any], peer: JsonRpcPeer, params: dict[str, Any]
) -> Any:
    return hook(peer.target, params)


async def _invoke_plain(handler: Handler, ctx: RequestContext, params: dict[str, Any]) -> Any:
    return await handler(params, ctx)


async def _notify_plain(
    handler: NotificationHandler, ctx: RequestContext, params: dict[str, Any]
) -> None:
    await handler(params)


def _arrival_plain(
    hook: Callable[[dict[str, Any]], Any], peer: JsonRpcPeer, params: dict[str, Any]
) -> Any:
    return hook(params)


@dataclass
class _Registry:
    methods: dict[str, Callable[..., Awaitable[Any]]] = field(default_factory=dict)
    inline: set[str] = field(default_factory=set)
    on_arrival: dict[str, Callable[[JsonRpcPeer, dict[str, Any]], Any]] = field(
        default_factory=dict
    )
    answers_own_cancel: set[str] = field(default_factory=set)
    notifications: dict[str, Callable[..., Awaitable[Any]]] = field(default_factory=dict)

    def add_method(
        self,
        method: str,
        invoke: _Invoke,
        *,
        inline: bool,
        on_arrival: Callable[[JsonRpcPeer, dict[str, Any]], Any] | None,
        answers_own_cancel: bool,
    ) -> None:
        self.methods[method] = _request_entry(method, invoke)
        if inline:
            self.inline.add(method)
        if on_arrival is not None:
            self.on_arrival[method] = on_arrival
        if answers_own_cancel:
            self.answers_own_cancel.add(method)

    def copy(self) -> _Registry:
        return _Registry(
            dict(self.methods),
            set(self.inline),
            dict(self.on_arrival),
            set(self.answers_own_cancel),
            dict(self.notifications),
        )


class MethodTable:
    """The methods a kind of connection serves, built once and shared by all its peers.

    A peer made with ``table=`` serves these methods without building anything per connection
    (idle memory per connection is a measured budget); each handler gets the peer's ``target`` (the
    connection object it serves) as its first argument. A peer may still add methods of its own:
    it then gets a private copy of the table.
    """

    def __init__(self) -> None:
        self._registry = _Registry()

    def add_method(
        self,
        method: str,
        handler: TargetHandler,
        *,
        inline: bool = False,
        on_arrival: Callable[[Any, dict[str, Any]], Any] | None = None,
        answers_own_cancel: bool = False,
    ) -> None:
        """Serve ``method`` with ``handler(target, params, ctx)``; options as
        :meth:`JsonRpcPeer.add_method` (``on_arrival`` gets the target first too)."""
        self._registry.add_method(
            method,
            functools.partial(_invoke_with_target, handler),
            inline=inline,
            on_arrival=None
            if on_arrival is None
            else functools.partial(_arrival_with_target, on_arrival),
            answers_own_cancel=answers_own_cancel,
        )

    def add_notification(self, method: str, handler: TargetNotificationHandler) -> None:
        """Handle notifications of ``method`` with ``handler(target, params)``."""
        self._registry.notifications[method] = _notification_entry(
            functools.partial(_notify_with_target, handler)
        )


class JsonRpcPeer:
    """One side of a JSON-RPC 2.0 connection; see the module docstring."""

    def __init__(
        self,
        transport: Transport,
        *,
        name: str = "peer",
        outbox_limit: int = DEFAULT_OUTBOX_LIMIT,
        slow_client_grace: float = DEFAULT_SLOW_CLIENT_GRACE,
        outbox_max_bytes: int = DEFAULT_OUTBOX_MAX_BYTES,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        table: MethodTable | None = None,
        target: Any = None,
        eof_grace: float = 0.0,
    ) -> None:
        self.transport = transport
        self.name = name
        self.request_timeout = request_timeout
        self.eof_grace = eof_grace
        """Seconds the requests already read may take once the input ended, on a transport whose
        output outlives its input (see :meth:`run`)."""
        self._input_ended = False
        self.target = target
        """What the handlers of a shared :class:`MethodTable` get as their first argument."""
        self._registry = table._registry if table is not None else _Registry()
        self._shared = table is not None  # copied before this peer adds methods of its own
        self._outbox = Outbox(
            soft_limit=outbox_limit,
            grace=slow_client_grace,
            max_bytes=outbox_max_bytes,
            on_overflow=self._too_slow,
        )
        self._ids = itertools.count(1)
        self._pending: dict[Any, asyncio.Future[Any]] = {}
        self._inflight: dict[Any, tuple[asyncio.Task[None], RequestContext]] = {}
        self._tasks: set[asyncio.Task[None]] | None = None  # made by the first tracked task
        self._writer: asyncio.Task[None] | None = None
        self._closed = Flag()
        self.close_reason: CloseReason | None = None

    # --- registration ----------------------------------------------------------------------------

    def add_method(
        self,
        method: str,
        handler: Handler,
        *,
        inline: bool = False,
        on_arrival: Callable[[dict[str, Any]], Any] | None = None,
        answers_own_cancel: bool = False,
    ) -> None:
        """Serve requests for ``method``.

        ``inline`` handlers run in the receive loop, in arrival order. ``on_arrival`` runs
        synchronously when the request is read, before any later message is looked at; its result is
        ``ctx.arrival`` (e.g. to capture state that a message arriving right after may change).
        With ``answers_own_cancel``, ``$/cancel_request`` never cancels the handler's task: it sets
        ``ctx.cancelled_by_peer`` and calls ``ctx.on_cancel`` if the handler has set one, and the
        handler answers (a prompt: ``stopReason: "cancelled"``).
        """

        registry = self._own_registry()
        registry.add_method(
            method,
            functools.partial(_invoke_plain, handler),
            inline=inline,
            on_arrival=None
            if on_arrival is None
            else functools.partial(_arrival_plain, on_arrival),
            answers_own_cancel=answers_own_cancel,
        )

    def add_notification(self, method: str, handler: NotificationHandler) -> None:
        """Handle notifications of ``method`` (unknown notifications are ignored)."""
        self._own_registry().notifications[method] = _notification_entry(
            functools.partial(_notify_plain, handler)
        )

    def _own_registry(self) -> _Registry:
        if self._shared:
            self._registry = self._registry.copy()
            self._shared = False
        return self._registry

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection has ended."""
        return self._closed.is_set()

    async def run(self) -> None:
        """Serve the connection until the transport ends or :meth:`close` is called.

        On a transport whose output outlives its input (``output_outlives_input``: stdio, where
        stdin may close while stdout is still read), the end of the input is not the end of the
        conversation: requests already read get up to ``eof_grace`` seconds to be answered and
        their answers are written before the peer shuts down. What is still unanswered then is
        logged as a warning.
        """
        self._writer = asyncio.create_task(self._write_loop(), name=f"{self.name}-writer")
        try:
            while not self._closed.is_set():
                message = await self.transport.receive()
                if message is None:
                    self._input_ended = True
                    break
                await self._dispatch(message)
                # Not kept while waiting for the next one: an idle connection would hold its last
                # request (params and all) for as long as it stays open.
                message = None
            if (
                self._input_ended
                and not self._closed.is_set()
                and self.eof_grace > 0
                and getattr(self.transport, "output_outlives_input", False)
            ):
                await self._finish_after_input_ended(self.eof_grace)
        finally:
            await self._shutdown()

    async def _finish_after_input_ended(self, grace: float) -> None:
        # Nothing can answer our own requests any more: fail them now rather than at their timeout,
        # so the handlers waiting on them (a turn asking for a permission) can finish.
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PeerClosed(f"{self.name}: the client's input ended"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        handlers = {task for task, _ in self._inflight.values()}
        if handlers:
            await asyncio.wait(handlers, timeout=grace)
        # Answers queued by the handlers go out before the transport is closed; the wait is bounded
        # by what is left of the grace, and at least a moment for the last answers.
        await self.drain_for(max(deadline - loop.time(), _LAST_WRITE_SECONDS))
        left = list(self._inflight.values())
        if left:
            logger.warning(
                "%s: input ended; %d request(s) not answered within %g s: %s",
                self.name,
                len(left),
                grace,
                ", ".join(f"{ctx.method} (id {ctx.request_id!r})" for _, ctx in left),
            )
            # The output is still open: whoever reads it learns these will not be answered.
            for _, ctx in left:
                self.send(
                    error_response(
                        ctx.request_id,
                        RequestCancelled(
                            f"not answered within {grace:g} s after the input ended",
                            data={"reason": "input_ended"},
                        ),
                    )
                )
            await self.drain_for(_LAST_WRITE_SECONDS)

    async def wait_closed(self) -> None:
        """Wait until the connection has ended."""
        await self._closed.wait()

    async def close(self, reason: CloseReason = CloseReason.NORMAL, detail: str = "") -> None:
        """Close the connection: queued messages are dropped, waiting requests fail with PeerClosed."""
        if self.close_reason is None:
            self.close_reason = reason
        self._closed.set()
        self._outbox.close()
        await self.transport.close(reason, detail)

    async def drain(self) -> None:
        """Wait until every queued message has been handed to the transport."""
        if self._writer is None or self._writer.done():
            return
        await self._outbox.join()

    async def drain_for(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait is the point
        """Like :meth:`drain`, but give up after ``timeout`` seconds; returns whether it drained."""
        try:
            async with asyncio.timeout(timeout):
                await self.drain()
        except TimeoutError:
            return False
        return True

    async def _shutdown(self) -> None:
        self._closed.set()
        self._outbox.close()
        for task, _ in list(self._inflight.values()):
            task.cancel()
        for task in list(self._tasks or ()):
            task.cancel()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PeerClosed(f"{self.name}: connection closed"))
        self._pending.clear()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- outbound ----------------------------------------------------------------------------------

    def send(self, message: Outgoing) -> bool:
        """Queue one message (a dict, or pre-encoded JSON bytes); False if it was not queued.

        Never blocks. A client may fall more than ``outbox_limit`` messages behind for up to
        ``slow_client_grace`` seconds (a burst); if it stays behind longer, or more than
        ``outbox_max_bytes`` pile up, the connection is closed with
        :attr:`CloseReason.TRY_AGAIN_LATER` (the client can reconnect and ``session/load``), so a
        slow client never stalls the agent or the other clients.
        """
        if self._closed.is_set():
            return False
        return self._outbox.put(message)

    def send_many(self, messages: list[bytes]) -> bool:
        """Queue several pre-encoded messages in order; like :meth:`send` for each, but cheaper."""
        if self._closed.is_set():
            return False
        return self._outbox.put_many(messages)

    def _too_slow(self, reason: str) -> None:
        logger.warning("%s: client too slow (%s); disconnecting", self.name, reason)
        self._closed.set()
        if self.close_reason is None:
            self.close_reason = CloseReason.TRY_AGAIN_LATER
        self._track(
            asyncio.ensure_future(
                self.transport.close(CloseReason.TRY_AGAIN_LATER, "client too slow")
            )
        )

    async def send_wait(self, message: Outgoing) -> bool:
        """Queue one message, waiting while ``outbox_limit`` messages wait (backpressure).

        For traffic the client asked for, like a ``session/load`` replay, where waiting for the client
        is right and disconnecting it would be wrong. Returns False if the connection is gone.
        """
        if self._closed.is_set():
            return False
        return await self._outbox.put_wait(message)

    def notify(self, method: str, params: Any = None) -> bool:
        """Queue a notification."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        return self.send(message)

    async def request(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - per-request timeouts are the peer's contract
    ) -> Any:
        """Send a request and wait for its result.

        Raises the named :class:`RpcError` the peer answered with, :class:`RequestTimeout` after
        ``timeout`` seconds (default ``request_timeout``), or :class:`PeerClosed`. On timeout or when
        the awaiting task is cancelled, ``$/cancel_request`` is sent so the client can stop too.
        """
        if self._closed.is_set():
            raise PeerClosed(f"{self.name}: connection closed")
        if self._input_ended:
            raise PeerClosed(f"{self.name}: the client's input ended; it cannot answer")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            self.send(message)
            async with asyncio.timeout(self.request_timeout if timeout is None else timeout):
                return await future
        except TimeoutError:
            self.notify(CANCEL_REQUEST_METHOD, {"requestId": request_id})
            raise RequestTimeout(f"no response to {method} within the timeout") from None
        except asyncio.CancelledError:
            self.notify(CANCEL_REQUEST_METHOD, {"requestId": request_id})
            raise
        finally:
            self._pending.pop(request_id, None)

    async def _write_loop(self) -> None:
        send_many = getattr(self.transport, "send_many", None)
        outbox = self._outbox
        # Whatever queued up meanwhile goes out in one write when the transport can batch.
        max_count = _MAX_WRITE_BATCH if send_many is not None else 1
        while True:
            batch = await outbox.take(max_count, _MAX_WRITE_BYTES)
            if not batch:
                return  # closed
            try:
                if send_many is not None:
                    await send_many(batch)
                else:
                    await self.transport.send(batch[0])
            except Exception as exc:
                # The connection is gone; the receive side will see the end of stream.
                logger.debug("%s: send failed: %s", self.name, exc)
                self._closed.set()
                outbox.close()
            finally:
                outbox.done(len(batch))

    # --- inbound -----------------------------------------------------------------------------------

    def _track(self, task: asyncio.Task[None]) -> None:
        tasks = self._tasks
        if tasks is None:
            tasks = self._tasks = set()
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _dispatch(self, message: Any) -> None:
        if isinstance(message, Malformed):
            self.send(error_response(None, ParseError(data={"detail": message.reason})))
            return
        if isinstance(message, list):
            error = InvalidRequest("Batch requests are not supported by ACP v1")
            self.send(error_response(None, error))
            return
        if not isinstance(message, dict):
            self.send(error_response(None, InvalidRequest("A message must be a JSON object")))
            return
        request_id = message.get("id")
        id_ok = _valid_id(request_id)
        if message.get("jsonrpc") != "2.0":
            self.send(
                error_response(
                    request_id if id_ok else None, InvalidRequest('"jsonrpc" must be "2.0"')
                )
            )
            return
        method = message.get("method")
        if method is None:
            if "id" in message and ("result" in message or "error" in message):
                self._on_response(message)
            else:
                self.send(error_response(request_id if id_ok else None, InvalidRequest()))
            return
        params = message.get("params")
        if (
            not isinstance(method, str)
            or not id_ok
            or (params is not None and not isinstance(params, dict | list))
        ):
            self.send(error_response(request_id if id_ok else None, InvalidRequest()))
            return
        if "id" not in message:
            await self._on_notification(method, message)
            return
        if request_id in self._inflight:
            self.send(
                error_response(request_id, InvalidRequest("A request with this id is in flight"))
            )
            return
        ctx = RequestContext(self, request_id, method)
        hook = self._registry.on_arrival.get(method)
        if hook is not None:
            try:
                ctx.arrival = hook(self, params if isinstance(params, dict) else {})
            except Exception:
                logger.exception("%s: on_arrival hook for %s failed", self.name, method)
        if method in self._registry.inline:
            await self._serve(message, ctx)
            return
        task = asyncio.create_task(
            self._serve(message, ctx), name=f"{self.name}:{method}#{request_id}"
        )
        self._inflight[request_id] = (task, ctx)
        task.add_done_callback(lambda done: self._request_done(done, ctx))

    def _request_done(self, task: asyncio.Task[None], ctx: RequestContext) -> None:
        inflight = self._inflight
        inflight.pop(ctx.request_id, None)
        if not inflight:
            # An emptied dict keeps its grown table; clear() gives it back while the peer idles.
            inflight.clear()
        # A cancelled request still gets an answer (ACP/$/cancel_request). This runs as a done
        # callback because a task cancelled before its first step never enters its own try block.
        if task.cancelled() and ctx.cancelled_by_peer and not self._closed.is_set():
            self.send(error_response(ctx.request_id, RequestCancelled()))

    async def _serve(self, message: dict[str, Any], ctx: RequestContext) -> None:
        response = await dispatch_to_serializable(
            message,
            self._registry.methods,
            context=ctx,
            deserializer=_identity,
            validator=_identity,
        )
        if isinstance(response, dict):  # None for notifications; never a list (no batches)
            if "error" in response and response["error"]["code"] == -32601:
                response["error"]["message"] = "Method not found"
            self.send(response)
        if ctx.after_response is not None:
            ctx.after_response()

    async def _on_notification(self, method: str, message: dict[str, Any]) -> None:
        if method == CANCEL_REQUEST_METHOD:
            params = message.get("params")
            target = params.get("requestId") if isinstance(params, dict) else None
            # Only a well-formed id can name a request: an object or array is unhashable, and
            # true would find request 1 (True == 1 in Python).
            inflight = self._inflight.get(target) if _valid_id(target) else None
            if inflight is not None:
                task, ctx = inflight
                ctx.cancelled_by_peer = True
                if ctx.method not in self._registry.answers_own_cancel:
                    task.cancel()
                elif ctx.on_cancel is not None:
                    try:
                        ctx.on_cancel()
                    except Exception:
                        logger.exception("%s: cancel hook of %s failed", self.name, ctx.method)
            return
        if method not in self._registry.notifications:
            logger.debug("%s: ignoring unknown notification %s", self.name, method)
            return
        ctx = RequestContext(self, None, method)
        try:
            await dispatch_to_serializable(
                {k: v for k, v in message.items()},
                self._registry.notifications,
                context=ctx,
                deserializer=_identity,
                validator=_identity,
            )
        except Exception:
            logger.exception("%s: notification handler for %s failed", self.name, method)

    def _on_response(self, message: dict[str, Any]) -> None:
        response_id = message.get("id")
        # The client's id may be any JSON: an object or array is unhashable, and true or 1.0 hash
        # like 1. We only ever send integer ids, so anything else answers no request of ours.
        future = self._pending.get(response_id) if _valid_id(response_id) else None
        if future is None or future.done():
            logger.debug("%s: response for an unknown request id %r", self.name, message.get("id"))
            return
        if "error" in message:
            future.set_exception(error_from_wire(message["error"]))
        else:
            future.set_result(message.get("result"))

"""The WebSocket endpoint: ``ws://HOST:PORT/acp`` plus ``GET /healthz`` and a mounted app (``/inspect``).

Everything about who may connect is decided before the upgrade, in ``process_request``: the
``Host`` header (against DNS rebinding), the path, the browser ``Origin``, and the bearer token. An
accepted connection is wrapped in a :class:`~acp_bridge.transports.websocket.WebSocketTransport` and
handed to the handler the server was given (the ACP bridge, as :mod:`acp_bridge.app` assembles it);
this module knows nothing of what flows over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import ipaddress
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader
from websockets.headers import parse_subprotocol
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from acp_bridge._version import __version__
from acp_bridge.rpc.principal import ANONYMOUS, Principal
from acp_bridge.rpc.transport import CloseReason, Transport

from .http_routes import HttpRequest, HttpResponse, MountedApp
from .tokens import TokenEntry, TokenTable
from .websocket import WebSocketTransport

__all__ = [
    "ACP_SUBPROTOCOL",
    "BEARER_SUBPROTOCOL_PREFIX",
    "CONNECTION_ID_HEADER",
    "HEALTH_PATH",
    "ConnectionHandler",
    "ConnectionInfo",
    "InsecureBindError",
    "WebSocketServer",
    "WebSocketServerConfig",
]

logger = logging.getLogger(__name__)

ACP_SUBPROTOCOL = "acp.v1"
"""The subprotocol preferred when a client offers it."""

BEARER_SUBPROTOCOL_PREFIX = "acp.bearer."
"""A ``Sec-WebSocket-Protocol`` entry ``acp.bearer.<token>`` carries the token for browsers."""

CONNECTION_ID_HEADER = "Acp-Connection-Id"
"""Response header of the 101 that names the connection (ACP remote-transport RFD)."""

HEALTH_PATH = "/healthz"
"""Health check path: its status needs no token; with a token configured, its details do."""

_PAGE_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Everything the page loads comes from here: no CDN, no inline script, never framed.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}
"""Headers of every response of a mounted app."""

_CLOSE_TIMEOUT = 2.0
"""Seconds to wait for a peer to complete the closing handshake."""

_CLOSE_GRACE = 1.0
"""Seconds left to handlers to react to cancellation once the shutdown timeout has passed."""


@dataclass(frozen=True)
class WebSocketServerConfig:
    """How the WebSocket endpoint binds, authenticates and limits connections."""

    host: str = "127.0.0.1"
    port: int = 8765
    path: str = "/acp"
    token: str | None = None
    """A bearer token for one controller (named ``token``)."""
    tokens: tuple[TokenEntry, ...] = ()
    """More bearer tokens, each naming a principal and its role (the ``--tokens`` file). With
    neither ``token`` nor ``tokens``, authentication is off and every client is a controller."""
    allowed_origins: tuple[str, ...] = ()
    """Exact ``Origin`` values accepted from browsers; requests without ``Origin`` always pass."""
    allowed_hosts: tuple[str, ...] = ()
    """``Host`` header values accepted besides loopback names (``NAME`` for any port, or
    ``NAME:PORT``). Bound to loopback, the server accepts only loopback names and these; bound
    beyond, it accepts any ``Host`` unless this is set. Others get 421."""
    max_message_bytes: int = 32 * 1024 * 1024
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    compression: bool = False
    """permessage-deflate; off by default since it costs memory and CPU for little on loopback."""
    insecure: bool = False
    """Allow binding a non-loopback host without a token."""

    def __post_init__(self) -> None:
        if self.token is not None and not self.token:
            raise ValueError("token must not be empty (use None to disable authentication)")
        if not self.path.startswith("/") or self.path == HEALTH_PATH:
            raise ValueError(f"invalid endpoint path {self.path!r}")
        if self.max_message_bytes <= 0:
            raise ValueError("max_message_bytes must be positive")
        for entry in self.allowed_hosts:
            if _allowed_host_entry(entry) is None:
                raise ValueError(f"invalid allowed host {entry!r} (expected NAME or NAME:PORT)")


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """What the handler learns about an accepted connection."""

    connection_id: str
    """The ``Acp-Connection-Id`` sent in the 101 response (uuid4 hex)."""
    remote: str
    """The peer address as ``host:port`` (``[v6]:port`` for IPv6)."""
    origin: str | None
    user_agent: str | None
    subprotocol: str | None
    """The negotiated subprotocol; a bearer entry is reported as ``acp.bearer`` without the token."""
    principal: Principal = ANONYMOUS
    """Who the token named (its name and role); ``anonymous`` controller without authentication."""


ConnectionHandler = Callable[[Transport, ConnectionInfo], Awaitable[None]]
"""Serves one connection; when it returns, the connection is closed normally."""


class _DebugOnly(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A connection's logger whose INFO lines are logged at DEBUG."""

    def __init__(self, logger: Any) -> None:
        super().__init__(logger, {})

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.debug(msg, *args, **kwargs)


class InsecureBindError(ValueError):
    """Refusal to listen beyond loopback without a token (set ``insecure`` to override).

    The message names the Python option (``insecure=True``); the command says ``--insecure``.
    """


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names only the local machine (127.0.0.0/8, ::1, ``localhost``)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        # Any other name may resolve anywhere.
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # Python 3.11 does not consider ::ffff:127.0.0.1 loopback.
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


_HOST_FORBIDDEN_CHARS = frozenset("@/\\?# \t")


def _normal_host(host: str) -> str:
    # One spelling per host: case and a trailing dot do not matter, nor how an address is written.
    host = host.lower().rstrip(".")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


def _split_host_header(value: str) -> tuple[str, int | None] | None:
    """``(host, port)`` of a ``Host`` value (``NAME[:PORT]``, ``[V6][:PORT]``), ``None`` if malformed."""
    if not value or _HOST_FORBIDDEN_CHARS.intersection(value):
        return None
    try:
        parts = urlsplit("//" + value)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    return (_normal_host(host), port) if host else None


def _allowed_host_entry(entry: str) -> tuple[str, int | None] | None:
    """An ``allowed_hosts`` entry as ``(host, port or None)``; a bare IPv6 address is accepted."""
    entry = entry.strip()
    try:
        return ipaddress.ip_address(entry).compressed, None
    except ValueError:
        return _split_host_header(entry)


def _format_remote(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


def _offered_subprotocols(headers: Headers) -> list[str]:
    offered: list[str] = []
    for value in headers.get_all("Sec-WebSocket-Protocol"):
        try:
            offered.extend(parse_subprotocol(value))
        except InvalidHeader:
            # The library answers the malformed header with 400 after process_request.
            continue
    return offered


def _bearer_from_authorization(headers: Headers) -> list[str]:
    tokens = []
    for value in headers.get_all("Authorization"):
        scheme, _, credentials = value.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            tokens.append(credentials.strip())
    return tokens


def _unauthorized(connection: ServerConnection) -> Response:
    """401 for a request without a valid token, naming the scheme it needs (RFC 6750)."""
    response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "Missing or invalid bearer token\n")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


class _AcpServerConnection(ServerConnection):
    """A server connection that carries its ``Acp-Connection-Id`` from handshake to handler."""

    # Slots, not instance attributes: the library's connection already has 27, and a 31st key
    # (past CPython's 30-key limit for key-sharing dicts) makes every connection's __dict__ a
    # combined dict of ~1.6 KiB instead of ~0.3 KiB.
    __slots__ = ("connection_id", "mounted", "principal")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection_id = uuid.uuid4().hex
        self.principal = ANONYMOUS
        self.mounted = False
        """True for the mounted app's stream rather than the ACP endpoint."""


class WebSocketServer:
    """Serves ACP over WebSocket: authenticates upgrades and runs a handler per connection."""

    def __init__(
        self,
        config: WebSocketServerConfig,
        handler: ConnectionHandler,
        *,
        health: Callable[[], Mapping[str, Any]] | None = None,
        mounted: MountedApp | None = None,
    ) -> None:
        self.config = config
        self._handler = handler
        self._health = health
        self._mounted = mounted
        self._tokens = TokenTable.build(config.token, config.tokens)
        self._allowed_hosts: frozenset[tuple[str, int | None]] | None = None
        """``None``: any ``Host`` is accepted (bound beyond loopback, no list given)."""
        if config.allowed_hosts or is_loopback_host(config.host):
            entries = (_allowed_host_entry(entry) for entry in config.allowed_hosts)
            self._allowed_hosts = frozenset(entry for entry in entries if entry is not None)
        self._server: Server | None = None
        self._port: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closed = asyncio.Event()
        self._close_lock = asyncio.Lock()

    # Lifecycle

    async def start(self) -> None:
        """Bind and start accepting connections (``port`` 0 picks a free port).

        Raises :class:`InsecureBindError` for a non-loopback host without a token unless the
        configuration says ``insecure``.
        """
        if self._server is not None:
            raise RuntimeError("server already started")
        config = self.config
        if not self._tokens and not config.insecure and not is_loopback_host(config.host):
            raise InsecureBindError(
                f"refusing to listen on {config.host!r} without a token: anyone who can reach it "
                "could drive the agent. Set a token, bind to 127.0.0.1, or pass insecure=True "
                "(e.g. behind an authenticating proxy)."
            )
        self._server = await serve(
            self._serve_connection,
            config.host,
            config.port,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=self._select_subprotocol,
            server_header=f"acp-bridge/{__version__}",
            compression="deflate" if config.compression else None,
            max_size=config.max_message_bytes,
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            # A live peer answers a close frame within milliseconds; don't let a dead one hold
            # shutdown for the library's default 10 s.
            close_timeout=_CLOSE_TIMEOUT,
            create_connection=_AcpServerConnection,
        )
        # Kept so port/url stay meaningful after close(). With several sockets (a name resolving
        # to both IPv4 and IPv6), port 0 may give each its own port; the first one is reported.
        self._port = self._server.sockets[0].getsockname()[1]
        logger.info("ACP WebSocket endpoint listening on %s", self.url)

    def stop_accepting(self) -> None:
        """Stop listening; connections already open keep working until :meth:`close`.

        Upgrades that were half-way through their handshake are refused with HTTP 503. The first
        step of a graceful shutdown: nobody new can start a turn while running turns wind down.
        """
        self._closing = True
        if self._server is not None:
            self._server.server.close()

    async def close(self, *, grace: float = 5.0) -> None:
        """Stop accepting, close every connection with 1001, wait for handlers; idempotent.

        Handlers still running ``grace`` seconds later are cancelled. Concurrent and repeated
        calls wait for the same shutdown.
        """
        async with self._close_lock:
            if self._closed.is_set():
                return
            self._closing = True
            server = self._server
            if server is not None:
                # GOING_AWAY tells a client it may reconnect elsewhere or later and session/load.
                server.close(close_connections=True)
                try:
                    async with asyncio.timeout(grace):
                        await server.wait_closed()
                except TimeoutError:
                    await self._cancel_handlers()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(_CLOSE_GRACE):
                            await server.wait_closed()
            self._closed.set()
            logger.info("ACP WebSocket endpoint closed")

    async def _cancel_handlers(self) -> None:
        pending = [task for task in self._tasks if not task.done()]
        logger.warning(
            "cancelling %d connection handler(s) still running at shutdown", len(pending)
        )
        for task in pending:
            task.cancel()
        if pending:
            _, still_running = await asyncio.wait(pending, timeout=_CLOSE_GRACE)
            if still_running:
                logger.error("%d connection handler(s) ignored cancellation", len(still_running))

    async def serve_forever(self) -> None:
        """Start if needed and serve until :meth:`close` (or cancellation, which closes)."""
        if self._server is None:
            await self.start()
        try:
            await self._closed.wait()
        except asyncio.CancelledError:
            await asyncio.shield(self.close())
            raise

    async def __aenter__(self) -> WebSocketServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def reload_tokens(self, entries: tuple[TokenEntry, ...]) -> None:
        """Accept these file tokens (plus ``token``) from now on; open connections keep their role.

        ``entries`` is never empty (:func:`~acp_bridge.transports.tokens.load_token_file` refuses a
        file without tokens), so authentication cannot be switched off this way.
        """
        if not entries:
            raise ValueError("no tokens: authentication cannot be switched off by a reload")
        self._tokens = TokenTable.build(self.config.token, entries)
        logger.info("tokens reloaded: %s", ", ".join(e.principal.name for e in entries) or "none")

    # Introspection

    @property
    def port(self) -> int:
        """The bound port (useful after binding port 0); still known after :meth:`close`."""
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def host(self) -> str:
        """The configured host."""
        return self.config.host

    @property
    def url(self) -> str:
        """The endpoint's ``ws://`` URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{self.config.path}"

    @property
    def connection_count(self) -> int:
        """Connections whose handler is running."""
        return len(self._tasks)

    # Handshake

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        # Before anything else, on every path: a page that rebinds its own name to 127.0.0.1 reaches
        # us with its name in Host, and may read any response a same-origin fetch can (/healthz).
        hosts = request.headers.get_all("Host")
        host = _split_host_header(hosts[0].strip()) if len(hosts) == 1 else None
        if host is None:
            # RFC 9110 §7.2: a missing, repeated or invalid Host is a 400.
            return connection.respond(http.HTTPStatus.BAD_REQUEST, "Missing or invalid Host\n")
        if not self._host_allowed(*host):
            logger.info("rejected a request for host %r", hosts[0])
            return connection.respond(http.HTTPStatus.MISDIRECTED_REQUEST, "Host not allowed\n")
        path = urlsplit(request.path).path
        if path == HEALTH_PATH:
            # A probe every few seconds is not news: its "response sent"/"closed" lines are DEBUG.
            connection.protocol.logger = _DebugOnly(connection.protocol.logger)
            return self._health_response(connection, request)
        app = self._mounted
        if app is not None and (path == app.prefix or path.startswith(app.prefix + "/")):
            return self._mounted_request(app, connection, request, hosts[0].strip())
        if path != self.config.path:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "Not found\n")
        # Checked before the token so a hostile page learns nothing about it (CSWSH defence).
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.config.allowed_origins:
            logger.info("rejected a connection from origin %r", origin)
            return connection.respond(http.HTTPStatus.FORBIDDEN, "Origin not allowed\n")
        principal = self._principal(request.headers)
        if principal is None:
            return _unauthorized(connection)
        assert isinstance(connection, _AcpServerConnection)
        connection.principal = principal
        return None

    def _host_allowed(self, host: str, port: int | None) -> bool:
        allowed = self._allowed_hosts
        if allowed is None or is_loopback_host(host):
            return True
        return (host, None) in allowed or (host, port) in allowed

    def _principal(self, headers: Headers) -> Principal | None:
        """Who the request's token names; ``anonymous`` without authentication, ``None`` if refused."""
        if not self._tokens:
            return ANONYMOUS
        candidates = _bearer_from_authorization(headers) + [
            entry[len(BEARER_SUBPROTOCOL_PREFIX) :]
            for entry in _offered_subprotocols(headers)
            if entry.startswith(BEARER_SUBPROTOCOL_PREFIX)
        ]
        return self._tokens.authenticate(candidates)

    def _same_origin(self, request: Request, host: str) -> bool:
        """Whether a request comes from a page of this server (or of an allowed origin).

        A browser sends ``Origin`` on every WebSocket handshake and cross-origin fetch, and
        ``Sec-Fetch-Site`` on every request; a non-browser client sends neither and passes.
        """
        origin = request.headers.get("Origin")
        # https too: behind a TLS-terminating proxy that forwards Host, the page's origin is https.
        own = {f"{scheme}://{host}".lower() for scheme in ("http", "https")}
        if origin is not None and origin.lower() not in own:
            return origin in self.config.allowed_origins
        site = request.headers.get("Sec-Fetch-Site")
        if site in ("cross-site", "same-site"):
            # Opening the page from a link elsewhere is fine: it holds nothing until the user
            # gives it a token; reading data from another site's page is not.
            return request.headers.get("Sec-Fetch-Mode") == "navigate"
        return True

    def _mounted_request(
        self, app: MountedApp, connection: ServerConnection, request: Request, host: str
    ) -> Response | None:
        if not self._same_origin(request, host):
            logger.info("rejected a cross-origin request for %s", request.path)
            return connection.respond(http.HTTPStatus.FORBIDDEN, "Origin not allowed\n")
        if request.method not in ("GET", "HEAD"):
            response = connection.respond(http.HTTPStatus.METHOD_NOT_ALLOWED, "Use GET\n")
            response.headers["Allow"] = "GET, HEAD"
            return response
        parts = urlsplit(request.path)
        principal = self._principal(request.headers)
        if parts.path == app.stream_path and request.headers.get("Upgrade") is not None:
            if principal is None:
                return _unauthorized(connection)
            assert isinstance(connection, _AcpServerConnection)
            connection.principal = principal
            connection.mounted = True
            return None  # the upgrade goes on; _serve_connection hands it to the app
        try:
            answer = app.handle(HttpRequest(parts.path, dict(parse_qsl(parts.query)), principal))
        except Exception:
            logger.exception("%s failed", request.path)
            answer = HttpResponse(500, b"Internal error\n", "text/plain; charset=utf-8")
        return self._http_response(connection, answer, head=request.method == "HEAD")

    @staticmethod
    def _http_response(
        connection: ServerConnection, answer: HttpResponse, *, head: bool = False
    ) -> Response:
        response = connection.respond(http.HTTPStatus(answer.status), "")
        del response.headers["Content-Type"]
        del response.headers["Content-Length"]
        for name, value in {**_PAGE_HEADERS, **answer.headers}.items():
            response.headers[name] = value
        if answer.status == http.HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = "Bearer"
        response.headers["Content-Type"] = answer.content_type
        response.headers["Content-Length"] = str(len(answer.body))
        response.body = b"" if head else answer.body
        return response

    def _health_response(self, connection: ServerConnection, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            response = connection.respond(http.HTTPStatus.METHOD_NOT_ALLOWED, "Use GET\n")
            response.headers["Allow"] = "GET, HEAD"
            return response
        try:
            report = {"status": "ok", **(self._health() if self._health is not None else {})}
            if self._tokens and self._principal(request.headers) is None:
                # A probe needs only the status; what runs here, and how busy, is for the token.
                report = {"status": report["status"]}
            body = orjson.dumps(report)
            # Anything but "ok" is a 503, so a plain HTTP health check notices too.
            healthy = report["status"] == "ok"
            status = http.HTTPStatus.OK if healthy else http.HTTPStatus.SERVICE_UNAVAILABLE
        except Exception:
            logger.exception("health callback failed")
            body = orjson.dumps({"status": "error"})
            status = http.HTTPStatus.SERVICE_UNAVAILABLE
        response = connection.respond(status, "")
        del response.headers["Content-Type"]
        del response.headers["Content-Length"]
        response.headers["Content-Type"] = "application/json"
        response.headers["Content-Length"] = str(len(body))
        response.headers["Cache-Control"] = "no-store"
        response.body = b"" if request.method == "HEAD" else body
        return response

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        # A browser fails the handshake unless the server picks one of the protocols it offered,
        # and a browser can only send the token as a protocol, so echoing that entry is the
        # fallback. Authentication already happened in process_request.
        if ACP_SUBPROTOCOL in offered:
            return Subprotocol(ACP_SUBPROTOCOL)
        for entry in offered:
            if entry.startswith(BEARER_SUBPROTOCOL_PREFIX):
                return entry
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        if response.status_code == http.HTTPStatus.SWITCHING_PROTOCOLS:
            assert isinstance(connection, _AcpServerConnection)
            response.headers[CONNECTION_ID_HEADER] = connection.connection_id

    # Connections

    async def _serve_connection(self, connection: ServerConnection) -> None:
        assert isinstance(connection, _AcpServerConnection)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        transport = WebSocketTransport(connection)
        info = self._connection_info(connection)
        _drop_handshake_headers(connection)
        logger.debug("connection %s from %s", info.connection_id, info.remote)
        try:
            if connection.mounted and self._mounted is not None:
                await self._mounted.stream(transport, connection.principal)
            else:
                await self._handler(transport, info)
        except Exception:
            logger.exception("handler for connection %s failed", info.connection_id)
            await transport.close(CloseReason.INTERNAL, "internal error")
        else:
            # During shutdown the library has already sent 1001 and this is a no-op.
            await transport.close(CloseReason.GOING_AWAY if self._closing else CloseReason.NORMAL)
        finally:
            self._tasks.discard(task)

    @staticmethod
    def _connection_info(connection: _AcpServerConnection) -> ConnectionInfo:
        headers = connection.request.headers if connection.request is not None else Headers()
        subprotocol: str | None = connection.subprotocol
        if subprotocol is not None and subprotocol.startswith(BEARER_SUBPROTOCOL_PREFIX):
            # Keep the secret out of anything the handler might log.
            subprotocol = BEARER_SUBPROTOCOL_PREFIX.rstrip(".")
        return ConnectionInfo(
            connection_id=connection.connection_id,
            remote=_format_remote(connection.remote_address),
            origin=headers.get("Origin"),
            user_agent=headers.get("User-Agent"),
            subprotocol=subprotocol,
            principal=connection.principal,
        )


def _drop_handshake_headers(connection: ServerConnection) -> None:
    """Free the handshake's headers once :class:`ConnectionInfo` holds what the handler needs.

    The library keeps the parsed request and response, headers and all (~3 KiB), for as long as
    the connection stays open. The request object itself stays (the library's parser holds it, and
    ``request is None`` means "no handshake yet" to it), without headers; the response goes.
    """
    if connection.request is not None:
        connection.request.headers.clear()
    connection.response = None

"""The composition root: backend + event log + ACP layer + WebSocket endpoint (or stdio), assembled.

:class:`BridgeServer` is what ``acp-bridge serve`` runs and what an embedding program can start with
``await serve(...)``: it opens the event log, starts the WebSocket server with the ACP bridge as its
connection handler, and shuts everything down in order (stop accepting, cancel turns so they answer
``cancelled``, flush the log, close sockets with 1001).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, TypeVar

import platformdirs

from acp_bridge.acp import AcpBridge, BridgeConfig
from acp_bridge.agents.base import AgentBackend, BackendOptions
from acp_bridge.agents.registry import create_backend
from acp_bridge.eventlog import EventLog, EventLogError, open_event_log
from acp_bridge.rpc.transport import DEFAULT_EOF_GRACE, Transport
from acp_bridge.sinks import SinkRegistry, default_registry
from acp_bridge.translate import Profile
from acp_bridge.transports.tokens import TokenEntry, load_token_file
from acp_bridge.transports.websocket_server import (
    ConnectionInfo,
    WebSocketServer,
    WebSocketServerConfig,
)

from .inspector import Inspector

__all__ = [
    "BridgeServer",
    "ServerOptions",
    "backend_for",
    "default_event_log_spec",
    "serve",
    "serve_stdio",
    "tune_gc",
]

logger = logging.getLogger(__name__)


def default_event_log_spec() -> str:
    """``sqlite:`` a file in the user's data directory (e.g. ``~/.local/share/acp-bridge``)."""
    return f"sqlite:{Path(platformdirs.user_data_dir('acp-bridge')) / 'events.sqlite'}"


GC_GEN0_THRESHOLD: Final = 10_000
"""Allocations between two collections of the youngest generation once serving (CPython: 700)."""


def tune_gc() -> None:
    """Tune the garbage collector for a long-running server, once startup is done.

    Startup leaves a large heap that lives as long as the process (modules, pydantic schemas, the
    ACP schema); ``gc.freeze`` moves it out of the collector's sight, so a full collection no
    longer walks it. Streaming allocates short-lived containers by the thousand, so the youngest
    generation is collected every :data:`GC_GEN0_THRESHOLD` allocations instead of every 700.
    Measured on the end-to-end benchmark (issue 10, decision 0051): about 8% less CPU per event.
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


@dataclass(frozen=True)
class ServerOptions:
    """Everything ``acp-bridge serve`` can be told."""

    host: str = "127.0.0.1"
    port: int = 8765
    path: str = "/acp"
    event_log: str | None = None
    """``memory`` or ``sqlite:PATH``; ``None`` for the default SQLite file."""
    profile: Profile = Profile.AUTO
    token: str | None = None
    """A bearer token for one controller."""
    tokens_file: str | None = None
    """A TOML file of named tokens with roles (see ``docs/running.md``); re-read on SIGHUP."""
    eof_grace: float = DEFAULT_EOF_GRACE
    """``serve_stdio``: seconds the requests already read may take to be answered once stdin ends."""
    permission_timeout: float = 300.0
    """Seconds a permission request waits for a controller to attach when none is, before it is
    answered ``cancelled``."""
    context_window: int | None = None
    """The agent model's context window in tokens; ``usage_update`` is sent only when it is known."""
    allowed_origins: Sequence[str] = field(default_factory=tuple)
    allowed_hosts: Sequence[str] = field(default_factory=tuple)
    """``Host`` values accepted besides loopback names (``NAME`` or ``NAME:PORT``); see
    :attr:`~acp_bridge.transports.websocket_server.WebSocketServerConfig.allowed_hosts`."""
    insecure: bool = False
    max_message_bytes: int = 32 * 1024 * 1024
    ping_interval: float | None = 20.0
    outbox_limit: int = 8192
    """Messages a client may fall behind before the slow-client clock starts."""
    slow_client_grace: float = 5.0
    """Seconds a client may stay behind before it is disconnected with 1013."""
    outbox_max_bytes: int = 64 * 1024 * 1024
    """Bytes that may wait for one client before it is disconnected at once."""
    retain_days: float | None = None
    """Sessions not updated for this many days are deleted with their events (``None``: kept)."""
    retain_events_per_session: int | None = None
    """At most this many events kept per session, the newest (``None``: all)."""
    inspector: bool = True
    """Serve the read-only inspector at ``/inspect`` (same credentials as the endpoint)."""
    tune_gc: bool = False
    """Once started, freeze what startup allocated and collect the youngest generation less often
    (:func:`tune_gc`). Process-wide, so off for embedders; ``acp-bridge serve`` turns it on."""

    def bridge_config(self) -> BridgeConfig:
        """The ACP layer's part of these options (the fields both name alike)."""
        return _project(self, BridgeConfig)

    def load_tokens(self) -> tuple[TokenEntry, ...]:
        """The entries of :attr:`tokens_file` (none without one); ``TokenFileError`` if unusable."""
        return tuple(load_token_file(self.tokens_file)) if self.tokens_file else ()

    def websocket_config(self, tokens: tuple[TokenEntry, ...] = ()) -> WebSocketServerConfig:
        """The WebSocket endpoint's part of these options; a pong may take one ping interval."""
        return _project(
            self,
            WebSocketServerConfig,
            tokens=tokens,
            allowed_origins=tuple(self.allowed_origins),
            allowed_hosts=tuple(self.allowed_hosts),
            ping_timeout=self.ping_interval,
        )


_Config = TypeVar("_Config")


def _project(options: ServerOptions, config: type[_Config], **overrides: Any) -> _Config:
    """``config`` built from the fields of ``options`` it shares by name, then ``overrides``.

    One place decides which option reaches which layer, so a new option is a new field on both
    sides, not another line to copy.
    """
    shared = {f.name for f in fields(config)} & {f.name for f in fields(options)}  # type: ignore[arg-type]
    return config(**{**{name: getattr(options, name) for name in shared}, **overrides})


def backend_for(agent: str, *, dialect: str = "harn", replay_speed: float = 0.0) -> AgentBackend:
    """The backend ``--agent`` names (``demo``, ``exec:COMMAND``, ``replay:PATH``…).

    ``ValueError`` names the accepted forms when ``agent`` matches none.
    """
    return create_backend(agent, BackendOptions(dialect=dialect, replay_speed=replay_speed))


def _assemble(
    backend: AgentBackend, options: ServerOptions, log: EventLog, registry: SinkRegistry | None
) -> AcpBridge:
    """The ACP layer for ``backend`` on ``log``.

    By default the process-wide sink registry, so that ``acp_bridge.emit_event`` (Harn's
    process-wide emission) reaches the served sessions.
    """
    return AcpBridge(
        backend, log, registry=registry or default_registry, config=options.bridge_config()
    )


class BridgeServer:
    """A bridge serving one backend on a WebSocket endpoint."""

    def __init__(
        self,
        backend: AgentBackend,
        options: ServerOptions | None = None,
        *,
        log: EventLog | None = None,
        registry: SinkRegistry | None = None,
    ):
        """``registry``: a sink registry of its own instead of the process-wide one (several
        bridges in one process, e.g. two nodes of one Redis in a test)."""
        self.options = options or ServerOptions()
        # First: a bad tokens file is the user's mistake, reported before anything is opened.
        tokens = self.options.load_tokens()
        self.backend = backend
        self._owns_log = log is None
        self.log_spec = self.options.event_log or default_event_log_spec()
        self.log = log if log is not None else open_event_log(self.log_spec)
        self.bridge = _assemble(backend, self.options, self.log, registry)
        self.inspector = Inspector(self.bridge) if self.options.inspector else None
        self.websocket = WebSocketServer(
            self.options.websocket_config(tokens),
            self._handle,
            health=self.bridge.health,
            mounted=self.inspector,
        )
        self._stopped = False

    def _handle(self, transport: Transport, info: ConnectionInfo) -> Awaitable[None]:
        # Not a coroutine of its own: its frame would live as long as the connection.
        return self.bridge.handle_connection(
            transport, connection_id=info.connection_id, principal=info.principal
        )

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/acp`` (the real port once started)."""
        return self.websocket.url

    async def start(self) -> None:
        """Start the backend, then bind and start accepting connections."""
        try:
            await self.bridge.start()
        except BaseException:
            self._close_log()
            raise
        if self.inspector is not None:
            self.inspector.start()
        try:
            await self.websocket.start()
        except BaseException:
            if self.inspector is not None:
                self.inspector.stop()
            await self.bridge.shutdown()  # closes the started backend
            self._close_log()
            raise
        if self.options.tune_gc:
            tune_gc()

    def _close_log(self) -> None:
        if self._owns_log:
            _close_log(self.log)

    async def stop(self) -> None:
        """Graceful shutdown: stop accepting, cancel turns, flush the log, close sockets (1001)."""
        if self._stopped:
            return
        self._stopped = True
        # Nobody new may connect (and start a turn) while the running turns wind down.
        self.websocket.stop_accepting()
        try:
            await self.bridge.shutdown()
        finally:
            await self.websocket.close()
            if self.inspector is not None:
                self.inspector.stop()
            self._close_log()

    async def __aenter__(self) -> BridgeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def reload_tokens(self) -> bool:
        """Re-read the tokens file (SIGHUP); a bad file is logged and the current tokens stay.

        New connections get the new roles; open ones keep the role they connected with.
        """
        if not self.options.tokens_file:
            return False
        try:
            tokens = self.options.load_tokens()
        except ValueError as exc:
            logger.error("%s; keeping the previous tokens", exc)
            return False
        self.websocket.reload_tokens(tokens)
        return True

    async def serve_until_signalled(self) -> None:
        """Run until SIGINT or SIGTERM (or cancellation), then shut down gracefully; SIGHUP re-reads
        the tokens file."""
        stop = asyncio.Event()
        # Only with a tokens file: otherwise SIGHUP keeps its usual meaning (end the process).
        hangup = getattr(signal, "SIGHUP", None) if self.options.tokens_file else None
        try:
            with _on_stop_signals(stop.set), _on_signal(hangup, self.reload_tokens):
                await stop.wait()
        finally:
            await self.stop()


@contextlib.contextmanager
def _on_stop_signals(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` on SIGINT/SIGTERM while inside (where the loop supports signal handlers)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, callback)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


@contextlib.contextmanager
def _on_signal(sig: signal.Signals | None, callback: Callable[[], object]) -> Iterator[None]:
    """Call ``callback`` on ``sig`` while inside (where the loop supports signal handlers; ``None``
    installs nothing)."""
    loop = asyncio.get_running_loop()
    installed = False
    if sig is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, callback)
            installed = True
    try:
        yield
    finally:
        if installed and sig is not None:
            loop.remove_signal_handler(sig)


def _close_log(log: EventLog) -> None:
    try:
        log.close()
    except EventLogError as exc:
        # A latched write failure, already reported (healthz, flush errors); shutdown completes.
        logger.error("%s", exc)


async def serve(
    backend: AgentBackend,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    event_log: str | EventLog | None = None,
    profile: Profile | str = Profile.AUTO,
    token: str | None = None,
    **options: Any,
) -> None:
    """Serve ``backend`` over WebSocket until SIGINT/SIGTERM: the embedding entry point.

    ``event_log`` is a spec (``memory``, ``sqlite:PATH``), an open :class:`EventLog`, or ``None`` for
    the default SQLite file. Other keyword arguments are :class:`ServerOptions` fields.
    """
    log = event_log if isinstance(event_log, EventLog) else None
    spec = event_log if isinstance(event_log, str) else None
    server_options = ServerOptions(
        host=host, port=port, event_log=spec, profile=Profile(profile), token=token, **options
    )
    server = BridgeServer(backend, server_options, log=log)
    await server.start()
    logger.info("acp-bridge serving %s at %s", backend.name, server.url)
    await server.serve_until_signalled()


async def serve_stdio(backend: AgentBackend, options: ServerOptions | None = None) -> None:
    """Serve one ACP connection on stdin/stdout (NDJSON) until stdin closes or a signal arrives."""
    from acp_bridge.transports.stdio import open_stdio_transport

    options = options or ServerOptions()
    log = open_event_log(options.event_log or default_event_log_spec())
    bridge = _assemble(backend, options, log, None)
    try:
        await bridge.start()
    except BaseException:
        _close_log(log)
        raise
    try:
        transport = await open_stdio_transport(max_message_bytes=options.max_message_bytes)
    except BaseException:
        await bridge.shutdown()
        _close_log(log)
        raise
    connection = asyncio.create_task(bridge.handle_connection(transport))
    if options.tune_gc:
        tune_gc()
    stop = asyncio.Event()
    stopper = asyncio.create_task(stop.wait())
    try:
        with _on_stop_signals(stop.set):
            await asyncio.wait({connection, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        try:
            await bridge.shutdown()
        finally:
            connection.cancel()
            await asyncio.gather(connection, return_exceptions=True)
            _close_log(log)

"""``acp-bridge serve``: run an agent behind the bridge, on WebSocket ``/acp`` or on stdio."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import shlex
import shutil
import sys
from urllib.parse import urlsplit

from acp_bridge._version import __version__
from acp_bridge.agents.registry import available_backends
from acp_bridge.eventlog import EventLogError
from acp_bridge.rpc.transport import DEFAULT_EOF_GRACE
from acp_bridge.translate import Profile

__all__ = ["add_parser", "connect_command", "run_serve"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="serve an agent to ACP clients (WebSocket /acp, or --stdio)",
        description=(
            "Serve an agent over the Agent Client Protocol. By default: the demo agent, a SQLite event "
            "log in the user's data directory, ws://127.0.0.1:8765/acp and GET /healthz."
        ),
    )
    _add_serving_arguments(parser)
    _add_access_arguments(parser)
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="what goes to stderr (default info); debug also shows the traceback of a startup error",
    )
    parser.set_defaults(func=run_serve)


def _add_serving_arguments(parser: argparse.ArgumentParser) -> None:
    """Where it listens and what it serves: address, backend and its options, event log, profile."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="TCP port, 0-65535 (default 8765; 0 = any free port)"
    )
    parser.add_argument(
        "--agent",
        default="demo",
        metavar="NAME[:ARG]",
        help="the backend: " + ", ".join(available_backends().values()),
    )
    parser.add_argument(
        "--dialect",
        choices=["harn", "runtime"],
        default="harn",
        help="exec: the event vocabulary the child writes (default harn)",
    )
    parser.add_argument(
        "--replay-speed",
        type=float,
        default=0.0,
        metavar="X",
        help="replay: 0 = as fast as possible (default), 1 = recorded spacing, 2 = twice as fast",
    )
    parser.add_argument(
        "--event-log",
        metavar="SPEC",
        help="sqlite:PATH, memory, or redis://[:PASSWORD@]HOST:PORT/DB (rediss:// for TLS) for "
        "several nodes sharing sessions (default: sqlite in the user's data directory)",
    )
    parser.add_argument(
        "--profile",
        choices=[p.value for p in Profile],
        default="auto",
        help="wire contract: auto (harn for clients that advertise _meta.harn), harn or strict",
    )


def _add_access_arguments(parser: argparse.ArgumentParser) -> None:
    """Who may connect and how: token, origins, stdio instead of WebSocket, limits."""
    parser.add_argument(
        "--token",
        help="require this bearer token, for one controller (default: $ACP_BRIDGE_TOKEN)",
    )
    parser.add_argument(
        "--tokens",
        metavar="FILE",
        help="a TOML file of named tokens with roles (controller, observer); re-read on SIGHUP",
    )
    parser.add_argument(
        "--permission-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long a permission request waits for a controller to attach when none is, "
        "before it is answered cancelled (default 300)",
    )
    parser.add_argument(
        "--retain-days",
        type=float,
        metavar="DAYS",
        help="delete sessions (and their events) not updated for this many days (default: keep)",
    )
    parser.add_argument(
        "--retain-events-per-session",
        type=int,
        metavar="N",
        help="keep only the newest N events of each session (default: all)",
    )
    parser.add_argument(
        "--context-window",
        type=int,
        default=None,
        metavar="TOKENS",
        help="the agent model's context window; with it, token usage is sent as ACP usage_update "
        "(default: not sent, decision 0027)",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser Origin allowed to connect (repeatable); others get 403",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a Host header value allowed besides loopback names, NAME or NAME:PORT (repeatable); "
        "others get 421. Needed behind a proxy that forwards the public Host",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow listening on a non-loopback address without a token",
    )
    parser.add_argument(
        "--stdio", action="store_true", help="serve one client on stdin/stdout instead"
    )
    parser.add_argument(
        "--eof-grace",
        type=float,
        default=DEFAULT_EOF_GRACE,
        metavar="SECONDS",
        help="--stdio: when stdin ends, how long requests already read may take to be answered "
        f"before the bridge exits (default {DEFAULT_EOF_GRACE:g})",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=32 * 1024 * 1024,
        help="largest accepted message (default 32 MiB); bigger WebSocket frames close the socket with 1009",
    )
    parser.add_argument(
        "--slow-client-grace",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long a client may stay 8192 messages behind before it is disconnected with 1013 "
        "(default 5)",
    )
    parser.add_argument(
        "--no-inspector",
        dest="inspector",
        action="store_false",
        help="do not serve the read-only inspector page and API at /inspect",
    )


def _redact(spec: str) -> str:
    """``spec`` without the password a ``redis://`` URL may carry: the banner goes to logs."""
    scheme, sep, rest = spec.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return spec
    credentials, _, location = rest.partition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{location}"


def _banner(args: argparse.Namespace, url: str, log_spec: str, agent: str) -> str:
    http = url.replace("ws://", "http://", 1).rsplit("/", 1)[0]
    lines = [
        f"acp-bridge {__version__} serving the {agent} agent",
        f"  WebSocket:  {url}",
        f"  health:     {http}/healthz",
        *([f"  inspector:  {http}/inspect"] if args.inspector else []),
        f"  event log:  {_redact(log_spec)}",
        f"  profile:    {args.profile}",
        "",
        "Point an editor at it by running this as the agent command:",
        "  "
        + connect_command(
            url,
            token=args.token,
            token_from_env=getattr(args, "token_from_env", False),
            tokens_file=args.tokens,
        ),
        "(Zed: agent_servers in settings.json; JetBrains: ~/.jetbrains/acp.json — see docs/clients.md)",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def connect_command(
    url: str, *, token: str | None, token_from_env: bool = False, tokens_file: str | None = None
) -> str:
    """The ``connect`` command line for this server, safe to paste into a shell.

    The program is the running ``acp-bridge`` itself (after ``make serve`` it is
    ``.venv/bin/acp-bridge``, not on the PATH). A token given with ``--token`` is already on this
    command line, so it is printed, quoted. One that came from ``$ACP_BRIDGE_TOKEN`` is not copied
    into the terminal (or a log): ``connect`` reads the same variable. With a tokens file, a quoted
    placeholder marks where the user's own token goes. Nothing in the line expands to nothing when a
    variable is unset.
    """
    line = shlex.join([*_own_program(), "connect", url])
    if token and not token_from_env:
        return f"{line} --token {shlex.quote(token)}"
    if token:
        return f"{line}    # reads the token from $ACP_BRIDGE_TOKEN: export it first"
    if tokens_file:
        return f"{line} --token {shlex.quote(f'<a token from {tokens_file}>')}"
    return line


def _own_program() -> list[str]:
    """How to run this ``acp-bridge`` again: plain ``acp-bridge`` only if that is the one the
    ``PATH`` finds, else its absolute path, else ``python -m acp_bridge`` with this interpreter."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "acp-bridge":
        script = os.path.abspath(argv0)
    else:  # python -m acp_bridge: the console script installed beside this interpreter, if any
        script = os.path.join(os.path.dirname(sys.executable), "acp-bridge")
    on_path = shutil.which("acp-bridge")
    if not os.path.isfile(script):
        return ["acp-bridge"] if on_path else [sys.executable, "-m", "acp_bridge"]
    if on_path and os.path.realpath(on_path) == os.path.realpath(script):
        return ["acp-bridge"]
    return [script]


class _StartupError(Exception):
    """An operator mistake found while starting: reported as one line, exit 2."""


def _insecure_bind_message(host: str) -> str:
    return (
        f"refusing to listen on {host!r} without a token: anyone who can reach it could drive the "
        "agent. Set a token (--token or $ACP_BRIDGE_TOKEN), bind to 127.0.0.1, or pass --insecure "
        "(e.g. behind an authenticating proxy)"
    )


async def _serve(args: argparse.Namespace) -> int:
    from acp_bridge.app import BridgeServer, ServerOptions, backend_for, serve_stdio
    from acp_bridge.transports.websocket_server import InsecureBindError, is_loopback_host

    backend = backend_for(args.agent, dialect=args.dialect, replay_speed=args.replay_speed)
    options = ServerOptions(
        host=args.host,
        port=args.port,
        event_log=args.event_log,
        profile=Profile(args.profile),
        token=args.token,
        tokens_file=args.tokens,
        permission_timeout=args.permission_timeout,
        retain_days=args.retain_days,
        retain_events_per_session=args.retain_events_per_session,
        context_window=args.context_window,
        allowed_origins=tuple(args.allow_origin),
        allowed_hosts=tuple(args.allow_host),
        insecure=args.insecure,
        max_message_bytes=args.max_message_bytes,
        slow_client_grace=args.slow_client_grace,
        eof_grace=args.eof_grace,
        inspector=args.inspector,
        tune_gc=True,  # this process is ours: see ServerOptions.tune_gc
    )
    if args.stdio:
        await serve_stdio(backend, options)
        return 0
    server = BridgeServer(backend, options)  # a bad tokens file or event log: one line
    try:
        await server.start()
    except InsecureBindError:
        raise _StartupError(_insecure_bind_message(args.host)) from None
    except OSError as exc:
        raise _StartupError(
            f"cannot listen on {args.host}:{args.port}: {_os_error_text(exc)}"
        ) from exc
    if args.insecure and not is_loopback_host(args.host) and not (args.token or args.tokens):
        logging.getLogger("acp_bridge.cli").warning(
            "--insecure: listening on %s without a token; anyone who can reach this address can "
            "drive the agent",
            args.host,
        )
    print(_banner(args, server.url, server.log_spec, backend.name), file=sys.stderr, flush=True)
    await server.serve_until_signalled()
    return 0


def _os_error_text(exc: OSError) -> str:
    # "[Errno 98] error while attempting to bind on address ('127.0.0.1', 8765): address already
    # in use" says it twice; the strerror alone is the sentence, with a hint for the usual cases.
    hints = {
        errno.EADDRINUSE: "the port is in use (another acp-bridge? pick another --port, or 0)",
        errno.EACCES: "permission denied (ports below 1024 need privileges; pick another --port)",
        errno.EADDRNOTAVAIL: "this machine has no such address (check --host)",
    }
    return hints.get(exc.errno or 0) or exc.strerror or str(exc)


def _check_arguments(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise _StartupError(f"--port must be between 0 and 65535, not {args.port}")
    for option, value in (
        ("--eof-grace", args.eof_grace),
        ("--slow-client-grace", args.slow_client_grace),
        ("--replay-speed", args.replay_speed),
    ):
        if not value >= 0:  # also refuses NaN
            raise _StartupError(f"{option} must be 0 or more, not {value:g}")
    if args.max_message_bytes <= 0:
        raise _StartupError(
            f"--max-message-bytes must be a positive number of bytes, not {args.max_message_bytes}"
        )
    for origin in args.allow_origin:
        if not _is_origin(origin):
            raise _StartupError(
                f"--allow-origin {origin!r} is not an origin; expected SCHEME://HOST[:PORT] as a "
                "browser sends it, e.g. https://app.example.com"
            )


def _is_origin(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.path == ""
        and not parts.query
        and not parts.fragment
        and "@" not in parts.netloc
    )


def run_serve(args: argparse.Namespace) -> int:
    """Run the command; an operator mistake is one line on stderr and exit code 2."""
    if args.token is None:
        args.token = os.environ.get("ACP_BRIDGE_TOKEN") or None
        args.token_from_env = args.token is not None
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        stream=sys.stderr,  # stdout belongs to the protocol in --stdio mode
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        _check_arguments(args)
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 130
    except (_StartupError, ValueError, EventLogError, OSError, OverflowError) as exc:
        # A bad --agent/--event-log/--tokens, an event log in use or that cannot be created, an
        # address that cannot be bound: the operator's to fix, so one sentence and no traceback
        # (unless asked for).
        if args.log_level == "debug":
            logging.getLogger("acp_bridge.cli").debug("startup failed", exc_info=exc)
        print(f"acp-bridge: {_one_line(exc)}", file=sys.stderr, flush=True)
        return 2


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    return " ".join(str(exc).split()) or type(exc).__name__

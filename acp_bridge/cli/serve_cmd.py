"""``acp-bridge serve``: run an agent behind the bridge, on WebSocket ``/acp`` or on stdio."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from acp_bridge._version import __version__
from acp_bridge.agents.registry import available_backends
from acp_bridge.translate import Profile

__all__ = ["add_parser", "run_serve"]


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
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.set_defaults(func=run_serve)


def _add_serving_arguments(parser: argparse.ArgumentParser) -> None:
    """Where it listens and what it serves: address, backend and its options, event log, profile."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="TCP port (default 8765; 0 = any free port)"
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
        f"  event log:  {_redact(log_spec)}",
        f"  profile:    {args.profile}",
        "",
        "Point an editor at it by running this as the agent command:",
        f"  acp-bridge connect {url}"
        + (" --token $ACP_BRIDGE_TOKEN" if args.token or args.tokens else ""),
        "(Zed: agent_servers in settings.json; JetBrains: ~/.jetbrains/acp.json — see docs/clients.md)",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


async def _serve(args: argparse.Namespace) -> int:
    from acp_bridge.app import BridgeServer, ServerOptions, backend_for, serve_stdio
    from acp_bridge.transports.websocket_server import InsecureBindError

    backend = backend_for(args.agent, dialect=args.dialect, replay_speed=args.replay_speed)
    options = ServerOptions(
        host=args.host,
        port=args.port,
        event_log=args.event_log,
        profile=Profile(args.profile),
        token=args.token,
        tokens_file=args.tokens,
        permission_timeout=args.permission_timeout,
        allowed_origins=tuple(args.allow_origin),
        allowed_hosts=tuple(args.allow_host),
        insecure=args.insecure,
        max_message_bytes=args.max_message_bytes,
        slow_client_grace=args.slow_client_grace,
    )
    if args.stdio:
        await serve_stdio(backend, options)
        return 0
    server = BridgeServer(backend, options)  # a bad tokens file: ValueError, one line
    try:
        await server.start()
    except InsecureBindError as exc:
        print(f"acp-bridge: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"acp-bridge: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    print(_banner(args, server.url, server.log_spec, backend.name), file=sys.stderr, flush=True)
    await server.serve_until_signalled()
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Run the command."""
    if args.token is None:
        args.token = os.environ.get("ACP_BRIDGE_TOKEN") or None
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        stream=sys.stderr,  # stdout belongs to the protocol in --stdio mode
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return asyncio.run(_serve(args))
    except ValueError as exc:  # a bad --agent or --event-log
        print(f"acp-bridge: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

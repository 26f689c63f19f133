"""``acp-bridge connect URL``: relay an editor's stdio to a WebSocket ACP endpoint."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from acp_bridge.rpc.transport import DEFAULT_EOF_GRACE
from acp_bridge.transports.relay import TOKEN_ENV, run_relay

__all__ = ["DESCRIPTION", "add_parser", "add_relay_arguments", "run_connect"]

DESCRIPTION = (
    "Relay ACP between stdio (one JSON-RPC message per line) and a WebSocket endpoint; use it as "
    "the agent command of an editor that launches agents over stdio."
)
"""Help text of the command."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``connect`` subcommand."""
    parser = subparsers.add_parser(
        "connect",
        help="relay stdio (an editor's agent command) to a WebSocket ACP endpoint",
        description=(
            f"{DESCRIPTION} Exits 0 when stdin ends (once the requests sent so far are answered) "
            f"or the server closes normally, 1 (with one line on stderr) when the connection fails "
            f"or is lost or answers are missing. The token comes from --token or ${TOKEN_ENV}."
        ),
    )
    add_relay_arguments(parser)
    parser.set_defaults(func=run_connect)


def add_relay_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the relay's ``URL`` and ``--token`` arguments to ``parser``."""
    parser.add_argument(
        "url", metavar="URL", help="WebSocket endpoint, e.g. ws://127.0.0.1:8765/acp"
    )
    parser.add_argument(
        "--token",
        help=f"bearer token (default: ${TOKEN_ENV}); prefer the variable, arguments are visible to "
        "other local users",
    )
    parser.add_argument(
        "--eof-grace",
        type=float,
        default=DEFAULT_EOF_GRACE,
        metavar="SECONDS",
        help="when stdin ends, how long to wait for the answers to the requests already sent "
        f"(default {DEFAULT_EOF_GRACE:g}; 0 = leave at once); then exit, 1 if some are missing",
    )


def run_connect(args: argparse.Namespace) -> int:
    """Run the relay on the process's stdin/stdout; returns the exit code."""
    # stdout carries ACP messages only; every diagnostic goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    if not args.eof_grace >= 0:
        print(
            f"acp-bridge connect: --eof-grace must be 0 or more seconds, not {args.eof_grace}",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(run_relay(args.url, token=args.token, eof_grace=args.eof_grace))
    except KeyboardInterrupt:
        return 130

"""``acp-bridge connect URL``: relay an editor's stdio to a WebSocket ACP endpoint."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

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
            f"{DESCRIPTION} Exits 0 when stdin ends or the server closes normally, 1 (with one "
            f"line on stderr) when the connection fails or is lost. The token comes from --token "
            f"or ${TOKEN_ENV}."
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


def run_connect(args: argparse.Namespace) -> int:
    """Run the relay on the process's stdin/stdout; returns the exit code."""
    # stdout carries ACP messages only; every diagnostic goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    try:
        return asyncio.run(run_relay(args.url, token=args.token))
    except KeyboardInterrupt:
        return 130

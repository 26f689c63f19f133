"""``acp-bridge connect URL``: relay an editor's stdio to a WebSocket ACP endpoint."""

from __future__ import annotations

import argparse

from acp_bridge.transports.relay import DESCRIPTION, TOKEN_ENV, add_relay_arguments, run_command

__all__ = ["add_parser", "run_connect"]


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
    parser.set_defaults(func=lambda args: run_connect(args))


def run_connect(args: argparse.Namespace) -> int:
    """Run the relay on the process's stdin/stdout; returns the exit code."""
    return run_command(args)

"""Entry point of the ``acp-bridge`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from acp_bridge._version import __version__

from . import connect_cmd, log_cmd, serve_cmd, translate_cmd

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="acp-bridge",
        description="Serve agent runtimes to IDE clients over the Agent Client Protocol (ACP).",
    )
    parser.add_argument("--version", action="version", version=f"acp-bridge {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    serve_cmd.add_parser(subparsers)
    connect_cmd.add_parser(subparsers)
    translate_cmd.add_parser(subparsers)
    log_cmd.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``acp-bridge``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

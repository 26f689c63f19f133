"""``acp-bridge translate``: AgentEvent JSON lines on stdin → JSON-RPC lines on stdout."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import BinaryIO

from acp_bridge.events import EventDecodeError, parse_event
from acp_bridge.events.runtime import parse_runtime_event
from acp_bridge.translate import Message, Profile, encode_message, translate
from acp_bridge.translate.runtime import RuntimeTranslator, UnmappedRunError

__all__ = ["add_parser", "run_translate"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``translate`` subcommand."""
    parser = subparsers.add_parser(
        "translate",
        help="translate agent event JSON lines (stdin) into ACP JSON-RPC lines (stdout)",
        description=(
            "Reads one agent event per line on stdin (bare events or persisted envelopes) and writes "
            "each resulting JSON-RPC message as one compact JSON line on stdout, flushing per input "
            "line. Bad lines are reported on stderr with their line number; the rest are still "
            "processed, and the exit code is 1 if any line was bad."
        ),
    )
    parser.add_argument(
        "--dialect",
        choices=["harn", "runtime"],
        default="harn",
        help="the event vocabulary on stdin: Harn AgentEvent JSON (default) or the run-style "
        "runtime events (keyed by run_id)",
    )
    parser.add_argument(
        "--profile",
        choices=["harn", "strict"],
        default="strict",
        help="wire contract: Harn's exact output, or strictly valid ACP v1 (default)",
    )
    parser.add_argument("--replay", action="store_true", help="mark the output as replayed history")
    parser.add_argument(
        "--session-id", help="ACP session for runtime events that carry none (runtime dialect)"
    )
    parser.set_defaults(func=lambda args: run_translate(args))


def _translator(args: argparse.Namespace) -> Callable[[bytes], list[Message]]:
    profile = Profile(args.profile)
    if args.dialect == "runtime":
        runtime = RuntimeTranslator(session_id=args.session_id)
        return lambda line: (
            runtime.translate(parse_runtime_event(line), replay=args.replay).messages
        )
    return lambda line: translate(parse_event(line), profile=profile, replay=args.replay)


def translate_lines(
    lines: Iterable[bytes],
    out: BinaryIO,
    err: BinaryIO,
    args: argparse.Namespace,
) -> int:
    """Translate ``lines``; returns the number of bad lines."""
    profile = Profile(args.profile)
    convert = _translator(args)
    bad = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            messages = convert(line)
        except (EventDecodeError, UnmappedRunError) as exc:
            bad += 1
            err.write(f"line {lineno}: {exc}\n".encode())
            err.flush()
            continue
        if messages:
            out.write(b"".join(encode_message(m, profile) + b"\n" for m in messages))
            out.flush()
    return bad


def run_translate(args: argparse.Namespace) -> int:
    """Run the command on the process's stdin/stdout/stderr."""
    try:
        bad = translate_lines(sys.stdin.buffer, sys.stdout.buffer, sys.stderr.buffer, args)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours.
        return 0
    return 1 if bad else 0

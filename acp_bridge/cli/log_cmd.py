"""``acp-bridge log stats|compact``: look after the event log file a bridge writes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from acp_bridge.app import default_event_log_spec
from acp_bridge.eventlog import EventLogError
from acp_bridge.eventlog.sqlite_maintenance import compact_sqlite, sqlite_stats

__all__ = ["add_parser", "sqlite_path_of"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``log`` subcommand and its actions."""
    parser = subparsers.add_parser(
        "log",
        help="show what the event log holds, or give its free space back",
        description=(
            "stats: sizes, entries per topic and bytes per entry (safe while a bridge runs). "
            "compact: rewrite the file without its free space (only while no bridge uses it)."
        ),
    )
    parser.add_argument("action", choices=["stats", "compact"])
    parser.add_argument(
        "--event-log",
        metavar="SPEC",
        help="sqlite:PATH (default: the one `acp-bridge serve` uses by default)",
    )
    parser.add_argument(
        "--top", type=int, default=10, metavar="N", help="stats: list the N largest topics"
    )
    parser.set_defaults(func=run_log)


def sqlite_path_of(spec: str) -> Path:
    """The file of a ``sqlite:PATH[?options]`` event-log spec.

    Raises:
        ValueError: for any other spec.
    """
    scheme, _, rest = spec.partition(":")
    location = rest.partition("?")[0]
    if scheme != "sqlite" or not location:
        raise ValueError(f"only a sqlite:PATH event log has a file to look after, not {spec!r}")
    return Path(location).expanduser()


def run_log(args: argparse.Namespace) -> int:
    """Run ``acp-bridge log``; errors are one line on stderr and exit code 2."""
    try:
        path = sqlite_path_of(args.event_log or default_event_log_spec())
        if args.action == "stats":
            print(sqlite_stats(path).render(top=args.top))
        else:
            before, after = compact_sqlite(path)
            print(f"compacted {path}: {before:,} -> {after:,} bytes")
    except (ValueError, EventLogError) as exc:
        print(f"acp-bridge log: {exc}", file=sys.stderr)
        return 2
    return 0

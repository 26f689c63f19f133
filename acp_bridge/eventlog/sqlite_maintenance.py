"""Looking after a SQLite event log file: what it holds (:func:`sqlite_stats`) and giving freed space
back to the file system (:func:`compact_sqlite`).

Statistics are read through a read-only connection, so they can be taken while a bridge writes the
file (WAL readers don't block the writer). Compaction rewrites the file, so it takes the same
exclusive lock a bridge holds: it refuses to run beside one.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from ._sqlite_rows import EVENT_ID_BITS, SCHEMA_VERSION
from .base import EventLogError
from .sqlite import acquire_writer_lock, release_writer_lock

__all__ = ["LogStats", "TopicStats", "compact_sqlite", "sqlite_stats"]


@dataclass(frozen=True, slots=True)
class TopicStats:
    """One topic: how many entries it holds and the range of their ids."""

    name: str
    entries: int
    first_id: int | None
    last_id: int


@dataclass(frozen=True, slots=True)
class LogStats:
    """What a SQLite event log file holds and what it costs on disk."""

    path: str
    file_bytes: int
    wal_bytes: int
    page_size: int
    pages: int
    free_pages: int
    entries: int
    topics: list[TopicStats] = field(default_factory=list)

    @property
    def bytes_per_entry(self) -> float | None:
        """File bytes (without the WAL and free pages) per stored entry."""
        if not self.entries:
            return None
        return (self.pages - self.free_pages) * self.page_size / self.entries

    def render(self, top: int = 10) -> str:
        """A few lines for an operator."""
        per = self.bytes_per_entry
        lines = [
            f"event log:   {self.path}",
            f"size:        {self.file_bytes:,} bytes (+ {self.wal_bytes:,} in the WAL),"
            f" {self.free_pages * self.page_size:,} reclaimable by `acp-bridge log compact`",
            f"entries:     {self.entries:,} in {len(self.topics):,} topics"
            + ("" if per is None else f", {per:.0f} bytes each"),
        ]
        if self.topics:
            lines.append("largest topics:")
            for topic in sorted(self.topics, key=lambda t: t.entries, reverse=True)[:top]:
                span = (
                    "empty" if topic.first_id is None else f"ids {topic.first_id}-{topic.last_id}"
                )
                lines.append(f"  {topic.entries:>10,}  {topic.name}  ({span})")
        return "\n".join(lines)


def sqlite_stats(path: str | os.PathLike[str]) -> LogStats:
    """Read the statistics of the event log file at ``path`` without changing it.

    Raises:
        EventLogError: if the file is missing, not an event log, or of another schema version.
    """
    location = Path(path)
    if not location.is_file():
        raise EventLogError(f"no event log at {location}")
    try:
        conn = sqlite3.connect(f"{location.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise EventLogError(f"cannot open event log {location}: {exc}") from exc
    with closing(conn):
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise EventLogError(
                    f"{location}: event log schema version {version}; this version reads"
                    f" {SCHEMA_VERSION} (a bridge upgrades older files when it opens them)"
                )
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            counts = {
                topic_id: (count, first)
                for topic_id, count, first in conn.execute(
                    f"SELECT event_key >> {EVENT_ID_BITS}, count(*),"
                    f" min(event_key) & {(1 << EVENT_ID_BITS) - 1}"
                    f" FROM events GROUP BY event_key >> {EVENT_ID_BITS}"
                )
            }
            topics = [
                TopicStats(name, *counts.get(topic_id, (0, None)), last_id)
                for topic_id, name, last_id in conn.execute(
                    "SELECT topic_id, name, last_id FROM topics"
                )
            ]
        except sqlite3.Error as exc:
            raise EventLogError(f"{location}: not a readable event log: {exc}") from exc
    wal = Path(f"{location}-wal")
    return LogStats(
        path=str(location),
        file_bytes=location.stat().st_size,
        wal_bytes=wal.stat().st_size if wal.exists() else 0,
        page_size=page_size,
        pages=pages,
        free_pages=free,
        entries=sum(t.entries for t in topics),
        topics=topics,
    )


def compact_sqlite(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Rewrite the event log file at ``path`` without its free space; return (bytes before, after).

    Raises:
        EventLogError: if a bridge has the file open, or it can't be rewritten.
    """
    location = str(path)
    before = sqlite_stats(location)  # checks it is an event log of this version
    fd = acquire_writer_lock(location)
    try:
        with closing(sqlite3.connect(location, isolation_level=None)) as conn:
            # Also switches older files to incremental vacuum, so retention gives pages back.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        raise EventLogError(f"cannot compact event log {location}: {exc}") from exc
    finally:
        release_writer_lock(fd)
    return before.file_bytes + before.wal_bytes, sqlite_stats(location).file_bytes

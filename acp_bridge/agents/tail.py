"""The tail backend: live Harn runtimes watched through their JSONL logs (``--agent tail:DIR``).

A runtime started with ``HARN_EVENT_LOG_DIR=DIR`` writes each session's events to
``DIR/event_log-<session id>.jsonl`` (rotated to ``event_log-<session id>-000001.jsonl``…). This
backend mirrors every such log as a bridge session of the same id, so any ACP client can list the
runtime's sessions, load one (the bridge replays it from its own event log) and follow it live.

**Sessions.** Each base log becomes the session named by its file name, opened through
:meth:`~acp_bridge.agents.base.BackendHost.open_session` with ``cwd`` = DIR (absolute) and the title
``"<session id> (live, read-only)"``; a new log appearing in DIR becomes a new session. A name like
``event_log-abc-000002.jsonl`` is a rotation of ``abc`` when ``event_log-abc.jsonl`` exists or
``abc`` is already followed, otherwise the log of a session called ``abc-000002``. Events keep their
content; their ``session_id`` is set to the session's (a runtime may log under another id). The
sessions are read-only: a prompt fails with :class:`~acp_bridge.agents.base.SessionReadOnly`
(JSON-RPC -32600) and a sentence saying why. A session a client closes is no longer followed.

**Restarts.** The bridge's event log already holds what an earlier run forwarded, so a session's
first ``host.logged_event_count(id)`` events are skipped while catching up with its files. The skip
only covers what the files held when they were first read to the end: if the bridge's log holds
more events than that (the log was rewritten, or the bridge logged events of its own into the
session), everything written after that point is still forwarded.

**Watching** is a polling loop in one asyncio task (portable, no inotify): every ``poll_interval``
seconds each followed file is checked with ``stat`` and read from where the last read stopped, at
most ``read_chunk_bytes`` per file per round (a runtime writing a lot cannot starve the others or
the bridge). A partially written last line is held back until its newline arrives. When the next
rotated file exists, the current one is read to its end and the follower moves on; an incomplete
last line left in a rotated-away file is reported as a bad line. The directory is listed again when
its modification time changes, and at least once a second. :meth:`TailBackend.sync` waits for a
full round.

**Truncation, replacement, disappearance.** Nothing already forwarded is ever retracted. A file that
shrinks below what was read, is replaced by a new file (new inode), or whose first line changed, was
rewritten (a runtime that reopens a session truncates its log): it is read again from its start and
those events are forwarded as new events of the same session. The same holds for a base log that
changes after the follower moved on to its rotations: the session restarted, and following starts
again at the base log; rotated files older than the file before them are leftovers of the earlier
run and are only read once the runtime has written them again. A file that disappears stops being
read (its session stays, with its history); if the next rotated file exists the follower moves on
to it, and if the file comes back it is read from its start. A missing DIR is waited for.
Undecodable lines are logged with file and line number and skipped; a line over
``max_line_bytes`` is skipped without being held in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from acp_bridge.agents.base import (
    BackendHost,
    BackendOptions,
    BaseBackend,
    SessionContext,
    SessionReadOnly,
    StopReason,
)
from acp_bridge.events.errors import EventDecodeError
from acp_bridge.sinks.jsonl import rotated_path

from ._jsonl_files import (
    DEFAULT_MAX_LINE_BYTES,
    LOG_SUFFIX,
    BadLineReporter,
    FileFollower,
    FollowResult,
    decode_line,
    parse_log_name,
    session_log_name,
)

__all__ = ["TailBackend", "create_backend"]

logger = logging.getLogger(__name__)

DEFAULT_READ_CHUNK_BYTES: Final = 64 * 1024
"""Bytes read from one file per round (a few hundred events: the loop is never held for long)."""
MAX_ROTATIONS_PER_STEP: Final = 16
"""Rotated files one follower may move through in one round (each read is still one chunk)."""
RESCAN_SECONDS: Final = 1.0
"""Longest time between two listings of DIR (its mtime may be too coarse to show every new file)."""


class _Outcome(enum.Enum):
    """What one read of a follower's current file led to."""

    IDLE = "idle"
    """Nothing more to read for now."""
    MORE = "more"
    """The chunk limit was reached: more is waiting."""
    ADVANCED = "advanced"
    """The file is complete and the follower moved on to the next rotated file."""


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    """What identifies a finished file's content: device, inode, size, mtime; ``None`` if missing."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


@dataclass(eq=False)
class _Follower:
    """One session's chain of log files, and how far it has been read and forwarded."""

    session_id: str
    base: Path
    ctx: SessionContext
    skip: int
    """Events still to skip: already in the bridge's log from an earlier run."""
    reader: FileFollower
    rotation: int = 0
    catching_up: bool = True
    closed: bool = False
    base_signature: tuple[int, int, int, int] | None = None
    """The base log as it was when the follower moved past it (to notice a restarted session)."""
    missing_logged: bool = False
    bad: BadLineReporter = field(default_factory=lambda: BadLineReporter(logger))

    @property
    def path(self) -> Path:
        """The file being read."""
        return rotated_path(self.base, self.rotation)


class TailBackend(BaseBackend):
    """Mirrors the Harn JSONL logs of a directory as read-only live sessions (module docstring)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        poll_interval: float = 0.1,
        read_chunk_bytes: int = DEFAULT_READ_CHUNK_BYTES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        if not (math.isfinite(poll_interval) and poll_interval > 0):
            raise ValueError(f"poll_interval must be a positive number, got {poll_interval!r}")
        super().__init__(name="tail")
        self.directory = Path(directory).expanduser().absolute()
        self.poll_interval = poll_interval
        self.read_chunk_bytes = max(1, read_chunk_bytes)
        self.max_line_bytes = max_line_bytes
        self._host: BackendHost | None = None
        self._followers: dict[str, _Follower] = {}
        self._ignored: set[str] = set()
        self._misnamed: set[str] = set()
        """``.jsonl`` files in the directory that are not Harn log names (each reported once)."""
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._rounds = asyncio.Condition()
        self._rounds_started = 0
        self._last_idle_round = 0
        self._dir_mtime: int | None = None
        self._last_scan = -math.inf
        self._force_scan = True
        self._dir_missing_logged = False

    # --- what is followed ------------------------------------------------------------------------

    def followed(self) -> Mapping[str, Path]:
        """``{session id: base log path}`` of every followed session."""
        return {sid: f.base for sid, f in self._followers.items() if not f.closed}

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self, host: BackendHost) -> None:
        """Open a session per log in DIR, catch up with what the logs hold, then follow them.

        Returns once every existing log has been read to its end, so a client that connects next
        already finds the complete history; the following continues in a background task.
        """
        if self._task is not None:
            raise RuntimeError("the tail backend was already started")
        self._host = host
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(f"tail: {self.directory} is not a directory")
        while await self._round():
            pass
        self._task = asyncio.create_task(self._run(), name=f"tail {self.directory}")

    async def aclose(self) -> None:
        """Stop following (bounded: the loop only stops at an ``await``, between bounded reads)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            async with self._rounds:
                self._rounds.notify_all()  # a sync() still waiting gives up

    async def sync(self) -> None:
        """Return after a polling round that started after this call and found nothing left to read.

        Every complete line written before the call has then been forwarded, and every log file
        created before it is followed. (With a runtime that keeps writing faster than the bridge
        reads, this waits until the bridge catches up: bound it with a timeout.)
        """
        if self._task is None or self._task.done():
            raise RuntimeError("the tail backend is not running")
        self._force_scan = True
        async with self._rounds:
            target = self._rounds_started + 1
            self._wake.set()
            await self._rounds.wait_for(
                lambda: self._last_idle_round >= target or self._task is None
            )
        if self._task is None:
            raise RuntimeError("the tail backend was closed")

    async def _run(self) -> None:
        while True:
            try:
                busy = await self._round()
            except Exception:  # a bug or an odd file must not stop the following for good
                logger.exception("tail %s: polling round failed", self.directory)
                busy = False
            if busy:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            self._wake.clear()

    async def _round(self) -> bool:
        """One polling round; True if some file had more to read than one chunk."""
        self._rounds_started += 1
        number = self._rounds_started
        busy = False
        try:
            self._scan_if_due()
            for follower in list(self._followers.values()):
                if follower.closed:
                    continue
                busy |= self._step(follower)
                # Let the bridge deliver what was just emitted before reading the next file.
                await asyncio.sleep(0)
            return busy
        finally:
            if not busy:
                self._last_idle_round = number
            async with self._rounds:
                self._rounds.notify_all()

    # --- the directory -------------------------------------------------------------------------------

    def _scan_if_due(self) -> None:
        now = time.monotonic()
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except OSError:
            if not self._dir_missing_logged:
                logger.warning("tail: %s does not exist (yet); waiting for it", self.directory)
                self._dir_missing_logged = True
            return
        if self._dir_missing_logged:
            logger.info("tail: %s appeared", self.directory)
            self._dir_missing_logged = False
        if (
            not self._force_scan
            and mtime == self._dir_mtime
            and now - self._last_scan < RESCAN_SECONDS
        ):
            return
        self._force_scan = False
        self._dir_mtime = mtime
        self._last_scan = now
        try:
            with os.scandir(self.directory) as entries:
                names = {entry.name for entry in entries if entry.is_file()}
        except OSError as exc:
            logger.warning("tail: cannot list %s: %s", self.directory, exc)
            return
        for name in sorted(names):
            parsed = parse_log_name(name)
            if parsed is None:
                self._report_misnamed(name)
                continue
            if parsed.rotation_of is not None:
                owner = parsed.rotation_of[0]
                if owner in self._followers or session_log_name(owner) in names:
                    continue  # read through its base log's follower
            sid = parsed.session_id
            if sid not in self._followers and sid not in self._ignored:
                self._follow(sid, self.directory / name)

    def _report_misnamed(self, name: str) -> None:
        # A JSONL file here is most likely a log the user expects to see; say why it is not
        # followed. Other files (locks, notes) are nobody's business.
        if not name.endswith(LOG_SUFFIX) or name in self._misnamed:
            return
        self._misnamed.add(name)
        logger.warning(
            "tail: not following %s: only files named %s are session logs",
            self.directory / name,
            session_log_name("<session id>"),
        )

    def _follow(self, session_id: str, base: Path) -> None:
        host = self._host
        assert host is not None
        try:
            ctx = host.open_session(
                session_id, cwd=str(self.directory), title=f"{session_id} (live, read-only)"
            )
        except ValueError as exc:  # e.g. a client closed this session in an earlier run
            logger.warning("tail: not following %s: %s", base, exc)
            self._ignored.add(session_id)
            return
        skip = host.logged_event_count(session_id)
        self._followers[session_id] = _Follower(
            session_id,
            base,
            ctx,
            skip,
            FileFollower(base, max_line_bytes=self.max_line_bytes),
        )
        logger.info(
            "tail: following %s as session %s (%d event(s) already logged)", base, session_id, skip
        )

    # --- one session's files ---------------------------------------------------------------------------

    def _step(self, follower: _Follower) -> bool:
        """Read and forward ``follower``'s new lines, one chunk per file; True if more is waiting.

        Moving on to the next rotated file continues in the same step (a bounded number of times),
        so a round that finds nothing more to read has read every file of the chain.
        """
        for _ in range(MAX_ROTATIONS_PER_STEP):
            outcome = self._read_once(follower)
            if outcome is not _Outcome.ADVANCED:
                return outcome is _Outcome.MORE
        return True

    def _read_once(self, follower: _Follower) -> _Outcome:
        """Read and forward one chunk of ``follower``'s current file."""
        if follower.rotation > 0 and self._base_restarted(follower):
            logger.warning(
                "tail: %s was rewritten: the session restarted; reading it again from the start",
                follower.base,
            )
            follower.rotation = 0
            follower.base_signature = None
            follower.reader = FileFollower(follower.base, max_line_bytes=self.max_line_bytes)
        path = follower.path
        # Looked at before reading: once the next file exists, the current one is complete, so a
        # read that then reaches its end has everything.
        next_exists = self._next_ready(follower)
        try:
            result = follower.reader.read(self.read_chunk_bytes)
        except OSError as exc:
            logger.warning("tail: cannot read %s: %s", path, exc)
            return _Outcome.IDLE
        if result.rewritten:
            logger.warning(
                "tail: %s was truncated or replaced; forwarding its content again from the start",
                path,
            )
        self._forward(follower, result)
        if result.missing:
            if next_exists:
                logger.warning("tail: %s disappeared; continuing with the next rotated file", path)
                self._advance(follower)
                return _Outcome.ADVANCED
            if not follower.missing_logged:
                logger.warning("tail: %s disappeared; waiting for it to come back", path)
                follower.missing_logged = True
            return _Outcome.IDLE
        follower.missing_logged = False
        if not result.at_end:
            return _Outcome.MORE
        if next_exists:
            rest = follower.reader.finish()
            if rest.strip():
                follower.bad.report(
                    path, follower.reader.line_number + 1, "incomplete last line of a rotated file"
                )
            self._advance(follower)
            return _Outcome.ADVANCED
        if follower.catching_up:
            follower.catching_up = False
            if follower.skip:
                logger.warning(
                    "tail: the bridge's log holds %d more event(s) of session %s than %s; "
                    "forwarding everything written from now on",
                    follower.skip,
                    follower.session_id,
                    follower.base.name,
                )
                follower.skip = 0
        follower.bad.summary()
        return _Outcome.IDLE

    @staticmethod
    def _next_ready(follower: _Follower) -> bool:
        """True if the next rotated file exists and was written after the current one.

        A writer creates the next file after its last write to the current one. A rotated file
        older than the current file is left over from before the session restarted: the writer
        will truncate it when it gets there, and reading it now would forward stale events.
        """
        try:
            following = os.stat(rotated_path(follower.base, follower.rotation + 1))
        except OSError:
            return False
        try:
            current = os.stat(follower.path)
        except OSError:
            return True
        return following.st_mtime_ns >= current.st_mtime_ns

    def _advance(self, follower: _Follower) -> None:
        if follower.rotation == 0:
            follower.base_signature = _signature(follower.base)
        follower.rotation += 1
        follower.reader = FileFollower(follower.path, max_line_bytes=self.max_line_bytes)

    def _base_restarted(self, follower: _Follower) -> bool:
        current = _signature(follower.base)
        # A base log that was deleted (cleanup of old logs) is no restart; one that changed is.
        return current is not None and current != follower.base_signature

    def _forward(self, follower: _Follower, result: FollowResult) -> None:
        for number, length in result.dropped:
            follower.bad.report(
                follower.path, number, f"line of {length} bytes exceeds {self.max_line_bytes}"
            )
        for line in result.lines:
            try:
                record = decode_line(line.data, session_id=follower.session_id)
            except EventDecodeError as exc:
                follower.bad.report(line.path, line.number, exc)
                continue
            if follower.skip:
                follower.skip -= 1
                continue
            if follower.closed:
                return
            follower.ctx.emit(record.event)

    # --- sessions ---------------------------------------------------------------------------------------

    def read_only_reason(self, ctx: SessionContext) -> str:
        """Every session is read-only: a mirrored one belongs to the runtime writing its log.

        The bridge refuses the prompt with this sentence before recording anything, so the session's
        history (and :meth:`BackendHost.logged_event_count`) holds only the runtime's events.
        """
        follower = self._followers.get(ctx.session_id)
        if follower is not None:
            return (
                f"This session is read-only: it mirrors the live Harn log {follower.base.name} "
                f"in {self.directory}; send prompts to the runtime that writes it."
            )
        return (
            f"This bridge only mirrors the Harn logs in {self.directory} and cannot run prompts; "
            "load one of the listed sessions to follow it."
        )

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        """Refused (the bridge normally refuses earlier, through :meth:`read_only_reason`)."""
        raise SessionReadOnly(self.read_only_reason(ctx))

    async def close_session(self, ctx: SessionContext) -> None:
        """A client closed a mirrored session: stop forwarding its log."""
        follower = self._followers.get(ctx.session_id)
        if follower is not None:
            follower.closed = True
            logger.info(
                "tail: session %s closed; no longer following %s", ctx.session_id, follower.base
            )


def create_backend(arg: str | None, options: BackendOptions | None = None) -> TailBackend:
    """``--agent tail:DIR``."""
    if not arg:
        raise ValueError(
            "tail needs a directory: --agent tail:DIR (a runtime's HARN_EVENT_LOG_DIR)"
        )
    directory = Path(arg).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"tail: {directory} is not a directory")
    return TailBackend(directory)

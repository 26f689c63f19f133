"""The replay backend: a recorded Harn event log played back as an agent (``--agent replay:PATH``).

PATH is a JSONL event log in the format of :class:`~acp_bridge.sinks.jsonl.JsonlEventSink` (Harn's
``HARN_EVENT_LOG_DIR`` files, or the bridge's own); its rotated files ``<stem>-000001.<ext>``… are
read after it, in order. Every replayed event gets the ACP session's id.

**One recorded turn per prompt.** A recording of a conversation holds the user's prompts as
``user_message`` events; each one starts a recorded turn. The n-th prompt of a session replays the
n-th recorded turn, whatever the prompt says, so a demo can be driven prompt by prompt and always
unfolds the same way. Events before the first ``user_message`` belong to the first turn; a
recording without any ``user_message`` is one turn. Not replayed: the recorded ``user_message``
events themselves (the bridge already shows the live prompt, a second user message in the middle
of the answer would read as a duplicate) and ``session_closed`` (the live session is not closed).
A cancelled prompt still uses up its turn. Once every turn has been played, a prompt answers with one
short message saying so (a new session starts again from the first turn). Turn positions are kept per
session in memory: after a bridge restart a loaded session starts again from the first turn.

**Pacing.** ``speed=0`` emits as fast as the bridge takes the events; ``speed=1`` reproduces the
recorded spacing (from ``emitted_at_ms``) within a turn, ``2`` twice as fast, and so on. Lines without
a usable timestamp (bare events, ``0`` for Harn's clock errors) are not paced. The turn stops between
events as soon as it is cancelled.

**Streaming.** The recording is never loaded: on the first prompt one pass finds where each turn
starts (kept: one file position per turn), then each prompt streams its turn's lines from disk.
The positions are rebuilt if the files change. Bad lines are logged with file and line number and
skipped.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from acp_bridge.agents.base import (
    BackendError,
    BackendOptions,
    BaseBackend,
    PromptCapabilities,
    SessionContext,
    StopReason,
)
from acp_bridge.events.errors import EventDecodeError
from acp_bridge.events.harn import AgentMessageChunk, SessionClosed, UserMessage

from ._jsonl_files import BadLineReporter, Line, decode_line, iter_lines, rotation_files

__all__ = ["ReplayBackend", "create_backend"]

logger = logging.getLogger(__name__)

_TURN_MARKER: Final = UserMessage.EVENT_TYPE
_NOT_REPLAYED: Final = frozenset({UserMessage.EVENT_TYPE, SessionClosed.EVENT_TYPE})
_MARKER_BYTES: Final = _TURN_MARKER.encode()
YIELD_SECONDS: Final = 0.002
"""Longest stretch a full-speed replay keeps the event loop to itself."""


@dataclass(frozen=True, slots=True)
class _Position:
    """Where a turn starts: a file of the rotation chain, a byte offset in it, and its line number."""

    file: int
    offset: int
    line: int


@dataclass(frozen=True, slots=True)
class _TurnIndex:
    """Where each recorded turn starts; built by one pass over the files."""

    files: tuple[Path, ...]
    signature: tuple[tuple[int, int], ...]
    """``(size, mtime_ns)`` of each file when indexed; a change means the index is stale."""
    starts: tuple[_Position, ...]
    lines: int
    """Non-blank lines in the recording (0: nothing to replay)."""

    @property
    def turns(self) -> int:
        """How many recorded turns there are."""
        return len(self.starts) if self.lines else 0

    def span(self, turn: int) -> tuple[_Position, _Position | None]:
        """The positions turn ``turn`` runs from and up to (``None``: the end of the recording)."""
        end = self.starts[turn + 1] if turn + 1 < len(self.starts) else None
        return self.starts[turn], end


def _signature(files: tuple[Path, ...] | list[Path]) -> tuple[tuple[int, int], ...]:
    result = []
    for path in files:
        stat = os.stat(path)
        result.append((stat.st_size, stat.st_mtime_ns))
    return tuple(result)


def _is_turn_marker(data: bytes) -> bool:
    """True for a ``user_message`` line (cheap substring test first: most lines are not)."""
    if _MARKER_BYTES not in data:
        return False
    try:
        obj: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False  # reported as a bad line when its turn is replayed
    return isinstance(obj, dict) and obj.get("type") == _TURN_MARKER


def _build_index(base: Path) -> _TurnIndex:
    """One pass over the recording: the start of every turn (runs in a worker thread)."""
    if not base.is_file():
        raise BackendError(f"the recording {base} does not exist (or is not a file)")
    files = tuple(rotation_files(base))
    signature = _signature(files)
    starts = [_Position(0, 0, 1)]
    lines = 0
    seen_marker = False
    for number, path in enumerate(files):
        for line in iter_lines(path):
            lines += 1
            if _is_turn_marker(line.data):
                # The first prompt's turn also takes whatever came before it.
                if seen_marker:
                    starts.append(_Position(number, line.offset, line.number))
                seen_marker = True
    return _TurnIndex(files, signature, tuple(starts), lines)


class ReplayBackend(BaseBackend):
    """Replays a recorded Harn event log, one recorded turn per prompt (see the module docstring).

    ``speed``: 0 = as fast as possible (default), 1 = the recorded spacing, 2 = twice as fast…
    """

    def __init__(self, path: str | os.PathLike[str], *, speed: float = 0.0) -> None:
        if not (math.isfinite(speed) and speed >= 0):
            raise ValueError(f"replay speed must be a finite number >= 0, got {speed!r}")
        # Prompts are not read, so any content is accepted: a demo never fails on an attachment.
        super().__init__(
            name="replay",
            prompt_capabilities=PromptCapabilities(image=True, audio=True, embedded_context=True),
        )
        self.path = Path(path)
        self.speed = speed
        self._index: _TurnIndex | None = None
        self._index_lock = asyncio.Lock()
        self._next_turn: dict[str, int] = {}

    # --- the recording -----------------------------------------------------------------------------

    async def turn_count(self) -> int:
        """How many turns the recording holds (indexing it on first use)."""
        return (await self._turn_index()).turns

    async def _turn_index(self) -> _TurnIndex:
        async with self._index_lock:
            index = self._index
            if index is None or not await asyncio.to_thread(self._still_valid, index):
                try:
                    index = await asyncio.to_thread(_build_index, self.path)
                except OSError as exc:
                    raise BackendError(f"cannot read the recording {self.path}: {exc}") from exc
                logger.info(
                    "recording %s: %d turn(s), %d line(s) in %d file(s)",
                    self.path,
                    index.turns,
                    index.lines,
                    len(index.files),
                )
                self._index = index
            return index

    def _still_valid(self, index: _TurnIndex) -> bool:
        try:
            if _signature(index.files) != index.signature:
                return False
        except OSError:
            return False
        # A rotated file added after indexing also makes it stale.
        return rotation_files(self.path) == list(index.files)

    def _lines(
        self, index: _TurnIndex, start: _Position, end: _Position | None
    ) -> Generator[Line, None, None]:
        """The lines from ``start`` up to (not including) ``end``, streamed across files."""
        for number in range(start.file, len(index.files)):
            if end is not None and number > end.file:
                return
            first = start if number == start.file else _Position(number, 0, 1)
            with closing(
                iter_lines(index.files[number], offset=first.offset, number=first.line)
            ) as lines:
                for line in lines:
                    if end is not None and (number, line.offset) >= (end.file, end.offset):
                        return
                    yield line

    # --- sessions and turns ------------------------------------------------------------------------

    async def new_session(self, ctx: SessionContext) -> None:
        """A new session replays from the first recorded turn."""
        self._next_turn[ctx.session_id] = 0

    async def close_session(self, ctx: SessionContext) -> None:
        """Forget the session's position in the recording."""
        self._next_turn.pop(ctx.session_id, None)

    async def cancel(self, ctx: SessionContext) -> None:
        """Nothing to do: the replay checks ``ctx.cancelled`` between events."""

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        """Replay the session's next recorded turn (the prompt's content is not used)."""
        index = await self._turn_index()
        if index.turns == 0:
            raise BackendError(f"the recording {self.path} holds no events")
        turn = self._next_turn.get(ctx.session_id, 0)
        self._next_turn[ctx.session_id] = turn + 1
        if turn >= index.turns:
            ctx.emit(
                AgentMessageChunk(
                    session_id=ctx.session_id,
                    content=(
                        f"The recording {self.path.name} has no more turns: all {index.turns} were "
                        "replayed in this session. Start a new session to replay it again."
                    ),
                )
            )
            return StopReason.END_TURN
        return await self._replay(ctx, index, turn)

    async def _replay(self, ctx: SessionContext, index: _TurnIndex, turn: int) -> StopReason:
        start, end = index.span(turn)
        bad = BadLineReporter(logger)
        try:
            with closing(self._lines(index, start, end)) as lines:
                return await self._play(ctx, lines, bad)
        except OSError as exc:
            raise BackendError(f"cannot read the recording {self.path}: {exc}") from exc
        finally:
            bad.summary()

    async def _play(
        self, ctx: SessionContext, lines: Iterator[Line], bad: BadLineReporter
    ) -> StopReason:
        session_id = ctx.session_id
        loop = asyncio.get_running_loop()
        # Pacing reference: the first timestamped event of the turn, and when it went out.
        origin: tuple[int, float] | None = None
        next_yield = loop.time() + YIELD_SECONDS
        for line in lines:
            if ctx.cancelled:
                return StopReason.CANCELLED
            try:
                record = decode_line(line.data, session_id=session_id)
            except EventDecodeError as exc:
                bad.report(line.path, line.number, exc)
                continue
            if record.event.type in _NOT_REPLAYED:
                continue
            stamp = record.emitted_at_ms
            if self.speed > 0 and stamp is not None and stamp > 0:
                if origin is None:
                    origin = (stamp, loop.time())
                else:
                    # Against the turn's origin, not the previous event: no drift accumulates.
                    due = origin[1] + (stamp - origin[0]) / 1000 / self.speed
                    if await _cancelled_while_waiting(ctx, due - loop.time()):
                        return StopReason.CANCELLED
            ctx.emit(record.event)
            # Hand the loop over regularly, even at full speed, so the bridge delivers, other
            # sessions run and a cancel arrives; doing it after every event halves throughput.
            if loop.time() >= next_yield:
                await asyncio.sleep(0)
                next_yield = loop.time() + YIELD_SECONDS
        return StopReason.CANCELLED if ctx.cancelled else StopReason.END_TURN


async def _cancelled_while_waiting(ctx: SessionContext, seconds: float) -> bool:
    """Wait ``seconds`` (if positive) unless the turn is cancelled first; True if it was."""
    if seconds <= 0:
        return ctx.cancelled
    try:
        async with asyncio.timeout(seconds):
            await ctx.wait_cancelled()
    except TimeoutError:
        return ctx.cancelled
    return True


def create_backend(arg: str | None, options: BackendOptions | None = None) -> ReplayBackend:
    """``--agent replay:PATH`` (``--replay-speed`` sets the pacing)."""
    if not arg:
        raise ValueError("replay needs a recording: --agent replay:PATH")
    path = Path(arg).expanduser()
    # Fail at startup on a typo rather than at the first prompt; the content is read lazily.
    if not path.is_file():
        raise ValueError(f"replay: no recording at {path}")
    return ReplayBackend(path, speed=(options or BackendOptions()).replay_speed)

"""A demo turn in progress: emitting its events, pacing them, and stopping when it is cancelled."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

from acp_bridge.agents.base import SessionContext
from acp_bridge.events.harn import AgentEventBase, AgentMessageChunk, AgentThoughtChunk

__all__ = ["Turn", "TurnCancelled", "unless_cancelled", "word_count"]

_WORDS_PER_CHUNK: Final = 6

_T = TypeVar("_T")
_WORD: Final = re.compile(r"\S+\s*")


class TurnCancelled(Exception):
    """Raised inside a turn once ``ctx.cancelled`` is seen; the turn returns ``cancelled``."""


def word_count(text: str) -> int:
    """Words in ``text``: what the demo reports as tokens."""
    return len(text.split())


def _chunks(text: str) -> list[str]:
    """Split ``text`` into word groups whose concatenation is ``text``."""
    words = _WORD.findall(text)
    return [
        "".join(words[i : i + _WORDS_PER_CHUNK]) for i in range(0, len(words), _WORDS_PER_CHUNK)
    ] or ([text] if text else [])


async def unless_cancelled(ctx: SessionContext, work: Coroutine[Any, Any, _T]) -> _T:
    """Await ``work``, or raise :class:`TurnCancelled` as soon as the turn is cancelled."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(ctx.wait_cancelled())
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        pending = [t for t in (task, watcher) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    if task.done() and not task.cancelled():
        return task.result()
    raise TurnCancelled


class Turn:
    """One turn's emitting, pacing and cancellation checks, and the counters for ``iteration_end``.

    ``turn`` and ``iteration`` number the session's turns and model iterations from 0; ``mode`` is
    the session's mode when the turn started.
    """

    def __init__(
        self,
        ctx: SessionContext,
        delay: float,
        turn: int,
        iteration: int,
        mode: str,
        think_aloud: bool = True,
    ) -> None:
        self.ctx = ctx
        self.think_aloud = think_aloud
        self.delay = delay
        self.turn = turn
        self.iteration = iteration
        self.mode = mode
        self.output_words = 0
        self.tool_count = 0

    def check(self) -> None:
        """Raise :class:`TurnCancelled` if the turn was cancelled."""
        if self.ctx.cancelled:
            raise TurnCancelled

    async def step(self, event: AgentEventBase) -> None:
        """Emit one event, pause when pacing is on, and stop if the turn was cancelled meanwhile."""
        self.check()
        self.ctx.emit(event)
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        self.check()

    async def thought(self, text: str) -> None:
        """Emit ``text`` as one thought chunk (unless the session's ``think_aloud`` is off)."""
        if not self.think_aloud:
            self.check()
            return
        self.output_words += word_count(text)
        await self.step(AgentThoughtChunk(session_id=self.ctx.session_id, content=text))

    async def say(self, text: str) -> None:
        """Stream ``text`` as several message chunks."""
        self.output_words += word_count(text)
        for chunk in _chunks(text):
            await self.step(AgentMessageChunk(session_id=self.ctx.session_id, content=chunk))

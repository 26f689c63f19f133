"""Arbitration of the agent's questions to the people watching a session (decision 0011).

When the agent asks something only a person can answer (``session/request_permission``,
``elicitation/create``), the session's :class:`Arbiter` asks every controller attached to the session at once,
each with its own request id and in its own profile:

* the first valid answer decides, and is what the agent gets, exactly once;
* the other copies are withdrawn: cancelling a copy makes the connection's JSON-RPC peer send
  ``$/cancel_request {requestId}``; an answer that still arrives is dropped (a debug line);
* a controller that attaches while the question is pending is asked too, right after its
  ``session/load``/``resume`` response (:meth:`Arbiter.offer`);
* with no controller attached, the question waits up to ``idle_timeout`` seconds for one, then
  ends undecided (the agent gets ``cancelled``); so does a question every asked controller failed
  to answer (an error, a malformed answer) while no other one is left;
* cancelling :meth:`Arbiter.ask` (the turn was cancelled) withdraws every copy.

The outcome is handed to ``record`` (the session logs it as a ``control_outcome`` event naming who
answered and what, so ``session/load`` replays it). The arbiter knows nothing of the question's
meaning: the caller builds each copy's params and says which answers are valid.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .ports import Participant

__all__ = ["ANSWER_TIMEOUT_SECONDS", "Arbiter", "Decision", "Question"]

logger = logging.getLogger(__name__)

ANSWER_TIMEOUT_SECONDS: Final = 24 * 3600.0
"""How long one copy may stay unanswered: a person decides; a cancel or a disconnect ends it early."""


@dataclass(frozen=True)
class Decision:
    """How a question ended."""

    method: str
    value: Any
    """What the winning answer meant (``accept``'s result); ``None`` when undecided."""
    answered_by: Participant | None
    reason: str
    """``first_valid_response``, ``timeout`` (no controller came) or ``no_valid_response``."""
    target: Mapping[str, Any]
    decided_at_ms: int

    @property
    def decided(self) -> bool:
        """True when a controller answered."""
        return self.answered_by is not None


@dataclass(frozen=True)
class Question:
    """One question: its method, how to build each copy's params, which answers are valid."""

    method: str
    params_for: Callable[[Participant], dict[str, Any]]
    """The params of the copy sent to this participant (its profile, its attachment)."""
    accept: Callable[[Any], Any | None]
    """The meaning of an answer's result, ``None`` for an invalid one."""
    target: Mapping[str, Any] = field(default_factory=dict)
    """What the question is about, for the record (e.g. ``{"toolCallId": …}``)."""
    eligible: Callable[[Participant], bool] | None = None
    """Which controllers can be asked (e.g. those that advertised elicitation); all by default."""


@dataclass(eq=False)
class _Pending:
    question: Question
    result: asyncio.Future[Decision]
    copies: dict[str, tuple[Participant, asyncio.Future[Any]]] = field(default_factory=dict)
    """Connection id → the participant and its copy (asked once per connection)."""
    unanswered: set[str] = field(default_factory=set)
    """Connection ids whose copy has not ended yet (its done callback has not run)."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Arbiter:
    """One session's questions to its controllers; see the module docstring."""

    def __init__(
        self,
        session_id: str,
        controllers: Callable[[], Iterable[Participant]],
        *,
        idle_timeout: float,
        record: Callable[[Decision], None] | None = None,
    ) -> None:
        self.session_id = session_id
        self._controllers = controllers
        self.idle_timeout = idle_timeout
        self._record = record
        self._pending: list[_Pending] = []

    @property
    def pending(self) -> int:
        """Questions waiting for an answer."""
        return len(self._pending)

    async def ask(self, question: Question) -> Decision:
        """Ask every attached controller; the first valid answer (see the module docstring)."""
        pending = _Pending(question, asyncio.get_running_loop().create_future())
        self._pending.append(pending)
        try:
            for participant in list(self._controllers()):
                self._issue(pending, participant)
            decision = await self._wait(pending)
        finally:
            self._pending.remove(pending)
            # Withdraw what is still out: the peer sends $/cancel_request for each.
            for _, copy in pending.copies.values():
                copy.cancel()
        return decision

    def offer(self, participant: Participant) -> None:
        """``participant`` just attached (its response is queued): ask it what is pending."""
        for pending in list(self._pending):
            self._issue(pending, participant)

    def _live_controllers(self, question: Question) -> list[Participant]:
        eligible = question.eligible
        return [
            p
            for p in self._controllers()
            if p.principal.controls and not p.closed and (eligible is None or eligible(p))
        ]

    def _issue(self, pending: _Pending, participant: Participant) -> None:
        if pending.result.done() or participant.connection_id in pending.copies:
            return
        if participant.closed or not participant.principal.controls:
            return  # observers are never asked anything
        question = pending.question
        if question.eligible is not None and not question.eligible(participant):
            return  # it could not show the question
        copy = asyncio.ensure_future(
            participant.request(
                question.method, question.params_for(participant), timeout=ANSWER_TIMEOUT_SECONDS
            )
        )
        pending.copies[participant.connection_id] = (participant, copy)
        pending.unanswered.add(participant.connection_id)
        copy.add_done_callback(functools.partial(self._answered, pending, participant))
        pending.changed.set()

    def _answered(
        self, pending: _Pending, participant: Participant, copy: asyncio.Future[Any]
    ) -> None:
        pending.unanswered.discard(participant.connection_id)
        pending.changed.set()
        if copy.cancelled():
            return  # withdrawn by us
        method, who = pending.question.method, participant.principal.name
        if pending.result.done():
            logger.debug("late answer to %s from %s ignored", method, who)
            return
        exc = copy.exception()
        if exc is not None:
            logger.info("%s did not answer %s (%s)", who, method, exc)
            return
        value = pending.question.accept(copy.result())
        if value is None:
            logger.info("invalid answer to %s from %s ignored", method, who)
            return
        self._decide(
            pending,
            Decision(
                method,
                value,
                participant,
                "first_valid_response",
                pending.question.target,
                int(time.time() * 1000),
            ),
        )

    def _decide(self, pending: _Pending, decision: Decision) -> None:
        pending.result.set_result(decision)
        for _, copy in pending.copies.values():
            copy.cancel()  # no-op for the winner's (done) copy
        if self._record is not None:
            try:
                self._record(decision)
            except Exception:
                logger.exception("could not record the outcome of %s", decision.method)

    async def _wait(self, pending: _Pending) -> Decision:
        while not pending.result.done():
            pending.changed.clear()
            if pending.unanswered:
                timeout: float | None = None  # someone may still answer (each copy is bounded)
            elif self._live_controllers(pending.question):
                # Everyone attached was asked and none gave a valid answer: fail closed.
                self._undecided(pending, "no_valid_response")
                break
            else:
                timeout = self.idle_timeout  # wait for a controller to attach
            changed: asyncio.Future[Any] = asyncio.ensure_future(pending.changed.wait())
            try:
                waiters: set[asyncio.Future[Any]] = {pending.result, changed}
                done, _ = await asyncio.wait(
                    waiters,
                    timeout=timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                changed.cancel()
            if not done:
                self._undecided(pending, "timeout")
        return pending.result.result()

    def _undecided(self, pending: _Pending, reason: str) -> None:
        logger.info(
            "%s in session %s ended undecided (%s)",
            pending.question.method,
            self.session_id,
            reason,
        )
        self._decide(
            pending,
            Decision(
                pending.question.method,
                None,
                None,
                reason,
                pending.question.target,
                int(time.time() * 1000),
            ),
        )

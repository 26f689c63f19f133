"""``session/prompt`` and ``session/cancel``: turns, their answers, and cancellation.

A prompt read before a ``session/cancel`` is cancelled by it, even if its handler has not started
yet: the session's cancel generation is captured on arrival. ``$/cancel_request`` on a prompt
cancels that prompt's turn; the prompt still answers, with ``stopReason: "cancelled"``, after
everything its turn emitted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

from acp_bridge.agents.base import StopReason
from acp_bridge.eventlog import EventLogError
from acp_bridge.rpc.errors import InternalError, InvalidParams
from acp_bridge.rpc.peer import RequestContext
from acp_bridge.translate import content_block_problem

from ..connection import AcpConnection, AcpMethods
from ..sessions import PromptTicket, Session, SessionOwnedElsewhere
from ._common import agent_failure, refuse_when_closing

__all__ = ["register", "session_cancel", "session_prompt"]

_PROMPT_GATES: Final = {"image": "image", "audio": "audio", "resource": "embedded_context"}
"""Content block type → the prompt capability a backend must have for it."""


def register(conn: AcpMethods) -> None:
    """Serve the prompt family on every connection."""
    conn.add_method(
        "session/prompt",
        session_prompt,
        on_arrival=_cancel_generation,
        answers_own_cancel=True,
    )
    # session/cancel is a notification in ACP; Harn also accepts it as a request.
    conn.add_method("session/cancel", _cancel_request, inline=True)
    conn.add_notification("session/cancel", session_cancel)


def _cancel_generation(conn: AcpConnection, params: Mapping[str, Any]) -> int | None:
    session_id = params.get("sessionId")
    session = conn.sessions.live(session_id) if isinstance(session_id, str) else None
    return session.cancel_generation if session is not None else None


async def session_prompt(conn: AcpConnection, params: dict[str, Any], ctx: RequestContext) -> Any:
    """Run one turn (queued behind the session's running one) and answer its stop reason."""
    session, attachment = conn.attached_session(params)
    prompt = _check_prompt(conn, params.get("prompt"))
    refuse_when_closing(conn)
    if not await _claim(conn, session):
        # Another node runs the session: it runs this turn too, and its updates reach this
        # connection through the session's tail before the answer does.
        return await conn.sessions.forward_prompt(session, prompt, attachment)
    generation = ctx.arrival if isinstance(ctx.arrival, int) else session.cancel_generation
    handler = asyncio.current_task()
    if handler is not None:
        conn.track_prompt(handler)
    # The session's next turn waits until this prompt's answer (result or error) is queued.
    ticket = PromptTicket(generation, cancelled=ctx.cancelled_by_peer)
    ctx.after_response = ticket.answered.set
    # $/cancel_request cancels this prompt's turn (or skips it while queued); the handler stays
    # and answers "cancelled" once the turn is over, after everything the turn emitted.
    ctx.on_cancel = lambda: session.cancel_prompt(ticket)
    turn = asyncio.ensure_future(session.run_turn(conn, prompt, attachment, ticket))
    try:
        return await _answer(conn, session, turn)
    except asyncio.CancelledError:
        # Torn down (the connection closed, the bridge stops): no response of ours will follow,
        # so the next turn may start as soon as this one is over.
        if turn.done():
            ticket.answered.set()
        else:
            turn.add_done_callback(lambda _: ticket.answered.set())
        raise


async def _claim(conn: AcpConnection, session: Session) -> bool:
    """On a shared log, make this node the session's owner (taking over an expired lease);
    ``False`` if another node owns it (the prompt is then forwarded there)."""
    try:
        await conn.sessions.claim(session.session_id)
        return True
    except SessionOwnedElsewhere:
        return False
    except EventLogError as exc:
        raise InternalError(
            f"the event log cannot take this session over: {exc}", data={"reason": "event_log"}
        ) from None


def _check_prompt(conn: AcpConnection, prompt: Any) -> list[dict[str, Any]]:
    if not isinstance(prompt, list):
        raise InvalidParams("prompt must be a list of content blocks", data={"field": "prompt"})
    caps = conn.host.backend.prompt_capabilities
    for i, block in enumerate(prompt):
        problem = content_block_problem(block)
        if problem is not None:
            raise InvalidParams(f"prompt[{i}]: {problem}", data={"field": f"prompt[{i}]"})
        gate = _PROMPT_GATES.get(block["type"])
        if gate is not None and not getattr(caps, gate):
            raise InvalidParams(
                f"this agent does not accept {block['type']} content in prompts",
                data={"field": "prompt", "type": block["type"]},
            )
    return prompt


async def _answer(
    conn: AcpConnection, session: Session, turn: asyncio.Future[StopReason]
) -> dict[str, Any]:
    try:
        # Shielded: if this connection goes away the turn goes on (decision 0003).
        stop = await asyncio.shield(turn)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await session.settle()
        session.announce_info()
        raise agent_failure(exc, session.session_id, "session/prompt") from None
    result: dict[str, Any] = {"stopReason": stop.value}
    # Every update of the turn is committed and queued before the response that ends the turn.
    persistence_error = await session.settle()
    # The turn renamed (first prompt) and touched the session: its clients hear it before the answer.
    session.announce_info()
    if persistence_error is not None:
        result["_meta"] = {"harn": {"persistenceError": persistence_error}}
    return result


async def session_cancel(conn: AcpConnection, params: dict[str, Any]) -> None:
    """Cancel the session's running turn and every queued one."""
    session_id = params.get("sessionId")
    session = conn.sessions.live(session_id) if isinstance(session_id, str) else None
    if session is not None:
        session.cancel()
        if conn.sessions.forwards(session):
            await conn.sessions.forward_cancel(session)


async def _cancel_request(conn: AcpConnection, params: dict[str, Any], ctx: RequestContext) -> Any:
    await session_cancel(conn, params)
    return {}

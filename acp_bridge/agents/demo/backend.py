"""The demo backend: sessions, their modes and counters, and one scenario per turn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from acp_bridge.agents.base import (
    BackendError,
    BackendOptions,
    BaseBackend,
    ConfigOption,
    PromptCapabilities,
    SessionContext,
    SessionMode,
    SlashCommand,
    StopReason,
)
from acp_bridge.agents.demo.prompt import parse_prompt
from acp_bridge.agents.demo.scenarios import COMMANDS, scenario_for
from acp_bridge.agents.demo.turn import Turn, TurnCancelled

__all__ = ["DemoBackend", "create_backend"]

MODES: Final = (
    SessionMode(
        id="ask", name="Ask", description="Answer and propose edits, asking before each one"
    ),
    SessionMode(id="code", name="Code", description="Work on the code (the demo still asks first)"),
)
DEFAULT_MODE: Final = MODES[0].id
THINK_ALOUD: Final = "think_aloud"
"""The demo's one config option (boolean): whether turns show their thoughts."""


@dataclass
class _SessionState:
    turns: int = 0
    iterations: int = 0
    mode: str = DEFAULT_MODE
    think_aloud: bool = True


class DemoBackend(BaseBackend):
    """A scripted agent: same prompt, same events; no model, no network, never writes files.

    ``step_delay`` seconds pass between streamed steps so that a real client looks alive; tests pass
    ``0`` (no sleeping at all). Sessions start in the first of :meth:`modes` (``ask``).
    """

    def __init__(self, step_delay: float = 0.03) -> None:
        super().__init__(name="demo", prompt_capabilities=PromptCapabilities(embedded_context=True))
        self.step_delay = step_delay
        self._sessions: dict[str, _SessionState] = {}

    # --- sessions ------------------------------------------------------------------------------

    def _state(self, ctx: SessionContext) -> _SessionState:
        return self._sessions.setdefault(ctx.session_id, _SessionState())

    async def new_session(self, ctx: SessionContext) -> None:
        """Start the session's turn and iteration counters at zero, in the default mode."""
        self._sessions[ctx.session_id] = _SessionState()

    async def load_session(self, ctx: SessionContext) -> None:
        """Keep the session's state if it is known; a session from before a restart starts afresh."""
        self._state(ctx)

    async def close_session(self, ctx: SessionContext) -> None:
        """Forget the session's counters and mode."""
        self._sessions.pop(ctx.session_id, None)

    def modes(self) -> Sequence[SessionMode]:
        """``ask`` (the default) and ``code``; the reply mentions the current one."""
        return MODES

    async def set_mode(self, ctx: SessionContext, mode_id: str) -> None:
        """Store the session's mode; an unknown mode is a :class:`BackendError`."""
        if mode_id not in {mode.id for mode in MODES}:
            raise BackendError(f"unknown mode {mode_id!r}")
        self._state(ctx).mode = mode_id

    def config_options(self, ctx: SessionContext) -> Sequence[ConfigOption]:
        """``think_aloud`` (on by default): whether turns show their thoughts; ``/think on|off``
        changes it from a prompt."""
        return (
            ConfigOption.boolean(
                THINK_ALOUD,
                "Think aloud",
                self._state(ctx).think_aloud,
                description="Show the agent's thoughts during a turn",
            ),
        )

    async def set_config_option(
        self, ctx: SessionContext, config_id: str, value: str | bool
    ) -> None:
        """Set ``think_aloud``; anything else is a :class:`BackendError`."""
        if config_id != THINK_ALOUD or not isinstance(value, bool):
            raise BackendError(f"unknown config option {config_id!r} or value {value!r}")
        self._state(ctx).think_aloud = value

    def mode_of(self, session_id: str) -> str:
        """The current mode of a session (the default for an unknown session)."""
        state = self._sessions.get(session_id)
        return state.mode if state is not None else DEFAULT_MODE

    def commands(self) -> Sequence[SlashCommand]:
        """``/plan``, ``/explain`` and ``/echo``."""
        return COMMANDS

    async def cancel(self, ctx: SessionContext) -> None:
        """Nothing to do: the turn checks ``ctx.cancelled`` between steps and stops there."""

    # --- turns ---------------------------------------------------------------------------------

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        """Run one scripted turn; ``cancelled`` as soon as the turn is cancelled, else ``end_turn``.

        ``/echo <text>`` answers ``<text>`` as one message chunk and nothing else; ``/plan`` stops
        after the plan (no tools); ``/explain`` reads but does not edit; anything else runs the
        whole turn.
        """
        state = self._state(ctx)
        scenario, parsed = scenario_for(parse_prompt(prompt))
        turn = Turn(
            ctx, self.step_delay, state.turns, state.iterations, state.mode, state.think_aloud
        )
        state.turns += 1
        if scenario.iteration:
            state.iterations += 1
        if scenario.think is not None:
            # ``/think on|off``: the agent changes its own option; every client is told.
            state.think_aloud = scenario.think(parsed)
            ctx.config_options_changed()
        try:
            await scenario.play(turn, parsed)
        except TurnCancelled:
            return StopReason.CANCELLED
        return StopReason.END_TURN


def create_backend(arg: str | None, options: BackendOptions | None = None) -> DemoBackend:
    """``--agent demo`` (takes no argument)."""
    if arg:
        raise ValueError("the demo agent takes no argument")
    return DemoBackend()

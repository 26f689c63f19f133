"""What the demo does for a prompt: one scenario per slash command, the whole turn otherwise.

``/plan`` stops after the plan (no tools), ``/explain`` reads but does not edit, ``/echo`` answers
its text and nothing else. Scenarios emit through a :class:`~acp_bridge.agents.demo.turn.Turn`,
which stops them at the first step after a cancel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from acp_bridge.agents.base import SlashCommand
from acp_bridge.agents.demo.prompt import Prompt, quote, sentence, split_command
from acp_bridge.agents.demo.tools import display_path, edit, pick_path, read
from acp_bridge.agents.demo.turn import Turn, word_count
from acp_bridge.events.harn import (
    AgentMessageChunk,
    IterationEnd,
    IterationStart,
    Plan,
    SkillActivated,
)

__all__ = ["COMMANDS", "SCENARIOS", "Scenario", "scenario_for"]

PROVIDER: Final = "demo"
MODEL: Final = "scripted-1"
SKILL: Final = "demo-skill"
QUOTE_CHARS: Final = 200
RESPONSE_MS: Final = 240  # fixed, like every timing of the demo: nothing here is measured

COMMANDS: Final = (
    SlashCommand(
        name="plan",
        description="Draft a plan for a task, without running tools",
        input_hint="what to plan",
    ),
    SlashCommand(
        name="explain",
        description="Read a file and explain it, without editing anything",
        input_hint="what to explain",
    ),
    SlashCommand(
        name="echo",
        description="Echo the text back (a short turn, no tools)",
        input_hint="text to echo",
    ),
    SlashCommand(
        name="think",
        description="Turn the think-aloud option on or off",
        input_hint="on or off",
    ),
)
"""The slash commands the demo announces; each has its entry in :data:`SCENARIOS`."""

_UNDERSTAND: Final = ("Understand the request", "high")
_SUMMARISE: Final = ("Summarise what happened", "low")


@dataclass(frozen=True, slots=True)
class Scenario:
    """How the demo plays one kind of prompt."""

    play: Callable[[Turn, Prompt], Coroutine[Any, Any, None]]
    """Emits the turn's events; raises ``TurnCancelled`` to end it as ``cancelled``."""
    iteration: bool = True
    """Whether the turn is a model iteration (numbered; ``/echo`` is not one)."""
    think: Callable[[Prompt], bool] | None = None
    """``/think``: the ``think_aloud`` value the prompt asks for (set before the turn plays)."""


# --- the parts scenarios share ---------------------------------------------------------------------


async def _begin(turn: Turn, prompt: Prompt, intent: str) -> None:
    """Start the iteration and think aloud about the prompt and what the turn will do."""
    sid, iteration = turn.ctx.session_id, turn.iteration
    await turn.step(
        IterationStart(session_id=sid, iteration=iteration, provider=PROVIDER, model=MODEL)
    )
    await turn.step(
        SkillActivated(
            session_id=sid,
            skill_name=SKILL,
            iteration=iteration,
            reason="the demo agent always works with its demo skill",
        )
    )
    about = f"“{quote(prompt.text, 80)}”" if prompt.text else "a prompt without text"
    await turn.thought(sentence("The user sent ", about) + " I'll plan a short, safe turn. ")
    await turn.thought(intent)


async def _reply(turn: Turn, prompt: Prompt, command: str, next_step: str) -> None:
    """Quote the prompt back, name what came with it, and say what happens next."""
    quoted = f"“{quote(prompt.text, QUOTE_CHARS)}”" if prompt.text else ""
    if command:
        opening = (
            sentence(f"You asked for {command}: ", quoted)
            if quoted
            else f"You asked for {command}."
        )
    else:
        opening = sentence("You wrote: ", quoted) if quoted else "Your prompt had no text."
    parts = [opening]
    if prompt.resources:
        parts.append("You attached " + ", ".join(prompt.resources) + ".")
    if prompt.others:
        parts.append("It also contained " + ", ".join(prompt.others) + ".")
    parts.append(
        f"(Session mode: {turn.mode}.) I am the scripted demo agent: no model, no network."
    )
    parts.append(next_step)
    await turn.say(" ".join(parts) + "\n\n")


def _plan(
    turn: Turn, prompt: Prompt, steps: Sequence[tuple[str, str]], statuses: Sequence[str]
) -> Plan:
    """The turn's plan (its id is the same all turn long), each step with its status."""
    sid = turn.ctx.session_id
    return Plan(
        session_id=sid,
        plan={
            "_type": "plan_artifact",
            "schema_version": "harn.plan.v1",
            "tool": "emit_plan",
            "title": quote(prompt.text, 60) or "Demo turn",
            "summary": f"A scripted demo turn in {len(steps)} steps.",
            "steps": [
                {"id": f"step-{i}", "content": text, "status": status, "priority": priority}
                for i, ((text, priority), status) in enumerate(
                    zip(steps, statuses, strict=True), start=1
                )
            ],
            "assumptions": [],
            "open_questions": [],
            "verification_commands": [],
            "approval": {"state": "unrequested"},
            "id": "plan_" + hashlib.sha256(f"{sid}\0{turn.turn}".encode()).hexdigest()[:12],
        },
    )


def _started(steps: Sequence[object]) -> list[str]:
    """The statuses once the request is understood and work on the next step has begun."""
    return ["completed", "in_progress"] + ["pending"] * (len(steps) - 2)


async def _end(turn: Turn, prompt: Prompt) -> None:
    await turn.step(
        IterationEnd(
            session_id=turn.ctx.session_id,
            iteration=turn.iteration,
            iteration_info={
                "tool_count": turn.tool_count,
                "provider": PROVIDER,
                "model": MODEL,
                "response_ms": RESPONSE_MS,
                "input_tokens": word_count(prompt.text) + 8 * len(prompt.resources),
                "output_tokens": turn.output_words,
            },
        )
    )


# --- the scenarios ---------------------------------------------------------------------------------


async def whole_turn(turn: Turn, prompt: Prompt) -> None:
    """Read a file, then propose an edit to it behind a permission request (and never write it)."""
    path = pick_path(turn.ctx.cwd)
    shown = display_path(path, turn.ctx.cwd)
    steps = [
        _UNDERSTAND,
        (f"Read {shown} for context", "medium"),
        (f"Propose an edit to {shown}, with your permission", "medium"),
        _SUMMARISE,
    ]
    await _begin(
        turn,
        prompt,
        f"I'll read {shown} for context, then propose a small edit and wait for approval.",
    )
    await _reply(
        turn,
        prompt,
        "",
        f"Let me read {shown}, then propose an edit; I will ask before touching anything.",
    )
    await turn.step(_plan(turn, prompt, steps, _started(steps)))
    content = await read(turn, path)
    closing = await edit(turn, path, shown, content)
    await turn.say(f"{closing} That was the whole demo turn.")
    await turn.step(_plan(turn, prompt, steps, ["completed"] * len(steps)))
    await _end(turn, prompt)


async def explain(turn: Turn, prompt: Prompt) -> None:
    """``/explain``: read the file and say what is in it; no edit."""
    path = pick_path(turn.ctx.cwd)
    shown = display_path(path, turn.ctx.cwd)
    steps = [_UNDERSTAND, (f"Read {shown} for context", "medium"), _SUMMARISE]
    await _begin(turn, prompt, f"I'll read {shown} and explain what I find, without editing it.")
    await _reply(turn, prompt, "/explain", f"Let me read {shown} and explain it.")
    await turn.step(_plan(turn, prompt, steps, _started(steps)))
    content = await read(turn, path)
    first = next((line.strip() for line in content.splitlines() if line.strip()), "")
    await turn.say(
        f"{shown} starts with “{quote(first, 80)}”, and I read {len(content.splitlines())} lines"
        " of it. That is as far as a scripted agent can explain. That was the whole demo turn."
    )
    await turn.step(_plan(turn, prompt, steps, ["completed"] * len(steps)))
    await _end(turn, prompt)


async def plan_only(turn: Turn, prompt: Prompt) -> None:
    """``/plan``: think, answer and show the plan; no tools."""
    steps = [_UNDERSTAND, _SUMMARISE]
    await _begin(turn, prompt, "They asked for a plan only, so no tools this time.")
    await _reply(turn, prompt, "/plan", "Here is the plan I would follow.")
    await turn.step(_plan(turn, prompt, steps, ["completed"] + ["pending"] * (len(steps) - 1)))
    await turn.say("Run the prompt without /plan to see the demo carry it out.")
    await _end(turn, prompt)


async def echo(turn: Turn, prompt: Prompt) -> None:
    """``/echo TEXT``: TEXT as one message chunk, and nothing else."""
    turn.check()
    if prompt.text:
        await turn.step(AgentMessageChunk(session_id=turn.ctx.session_id, content=prompt.text))


async def think(turn: Turn, prompt: Prompt) -> None:
    """``/think on|off``: confirm the new setting in one message chunk."""
    turn.check()
    state = "on" if _thinking(prompt) else "off"
    text = f"Thinking aloud is {state}."
    await turn.step(AgentMessageChunk(session_id=turn.ctx.session_id, content=text))


def _thinking(prompt: Prompt) -> bool:
    return prompt.text.strip().lower() not in ("off", "no", "false", "0")


SCENARIOS: Final[Mapping[str, Scenario]] = {
    "": Scenario(whole_turn),
    "/plan": Scenario(plan_only),
    "/explain": Scenario(explain),
    "/echo": Scenario(echo, iteration=False),
    "/think": Scenario(think, iteration=False, think=_thinking),
}
"""By command (``""``: a prompt that is no known command)."""


def scenario_for(prompt: Prompt) -> tuple[Scenario, Prompt]:
    """The scenario a prompt asks for, and the prompt it plays: a command's argument is its text."""
    command = split_command(prompt.text)
    scenario = SCENARIOS.get(command[0]) if command is not None else None
    if command is None or scenario is None:  # an unknown /word is ordinary text
        return SCENARIOS[""], prompt
    return scenario, replace(prompt, text=command[1].strip())

"""The demo backend: the scripted turn, its wire form, file reads, permissions, cancellation."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from acp.schema import SessionNotification

from acp_bridge.agents.base import (
    AgentBackend,
    BackendError,
    ClientRequestFailed,
    SessionContext,
    StopReason,
)
from acp_bridge.agents.demo import DemoBackend
from acp_bridge.events import parse_event
from acp_bridge.events.harn import (
    AgentEventBase,
    AgentMessageChunk,
    AgentThoughtChunk,
    IterationEnd,
    Plan,
    ToolCall,
    ToolCallUpdate,
)
from acp_bridge.translate import HARN_AGENT_EVENT_METHOD, SESSION_UPDATE_METHOD, translate
from tests.support.acp_schema import acp_schema

from .fakes import CANCEL, FakeSessionContext

README = "# Sample project\n\nA project used by the demo backend tests.\n\nMore text.\n"
PROMPT: list[dict[str, Any]] = [
    {"type": "text", "text": "Please tidy up the README. It is a bit terse."},
    {"type": "resource_link", "uri": "file:///work/project/notes.md", "name": "notes.md"},
    {"type": "resource", "resource": {"uri": "file:///work/project/a.py", "text": "x = 1\n"}},
]

FULL_TURN = [
    "iteration_start",
    "skill_activated",
    "agent_thought_chunk",
    "agent_thought_chunk",
    *["agent_message_chunk"] * 2,  # at least; collapsed by `shape` below
    "plan",
    "tool_call",
    "tool_call_update",
    "tool_call_update",
    "tool_call",
    "tool_call_update",
    "agent_message_chunk",
    "plan",
    "iteration_end",
]


def shape(types: list[str]) -> list[str]:
    """Collapse runs of message chunks, whose number depends on the text."""
    out: list[str] = []
    for t in types:
        if not (t == "agent_message_chunk" and out and out[-1] == t):
            out.append(t)
    return out


FULL_SHAPE = shape(FULL_TURN)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "README.md").write_text(README)
    return tmp_path


def make_ctx(project: Path, **kwargs: Any) -> FakeSessionContext:
    files = {str(project / "README.md"): README}
    return FakeSessionContext(cwd=str(project), files=files, **kwargs)


async def run(
    ctx: FakeSessionContext,
    prompt: list[dict[str, Any]] | None = None,
    backend: DemoBackend | None = None,
) -> StopReason:
    backend = backend if backend is not None else DemoBackend(step_delay=0)
    async with asyncio.timeout(2):
        return await backend.prompt(ctx, PROMPT if prompt is None else prompt)


def text(prompt: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": prompt}]


def of_type(ctx: FakeSessionContext, cls: type[AgentEventBase]) -> list[Any]:
    return [e for e in ctx.events if isinstance(e, cls)]


def reply(ctx: FakeSessionContext) -> str:
    return "".join(e.content for e in of_type(ctx, AgentMessageChunk))


# --- the contract ----------------------------------------------------------------------------------


def test_backend_and_fake_satisfy_the_protocols() -> None:
    backend = DemoBackend()
    assert isinstance(backend, AgentBackend)
    assert isinstance(FakeSessionContext(), SessionContext)
    assert backend.name == "demo"
    assert backend.step_delay == 0.03
    assert backend.prompt_capabilities.embedded_context
    assert [c.name for c in backend.commands()] == ["plan", "explain", "echo", "think"]
    assert all(c.description and c.input_hint for c in backend.commands())
    assert [m.id for m in backend.modes()] == ["ask", "code"]


# --- the full turn ---------------------------------------------------------------------------------


async def test_full_turn_allowed(project: Path) -> None:
    ctx = make_ctx(project)
    assert await run(ctx) is StopReason.END_TURN
    assert shape(ctx.types) == FULL_SHAPE
    assert ctx.types.count("agent_message_chunk") >= 4  # the reply streams

    readme = str(project / "README.md")
    read_call, edit_call = of_type(ctx, ToolCall)
    assert (read_call.tool_call_id, read_call.kind, read_call.status) == (
        "tool-0-read",
        "read",
        "pending",
    )
    assert read_call.raw_input == {"path": readme}
    assert (edit_call.tool_call_id, edit_call.kind, edit_call.status) == (
        "tool-0-edit",
        "edit",
        "pending",
    )
    assert edit_call.raw_input["path"] == readme
    assert edit_call.raw_input["old_text"] == "# Sample project\n"
    assert edit_call.raw_input["new_text"].startswith("# Sample project\n")

    in_progress, read_done, edit_done = of_type(ctx, ToolCallUpdate)
    assert in_progress.status == "in_progress"
    assert read_done.status == "completed"
    assert read_done.executor is not None
    assert read_done.executor.kind == "harn_builtin"
    assert read_done.duration_ms is not None
    assert read_done.execution_duration_ms is not None
    assert edit_done.tool_call_id == "tool-0-edit"
    assert edit_done.status == "completed"
    diff = edit_done.raw_output["diff"]
    assert diff.startswith("--- a/README.md\n+++ b/README.md\n")
    assert "\n+> Reviewed by the acp-bridge demo agent.\n" in diff

    [request] = ctx.permission_requests
    assert request.tool_call["toolCallId"] == "tool-0-edit"
    assert request.tool_call["kind"] == "edit"
    assert request.tool_call["rawInput"] == edit_call.raw_input
    assert request.tool_call["content"] == [
        {
            "type": "diff",
            "path": readme,
            "oldText": edit_call.raw_input["old_text"],
            "newText": edit_call.raw_input["new_text"],
        }
    ]
    assert [(o.option_id, o.kind) for o in request.options] == [
        ("allow", "allow_once"),
        ("reject", "reject_once"),
    ]
    assert ctx.writes == []
    assert (project / "README.md").read_text() == README  # the demo never writes


async def test_full_turn_rejected(project: Path) -> None:
    ctx = make_ctx(project, permission=["reject"])
    assert await run(ctx) is StopReason.END_TURN
    assert shape(ctx.types) == FULL_SHAPE
    edit_done = of_type(ctx, ToolCallUpdate)[-1]
    assert edit_done.tool_call_id == "tool-0-edit"
    assert edit_done.status == "failed"
    assert edit_done.error == "rejected by the user"
    assert edit_done.error_category == "permission_denied"
    assert edit_done.raw_output is None
    assert "not allowed" in reply(ctx)


async def test_permission_request_failure_is_a_refusal(project: Path) -> None:
    class Failing(FakeSessionContext):
        async def request_permission(self, tool_call: Any, options: Any) -> Any:
            raise ClientRequestFailed("session/request_permission", -32603, "boom")

    ctx = Failing(cwd=str(project), files={str(project / "README.md"): README})
    assert await run(ctx) is StopReason.END_TURN
    edit_done = of_type(ctx, ToolCallUpdate)[-1]
    assert edit_done.status == "failed"
    assert edit_done.error_category == "permission_denied"
    assert "boom" in (edit_done.error or "")


async def test_plan_artifact_and_iteration_info(project: Path) -> None:
    ctx = make_ctx(project)
    await run(ctx)
    first, last = of_type(ctx, Plan)
    for plan in (first.plan, last.plan):
        assert plan["_type"] == "plan_artifact"
        assert plan["schema_version"] == "harn.plan.v1"
        assert plan["tool"] == "emit_plan"
        assert plan["approval"] == {"state": "unrequested"}
        assert plan["assumptions"] == plan["open_questions"] == plan["verification_commands"] == []
        assert plan["id"].startswith("plan_")
        assert len(plan["id"]) == 17
        int(plan["id"][5:], 16)
        assert [s["id"] for s in plan["steps"]] == ["step-1", "step-2", "step-3", "step-4"]
        assert all(s["priority"] in ("high", "medium", "low") for s in plan["steps"])
    assert first.plan["id"] == last.plan["id"]
    assert [s["status"] for s in first.plan["steps"]] == [
        "completed",
        "in_progress",
        "pending",
        "pending",
    ]
    assert {s["status"] for s in last.plan["steps"]} == {"completed"}

    start = ctx.events[0]
    assert (start.iteration, start.provider, start.model) == (0, "demo", "scripted-1")  # type: ignore[attr-defined]
    [end] = of_type(ctx, IterationEnd)
    info = end.iteration_info
    assert end.iteration == 0
    assert info["tool_count"] == 2
    assert (info["provider"], info["model"]) == ("demo", "scripted-1")
    assert set(info) == {
        "tool_count",
        "provider",
        "model",
        "response_ms",
        "input_tokens",
        "output_tokens",
    }
    assert info["input_tokens"] > 0
    assert info["output_tokens"] > 0


async def test_reply_quotes_the_prompt_and_names_resources(project: Path) -> None:
    ctx = make_ctx(project)
    await run(ctx)
    chunks = [e.content for e in of_type(ctx, AgentMessageChunk)]
    full = reply(ctx)
    assert "“Please tidy up the README. It is a bit terse.”" in full
    assert "file:///work/project/notes.md" in full
    assert "file:///work/project/a.py" in full
    assert "Session mode: ask" in full
    assert all(chunks)
    thoughts = "".join(e.content for e in of_type(ctx, AgentThoughtChunk))
    assert "Please tidy up the README" in thoughts


async def test_long_prompt_is_quoted_briefly(project: Path) -> None:
    ctx = make_ctx(project)
    await run(ctx, text("word " * 2000))
    assert len(reply(ctx)) < 1000
    assert len(ctx.events) < 60


async def test_prompt_without_text(project: Path) -> None:
    ctx = make_ctx(project)
    image = {"type": "image", "data": "AAAA", "mimeType": "image/png"}
    assert await run(ctx, [image, {"type": "bogus"}, "not a block"]) is StopReason.END_TURN  # type: ignore[list-item]
    assert shape(ctx.types) == FULL_SHAPE
    assert "no text" in reply(ctx)
    assert "an image (image/png)" in reply(ctx)


# --- the wire form ---------------------------------------------------------------------------------


SCENARIOS: dict[str, tuple[dict[str, Any], list[dict[str, Any]] | None]] = {
    "allowed": ({}, None),
    "rejected": ({"permission": ["reject"]}, None),
    "no-fs": ({"fs_read": False}, None),
    "explain": ({}, text("/explain the README")),
    "plan": ({}, text("/plan add a changelog")),
    "echo": ({}, text("/echo hi there")),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_events_round_trip(project: Path, scenario: str) -> None:
    kwargs, prompt = SCENARIOS[scenario]
    ctx = make_ctx(project, **kwargs)
    await run(ctx, prompt)
    assert ctx.events
    for event in ctx.events:
        again = parse_event(event.to_json())
        assert type(again) is type(event)
        assert again == event
        assert again.to_json() == event.to_json()


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_strict_translation_is_valid_acp(project: Path, scenario: str) -> None:
    kwargs, prompt = SCENARIOS[scenario]
    ctx = make_ctx(project, **kwargs)
    await run(ctx, prompt)
    schema = acp_schema()
    started: set[str] = set()
    updates = 0
    for event in ctx.events:
        for message in translate(event, profile="strict"):
            assert message["method"] in (SESSION_UPDATE_METHOD, HARN_AGENT_EVENT_METHOD)
            assert message["params"]["sessionId"] == ctx.session_id
            schema.check_agent_message(message)
            if message["method"] != SESSION_UPDATE_METHOD:
                continue
            SessionNotification.model_validate(message["params"])
            update = message["params"]["update"]
            if update["sessionUpdate"] == "tool_call":
                assert update["toolCallId"] not in started
                started.add(update["toolCallId"])
            elif update["sessionUpdate"] == "tool_call_update":
                assert update["toolCallId"] in started
                updates += 1
    assert updates == {"allowed": 3, "rejected": 3, "no-fs": 3, "explain": 2}.get(scenario, 0)
    for request in ctx.permission_requests:  # the permission request is valid ACP too
        schema.check(
            "RequestPermissionRequest",
            {
                "sessionId": ctx.session_id,
                "toolCall": request.tool_call,
                "options": [
                    {"optionId": o.option_id, "name": o.name, "kind": o.kind}
                    for o in request.options
                ],
            },
        )


# --- reading files -------------------------------------------------------------------------------


async def test_read_goes_through_the_client(project: Path) -> None:
    ctx = make_ctx(project)
    await run(ctx)
    assert [(r.path, r.limit) for r in ctx.reads] == [(str(project / "README.md"), 20)]
    output = of_type(ctx, ToolCallUpdate)[1].raw_output
    assert output["source"] == "client"
    assert output["content"] == README
    assert output["path"] == str(project / "README.md")
    assert output["truncated"] is False


async def test_read_without_fs_capability_uses_a_canned_excerpt(project: Path) -> None:
    ctx = make_ctx(project, fs_read=False)
    assert await run(ctx) is StopReason.END_TURN
    assert ctx.reads == []
    assert shape(ctx.types) == FULL_SHAPE
    output = of_type(ctx, ToolCallUpdate)[1].raw_output
    assert output["source"] == "canned"
    assert "fs.readTextFile" in output["note"]
    assert output["content"].startswith("# Demo project")
    assert of_type(ctx, ToolCall)[1].raw_input["old_text"] == "# Demo project\n"


async def test_read_error_falls_back(project: Path) -> None:
    error = ClientRequestFailed("fs/read_text_file", -32603, "disk on fire")
    ctx = make_ctx(project, read_error=error)
    assert await run(ctx) is StopReason.END_TURN
    assert len(ctx.reads) == 1
    output = of_type(ctx, ToolCallUpdate)[1].raw_output
    assert output["source"] == "canned"
    assert "disk on fire" in output["note"]
    assert shape(ctx.types) == FULL_SHAPE


async def test_long_file_is_truncated(project: Path) -> None:
    long = "".join(f"line {i}\n" for i in range(100))
    ctx = FakeSessionContext(cwd=str(project), files={str(project / "README.md"): long})

    async def read_everything(
        path: str, *, line: int | None = None, limit: int | None = None
    ) -> str:
        return long  # a client that ignores `limit`

    ctx.read_text_file = read_everything  # type: ignore[method-assign]
    await run(ctx)
    output = of_type(ctx, ToolCallUpdate)[1].raw_output
    assert output["truncated"] is True
    assert output["lines"] == 20


async def test_picks_another_file_without_a_readme(tmp_path: Path) -> None:
    (tmp_path / ".hidden").write_text("secret\n")
    (tmp_path / "b.txt").write_text("bee\n")
    (tmp_path / "a.txt").write_text("ay\n")
    (tmp_path / "sub").mkdir()
    ctx = FakeSessionContext(cwd=str(tmp_path), files={str(tmp_path / "a.txt"): "ay\n"})
    await run(ctx)
    assert [r.path for r in ctx.reads] == [str(tmp_path / "a.txt")]
    assert "a.txt" in reply(ctx)


async def test_unknown_cwd_reads_its_readme_through_the_client(tmp_path: Path) -> None:
    cwd = str(tmp_path / "elsewhere")  # not on the bridge's disk: only the client knows it
    readme = os.path.join(cwd, "README.md")
    ctx = FakeSessionContext(cwd=cwd, files={readme: "# Remote\n"})
    await run(ctx)
    assert [r.path for r in ctx.reads] == [readme]
    assert of_type(ctx, ToolCall)[1].raw_input["old_text"] == "# Remote\n"


# --- cancellation --------------------------------------------------------------------------------


async def test_cancel_before_the_turn(project: Path) -> None:
    ctx = make_ctx(project)
    ctx.cancel()
    assert await run(ctx) is StopReason.CANCELLED
    assert ctx.events == []
    assert ctx.permission_requests == []


async def test_cancel_after_each_event_stops_there(project: Path) -> None:
    reference = make_ctx(project)
    await run(reference)
    total = len(reference.events)
    edit_index = [i for i, e in enumerate(reference.events) if isinstance(e, ToolCall)][1]
    for k in range(total):
        ctx = make_ctx(project)
        ctx.cancel_when = lambda _e, ctx=ctx, k=k: len(ctx.events) == k + 1
        assert await run(ctx) is StopReason.CANCELLED, k
        assert [e.to_json() for e in ctx.events] == [e.to_json() for e in reference.events[: k + 1]]
        # The permission is asked only when the cancel came after the edit's tool call.
        assert bool(ctx.permission_requests) == (k > edit_index), k


async def test_cancel_at_the_permission_request(project: Path) -> None:
    ctx = make_ctx(project, permission=[CANCEL])
    assert await run(ctx) is StopReason.CANCELLED
    assert len(ctx.permission_requests) == 1
    last = ctx.events[-1]
    assert isinstance(last, ToolCall)
    assert last.tool_call_id == "tool-0-edit"


async def test_cancelled_permission_outcome_ends_the_turn(project: Path) -> None:
    """A ``cancelled`` outcome ends the turn even if the flag is not (yet) set."""

    class AnswersCancelled(FakeSessionContext):
        async def request_permission(self, tool_call: Any, options: Any) -> Any:
            from acp_bridge.agents.base import PermissionOutcome

            return PermissionOutcome(None, cancelled=True)

    ctx = AnswersCancelled(cwd=str(project), files={str(project / "README.md"): README})
    assert await run(ctx) is StopReason.CANCELLED
    assert ctx.types[-1] == "tool_call"


async def test_cancel_while_the_read_hangs(project: Path) -> None:
    ctx = make_ctx(project, read_hangs=True)
    assert await run(ctx) is StopReason.CANCELLED
    assert len(ctx.reads) == 1
    assert ctx.types[-1] == "tool_call_update"
    assert ctx.events[-1].status == "in_progress"  # type: ignore[attr-defined]


async def test_cancel_during_a_paced_turn(project: Path) -> None:
    """Cancelled while sleeping between steps: nothing more is emitted."""
    backend = DemoBackend(step_delay=0.01)
    ctx = make_ctx(project)
    loop = asyncio.get_running_loop()

    def cancel_soon(_: AgentEventBase) -> bool:
        # Cancel from outside the emit call, i.e. while the backend sleeps after the third event.
        if len(ctx.events) == 3:
            loop.call_soon(ctx.cancel)
        return False

    ctx.cancel_when = cancel_soon
    assert await run(ctx, backend=backend) is StopReason.CANCELLED
    assert len(ctx.events) == 3
    await backend.cancel(ctx)  # a no-op


# --- commands, modes, sessions ---------------------------------------------------------------------


async def test_echo(project: Path) -> None:
    ctx = make_ctx(project)
    assert await run(ctx, text("/echo hello   world\nagain")) is StopReason.END_TURN
    assert ctx.types == ["agent_message_chunk"]
    assert reply(ctx) == "hello   world\nagain"
    assert ctx.reads == []
    assert ctx.permission_requests == []


async def test_echo_of_nothing_is_an_empty_turn(project: Path) -> None:
    ctx = make_ctx(project)
    assert await run(ctx, text("/echo")) is StopReason.END_TURN
    assert ctx.events == []


async def test_echo_cancelled(project: Path) -> None:
    ctx = make_ctx(project)
    ctx.cancel()
    assert await run(ctx, text("/echo hi")) is StopReason.CANCELLED
    assert ctx.events == []


async def test_plan_command_runs_no_tools(project: Path) -> None:
    ctx = make_ctx(project)
    assert await run(ctx, text("/plan add a changelog")) is StopReason.END_TURN
    assert shape(ctx.types) == [
        "iteration_start",
        "skill_activated",
        "agent_thought_chunk",
        "agent_thought_chunk",
        "agent_message_chunk",
        "plan",
        "agent_message_chunk",
        "iteration_end",
    ]
    assert "/plan" in reply(ctx)
    assert "add a changelog" in reply(ctx)
    assert of_type(ctx, IterationEnd)[0].iteration_info["tool_count"] == 0


async def test_explain_command_reads_but_does_not_edit(project: Path) -> None:
    ctx = make_ctx(project)
    assert await run(ctx, text("/explain the README")) is StopReason.END_TURN
    assert ctx.types.count("tool_call") == 1
    assert ctx.permission_requests == []
    assert "“# Sample project”" in reply(ctx)
    assert of_type(ctx, IterationEnd)[0].iteration_info["tool_count"] == 1


async def test_unknown_command_is_an_ordinary_prompt(project: Path) -> None:
    ctx = make_ctx(project)
    await run(ctx, text("/frobnicate now"))
    assert shape(ctx.types) == FULL_SHAPE


async def test_modes(project: Path) -> None:
    backend = DemoBackend(step_delay=0)
    ctx = make_ctx(project)
    await backend.new_session(ctx)
    assert backend.mode_of(ctx.session_id) == "ask"
    await backend.set_mode(ctx, "code")
    assert backend.mode_of(ctx.session_id) == "code"
    with pytest.raises(BackendError):
        await backend.set_mode(ctx, "yolo")
    await run(ctx, backend=backend)
    assert "Session mode: code" in reply(ctx)
    other = FakeSessionContext(session_id="sess-other", cwd=str(project))
    assert backend.mode_of(other.session_id) == "ask"
    await backend.close_session(ctx)
    assert backend.mode_of(ctx.session_id) == "ask"


async def test_turns_and_iterations_count_per_session(project: Path) -> None:
    backend = DemoBackend(step_delay=0)
    ctx = make_ctx(project)
    await backend.new_session(ctx)
    await run(ctx, backend=backend)
    await run(ctx, text("/echo x"), backend=backend)
    ctx.events.clear()
    await run(ctx, backend=backend)
    assert [e.tool_call_id for e in of_type(ctx, ToolCall)] == ["tool-2-read", "tool-2-edit"]
    assert ctx.events[0].iteration == 1  # type: ignore[attr-defined]  # /echo is no model iteration

    other = make_ctx(project, permission=["allow"])
    other._session_id = "sess-other"
    await backend.load_session(other)
    await run(other, backend=backend)
    assert other.events[0].iteration == 0  # type: ignore[attr-defined]


# --- determinism ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_deterministic(project: Path, scenario: str) -> None:
    kwargs, prompt = SCENARIOS[scenario]
    runs = []
    for _ in range(2):
        ctx = make_ctx(project, **kwargs)
        await run(ctx, prompt)
        runs.append(
            ([e.to_json() for e in ctx.events], [r.tool_call for r in ctx.permission_requests])
        )
    assert runs[0] == runs[1]


async def test_pacing_does_not_change_the_events(project: Path) -> None:
    fast, paced = make_ctx(project), make_ctx(project)
    await run(fast)
    await run(paced, backend=DemoBackend(step_delay=0.001))
    assert [e.to_json() for e in fast.events] == [e.to_json() for e in paced.events]


async def test_think_command_switches_the_think_aloud_option(project: Path) -> None:
    backend = DemoBackend(step_delay=0)
    ctx = make_ctx(project)
    await backend.new_session(ctx)
    assert [(o.id, o.kind, o.current_value) for o in backend.config_options(ctx)] == [
        ("think_aloud", "boolean", True)
    ]
    await run(ctx, text("/think off"), backend)
    assert ctx.config_changes == 1
    assert reply(ctx) == "Thinking aloud is off."
    assert backend.config_options(ctx)[0].current_value is False
    ctx.events.clear()
    ctx.new_turn()
    await run(ctx, text("Fix the bug"), backend)
    assert of_type(ctx, AgentThoughtChunk) == []
    assert of_type(ctx, AgentMessageChunk)  # the turn still answers

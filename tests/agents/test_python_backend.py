"""``--agent python:MODULE:ATTR``: every module and attribute form, and every error it explains."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acp_bridge.agents import registry
from acp_bridge.agents.base import AgentBackend, BackendError, PromptCapabilities, StopReason
from acp_bridge.agents.python import FunctionBackend, coerce_backend, create_backend
from acp_bridge.events.harn import AgentMessageChunk

from .fakes import FakeSessionContext

REPO = Path(__file__).resolve().parents[2]

AGENT_MODULE = """
from acp_bridge import AgentMessageChunk, BaseBackend, StopReason

IMPORTS = globals().get("IMPORTS", 0) + 1


class Agent(BaseBackend):
    def __init__(self, name: str = "class-made") -> None:
        super().__init__(name=name)

    async def prompt(self, ctx, prompt):
        ctx.emit(AgentMessageChunk(session_id=ctx.session_id, content=self.name))
        return StopReason.END_TURN


agent = Agent("instance")


def make_agent():
    return Agent("factory-made")


async def prompt(ctx, prompt):
    ctx.emit(AgentMessageChunk(session_id=ctx.session_id, content="from a function"))
    return StopReason.END_TURN


class Agents:
    default = Agent("nested")
"""

TEXT = [{"type": "text", "text": "hi"}]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """A project directory as cwd, with ``sys.path`` and ``sys.modules`` restored afterwards.

    The cwd is taken off ``sys.path`` so that the tests see the bridge put it there, and only the
    project's own modules are forgotten afterwards. Returns a function writing ``name -> source``
    files into the project.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    before = set(sys.modules)

    def write(**files: str) -> Path:
        for name, source in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return tmp_path

    yield write
    for name in set(sys.modules) - before:
        origin = getattr(sys.modules[name], "__file__", None) or ""
        if origin.startswith(str(tmp_path)) or name.startswith("_acp_bridge_agent_"):
            del sys.modules[name]


async def turn_text(backend: AgentBackend, *, prompt: list[dict[str, Any]] = TEXT) -> str:
    ctx = FakeSessionContext()
    assert await backend.prompt(ctx, prompt) == StopReason.END_TURN
    return "".join(e.content for e in ctx.events if isinstance(e, AgentMessageChunk))


# --- the ATTR forms ----------------------------------------------------------------------------------


async def test_an_instance_is_served_as_is(project: Callable[..., Path]) -> None:
    project(**{"my_agent.py": AGENT_MODULE})
    backend = create_backend("my_agent:agent")
    assert backend is sys.modules["my_agent"].agent
    assert await turn_text(backend) == "instance"


async def test_a_class_is_instantiated_without_arguments(project: Callable[..., Path]) -> None:
    project(**{"my_agent.py": AGENT_MODULE})
    backend = create_backend("my_agent:Agent")
    assert type(backend) is sys.modules["my_agent"].Agent
    assert backend.name == "class-made"
    assert backend is not create_backend("my_agent:Agent")  # a new instance each time


async def test_a_factory_is_called(project: Callable[..., Path]) -> None:
    project(**{"my_agent.py": AGENT_MODULE})
    backend = create_backend("my_agent:make_agent")
    assert backend.name == "factory-made"
    assert await turn_text(backend) == "factory-made"


async def test_a_prompt_function_is_wrapped(project: Callable[..., Path]) -> None:
    project(**{"my_agent.py": AGENT_MODULE})
    backend = create_backend("my_agent:prompt")
    assert isinstance(backend, FunctionBackend)
    assert isinstance(backend, AgentBackend)
    assert backend.name == "my_agent"  # the module's name, shown in agentInfo
    assert backend.modes() == ()
    assert backend.commands() == ()
    assert await turn_text(backend) == "from a function"


async def test_an_instance_with_an_async_call_is_a_prompt_function(
    project: Callable[..., Path],
) -> None:
    project(
        **{
            "callable_agent.py": """
                from acp_bridge import AgentMessageChunk

                class Echo:
                    async def __call__(self, ctx, prompt):
                        ctx.emit(AgentMessageChunk(session_id=ctx.session_id, content="called"))

                echo = Echo()
            """
        }
    )
    backend = create_backend("callable_agent:echo")
    assert isinstance(backend, FunctionBackend)
    assert await turn_text(backend) == "called"


async def test_a_dotted_attribute(project: Callable[..., Path]) -> None:
    project(**{"my_agent.py": AGENT_MODULE})
    assert create_backend("my_agent:Agents.default").name == "nested"


async def test_a_dotted_module_name(project: Callable[..., Path]) -> None:
    project(**{"pkg/__init__.py": "", "pkg/agents.py": AGENT_MODULE})
    backend = create_backend("pkg.agents:prompt")
    assert backend.name == "agents"
    assert await turn_text(backend) == "from a function"


def test_the_current_directory_goes_first_on_sys_path(project: Callable[..., Path]) -> None:
    root = project(**{"my_agent.py": AGENT_MODULE})
    assert str(root) not in sys.path
    create_backend("my_agent:agent")
    assert sys.path[0] == str(root)
    create_backend("my_agent:Agent")
    assert sys.path.count(str(root)) == 1


def test_an_empty_sys_path_entry_counts_as_the_current_directory(
    project: Callable[..., Path],
) -> None:
    root = project(**{"my_agent.py": AGENT_MODULE})
    sys.path.insert(0, "")  # what `python -m` and the REPL put there
    create_backend("my_agent:agent")
    assert str(root) not in sys.path


@pytest.mark.parametrize("form", ["agents/main.py", "./agents/main.py", "{root}/agents/main.py"])
async def test_a_file_path(project: Callable[..., Path], form: str) -> None:
    root = project(
        **{
            "agents/helper.py": "GREETING = 'from a sibling module'\n",
            "agents/main.py": """
                from acp_bridge import AgentMessageChunk, FunctionBackend
                from helper import GREETING

                async def prompt(ctx, prompt):
                    ctx.emit(AgentMessageChunk(session_id=ctx.session_id, content=GREETING))

                agent = FunctionBackend(prompt, name="main-agent")
            """,
        }
    )
    backend = create_backend(form.format(root=root) + ":agent")
    assert backend.name == "main-agent"
    assert await turn_text(backend) == "from a sibling module"
    assert sys.modules["main"].agent is backend  # registered under its file name
    assert sys.path[0] == str(root / "agents")  # its directory, as `python FILE` would have it


def test_a_file_is_imported_once(project: Callable[..., Path]) -> None:
    project(**{"my_agent.py": AGENT_MODULE})
    first = create_backend("my_agent.py:agent")
    assert create_backend("./my_agent.py:agent") is first
    assert create_backend("my_agent:agent") is first  # the module name finds the same module
    assert sys.modules["my_agent"].IMPORTS == 1


def test_a_file_whose_name_is_taken_gets_a_private_module_name(
    project: Callable[..., Path],
) -> None:
    project(**{"json.py": AGENT_MODULE, "my-agent.py": AGENT_MODULE})
    import json

    backend = create_backend("json.py:agent")
    assert sys.modules["json"] is json  # the standard library's is untouched
    assert type(backend).__module__.startswith("_acp_bridge_agent_")
    assert create_backend("my-agent.py:prompt").name == "my-agent"  # not an identifier either


def test_a_windows_style_spec_splits_on_the_last_colon(project: Callable[..., Path]) -> None:
    with pytest.raises(ValueError, match=r"no such file: .*C:\\agents\\main\.py"):
        create_backend("C:\\agents\\main.py:agent")


def test_the_registry_routes_python_specs_here(project: Callable[..., Path]) -> None:
    project(**{"my_agent.py": AGENT_MODULE})
    assert registry.create_backend("python:my_agent:agent").name == "instance"
    assert "python:MODULE:ATTR" in registry.available_backends().values()


def test_the_example_agent_loads_by_its_documented_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "path", list(sys.path))
    backend = registry.create_backend("python:examples.python_agent:agent")
    assert backend is importlib.import_module("examples.python_agent").agent
    assert backend.name == "notes"


# --- FunctionBackend ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returned", "stop"),
    [
        (None, StopReason.END_TURN),
        (StopReason.REFUSAL, StopReason.REFUSAL),
        ("max_tokens", StopReason.MAX_TOKENS),
    ],
)
async def test_a_prompt_function_returns_a_stop_reason_or_none(
    returned: Any, stop: StopReason
) -> None:
    async def prompt(ctx: Any, prompt: Any) -> Any:
        return returned

    assert await FunctionBackend(prompt).prompt(FakeSessionContext(), TEXT) == stop


async def test_a_prompt_function_returning_anything_else_fails_the_turn() -> None:
    async def prompt(ctx: Any, prompt: Any) -> Any:
        return "done"

    with pytest.raises(BackendError, match="returned 'done', not a StopReason"):
        await FunctionBackend(prompt).prompt(FakeSessionContext(), TEXT)


def test_function_backend_name_and_capabilities() -> None:
    async def reviewer(ctx: Any, prompt: Any) -> None:
        return None

    assert FunctionBackend(reviewer).name == "reviewer"
    caps = PromptCapabilities(image=True)
    backend = FunctionBackend(reviewer, name="review", prompt_capabilities=caps)
    assert (backend.name, backend.prompt_capabilities) == ("review", caps)


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (None, "the python agent needs MODULE:ATTR"),
        ("", "the python agent needs MODULE:ATTR"),
        ("my_agent", "expected python:MODULE:ATTR"),
        (":agent", "expected python:MODULE:ATTR"),
        ("my_agent:", "expected python:MODULE:ATTR"),
        ("nope:agent", r"no module named 'nope' \(looked in the current directory "),
        ("pkg.nope:agent", "no module named 'pkg.nope'"),
        ("my-agent:agent", "'my-agent' is neither a module name .* nor a path to a .py file"),
        ("missing.py:agent", r"no such file: .*missing\.py"),
        ("agents/main.txt:agent", "'agents/main.txt' is not a .py file"),
        ("my_agent:agnet", "my_agent:agnet: my_agent has no attribute 'agnet'"),
        ("my_agent:Agents.nope", "my_agent.Agents has no attribute 'nope'"),
        ("my_agent:1st", "'1st' is not an attribute name"),
        (
            "my_agent:IMPORTS",
            "my_agent:IMPORTS is an int, not an agent; expected a backend instance",
        ),
        ("my_agent:NOTHING", "my_agent:NOTHING is None, not an agent"),
        ("pkg:agents", "pkg:agents is the module pkg.agents, not an agent"),
        ("my_agent:sync_prompt", "needs arguments to be called; .* `async def prompt"),
        ("my_agent:make_two", "needs arguments to be called; a factory takes no arguments"),
        ("my_agent:async_factory", "an async factory is not supported"),
        ("my_agent:three_args", "does not take \\(ctx, prompt\\)"),
        ("my_agent:NeedsArgs", "the class my_agent:NeedsArgs needs arguments to be called"),
        ("my_agent:NotABackend", r"my_agent:NotABackend\(\) is a NotABackend, not an agent"),
        ("my_agent:only_prompt", r"it lacks aclose, cancel, .* \(subclass acp_bridge.BaseBackend"),
        ("my_agent:NoPrompt", r"my_agent:NoPrompt\(\) does not implement prompt"),
        ("my_agent:SyncPrompt", r"my_agent:SyncPrompt\(\).prompt must be `async def`"),
        ("my_agent:make_nothing", r"my_agent:make_nothing\(\) is None, not an agent backend"),
        ("my_agent:make_coroutine", "returned an awaitable: a factory must be synchronous"),
    ],
)
def test_errors_say_what_was_found(
    project: Callable[..., Path], spec: str | None, message: str
) -> None:
    project(
        **{
            "pkg/__init__.py": "from . import agents\n",
            "pkg/agents.py": AGENT_MODULE,
            "my_agent.py": """
                import asyncio
                from acp_bridge import BaseBackend

                IMPORTS = 1
                NOTHING = None

                def sync_prompt(ctx, prompt): ...
                def make_two(a, b): ...
                async def async_factory(): ...
                async def three_args(ctx, prompt, extra): ...
                def make_nothing(): return None
                def make_coroutine(): return asyncio.sleep(0)

                class NeedsArgs(BaseBackend):
                    def __init__(self, model): super().__init__()
                    async def prompt(self, ctx, prompt): ...

                class NotABackend: ...

                class OnlyPrompt:
                    name = "only"
                    async def prompt(self, ctx, prompt): ...

                only_prompt = OnlyPrompt()

                class NoPrompt(BaseBackend): ...

                class SyncPrompt(BaseBackend):
                    def prompt(self, ctx, prompt): ...

                class Agents: ...
            """,
        }
    )
    with pytest.raises(ValueError, match=message):
        create_backend(spec)


def test_errors_raised_by_the_module_itself_propagate(project: Callable[..., Path]) -> None:
    project(
        **{
            "broken.py": "raise RuntimeError('the agent is broken')\n",
            "needs_dep.py": "import not_an_installed_dependency_xyz\n",
        }
    )
    with pytest.raises(RuntimeError, match="the agent is broken"):
        create_backend("broken:agent")
    with pytest.raises(RuntimeError, match="the agent is broken"):
        create_backend("broken.py:agent")
    assert "broken" not in sys.modules  # a failed file import leaves nothing half-made behind
    with pytest.raises(ModuleNotFoundError) as missing:
        create_backend("needs_dep:agent")
    assert missing.value.name == "not_an_installed_dependency_xyz"


def test_coerce_backend_accepts_objects_directly() -> None:
    async def prompt(ctx: Any, prompt: Any) -> StopReason:
        return StopReason.END_TURN

    backend = FunctionBackend(prompt)
    assert coerce_backend(backend) is backend
    assert coerce_backend(prompt, name="direct").name == "direct"
    assert isinstance(coerce_backend(lambda: backend), FunctionBackend)
    with pytest.raises(ValueError, match="42 is an int, not an agent"):
        coerce_backend(42)

"""``--agent python:MODULE:ATTR``: an agent written in Python, run in the bridge's own process.

``MODULE`` is either

* a dotted module name (``my_agent``, ``my_pkg.agents``), imported with the current working
  directory at the front of ``sys.path`` (as ``python -m`` does), so ``acp-bridge serve --agent
  python:my_agent:agent`` works from the project that holds ``my_agent.py``; or
* a path to a ``.py`` file (``./my_agent.py``, ``agents/main.py``, ``/abs/path/agent.py``; relative to
  the current directory), run the way ``python FILE`` would see it: its directory goes at the front of
  ``sys.path`` so its sibling modules import. It is registered under its file name (``my_agent``)
  unless another module already holds that name.

``ATTR`` (dotted, e.g. ``agents.default``) names one of:

* a backend instance (anything satisfying :class:`~acp_bridge.agents.base.AgentBackend`; subclass
  :class:`~acp_bridge.agents.base.BaseBackend` to get defaults for everything but ``prompt``);
* a backend class, instantiated with no arguments;
* a zero-argument factory function returning a backend (synchronous: do async set-up in ``start``);
* an ``async def prompt(ctx, prompt)`` function, wrapped in a :class:`FunctionBackend` — the smallest
  possible agent.

Anything else is a :class:`ValueError` that says what was found and what was expected. Exceptions raised
by the module's own code while it is imported, and by the class or factory, propagate unchanged: their
traceback points at the agent's bug.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Final, TypeAlias

from .base import (
    AgentBackend,
    BackendError,
    BackendOptions,
    BaseBackend,
    PromptCapabilities,
    SessionContext,
    StopReason,
)

__all__ = ["FunctionBackend", "PromptFunction", "coerce_backend", "create_backend", "load_module"]

PromptFunction: TypeAlias = Callable[
    [SessionContext, list[dict[str, Any]]], Awaitable[StopReason | str | None]
]
"""``async def prompt(ctx, prompt) -> StopReason``: one turn (``None`` means ``end_turn``)."""

USAGE: Final = "python:MODULE:ATTR"
EXPECTED: Final = (
    "a backend instance, a backend class, a zero-argument factory returning a backend, "
    "or an `async def prompt(ctx, prompt)` function"
)

# Every member of the AgentBackend protocol: methods and the two data attributes.
_BACKEND_MEMBERS: Final = tuple(
    sorted(
        {name for name in vars(AgentBackend) if not name.startswith("_")}
        | set(AgentBackend.__annotations__)
    )
)


class FunctionBackend(BaseBackend):
    """A backend made of one ``async def prompt(ctx, prompt)`` function: the smallest possible agent.

    Everything but turns keeps :class:`BaseBackend`'s defaults (no modes, commands or config). The
    function may return a :class:`StopReason` (or its string value), or ``None`` for ``end_turn``; a
    turn cancelled by the client answers ``cancelled`` whatever it returns.
    """

    def __init__(
        self,
        prompt: PromptFunction,
        *,
        name: str | None = None,
        prompt_capabilities: PromptCapabilities | None = None,
    ) -> None:
        super().__init__(
            name=name or getattr(prompt, "__name__", None) or "agent",
            prompt_capabilities=prompt_capabilities or PromptCapabilities(),
        )
        self.prompt_function = prompt

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        """Run the function for this turn; a result that is no stop reason fails the turn."""
        result = await self.prompt_function(ctx, prompt)
        if result is None:
            return StopReason.END_TURN
        try:
            return StopReason(result)
        except ValueError:
            raise BackendError(
                f"the prompt function of {self.name!r} returned {result!r}, not a StopReason"
            ) from None


def create_backend(arg: str | None, options: BackendOptions | None = None) -> AgentBackend:
    """``--agent python:MODULE:ATTR``: import MODULE, take ATTR, and make a backend of it.

    ``ValueError`` when the spec is malformed, the module or attribute does not exist, or the
    attribute is not one of the accepted forms (see the module docstring).
    """
    if not arg:
        raise ValueError("the python agent needs MODULE:ATTR, e.g. python:my_agent:agent")
    # The last colon splits, so a Windows path (C:\agents\main.py:agent) keeps its drive.
    target, sep, attr = arg.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(
            f"python:{arg}: expected {USAGE} (e.g. python:my_agent:agent or "
            "python:./my_agent.py:agent)"
        )
    module = load_module(target)
    where = f"{target}:{attr}"
    obj = _resolve(module, attr, where)
    short_name = Path(target).stem if _is_path(target) else target.rpartition(".")[2]
    return coerce_backend(obj, name=short_name, where=where)


def load_module(target: str) -> ModuleType:
    """Import ``target``: a dotted module name, or a path to a ``.py`` file.

    ``ValueError`` when the module or file does not exist; errors raised by the module's own code
    propagate.
    """
    if _is_path(target):
        return _import_file(Path(target))
    if not all(part.isidentifier() for part in target.split(".")):
        raise ValueError(
            f"{target!r} is neither a module name (dotted identifiers) nor a path to a .py file"
        )
    _put_first_on_path(os.getcwd())
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        # Only "the module itself is missing" is ours to explain; a missing dependency of the
        # module is the module's own ImportError, traceback and all.
        if exc.name is not None and (target == exc.name or target.startswith(exc.name + ".")):
            raise ValueError(
                f"no module named {target!r} (looked in the current directory {os.getcwd()} and on "
                "sys.path; a path to a .py file works too)"
            ) from exc
        raise


def coerce_backend(
    obj: object, *, name: str | None = None, where: str | None = None
) -> AgentBackend:
    """Make a backend of ``obj``: a backend instance, class, zero-argument factory or prompt function.

    ``name`` names a wrapped prompt function's backend (default: the function's name); ``where``
    is how error messages refer to ``obj``. ``ValueError`` when ``obj`` is none of the four forms.
    """
    what = where or repr(obj)
    if isinstance(obj, type):
        _check_no_arguments(
            obj, f"the class {what}", "expose an instance (agent = MyAgent(...)) instead"
        )
        return _check_backend(obj(), f"{what}()")
    if not inspect.isroutine(obj) and hasattr(obj, "prompt"):
        return _check_backend(obj, what)
    if callable(obj) and _is_async_callable(obj):
        try:
            signature = inspect.signature(obj)
        except ValueError:  # no signature to inspect: trust it
            return FunctionBackend(obj, name=name)
        try:
            signature.bind(None, None)
        except TypeError:
            if _binds(signature):
                raise ValueError(
                    f"{what} takes no arguments: an async factory is not supported (a factory must "
                    "be synchronous; do async set-up in the backend's start()), and a prompt "
                    "function is `async def prompt(ctx, prompt) -> StopReason`"
                ) from None
            raise ValueError(
                f"{what} is an async function but does not take (ctx, prompt): a prompt function "
                "is `async def prompt(ctx, prompt) -> StopReason`"
            ) from None
        return FunctionBackend(obj, name=name)
    if callable(obj):
        _check_no_arguments(
            obj,
            f"{what}",
            "a factory takes no arguments, and a prompt function is `async def prompt(ctx, prompt)`",
        )
        made = obj()
        if inspect.isawaitable(made):
            if inspect.iscoroutine(made):
                made.close()
            raise ValueError(
                f"{what}() returned an awaitable: a factory must be synchronous (do async set-up in "
                "the backend's start())"
            )
        return _check_backend(made, f"{what}()")
    raise ValueError(f"{what} is {_describe(obj)}, not an agent; expected {EXPECTED}")


# --- helpers -------------------------------------------------------------------------------------


def _is_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or os.sep in target


def _put_first_on_path(directory: str) -> None:
    """Put ``directory`` at the front of ``sys.path`` unless it is already there (``""`` is the cwd)."""
    wanted = os.path.abspath(directory)
    cwd = os.getcwd()
    for entry in sys.path:
        if isinstance(entry, str) and os.path.abspath(entry or cwd) == wanted:
            return
    sys.path.insert(0, wanted)
    importlib.invalidate_caches()


def _import_file(path: Path) -> ModuleType:
    if path.suffix != ".py":
        raise ValueError(f"{str(path)!r} is not a .py file; a module name has no slashes")
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    _put_first_on_path(str(path.parent))
    name = path.stem
    existing = sys.modules.get(name)
    existing_file = getattr(existing, "__file__", None)
    if existing is not None and existing_file and Path(existing_file).resolve() == path:
        return existing
    if not name.isidentifier() or existing is not None:
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        name = f"_acp_bridge_agent_{digest}"
        if name in sys.modules:
            return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        raise ValueError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _resolve(module: ModuleType, attr: str, where: str) -> object:
    parts = attr.split(".")
    if not all(part.isidentifier() for part in parts):
        raise ValueError(f"{where}: {attr!r} is not an attribute name")
    obj: object = module
    for i, part in enumerate(parts):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            owner = module.__name__ if i == 0 else f"{module.__name__}.{'.'.join(parts[:i])}"
            origin = getattr(module, "__file__", None)
            raise ValueError(
                f"{where}: {owner} has no attribute {part!r}"
                + (f" (module loaded from {origin})" if origin and i == 0 else "")
            ) from None
    return obj


def _is_async_callable(obj: Callable[..., object]) -> bool:
    """An ``async def`` function (or method, or partial), or an instance with an async ``__call__``."""
    if inspect.iscoroutinefunction(obj):
        return True
    return not inspect.isroutine(obj) and inspect.iscoroutinefunction(
        inspect.getattr_static(obj, "__call__", None)
    )


def _binds(signature: inspect.Signature) -> bool:
    """Whether ``signature`` accepts a call without arguments."""
    try:
        signature.bind()
    except TypeError:
        return False
    return True


def _check_no_arguments(obj: Callable[..., object], what: str, hint: str) -> None:
    try:
        inspect.signature(obj).bind()
    except TypeError:
        raise ValueError(f"{what} needs arguments to be called; {hint}") from None
    except ValueError:  # no signature to inspect: let the call decide
        pass


def _check_backend(obj: object, what: str) -> AgentBackend:
    missing = [member for member in _BACKEND_MEMBERS if not hasattr(obj, member)]
    if missing or not isinstance(obj, AgentBackend):
        raise ValueError(
            f"{what} is {_describe(obj)}, not an agent backend: it lacks {', '.join(missing)} "
            "(subclass acp_bridge.BaseBackend for defaults of everything but prompt)"
        )
    prompt = getattr(type(obj), "prompt", None)
    if isinstance(obj, BaseBackend) and prompt is BaseBackend.prompt:
        raise ValueError(f"{what} does not implement prompt(ctx, prompt)")
    if inspect.isroutine(obj.prompt) and not inspect.iscoroutinefunction(obj.prompt):
        raise ValueError(f"{what}.prompt must be `async def`")
    return obj


def _describe(obj: object) -> str:
    if obj is None:
        return "None"
    if isinstance(obj, ModuleType):
        return f"the module {obj.__name__}"
    kind = type(obj).__qualname__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"

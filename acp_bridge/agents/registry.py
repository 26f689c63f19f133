"""Backends by name: ``--agent NAME[:ARG]`` on ``acp-bridge serve``."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .base import AgentBackend, BackendOptions

__all__ = [
    "BackendFactory",
    "BackendOptions",
    "available_backends",
    "create_backend",
    "register_backend",
]


BackendFactory = Callable[[str | None, BackendOptions], AgentBackend]
"""What every backend module's ``create_backend(arg, options=None)`` is: one signature for all."""
_FACTORIES: dict[str, tuple[BackendFactory, str]] = {}


def register_backend(name: str, factory: BackendFactory, usage: str) -> None:
    """Make ``--agent NAME[:ARG]`` create a backend with ``factory(ARG or None, options)``."""
    _FACTORIES[name] = (factory, usage)


def available_backends() -> dict[str, str]:
    """``{name: usage}`` of every registered backend."""
    return {name: usage for name, (_, usage) in sorted(_FACTORIES.items())}


def create_backend(spec: str, options: BackendOptions | None = None) -> AgentBackend:
    """The backend for ``NAME[:ARG]``; ``ValueError`` naming the accepted forms otherwise."""
    name, sep, arg = spec.partition(":")
    entry = _FACTORIES.get(name)
    if entry is None:
        forms = ", ".join(available_backends().values())
        raise ValueError(f"unknown agent {spec!r}; expected one of: {forms}")
    factory, _ = entry
    return factory(arg if sep else None, options or BackendOptions())


def _lazy(module: str) -> BackendFactory:
    """A factory that imports ``acp_bridge.agents.<module>`` on use and calls its ``create_backend``."""

    def factory(arg: str | None, options: BackendOptions) -> AgentBackend:
        backend: AgentBackend = importlib.import_module(
            f"acp_bridge.agents.{module}"
        ).create_backend(arg, options)
        return backend

    return factory


register_backend("demo", _lazy("demo"), "demo")
register_backend("exec", _lazy("exec"), "exec:COMMAND")
register_backend("replay", _lazy("replay"), "replay:PATH")
register_backend("tail", _lazy("tail"), "tail:DIR")
register_backend("python", _lazy("python"), "python:MODULE:ATTR")
register_backend("acp", _lazy("acp"), "acp:COMMAND")

"""Backends by name: ``--agent NAME[:ARG]`` on ``acp-bridge serve``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from .base import AgentBackend

__all__ = ["BackendOptions", "available_backends", "create_backend", "register_backend"]


@dataclass(frozen=True)
class BackendOptions:
    """Serve-level options some backends use."""

    dialect: str = "harn"
    """The event vocabulary of an ``exec`` child: ``harn`` or ``runtime``."""
    replay_speed: float = 0.0
    """``replay``: 0 = as fast as possible, 1 = the recorded spacing, 2 = twice as fast…"""


BackendFactory = Callable[[str | None, BackendOptions], AgentBackend]
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

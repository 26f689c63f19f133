"""Backends by name: ``--agent NAME[:ARG]`` on ``acp-bridge serve``."""

from __future__ import annotations

from collections.abc import Callable

from .base import AgentBackend

__all__ = ["available_backends", "create_backend", "register_backend"]

BackendFactory = Callable[[str | None], AgentBackend]
_FACTORIES: dict[str, tuple[BackendFactory, str]] = {}


def register_backend(name: str, factory: BackendFactory, usage: str) -> None:
    """Make ``--agent NAME[:ARG]`` create a backend with ``factory(ARG or None)``."""
    _FACTORIES[name] = (factory, usage)


def available_backends() -> dict[str, str]:
    """``{name: usage}`` of every registered backend."""
    return {name: usage for name, (_, usage) in sorted(_FACTORIES.items())}


def create_backend(spec: str) -> AgentBackend:
    """The backend for ``NAME[:ARG]``; ``ValueError`` naming the accepted forms otherwise."""
    name, sep, arg = spec.partition(":")
    entry = _FACTORIES.get(name)
    if entry is None:
        forms = ", ".join(usage for usage in available_backends().values())
        raise ValueError(f"unknown agent {spec!r}; expected one of: {forms}")
    factory, _ = entry
    return factory(arg if sep else None)


def _demo(arg: str | None) -> AgentBackend:
    from .demo import DemoBackend

    if arg:
        raise ValueError("the demo agent takes no argument")
    return DemoBackend()


register_backend("demo", _demo, "demo")

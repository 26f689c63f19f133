"""Which extension methods a client asked for in ``initialize``: the one place that answers "does this
connection want extension method M".

ACP's extensibility rule: a custom capability is advertised in ``_meta`` and used only when the other
side declared it. A client declares the extension methods it wants to receive under
``clientCapabilities._meta.acp_bridge.extensions``, a list whose entries are either a method name
(``"_harn/agentEvent"``) or a whole namespace (``"_harn/*"``). Harn's own declaration, the ``harn`` key
of ``clientCapabilities._meta``, implies ``_harn/*``, and so does the Harn profile (Harn's wire format
includes ``_harn/agentEvent`` for every client). Standard ACP methods are always wanted.

See ``docs/decisions/0009-extension-notifications-on-declaration.md``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from acp_bridge.rpc.errors import InvalidParams
from acp_bridge.translate import Profile
from acp_bridge.translate.capabilities import EXTENSION_DECLARATION_FIELD

__all__ = [
    "DECLARATION_FIELD",
    "HARN_NAMESPACE",
    "NO_EXTENSIONS",
    "ClientExtensions",
    "client_extensions",
    "is_extension_method",
]

DECLARATION_FIELD: Final = EXTENSION_DECLARATION_FIELD
"""Where a client lists the extension methods it wants (named in errors and in the capability block)."""
HARN_NAMESPACE: Final = "_harn/*"
"""What the ``harn`` key and the Harn profile declare."""
_WILDCARD: Final = "/*"


def is_extension_method(method: str) -> bool:
    """True for ACP extension methods (a leading ``_``); they need the client's declaration."""
    return method.startswith("_")


@dataclass(frozen=True, slots=True)
class ClientExtensions:
    """The extension methods one connection declared (exact names and ``namespace/*`` entries)."""

    methods: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()
    """Namespace prefixes, each ending in ``/`` (``"_harn/"`` for the entry ``"_harn/*"``)."""

    @classmethod
    def of(cls, entries: Iterable[str]) -> ClientExtensions:
        """Parse declaration entries: ``"ns/*"`` is a namespace, anything else a method name."""
        methods: set[str] = set()
        namespaces: set[str] = set()
        for entry in entries:
            if entry.endswith(_WILDCARD):
                namespaces.add(entry[: -len(_WILDCARD) + 1])
            else:
                methods.add(entry)
        return cls(frozenset(methods), frozenset(namespaces))

    def wants(self, method: str) -> bool:
        """Does this connection want notifications (or requests) of ``method``?"""
        if not is_extension_method(method) or method in self.methods:
            return True
        return any(method.startswith(prefix) for prefix in self.namespaces)

    def enabled(self, offered: Iterable[str]) -> list[str]:
        """The ``offered`` extension methods this connection will receive, sorted."""
        return sorted(method for method in offered if self.wants(method))


NO_EXTENSIONS: Final = ClientExtensions()
"""What a connection wants before ``initialize`` (standard methods only); shared."""


def client_extensions(client_capabilities: Mapping[str, Any], profile: Profile) -> ClientExtensions:
    """What a client's ``initialize`` capabilities (and its resolved profile) ask for.

    Raises :class:`InvalidParams` when the declaration is present but not a list of strings: a client
    that misspelt it would otherwise silently receive nothing.
    """
    meta = client_capabilities.get("_meta")
    meta = meta if isinstance(meta, Mapping) else {}
    entries: list[str] = []
    ours = meta.get("acp_bridge")
    if isinstance(ours, Mapping) and "extensions" in ours:
        declared = ours["extensions"]
        if not isinstance(declared, list) or not all(isinstance(e, str) for e in declared):
            raise InvalidParams(
                f"{DECLARATION_FIELD} must be a list of method names (or 'namespace/*')",
                data={"field": DECLARATION_FIELD},
            )
        entries.extend(declared)
    if profile is Profile.HARN or "harn" in meta:
        entries.append(HARN_NAMESPACE)
    return _parsed(tuple(entries))


@functools.lru_cache(maxsize=64)
def _parsed(entries: tuple[str, ...]) -> ClientExtensions:
    # Immutable, and nearly every client declares one of a few lists: connections share them.
    return ClientExtensions.of(entries)

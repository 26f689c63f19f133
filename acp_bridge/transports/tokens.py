"""Bearer tokens and the principals they stand for: the ``--tokens`` file and ``--token``.

The file is TOML, one ``[[token]]`` table per credential::

    [[token]]
    name = "laptop"          # shown in logs, presence and audit; never the secret
    secret = "…"             # compared in constant time, never logged
    role = "controller"      # or "observer"

:func:`load_token_file` turns a bad file into one :class:`TokenFileError` line (no secret in it);
:class:`TokenTable` finds the principal a presented token names, comparing against every secret so
that timing tells nothing about which one (or whether any) matched.
"""

from __future__ import annotations

import hmac
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acp_bridge.rpc.principal import Principal, Role

__all__ = ["SINGLE_TOKEN_NAME", "TokenEntry", "TokenFileError", "TokenTable", "load_token_file"]

SINGLE_TOKEN_NAME = "token"
"""The principal name of ``--token``/``ACP_BRIDGE_TOKEN``: one controller."""


class TokenFileError(ValueError):
    """The tokens file cannot be used; the message is one line and names no secret."""


@dataclass(frozen=True, repr=False)
class TokenEntry:
    """One credential: a principal and its secret (kept out of ``repr``)."""

    principal: Principal
    secret: bytes

    def __repr__(self) -> str:
        return f"TokenEntry({self.principal.name!r}, {self.principal.role.value})"


def _encode(secret: str) -> bytes:
    # Header values decode as ISO-8859-1 and may hold any code point below 256.
    return secret.encode("utf-8", "surrogateescape")


class TokenTable:
    """The credentials a server accepts."""

    def __init__(self, entries: Iterable[TokenEntry] = ()) -> None:
        self.entries: tuple[TokenEntry, ...] = tuple(entries)

    @classmethod
    def build(cls, token: str | None, file_entries: Sequence[TokenEntry] = ()) -> TokenTable:
        """The single ``--token`` (a controller named ``token``) plus the file's entries."""
        single = [TokenEntry(Principal(SINGLE_TOKEN_NAME), _encode(token))] if token else []
        return cls([*single, *file_entries])

    def __bool__(self) -> bool:
        return bool(self.entries)

    def authenticate(self, candidates: Sequence[str]) -> Principal | None:
        """The principal of the first entry some candidate matches, ``None`` if none does.

        Every candidate is compared with every secret (no early exit).
        """
        found: Principal | None = None
        for candidate in candidates:
            encoded = _encode(candidate)
            for entry in self.entries:
                if hmac.compare_digest(encoded, entry.secret) and found is None:
                    found = entry.principal
        return found


def load_token_file(path: str | Path) -> list[TokenEntry]:
    """The entries of a tokens file (raises :class:`TokenFileError` with a one-line reason)."""
    where = str(path)
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise TokenFileError(f"cannot read tokens file {where}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        # The parser's message names a line and column, never the value.
        raise TokenFileError(f"tokens file {where} is not valid TOML: {exc}") from None
    tables = data.get("token")
    if not isinstance(tables, list) or not tables:
        raise TokenFileError(f"tokens file {where} has no [[token]] tables")
    entries: list[TokenEntry] = []
    names: set[str] = set()
    secrets: set[bytes] = set()
    for number, table in enumerate(tables, start=1):
        entry = _entry(where, number, table)
        if entry.principal.name in names:
            raise TokenFileError(f"tokens file {where}: token #{number}: duplicate name")
        if entry.secret in secrets:
            raise TokenFileError(f"tokens file {where}: token #{number}: secret used twice")
        names.add(entry.principal.name)
        secrets.add(entry.secret)
        entries.append(entry)
    return entries


def _entry(where: str, number: int, table: Any) -> TokenEntry:
    prefix = f"tokens file {where}: token #{number}"
    if not isinstance(table, dict):
        raise TokenFileError(f"{prefix} is not a table")
    unknown = sorted(set(table) - {"name", "secret", "role"})
    if unknown:
        raise TokenFileError(f"{prefix}: unknown key(s) {', '.join(unknown)}")
    name, secret, role = table.get("name"), table.get("secret"), table.get("role", "controller")
    if not isinstance(name, str) or not name.strip():
        raise TokenFileError(f"{prefix}: name must be a non-empty string")
    if not isinstance(secret, str) or len(secret) < 8:
        raise TokenFileError(f"{prefix} ({name}): secret must be a string of 8 characters or more")
    if role not in {r.value for r in Role}:
        raise TokenFileError(f'{prefix} ({name}): role must be "controller" or "observer"')
    return TokenEntry(Principal(name.strip(), Role(role)), _encode(secret))

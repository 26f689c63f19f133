"""Checking the params families of ACP methods share (``sessionId``, ``cwd``, ``mcpServers``, replay mode)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from acp_bridge.rpc.errors import InvalidParams
from acp_bridge.translate import Profile

__all__ = [
    "additional_directories_of",
    "cwd_of",
    "mcp_servers_of",
    "replay_mode_of",
    "session_id_of",
]


def session_id_of(params: Mapping[str, Any]) -> str:
    """``sessionId``, required and non-empty."""
    value = params.get("sessionId")
    if not isinstance(value, str) or not value:
        raise InvalidParams("sessionId is required", data={"field": "sessionId"})
    return value


def cwd_of(params: Mapping[str, Any], *, required: bool = True) -> str | None:
    """``cwd``, an absolute path (``None`` when absent and not ``required``)."""
    cwd = params.get("cwd")
    if cwd is None and not required:
        return None
    if not isinstance(cwd, str) or not os.path.isabs(cwd):
        raise InvalidParams("cwd must be an absolute path", data={"field": "cwd"})
    return cwd


def additional_directories_of(params: Mapping[str, Any]) -> tuple[str, ...]:
    """``additionalDirectories``: absolute paths, in order, without repeats (omitted = none)."""
    value = params.get("additionalDirectories")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(path, str) and os.path.isabs(path) for path in value
    ):
        raise InvalidParams(
            "additionalDirectories must be a list of absolute paths",
            data={"field": "additionalDirectories"},
        )
    return tuple(dict.fromkeys(value))


def mcp_servers_of(params: Mapping[str, Any]) -> tuple[dict[str, Any], ...] | None:
    """``mcpServers`` as given (``None`` when absent: Harn hosts may omit it)."""
    servers = params.get("mcpServers")
    if servers is None:
        return None
    if not isinstance(servers, list) or not all(
        isinstance(server, dict) and isinstance(server.get("name"), str) for server in servers
    ):
        raise InvalidParams(
            "mcpServers must be a list of MCP server objects with a name",
            data={"field": "mcpServers"},
        )
    return tuple(servers)


def replay_mode_of(params: Mapping[str, Any], profile: Profile) -> str:
    """How ``session/load`` replays: ``_meta.acp_bridge.replay`` (``"exact"`` or ``"compact"``),
    else ``"exact"`` for the Harn profile (Harn replays every event) and ``"compact"`` for the
    strict one (decision 0020)."""
    meta = params.get("_meta")
    ours = meta.get("acp_bridge") if isinstance(meta, Mapping) else None
    mode = ours.get("replay") if isinstance(ours, Mapping) else None
    if mode is None:
        return "exact" if profile is Profile.HARN else "compact"
    if mode not in ("exact", "compact"):
        raise InvalidParams(
            "_meta.acp_bridge.replay must be 'exact' or 'compact'",
            data={"field": "_meta.acp_bridge.replay"},
        )
    return str(mode)

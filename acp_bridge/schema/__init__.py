"""The official ACP v1 JSON Schema and method table, vendored as data (see ``SOURCE.md``)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["load_meta", "load_schema"]


@cache
def load_schema() -> dict[str, Any]:
    """The ACP v1 JSON Schema (draft 2020-12)."""
    data: dict[str, Any] = json.loads(resources.files(__name__).joinpath("schema.json").read_text())
    return data


@cache
def load_meta() -> dict[str, Any]:
    """The ACP v1 method table (``agentMethods``, ``clientMethods``, ``protocolMethods``)."""
    data: dict[str, Any] = json.loads(resources.files(__name__).joinpath("meta.json").read_text())
    return data

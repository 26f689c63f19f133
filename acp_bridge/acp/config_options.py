"""Session config options on the wire (ACP ``SessionConfigOption``), per client.

A boolean option is only shown to clients that advertise
``clientCapabilities.session.configOptions.boolean`` (ACP: without it a client may not understand
``type: "boolean"``); select options go to every client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from acp_bridge.agents.base import ConfigOption

__all__ = ["option_set", "supports_boolean_options", "wire_options"]


def supports_boolean_options(client_capabilities: Mapping[str, Any]) -> bool:
    """Whether the client advertised ``session.configOptions.boolean``."""
    session = client_capabilities.get("session")
    options = session.get("configOptions") if isinstance(session, Mapping) else None
    return isinstance(options, Mapping) and isinstance(options.get("boolean"), Mapping)


def wire_options(
    options: Sequence[ConfigOption], client_capabilities: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``options`` as ``SessionConfigOption`` objects for a client with these capabilities."""
    booleans = supports_boolean_options(client_capabilities)
    wire = []
    for option in options:
        entry: dict[str, Any] = {"id": option.id, "name": option.name}
        if option.kind == "boolean":
            if not booleans:
                continue
            entry.update(type="boolean", currentValue=bool(option.current_value))
        else:
            entry.update(
                type="select",
                currentValue=option.current_value,
                options=[{"value": value, "name": name} for value, name in option.options],
            )
        if option.description:
            entry["description"] = option.description
        if option.category:
            entry["category"] = option.category
        wire.append(entry)
    return wire


def option_set(options: Sequence[ConfigOption]) -> dict[str, ConfigOption]:
    """The options by id."""
    return {option.id: option for option in options}

"""Render the mapping tables of ``docs/`` from the translator's own tables.

``python -m acp_bridge.translate.tables`` rewrites ``docs/event-mapping.md`` and
``docs/runtime-mapping.md``; a test fails when the committed files differ from what this renders.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .harn import ROWS, UNKNOWN_ROW_FIELDS, Route
from .runtime import RUNTIME_EVENT_METHOD, RUNTIME_ROWS

__all__ = ["BRIDGE_UPDATES", "render_event_mapping", "render_runtime_mapping", "write_docs"]

BRIDGE_UPDATES: tuple[tuple[str, str], ...] = (
    ("user_message_chunk", "the prompt of a turn, to the session's other clients and in replays"),
    (
        "available_commands_update",
        "the backend's slash commands, after each new/load/resume response",
    ),
    ("current_mode_update", "`session/set_mode` by one client, to the session's other clients"),
    (
        "config_option_update",
        "`session/set_config_option` by one client, to the session's other clients; to every"
        " client when the backend changes an option itself (`ctx.config_options_changed()`)",
    ),
    (
        "session_info_update",
        "after each turn whose title (set from the first prompt) or `updatedAt` changed, before the"
        " turn's answer, to every client; the same values `session/list` shows; not replayed",
    ),
    (
        "usage_update",
        "from token-counting events when the context window is known (decision 0027): rows above",
    ),
)
"""The standard ``sessionUpdate`` kinds the bridge sends itself (not one event's translation)."""


def _bridge_updates() -> list[str]:
    lines = [
        "",
        "## Session updates the bridge sends itself",
        "",
        "| `sessionUpdate` | when |",
        "| --- | --- |",
    ]
    lines += [f"| `{kind}` | {when} |" for kind, when in BRIDGE_UPDATES]
    return lines


def _routes(routes: tuple[Route, ...]) -> str:
    return " / ".join(
        f"{'STD' if r.standard else ('EXT-SU' if r.method == 'session/update' else 'EXT-N')} `{r.name}`"
        for r in routes
    )


def render_event_mapping() -> str:
    """``docs/event-mapping.md``: every Harn event, its wire route in each profile, and its fields."""
    lines = [
        "# Harn `AgentEvent` → ACP wire mapping",
        "",
        "Generated from `acp_bridge/translate/harn.py` by `python -m acp_bridge.translate.tables`;",
        "a test keeps this file in sync with the code.",
        "",
        "* **STD**: a standard ACP v1 `session/update` variant.",
        "* **EXT-SU**: a non-standard `sessionUpdate` whose data is under `update._meta.harn`"
        " (harn profile only — strict clients drop these).",
        "* **EXT-N**: a `_harn/agentEvent` extension notification `{sessionId, kind, ...fields}`.",
        "* Field lists use the wire (camelCase) names; `x?` is omitted when absent, `(null ok)` is",
        "  always present and may be `null`. Nested opaque JSON is passed through unchanged.",
        "* The strict profile's rules are in `docs/decisions/0002-strict-profile-mapping.md`.",
        "",
        "| event `type` | harn profile | strict profile | fields |",
        "| --- | --- | --- | --- |",
    ]
    for event_type in sorted(ROWS):
        row = ROWS[event_type]
        lines.append(
            f"| `{event_type}` | {_routes(row.harn)} | {_routes(row.strict)} | {row.fields} |"
        )
    lines.append(f"| *(unknown type)* | EXT-N `<type>` | EXT-N `<type>` | {UNKNOWN_ROW_FIELDS} |")
    lines += _bridge_updates()
    lines += [
        "",
        "## Replay",
        "",
        "Replayed history (`session/load`) carries `update._meta.harn.replayed = true` on",
        "`session/update` and `params.replayed = true` on `_harn/agentEvent`; the harn profile also adds",
        'Harn\'s root member `"_harn": {"replayed": true}`.',
        "",
    ]
    return "\n".join(lines)


def render_runtime_mapping() -> str:
    """``docs/runtime-mapping.md``: the run-style runtime's events and their ACP translation."""
    lines = [
        "# Runtime dialect (seed 000) → ACP wire mapping",
        "",
        "Generated from `acp_bridge/translate/runtime.py` by `python -m acp_bridge.translate.tables`;",
        "a test keeps this file in sync with the code.",
        "",
        'The runtime\'s events are externally tagged (`{"TextDelta": {...}}`) and carry a `run_id`;',
        "`RunStarted` binds a run to a session (or every run is bound to the session the bridge gives",
        "the translator: the ACP session of the prompt, or `--session-id`). Output is valid ACP v1 in",
        f"both profiles. Extension notifications use the method `{RUNTIME_EVENT_METHOD}`",
        "with `{sessionId, kind, ...fields}`; extras on standard updates live under",
        "`_meta.acp_bridge`. A `tool_call` is always sent before the first update of its id.",
        "",
        "| runtime event | wire | fields / notes |",
        "| --- | --- | --- |",
    ]
    for variant, wire, fields in RUNTIME_ROWS:
        lines.append(f"| `{variant}` | {wire} | {fields} |")
    lines += _bridge_updates()
    lines.append("")
    return "\n".join(lines)


def write_docs(docs_dir: Path) -> None:
    """Write both tables into ``docs_dir``."""
    (docs_dir / "event-mapping.md").write_text(render_event_mapping())
    (docs_dir / "runtime-mapping.md").write_text(render_runtime_mapping())


if __name__ == "__main__":  # pragma: no cover
    write_docs(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs"))

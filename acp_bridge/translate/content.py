"""ACP payloads that arrive as plain dicts: content blocks and tool-call updates.

* :func:`content_block_problem` says whether a dict is a valid ``ContentBlock`` of the v1 schema, and
  if not, why not. Used in both directions: to put a block on the strict wire only when a strict client
  can parse it, and to refuse a ``session/prompt`` block no agent could make sense of. The checks follow
  the vendored schema (``TextContent``, ``ImageContent``, ``AudioContent``, ``ResourceLink``,
  ``EmbeddedResource``, ``Annotations``); unknown extra keys are allowed, as the schema allows them.
* :func:`strict_tool_call_update` makes a backend-supplied ``ToolCallUpdate`` (the ``toolCall`` of a
  permission request) valid for a strict client without losing anything: fields that are not valid ACP
  move to ``_meta.acp_bridge``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "CONTENT_BLOCK_TYPES",
    "content_block_problem",
    "is_content_block",
    "strict_tool_call_update",
]

_REQUIRED_STR: Final[dict[str, tuple[str, ...]]] = {
    "text": ("text",),
    "image": ("data", "mimeType"),
    "audio": ("data", "mimeType"),
    "resource_link": ("uri", "name"),
    "resource": (),
}
CONTENT_BLOCK_TYPES: Final = frozenset(_REQUIRED_STR)
"""The ``type`` values of ACP v1 content blocks."""

_OPTIONAL_STR: Final[dict[str, tuple[str, ...]]] = {
    "text": (),
    "image": ("uri",),
    "audio": (),
    "resource_link": ("description", "mimeType", "title"),
    "resource": (),
}
_ROLES: Final = frozenset({"assistant", "user"})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _meta_problem(block: Mapping[str, Any], where: str) -> str | None:
    meta = block.get("_meta")
    if meta is not None and not isinstance(meta, dict):
        return f"{where}_meta must be an object"
    return None


def _annotations_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return "annotations must be an object"
    audience = value.get("audience")
    if audience is not None and (
        not isinstance(audience, list)
        or not all(isinstance(role, str) and role in _ROLES for role in audience)
    ):
        return 'annotations.audience must be a list of "assistant"/"user"'
    last_modified = value.get("lastModified")
    if last_modified is not None and not isinstance(last_modified, str):
        return "annotations.lastModified must be a string"
    priority = value.get("priority")
    if priority is not None and not _is_number(priority):
        return "annotations.priority must be a number"
    return _meta_problem(value, "annotations.")


def _resource_problem(resource: Any) -> str | None:
    if not isinstance(resource, dict):
        return "resource must be an object"
    if not isinstance(resource.get("uri"), str):
        return "resource.uri must be a string"
    if not isinstance(resource.get("text"), str) and not isinstance(resource.get("blob"), str):
        return "resource needs a string text or blob"
    mime = resource.get("mimeType")
    if mime is not None and not isinstance(mime, str):
        return "resource.mimeType must be a string"
    return _meta_problem(resource, "resource.")


def content_block_problem(block: Any) -> str | None:
    """``None`` if ``block`` is a valid ACP v1 ``ContentBlock``, else a one-line reason."""
    if not isinstance(block, dict):
        return "a content block must be an object"
    kind = block.get("type")
    if not isinstance(kind, str) or kind not in _REQUIRED_STR:
        return f"unknown content block type {kind!r}"
    required = _REQUIRED_STR[kind]
    for key in required:
        if not isinstance(block.get(key), str):
            return f"{kind} block needs a string {key!r}"
    for key in _OPTIONAL_STR[kind]:
        value = block.get(key)
        if value is not None and not isinstance(value, str):
            return f"{kind} block: {key!r} must be a string"
    if kind == "resource_link":
        size = block.get("size")
        if size is not None and not _is_int(size):
            return "resource_link block: 'size' must be an integer"
    if kind == "resource":
        problem = _resource_problem(block.get("resource"))
        if problem is not None:
            return problem
    return _annotations_problem(block.get("annotations")) or _meta_problem(block, "")


def is_content_block(block: Any) -> bool:
    """True if ``block`` is a valid ACP v1 ``ContentBlock``."""
    return content_block_problem(block) is None


TOOL_KINDS: Final = frozenset(
    {
        "read",
        "edit",
        "delete",
        "move",
        "search",
        "execute",
        "think",
        "fetch",
        "switch_mode",
        "other",
    }
)
TOOL_CALL_STATUSES: Final = frozenset({"pending", "in_progress", "completed", "failed"})


def _tool_call_content_ok(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    kind = item.get("type")
    if kind == "content":
        return is_content_block(item.get("content"))
    if kind == "diff":
        old = item.get("oldText")
        return (
            isinstance(item.get("path"), str)
            and isinstance(item.get("newText"), str)
            and (old is None or isinstance(old, str))
        )
    if kind == "terminal":
        return isinstance(item.get("terminalId"), str)
    return False


def _location_ok(item: Any) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        return False
    line = item.get("line")
    return line is None or (_is_int(line) and line >= 0)


def strict_tool_call_update(tool_call: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``tool_call`` that is a valid ACP ``ToolCallUpdate``; the rest in ``_meta.acp_bridge``.

    Unknown keys and values of the wrong shape go to ``_meta.acp_bridge.fields``; list items that
    are not valid (``content``, ``locations``) go to ``_meta.acp_bridge.dropped.<key>``. Raises
    :class:`ValueError` without a string ``toolCallId`` (nothing could refer to the call).
    """
    tool_call_id = tool_call.get("toolCallId")
    if not isinstance(tool_call_id, str):
        raise ValueError("a tool call needs a string toolCallId")
    clean: dict[str, Any] = {"toolCallId": tool_call_id}
    moved: dict[str, Any] = {}
    dropped: dict[str, list[Any]] = {}
    for key, value in tool_call.items():
        if key == "toolCallId" or value is None:
            continue
        if key == "title":
            ok = isinstance(value, str)
        elif key == "kind":
            ok = isinstance(value, str) and value in TOOL_KINDS
        elif key == "status":
            ok = isinstance(value, str) and value in TOOL_CALL_STATUSES
        elif key in ("rawInput", "rawOutput"):
            ok = True
        elif key == "_meta":
            ok = isinstance(value, dict)
        elif key in ("content", "locations") and isinstance(value, list):
            check = _tool_call_content_ok if key == "content" else _location_ok
            kept = [item for item in value if check(item)]
            if len(kept) != len(value):
                dropped[key] = [item for item in value if not check(item)]
            clean[key] = kept
            continue
        else:
            ok = False
        if ok:
            clean[key] = dict(value) if key == "_meta" else value
        else:
            moved[key] = value
    if moved or dropped:
        extension: dict[str, Any] = {}
        if moved:
            extension["fields"] = moved
        if dropped:
            extension["dropped"] = dropped
        meta = clean.setdefault("_meta", {})
        meta["acp_bridge"] = extension
    return clean

"""The text a host shows of an assistant message: Harn's visible-text rules, as a pure function.

Harn's ACP adapter puts a display copy of every ``agent_message_chunk`` under
``content._meta.harn.visible_text`` and ``visible_delta``: the chunk with the model's internal protocol
removed (``sanitize_visible_assistant_text(chunk, partial=true)`` in Harn's
``crates/harn-vm/src/visible_text.rs``). The adapter computes it per chunk, without state, so both fields
hold the same value. The rules, applied in this order:

1. hidden blocks removed: ``<think>…</think>`` and an unclosed ``<think>`` to the end; tool calls
   (``<|tool_call|>…</|tool_call|>``, ``<tool_call>``/``<toolcall>``…); ``<done>…</done>``;
   ``<tool_result …>…</tool_result>``; ``[result of X]…[end of X]``; a line that is only ``DONE`` or
   ``PLAN_READY``; a trailing ``PLAN_READY``;
2. the ``##DONE##`` sentinel removed wherever it is, except inside code (a fence or an inline span);
   the words it separated keep one space; a partial text also loses a trailing ``##``, ``##DO``…;
3. ``<user_response>`` blocks at the start of a line (outside fences) replace everything else;
   otherwise ``<assistant_prose>`` wrappers at the start of a line are unwrapped;
4. a ```` ```tool ```` fence holding one call object (``{"name": …, "args": {…}}``) removed;
5. a ```` ```json ```` fence holding planner JSON (planner ``mode`` or internal keys) removed, and inline
   ``{"mode": "fast_execute" | "plan_then_execute" | "ask_user" …}`` objects (to the end while partial);
6. truncated tool-call / prose tag litter (``_call>``, ``</assistant_prose>``…) removed outside fences;
7. internal verdict JSON (``{"verdict": "done", "reasoning": …}`` and the judges' shapes) removed when
   it is the whole text, trails it, or follows a leading ``<done>``/``done>`` marker;
8. while partial: a block still open at the end (tool call, ``<done>``, ``<user_response>``, tool
   result, ``[result of``, a ```` ```tool ```` fence) is held back from its opener on, and so is a trailing
   prefix of a marker at the start of a line (``<too``, ``DON``);
9. ``\\r\\n`` → ``\\n``, ``\\n\\n\\n`` → ``\\n\\n``, surrounding whitespace trimmed.

Written from the rules of Harn commit ``0d8c2487a6701c24e1a6653a826598979ae02d87`` (with
``text_index.rs`` at ``abe7f0cc``); decision ``docs/decisions/0015-harn-visible-text.md``.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from typing import Any, Final

__all__ = ["sanitize_visible_text"]

_WHITESPACE: Final = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Unicode White_Space, Harn's notion of whitespace for trimming and ``\\s`` (Python's differs a little)."""
_S: Final = "[" + re.escape(_WHITESPACE) + "]"

_HIDDEN_BLOCKS: Final = tuple(
    re.compile(pattern, flags)
    for pattern, flags in (
        (r"<think>.*?</think>", re.S),
        (r"<think>.*\Z", re.S),
        (r"<\|tool_call\|>.*?</\|tool_call\|>", re.S),
        (r"<tool_?call>.*?</tool_?call>", re.S),
        (r"<done>.*?</done>", re.S),
        (r"<tool_result[^>]*>.*?</tool_result>", re.S),
        (r"\[result of [^\]]+\].*?\[end of [^\]]+\]", re.S),
        (rf"^{_S}*(DONE|PLAN_READY){_S}*$", re.M),
        (rf"{_S}*PLAN_READY{_S}*\Z", re.S),
    )
)
_USER_RESPONSE: Final = re.compile(
    rf"^[ \t]*<user_?response>{_S}*(.*?){_S}*</user_?response>", re.M | re.S
)
_ASSISTANT_PROSE: Final = re.compile(
    rf"^[ \t]*<assistant_?prose>{_S}*(.*?){_S}*</assistant_?prose>", re.M | re.S
)
_TOOL_FENCE: Final = re.compile(r"^[ \t]*```tool[ \t]*\r?\n(.*?)```", re.M | re.S)
_JSON_FENCE: Final = re.compile(r"```json[^\n]*\n(.*?)```", re.S)
_PLANNER_MODE: Final = rf'\{{{_S}*"mode"{_S}*:{_S}*"(?:fast_execute|plan_then_execute|ask_user)"'
_INLINE_PLANNER: Final = re.compile(_PLANNER_MODE + r".*?\}", re.S)
_PARTIAL_INLINE_PLANNER: Final = re.compile(_PLANNER_MODE + r".*\Z", re.S)
_PROTOCOL_RESIDUE: Final = re.compile(r"<?/?\|?(?:t?o?o?l?)_call\|?>|<?/?\|?[a-z]*_prose>")

_ANY_MARKUP: Final = re.compile(r"[<>\[\]{}#`]|DONE|PLAN_READY")
"""Text without any of these is untouched by every rule except the trim and the marker hold-back."""

_DONE_SENTINEL: Final = "##DONE##"
_TOOL_FENCE_OPENER: Final = "```tool"
_PLANNER_MODES: Final = frozenset({"fast_execute", "plan_then_execute", "ask_user"})
_PLANNING_KEYS: Final = frozenset(
    {
        "plan",
        "steps",
        "tool_calls",
        "tool_name",
        "verification",
        "execution_mode",
        "required_outputs",
        "files_to_edit",
        "next_action",
        "reasoning",
        "direction",
        "targets",
        "tasks",
        "unknowns",
    }
)
_VERDICT_KEYS: Final = frozenset(
    {"verdict", "reasoning", "reason", "next_step", "nextStep", "critique", "confidence"}
    | {"category", "error"}
)
_LEADING_DONE_MARKERS: Final = ("</done>", "<done>", "/done>", "done>")
_UNCLOSED_TAGS: Final = (
    ("<tool_call>", "</tool_call>"),
    ("<toolcall>", "</toolcall>"),
)
_UNCLOSED_TAGS_AFTER_FENCE: Final = (
    ("<done>", "</done>"),
    ("<user_response>", "</user_response>"),
    ("<userresponse>", "</userresponse>"),
)
_PARTIAL_MARKERS: Final = (
    "<|tool_call|>",
    "<tool_call>",
    "<toolcall>",
    "<assistant_prose>",
    "<assistantprose>",
    "<user_response>",
    "<userresponse>",
    "<done>",
    "<tool_result",
    "[result of ",
    _DONE_SENTINEL,
    "DONE",
    "PLAN_READY",
)

_MARKER_CHARS: Final = frozenset("".join(_PARTIAL_MARKERS))


def _marker_prefixes() -> dict[str, tuple[tuple[int, int], ...]]:
    """Every proper prefix of a partial marker, with where it comes in the hold-back's search
    order: (marker index, minus its length), so sorting the hits gives that order."""
    found: dict[str, list[tuple[int, int]]] = {}
    for index, marker in enumerate(_PARTIAL_MARKERS):
        for length in range(len(marker) - 1, 0, -1):
            found.setdefault(marker[:length], []).append((index, -length))
    return {prefix: tuple(hits) for prefix, hits in found.items()}


_MARKER_PREFIXES: Final = _marker_prefixes()
_LONGEST_MARKER_PREFIX: Final = max(map(len, _MARKER_PREFIXES))
_MARKER_PREFIX_START: Final = re.compile(
    "[" + "".join(sorted({re.escape(prefix[0]) for prefix in _MARKER_PREFIXES})) + "]"
)
"""Where a marker prefix can begin: the markers' first characters."""


def sanitize_visible_text(text: str, *, partial: bool) -> str:
    """The part of an assistant message a host should show (``partial``: the text is still streaming)."""
    if _ANY_MARKUP.search(text) is None:
        # Plain prose (most chunks): every rule but the trim and the DONE/PLAN_READY prefix hold-back
        # would leave it as it is, so skip them (this runs for every Harn-profile chunk).
        text = text.strip(_WHITESPACE)
        if partial:
            text = _hold_back_marker_prefix(text)
        return text.replace("\r\n", "\n").replace("\n\n\n", "\n\n").strip(_WHITESPACE)
    return _sanitize(text, partial)


def _sanitize(text: str, partial: bool) -> str:
    """Every rule, in Harn's order."""
    for pattern in _HIDDEN_BLOCKS:
        text = pattern.sub("", text)
    text = _strip_done_sentinels(text, partial)
    text = _visible_prose(text)
    text = _TOOL_FENCE.sub(lambda m: "" if _is_tool_call(m[1]) else m[0], text)
    text = _JSON_FENCE.sub(lambda m: "" if _is_planning_json(m[1]) else m[0], text)
    text = _INLINE_PLANNER.sub("", text)
    if partial:
        text = _PARTIAL_INLINE_PLANNER.sub("", text)
    text = _strip_protocol_residue(text)
    text = _strip_leading_done_marker(text)
    text = _strip_trailing_verdict(text)
    text = text.strip(_WHITESPACE)
    if _is_verdict_json(text):
        text = ""
    if partial:
        text = _hold_back_unclosed_block(text)
        text = _hold_back_marker_prefix(text)
    return text.replace("\r\n", "\n").replace("\n\n\n", "\n\n").strip(_WHITESPACE)


# --- positions ------------------------------------------------------------------------------------


class _Positions:
    """Answers "inside a closed ``` fence?" and "first non-blank thing on its line?" for one text."""

    __slots__ = ("fences", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.fences = [m.start() for m in re.finditer("```", text)]

    def in_fence(self, offset: int) -> bool:
        # Inside only when an opened fence is closed at or after the offset: an unbalanced trailing
        # fence does not swallow what follows it.
        before = bisect_left(self.fences, offset)
        return before < len(self.fences) and before % 2 == 1

    def line_leading(self, offset: int) -> bool:
        line_start = self.text.rfind("\n", 0, offset) + 1
        return all(ch in " \t\r" for ch in self.text[line_start:offset])

    def protocol_tag_at(self, offset: int) -> bool:
        """A tag counts as protocol only at the start of a line and outside fenced code."""
        return self.line_leading(offset) and not self.in_fence(offset)

    def in_code(self, offset: int) -> bool:
        """Inside a fence, or inside an inline code span (odd number of backticks before, on the line)."""
        line_start = self.text.rfind("\n", 0, offset) + 1
        return self.in_fence(offset) or self.text.count("`", line_start, offset) % 2 == 1


# --- the rules --------------------------------------------------------------------------------------


def _strip_done_sentinels(text: str, partial: bool) -> str:
    if "#" not in text:
        return text
    positions = _Positions(text)
    out: list[str] = []
    cursor = 0
    while (at := text.find(_DONE_SENTINEL, cursor)) != -1:
        end = at + len(_DONE_SENTINEL)
        if positions.in_code(at):
            out.append(text[cursor:end])
            cursor = end
            continue
        out.append(text[cursor:at])
        rest = text[end:]
        rest_trimmed = rest.lstrip(" \t")
        so_far = "".join(out)
        if (
            so_far
            and not so_far.endswith((" ", "\t", "\n"))
            and rest_trimmed
            and not rest_trimmed.startswith("\n")
        ):
            out.append(" ")  # the words the sentinel separated keep exactly one space
        cursor = end + len(rest) - len(rest_trimmed)
    out.append(text[cursor:])
    result = "".join(out)
    if partial:
        for length in range(len(_DONE_SENTINEL) - 1, 1, -1):
            if result.endswith(_DONE_SENTINEL[:length]):
                cut = len(result) - length
                if not _Positions(result).in_code(cut):
                    result = result[:cut]
                break
    return result


def _visible_prose(text: str) -> str:
    """The ``<user_response>`` sections if there are any, else the text with prose wrappers removed."""
    positions = _Positions(text)
    sections = [
        section
        for m in _USER_RESPONSE.finditer(text)
        if not positions.in_fence(m.start()) and (section := m[1].strip(_WHITESPACE))
    ]
    if sections:
        return "\n\n".join(sections)
    out: list[str] = []
    last = 0
    for m in _ASSISTANT_PROSE.finditer(text):
        if positions.in_fence(m.start()):
            continue
        out.append(text[last : m.start()])
        out.append(m[1].strip(_WHITESPACE))
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def _parse(source: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(source)
    except ValueError:
        return False, None


def _is_tool_call(body: str) -> bool:
    """A ```tool fence body that is one call object: a non-blank ``name`` and object ``args``."""
    ok, call = _parse(body.strip(_WHITESPACE))
    if not ok or not isinstance(call, dict):
        return False
    name = call.get("name")
    args = call["args"] if "args" in call else call.get("arguments")
    return isinstance(name, str) and bool(name.strip(_WHITESPACE)) and isinstance(args, dict)


def _keys(value: Any, into: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            into.add(key)
            _keys(child, into)
    elif isinstance(value, list):
        for item in value:
            _keys(item, into)
    return into


def _is_planning_json(source: str) -> bool:
    trimmed = source.strip(_WHITESPACE)
    if not trimmed.startswith(("{", "[")):
        return False
    ok, parsed = _parse(trimmed)
    if not ok:
        return False
    if isinstance(parsed, dict) and parsed.get("mode") in _PLANNER_MODES:
        return True
    return not _keys(parsed, set()).isdisjoint(_PLANNING_KEYS)


def _strip_protocol_residue(text: str) -> str:
    positions = _Positions(text)
    return _PROTOCOL_RESIDUE.sub(lambda m: m[0] if positions.in_fence(m.start()) else "", text)


def _ascii_lower(value: str) -> str:
    return "".join(ch.lower() if ch.isascii() else ch for ch in value)


def _is_verdict_object(value: Any) -> bool:
    """A completion judge's or guard's control object: a known verdict with only its own keys."""
    if not isinstance(value, dict):
        return False
    verdict = value.get("verdict")
    if not isinstance(verdict, str) or not verdict.strip(_WHITESPACE):
        return False
    verdict = _ascii_lower(verdict.strip(_WHITESPACE))
    explained = not value.keys().isdisjoint({"reasoning", "reason", "next_step", "nextStep"})
    judged = not value.keys().isdisjoint({"critique", "confidence", "category", "error"})
    known = (
        (verdict in ("done", "continue") and explained)
        or (verdict in ("revise", "pass", "fail", "unclear") and judged)
        or (verdict in ("allow", "warn", "block") and judged)
    )
    return known and value.keys() <= _VERDICT_KEYS


def _is_verdict_json(source: str) -> bool:
    trimmed = source.strip(_WHITESPACE)
    if not trimmed.startswith("{"):
        return False
    ok, parsed = _parse(trimmed)
    return ok and _is_verdict_object(parsed)


def _verdict_prefix_length(source: str) -> int:
    """Length of a verdict object that opens ``source`` (after whitespace), or 0."""
    trimmed = source.lstrip(_WHITESPACE)
    if not trimmed.startswith("{"):
        return 0
    try:
        value, end = json.JSONDecoder().raw_decode(trimmed)
    except ValueError:
        return 0
    return len(source) - len(trimmed) + end if _is_verdict_object(value) else 0


def _strip_leading_done_marker(text: str) -> str:
    trimmed = text.lstrip(_WHITESPACE)
    for marker in _LEADING_DONE_MARKERS:
        if trimmed.startswith(marker):
            after = trimmed[len(marker) :].lstrip(_WHITESPACE)
            visible = after[_verdict_prefix_length(after) :].lstrip(_WHITESPACE)
            return text[: len(text) - len(trimmed)] + visible
    return text


def _strip_trailing_verdict(text: str) -> str:
    trimmed = text.rstrip(_WHITESPACE)
    if "verdict" not in trimmed and "\\u" not in trimmed:
        return text  # no object here can have a "verdict" key: skip the parses
    for index in range(len(trimmed) - 1, -1, -1):
        if trimmed[index] == "{" and _is_verdict_json(trimmed[index:]):
            return trimmed[:index].rstrip(_WHITESPACE)
    return text


def _hold_back_unclosed_block(text: str) -> str:
    """While streaming: cut the text at a hidden block that is still open at its end."""
    positions = _Positions(text)
    opened = text.rfind("<|tool_call|>")
    if opened != -1 and text.rfind("</|tool_call|>") < opened:
        return text[:opened]
    for opener, closer in _UNCLOSED_TAGS:
        opened = text.rfind(opener)
        if opened != -1 and positions.protocol_tag_at(opened) and text.rfind(closer) < opened:
            return text[:opened]
    held = _hold_back_tool_fence(text)
    if held is not None:
        return held
    for opener, closer in _UNCLOSED_TAGS_AFTER_FENCE:
        opened = text.rfind(opener)
        if opened != -1 and positions.protocol_tag_at(opened) and text.rfind(closer) < opened:
            return text[:opened]
    opened = text.rfind("[result of ")
    if opened != -1 and text.rfind("[end of ") < opened:
        return text[:opened]
    opened = text.rfind("<tool_result")
    if opened != -1 and positions.protocol_tag_at(opened) and text.rfind("</tool_result>") < opened:
        return text[:opened]
    return text


def _hold_back_tool_fence(text: str) -> str | None:
    """A ```tool fence still open (or a last line that is the start of ```tool) is held back."""
    search_end = len(text)
    while (opened := text.rfind(_TOOL_FENCE_OPENER, 0, search_end)) != -1:
        line_start = text.rfind("\n", 0, opened) + 1
        opener_rest, _, body = text[opened + len(_TOOL_FENCE_OPENER) :].partition("\n")
        if not text[line_start:opened].strip(_WHITESPACE) and not opener_rest.strip(_WHITESPACE):
            if "```" not in body:
                return text[:line_start]
            break
        search_end = opened
    last_line_start = text.rfind("\n") + 1
    last_line = text[last_line_start:].lstrip(" \t")
    if len(last_line) >= 4 and _TOOL_FENCE_OPENER.startswith(last_line):
        return text[:last_line_start]
    return None


def _hold_back_marker_prefix(text: str) -> str:
    """While streaming: a line ending in the start of a marker (``<tool_ca``, ``DON``) waits for more."""
    if not text or text[-1] not in _MARKER_CHARS:
        return text  # no prefix of any marker can end here
    # Each marker, longest prefix first, in _PARTIAL_MARKERS order: the first prefix the text ends
    # with that starts a protocol tag is held back. Found by looking the text's tails up (a few
    # dict lookups, only where a marker could begin) rather than trying every prefix of every
    # marker (~140 endswith calls).
    hits: list[tuple[int, int]] = []
    for start in _MARKER_PREFIX_START.finditer(text, max(0, len(text) - _LONGEST_MARKER_PREFIX)):
        found = _MARKER_PREFIXES.get(text[start.start() :])
        if found is not None:
            hits.extend(found)
    if not hits:
        return text
    hits.sort()
    positions = _Positions(text)
    for _, minus_length in hits:
        cut = len(text) + minus_length
        if positions.protocol_tag_at(cut):
            return text[:cut]
    return text

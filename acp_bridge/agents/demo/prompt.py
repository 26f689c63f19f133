"""What the demo understands of a prompt, and how it quotes one back."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Prompt", "parse_prompt", "quote", "sentence", "split_command"]

_COMMAND: Final = re.compile(r"/(\w+)(?:\s+(.*))?\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Prompt:
    """What the demo understood of a prompt."""

    text: str
    """The text blocks, joined by blank lines and stripped."""
    resources: tuple[str, ...]
    """URIs of ``resource_link`` and ``resource`` blocks."""
    others: tuple[str, ...]
    """Short descriptions of the remaining blocks (images, audio, unknown types)."""


def parse_prompt(blocks: Sequence[Any]) -> Prompt:
    """Sort ACP content blocks into text, resources and the rest; malformed blocks are ignored."""
    texts: list[str] = []
    resources: list[str] = []
    others: list[str] = []
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "resource_link" and isinstance(block.get("uri"), str):
            resources.append(block["uri"])
        elif kind == "resource":
            resource = block.get("resource")
            uri = resource.get("uri") if isinstance(resource, Mapping) else None
            resources.append(uri if isinstance(uri, str) else "an embedded resource")
        elif kind in ("image", "audio"):
            mime = block.get("mimeType")
            others.append(f"an {kind} ({mime})" if isinstance(mime, str) else f"an {kind}")
        elif isinstance(kind, str):
            others.append(f"a {kind} block")
    return Prompt("\n\n".join(texts).strip(), tuple(resources), tuple(others))


def split_command(text: str) -> tuple[str, str] | None:
    """``("/name", argument)`` when ``text`` is a slash command, else ``None``."""
    match = _COMMAND.match(text)
    return (f"/{match[1]}", match[2] or "") if match else None


def quote(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def sentence(prefix: str, quoted: str) -> str:
    """``prefix`` + ``quoted``, ended by a full stop unless the quote already ends a sentence."""
    return prefix + quoted + ("" if quoted[-2:-1] in (".", "!", "?", "…") else ".")

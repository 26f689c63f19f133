"""Loading the golden translation fixtures (``fixtures/golden/*.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "golden"


@dataclass(frozen=True)
class GoldenCase:
    name: str
    variant: str
    replay: bool
    input: list[dict[str, Any]]
    harn: list[dict[str, Any]]
    strict: list[dict[str, Any]]


def load_cases() -> list[GoldenCase]:
    cases = []
    for path in sorted(GOLDEN_DIR.glob("*.json")):
        raw = orjson.loads(path.read_bytes())
        cases.append(
            GoldenCase(
                name=raw["name"],
                variant=raw["variant"],
                replay=raw["replay"],
                input=raw["input"],
                harn=raw["harn"],
                strict=raw["strict"],
            )
        )
    return cases


CASES = load_cases()

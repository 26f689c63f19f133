"""A realistic mix of Harn events for benchmarks, taken from the golden fixtures."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"

# Rough shares in a real Harn turn: streaming text dominates, then tool traffic, then loop events.
WEIGHTS = {
    "agent_message_chunk": 55,
    "agent_thought_chunk": 10,
    "tool_call": 5,
    "tool_call_update": 10,
    "iteration_start": 3,
    "iteration_end": 3,
    "plan": 2,
}
OTHER_WEIGHT = 12  # shared by every other variant


def harn_mix(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` canonical Harn events, weighted like a real session."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(GOLDEN.glob("*.json")):
        case = orjson.loads(path.read_bytes())
        for raw in case["input"]:
            by_type.setdefault(raw["type"], []).append(raw)
    others = [t for t in by_type if t not in WEIGHTS]
    types = list(WEIGHTS) + others
    weights = list(WEIGHTS.values()) + [OTHER_WEIGHT / len(others)] * len(others)
    rng = random.Random(seed)
    chosen = rng.choices(types, weights, k=n)
    return [rng.choice(by_type[t]) for t in chosen]


def harn_lines(n: int, seed: int = 7) -> list[bytes]:
    """The same mix as compact JSON lines."""
    return [orjson.dumps(e) for e in harn_mix(n, seed)]

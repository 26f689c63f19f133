"""Translation throughput, including orjson encoding to the wire string: ``python bench/translate_bench.py``.

Target: ≥ 100,000 events/s on this machine, for each profile.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acp_bridge.events import parse_event
from acp_bridge.translate import Profile, encode_message, translate
from bench._machine import machine
from bench._mix import harn_lines

N = 100_000


def main() -> None:
    events = [parse_event(line) for line in harn_lines(N)]
    print("### Translation (`bench/translate_bench.py`)")
    print()
    print(f"- machine: {machine()}")
    print(f"- {N:,} events of a realistic Harn mix; translate + `orjson` encode of every message")
    print()
    print("| profile | events/s | messages/s | µs/event | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    for profile in (Profile.HARN, Profile.STRICT):
        best = float("inf")
        messages = 0
        for _ in range(3):
            messages = 0
            start = time.perf_counter()
            for event in events:
                for message in translate(event, profile=profile):
                    encode_message(message, profile)
                    messages += 1
            best = min(best, time.perf_counter() - start)
        print(
            f"| {profile.value} | {N / best:,.0f} | {messages / best:,.0f} | "
            f"{best / N * 1e6:.1f} | ≥ 100,000/s |"
        )


if __name__ == "__main__":
    main()

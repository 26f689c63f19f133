"""Run every benchmark and rewrite ``bench/RESULTS.md``: ``make bench`` / ``python -m bench [NAME ...]``."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKER = "<!-- sections below are written by `make bench` -->"
BENCHES = [
    "events_bench",
    "translate_bench",
    "eventlog_bench",
    "exec_bench",
    "redis_bench",
    "replay_bench",
    "storage_bench",
    "load_bench",
    "server_bench",
]


def main(argv: list[str]) -> int:
    names = argv or BENCHES
    sections = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        result = subprocess.run(
            [sys.executable, str(HERE / f"{name}.py")], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            print(result.stdout, result.stderr, file=sys.stderr)
            return result.returncode
        sections.append(result.stdout.strip())
    today = datetime.date.today().isoformat()
    results = HERE / "RESULTS.md"
    # Everything above the marker is a hand-written summary of the targets; keep it.
    preamble = "# Benchmark results\n"
    if results.exists() and MARKER in results.read_text():
        preamble = results.read_text().split(MARKER, 1)[0].rstrip() + "\n"
    text = "\n\n".join(
        [
            preamble.rstrip(),
            MARKER,
            f"Measured {today} with `make bench` (`python -m bench`). Each section names its machine.",
            *sections,
        ]
    )
    if not argv:
        results.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

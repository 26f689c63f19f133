"""Run every benchmark and rewrite ``bench/RESULTS.md``: ``make bench`` / ``python -m bench [NAME ...]``."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["events_bench", "translate_bench", "eventlog_bench", "exec_bench", "replay_bench", "server_bench"]


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
    text = "\n\n".join(
        [
            "# Benchmark results",
            f"Measured {today} with `make bench` (`python -m bench`). Each section names its machine.",
            *sections,
        ]
    )
    if not argv:
        (HERE / "RESULTS.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

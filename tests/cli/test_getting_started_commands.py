"""The shell commands of ``docs/getting-started.md`` run as written from the clone (issue 15, item 4).

Every command must name the program as ``make`` installs it (``.venv/bin/acp-bridge``), or follow
``source .venv/bin/activate`` in its block; the ones that need no server (``translate``,
``--version``) are run.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "getting-started.md"
SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
SAFE = re.compile(r"acp-bridge (translate|--version)\b")


def _blocks() -> list[list[str]]:
    return [
        [line for line in block.splitlines() if line.strip()]
        for block in SH_BLOCK.findall(DOC.read_text())
    ]


def test_every_command_names_a_program_that_exists_after_make() -> None:
    for block in _blocks():
        activated = False
        for line in block:
            if line.startswith("source .venv/bin/activate"):
                activated = True
            for use in re.finditer(r"(\S*)acp-bridge\b", line):
                if use.group(1) == "" and not activated:
                    pytest.fail(f"bare acp-bridge, not on the PATH after make: {line}")
                assert use.group(1) in ("", ".venv/bin/"), line


def _runnable() -> list[str]:
    return ["\n".join(block) for block in _blocks() if all(_safe(line) for line in block)]


def _safe(line: str) -> bool:
    return line.startswith("source .venv/bin/activate") or bool(SAFE.search(line))


def test_there_are_commands_to_run() -> None:
    assert len(_runnable()) >= 2


@pytest.mark.parametrize("script", _runnable())
def test_safe_commands_run_as_written(script: str) -> None:
    if not (ROOT / ".venv" / "bin" / "acp-bridge").exists():
        pytest.skip("no .venv in the clone (run `make test`)")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.strip()

"""``acp-bridge translate`` as a user runs it: a subprocess fed on stdin."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from tests.translate.golden import CASES

RUN = "3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b"
TS = "2026-06-25T15:12:51.123456789Z"


def run_cli(args: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "acp_bridge", "translate", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def lines(data: bytes) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in data.splitlines()]


@pytest.mark.parametrize("profile", ["harn", "strict"])
def test_translates_the_golden_corpus(profile: str) -> None:
    cases = [c for c in CASES if not c.replay]
    stdin = b"".join(orjson.dumps(raw) + b"\n" for c in cases for raw in c.input)
    result = run_cli(["--profile", profile], stdin)
    assert result.returncode == 0, result.stderr
    expected = [m for c in cases for m in (c.harn if profile == "harn" else c.strict)]
    assert lines(result.stdout) == expected
    assert result.stderr == b""


def test_harn_profile_sorts_keys_like_serde_json() -> None:
    stdin = b'{"type":"iteration_start","session_id":"s","iteration":2,"provider":"p"}\n'
    result = run_cli(["--profile", "harn"], stdin)
    assert result.stdout == (
        b'{"jsonrpc":"2.0","method":"_harn/agentEvent",'
        b'"params":{"iteration":2,"kind":"iteration_start","provider":"p","sessionId":"s"}}\n'
    )


def test_bad_lines_are_reported_and_skipped() -> None:
    stdin = (
        b'{"type":"agent_message_chunk","session_id":"s","content":"a"}\n'
        b"not json\n"
        b"\n"
        b'{"type":"iteration_start","session_id":"s","iteration":"x"}\n'
        b"[1]\n"
        b'{"type":"agent_message_chunk","session_id":"s","content":"b"}\n'
    )
    result = run_cli([], stdin)
    assert result.returncode == 1
    texts = [m["params"]["update"]["content"]["text"] for m in lines(result.stdout)]  # type: ignore[index]
    assert texts == ["a", "b"]
    err = result.stderr.decode().splitlines()
    assert err[0].startswith("line 2: not valid JSON")
    assert err[1].startswith("line 4: iteration_start: iteration")
    assert err[2].startswith("line 5: an event must be a JSON object")
    assert len(err) == 3


def test_persisted_envelopes_and_replay() -> None:
    stdin = b'{"index":0,"emitted_at_ms":1,"frame_depth":null,"type":"turn_start","session_id":"s","iteration":1}\n'
    result = run_cli(["--replay", "--profile", "harn"], stdin)
    assert result.returncode == 0
    [message] = lines(result.stdout)
    assert message["_harn"] == {"replayed": True}
    assert message["params"] == {
        "iteration": 1,
        "kind": "turn_start",
        "sessionId": "s",
        "replayed": True,
    }


def test_runtime_dialect_with_session_id() -> None:
    events = [
        {"TextDelta": {"run_id": RUN, "delta": "hi", "timestamp": TS}},
        {
            "RunCompleted": {
                "run_id": RUN,
                "finish_reason": "stop",
                "iterations": 1,
                "timestamp": TS,
            }
        },
    ]
    stdin = b"".join(orjson.dumps(e) + b"\n" for e in events)
    result = run_cli(["--dialect", "runtime", "--session-id", "acp-7"], stdin)
    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    assert [m["params"]["sessionId"] for m in out] == ["acp-7", "acp-7"]  # type: ignore[index]
    assert out[0]["params"]["update"]["content"]["text"] == "hi"  # type: ignore[index]


def test_runtime_event_of_unknown_run_is_a_bad_line() -> None:
    stdin = orjson.dumps({"TextDelta": {"run_id": RUN, "delta": "hi", "timestamp": TS}}) + b"\n"
    result = run_cli(["--dialect", "runtime"], stdin)
    assert result.returncode == 1
    assert b"line 1: event for run" in result.stderr


def test_output_is_flushed_per_input_line() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "acp_bridge", "translate"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            proc.stdin.write(b'{"type":"agent_message_chunk","session_id":"s","content":"x"}\n')
            proc.stdin.flush()
            # The line arrives while stdin is still open: no buffering until EOF. A missing flush
            # would block this read until the test timeout.
            first = proc.stdout.readline()
            assert orjson.loads(first)["method"] == "session/update"
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)
    assert proc.returncode == 0

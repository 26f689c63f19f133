"""An ``exec:`` agent that streams many message chunks per turn, for the crash test.

The prompt's text is a JSON object ``{"label": str, "chunks": int}``: the turn emits ``chunks``
``agent_message_chunk`` events whose text is ``"<label>#<n> "``, so every event of every turn has
its own content and a test can tell a replayed event from a different one that took its id.

Usage: ``python streaming_agent.py PIDFILE``. The agent writes its pid to ``PIDFILE``: it runs in
its own process group, so when the bridge is killed with SIGKILL the test needs the pid to make sure
no agent outlives it. On its own it exits as soon as the bridge is gone: stdin reaches EOF when it
is idle, and a write to stdout raises ``BrokenPipeError`` when it is streaming.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

BURST = 25
"""Chunks written between two 1 ms pauses (about 20,000 chunks a second at most)."""


def send(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def run_turn(message: dict[str, object]) -> None:
    sid = message["session_id"]
    blocks = message["prompt"]
    assert isinstance(blocks, list)
    spec = json.loads("".join(b.get("text", "") for b in blocks))
    label, count = spec["label"], int(spec["chunks"])
    for n in range(count):
        send({"type": "agent_message_chunk", "session_id": sid, "content": f"{label}#{n} "})
        if n % BURST == BURST - 1:
            # Token pace, roughly: a real agent streams, it does not dump. Without it the bridge
            # finishes a turn before a client has read a fraction of it (loopback buffers hold
            # megabytes), and a kill timed by what the client read lands after the turn.
            time.sleep(0.001)
    send({"op": "turn_end", "session_id": sid, "turn_id": message["turn_id"]})


def main() -> None:
    Path(sys.argv[1]).write_text(str(os.getpid()))
    try:
        for line in sys.stdin:  # the bridge closes stdin (or dies): EOF ends the loop
            message = json.loads(line)
            if message.get("op") == "prompt":
                run_turn(message)
    except BrokenPipeError:
        pass
    # Leave without flushing: stdout may be a broken pipe, and a failing flush at exit only
    # prints a warning nobody reads.
    os._exit(0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A tiny agent speaking the runtime dialect over the exec protocol (docs/agent-protocol.md).

    acp-bridge serve --agent "exec:python examples/runtime_agent.py" --dialect runtime

Each prompt is one run: RunStarted, a streamed answer (TextDelta), a `get_time` tool call and its
result, more text, and RunCompleted, which ends the turn (no `turn_end` line needed in this
dialect). A cancel ends the run with RunCancelled. Standard library only.
"""

import json
import os
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

# Seconds between streamed words; the tests set it to 0.
DELAY = float(os.environ.get("EXAMPLE_AGENT_DELAY", "0.05"))

_stdout_lock = threading.Lock()  # turns run in threads: one line at a time on stdout
_cancelled = {}  # turn id -> Event, set by a "cancel" line


def now():
    """An RFC 3339 UTC timestamp, as the runtime writes them."""
    # timezone.utc rather than datetime.UTC: this file also runs on Pythons older than 3.11.
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: UP017


def run_turn(session_id, turn_id, prompt):
    try:
        run(session_id, _cancelled[turn_id], prompt)
    finally:
        _cancelled.pop(turn_id, None)


def run(session_id, cancelled, prompt):
    run_id = str(uuid.uuid4())

    def emit(variant, **fields):
        # Wrapped with the session id: unambiguous even when several sessions have turns running.
        event = {variant: {"run_id": run_id, **fields, "timestamp": now()}}
        with _stdout_lock:
            sys.stdout.write(json.dumps({"session_id": session_id, "event": event}) + "\n")
            sys.stdout.flush()

    def say(text):
        """Stream text word by word; False if the turn was cancelled meanwhile."""
        for word in text.split(" "):
            if cancelled.wait(DELAY):  # sleeps DELAY seconds, and wakes up at once on cancel
                return False
            emit("TextDelta", delta=word + " ")
        return True

    text = " ".join(block["text"] for block in prompt if block.get("type") == "text").strip()
    emit("RunStarted", session_id=session_id, provider="example", model="echo-1")
    emit("ModelStarted", provider="example", model="echo-1", iteration=1)
    if not say(f"You said: {text!r}. Let me check the time."):
        return emit("RunCancelled")  # ends the turn: cancelled

    # A tool call: announced, its arguments complete, then its result.
    started = time.monotonic()
    emit("ToolCallStarted", call_id="call-1", tool_name="get_time")
    emit("ToolCallCompleted", call={"id": "call-1", "name": "get_time", "arguments": {}})
    clock = datetime.now(timezone.utc).strftime("%H:%M UTC")  # noqa: UP017
    emit(
        "ToolExecutionFinished",
        call_id="call-1",
        tool_name="get_time",
        result={"Success": {"output": clock}},
        duration_ms=int((time.monotonic() - started) * 1000),
    )

    if not say(f"It is {clock}."):
        return emit("RunCancelled")
    emit("RunCompleted", finish_reason="stop", iterations=1)  # ends the turn: end_turn


def main():
    print(f"runtime_agent started (pid {os.getpid()})", file=sys.stderr, flush=True)
    for line in sys.stdin:  # ends when the bridge closes our stdin: then we exit
        message = json.loads(line)
        op = message.get("op")
        if op == "prompt":
            _cancelled[message["turn_id"]] = threading.Event()
            args = (message["session_id"], message["turn_id"], message["prompt"])
            threading.Thread(target=run_turn, args=args, daemon=True).start()
        elif op == "cancel" and message["turn_id"] in _cancelled:
            _cancelled[message["turn_id"]].set()
        # new_session, load_session, close_session: this agent keeps no state, so nothing to do.
        # Unknown ops are ignored: newer bridges may send more.


if __name__ == "__main__":
    main()

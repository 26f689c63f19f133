#!/usr/bin/env python3
"""A tiny agent speaking Harn events over the exec protocol (docs/agent-protocol.md).

    acp-bridge serve --agent "exec:python examples/harn_agent.py"

Each prompt gets a streamed reply, then a `write_file` tool call that asks the user's permission
and, when allowed, saves the prompt to `notes.txt` in the session's directory through the client
(`fs/write_text_file`: the editor does the write). Standard library only.

The bridge writes one JSON object per line to our stdin; we write events and control lines to
stdout, one per line. Anything we print to stderr ends up in the bridge's log.
"""

import itertools
import json
import os
import sys
import threading

# Seconds between streamed words; the tests set it to 0.
DELAY = float(os.environ.get("EXAMPLE_AGENT_DELAY", "0.05"))

_stdout_lock = threading.Lock()  # turns run in threads: one line at a time on stdout
_responses = {}  # request id -> {"done": Event, "response": the bridge's response line}
_request_ids = itertools.count(1)
_cancelled = {}  # turn id -> Event, set by a "cancel" line
_sessions = {}  # session id -> cwd


def send(message):
    """Write one JSON line to stdout and flush it (the bridge waits for whole lines)."""
    with _stdout_lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def log(text):
    print(text, file=sys.stderr, flush=True)


def request(session_id, method, params):
    """Ask the client something through the bridge; blocks until the "response" line arrives."""
    request_id = next(_request_ids)
    waiter = {"done": threading.Event()}
    _responses[request_id] = waiter
    send(
        {
            "op": "request",
            "id": request_id,
            "session_id": session_id,
            "method": method,
            "params": params,
        }
    )
    waiter["done"].wait()
    return waiter["response"]  # {"op": "response", "id": ..., "result": ...} or "error": {...}


def run_turn(session_id, turn_id, prompt):
    cancelled = _cancelled[turn_id]

    def event(event_type, **fields):
        send({"type": event_type, "session_id": session_id, **fields})

    def end(stop_reason):
        send(
            {
                "op": "turn_end",
                "session_id": session_id,
                "turn_id": turn_id,
                "stop_reason": stop_reason,
            }
        )
        _cancelled.pop(turn_id, None)

    text = " ".join(block["text"] for block in prompt if block.get("type") == "text").strip()

    # 1. A streamed reply: one agent_message_chunk per word.
    for word in f"You said: {text!r}. I would like to save it to notes.txt.".split(" "):
        if cancelled.wait(DELAY):  # sleeps DELAY seconds, and wakes up at once on cancel
            return end("cancelled")
        event("agent_message_chunk", content=word + " ")

    # 2. A tool call, announced before anything refers to it.
    call_id = f"{turn_id}-write"
    path = os.path.join(_sessions.get(session_id, "."), "notes.txt")
    tool = {"tool_call_id": call_id, "tool_name": "write_file"}
    event(
        "tool_call",
        **tool,
        kind="edit",
        status="pending",
        raw_input={"path": path, "content": text},
    )

    # 3. Ask the user. A cancelled turn answers "cancelled" here, so this never blocks a cancel.
    answer = request(
        session_id,
        "session/request_permission",
        {
            "toolCall": {"toolCallId": call_id, "title": "Write notes.txt", "kind": "edit"},
            "options": [
                {"optionId": "allow", "name": "Allow", "kind": "allow_once"},
                {"optionId": "reject", "name": "Reject", "kind": "reject_once"},
            ],
        },
    )
    outcome = answer.get("result", {}).get("outcome", {})
    if cancelled.is_set() or outcome.get("outcome") == "cancelled":
        event("tool_call_update", **tool, status="failed", error="cancelled")
        return end("cancelled")
    if outcome.get("optionId") != "allow":
        event("tool_call_update", **tool, status="failed", error="the user rejected the edit")
        event("agent_message_chunk", content="Fine, I left the file alone.")
        return end("end_turn")

    # 4. Run the tool: the client writes the file. An error response (for example a client that
    #    cannot write files) fails the tool call, not the turn.
    event("tool_call_update", **tool, status="in_progress")
    written = request(session_id, "fs/write_text_file", {"path": path, "content": text + "\n"})
    if "error" in written:
        message = written["error"]["message"]
        log(f"write_file failed: {message}")
        event("tool_call_update", **tool, status="failed", error=message)
        event("agent_message_chunk", content=f"I could not save it: {message}")
    else:
        event("tool_call_update", **tool, status="completed", raw_output={"path": path})
        event("agent_message_chunk", content="Saved to notes.txt.")
    end("end_turn")


def main():
    log(f"harn_agent started (pid {os.getpid()})")
    for line in sys.stdin:  # ends when the bridge closes our stdin: then we exit
        message = json.loads(line)
        op = message.get("op")
        if op in ("new_session", "load_session"):
            _sessions[message["session_id"]] = message["cwd"]  # stateless: nothing to restore
        elif op == "prompt":
            _cancelled[message["turn_id"]] = threading.Event()
            args = (message["session_id"], message["turn_id"], message["prompt"])
            threading.Thread(target=run_turn, args=args, daemon=True).start()
        elif op == "cancel":
            if message["turn_id"] in _cancelled:
                _cancelled[message["turn_id"]].set()
        elif op == "response":
            waiter = _responses.pop(message["id"], None)
            if waiter:  # else: a request we stopped waiting for
                waiter["response"] = message
                waiter["done"].set()
        elif op == "close_session":
            _sessions.pop(message["session_id"], None)
        # Any other op is ignored: newer bridges may send more.


if __name__ == "__main__":
    main()

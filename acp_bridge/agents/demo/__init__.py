"""The demo backend: a deterministic, scripted agent with no model and no network.

It is the embedded default of ``acp-bridge serve``. Each turn emits a realistic Harn turn: an iteration
start, a skill activation, thoughts, a streamed reply that quotes the prompt, a ``harn.plan.v1`` plan,
a ``read`` tool call (through the client's ``fs/read_text_file`` when it was advertised, otherwise a
canned excerpt), an ``edit`` tool call that asks the user's permission (and never writes anything),
a closing message, the completed plan and an iteration end.

Everything is derived from the session id, the turn number, the prompt and the file that was read, so
the same prompt gives the same events. The turn honours cancellation between every step.

The pieces: :mod:`.backend` (sessions, modes, one scenario per turn), :mod:`.scenarios` (what each
slash command does), :mod:`.tools` (the ``read`` and ``edit`` tool calls), :mod:`.turn` (emitting,
pacing, cancellation) and :mod:`.prompt` (what the demo understands of a prompt).
"""

from acp_bridge.agents.demo.backend import DemoBackend, create_backend

__all__ = ["DemoBackend", "create_backend"]

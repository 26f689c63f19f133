"""The ``exec`` backend: an agent runtime as a child process, driven over a JSON-lines protocol.

``acp-bridge serve --agent "exec:python my_agent.py" [--dialect runtime]`` runs the command once per
bridge (lazily, on the first session) and multiplexes every session over its stdin and stdout; the
protocol is specified for agent authors in ``docs/agent-protocol.md``.

The pieces, each knowing nothing of the ones after it:

* :mod:`.protocol`: the line protocol, decoding and encoding only (no I/O);
* :mod:`.child`: the child process: starting it in its own process group, reading its stdout in
  order, forwarding its stderr to the ``acp_bridge.agents.exec.child`` logger, and on exit or
  :meth:`ExecBackend.aclose` closing its stdin, then terminating and killing its group, and reaping
  it. Every line to stdin is a single ``write()``, so lines never interleave;
* :mod:`.requests`: the child's requests to the client, performed through a session's context;
* :mod:`.backend`: :class:`ExecBackend`, which routes the child's lines to sessions and turns.
"""

from acp_bridge.agents.base import CANCEL_GRACE_SECONDS
from acp_bridge.agents.exec.backend import ExecBackend, create_backend
from acp_bridge.agents.exec.child import STREAM_LIMIT, TERMINATE_TIMEOUT_SECONDS
from acp_bridge.agents.exec.protocol import (
    DEFAULT_PERMISSION_OPTIONS,
    DIALECTS,
    PROTOCOL_VERSION,
    ChildLine,
    Dialect,
    ErrorLine,
    HarnLine,
    LineError,
    RequestError,
    RequestId,
    RequestLine,
    RuntimeLine,
    TurnEndLine,
    UnknownOpLine,
    encode_op,
    parse_child_line,
    permission_params,
    permission_result,
    read_params,
    write_params,
)

__all__ = [
    "CANCEL_GRACE_SECONDS",
    "DEFAULT_PERMISSION_OPTIONS",
    "DIALECTS",
    "PROTOCOL_VERSION",
    "STREAM_LIMIT",
    "TERMINATE_TIMEOUT_SECONDS",
    "ChildLine",
    "Dialect",
    "ErrorLine",
    "ExecBackend",
    "HarnLine",
    "LineError",
    "RequestError",
    "RequestId",
    "RequestLine",
    "RuntimeLine",
    "TurnEndLine",
    "UnknownOpLine",
    "create_backend",
    "encode_op",
    "parse_child_line",
    "permission_params",
    "permission_result",
    "read_params",
    "write_params",
]

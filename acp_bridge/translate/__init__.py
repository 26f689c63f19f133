"""Pure translation: agent events → JSON-RPC wire messages, per dialect and profile. No I/O.

* :func:`translate` — a Harn event to ``session/update`` / ``_harn/agentEvent`` notifications;
* :class:`RuntimeTranslator` — the stateful translator of the run-style runtime dialect;
* :func:`harn_capability_block` — the ``agentCapabilities._meta.harn`` block a profile advertises;
* :func:`content_block_problem` — whether a dict is a valid ACP ``ContentBlock``, and why not;
* :func:`encode_message` — compact JSON for the wire (sorted keys in the harn profile, as Harn does).
"""

from .capabilities import (
    agent_event_kinds,
    bridge_capability_block,
    harn_capability_block,
    session_update_extensions,
)
from .content import (
    CONTENT_BLOCK_TYPES,
    content_block_problem,
    is_content_block,
    strict_tool_call_update,
)
from .harn import ROWS, Route, Row, translate
from .wire import (
    HARN_AGENT_EVENT_METHOD,
    SESSION_UPDATE_METHOD,
    Message,
    Profile,
    encode_message,
    stamp_event_id,
)

__all__ = [
    "CONTENT_BLOCK_TYPES",
    "HARN_AGENT_EVENT_METHOD",
    "ROWS",
    "SESSION_UPDATE_METHOD",
    "Message",
    "Profile",
    "Route",
    "Row",
    "agent_event_kinds",
    "bridge_capability_block",
    "content_block_problem",
    "encode_message",
    "harn_capability_block",
    "is_content_block",
    "session_update_extensions",
    "stamp_event_id",
    "strict_tool_call_update",
    "translate",
]

"""The agent side of ACP v1: initialize, sessions, turns, ordering, server→client requests.

Transport-agnostic: :class:`AcpBridge` serves any :class:`~acp_bridge.rpc.transport.Transport`.
"""

from .bridge import AcpBridge
from .config import BridgeConfig
from .connection import AcpConnection
from .context import BridgeSessionContext
from .delivery import Attachment, SessionFanout
from .handlers import PROTOCOL_VERSION
from .journal import SessionJournal
from .sessions import Session, SessionManager, SessionRecord

__all__ = [
    "PROTOCOL_VERSION",
    "AcpBridge",
    "AcpConnection",
    "Attachment",
    "BridgeConfig",
    "BridgeSessionContext",
    "Session",
    "SessionFanout",
    "SessionJournal",
    "SessionManager",
    "SessionRecord",
]

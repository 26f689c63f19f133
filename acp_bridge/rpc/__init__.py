"""A JSON-RPC 2.0 peer over any message transport (knows nothing of ACP)."""

from .errors import (
    AuthRequired,
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    RequestCancelled,
    RequestTimeout,
    ResourceNotFound,
    RpcError,
)
from .peer import JsonRpcPeer, PeerClosed, Reply, RequestContext
from .principal import ANONYMOUS, Principal, Role
from .transport import (
    JSON_NULL,
    CloseReason,
    Malformed,
    MemoryTransport,
    Transport,
    memory_transport_pair,
)

__all__ = [
    "ANONYMOUS",
    "JSON_NULL",
    "AuthRequired",
    "CloseReason",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "JsonRpcPeer",
    "Malformed",
    "MemoryTransport",
    "MethodNotFound",
    "ParseError",
    "PeerClosed",
    "Principal",
    "Reply",
    "RequestCancelled",
    "RequestContext",
    "RequestTimeout",
    "ResourceNotFound",
    "Role",
    "RpcError",
    "Transport",
    "memory_transport_pair",
]

"""``--agent acp:COMMAND``: a stdio ACP agent (Gemini CLI, an SDK agent…) behind the bridge."""

from .backend import AcpBackend, create_backend

__all__ = ["AcpBackend", "create_backend"]

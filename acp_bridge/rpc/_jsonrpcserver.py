"""The parts of ``jsonrpcserver`` the peer uses, imported without its deprecation noise.

jsonrpcserver 5.0.9 (its last release) loads its request schema with ``importlib.resources.read_text``,
which warns on Python 3.11/3.12 (jsonrpcserver issue #166). The warnings say nothing about our code, and
under ``-W error`` they would make the import fail, so they are silenced for this import only.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"(read_text|open_text) is deprecated", category=DeprecationWarning
    )
    from jsonrpcserver import Success
    from jsonrpcserver.async_main import dispatch_to_serializable
    from jsonrpcserver.exceptions import JsonRpcError

__all__ = ["JsonRpcError", "Success", "dispatch_to_serializable"]

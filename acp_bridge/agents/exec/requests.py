"""A child's ``request`` lines: performed through a session's context, answered as JSON-RPC.

Which session a request is for, and when its answer is written, is the backend's business; here is
what each method does with the client, and the code every failure is answered with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from acp_bridge.agents.base import (
    BackendError,
    CapabilityNotAdvertised,
    ClientRequestFailed,
    SessionContext,
)
from acp_bridge.agents.exec.protocol import (
    RequestError,
    RequestLine,
    elicitation_params,
    encode_op,
    permission_params,
    permission_result,
    read_params,
    write_params,
)

__all__ = ["cancelled_response", "perform", "reply"]

logger = logging.getLogger("acp_bridge.agents.exec")  # the name from before exec was a package

_TURN_OVER: Final = {"code": -32800, "message": "cancelled: the turn is over"}


async def perform(ctx: SessionContext, request: RequestLine) -> Any:
    """Ask the client what ``request`` asks, through ``ctx``; the ``result`` to answer with.

    :class:`RequestError` for an unknown method or malformed params; whatever the context raises
    otherwise.
    """
    method, params = request.method, request.params
    if method == "session/request_permission":
        tool_call, options = permission_params(params)
        return permission_result(await ctx.request_permission(tool_call, options))
    if method == "fs/read_text_file":
        path, line, limit = read_params(params)
        return {"content": await ctx.read_text_file(path, line=line, limit=limit)}
    if method == "fs/write_text_file":
        await ctx.write_text_file(*write_params(params))
        return {}
    if method == "elicitation/create":
        message, schema, url, tool_call_id = elicitation_params(params)
        answer = await ctx.elicit(message, schema, url=url, tool_call_id=tool_call_id)
        result: dict[str, Any] = {"action": answer.action}
        if answer.content is not None:
            result["content"] = dict(answer.content)
        if answer.elicitation_id is not None:
            result["elicitationId"] = answer.elicitation_id
        return result
    if method == "elicitation/complete":
        # A notification in ACP; a request here, so the child knows it went out.
        elicitation_id = params.get("elicitationId", params.get("elicitation_id"))
        if not isinstance(elicitation_id, str):
            raise RequestError(-32602, "elicitation/complete needs an elicitationId string")
        ctx.complete_elicitation(elicitation_id)
        return {}
    if method.startswith("terminal/"):
        forwarded = {k: v for k, v in params.items() if k != "sessionId"}
        return await ctx.terminal_request(method, forwarded)
    raise RequestError(-32601, f"unknown method {method!r}")


async def reply(
    request: RequestLine, find_ctx: Callable[[], SessionContext], pid: int
) -> dict[str, Any]:
    """The ``result`` or ``error`` field of the answer to ``request``; failures are answers too.

    ``find_ctx`` gives the session's context or raises :class:`RequestError`; ``pid`` is the
    child's, for the log.
    """
    try:
        return {"result": await perform(find_ctx(), request)}
    except RequestError as exc:
        return {"error": {"code": exc.code, "message": exc.message}}
    except CapabilityNotAdvertised as exc:
        return {"error": {"code": -32601, "message": str(exc)}}
    except ClientRequestFailed as exc:
        return {"error": {"code": exc.code, "message": exc.message}}
    except BackendError as exc:
        return {"error": {"code": exc.rpc_code, "message": str(exc)}}
    except Exception as exc:
        logger.exception("agent[%d]: request %s failed", pid, request.method)
        return {"error": {"code": -32603, "message": f"{type(exc).__name__}: {exc}"}}


def cancelled_response(request: RequestLine) -> bytes:
    """The ``response`` line for a request abandoned because its turn is over."""
    return encode_op("response", id=request.id, error=_TURN_OVER)

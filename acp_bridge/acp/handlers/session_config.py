"""``session/set_mode`` and ``session/set_config_option``: the session's settings.

Both are offered only when the backend has modes / config options (otherwise, to the client, they
are no methods at all: ``-32601``). The change is answered to the client that made it and sent as
an update to every other client of the session.
"""

from __future__ import annotations

from typing import Any

from acp_bridge.rpc.errors import InvalidParams, MethodNotFound
from acp_bridge.rpc.peer import Reply, RequestContext

from ..config_options import option_set, supports_boolean_options
from ..connection import AcpConnection, AcpMethods
from ._common import config_options, session_update

__all__ = ["register", "session_set_config_option", "session_set_mode"]


def register(conn: AcpMethods) -> None:
    """Serve the session-settings family on every connection."""
    conn.add_method("session/set_mode", session_set_mode)
    conn.add_method("session/set_config_option", session_set_config_option)


async def session_set_mode(conn: AcpConnection, params: dict[str, Any], ctx: RequestContext) -> Any:
    """Switch the session's mode."""
    backend = conn.host.backend
    modes = {m.id for m in backend.modes()}
    if not modes:
        raise MethodNotFound(
            "session/set_mode is not offered: this agent has no session modes",
            data={"method": "session/set_mode"},
        )
    session, attachment = conn.attached_session(params)
    mode_id = params.get("modeId")
    if not isinstance(mode_id, str) or mode_id not in modes:
        raise InvalidParams("unknown modeId", data={"modeId": mode_id, "available": sorted(modes)})
    await backend.set_mode(session.context, mode_id)
    session.mode_id = mode_id
    update = session_update(
        session.session_id, {"sessionUpdate": "current_mode_update", "currentModeId": mode_id}
    )
    return Reply({}, then=lambda: session.fanout.broadcast(update, exclude=attachment))


async def session_set_config_option(
    conn: AcpConnection, params: dict[str, Any], ctx: RequestContext
) -> Any:
    """Change one config option; answer every option's new state."""
    backend = conn.host.backend
    session, attachment = conn.attached_session(params)
    config_id, value = params.get("configId"), params.get("value")
    booleans = supports_boolean_options(conn.client_capabilities)
    known = option_set(
        [o for o in backend.config_options(session.context) if booleans or o.kind != "boolean"]
    )
    if not known:
        raise MethodNotFound(
            "session/set_config_option is not offered: this agent has no config options"
            " this client can show",
            data={"method": "session/set_config_option"},
        )
    option = known.get(config_id) if isinstance(config_id, str) else None
    if option is None:
        raise InvalidParams("unknown configId", data={"configId": config_id})
    assert isinstance(config_id, str)
    kind = params.get("type")
    if option.kind == "boolean":
        if kind != "boolean" or not isinstance(value, bool):
            raise InvalidParams(
                'a boolean option takes type "boolean" and a true/false value',
                data={"configId": config_id},
            )
    elif kind == "boolean" or not isinstance(value, str):
        raise InvalidParams("value must be a string (select option)", data={"configId": config_id})
    await backend.set_config_option(session.context, config_id, value)
    options = config_options(backend, session, conn.client_capabilities)
    return Reply(
        {"configOptions": options},
        then=lambda: session.announce_config_options(exclude=attachment),
    )

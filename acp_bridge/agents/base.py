"""The contract between the bridge and an agent backend.

A backend runs or reaches an agent. The ACP layer gives it a :class:`SessionContext` per session and
calls :meth:`AgentBackend.prompt` for each turn; the backend reports everything it does as agent events
through :meth:`SessionContext.emit` (the sink registry, which persists and forwards them), asks the client
for permission or file access through the context, and returns a :class:`StopReason`.

Nothing here knows about JSON-RPC or sockets: a backend can be driven by a test with a fake context.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, runtime_checkable

from acp_bridge.events.session_event import SessionEvent

__all__ = [
    "CANCEL_GRACE_SECONDS",
    "AgentBackend",
    "BackendError",
    "BackendHost",
    "BackendOptions",
    "BaseBackend",
    "CapabilityNotAdvertised",
    "ClientRequestFailed",
    "ConfigOption",
    "ElicitationResult",
    "PermissionOption",
    "PermissionOutcome",
    "PromptCapabilities",
    "SessionContext",
    "SessionMode",
    "SessionReadOnly",
    "SlashCommand",
    "StopReason",
]


CANCEL_GRACE_SECONDS: Final = 2.0
"""Seconds a backend has to wind a cancelled turn down before its task is cancelled (and again
before it is abandoned); also how long a subprocess backend waits for its child to acknowledge."""


class StopReason(enum.StrEnum):
    """Why a turn ended (ACP ``StopReason``)."""

    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    MAX_TURN_REQUESTS = "max_turn_requests"
    REFUSAL = "refusal"
    CANCELLED = "cancelled"


class BackendError(Exception):
    """The backend could not run the turn; the prompt is answered with a JSON-RPC error.

    ``rpc_code`` is the JSON-RPC error code the client gets (internal error unless a subclass says
    otherwise); the message is sent as the error's message.
    """

    rpc_code: int = -32603


class SessionReadOnly(BackendError):
    """The session only mirrors an agent (e.g. ``tail``): it cannot be prompted."""

    rpc_code = -32600


class CapabilityNotAdvertised(BackendError):
    """The client did not advertise the capability a request needs (``fs.readTextFile``, ``terminal``…).

    Raised locally, without sending anything: calling an un-advertised client method can hang some
    clients forever.
    """

    def __init__(self, capability: str, method: str) -> None:
        super().__init__(f"the client did not advertise {capability!r}, so {method} is unavailable")
        self.capability = capability
        self.method = method


class ClientRequestFailed(BackendError):
    """The client answered a request with an error, or did not answer in time."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method} failed: {message} ({code})")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


@dataclass(frozen=True)
class BackendOptions:
    """Serve-level options some backends use (``acp-bridge serve --dialect``, ``--replay-speed``)."""

    dialect: str = "harn"
    """The event vocabulary of an ``exec`` child: ``harn`` or ``runtime``."""
    replay_speed: float = 0.0
    """``replay``: 0 = as fast as possible, 1 = the recorded spacing, 2 = twice as fast…"""


@dataclass(frozen=True, slots=True)
class PromptCapabilities:
    """Which prompt content the backend accepts beyond text and resource links."""

    image: bool = False
    audio: bool = False
    embedded_context: bool = False


@dataclass(frozen=True, slots=True)
class SessionMode:
    """A session mode the backend offers (ACP ``SessionMode``)."""

    id: str
    name: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ConfigOption:
    """A session config option (ACP ``SessionConfigOption``): a select, or a boolean toggle.

    A select has ``options`` ``(value, name)`` and a string ``current_value``; a boolean (made with
    :meth:`boolean`) has ``kind="boolean"``, no options and a ``bool`` value. Boolean options are
    shown only to clients that advertise ``session.configOptions.boolean``.
    """

    id: str
    name: str
    current_value: str | bool
    options: tuple[tuple[str, str], ...] = ()  # (value, name)
    description: str | None = None
    category: str | None = None
    kind: Literal["select", "boolean"] = "select"

    @classmethod
    def boolean(
        cls,
        id: str,
        name: str,
        current_value: bool,
        *,
        description: str | None = None,
        category: str | None = None,
    ) -> ConfigOption:
        """An on/off option."""
        return cls(id, name, current_value, (), description, category, "boolean")


@dataclass(frozen=True, slots=True)
class SlashCommand:
    """A command the backend offers (sent as ``available_commands_update`` after ``session/new``)."""

    name: str
    description: str
    input_hint: str | None = None


@dataclass(frozen=True, slots=True)
class PermissionOption:
    """One choice in a permission request."""

    option_id: str
    name: str
    kind: str  # allow_once | allow_always | reject_once | reject_always


@dataclass(frozen=True, slots=True)
class PermissionOutcome:
    """The client's answer: the selected option, or ``cancelled`` (turn cancelled, or no answer)."""

    option_id: str | None
    cancelled: bool = False

    @property
    def allowed(self) -> bool:
        """True when an ``allow`` option was selected (by the convention ``allow…`` option ids)."""
        return not self.cancelled and (self.option_id or "").startswith("allow")


@dataclass(frozen=True, slots=True)
class ElicitationResult:
    """A person's answer to :meth:`SessionContext.elicit` (ACP ``CreateElicitationResponse``).

    ``action`` is ``accept`` (``content`` holds the form's values), ``decline`` (they said no) or
    ``cancel`` (dismissed, the turn was cancelled, or nobody answered in time).
    """

    action: str
    content: Mapping[str, Any] | None = None
    elicitation_id: str | None = None
    """URL mode: the id to pass to :meth:`SessionContext.complete_elicitation` once done."""

    @property
    def accepted(self) -> bool:
        """True when the form was submitted."""
        return self.action == "accept"


@runtime_checkable
class SessionContext(Protocol):
    """What a backend can do for one session. Provided by the ACP layer."""

    @property
    def session_id(self) -> str:
        """The ACP session id; every event the backend emits must carry it."""

    @property
    def cwd(self) -> str:
        """The session's working directory (absolute)."""

    @property
    def mcp_servers(self) -> Sequence[Mapping[str, Any]]:
        """The ``mcpServers`` the client gave in its latest ``session/new``/``load``/``resume``.

        ACP ``McpServer`` objects as sent (``stdio``: ``name``, ``command``, ``args``, ``env``; ``http``
        and ``sse``: ``type``, ``name``, ``url``, ``headers``). Kept in memory only, never logged:
        they may carry secrets. Empty for sessions no client has opened.
        """

    @property
    def additional_directories(self) -> Sequence[str]:
        """Workspace roots besides ``cwd`` (ACP ``additionalDirectories``), absolute, in order.

        The complete list of the latest ``session/new``/``load``/``resume`` by a controller (a load
        without it activates none); persisted with the session, so it survives restarts.
        """

    @property
    def client_capabilities(self) -> Mapping[str, Any]:
        """The raw ``clientCapabilities`` of the client driving the current turn."""

    @property
    def cancelled(self) -> bool:
        """True once the current turn was cancelled; long work should check it between steps."""

    async def wait_cancelled(self) -> None:
        """Return when the current turn is cancelled."""

    def emit(self, event: SessionEvent) -> None:
        """Report an agent event: persisted, translated and forwarded to the session's clients.

        A Harn event, or a runtime-dialect event wrapped in a ``SessionRuntimeEvent``.
        """

    async def request_permission(
        self,
        tool_call: Mapping[str, Any],
        options: Sequence[PermissionOption],
    ) -> PermissionOutcome:
        """Ask the client to allow a tool call (``session/request_permission``).

        ``tool_call`` is an ACP ``ToolCallUpdate`` (``toolCallId`` required; ``title``/``kind`` help
        clients). A cancelled turn yields ``PermissionOutcome(None, cancelled=True)``.
        """

    async def read_text_file(
        self, path: str, *, line: int | None = None, limit: int | None = None
    ) -> str:
        """``fs/read_text_file``; raises :class:`CapabilityNotAdvertised` without ``fs.readTextFile``."""

    async def write_text_file(self, path: str, content: str) -> None:
        """``fs/write_text_file``; raises :class:`CapabilityNotAdvertised` without ``fs.writeTextFile``."""

    async def terminal_request(self, method: str, params: Mapping[str, Any]) -> Any:
        """Any ``terminal/*`` request (``sessionId`` is added); needs the ``terminal`` capability."""

    def config_options_changed(self) -> None:
        """The backend changed the session's config options itself (a value, or the set): every
        client of the session is sent the complete new set (``config_option_update``)."""

    async def elicit(
        self,
        message: str,
        requested_schema: Mapping[str, Any] | None = None,
        *,
        url: str | None = None,
        tool_call_id: str | None = None,
    ) -> ElicitationResult:
        """Ask a person for input (ACP ``elicitation/create``): a form, or a URL to open.

        Form mode: ``requested_schema`` is an ACP ``ElicitationSchema`` (a flat object of string,
        number, integer, boolean and enum properties); ``accept`` carries the values. URL mode
        (``url`` instead): the person is sent to a page (sign-in, payment, secrets) and ``accept``
        means they went; the result's ``elicitation_id`` is for :meth:`complete_elicitation`.
        Sent to every controller of the session that advertised that mode
        (``elicitation.form``/``.url``); the first valid answer wins (like permission requests).
        Raises :class:`CapabilityNotAdvertised` when no attached controller advertised it.
        """

    def complete_elicitation(self, elicitation_id: str) -> None:
        """The out-of-band flow of a URL-mode elicitation finished: tell the clients that can show
        URL elicitations (``elicitation/complete``)."""


@runtime_checkable
class BackendHost(Protocol):
    """What the bridge offers a backend outside of any client request (see :meth:`AgentBackend.start`)."""

    def open_session(
        self, session_id: str, *, cwd: str, title: str | None = None
    ) -> SessionContext:
        """Create (or restore) the session ``session_id`` without a client, and return its context.

        The session is persisted and listed like any other; clients can load, resume and follow it.
        Events emitted through the context are logged and forwarded as usual.
        """

    def logged_event_count(self, session_id: str) -> int:
        """How many events of the session the event log already holds (0 for a new session)."""


@runtime_checkable
class AgentBackend(Protocol):
    """An agent runtime behind the bridge."""

    name: str
    """Short name, shown in ``agentInfo``."""

    prompt_capabilities: PromptCapabilities

    async def start(self, host: BackendHost) -> None:
        """The bridge is starting (called once, before any connection is served)."""

    async def new_session(self, ctx: SessionContext) -> None:
        """A session was created; events emitted here reach the client after the response."""

    async def load_session(self, ctx: SessionContext) -> None:
        """An existing session (possibly from before a restart) is being used again."""

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        """Run one turn for ``prompt`` (ACP content blocks) and say why it ended.

        Raise :class:`BackendError` (or any exception) to fail the turn with a JSON-RPC error; the
        session stays usable. On cancellation return :attr:`StopReason.CANCELLED` promptly (the bridge
        also cancels the task after a grace period).
        """

    async def cancel(self, ctx: SessionContext) -> None:
        """The client cancelled the current turn of ``ctx``'s session."""

    async def close_session(self, ctx: SessionContext) -> None:
        """The session is closed; free its resources."""

    def modes(self) -> Sequence[SessionMode]:
        """The session modes offered (empty: ``session/set_mode`` is not offered)."""

    def config_options(self, ctx: SessionContext) -> Sequence[ConfigOption]:
        """The config options of a session (empty: ``session/set_config_option`` is not offered)."""

    async def set_mode(self, ctx: SessionContext, mode_id: str) -> None:
        """Switch the session's mode."""

    async def set_config_option(
        self, ctx: SessionContext, config_id: str, value: str | bool
    ) -> None:
        """Change one config option (a ``bool`` for a boolean option, a value id for a select)."""

    def commands(self) -> Sequence[SlashCommand]:
        """Slash commands announced after ``session/new``."""

    async def aclose(self) -> None:
        """The bridge is shutting down."""


@dataclass
class BaseBackend:
    """Convenience base: every optional part of :class:`AgentBackend` with a do-nothing default."""

    name: str = "agent"
    # A class-level default (PromptCapabilities is frozen, so sharing it is safe) keeps subclasses
    # that write their own __init__ without calling super().__init__() working.
    prompt_capabilities: PromptCapabilities = PromptCapabilities()

    async def start(self, host: BackendHost) -> None:
        """Nothing to start by default."""

    async def new_session(self, ctx: SessionContext) -> None:
        """Nothing to set up by default."""

    async def load_session(self, ctx: SessionContext) -> None:
        """Nothing to restore by default."""

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        """Subclasses must implement turns."""
        raise NotImplementedError

    async def cancel(self, ctx: SessionContext) -> None:
        """Rely on ``ctx.cancelled`` by default."""

    def read_only_reason(self, ctx: SessionContext) -> str | None:
        """Why the session cannot be prompted, or ``None`` (the default) if it can.

        An optional hook (the bridge uses it when a backend has it): a read-only session's prompt is
        refused with :class:`SessionReadOnly` before anything is recorded in its history.
        """
        return None

    async def close_session(self, ctx: SessionContext) -> None:
        """Nothing to free by default."""

    def modes(self) -> Sequence[SessionMode]:
        """No modes by default."""
        return ()

    def config_options(self, ctx: SessionContext) -> Sequence[ConfigOption]:
        """No config options by default."""
        return ()

    async def set_mode(self, ctx: SessionContext, mode_id: str) -> None:
        """Modes are not offered by default."""
        raise BackendError(f"unknown mode {mode_id!r}")

    async def set_config_option(
        self, ctx: SessionContext, config_id: str, value: str | bool
    ) -> None:
        """Config options are not offered by default."""
        raise BackendError(f"unknown config option {config_id!r}")

    def commands(self) -> Sequence[SlashCommand]:
        """No slash commands by default."""
        return ()

    async def aclose(self) -> None:
        """Nothing to close by default."""

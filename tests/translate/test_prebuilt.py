"""Chunk templates give the bytes the general path would, for any text, id, session and profile."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acp_bridge.events.harn import AgentMessageChunk, AgentThoughtChunk
from acp_bridge.translate import Profile, encode_message, stamp_event_id, translate
from acp_bridge.translate.prebuilt import chunk_template


def general(event: AgentMessageChunk | AgentThoughtChunk, event_id: int, profile: Profile) -> bytes:
    (message,) = translate(event, profile=profile)
    return encode_message(stamp_event_id(message, profile, event.session_id, event_id), profile)


TEXTS = [
    "",
    "plain",
    'quotes " and \\ backslashes',
    "control \x00 \x1f \n\t characters",
    "unicode é 中文 \U0001f600 \u2028",
    "<think>hidden</think> shown",
    "x" * 70_000,
]


@pytest.mark.parametrize("chunk_type", [AgentMessageChunk, AgentThoughtChunk])
@pytest.mark.parametrize("text", TEXTS)
def test_strict_templates_match_the_general_path(
    chunk_type: type[AgentMessageChunk], text: str
) -> None:
    template = chunk_template(chunk_type, "sess-1", Profile.STRICT)
    assert template is not None
    for event_id in (1, 9, 10, 123_456_789, 2**40):
        event = chunk_type(session_id="sess-1", content=text)
        assert template.encode(text, event_id) == general(event, event_id, Profile.STRICT)


@pytest.mark.parametrize("chunk_type", [AgentMessageChunk, AgentThoughtChunk])
@pytest.mark.parametrize("text", [*TEXTS, "  padded  ", "<think>x</think>", "DONE", "a\r\n\n\n\nb"])
def test_harn_templates_match_the_general_path(
    chunk_type: type[AgentMessageChunk], text: str
) -> None:
    # Keys sorted: the root "_harn" member (with the id) comes first; message chunks carry the
    # visible copy (Harn's sanitiser) twice besides the text.
    template = chunk_template(chunk_type, "s", Profile.HARN)
    assert template is not None
    event = chunk_type(session_id="s", content=text)
    assert template.encode(text, 77) == general(event, 77, Profile.HARN)


@given(
    session_id=st.text(min_size=1, max_size=40),
    text=st.text(max_size=300),
    event_id=st.integers(min_value=1, max_value=2**53),
    thought=st.booleans(),
    profile=st.sampled_from([Profile.STRICT, Profile.HARN]),
)
def test_any_session_text_and_id(
    session_id: str, text: str, event_id: int, thought: bool, profile: Profile
) -> None:
    chunk_type = AgentThoughtChunk if thought else AgentMessageChunk
    template = chunk_template(chunk_type, session_id, profile)
    assert template is not None
    event = chunk_type(session_id=session_id, content=text)
    assert template.encode(text, event_id) == general(event, event_id, profile)


def test_no_template_for_a_translation_it_cannot_reproduce(monkeypatch: pytest.MonkeyPatch) -> None:
    # A builder that does more with the text than embed it (here: upper-cases it, except the
    # sentinel's) passes the slotting and fails the probe check; the fan-out keeps the general path.
    import acp_bridge.translate.prebuilt as prebuilt

    real = prebuilt.translate

    def shouting(event: AgentMessageChunk, profile: Profile) -> list[dict[str, object]]:
        messages = real(event, profile=profile)
        if "\ue000" not in event.content:
            messages[0]["params"]["update"]["content"]["text"] = event.content.upper()  # type: ignore[index]
        return messages

    monkeypatch.setattr(prebuilt, "translate", shouting)
    assert chunk_template(AgentMessageChunk, "s", Profile.STRICT) is None

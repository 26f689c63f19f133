"""The strict profile emits only valid ACP v1; the advertised capability block is exactly what is emitted."""

from __future__ import annotations

from typing import Any

import pytest
from acp.schema import SessionNotification
from hypothesis import HealthCheck, given, settings

from acp_bridge.events import parse_event
from acp_bridge.translate import (
    HARN_AGENT_EVENT_METHOD,
    SESSION_UPDATE_METHOD,
    Profile,
    agent_event_kinds,
    harn_capability_block,
    session_update_extensions,
    translate,
)
from tests.events.strategies import any_event
from tests.support.acp_schema import SchemaViolation, acp_schema

from .golden import CASES

STANDARD_UPDATES = {
    "user_message_chunk",
    "agent_message_chunk",
    "agent_thought_chunk",
    "tool_call",
    "tool_call_update",
    "plan",
    "available_commands_update",
    "current_mode_update",
    "config_option_update",
    "session_info_update",
    "usage_update",
}

GOLDEN_INPUTS = [(case.name, raw, case.replay) for case in CASES for raw in case.input]


def strict_messages(raw: dict[str, Any], replay: bool = False) -> list[dict[str, Any]]:
    return translate(parse_event(raw), profile=Profile.STRICT, replay=replay)


@pytest.mark.parametrize(("name", "raw", "replay"), GOLDEN_INPUTS, ids=lambda v: str(v)[:60])
def test_strict_golden_output_is_schema_valid(name: str, raw: dict[str, Any], replay: bool) -> None:
    schema = acp_schema()
    for message in strict_messages(raw, replay):
        assert message["method"] in (SESSION_UPDATE_METHOD, HARN_AGENT_EVENT_METHOD)
        assert "_harn" not in message  # no custom root member on the JSON-RPC object
        schema.check_agent_message(message)
        if message["method"] == SESSION_UPDATE_METHOD:
            # The official SDK's models accept it too.
            SessionNotification.model_validate(message["params"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_event)
def test_strict_output_is_schema_valid_for_generated_events(raw: dict[str, Any]) -> None:
    schema = acp_schema()
    for replay in (False, True):
        for message in strict_messages(raw, replay):
            schema.check_agent_message(message)


def test_the_validator_rejects_harn_only_shapes() -> None:
    """Guard against a validator that cannot fail: Harn's own output is not strict ACP."""
    schema = acp_schema()
    rejected = 0
    for case in CASES:
        for raw in case.input:
            for message in translate(parse_event(raw), profile=Profile.HARN):
                update = message["params"].get("update", {})
                if message["method"] != SESSION_UPDATE_METHOD:
                    continue
                nonstandard = update.get("sessionUpdate") not in STANDARD_UPDATES
                if nonstandard or "harnPlan" in update:
                    with pytest.raises(SchemaViolation):
                        schema.check_agent_message(message)
                    rejected += 1
    assert rejected > 20


def _emitted(profile: Profile, events: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    updates: set[str] = set()
    kinds: set[str] = set()
    for raw in events:
        for message in translate(parse_event(raw), profile=profile):
            if message["method"] == SESSION_UPDATE_METHOD:
                name = message["params"]["update"]["sessionUpdate"]
                if name not in STANDARD_UPDATES:
                    updates.add(name)
            else:
                kinds.add(message["params"]["kind"])
    return updates, kinds


@pytest.mark.parametrize("profile", [Profile.HARN, Profile.STRICT])
def test_capability_block_advertises_exactly_what_is_emitted(profile: Profile) -> None:
    known = [raw for case in CASES if case.variant != "unknown" for raw in case.input]
    updates, kinds = _emitted(profile, known)
    assert updates == set(session_update_extensions(profile))
    assert kinds == set(agent_event_kinds(profile))
    block = harn_capability_block(profile)
    assert block["profile"] == profile.value
    assert block["sessionUpdateExtensions"] == sorted(updates)
    assert block["extensionMethods"][HARN_AGENT_EVENT_METHOD]["kinds"] == sorted(kinds)
    if profile is Profile.STRICT:
        assert updates == set()


@settings(max_examples=200, deadline=None)
@given(any_event)
def test_generated_events_stay_within_the_advertised_names(raw: dict[str, Any]) -> None:
    for profile in (Profile.HARN, Profile.STRICT):
        updates, kinds = _emitted(profile, [raw])
        assert updates <= set(session_update_extensions(profile))
        assert kinds <= set(agent_event_kinds(profile))


def test_tool_lifecycle_fields_match_the_advertised_list() -> None:
    advertised = set(harn_capability_block(Profile.HARN)["toolLifecycleExtensionFields"])
    seen: set[str] = set()
    for case in CASES:
        for raw in case.input:
            if raw["type"] not in ("tool_call", "tool_call_update"):
                continue
            for message in translate(parse_event(raw), profile=Profile.HARN):
                seen |= set(message["params"]["update"].get("_meta", {}).get("harn", {}))
    assert seen == advertised


def test_translate_rejects_auto_profile() -> None:
    with pytest.raises(ValueError, match="concrete profile"):
        translate(parse_event(CASES[0].input[0]), profile=Profile.AUTO)


def test_content_extension_fields_are_advertised_only_where_emitted() -> None:
    chunk = parse_event({"type": "agent_message_chunk", "session_id": "s", "content": "hi"})
    for profile in (Profile.HARN, Profile.STRICT):
        [message] = translate(chunk, profile=profile)
        emitted = set(message["params"]["update"]["content"].get("_meta", {}).get("harn", {}))
        assert emitted == set(harn_capability_block(profile)["contentExtensionFields"])

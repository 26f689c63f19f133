"""Every golden fixture translates to exactly its expected messages, in both profiles."""

from __future__ import annotations

import pytest

from acp_bridge.events import EVENT_TYPES, parse_event
from acp_bridge.translate import Profile, translate

from .golden import CASES, GoldenCase


def test_every_variant_has_a_golden_case() -> None:
    covered = {case.variant for case in CASES}
    assert set(EVENT_TYPES) <= covered
    assert "unknown" in covered


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("profile", [Profile.HARN, Profile.STRICT])
def test_golden(case: GoldenCase, profile: Profile) -> None:
    produced = [
        message
        for raw in case.input
        for message in translate(parse_event(raw), profile=profile, replay=case.replay)
    ]
    expected = case.harn if profile is Profile.HARN else case.strict
    assert produced == expected

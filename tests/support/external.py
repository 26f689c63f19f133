"""Tests that need a program from outside Python (chromium, redis-server): skip here, fail in CI.

``.ci/run`` installs them and sets ``ACP_BRIDGE_REQUIRE_EXTERNAL=1``; there a missing one is a
failure, so a green CI run never hides a skipped suite. Elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["REQUIRE_EXTERNAL_ENV", "missing_external"]

REQUIRE_EXTERNAL_ENV = "ACP_BRIDGE_REQUIRE_EXTERNAL"


def missing_external(reason: str) -> NoReturn:
    """Fail (``ACP_BRIDGE_REQUIRE_EXTERNAL`` set) or skip because ``reason``."""
    if os.environ.get(REQUIRE_EXTERNAL_ENV, "") not in ("", "0"):
        pytest.fail(f"{reason} ({REQUIRE_EXTERNAL_ENV} is set)", pytrace=False)
    pytest.skip(reason)

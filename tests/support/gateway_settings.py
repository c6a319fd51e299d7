"""Settings for a gateway or service under test: rate limits out of the way, no Redis.

Tests of the gateway's hop, limits and errors start from these and set what they probe.
"""

from __future__ import annotations

from typing import Any

from services.common.settings import Settings


def settings_for_tests(**overrides: Any) -> Settings:
    """Test settings whose rate limits no test reaches by accident; ``overrides`` win."""
    values: dict[str, Any] = {
        "environment": "test",
        "redis_url": None,
        "rate_limit_per_minute": 10_000,
        "rate_limit_anonymous_per_minute": 10_000,
    }
    return Settings(**(values | overrides))

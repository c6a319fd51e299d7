"""Fixtures of the end-to-end tests: platforms started as ``consistorio up`` does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.process import RunningPlatform


@pytest.fixture
def platform_factory() -> Iterator[list[RunningPlatform]]:
    """Collects started platforms and makes sure none outlives its test."""
    started: list[RunningPlatform] = []
    yield started
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=30)

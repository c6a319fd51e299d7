"""The notificaciones service's source of "now", injectable so tests drive legal time.

Every instant with legal effect (puesta a disposición, access, expiry) is read from
a :class:`Clock`; tests hand a :class:`ControlledClock` to the service and the
scheduler and move it forward second by second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ControlledClock", "SystemClock"]


class Clock(Protocol):
    """Where the current instant comes from."""

    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The machine's clock (production)."""

    def now(self) -> datetime:
        """The current instant in UTC."""
        return datetime.now(UTC)


class ControlledClock:
    """A clock that only moves when told to (tests, benchmarks)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("el reloj necesita un instante con zona horaria")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """The instant the clock was last set to."""
        return self._now

    def set(self, instant: datetime) -> None:
        """Moves the clock to ``instant`` (backwards too: tests may need it)."""
        if instant.tzinfo is None:
            raise ValueError("el reloj necesita un instante con zona horaria")
        self._now = instant.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        """Moves the clock forward by ``delta``."""
        self._now += delta

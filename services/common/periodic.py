"""A pass run in the background every so often, on every replica: the schedulers' timer.

The schedulers (pagos' and notificaciones' vencimientos, notificaciones' avisos) each do
their work in passes that are safe on any number of replicas at once (rows claimed
``FOR UPDATE SKIP LOCKED``). What they share is only the timer around a pass: run one
now, log what it did, survive a failure (the next tick retries), sleep, and stop cleanly
when the process shuts down (an unfinished pass's transaction rolls back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress

__all__ = ["PeriodicPass"]


class PeriodicPass:
    """Runs ``una_pasada`` every ``interval_seconds`` in a background task (the first at once).

    ``done`` is a log message with one ``%d`` for how many rows a pass handled (logged
    when it handled any); ``failed`` is logged with the traceback when a pass raises.
    """

    def __init__(
        self,
        una_pasada: Callable[[], Awaitable[int]],
        *,
        name: str,
        interval_seconds: float,
        logger: logging.Logger,
        failed: str,
        done: str | None = None,
    ) -> None:
        self._una_pasada = una_pasada
        self._name = name
        self._interval = interval_seconds
        self._log = logger
        self._failed = failed
        self._done = done
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            try:
                handled = await self._una_pasada()
                if handled and self._done is not None:
                    self._log.info(self._done, handled)
            except Exception:
                self._log.exception(self._failed)
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        """Starts the background passes (nothing if they already run)."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        """Stops the background passes; an unfinished pass is cancelled where it waits."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

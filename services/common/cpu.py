"""CPU-heavy work (parsing, validating, rendering large inputs) off the event loop.

A coroutine that parses a 19 MB PDF on the loop stops every other request of the
process for seconds. :class:`CpuPool` runs such work in worker processes (threads
would still hold the GIL while parsing), and bounds how many jobs one tenant may
have running at once, so one tenant's uploads cannot take every worker.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["CpuPool", "in_documents"]

P = ParamSpec("P")
T = TypeVar("T")


class CpuPool:
    """Worker processes for CPU-bound functions, at most ``per_tenant`` jobs per tenant.

    Workers are started on first use with ``spawn`` (a fork of a process running an
    event loop and threads is unsafe) and live until :meth:`close`. ``nice`` lowers
    their scheduling priority (``os.nice``): the document workers run below the
    processes that serve requests, so a burst of documents slows documents, not answers.
    What a worker loads once (fonts, keys) stays loaded for the jobs that follow.

    ``preload`` names modules each worker imports as it starts. Importing the PDF and
    signature libraries takes a worker seconds of CPU (more at its lower priority on a
    busy machine); with :meth:`start` that happens while the platform starts, not in
    front of the first citizen's justificante.
    """

    def __init__(
        self, *, workers: int, per_tenant: int, nice: int = 0, preload: Sequence[str] = ()
    ) -> None:
        self.workers = workers
        self.per_tenant = per_tenant
        self.nice = nice
        self.preload = tuple(preload)
        self._executor: ProcessPoolExecutor | None = None
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._waiting: dict[str, int] = {}
        self.running = 0

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_prepare_worker,
                initargs=(self.nice, self.preload),
            )
        return self._executor

    def start(self) -> None:
        """Starts every worker now (each imports ``preload``) instead of on first use.

        Returns at once: the workers start in the background, and a job submitted
        meanwhile waits for the first one ready.
        """
        pool = self._pool()
        for _ in range(self.workers):
            # With no idle worker, each submission starts one more, up to ``workers``.
            pool.submit(_ready)

    @property
    def pending(self) -> int:
        """Jobs submitted and not finished, running or waiting: the pool's backlog."""
        return sum(self._waiting.values())

    async def run(self, tenant: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs ``fn(*args)`` in a worker once ``tenant`` has a free slot; awaits its result."""
        if kwargs:
            raise TypeError("CpuPool.run takes positional arguments only (they are pickled)")
        slot = self._slots.setdefault(tenant, asyncio.Semaphore(self.per_tenant))
        self._waiting[tenant] = self._waiting.get(tenant, 0) + 1
        try:
            async with slot:
                self.running += 1
                try:
                    loop = asyncio.get_running_loop()
                    return await loop.run_in_executor(self._pool(), fn, *args)
                finally:
                    self.running -= 1
        finally:
            self._waiting[tenant] -= 1
            if not self._waiting[tenant]:
                # Idle tenants leave nothing behind.
                del self._waiting[tenant]
                del self._slots[tenant]

    def close(self) -> None:
        """Stops the workers (running jobs are abandoned)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


async def in_documents(pool: CpuPool | None, tenant: str, fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in the document workers ``pool``; in a thread when there is none.

    The use cases that render, stamp or seal take the process's document workers; a
    use case called alone (a test, a script) has no pool and still keeps the loop free.
    ``fn`` must be a top-level function and ``args`` picklable (a worker runs them).
    """
    if pool is None:
        return await asyncio.to_thread(fn, *args)
    return await pool.run(tenant, fn, *args)


def _prepare_worker(nice: int, preload: tuple[str, ...]) -> None:
    """Runs in each new worker: lowers its priority by ``nice``, then imports ``preload``."""
    if nice:
        os.nice(nice)
    for module in preload:
        importlib.import_module(module)


def _ready() -> None:
    """A job that does nothing: submitting it makes the pool start a worker."""

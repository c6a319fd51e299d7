"""What the benchmarks share: a throwaway database, bus names of their own, the machine.

Every benchmark that runs the platform needs the same scaffolding: a fresh PostgreSQL
database dropped afterwards, RabbitMQ names unique to the run (so that a run never reads
another's messages and its queues can be deleted at the end), and one line saying on what
machine the figures were measured. Kept here once so that the benchmarks differ only in
what they measure.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

from tests.support.broker import delete_run
from tests.support.servers import AMQP_URL, POSTGRES_ADMIN_URL

# The limits a benchmark lifts so that it measures the platform, not the rate limiter.
UNLIMITED = "100000000"


@dataclass(frozen=True)
class ScratchDatabase:
    """A database made for one run: its name, the owner's URL and the server's version."""

    name: str
    url: str
    server_version: str

    @classmethod
    async def create(cls) -> ScratchDatabase:
        """Creates an empty database with a name no other run uses."""
        admin = make_url(POSTGRES_ADMIN_URL)
        name = f"consistorio_bench_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
            server_version = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()
        url = admin.set(database=name).render_as_string(hide_password=False)
        return cls(name=name, url=url, server_version=server_version)

    async def drop(self) -> None:
        """Drops the database, closing whatever connections are still open to it."""
        conn = await asyncpg.connect(
            make_url(POSTGRES_ADMIN_URL).render_as_string(hide_password=False)
        )
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()


@dataclass(frozen=True)
class PlatformRun:
    """A scratch database and RabbitMQ names of one run of the whole platform."""

    database: ScratchDatabase
    run: str

    @classmethod
    async def create(cls) -> PlatformRun:
        """A new database and a new run id (its exchange and queue prefix)."""
        return cls(database=await ScratchDatabase.create(), run=uuid.uuid4().hex[:8])

    @property
    def db_url(self) -> str:
        """The owner's URL of the run's database."""
        return self.database.url

    @property
    def queue_prefix(self) -> str:
        """The prefix of every queue the run's platform declares."""
        return f"bench.{self.run}."

    @property
    def exchange(self) -> str:
        """The bus exchange of the run."""
        return f"consistorio.bench.{self.run}"

    def env(self, **extra: str) -> dict[str, str]:
        """The platform's environment for this run; ``extra`` adds or overrides settings."""
        return {
            "DATABASE_URL": self.db_url,
            "AMQP_URL": AMQP_URL,
            "BUS_EXCHANGE": self.exchange,
            "BUS_QUEUE_PREFIX": self.queue_prefix,
            "LOG_LEVEL": "WARNING",
            "RATE_LIMIT_PER_MINUTE": UNLIMITED,
            **extra,
        }

    async def close(self) -> None:
        """Drops the database, then the run's exchange and queues."""
        await self.database.drop()
        await delete_run(AMQP_URL, queue_prefix=self.queue_prefix, exchange=self.exchange)


def machine() -> str:
    """Architecture, cores, Python and kernel: what a reader needs to weigh the figures."""
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def nearest_rank(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds (p99 of 30 runs is the slowest)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] * 1000


def memory_gib() -> str:
    """The machine's memory, as /proc/meminfo gives it ("unknown memory" elsewhere)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            kib = int(fh.readline().split()[1])
        return f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown memory"


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def seeding_progress(done: int, total: int, started: float, what: str) -> None:
    """One self-rewriting stderr line while a bench seeds its rows: long loads show
    their rate and time left."""
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed else 0.0
    eta = (total - done) / rate if rate else 0.0
    print(
        f"\r  seeding: {done:9,d}/{total:,d} {what}, {rate:8,.0f} rows/s, ETA {eta:4.0f} s",
        end="",
        file=sys.stderr,
        flush=True,
    )

"""``consistorio up`` with no bus consumer subscribed: registration intake alone.

Used by ``tests.bench.registro_intake`` (run as a script so that it imports whichever
source tree ``PYTHONPATH`` names: the benchmark measures before and after a change with
the same harness). Every service serves as in ``up`` and every relay publishes its
outbox to RabbitMQ; only the consumers that would make expedientes, justificantes and
time-stamps are left out, so what is measured is what a council's register answers
while the document work is paused.
"""

from __future__ import annotations

import sys

from services.common.runtime import ServiceRuntime


async def _no_consumers(self: ServiceRuntime) -> None:
    """Replaces the subscription: the relay still publishes, nobody consumes."""


if __name__ == "__main__":
    ServiceRuntime.subscribe = _no_consumers  # type: ignore[method-assign]
    from services.cli import app

    sys.argv[0] = "consistorio"
    app()

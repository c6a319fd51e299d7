"""Cleaning up what a test run left on the shared RabbitMQ (its own prefix only)."""

from __future__ import annotations

import subprocess

import aio_pika

__all__ = ["delete_run", "queues_named"]


def queues_named(prefix: str) -> list[str]:
    """The broker's queues whose names start with ``prefix`` (each run has its own)."""
    try:
        listed = subprocess.run(
            ["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return []
    return [name for name in listed if name.startswith(prefix)]


async def delete_run(amqp_url: str, *, queue_prefix: str, exchange: str) -> None:
    """Deletes a run's queues and its private exchange."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in queues_named(queue_prefix):
            await channel.queue_delete(queue)
        await channel.exchange_delete(exchange)

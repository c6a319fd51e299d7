"""The interface every bus backend implements (in-process, AMQP).

Semantics shared by all backends, and checked by one behaviour test suite:

* ``publish`` sends one message to the durable topic exchange with a routing key
  and returns only once the message is safely accepted (AMQP: publisher confirm).
* ``subscribe`` declares a durable named queue bound to one or more topic patterns
  (``*`` one word, ``#`` zero or more words) and consumes it. Every queue bound
  to a matching pattern gets its own copy of a message.
* The handler receives a :class:`Delivery` and must ``ack`` it or ``reject`` it;
  ``reject(requeue=True)`` makes the message come again (``redelivered`` set);
  a delivery that is neither acked nor rejected when its consumer stops comes again.
* ``publish_safely`` returns only once the message can no longer be lost if this
  process dies: the outbox relay marks a row sent after it, never before. A broker's
  confirm is enough (the message sits in a durable queue); the in-process bus, which
  keeps nothing, returns only once every queue bound to the message has had its copy
  acked or rejected by a consumer, whose inbox row or dead letter is then committed.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["Delivery", "Handler", "OutgoingMessage", "Transport", "TransportUnavailable"]

log = logging.getLogger("consistorio.bus")


class TransportUnavailable(Exception):
    """The broker could not accept a message now (down, unreachable, no confirm)."""


@dataclass(frozen=True)
class OutgoingMessage:
    """What a publisher hands to the transport."""

    routing_key: str
    body: bytes
    message_id: str
    content_type: str = "application/cloudevents+json"
    headers: dict[str, str] = field(default_factory=dict)


class Delivery(abc.ABC):
    """One received message, to be acked or rejected exactly once."""

    routing_key: str
    body: bytes
    message_id: str
    content_type: str
    headers: dict[str, str]
    redelivered: bool
    queue: str
    # Set once acked or rejected, so the transport knows whether a failed handler settled it.
    settled: bool = False

    @abc.abstractmethod
    async def ack(self) -> None: ...

    @abc.abstractmethod
    async def reject(self, *, requeue: bool) -> None: ...


Handler = Callable[[Delivery], Awaitable[None]]


class Transport(abc.ABC):
    """A way to move messages between services."""

    # How long a message whose handler raised without settling it waits before it is
    # requeued, so that a failing handler is not a hot loop.
    _retry_delay: float = 1.0

    @abc.abstractmethod
    async def start(self) -> None:
        """Connects and declares the exchange; idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stops consumers (unacked deliveries come again) and disconnects."""

    @abc.abstractmethod
    async def publish(self, message: OutgoingMessage) -> None:
        """Publishes and waits for the broker's confirm; raises TransportUnavailable."""

    async def publish_safely(self, message: OutgoingMessage) -> None:
        """Publishes and returns once the message survives this process's death.

        A durable broker's confirm is that point, so by default this is ``publish``;
        a transport that keeps messages in memory must wait for its consumers.
        """
        await self.publish(message)

    @abc.abstractmethod
    async def subscribe(
        self, queue: str, bindings: list[str], handler: Handler, *, prefetch: int | None = None
    ) -> None:
        """Declares a durable queue bound to ``bindings`` and starts consuming it.

        ``prefetch`` bounds this consumer's unsettled deliveries (the transport's
        default when None): consumers that make documents take few at a time.
        """

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the transport can publish now (for /readyz)."""

    async def _handle(self, handler: Handler, delivery: Delivery) -> None:
        """Runs a handler so that its failure never stops the consumer."""
        try:
            await handler(delivery)
        except Exception:
            log.exception(
                "bus handler for queue %r failed on message %r",
                delivery.queue,
                delivery.message_id,
            )
            if delivery.settled:
                return
            await asyncio.sleep(self._retry_delay)
            # Settled meanwhile by a task the handler spawned, or the channel is gone
            # (a broker requeues an unacked message by itself then).
            with contextlib.suppress(RuntimeError, TransportUnavailable):
                await delivery.reject(requeue=True)

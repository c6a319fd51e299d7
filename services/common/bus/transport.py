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
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = [
    "Delivery",
    "Handler",
    "OutgoingMessage",
    "TenantGate",
    "Transport",
    "TransportUnavailable",
    "tenant_of_routing_key",
]

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

_Item = TypeVar("_Item")


def tenant_of_routing_key(routing_key: str) -> str:
    """The tenant of a message: the first word of its routing key (``<tenant>.<service>…``)."""
    return routing_key.partition(".")[0]


class TenantGate(Generic[_Item]):
    """Fairness inside one consumer: at most ``per_tenant`` messages of one tenant at once.

    A message of a tenant already at its bound is parked here (not handled, not
    settled) and resumed when one of that tenant's messages is done, so one council's
    burst waits behind itself while other councils' messages are handled beside it.
    """

    def __init__(self, per_tenant: int) -> None:
        if per_tenant < 1:
            raise ValueError("per_tenant must be at least 1")
        self.per_tenant = per_tenant
        self.running: dict[str, int] = {}
        self.parked: dict[str, deque[_Item]] = {}

    def admit(self, tenant: str, item: _Item) -> bool:
        """True when ``item`` may run now (counted); otherwise it is parked."""
        if self.running.get(tenant, 0) < self.per_tenant:
            self.running[tenant] = self.running.get(tenant, 0) + 1
            return True
        self.parked.setdefault(tenant, deque()).append(item)
        return False

    def done(self, tenant: str) -> _Item | None:
        """One of ``tenant``'s messages is done; returns its next parked one (still counted)."""
        waiting = self.parked.get(tenant)
        if waiting:
            item = waiting.popleft()
            if not waiting:
                del self.parked[tenant]
            return item
        left = self.running.get(tenant, 1) - 1
        if left > 0:
            self.running[tenant] = left
        else:
            self.running.pop(tenant, None)
        return None

    def drain(self) -> list[_Item]:
        """Forgets every parked item and returns them (the consumer is going away)."""
        items = [item for waiting in self.parked.values() for item in waiting]
        self.parked.clear()
        return items


class Transport(abc.ABC):
    """A way to move messages between services."""

    # How long a message whose handler raised without settling it waits before it is
    # requeued, so that a failing handler is not a hot loop.
    _retry_delay: float = 1.0

    @abc.abstractmethod
    async def start(self) -> None:
        """Connects and declares the exchange; idempotent."""

    @abc.abstractmethod
    async def close(self, *, grace: float = 5.0) -> None:
        """Stops consumers, lets running handlers finish for ``grace`` s, disconnects.

        Deliveries not acked by then come again (unacked deliveries are requeued)."""

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

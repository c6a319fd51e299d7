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
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["Delivery", "Handler", "OutgoingMessage", "Transport", "TransportUnavailable"]


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

    @abc.abstractmethod
    async def ack(self) -> None: ...

    @abc.abstractmethod
    async def reject(self, *, requeue: bool) -> None: ...


Handler = Callable[[Delivery], Awaitable[None]]


class Transport(abc.ABC):
    """A way to move messages between services."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Connects and declares the exchange; idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stops consumers (unacked deliveries come again) and disconnects."""

    @abc.abstractmethod
    async def publish(self, message: OutgoingMessage) -> None:
        """Publishes and waits for the broker's confirm; raises TransportUnavailable."""

    @abc.abstractmethod
    async def subscribe(self, queue: str, bindings: list[str], handler: Handler) -> None:
        """Declares a durable queue bound to ``bindings`` and starts consuming it."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the transport can publish now (for /readyz)."""

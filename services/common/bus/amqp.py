"""The AMQP transport: the bus of distributed mode, on RabbitMQ through aio-pika.

Publishing and consuming use separate connections, as RabbitMQ recommends, because
they need different failure handling:

* The publisher connection is plain and lazy. It is opened on first use; after any
  failure it is thrown away, so the next ``publish`` connects again. The outbox
  relay already retries, so failing fast with :class:`TransportUnavailable` is more
  useful to it than waiting inside the transport for the broker to return.
* The consumer connection is robust (``connect_robust``): when the broker drops it,
  aio-pika reconnects in the background and redeclares the queues, bindings and
  consumers, so subscriptions survive a broker restart without the service noticing.

Messages are published persistent to a durable topic exchange with publisher
confirms; queues are durable and consumed with manual acks, so a message leaves its
queue only once a handler has acked it.

Every queue is declared with its ``x-queue-type`` (``BUS_QUEUE_TYPE``): RabbitMQ
compares a redeclaration with the queue it holds, so a process must name the type the
deployment's definitions gave the queue (quorum in production). A mismatch is a
configuration error, raised as :class:`QueueMismatch` naming the setting, not an
outage to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, cast

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.connection import make_url
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from services.common.bus.transport import (
    Delivery,
    Handler,
    OutgoingMessage,
    TenantGate,
    Transport,
    TransportUnavailable,
    tenant_of_routing_key,
)
from services.common.overload import CONSUMER_IN_FLIGHT

__all__ = ["AmqpTransport", "QueueMismatch", "QueueType"]

QueueType = Literal["classic", "quorum"]

log = logging.getLogger(__name__)

_MessageCallback = Callable[[AbstractIncomingMessage], Awaitable[None]]

# What aio-pika and aiormq raise when the broker is down, unreachable, slow or refuses.
_BROKER_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_EXCEPTIONS,
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    OSError,
    asyncio.TimeoutError,
)


_PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT)


def _header_value(value: object) -> str:
    # AMQP header tables carry typed values; the bus contract is str -> str.
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


class QueueMismatch(Exception):
    """The broker holds the queue with other arguments (its type) than this process declares.

    Retrying cannot help: the process is configured for another queue type than the
    broker's definitions (``BUS_QUEUE_TYPE``), so it must stop and say so.
    """


class _AmqpDelivery(Delivery):
    """A delivery backed by an :class:`aio_pika.abc.AbstractIncomingMessage`."""

    def __init__(self, message: AbstractIncomingMessage, queue: str) -> None:
        self.routing_key = message.routing_key or ""
        self.body = message.body
        self.message_id = message.message_id or ""
        self.content_type = message.content_type or ""
        self.headers = {str(k): _header_value(v) for k, v in (message.headers or {}).items()}
        self.redelivered = bool(message.redelivered)
        self.queue = queue
        self._message = message
        self.settled = False

    def _settle(self) -> None:
        # Settling twice would make the broker close the channel; fail in the handler instead.
        if self.settled:
            raise RuntimeError(f"delivery {self.message_id!r} was already acked or rejected")
        self.settled = True

    async def ack(self) -> None:
        """Tells the broker the message is handled, so it leaves the queue."""
        self._settle()
        try:
            await self._message.ack()
        except _BROKER_ERRORS as exc:
            raise TransportUnavailable(f"could not ack {self.message_id!r}: {exc!r}") from exc

    async def reject(self, *, requeue: bool) -> None:
        """Drops the message (or dead-letters it, per queue policy), or requeues it."""
        self._settle()
        try:
            await self._message.reject(requeue=requeue)
        except _BROKER_ERRORS as exc:
            raise TransportUnavailable(f"could not reject {self.message_id!r}: {exc!r}") from exc


@dataclass
class _Subscription:
    """One consumer: its own channel, so its prefetch window is its own."""

    queue_name: str
    channel: AbstractChannel
    queue: AbstractQueue
    consumer_tag: str


class AmqpTransport(Transport):
    """A :class:`Transport` on a RabbitMQ durable topic exchange."""

    def __init__(
        self,
        url: str,
        *,
        exchange: str = "consistorio.events",
        prefetch: int = 20,
        connect_timeout: float = 5.0,
        publish_timeout: float = 5.0,
        retry_delay: float = 1.0,
        queue_type: QueueType = "classic",
        tenant_concurrency: int | None = None,
    ) -> None:
        """``connect_timeout`` and ``publish_timeout`` bound every wait on the broker.

        ``tenant_concurrency`` bounds the messages of one tenant a consumer handles at
        once (:class:`TenantGate`). A parked delivery stays unacked, so it still holds
        one of the ``prefetch`` places the broker gives the consumer: fairness holds
        while one tenant's backlog is under ``prefetch``. None: no bound.

        ``retry_delay`` is how long a message whose handler raised without settling
        it waits before it is requeued, so that a failing handler is not a hot loop.
        ``queue_type`` is the ``x-queue-type`` every queue is declared with.
        """
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        if queue_type not in ("classic", "quorum"):
            raise ValueError(f"unknown queue type {queue_type!r}: classic or quorum")
        self._queue_type = queue_type
        self._url = url
        self._exchange_name = exchange
        self._prefetch = prefetch
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._retry_delay = retry_delay
        self._tenant_concurrency = tenant_concurrency
        self._publisher: AbstractConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        # The publisher channel's aiormq channel, which publish() writes to directly.
        self._publish_underlay: aiormq.Channel | None = None
        self._consumer: AbstractRobustConnection | None = None
        self._subscriptions: list[_Subscription] = []
        self._handlers: set[asyncio.Task[None]] = set()
        # Concurrent publishers after an outage must open one connection, not one each.
        self._publisher_lock = asyncio.Lock()
        self._consumer_lock = asyncio.Lock()
        self._closed = False

    async def start(self) -> None:
        """Connects the publisher and declares the exchange; raises TransportUnavailable."""
        await self._publisher_exchange()

    async def close(self, *, grace: float = 5.0) -> None:
        """Cancels consumers, lets running handlers finish for ``grace`` s, disconnects.

        Deliveries still unacked when the channels close go back to their queues
        (``redelivered`` set): the broker requeues them, not this process.
        """
        if self._closed:
            return
        self._closed = True
        for subscription in self._subscriptions:
            with contextlib.suppress(*_BROKER_ERRORS):
                await subscription.queue.cancel(subscription.consumer_tag, timeout=grace)
        if self._handlers:
            _, pending = await asyncio.wait(set(self._handlers), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for subscription in self._subscriptions:
            await _close_quietly(subscription.channel)
        self._subscriptions.clear()
        if self._consumer is not None:
            await _close_quietly(self._consumer)
            self._consumer = None
        await self._drop_publisher()

    async def publish(self, message: OutgoingMessage) -> None:
        """Publishes persistent with ``mandatory=False`` and waits for the confirm.

        Any failure (no connection, nack, no confirm within ``publish_timeout``) raises
        :class:`TransportUnavailable` and drops the publisher connection, so that the
        next call connects afresh.
        """
        await self._publisher_exchange()
        channel = self._publish_underlay
        if channel is None:  # pragma: no cover - set together with the exchange
            raise TransportUnavailable("no publisher channel")
        # Straight to aiormq, with the very properties aio_pika.Message builds: the
        # relay publishes every event of the platform, and aio-pika's message object and
        # checks cost a third of a publish's CPU while adding nothing to these messages.
        properties = aiormq.spec.Basic.Properties(
            content_type=message.content_type,
            delivery_mode=_PERSISTENT,
            headers=dict(message.headers),
            message_id=message.message_id,
            priority=0,
        )
        try:
            async with asyncio.timeout(self._publish_timeout):
                # A nack raises DeliveryError; an unroutable message is dropped (not mandatory).
                await channel.basic_publish(
                    message.body,
                    exchange=self._exchange_name,
                    routing_key=message.routing_key,
                    properties=properties,
                    mandatory=False,
                    timeout=self._publish_timeout,
                    # Not waiting for the socket write: the confirm comes after it anyway,
                    # and a batch's frames then go out back to back.
                    wait=False,
                )
        except _BROKER_ERRORS as exc:
            await self._drop_publisher()
            raise TransportUnavailable(
                f"broker did not confirm {message.message_id!r}: {exc!r}"
            ) from exc

    async def subscribe(
        self, queue: str, bindings: list[str], handler: Handler, *, prefetch: int | None = None
    ) -> None:
        """Declares the durable ``queue`` of this transport's type, binds each pattern, and
        adds one consumer to it, taking ``prefetch`` deliveries at once (the transport's
        default when None).

        Raises :class:`QueueMismatch` when the broker holds ``queue`` with another type.
        """
        if prefetch is not None and prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        connection = await self._consumer_connection()
        channel: AbstractChannel | None = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                channel = await connection.channel()
                await channel.set_qos(prefetch_count=prefetch or self._prefetch)
                exchange = await channel.declare_exchange(
                    self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
                declared = await channel.declare_queue(
                    queue, durable=True, arguments={"x-queue-type": self._queue_type}
                )
                for pattern in bindings:
                    await declared.bind(exchange, routing_key=pattern)
                tag = await declared.consume(self._on_message_for(queue, handler), no_ack=False)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            # A robust channel the broker closed would be reopened in the background.
            if channel is not None:
                await _close_quietly(channel)
            raise QueueMismatch(
                f"RabbitMQ holds queue {queue!r} with other arguments than this process "
                f"declares (x-queue-type {self._queue_type!r}): set BUS_QUEUE_TYPE to the "
                f"type of the broker's definitions. The broker said: {exc}"
            ) from exc
        except _BROKER_ERRORS as exc:
            if channel is not None:
                await _close_quietly(channel)
            raise TransportUnavailable(f"could not subscribe {queue!r}: {exc!r}") from exc
        self._subscriptions.append(_Subscription(queue, channel, declared, tag))

    async def ping(self) -> bool:
        """True when the publisher connection is open (connecting once if it is not)."""
        try:
            await self._publisher_exchange()
        except TransportUnavailable:
            return False
        return True

    async def delete_queue(self, name: str) -> None:
        """Stops this transport's consumers of ``name`` and deletes the queue on the broker."""
        # Our consumers go first: a robust channel would otherwise redeclare the queue.
        keep: list[_Subscription] = []
        for subscription in self._subscriptions:
            if subscription.queue_name != name:
                keep.append(subscription)
                continue
            with contextlib.suppress(*_BROKER_ERRORS):
                await subscription.queue.cancel(subscription.consumer_tag)
            await _close_quietly(subscription.channel)
        self._subscriptions = keep
        await self._publisher_exchange()
        if self._publish_channel is None:
            raise TransportUnavailable("no channel to delete the queue on")
        try:
            async with asyncio.timeout(self._connect_timeout):
                await self._publish_channel.queue_delete(name)
        except _BROKER_ERRORS as exc:
            await self._drop_publisher()
            raise TransportUnavailable(f"could not delete queue {name!r}: {exc!r}") from exc

    async def _publisher_exchange(self) -> AbstractExchange:
        """The exchange on an open publisher channel, connecting when there is none."""
        if self._closed:
            raise TransportUnavailable("the AMQP transport is closed")
        if self._exchange is not None and self._publisher_open():
            return self._exchange
        async with self._publisher_lock:
            if self._exchange is not None and self._publisher_open():
                return self._exchange
            await self._drop_publisher()
            connection: AbstractConnection | None = None
            try:
                async with asyncio.timeout(self._connect_timeout):
                    connection = await aio_pika.connect(self._url, timeout=self._connect_timeout)
                    channel = await connection.channel(publisher_confirms=True)
                    exchange = await channel.declare_exchange(
                        self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                    )
                    underlay = await channel.get_underlay_channel()
            except _BROKER_ERRORS as exc:
                if connection is not None:
                    await _close_quietly(connection)
                raise TransportUnavailable(f"broker unreachable: {exc!r}") from exc
            self._publisher, self._publish_channel, self._exchange = connection, channel, exchange
            # aiormq's own channel class: its basic_publish takes ``wait``.
            self._publish_underlay = cast(aiormq.Channel, underlay)
            return exchange

    def _publisher_open(self) -> bool:
        connection, channel = self._publisher, self._publish_channel
        return (
            connection is not None
            and not connection.is_closed
            and connection.connected.is_set()
            and channel is not None
            and not channel.is_closed
        )

    async def _drop_publisher(self) -> None:
        connection = self._publisher
        self._publisher = self._publish_channel = self._exchange = None
        self._publish_underlay = None
        if connection is not None:
            await _close_quietly(connection)

    async def _consumer_connection(self) -> AbstractRobustConnection:
        """The robust consumer connection, opened on the first subscribe."""
        if self._closed:
            raise TransportUnavailable("the AMQP transport is closed")
        async with self._consumer_lock:
            if self._consumer is not None:
                return self._consumer
            # Built by hand rather than with connect_robust so that a failed first
            # attempt can be closed, which stops its background reconnection task.
            connection = aio_pika.RobustConnection(make_url(self._url))
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await connection.connect(timeout=self._connect_timeout)
            except _BROKER_ERRORS as exc:
                await _close_quietly(connection)
                raise TransportUnavailable(f"broker unreachable: {exc!r}") from exc
            self._consumer = connection
            return connection

    def _on_message_for(self, queue: str, handler: Handler) -> _MessageCallback:
        gate = (
            TenantGate[_AmqpDelivery](self._tenant_concurrency)
            if self._tenant_concurrency
            else None
        )
        gauge = CONSUMER_IN_FLIGHT.labels(queue)

        def spawn(delivery: _AmqpDelivery) -> None:
            # Handlers run in tasks of our own so close() can wait for them.
            task = asyncio.create_task(run(delivery))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

        async def run(delivery: _AmqpDelivery) -> None:
            gauge.inc()
            try:
                await self._handle(handler, delivery)
            finally:
                gauge.dec()
                if gate is not None:
                    parked = gate.done(tenant_of_routing_key(delivery.routing_key))
                    if parked is not None and not self._closed:
                        spawn(parked)

        async def on_message(message: AbstractIncomingMessage) -> None:
            delivery = _AmqpDelivery(message, queue)
            tenant = tenant_of_routing_key(delivery.routing_key)
            if gate is not None and not gate.admit(tenant, delivery):
                # Parked unacked: if the consumer stops first, the broker requeues it.
                return
            spawn(delivery)

        return on_message


async def _close_quietly(closable: AbstractConnection | AbstractChannel) -> None:
    """Closes, ignoring a broker that is already gone: there is nothing left to release."""
    with contextlib.suppress(*_BROKER_ERRORS):
        await closable.close()

"""The in-process transport: the bus of embedded mode, where every service shares one process.

It mimics a RabbitMQ topic exchange closely enough that services cannot tell the
difference: named queues bound with topic patterns, one copy per matching queue,
competing consumers on a shared queue, a per-consumer prefetch window, manual
ack/reject and ``redelivered`` on requeue. A message that matches no queue is dropped.

It is not durable. Queued and unacked messages live in memory and are lost when
:meth:`InProcessTransport.close` runs or the process dies. That is acceptable
because embedded mode's durability comes from the outbox: an event is written in
the same transaction as the state change and the relay publishes it again until it
is confirmed, and consumers' inboxes make the repeat harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from services.common.bus.topic import topic_matches
from services.common.bus.transport import (
    Delivery,
    Handler,
    OutgoingMessage,
    Transport,
    TransportUnavailable,
)

__all__ = ["InProcessTransport"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Queued:
    """One copy of a message sitting in one queue."""

    message: OutgoingMessage
    redelivered: bool = False


@dataclass
class _Queue:
    """A named queue: its bindings, its messages and the tasks consuming it."""

    name: str
    bindings: set[str] = field(default_factory=set)
    items: asyncio.Queue[_Queued] = field(default_factory=asyncio.Queue)
    consumers: list[asyncio.Task[None]] = field(default_factory=list)


class _InProcessDelivery(Delivery):
    """A delivery that goes back into its queue when rejected with ``requeue=True``."""

    def __init__(
        self,
        transport: InProcessTransport,
        queue: _Queue,
        queued: _Queued,
        window: asyncio.Semaphore,
    ) -> None:
        message = queued.message
        self.routing_key = message.routing_key
        self.body = message.body
        self.message_id = message.message_id
        self.content_type = message.content_type
        self.headers = dict(message.headers)
        self.redelivered = queued.redelivered
        self.queue = queue.name
        self._transport = transport
        self._queue = queue
        self._message = message
        self._window = window
        self.settled = False

    def _settle(self) -> None:
        # Settling twice is a handler bug; with AMQP it would close the channel.
        if self.settled:
            raise RuntimeError(f"delivery {self.message_id!r} was already acked or rejected")
        self.settled = True
        self._window.release()

    async def ack(self) -> None:
        """Removes the message from its queue for good."""
        self._settle()

    async def reject(self, *, requeue: bool) -> None:
        """Drops the message, or puts it back (``redelivered`` set) when ``requeue``."""
        self._settle()
        if requeue:
            self._transport._requeue(self._queue, self._message)


class InProcessTransport(Transport):
    """A :class:`Transport` whose broker is a dictionary of asyncio queues."""

    def __init__(self, *, prefetch: int = 20, retry_delay: float = 1.0) -> None:
        """``prefetch`` bounds unsettled deliveries per consumer, as ``basic.qos`` does.

        ``retry_delay`` is how long a message whose handler raised waits before it is
        requeued, so that a handler failing on every attempt is not a hot loop.
        """
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self._prefetch = prefetch
        self._retry_delay = retry_delay
        self._queues: dict[str, _Queue] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self) -> None:
        """Nothing to connect to; kept so callers treat every transport alike."""
        self._check_open()

    async def close(self, *, grace: float = 5.0) -> None:
        """Stops consuming, lets running handlers finish for ``grace`` seconds, forgets all.

        Messages still queued or unacked are lost: see the module docstring for why
        that is safe in embedded mode.
        """
        if self._closed:
            return
        self._closed = True
        consumers = [task for queue in self._queues.values() for task in queue.consumers]
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        if self._handlers:
            _, pending = await asyncio.wait(set(self._handlers), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._queues.clear()

    async def publish(self, message: OutgoingMessage) -> None:
        """Puts one copy in every queue with a matching binding; none matching drops it."""
        self._check_open()
        for queue in self._queues.values():
            if any(topic_matches(pattern, message.routing_key) for pattern in queue.bindings):
                queue.items.put_nowait(_Queued(message))

    async def subscribe(self, queue: str, bindings: list[str], handler: Handler) -> None:
        """Binds ``queue`` (created on first use) and adds one consumer to it."""
        self._check_open()
        target = self._queues.get(queue)
        if target is None:
            target = self._queues[queue] = _Queue(queue)
        target.bindings.update(bindings)
        task = asyncio.create_task(self._consume(target, handler), name=f"bus-consumer:{queue}")
        target.consumers.append(task)

    async def ping(self) -> bool:
        """True until :meth:`close`: there is no broker that could be down."""
        return not self._closed

    async def delete_queue(self, name: str) -> None:
        """Stops this queue's consumers and discards it with its messages."""
        queue = self._queues.pop(name, None)
        if queue is None:
            return
        for task in queue.consumers:
            task.cancel()
        await asyncio.gather(*queue.consumers, return_exceptions=True)

    def _check_open(self) -> None:
        if self._closed:
            raise TransportUnavailable("the in-process transport is closed")

    def _requeue(self, queue: _Queue, message: OutgoingMessage) -> None:
        # A queue deleted meanwhile, or a closed transport, has nowhere to put it.
        if not self._closed and self._queues.get(queue.name) is queue:
            queue.items.put_nowait(_Queued(message, redelivered=True))

    async def _consume(self, queue: _Queue, handler: Handler) -> None:
        """One consumer: takes messages while it has room in its prefetch window."""
        window = asyncio.Semaphore(self._prefetch)
        while True:
            await window.acquire()
            try:
                queued = await queue.items.get()
            except BaseException:
                window.release()
                raise
            delivery = _InProcessDelivery(self, queue, queued, window)
            task = asyncio.create_task(self._handle(handler, delivery))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
            # Without yielding, the first consumer would drain a full queue on its own;
            # yielding lets the others take turns, as RabbitMQ's round-robin does.
            await asyncio.sleep(0)

    async def _handle(self, handler: Handler, delivery: _InProcessDelivery) -> None:
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
            # The handler may have settled it while we slept, from a task it spawned.
            with contextlib.suppress(RuntimeError):
                await delivery.reject(requeue=True)

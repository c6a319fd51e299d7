"""The in-process transport: the bus of embedded mode, where every service shares one process.

It mimics a RabbitMQ topic exchange closely enough that services cannot tell the
difference: named queues bound with topic patterns, one copy per matching queue,
competing consumers on a shared queue, a per-consumer prefetch window, manual
ack/reject and ``redelivered`` on requeue. A message that matches no queue is dropped.

It is not durable. Queued and unacked messages live in memory and are lost when
:meth:`InProcessTransport.close` runs or the process dies. Embedded mode's
durability therefore comes from the outbox, and from when a row counts as sent:
:meth:`InProcessTransport.publish_safely` returns only once every queue bound to
the message has had its copy settled by a consumer (acked after its inbox row
committed, or dead-lettered), so the relay marks the row sent only then. A process
killed in between leaves the row unsent; the relay of the next start publishes it
again and the consumers' inboxes skip the copies already applied.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.common.bus.topic import topic_matches
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

__all__ = ["InProcessTransport"]


class _Receipt:
    """Tells a safe publisher when every copy of its message has been settled."""

    def __init__(self) -> None:
        self.pending = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def settle(self) -> None:
        self.pending -= 1
        if self.pending <= 0 and not self.done.done():
            self.done.set_result(None)

    def fail(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_exception(TransportUnavailable(reason))


@dataclass(frozen=True)
class _Queued:
    """One copy of a message sitting in one queue."""

    message: OutgoingMessage
    redelivered: bool = False
    receipt: _Receipt | None = None

    def settle(self) -> None:
        """This copy is done with: acked, dropped, or gone with its queue."""
        if self.receipt is not None:
            self.receipt.settle()


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
        self._queued = queued
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
        self._queued.settle()

    async def reject(self, *, requeue: bool) -> None:
        """Drops the message, or puts it back (``redelivered`` set) when ``requeue``."""
        self._settle()
        if requeue:
            self._transport._requeue(self._queue, self._queued)
        else:
            self._queued.settle()


class InProcessTransport(Transport):
    """A :class:`Transport` whose broker is a dictionary of asyncio queues."""

    def __init__(
        self, *, prefetch: int = 20, retry_delay: float = 1.0, tenant_concurrency: int | None = None
    ) -> None:
        """``prefetch`` bounds unsettled deliveries per consumer, as ``basic.qos`` does.

        ``tenant_concurrency`` bounds the messages of one tenant a consumer handles at
        once (:class:`TenantGate`); a parked message holds no place in the window, so
        other tenants' messages go past it. None: no bound.

        ``retry_delay`` is how long a message whose handler raised waits before it is
        requeued, so that a handler failing on every attempt is not a hot loop.
        """
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self._prefetch = prefetch
        self._retry_delay = retry_delay
        self._tenant_concurrency = tenant_concurrency
        self._queues: dict[str, _Queue] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._receipts: set[_Receipt] = set()
        self._closed = False

    async def start(self) -> None:
        """Nothing to connect to; kept so callers treat every transport alike."""
        self._check_open()

    async def close(self, *, grace: float = 5.0) -> None:
        """Stops consuming, lets running handlers finish for ``grace`` seconds, forgets all.

        Messages still queued or unacked are lost, and safe publishers still waiting
        for them get :class:`TransportUnavailable`, so their outbox rows stay unsent:
        see the module docstring for why that is safe in embedded mode.
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
        for receipt in self._receipts:
            receipt.fail("the in-process transport closed before its consumers settled")
        self._receipts.clear()

    async def publish(self, message: OutgoingMessage) -> None:
        """Puts one copy in every queue with a matching binding; none matching drops it."""
        self._check_open()
        self._route(message, None)

    async def publish_safely(self, message: OutgoingMessage) -> None:
        """Publishes, then waits until a consumer of every matching queue settled its copy.

        A message no queue is bound to is dropped at once, as a broker drops it.
        Raises :class:`TransportUnavailable` if the transport closes first.
        """
        self._check_open()
        receipt = _Receipt()
        self._route(message, receipt)
        if receipt.pending == 0:
            return
        self._receipts.add(receipt)
        try:
            await asyncio.shield(receipt.done)
        finally:
            self._receipts.discard(receipt)

    def _route(self, message: OutgoingMessage, receipt: _Receipt | None) -> None:
        for queue in self._queues.values():
            if any(topic_matches(pattern, message.routing_key) for pattern in queue.bindings):
                if receipt is not None:
                    receipt.pending += 1
                queue.items.put_nowait(_Queued(message, receipt=receipt))

    async def subscribe(
        self, queue: str, bindings: list[str], handler: Handler, *, prefetch: int | None = None
    ) -> None:
        """Binds ``queue`` (created on first use) and adds one consumer to it."""
        if prefetch is not None and prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self._check_open()
        target = self._queues.get(queue)
        if target is None:
            target = self._queues[queue] = _Queue(queue)
        target.bindings.update(bindings)
        task = asyncio.create_task(
            self._consume(target, handler, prefetch or self._prefetch),
            name=f"bus-consumer:{queue}",
        )
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
        while not queue.items.empty():
            queue.items.get_nowait().settle()

    def _check_open(self) -> None:
        if self._closed:
            raise TransportUnavailable("the in-process transport is closed")

    def _requeue(self, queue: _Queue, queued: _Queued) -> None:
        # A queue deleted meanwhile has nowhere to put it: the copy is gone with it.
        # (A closed transport has failed every receipt already.)
        if not self._closed and self._queues.get(queue.name) is queue:
            queue.items.put_nowait(_Queued(queued.message, True, queued.receipt))
        else:
            queued.settle()

    async def _consume(self, queue: _Queue, handler: Handler, prefetch: int) -> None:
        """One consumer: takes messages while it has room in its prefetch window."""
        window = asyncio.Semaphore(prefetch)
        gate = TenantGate[_Queued](self._tenant_concurrency) if self._tenant_concurrency else None
        try:
            while True:
                await window.acquire()
                try:
                    queued = await queue.items.get()
                except BaseException:
                    window.release()
                    raise
                tenant = tenant_of_routing_key(queued.message.routing_key)
                if gate is not None and not gate.admit(tenant, queued):
                    # Its tenant is at its bound: parked, it leaves its place to others.
                    window.release()
                else:
                    self._spawn(queue, handler, queued, window, gate)
                # Without yielding, the first consumer would drain a full queue on its
                # own; yielding lets the others take turns, as RabbitMQ's round-robin does.
                await asyncio.sleep(0)
        finally:
            if gate is not None:
                # Parked copies go back to their queue (or settle with it, if it is gone).
                for parked in gate.drain():
                    if not self._closed and self._queues.get(queue.name) is queue:
                        queue.items.put_nowait(parked)
                    else:
                        parked.settle()

    def _spawn(
        self,
        queue: _Queue,
        handler: Handler,
        queued: _Queued,
        window: asyncio.Semaphore,
        gate: TenantGate[_Queued] | None,
    ) -> None:
        delivery = _InProcessDelivery(self, queue, queued, window)
        task = asyncio.create_task(self._run(queue, handler, delivery, window, gate))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _run(
        self,
        queue: _Queue,
        handler: Handler,
        delivery: _InProcessDelivery,
        window: asyncio.Semaphore,
        gate: TenantGate[_Queued] | None,
    ) -> None:
        gauge = CONSUMER_IN_FLIGHT.labels(queue.name)
        gauge.inc()
        try:
            await self._handle(handler, delivery)
        finally:
            gauge.dec()
            if gate is not None:
                parked = gate.done(tenant_of_routing_key(delivery.routing_key))
                if parked is not None:
                    task = asyncio.create_task(self._resume(queue, handler, parked, window, gate))
                    self._handlers.add(task)
                    task.add_done_callback(self._handlers.discard)

    async def _resume(
        self,
        queue: _Queue,
        handler: Handler,
        queued: _Queued,
        window: asyncio.Semaphore,
        gate: TenantGate[_Queued],
    ) -> None:
        """A parked message's turn has come: it takes a place in the window again."""
        await window.acquire()
        self._spawn(queue, handler, queued, window, gate)

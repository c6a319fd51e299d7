"""One behaviour suite for every bus transport, so embedded and distributed mode agree.

Each test runs against the in-process transport and against RabbitMQ, on classic
queues and on quorum queues (``BUS_QUEUE_TYPE``, what production uses). Queue names
and routing-key words are unique per test, so runs sharing one broker do not see
each other's messages; every queue a test declares is deleted when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import aio_pika
import pytest

from services.common.bus.amqp import AmqpTransport
from services.common.bus.inprocess import InProcessTransport
from services.common.bus.transport import (
    Delivery,
    OutgoingMessage,
    TransportUnavailable,
)
from tests.support.servers import AMQP_URL, require_server
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration

# Long enough for a loaded CI broker, short enough that a lost message fails fast.
TIMEOUT = 5.0
# A quiet period after which a message that should not come is taken as not coming.
QUIET = 0.5
# Kept apart from the platform's own exchange, so tests never reach a running service.
EXCHANGE = "consistorio.test-events"
RETRY_DELAY = 0.2

AnyTransport = InProcessTransport | AmqpTransport

_BROKER = urlsplit(AMQP_URL)
BROKER_HOST = _BROKER.hostname or "127.0.0.1"
BROKER_PORT = _BROKER.port or 5672


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


class Bus:
    """Makes transports of one kind and cleans up the transports and queues a test used."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._transports: list[AnyTransport] = []
        self._queues: list[str] = []

    def transport(
        self, *, prefetch: int = 20, url: str = AMQP_URL, tenant_concurrency: int | None = None
    ) -> AnyTransport:
        """A new transport; for ``inprocess`` each one is a broker of its own."""
        made: AnyTransport
        if self.kind == "inprocess":
            made = InProcessTransport(
                prefetch=prefetch, retry_delay=RETRY_DELAY, tenant_concurrency=tenant_concurrency
            )
        else:
            made = AmqpTransport(
                url,
                exchange=EXCHANGE,
                prefetch=prefetch,
                connect_timeout=2.0,
                publish_timeout=3.0,
                retry_delay=RETRY_DELAY,
                queue_type="quorum" if self.kind == "amqp-quorum" else "classic",
                tenant_concurrency=tenant_concurrency,
            )
        self._transports.append(made)
        return made

    def queue(self) -> str:
        """A queue name no other test uses, deleted at the end of this one."""
        name = _unique("test.bus.")
        self._queues.append(name)
        return name

    async def cleanup(self) -> None:
        """Closes every transport, then deletes the queues left on the broker."""
        if self.kind == "inprocess":
            for made in self._transports:
                for name in self._queues:
                    await made.delete_queue(name)
                await made.close()
            return
        for made in self._transports:
            await made.close()
        cleaner = AmqpTransport(AMQP_URL, exchange=EXCHANGE, connect_timeout=2.0)
        try:
            for name in self._queues:
                await cleaner.delete_queue(name)
        finally:
            await cleaner.close()


@pytest.fixture(params=["inprocess", "amqp", "amqp-quorum"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    """The transport kind under test; AMQP needs the broker (and fails without it in CI)."""
    if request.param != "inprocess":
        require_server("RabbitMQ", BROKER_HOST, BROKER_PORT)
    made = Bus(request.param)
    try:
        yield made
    finally:
        await asyncio.wait_for(made.cleanup(), TIMEOUT * 2)


@pytest.fixture
async def amqp_bus() -> AsyncIterator[Bus]:
    """For the behaviour only a real broker has (durability across processes)."""
    require_server("RabbitMQ", BROKER_HOST, BROKER_PORT)
    made = Bus("amqp")
    try:
        yield made
    finally:
        await asyncio.wait_for(made.cleanup(), TIMEOUT * 2)


def message(routing_key: str, body: bytes = b"{}", **headers: str) -> OutgoingMessage:
    """An outgoing message with a fresh id."""
    return OutgoingMessage(
        routing_key=routing_key,
        body=body,
        message_id=str(uuid.uuid4()),
        headers=headers,
    )


def collector() -> tuple[asyncio.Queue[Delivery], Callable[[Delivery], Awaitable[None]]]:
    """A handler that hands every delivery, unsettled, to the test."""
    received: asyncio.Queue[Delivery] = asyncio.Queue()

    async def handler(delivery: Delivery) -> None:
        received.put_nowait(delivery)

    return received, handler


def acking_collector() -> tuple[asyncio.Queue[Delivery], Callable[[Delivery], Awaitable[None]]]:
    """A handler that acks every delivery and hands it to the test."""
    received: asyncio.Queue[Delivery] = asyncio.Queue()

    async def handler(delivery: Delivery) -> None:
        await delivery.ack()
        received.put_nowait(delivery)

    return received, handler


async def next_delivery(received: asyncio.Queue[Delivery]) -> Delivery:
    """The next delivery, or a test failure after TIMEOUT instead of a hang."""
    return await asyncio.wait_for(received.get(), TIMEOUT)


async def assert_quiet(received: asyncio.Queue[Delivery]) -> None:
    """Nothing more arrives for QUIET seconds."""
    with contextlib.suppress(TimeoutError):
        extra = await asyncio.wait_for(received.get(), QUIET)
        pytest.fail(f"unexpected delivery {extra.routing_key!r} ({extra.message_id})")


async def test_delivers_body_headers_and_message_id_intact(bus: Bus) -> None:
    """What the publisher sent is what the handler gets."""
    transport = bus.transport()
    await transport.start()
    queue = bus.queue()
    key = f"03014.{_unique('w')}.asiento.registrado.v1"
    received, handler = collector()
    await transport.subscribe(queue, [key], handler)

    sent = OutgoingMessage(
        routing_key=key,
        body=b'{"numero": "2024/000001", "asunto": "Solicitud de licencia"}',
        message_id=str(uuid.uuid4()),
        headers={"ce-tenant": "03014", "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
    )
    await transport.publish(sent)

    delivery = await next_delivery(received)
    assert delivery.body == sent.body
    assert delivery.message_id == sent.message_id
    assert delivery.routing_key == key
    assert delivery.content_type == "application/cloudevents+json"
    assert delivery.headers == sent.headers
    assert delivery.redelivered is False
    assert delivery.queue == queue
    await delivery.ack()
    await assert_quiet(received)


async def test_topic_patterns_route_like_rabbitmq(bus: Bus) -> None:
    """``*`` takes one word, ``#`` any number; a key matching no binding reaches no queue."""
    transport = bus.transport()
    await transport.start()
    word, other = _unique("w"), _unique("w")
    star_queue, hash_queue = bus.queue(), bus.queue()
    star_received, star_handler = acking_collector()
    hash_received, hash_handler = acking_collector()
    await transport.subscribe(star_queue, [f"03014.{word}.*"], star_handler)
    await transport.subscribe(hash_queue, [f"*.{word}.#"], hash_handler)

    one_word = f"03014.{word}.asiento"
    two_words = f"03014.{word}.asiento.registrado"
    other_tenant = f"03015.{word}.asiento"
    no_words = f"03014.{word}"
    unrelated = f"03014.{other}.asiento"
    for key in (one_word, two_words, other_tenant, no_words, unrelated):
        await transport.publish(message(key))
    # Both patterns match the marker; per-queue order is kept, so it arrives last.
    marker = f"03014.{word}.fin"
    await transport.publish(message(marker))

    async def keys_until_marker(received: asyncio.Queue[Delivery]) -> set[str]:
        keys: set[str] = set()
        while marker not in keys:
            keys.add((await next_delivery(received)).routing_key)
        return keys

    assert await keys_until_marker(star_received) == {one_word, marker}
    assert await keys_until_marker(hash_received) == {
        one_word,
        two_words,
        other_tenant,
        no_words,
        marker,
    }
    await assert_quiet(star_received)
    await assert_quiet(hash_received)


async def test_each_bound_queue_gets_its_own_copy(bus: Bus) -> None:
    """Fan-out: two queues bound to the same pattern both receive every message."""
    transport = bus.transport()
    await transport.start()
    key = f"03014.{_unique('w')}.expediente.abierto.v1"
    first, second = bus.queue(), bus.queue()
    first_received, first_handler = acking_collector()
    second_received, second_handler = acking_collector()
    await transport.subscribe(first, [key], first_handler)
    await transport.subscribe(second, [key], second_handler)

    sent = [message(key, body=f"{i}".encode()) for i in range(3)]
    for outgoing in sent:
        await transport.publish(outgoing)

    expected = {outgoing.message_id for outgoing in sent}
    for received, queue in ((first_received, first), (second_received, second)):
        deliveries = [await next_delivery(received) for _ in sent]
        assert {d.message_id for d in deliveries} == expected
        assert {d.queue for d in deliveries} == {queue}
        await assert_quiet(received)


async def test_competing_consumers_share_a_queue(bus: Bus) -> None:
    """A queue subscribed twice hands each message to exactly one of its consumers."""
    transport = bus.transport()
    await transport.start()
    key = f"03014.{_unique('w')}.asiento.registrado.v1"
    queue = bus.queue()
    received: asyncio.Queue[tuple[str, Delivery]] = asyncio.Queue()

    def consumer(name: str) -> Callable[[Delivery], Awaitable[None]]:
        async def handler(delivery: Delivery) -> None:
            await delivery.ack()
            received.put_nowait((name, delivery))

        return handler

    await transport.subscribe(queue, [key], consumer("a"))
    await transport.subscribe(queue, [key], consumer("b"))

    sent = [message(key) for _ in range(20)]
    for outgoing in sent:
        await transport.publish(outgoing)

    got = [await asyncio.wait_for(received.get(), TIMEOUT) for _ in sent]
    assert Counter(d.message_id for _, d in got) == Counter(m.message_id for m in sent)
    assert {name for name, _ in got} == {"a", "b"}
    with contextlib.suppress(TimeoutError):
        name, extra = await asyncio.wait_for(received.get(), QUIET)
        pytest.fail(f"{extra.message_id} delivered again, to consumer {name}")


async def test_reject_with_requeue_redelivers(bus: Bus) -> None:
    """reject(requeue=True) brings the same message back, marked redelivered."""
    transport = bus.transport()
    await transport.start()
    key = f"03014.{_unique('w')}.asiento.registrado.v1"
    queue = bus.queue()
    received, handler = collector()
    await transport.subscribe(queue, [key], handler)
    sent = message(key, body=b'{"intento": 1}')
    await transport.publish(sent)

    first = await next_delivery(received)
    assert first.redelivered is False
    await first.reject(requeue=True)

    again = await next_delivery(received)
    assert again.message_id == sent.message_id
    assert again.body == sent.body
    assert again.redelivered is True
    await again.ack()
    await assert_quiet(received)


async def test_reject_without_requeue_drops(bus: Bus) -> None:
    """reject(requeue=False) removes the message for good."""
    transport = bus.transport()
    await transport.start()
    key = f"03014.{_unique('w')}.asiento.registrado.v1"
    received, handler = collector()
    await transport.subscribe(bus.queue(), [key], handler)
    sent = message(key)
    await transport.publish(sent)

    delivery = await next_delivery(received)
    assert delivery.message_id == sent.message_id
    await delivery.reject(requeue=False)
    await assert_quiet(received)


async def test_handler_that_raises_gets_the_message_again(bus: Bus) -> None:
    """A handler failing without settling does not lose the message nor stop the consumer."""
    transport = bus.transport()
    await transport.start()
    key = f"03014.{_unique('w')}.asiento.registrado.v1"
    received: asyncio.Queue[Delivery] = asyncio.Queue()
    attempts = 0

    async def flaky(delivery: Delivery) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("database is restarting")
        await delivery.ack()
        received.put_nowait(delivery)

    await transport.subscribe(bus.queue(), [key], flaky)
    sent = message(key)
    await transport.publish(sent)

    again = await next_delivery(received)
    assert again.message_id == sent.message_id
    assert again.redelivered is True
    assert attempts == 2

    # The consumer is still alive after the failure.
    later = message(key)
    await transport.publish(later)
    assert (await next_delivery(received)).message_id == later.message_id


async def test_prefetch_bounds_unsettled_deliveries(bus: Bus) -> None:
    """Several deliveries run at once, but no more than ``prefetch`` stay unsettled."""
    transport = bus.transport(prefetch=2)
    await transport.start()
    key = f"03014.{_unique('w')}.asiento.registrado.v1"
    received, handler = collector()
    await transport.subscribe(bus.queue(), [key], handler)
    sent = [message(key) for _ in range(3)]
    for outgoing in sent:
        await transport.publish(outgoing)

    held = [await next_delivery(received), await next_delivery(received)]
    await assert_quiet(received)
    await held[0].ack()
    third = await next_delivery(received)
    got = {d.message_id for d in [*held, third]}
    assert got == {outgoing.message_id for outgoing in sent}
    for delivery in (held[1], third):
        await delivery.ack()


async def test_a_consumer_s_own_prefetch_bounds_it_alone(bus: Bus) -> None:
    """A document consumer takes one delivery at a time; another queue keeps the default."""
    transport = bus.transport(prefetch=20)
    await transport.start()
    key = f"03014.{_unique('w')}.asiento.registrado.v1"
    slow, slow_handler = collector()
    cheap, cheap_handler = collector()
    await transport.subscribe(bus.queue(), [key], slow_handler, prefetch=1)
    await transport.subscribe(bus.queue(), [key], cheap_handler)
    sent = [message(key) for _ in range(3)]
    for outgoing in sent:
        await transport.publish(outgoing)

    # The cheap queue gets all three at once while the document one holds its first.
    cheap_held = [await next_delivery(cheap) for _ in sent]
    first = await next_delivery(slow)
    await assert_quiet(slow)
    await first.ack()
    second = await next_delivery(slow)
    await assert_quiet(slow)
    await second.ack()
    third = await next_delivery(slow)
    await third.ack()
    assert {d.message_id for d in (first, second, third)} == {o.message_id for o in sent}
    for delivery in cheap_held:
        await delivery.ack()


async def test_one_tenant_at_its_bound_does_not_hold_back_another(bus: Bus) -> None:
    """A consumer handles at most N messages of one tenant at once; others go past them."""
    transport = bus.transport(prefetch=10, tenant_concurrency=2)
    await transport.start()
    word = _unique("w")
    busy, other = f"03014.{word}.asiento.registrado.v1", f"46250.{word}.asiento.registrado.v1"
    started: asyncio.Queue[Delivery] = asyncio.Queue()
    release = asyncio.Event()
    running: Counter[str] = Counter()
    most: Counter[str] = Counter()

    async def handler(delivery: Delivery) -> None:
        tenant = delivery.routing_key.split(".")[0]
        running[tenant] += 1
        most[tenant] = max(most[tenant], running[tenant])
        started.put_nowait(delivery)
        try:
            if tenant == "03014":
                await release.wait()
            await delivery.ack()
        finally:
            running[tenant] -= 1

    await transport.subscribe(bus.queue(), [f"*.{word}.#"], handler)
    burst = [message(busy) for _ in range(6)]
    for outgoing in burst:
        await transport.publish(outgoing)
    first = [await next_delivery(started), await next_delivery(started)]
    assert {d.routing_key for d in first} == {busy}
    await assert_quiet(started)  # the third of the busy tenant waits for a slot
    for _ in range(2):
        await transport.publish(message(other))
    passed = [await next_delivery(started), await next_delivery(started)]
    assert {d.routing_key for d in passed} == {other}

    release.set()
    rest = [await next_delivery(started) for _ in range(4)]
    got = {d.message_id for d in [*first, *rest]}
    assert got == {outgoing.message_id for outgoing in burst}
    assert most["03014"] == 2


async def test_settling_twice_is_refused(bus: Bus) -> None:
    """A delivery is acked or rejected exactly once."""
    transport = bus.transport()
    await transport.start()
    key = f"03014.{_unique('w')}.asiento.registrado.v1"
    received, handler = collector()
    await transport.subscribe(bus.queue(), [key], handler)
    await transport.publish(message(key))

    delivery = await next_delivery(received)
    await delivery.ack()
    with pytest.raises(RuntimeError, match="already"):
        await delivery.ack()
    with pytest.raises(RuntimeError, match="already"):
        await delivery.reject(requeue=True)
    await assert_quiet(received)


async def test_deleted_queue_loses_its_messages(bus: Bus) -> None:
    """delete_queue removes the queue with what it held; subscribing again starts empty."""
    transport = bus.transport()
    await transport.start()
    key = f"03014.{_unique('w')}.asiento.registrado.v1"
    queue = bus.queue()
    old_received, old_handler = collector()
    await transport.subscribe(queue, [key], old_handler)
    await transport.publish(message(key))
    assert (await next_delivery(old_received)).routing_key == key

    await transport.delete_queue(queue)
    new_received, new_handler = acking_collector()
    await transport.subscribe(queue, [key], new_handler)
    fresh = message(key)
    await transport.publish(fresh)

    delivery = await next_delivery(new_received)
    assert delivery.message_id == fresh.message_id
    assert delivery.redelivered is False
    await assert_quiet(new_received)
    await assert_quiet(old_received)


async def test_ping_and_closed_transport(bus: Bus) -> None:
    """A started transport is ready; a closed one refuses to publish."""
    transport = bus.transport()
    await transport.start()
    assert await transport.ping() is True
    await transport.close()
    assert await transport.ping() is False
    with pytest.raises(TransportUnavailable):
        await transport.publish(message(f"03014.{_unique('w')}.x"))


async def test_unacked_delivery_survives_its_consumer(amqp_bus: Bus) -> None:
    """A consumer closed before acking leaves the message in the durable queue for the next."""
    key = f"03014.{_unique('w')}.asiento.registrado.v1"
    queue = amqp_bus.queue()
    first = amqp_bus.transport()
    first_received, first_handler = collector()
    await first.subscribe(queue, [key], first_handler)
    sent = message(key, body=b'{"pendiente": true}')
    await first.publish(sent)
    unacked = await next_delivery(first_received)
    assert unacked.message_id == sent.message_id
    await asyncio.wait_for(first.close(), TIMEOUT)

    second = amqp_bus.transport()
    second_received, second_handler = acking_collector()
    await second.subscribe(queue, [key], second_handler)
    again = await next_delivery(second_received)
    assert again.message_id == sent.message_id
    assert again.body == sent.body
    assert again.redelivered is True


async def test_messages_go_out_persistent_with_their_properties(amqp_bus: Bus) -> None:
    """What a broker stores is persistent, with the properties consumers read."""
    key = f"03014.{_unique('w')}.asiento.registrado.v1"
    queue = amqp_bus.queue()
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        declared = await channel.declare_queue(queue, durable=True)
        await declared.bind(exchange, routing_key=key)
        transport = amqp_bus.transport()
        sent = message(key, body=b'{"a": "\xc3\xb1"}', tenantid="03014", traceparent="00-x")
        await transport.publish(sent)

        got = await declared.get(timeout=TIMEOUT)
        assert got is not None
        assert got.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert got.body == sent.body
        assert got.message_id == sent.message_id
        assert got.content_type == "application/cloudevents+json"
        assert got.headers == {"tenantid": "03014", "traceparent": "00-x"}
        await got.ack()
    finally:
        await connection.close()


async def test_unreachable_broker_raises_transport_unavailable(amqp_bus: Bus) -> None:
    """Nothing listening: start, publish and ping answer promptly instead of hanging."""
    transport = amqp_bus.transport(url="amqp://guest:guest@127.0.0.1:1/")
    with pytest.raises(TransportUnavailable):
        await asyncio.wait_for(transport.start(), TIMEOUT)
    with pytest.raises(TransportUnavailable):
        await asyncio.wait_for(transport.publish(message("03014.x.y")), TIMEOUT)
    assert await asyncio.wait_for(transport.ping(), TIMEOUT) is False


async def test_publish_reconnects_once_the_broker_is_back(amqp_bus: Bus) -> None:
    """After a failure the next publish connects again: no restart, no waiting on a timer."""
    proxy = TcpProxy(BROKER_HOST, BROKER_PORT)
    key = f"03014.{_unique('w')}.asiento.registrado.v1"
    received, handler = acking_collector()
    direct = amqp_bus.transport()
    await direct.subscribe(amqp_bus.queue(), [key], handler)
    via_proxy = amqp_bus.transport(url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/")
    try:
        # Down from the start: start() and publish() fail fast.
        with pytest.raises(TransportUnavailable):
            await asyncio.wait_for(via_proxy.start(), TIMEOUT)
        with pytest.raises(TransportUnavailable):
            await asyncio.wait_for(via_proxy.publish(message(key)), TIMEOUT)

        await proxy.up()
        first = message(key)
        await asyncio.wait_for(via_proxy.publish(first), TIMEOUT)
        assert (await next_delivery(received)).message_id == first.message_id

        # Lost while connected: the publish in flight fails, the next one reconnects.
        await proxy.down()
        with pytest.raises(TransportUnavailable):
            await asyncio.wait_for(via_proxy.publish(message(key)), TIMEOUT)
        assert await via_proxy.ping() is False

        await proxy.up()
        second = message(key)
        await asyncio.wait_for(via_proxy.publish(second), TIMEOUT)
        assert (await next_delivery(received)).message_id == second.message_id
        assert await via_proxy.ping() is True
        await assert_quiet(received)
    finally:
        await via_proxy.close()
        await proxy.down()

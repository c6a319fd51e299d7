"""The committed RabbitMQ definitions match the code, and load into a real broker.

The broker tests import the definitions into a vhost of their own. One logs in as a
service user and as a council backoffice user, and shows what each may do: the
backoffice reads its council's events and is refused another council's keys. Another
runs a service on the definitions' quorum queues (``BUS_QUEUE_TYPE=quorum``) and
shows an event delivered, and a process configured for classic queues refused.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import httpx
import pytest
from aiormq.exceptions import ChannelAccessRefused
from typer.testing import CliRunner

from services.bootstrap import build_platform
from services.broker import (
    DEAD_LETTER_QUEUE,
    backoffice_user,
    consumer_queues,
    definitions,
    load_consumer_queues,
    password_hash,
    password_variable,
    with_password_hashes,
)
from services.cli import app as cli
from services.common.bus.amqp import AmqpTransport, QueueMismatch
from services.common.bus.transport import Delivery
from services.common.settings import Settings
from services.tramitador import handlers
from tests.integration.test_bus_reliability import asiento_event, count_expedientes, publish
from tests.support.servers import require_server
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "deploy" / "rabbitmq" / "definitions.json"
MANAGEMENT = "http://127.0.0.1:15672"
ADMIN = ("guest", "guest")


def test_committed_definitions_match_the_consumers_in_the_code() -> None:
    generated = definitions(consumer_queues())
    committed = json.loads(COMMITTED.read_text())
    assert committed == generated, "regenerate with `make rabbitmq-definitions`"


def test_every_consumer_queue_is_bound_and_dead_lettered() -> None:
    defs = json.loads(COMMITTED.read_text())
    queues = {q["name"] for q in defs["queues"]}
    bound = {b["destination"] for b in defs["bindings"]}
    assert "registro.justificantes" in queues and "tramitador.asientos" in queues
    assert queues == bound
    assert all(q["arguments"]["x-queue-type"] == "quorum" for q in defs["queues"])
    policy = next(p for p in defs["policies"] if p["name"] == "consistorio-consumers")
    consumers = queues - {DEAD_LETTER_QUEUE}
    assert all(re.match(policy["pattern"], q) for q in consumers)
    assert not re.match(policy["pattern"], DEAD_LETTER_QUEUE)
    assert all(u["password_hash"] == "" for u in defs["users"]), "no password in the repo"


def test_password_hashes_come_from_the_secrets_and_a_missing_one_is_refused() -> None:
    defs = definitions(consumer_queues())
    names = [u["name"] for u in defs["users"]]
    filled = with_password_hashes(defs, {n: f"pw-{n}" for n in names})
    assert all(u["password_hash"] for u in filled["users"])
    with pytest.raises(KeyError, match="consistorio-gateway"):
        with_password_hashes(defs, {n: "x" for n in names if n != "consistorio-gateway"})
    salt = b"\x01\x02\x03\x04"
    assert password_hash("a", salt=salt) != password_hash("b", salt=salt)


def test_backoffice_user_rejects_a_bad_ine_code() -> None:
    with pytest.raises(ValueError, match="INE"):
        backoffice_user("3014", "tributos")
    result = CliRunner().invoke(cli, ["tenants", "backoffice-user", "ABCDE", "--name", "x1"])
    assert result.exit_code != 0


@pytest.fixture
def broker_vhost() -> Iterator[tuple[str, str]]:
    """A vhost and user prefix of this test alone, deleted afterwards with their users."""
    require_server("RabbitMQ management API", "127.0.0.1", 15672)
    run = uuid.uuid4().hex[:8]
    vhost, prefix = f"consistorio-test-{run}", f"test-{run}-"
    created_users: list[str] = []
    yield vhost, prefix
    with httpx.Client(base_url=MANAGEMENT, auth=ADMIN, timeout=10) as client:
        client.delete(f"/api/vhosts/{vhost}")
        users = client.get("/api/users").json()
        for user in users:
            if user["name"].startswith(prefix) or user["name"].startswith(f"backoffice-{run}"):
                created_users.append(user["name"])
        for name in created_users:
            client.delete(f"/api/users/{name}")


@pytest.fixture
def tributos_user() -> Iterator[str]:
    """The council's backoffice user a test creates, deleted afterwards by that test only:
    its name (one per council and name) is not the run's, and a test beside it on another
    xdist worker must not delete it while it is logged in."""
    name = "backoffice-03014-tributos"
    yield name
    with httpx.Client(base_url=MANAGEMENT, auth=ADMIN, timeout=10) as client:
        client.delete(f"/api/users/{name}")


def _amqp(user: str, password: str, vhost: str) -> str:
    return f"amqp://{user}:{password}@127.0.0.1:5672/{vhost}"


async def test_definitions_load_and_backoffice_sees_only_its_council(
    broker_vhost: tuple[str, str], tributos_user: str, tmp_path: Path
) -> None:
    vhost, prefix = broker_vhost
    defs = definitions(await load_consumer_queues(), vhost=vhost, user_prefix=prefix)
    passwords = {u["name"]: uuid.uuid4().hex for u in defs["users"]}
    with httpx.Client(base_url=MANAGEMENT, auth=ADMIN, timeout=30) as client:
        client.post(
            "/api/definitions", json=with_password_hashes(defs, passwords)
        ).raise_for_status()
        listed = {q["name"]: q for q in client.get(f"/api/queues/{vhost}").json()}
    assert set(listed) == {q["name"] for q in defs["queues"]}
    assert listed["registro.justificantes"]["type"] == "quorum"

    # A service user may use its own queues and not another service's.
    registro = await aio_pika.connect(
        _amqp(f"{prefix}registro", passwords[f"{prefix}registro"], vhost)
    )
    async with registro:
        channel = await registro.channel()
        await channel.declare_queue(
            "registro.justificantes", durable=True, arguments={"x-queue-type": "quorum"}
        )
        with pytest.raises(ChannelAccessRefused):
            other = await registro.channel()
            await other.declare_queue(
                "tramitador.asientos", durable=True, arguments={"x-queue-type": "quorum"}
            )

    password_file = tmp_path / "pw"
    password_file.write_text("backoffice-secret-1")
    result = CliRunner().invoke(
        cli,
        [
            "tenants",
            "backoffice-user",
            "03014",
            "--name",
            "tributos",
            "--vhost",
            vhost,
            "--management-url",
            MANAGEMENT,
            "--password-file",
            str(password_file),
        ],
        env={"RABBITMQ_MANAGEMENT_USER": ADMIN[0], "RABBITMQ_MANAGEMENT_PASSWORD": ADMIN[1]},
    )
    assert result.exit_code == 0, result.output
    assert tributos_user in result.output

    backoffice = await aio_pika.connect(_amqp(tributos_user, "backoffice-secret-1", vhost))
    admin = await aio_pika.connect(_amqp(*ADMIN, vhost))
    async with backoffice, admin:
        channel = await backoffice.channel()
        exchange = await channel.get_exchange("consistorio.events", ensure=False)
        queue = await channel.declare_queue(
            "backoffice.03014.tributos.eventos", durable=True, exclusive=False
        )
        await queue.bind(exchange, routing_key="03014.registro.#")

        publisher = await admin.channel()
        events = await publisher.get_exchange("consistorio.events")
        for tenant in ("03015", "03014"):
            await events.publish(
                aio_pika.Message(body=tenant.encode(), message_id=tenant),
                routing_key=f"{tenant}.registro.asiento.registrado.v1",
            )
        message = await queue.get(timeout=10, fail=True)
        assert message is not None and message.body == b"03014"
        await message.ack()
        assert await queue.get(fail=False) is None, "only its council's event arrives"

        with pytest.raises(ChannelAccessRefused, match="ACCESS_REFUSED"):
            await queue.bind(exchange, routing_key="03015.registro.#")

        confirming = await backoffice.channel(publisher_confirms=True)
        own_exchange = await confirming.get_exchange("consistorio.events", ensure=False)
        await own_exchange.publish(
            aio_pika.Message(body=b"ok"), routing_key="03014.tributos.pago.registrado.v1"
        )
        with pytest.raises(ChannelAccessRefused, match="ACCESS_REFUSED"):
            await own_exchange.publish(
                aio_pika.Message(body=b"no"), routing_key="03015.tributos.pago.registrado.v1"
            )


async def test_services_consume_the_quorum_queues_of_the_definitions(
    broker_vhost: tuple[str, str], settings: Settings, new_tenant
) -> None:
    vhost, prefix = broker_vhost
    defs = definitions(await load_consumer_queues(), vhost=vhost, user_prefix=prefix)
    passwords = {u["name"]: uuid.uuid4().hex for u in defs["users"]}
    with httpx.Client(base_url=MANAGEMENT, auth=ADMIN, timeout=30) as client:
        client.post(
            "/api/definitions", json=with_password_hashes(defs, passwords)
        ).raise_for_status()
    tramitador = _amqp(f"{prefix}tramitador", passwords[f"{prefix}tramitador"], vhost)
    registro = _amqp(f"{prefix}registro", passwords[f"{prefix}registro"], vhost)
    queue = f"tramitador.{handlers.CONSUMERS[0].name}"
    tenant = await new_tenant()

    # The tramitador, as its own broker user, consumes the quorum queue the definitions made.
    quorum = settings.model_copy(update={"amqp_url": tramitador, "bus_queue_type": "quorum"})
    platform = await build_platform(quorum, ["tramitador"])
    publisher = AmqpTransport(registro, queue_type="quorum")
    try:
        await platform.start()
        with httpx.Client(base_url=MANAGEMENT, auth=ADMIN, timeout=10) as client:
            listed = client.get(f"/api/queues/{vhost}/{queue}").json()
        assert listed["type"] == "quorum"
        await publish(publisher, asiento_event(tenant))
        await eventually(
            lambda: _equals(count_expedientes(platform.runtimes["tramitador"].db, tenant), 1)
        )
    finally:
        await publisher.close()
        await platform.close()

    # A process left on classic queues is refused, and says which setting to fix.
    classic = settings.model_copy(update={"amqp_url": tramitador, "bus_queue_type": "classic"})
    refused = await build_platform(classic, ["tramitador"])
    try:
        with pytest.raises(QueueMismatch, match=rf"{queue}.*BUS_QUEUE_TYPE.*PRECONDITION_FAILED"):
            await refused.start()
    finally:
        await refused.close()

    # The transport alone: declaring the quorum queue as classic is refused the same way.
    transport = AmqpTransport(tramitador, queue_type="classic")

    async def never(delivery: Delivery) -> None:
        raise AssertionError("no delivery expected")

    try:
        with pytest.raises(QueueMismatch, match="x-queue-type 'classic'"):
            await transport.subscribe(queue, ["*.registro.asiento.registrado.v1"], never)
    finally:
        await transport.close()


async def _equals(value, expected: int) -> bool:
    return (await value) == expected


def test_compose_reads_the_passwords_from_the_environment(tmp_path: Path) -> None:
    users = [u["name"] for u in json.loads(COMMITTED.read_text())["users"]]
    env = {password_variable(u): f"pw-{u}" for u in users}
    out = tmp_path / "definitions.json"
    args = ["broker", "definitions", "--passwords-env", "--output", str(out)]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert all(u["password_hash"] for u in json.loads(out.read_text())["users"])
    missing = {k: v for k, v in env.items() if "GATEWAY" not in k}
    result = CliRunner().invoke(cli, args, env=missing)
    assert result.exit_code != 0 and "consistorio-gateway" in result.output

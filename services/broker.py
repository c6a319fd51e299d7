"""RabbitMQ definitions of a deployment, derived from the services' own consumers.

Operators load ``deploy/rabbitmq/definitions.json`` into the broker before the
services start, so that queues, bindings, dead-letter routing, policies and the
users with their permissions exist as reviewed in the repository, not as whatever
the first process happened to declare. The file is generated here from each
service's consumer specs (a test fails when it drifts from the code), and holds no
password: ``consistorio broker definitions --passwords-dir`` fills in the hashes
from the deployment's secrets at deploy time.

A council's backoffice (a third-party integrator) gets its own user whose topic
permissions admit only its tenant's routing keys (``<ine>.<service>...``), so it can
read its council's events and nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from services.catalog import SERVICES
from services.common.bus.amqp import QueueType
from services.common.bus.envelope import EventName
from services.common.settings import Settings

__all__ = [
    "DEAD_LETTER_EXCHANGE",
    "DEAD_LETTER_QUEUE",
    "BackofficeUser",
    "ConsumerQueue",
    "apply_backoffice_user",
    "backoffice_definitions",
    "backoffice_user",
    "consumer_queues",
    "load_consumer_queues",
    "definitions",
    "password_hash",
    "password_variable",
    "with_password_hashes",
]

EXCHANGE = "consistorio.events"
DEAD_LETTER_EXCHANGE = "consistorio.dead-letters"
DEAD_LETTER_QUEUE = "consistorio.dead-letters"
VHOST = "consistorio"
USER_PREFIX = "consistorio-"
HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
# A message the broker redelivers this often is crashing its consumer (the service's
# own retries ack or dead-letter long before): the broker parks it for the operator.
DELIVERY_LIMIT = 20
_INE = re.compile(r"^[0-9]{5}$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}$")


@dataclass(frozen=True)
class ConsumerQueue:
    """One consumer's durable queue and the topic patterns bound to it."""

    service: str
    queue: str
    bindings: tuple[str, ...]


async def load_consumer_queues() -> list[ConsumerQueue]:
    """Every service's consumer queues, in catalog order (from a running event loop)."""
    # Some services build their consumers in create_app (they need process objects), so
    # the only faithful source is a wired platform: on the in-process bus, against a
    # database that is never contacted, with throw-away development keys.
    from services.bootstrap import build_platform
    from services.common.bus.inprocess import InProcessTransport

    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir), database_url="postgresql://unused@127.0.0.1:1/unused"
        )
        platform = await build_platform(settings, list(SERVICES), transport=InProcessTransport())
        try:
            return [
                ConsumerQueue(
                    service=name,
                    queue=f"{name}.{spec.name}",
                    bindings=tuple(
                        dict.fromkeys(EventName.parse(e).binding() for e in spec.events)
                    ),
                )
                for name, runtime in platform.runtimes.items()
                for spec in runtime.consumers
            ]
        finally:
            await platform.close()


def consumer_queues() -> list[ConsumerQueue]:
    """Every service's consumer queues, in catalog order."""
    return asyncio.run(load_consumer_queues())


def _anchored(*alternatives: str) -> str:
    return "^(" + "|".join(alternatives) + ")$"


def _service_permissions(service: str) -> dict[str, str]:
    # Declaring the exchange (every transport does) needs configure on it; binding needs
    # write on the queue and read on the exchange; publishing needs write on the exchange.
    own = rf"{re.escape(service)}\..+"
    exchange = re.escape(EXCHANGE)
    return {
        "configure": _anchored(exchange, own),
        "write": _anchored(exchange, own),
        "read": _anchored(exchange, own),
    }


def definitions(
    queues: Sequence[ConsumerQueue],
    *,
    vhost: str = VHOST,
    user_prefix: str = USER_PREFIX,
    queue_type: QueueType = "quorum",
) -> dict[str, Any]:
    """The broker definitions (RabbitMQ's import format) for ``queues``, without passwords.

    ``queue_type`` is the services' ``BUS_QUEUE_TYPE``: they declare their queues with
    it, and RabbitMQ refuses a declaration whose type differs from the queue it holds.

    Every user's ``password_hash`` is empty, which RabbitMQ reads as "cannot log in
    with a password" until :func:`with_password_hashes` fills it in.
    """
    services = [*dict.fromkeys(q.service for q in queues)]
    users = [*services, "gateway"]
    queue_pattern = "^(" + "|".join(re.escape(s) for s in services) + r")\."
    queue_arguments: dict[str, Any] = {"x-queue-type": queue_type}
    return {
        "vhosts": [
            {
                "name": vhost,
                "metadata": {
                    "description": "Consistorio: bus de eventos",
                    "tags": [],
                    "default_queue_type": queue_type,
                },
            }
        ],
        "users": [
            {
                "name": f"{user_prefix}{user}",
                "password_hash": "",
                "hashing_algorithm": HASHING_ALGORITHM,
                "tags": [],
                "limits": {},
            }
            for user in users
        ],
        "permissions": [
            {"user": f"{user_prefix}{service}", "vhost": vhost, **_service_permissions(service)}
            for service in services
        ]
        + [
            # The gateway only checks the broker for /readyz (it declares the exchange).
            {
                "user": f"{user_prefix}gateway",
                "vhost": vhost,
                "configure": _anchored(re.escape(EXCHANGE)),
                "write": "^$",
                "read": "^$",
            }
        ],
        "topic_permissions": [],
        "parameters": [],
        "global_parameters": [],
        "policies": [
            {
                "vhost": vhost,
                "name": "consistorio-consumers",
                "pattern": queue_pattern,
                "apply-to": "queues",
                "priority": 0,
                "definition": {
                    "dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                    "delivery-limit": DELIVERY_LIMIT,
                },
            },
            {
                "vhost": vhost,
                "name": "consistorio-dead-letters",
                "pattern": "^" + re.escape(DEAD_LETTER_QUEUE) + "$",
                "apply-to": "queues",
                "priority": 1,
                "definition": {"max-length": 1_000_000, "overflow": "reject-publish"},
            },
        ],
        "queues": [
            {
                "name": q.queue,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": queue_arguments,
            }
            for q in queues
        ]
        + [
            {
                "name": DEAD_LETTER_QUEUE,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": queue_arguments,
            }
        ],
        "exchanges": [
            {
                "name": name,
                "vhost": vhost,
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name in (EXCHANGE, DEAD_LETTER_EXCHANGE)
        ],
        "bindings": [
            {
                "source": EXCHANGE,
                "vhost": vhost,
                "destination": q.queue,
                "destination_type": "queue",
                "routing_key": pattern,
                "arguments": {},
            }
            for q in queues
            for pattern in q.bindings
        ]
        + [
            {
                "source": DEAD_LETTER_EXCHANGE,
                "vhost": vhost,
                "destination": DEAD_LETTER_QUEUE,
                "destination_type": "queue",
                "routing_key": "#",
                "arguments": {},
            }
        ],
    }


def password_hash(password: str, *, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256`` of ``password`` (base64 of salt+digest)."""
    salt = salt if salt is not None else secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def password_variable(user: str) -> str:
    """The environment variable holding ``user``'s password (``RABBITMQ_PASSWORD_<USER>``)."""
    return "RABBITMQ_PASSWORD_" + re.sub(r"[^A-Za-z0-9]", "_", user).upper()


def with_password_hashes(defs: Mapping[str, Any], passwords: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``defs`` whose users get the hash of their password from ``passwords``.

    Raises ``KeyError`` naming the first user without one: a deployment must not
    start with a user that nobody can log in as.
    """
    out = dict(defs)
    users = []
    for user in defs["users"]:
        if user["name"] not in passwords:
            raise KeyError(f"no password for broker user {user['name']}")
        users.append({**user, "password_hash": password_hash(passwords[user["name"]])})
    out["users"] = users
    return out


@dataclass(frozen=True)
class BackofficeUser:
    """A council backoffice's broker user: its name, queue prefix and permissions."""

    tenant: str
    name: str
    vhost: str

    @property
    def username(self) -> str:
        return f"backoffice-{self.tenant}-{self.name}"

    @property
    def queue_prefix(self) -> str:
        """Its queues must be named ``backoffice.<ine>.<name>.<anything>``."""
        return f"backoffice.{self.tenant}.{self.name}."

    def permissions(self) -> dict[str, str]:
        own = re.escape(self.queue_prefix) + ".+"
        return {
            "configure": _anchored(own),
            "write": _anchored(re.escape(EXCHANGE), own),
            "read": _anchored(re.escape(EXCHANGE), own),
        }

    def topic_permissions(self) -> dict[str, str]:
        # Routing keys start with the tenant (<ine>.<service>.<aggregate>.<event>.v<n>):
        # binding (read) and publishing (write) are confined to this council's keys.
        own = "^" + re.escape(self.tenant) + r"\."
        return {"exchange": EXCHANGE, "write": own, "read": own}


def backoffice_user(tenant: str, name: str, *, vhost: str = VHOST) -> BackofficeUser:
    """Validates the INE code and the backoffice's short name."""
    if not _INE.match(tenant):
        raise ValueError(f"código INE no válido: {tenant!r} (5 dígitos)")
    if not _NAME.match(name):
        raise ValueError(f"nombre no válido: {name!r} (minúsculas, dígitos y guiones)")
    return BackofficeUser(tenant=tenant, name=name, vhost=vhost)


def backoffice_definitions(user: BackofficeUser, password: str) -> dict[str, Any]:
    """The definitions fragment creating ``user`` (to import when no API is at hand)."""
    return {
        "users": [
            {
                "name": user.username,
                "password_hash": password_hash(password),
                "hashing_algorithm": HASHING_ALGORITHM,
                "tags": [],
                "limits": {},
            }
        ],
        "permissions": [{"user": user.username, "vhost": user.vhost, **user.permissions()}],
        "topic_permissions": [
            {"user": user.username, "vhost": user.vhost, **user.topic_permissions()}
        ],
    }


def apply_backoffice_user(
    user: BackofficeUser, password: str, *, management_url: str, auth: tuple[str, str]
) -> None:
    """Creates or updates ``user`` through the RabbitMQ management HTTP API."""
    quoted_vhost = quote(user.vhost, safe="")
    with httpx.Client(base_url=management_url.rstrip("/"), auth=auth, timeout=10) as client:
        requests = [
            (
                f"/api/users/{user.username}",
                {
                    "password_hash": password_hash(password),
                    "hashing_algorithm": HASHING_ALGORITHM,
                    "tags": "",
                },
            ),
            (f"/api/permissions/{quoted_vhost}/{user.username}", user.permissions()),
            (f"/api/topic-permissions/{quoted_vhost}/{user.username}", user.topic_permissions()),
        ]
        for path, body in requests:
            client.put(path, json=body).raise_for_status()

"""Tables every service keeps in its own schema: outbox, inbox, audit, idempotency,
counters and dead letters.

Each service calls :func:`kernel_tables` on its own ``MetaData(schema=...)`` so the
kernel code (unit of work, relay, consumer) works on whichever schema it is given.
Which of them are protected by row-level security, and why, is decided in
:data:`TENANT_RLS_TABLES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["KernelTables", "TENANT_RLS_TABLES", "kernel_tables"]

# Tables below RLS; the outbox and dead letters are read across tenants by the
# relay and by operators, so they carry tenant_id but are not policy-protected.
TENANT_RLS_TABLES = ("audit_log", "idempotency_keys", "counters", "inbox")


@dataclass(frozen=True)
class KernelTables:
    """The kernel's tables inside one service schema."""

    schema: str
    outbox: Table
    inbox: Table
    audit_log: Table
    idempotency_keys: Table
    counters: Table
    dead_letters: Table


def kernel_tables(metadata: MetaData) -> KernelTables:
    """Declares the kernel tables on ``metadata`` (whose schema is the service's)."""
    schema = metadata.schema
    assert schema, "a service metadata must name its schema"
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", String(255), nullable=False, unique=True),
        Column("tenant_id", String(5), nullable=False),
        Column("routing_key", String(255), nullable=False),
        Column("envelope", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
        # The relay's scan: only what is still to send.
        Index("ix_outbox_pending", "id", postgresql_where=text("sent_at IS NULL")),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(100), nullable=False),
        Column("event_id", String(255), nullable=False),
        Column("tenant_id", String(5), nullable=False),
        Column("event_type", String(255), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
    )
    audit_log = Table(
        "audit_log",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("tenant_id", String(5), nullable=False),
        Column("actor", String(255), nullable=False),
        Column("action", String(100), nullable=False),
        Column("entity", String(100), nullable=False),
        Column("entity_id", String(100), nullable=False),
        Column("old_values", JSONB),
        Column("new_values", JSONB),
        Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("client_ip", String(64)),
        Column("request_id", String(128)),
        Index("ix_audit_entity", "tenant_id", "entity", "entity_id"),
    )
    idempotency_keys = Table(
        "idempotency_keys",
        metadata,
        Column("tenant_id", String(5), nullable=False),
        Column("key", String(255), nullable=False),
        Column("operation", String(100), nullable=False),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", Integer),
        Column("response_body", JSONB),
        Column("response_headers", JSONB),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("tenant_id", "key"),
    )
    counters = Table(
        "counters",
        metadata,
        Column("tenant_id", String(5), nullable=False),
        Column("serie", String(50), nullable=False),
        Column("anio", Integer, nullable=False),
        Column("ultimo", BigInteger, nullable=False),
        PrimaryKeyConstraint("tenant_id", "serie", "anio"),
    )
    dead_letters = Table(
        "dead_letters",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("consumer", String(100), nullable=False),
        Column("queue", String(255), nullable=False),
        Column("routing_key", String(255), nullable=False),
        Column("message_id", String(255)),
        Column("tenant_id", String(5)),
        Column("event_type", String(255)),
        Column("body", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False, server_default="{}"),
        Column("reason", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("replayed_at", DateTime(timezone=True)),
    )
    return KernelTables(schema, outbox, inbox, audit_log, idempotency_keys, counters, dead_letters)

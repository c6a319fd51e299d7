"""Running each service's Alembic history, and the operations migrations share.

Each service owns one PostgreSQL schema and one Alembic history whose version
table lives in that schema. Migrations run as the owner (DATABASE_URL); they
create the app role services connect as, and grant it only what it needs.
The ``*_v1`` operations are frozen: a later change to the kernel tables is a new
operation used by a new revision, never an edit of these.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.db import TENANT_SETTING, asyncpg_url

__all__ = [
    "MigrationSet",
    "create_kernel_tables_v1",
    "enable_tenant_rls",
    "grant_app_role",
    "protect_audit_log_v1",
    "run_env",
    "upgrade_all",
]

_LOCK_ID = 0x436F6E73  # one advisory lock for every migration run: replicas take turns


@dataclass(frozen=True)
class MigrationSet:
    """One component's schema and the folder of its Alembic history."""

    name: str
    schema: str
    location: Path


def _config(migration: MigrationSet, url: str, app_role: str, app_password: str | None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migration.location))
    # Passed as an attribute, not an ini option: URLs may hold '%' (socket paths, passwords).
    cfg.attributes["url"] = asyncpg_url(url)
    cfg.attributes["schema"] = migration.schema
    cfg.attributes["app_role"] = app_role
    cfg.attributes["app_password"] = app_password
    return cfg


def upgrade_all(
    migrations: Sequence[MigrationSet],
    *,
    owner_url: str,
    app_role: str,
    app_password: str | None = None,
) -> None:
    """Applies every history up to head, in order (blocking; run it in a thread)."""
    for migration in migrations:
        command.upgrade(_config(migration, owner_url, app_role, app_password), "head")


def run_env() -> None:
    """The body of every service's ``env.py``: online migrations on asyncpg."""
    config = context.config
    schema = config.attributes["schema"]
    url = config.attributes["url"]

    def _run(connection: sa.Connection) -> None:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            version_table_schema=schema,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def _main() -> None:
        engine = create_async_engine(url, poolclass=sa.pool.NullPool)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_run)
        finally:
            await engine.dispose()

    asyncio.run(_main())


def migration_attr(name: str) -> str | None:
    """A value the runner passed to the migrations (schema, app role)."""
    value = context.config.attributes.get(name)
    return None if value is None else str(value)


def ensure_app_role_v1(role: str, password: str | None) -> None:
    """Creates the login role services use: neither superuser nor owner of any table."""
    bind = op.get_bind()
    exists = bind.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    quoted = bind.dialect.identifier_preparer.quote(role)
    if exists is None:
        op.execute(f"CREATE ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")
    if password:
        op.execute(
            sa.text(f"ALTER ROLE {quoted} PASSWORD :p")
            .bindparams(p=password)
            .compile(dialect=bind.dialect, compile_kwargs={"literal_binds": True})
            .string
        )


def grant_app_role(schema: str, role: str) -> None:
    """Grants the app role use of a schema's tables and sequences (not ownership)."""
    op.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
    op.execute(
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'
    )
    op.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"')


def enable_tenant_rls(schema: str, table: str) -> None:
    """Row-level security: rows are visible and writable only for the transaction's tenant."""
    setting = f"current_setting('{TENANT_SETTING}', true)"
    op.execute(f'ALTER TABLE "{schema}"."{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(
        f'CREATE POLICY tenant_isolation ON "{schema}"."{table}" '
        f"USING (tenant_id = {setting}) WITH CHECK (tenant_id = {setting})"
    )


def create_kernel_tables_v1(schema: str, role: str) -> None:
    """Outbox, inbox, audit log, idempotency keys, counters and dead letters (frozen v1)."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", sa.String(255), nullable=False, unique=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("envelope", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        schema=schema,
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["id"],
        schema=schema,
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
        schema=schema,
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("entity_id", sa.String(100), nullable=False),
        sa.Column("old_values", JSONB),
        sa.Column("new_values", JSONB),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("client_ip", sa.String(64)),
        sa.Column("request_id", sa.String(128)),
        schema=schema,
    )
    op.create_index(
        "ix_audit_entity", "audit_log", ["tenant_id", "entity", "entity_id"], schema=schema
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("operation", sa.String(100), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response_body", JSONB),
        sa.Column("response_headers", JSONB),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "key"),
        schema=schema,
    )
    op.create_table(
        "counters",
        sa.Column("tenant_id", sa.String(5), nullable=False),
        sa.Column("serie", sa.String(50), nullable=False),
        sa.Column("anio", sa.Integer, nullable=False),
        sa.Column("ultimo", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "serie", "anio"),
        schema=schema,
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("message_id", sa.String(255)),
        sa.Column("tenant_id", sa.String(5)),
        sa.Column("event_type", sa.String(255)),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB, nullable=False, server_default="{}"),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("replayed_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    for table in ("audit_log", "idempotency_keys", "counters", "inbox"):
        enable_tenant_rls(schema, table)
    grant_app_role(schema, role)
    # The audit trail is append-only for the services.
    op.execute(f'REVOKE UPDATE, DELETE ON "{schema}"."audit_log" FROM "{role}"')


def protect_audit_log_v1(schema: str, role: str) -> None:
    """Makes the audit trail append-only again for the app role.

    A schema-wide ``grant_app_role`` run after ``create_kernel_tables_v1`` re-granted
    UPDATE and DELETE on ``audit_log``; revisions that follow such a grant call this.
    """
    op.execute(f'REVOKE UPDATE, DELETE ON "{schema}"."audit_log" FROM "{role}"')

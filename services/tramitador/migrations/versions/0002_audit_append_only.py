"""tramitador: the audit trail is append-only for the service role.

0001 granted the role every privilege on the schema after the kernel tables had
revoked UPDATE and DELETE on audit_log; this takes them back.

Revision ID: tramitador_0002
Revises: tramitador_0001
Create Date: 2026-11-23
"""

from services.common.migrations_support import migration_attr, protect_audit_log_v1

revision = "tramitador_0002"
down_revision = "tramitador_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    protect_audit_log_v1("tramitador", migration_attr("app_role") or "consistorio_app")


def downgrade() -> None:
    """Nothing to undo: granting UPDATE on an audit trail back is never wanted."""

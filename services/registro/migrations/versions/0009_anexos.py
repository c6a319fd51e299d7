"""registro: anexos of asientos kept in the repositorio (helper anexos) — no schema change.

Revision ID: registro_0009
Revises: registro_0008
Create Date: 2026-11-23

Nothing changes in the database here. What an asiento records of its anexos (name,
validez, tipo de documento, SHA-256, MIME, signature, time-stamp, the repositorio's
documento_id) lives in the JSONB column ``registro.asientos.anexos`` that migration
registro_0006 adds, and the bytes live in the repositorio, which stores them on the
``repositorio.documento.almacenar.v1`` command in its own tables. The revision stays
so the chain registro_0006 ... registro_0009 is the same in every installation.
"""

revision = "registro_0009"
down_revision = "registro_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """No schema change: anexos are a column of asientos (registro_0006) and documents."""


def downgrade() -> None:
    """No schema change to undo."""

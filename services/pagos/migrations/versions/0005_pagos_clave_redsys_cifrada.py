"""pagos: the Redsys merchant key is stored encrypted (envelope encryption).

The column becomes ``redsys_clave_cifrada`` and every key already stored in clear
is encrypted in place with the keyring the environment names (``PAGOS_KEKS``;
services/pagos/claves.py). In production without a KEK this migration fails,
naming the variable, rather than leave keys in clear; with no key stored it needs
none.

Revision ID: pagos_0005_clave_cifrada
Revises: pagos_0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from services.pagos import claves

revision = "pagos_0005_clave_cifrada"
down_revision = "pagos_0004"
branch_labels = None
depends_on = None

SCHEMA = "pagos"


def upgrade() -> None:
    op.alter_column(
        "configuracion", "redsys_clave", new_column_name="redsys_clave_cifrada", schema=SCHEMA
    )
    conn = op.get_bind()
    filas = conn.execute(
        sa.text(
            f'SELECT tenant_id, redsys_clave_cifrada FROM "{SCHEMA}".configuracion '
            "WHERE redsys_clave_cifrada IS NOT NULL FOR UPDATE"
        )
    ).all()
    en_claro = [(t, v) for t, v in filas if not claves.cifrada(v)]
    if not en_claro:
        return
    llavero = claves.vigente()
    for tenant_id, clave in en_claro:
        conn.execute(
            sa.text(
                f'UPDATE "{SCHEMA}".configuracion SET redsys_clave_cifrada = :c '
                "WHERE tenant_id = :t"
            ),
            {"c": llavero.cifrar(clave, tenant_id=tenant_id), "t": tenant_id},
        )


def downgrade() -> None:
    # Back to keys in clear: only possible with the keyring that encrypted them.
    conn = op.get_bind()
    filas = conn.execute(
        sa.text(
            f'SELECT tenant_id, redsys_clave_cifrada FROM "{SCHEMA}".configuracion '
            "WHERE redsys_clave_cifrada IS NOT NULL"
        )
    ).all()
    llavero = claves.vigente()
    for tenant_id, texto in filas:
        if claves.cifrada(texto):
            conn.execute(
                sa.text(
                    f'UPDATE "{SCHEMA}".configuracion SET redsys_clave_cifrada = :c '
                    "WHERE tenant_id = :t"
                ),
                {"c": llavero.descifrar(texto, tenant_id=tenant_id), "t": tenant_id},
            )
    op.alter_column(
        "configuracion", "redsys_clave_cifrada", new_column_name="redsys_clave", schema=SCHEMA
    )

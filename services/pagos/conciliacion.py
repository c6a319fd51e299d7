"""The reconciliation report: what was issued, what was paid by each channel, what is pending.

Treasury closes each period by matching what the council charged against what
the bank and Redsys paid in. The report answers, for a date range: the
liquidaciones issued (and of those, how many are still pending or expired, and
how many were annulled), what was paid in it by channel, what was refunded, and
the bank lines that matched nothing or could not be applied, which someone
must look at.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.pagos import service
from services.pagos.domain import Estado
from services.pagos.models import cobros, liquidaciones
from services.pagos.schemas import ConciliacionRead

__all__ = ["MAX_DIAS", "conciliar"]

# A year (and a day for leap years) is the longest period a report covers.
MAX_DIAS = 366
_MADRID = ZoneInfo("Europe/Madrid")
_INCIDENCIAS = 200


def _suma(n: int, centimos: int | None) -> dict[str, Any]:
    return {"numero": n, "importe": service.euros(int(centimos or 0))}


async def conciliar(
    session: AsyncSession, *, tenant_id: str, desde: date, hasta: date
) -> ConciliacionRead:
    """The report for ``desde``..``hasta`` (both included, the council's local days)."""
    inicio = datetime.combine(desde, time(0), tzinfo=_MADRID)
    fin = datetime.combine(hasta + timedelta(days=1), time(0), tzinfo=_MADRID)
    liq = liquidaciones.c
    del_tenant = liq.tenant_id == tenant_id
    emitidas_en = and_(del_tenant, liq.created_at >= inicio, liq.created_at < fin)
    pagadas_en = and_(
        del_tenant,
        liq.pagada_at >= inicio,
        liq.pagada_at < fin,
        liq.estado.in_((Estado.PAGADA, Estado.DEVUELTA)),
    )
    importe = func.sum(liq.importe_centimos)
    emitidas = (await session.execute(select(func.count(), importe).where(emitidas_en))).one()
    por_estado: dict[str, tuple[int, int]] = {
        row.estado: (row.n, int(row.total or 0))
        for row in (
            await session.execute(
                select(liq.estado, func.count().label("n"), importe.label("total"))
                .where(emitidas_en)
                .group_by(liq.estado)
            )
        ).all()
    }
    por_canal: dict[str, tuple[int, int]] = {
        row.canal: (row.n, int(row.total or 0))
        for row in (
            await session.execute(
                select(liq.canal, func.count().label("n"), importe.label("total"))
                .where(pagadas_en)
                .group_by(liq.canal)
            )
        ).all()
    }
    sin_pagar = [por_estado.get(e, (0, 0)) for e in (Estado.PENDIENTE, Estado.VENCIDA)]
    devueltas = (
        await session.execute(
            select(func.count(), importe).where(pagadas_en, liq.estado == Estado.DEVUELTA)
        )
    ).one()
    incidencias = (
        await session.execute(
            select(cobros)
            .where(
                cobros.c.tenant_id == tenant_id,
                cobros.c.fecha_cobro >= desde,
                cobros.c.fecha_cobro <= hasta,
                cobros.c.resultado.in_(("desconocido", "rechazado")),
            )
            .order_by(cobros.c.fecha_cobro, cobros.c.nrc)
            .limit(_INCIDENCIAS)
        )
    ).all()
    return ConciliacionRead.model_validate(
        {
            "desde": desde,
            "hasta": hasta,
            "emitidas": _suma(emitidas[0], emitidas[1]),
            "pendientes": _suma(sum(n for n, _ in sin_pagar), sum(c for _, c in sin_pagar)),
            "por_estado": {estado: _suma(*v) for estado, v in por_estado.items()},
            "pagadas": {
                "total": service.euros(sum(c for _, c in por_canal.values())),
                "por_canal": {canal: _suma(*v) for canal, v in por_canal.items()},
            },
            "devueltas": _suma(devueltas[0], devueltas[1]),
            "incidencias_banco": [
                {
                    "nrc": i.nrc,
                    "referencia": i.referencia,
                    "importe": service.euros(i.importe_centimos),
                    "fecha_cobro": i.fecha_cobro.isoformat(),
                    "resultado": i.resultado,
                }
                for i in incidencias
            ],
        }
    )

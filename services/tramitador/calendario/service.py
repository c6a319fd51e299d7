"""Use cases of the calendar: local holidays per year and plazos for a council."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import FieldError, Unprocessable
from services.common.uow import UnitOfWork
from services.tramitador.calendario.domain import (
    Calendario,
    Unidad,
    comunidades_de_residencia,
    dias_habiles_entre,
    vencimiento,
)
from services.tramitador.calendario.models import festivos_locales
from services.tramitador.calendario.schemas import FestivoRead, FestivosRead, PlazoCalculado

__all__ = ["calcular_plazo", "calendario_de", "consultar_festivos", "fijar_festivos_locales"]


async def calendario_de(
    session: AsyncSession, *, tenant_id: str, interesados: Iterable[Mapping[str, Any]] = ()
) -> Calendario:
    """The council's calendar: its comunidad's holidays and every local one it set; with
    ``interesados``, also the holidays of the comunidades where they live (art. 30.6)."""
    rows = await session.execute(
        select(festivos_locales.c.fecha).where(festivos_locales.c.tenant_id == tenant_id)
    )
    calendario = Calendario.de(tenant_id, rows.scalars())
    return calendario.con_residencias(comunidades_de_residencia(interesados))


async def fijar_festivos_locales(uow: UnitOfWork, *, anio: int, fechas: list[date]) -> FestivosRead:
    """Replaces the local holidays of one year (audited)."""
    wrong = [
        FieldError(f"fechas[{i}]", f"{fecha.isoformat()} no es del año {anio}")
        for i, fecha in enumerate(fechas)
        if fecha.year != anio
    ]
    if wrong:
        raise Unprocessable("Las fechas deben ser del año indicado.", errors=wrong)
    session = uow.session
    calendario = await calendario_de(session, tenant_id=uow.tenant_id)
    antes = sorted(d for d in calendario.festivos_locales if d.year == anio)
    nuevas = sorted(set(fechas))
    await session.execute(
        delete(festivos_locales).where(
            festivos_locales.c.tenant_id == uow.tenant_id, festivos_locales.c.anio == anio
        )
    )
    for fecha in nuevas:
        uow.add(festivos_locales, {"tenant_id": uow.tenant_id, "fecha": fecha, "anio": anio})
    uow.audit(
        action="fijar-festivos-locales",
        entity="calendario",
        entity_id=str(anio),
        old={"fechas": [d.isoformat() for d in antes]},
        new={"fechas": [d.isoformat() for d in nuevas]},
    )
    otros = {d for d in calendario.festivos_locales if d.year != anio}
    return _festivos(Calendario(calendario.comunidad, frozenset(otros | set(nuevas))), anio)


async def consultar_festivos(session: AsyncSession, *, tenant_id: str, anio: int) -> FestivosRead:
    """Every día inhábil (but weekends) of the council in one year."""
    return _festivos(await calendario_de(session, tenant_id=tenant_id), anio)


def _festivos(calendario: Calendario, anio: int) -> FestivosRead:
    locales = sorted(d for d in calendario.festivos_locales if d.year == anio)
    return FestivosRead(
        anio=anio,
        comunidad=calendario.comunidad,
        festivos_locales=locales,
        festivos=[
            FestivoRead(
                fecha=fecha,
                nombre=nombre,
                ambito="local" if nombre == "Fiesta local" and fecha in locales else "oficial",
            )
            for fecha, nombre in calendario.festivos(anio).items()
        ],
    )


async def calcular_plazo(
    session: AsyncSession,
    *,
    tenant_id: str,
    desde: date,
    cantidad: int,
    unidad: Unidad,
    residencia: str | None = None,
) -> PlazoCalculado:
    """When a plazo that starts counting the day after ``desde`` ends, for this council;
    with ``residencia`` (the INE code of the interesado's municipio), also counting the
    holidays of the comunidad where the interesado lives as inhábiles (art. 30.6)."""
    interesados = [{"municipio": residencia}] if residencia else []
    calendario = await calendario_de(session, tenant_id=tenant_id, interesados=interesados)
    fin = vencimiento(desde, cantidad, unidad, calendario)
    return PlazoCalculado(
        desde=desde,
        cantidad=cantidad,
        unidad=unidad,
        vencimiento=fin,
        comunidad=calendario.comunidad,
        residencia=sorted(calendario.residencias),
        dias_naturales=(fin - desde).days,
        dias_habiles=dias_habiles_entre(desde, fin, calendario),
    )

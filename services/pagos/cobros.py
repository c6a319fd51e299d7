"""Importing the bank's Cuaderno 60 cobros file: each NRC marks its liquidación paid, once.

A line is matched on the tenant's emisora and the referencia; its importe and
identificación must be the liquidación's. Every NRC is recorded whatever came of
it, under a primary key: a line seen before (in this file or an earlier one) is
reported as ``duplicado`` and never applied twice, even when two imports run at
once. A line that names no liquidación of the council is ``desconocido``; one
that cannot be applied (wrong amount, annulled, already paid by card) is
``rechazado`` with its reason, for the treasury to sort out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.errors import Conflict
from services.common.uow import UnitOfWork
from services.pagos import service
from services.pagos.cuaderno60 import FicheroCobros, LineaCobro
from services.pagos.models import cobros, liquidaciones

__all__ = ["Informe", "importar_cobros"]


@dataclass
class Informe:
    """What an import did, line by line."""

    importacion_id: str
    aplicados: list[dict[str, Any]] = field(default_factory=list)
    duplicados: list[dict[str, Any]] = field(default_factory=list)
    desconocidos: list[dict[str, Any]] = field(default_factory=list)
    rechazados: list[dict[str, Any]] = field(default_factory=list)
    ilegibles: list[dict[str, Any]] = field(default_factory=list)


def _resumen(linea: LineaCobro, **extra: Any) -> dict[str, Any]:
    return {
        "linea": linea.linea,
        "nrc": linea.nrc,
        "referencia": linea.referencia,
        "importe": service.euros(linea.importe_centimos),
        **extra,
    }


async def _registrar(uow: UnitOfWork, importacion: str, linea: LineaCobro) -> bool:
    """Claims the NRC for this import; False when it was already there."""
    fila = {
        "tenant_id": uow.tenant_id,
        "nrc": linea.nrc,
        "importacion_id": importacion,
        "referencia": linea.referencia,
        "importe_centimos": linea.importe_centimos,
        "fecha_cobro": linea.fecha_cobro,
        "entidad": linea.entidad,
        "oficina": linea.oficina,
        "resultado": "desconocido",
    }
    insertado = await uow.session.execute(
        pg_insert(cobros).values(**fila).on_conflict_do_nothing().returning(cobros.c.nrc)
    )
    return insertado.first() is not None


async def _resolver(uow: UnitOfWork, nrc: str, resultado: str, liquidacion_id: str | None) -> None:
    """Records what came of a claimed NRC."""
    await uow.session.execute(
        update(cobros)
        .where(cobros.c.tenant_id == uow.tenant_id, cobros.c.nrc == nrc)
        .values(resultado=resultado, liquidacion_id=liquidacion_id)
    )


async def importar_cobros(uow: UnitOfWork, *, fichero: FicheroCobros) -> Informe:
    """Applies a parsed cobros file in one transaction and reports every line."""
    cfg = await service.cargar_configuracion(uow.session, uow.tenant_id)
    if cfg.emisora is None:
        raise Conflict("La entidad no tiene emisora de Cuaderno 60 configurada.")
    informe = Informe(importacion_id=str(uuid.uuid4()))
    informe.ilegibles = [{"linea": n, "motivo": m} for n, m in fichero.errores]
    for linea in fichero.cobros:
        if not await _registrar(uow, informe.importacion_id, linea):
            informe.duplicados.append(_resumen(linea, motivo="NRC ya importado"))
            continue
        if linea.emisora != cfg.emisora:
            informe.desconocidos.append(_resumen(linea, motivo=f"emisora {linea.emisora}"))
            continue
        fila = (
            await uow.session.execute(
                select(liquidaciones)
                .where(
                    liquidaciones.c.tenant_id == uow.tenant_id,
                    liquidaciones.c.emisora == linea.emisora,
                    liquidaciones.c.referencia == linea.referencia,
                )
                .with_for_update()
            )
        ).first()
        if fila is None:
            informe.desconocidos.append(_resumen(linea, motivo="referencia sin liquidación"))
            continue
        motivo = None
        if fila.importe_centimos != linea.importe_centimos:
            motivo = f"importe {service.euros(fila.importe_centimos)} en la liquidación"
        elif fila.identificacion != linea.identificacion:
            motivo = "la identificación no es la de la liquidación"
        elif not await service.marcar_pagada(
            uow,
            liquidacion=fila,
            canal="cuaderno60",
            justificante=linea.nrc,
            pagada_at=datetime.combine(linea.fecha_cobro, time(12), tzinfo=UTC),
        ):
            motivo = f"la liquidación está {fila.estado}"
        if motivo is not None:
            await _resolver(uow, linea.nrc, "rechazado", fila.id)
            informe.rechazados.append(_resumen(linea, liquidacion_id=fila.id, motivo=motivo))
            continue
        await _resolver(uow, linea.nrc, "aplicado", fila.id)
        informe.aplicados.append(_resumen(linea, liquidacion_id=fila.id))
    uow.audit(
        action="importar-cobros",
        entity="importacion",
        entity_id=informe.importacion_id,
        new={
            "aplicados": len(informe.aplicados),
            "duplicados": len(informe.duplicados),
            "desconocidos": len(informe.desconocidos),
            "rechazados": len(informe.rechazados),
            "ilegibles": len(informe.ilegibles),
        },
    )
    return informe

"""Card payment through Redsys: open an attempt (the signed form) and apply its notification.

An attempt is one try at paying one liquidación: a fresh order number (unique in
the installation, from a database sequence, twelve digits), the amount in cents
and the merchant it was signed for. Redsys posts the outcome to the public
notification URL; the signature is checked with the tenant's key before
anything is read as true, and the attempt row is locked, so a replayed or
concurrent notification of the same order is applied once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update

from services.common.db import Database, bind_tenant
from services.common.errors import Conflict, NotFound, ProblemError
from services.common.uow import UnitOfWork
from services.pagos import redsys, service
from services.pagos.domain import Estado
from services.pagos.models import ORDEN_SEQ, TENANT_DE_ORDEN_FN, documentos, intentos
from services.pagos.schemas import PagoTarjetaRead

__all__ = [
    "NotificacionRechazada",
    "Resultado",
    "iniciar_pago_tarjeta",
    "procesar_notificacion",
    "tenant_de_notificacion",
    "vuelta",
]

_log = logging.getLogger("consistorio.pagos")

MONEDA_EURO = "978"
OPERACION_AUTORIZACION = "0"


class IntentoEstado:
    """The states of a card attempt."""

    INICIADO = "iniciado"
    AUTORIZADO = "autorizado"
    DENEGADO = "denegado"


class NotificacionRechazada(ProblemError):
    """A notification that is not Redsys speaking about this attempt: nothing applied."""

    status = 400
    slug = "notificacion-rechazada"


@dataclass(frozen=True)
class Resultado:
    """What a notification did: ``aplicada``, ``denegada``, ``repetida``."""

    orden: str
    resultado: str
    liquidacion_id: str


async def iniciar_pago_tarjeta(
    uow: UnitOfWork,
    *,
    liquidacion_id: str,
    obligado: str | None,
    url_notificacion: str,
    url_vuelta: str,
) -> PagoTarjetaRead:
    """Opens a card attempt for an unpaid liquidación and signs the Redsys form."""
    row = await service.cargar_liquidacion(
        uow.session, uow.tenant_id, liquidacion_id, bloquear=True
    )
    if obligado is not None and row.obligado_identificador != obligado:
        raise NotFound(f"No existe la liquidación {liquidacion_id}.")
    if row.estado not in (Estado.PENDIENTE, Estado.VENCIDA):
        raise Conflict(f"La liquidación está {row.estado}: no se puede pagar.")
    cfg = await service.cargar_configuracion(uow.session, uow.tenant_id)
    if not cfg.redsys_lista:
        raise Conflict("La entidad no tiene configurado el pago con tarjeta (Redsys).")
    assert cfg.comercio and cfg.terminal and cfg.clave and cfg.url
    secuencia = (await uow.session.execute(text(f"SELECT nextval('{ORDEN_SEQ}')"))).scalar_one()
    orden = f"{int(secuencia):012d}"
    uow.add(
        intentos,
        {
            "orden": orden,
            "tenant_id": uow.tenant_id,
            "liquidacion_id": row.id,
            "importe_centimos": row.importe_centimos,
            "comercio": cfg.comercio,
            "terminal": cfg.terminal,
            "estado": IntentoEstado.INICIADO,
        },
    )
    uow.audit(
        action="iniciar-pago-tarjeta",
        entity="liquidacion",
        entity_id=row.id,
        new={"orden": orden, "importe_centimos": row.importe_centimos},
    )
    parametros = {
        "Ds_Merchant_Amount": str(row.importe_centimos),
        "Ds_Merchant_Order": orden,
        "Ds_Merchant_MerchantCode": cfg.comercio,
        "Ds_Merchant_Terminal": cfg.terminal,
        "Ds_Merchant_Currency": MONEDA_EURO,
        "Ds_Merchant_TransactionType": OPERACION_AUTORIZACION,
        "Ds_Merchant_MerchantURL": url_notificacion,
        "Ds_Merchant_UrlOK": url_vuelta,
        "Ds_Merchant_UrlKO": url_vuelta,
        "Ds_Merchant_ProductDescription": row.concepto[:125],
    }
    codificados = redsys.codificar_parametros(parametros)
    return PagoTarjetaRead(
        url=cfg.url,
        Ds_SignatureVersion=redsys.FIRMA_VERSION,
        Ds_MerchantParameters=codificados,
        Ds_Signature=redsys.firmar(cfg.clave, orden, codificados),
        orden=orden,
    )


async def tenant_de_notificacion(db: Database, parametros: str) -> tuple[str, str]:
    """The order a notification names and its tenant, before anything is trusted.

    Only the order number is read from the unverified parameters, to find whose key
    verifies them; an unknown order is a 404.
    """
    try:
        orden = redsys.orden_de(redsys.decodificar_parametros(parametros))
    except redsys.FirmaNoValida as exc:
        raise NotificacionRechazada(str(exc)) from exc
    if not redsys.orden_valida(orden):
        raise NotificacionRechazada(f"Ds_Order {orden[:20]!r} no es un número de pedido")
    async with db.sessions() as session, session.begin():
        tenant = (
            await session.execute(text(f"SELECT {TENANT_DE_ORDEN_FN}(:o)"), {"o": orden})
        ).scalar_one()
    if tenant is None:
        raise NotFound(f"No hay ningún intento de pago con el pedido {orden}.")
    return orden, str(tenant)


def _campo(datos: dict[str, Any], nombre: str) -> str:
    for clave in (nombre, nombre.upper()):
        valor = datos.get(clave)
        if valor is not None:
            return str(valor)
    return ""


async def procesar_notificacion(
    uow: UnitOfWork, *, orden: str, version: str, parametros: str, firma: str
) -> Resultado:
    """Verifies a Redsys notification for ``orden`` and applies it once."""
    cfg = await service.cargar_configuracion(uow.session, uow.tenant_id)
    if not cfg.clave:
        raise NotificacionRechazada("la entidad no tiene clave de Redsys")
    try:
        datos = redsys.verificar(cfg.clave, version, parametros, firma)
    except redsys.FirmaNoValida as exc:
        _log.warning("Redsys notification refused for order %s: %s", orden, exc)
        raise NotificacionRechazada(f"Firma no válida: {exc}") from exc
    if redsys.orden_de(datos) != orden:
        raise NotificacionRechazada("el pedido firmado no es el notificado")
    intento = (
        await uow.session.execute(
            select(intentos)
            .where(intentos.c.tenant_id == uow.tenant_id, intentos.c.orden == orden)
            .with_for_update()
        )
    ).one()
    if _campo(datos, "Ds_Amount") != str(intento.importe_centimos):
        _log.warning("Redsys notification for order %s with another amount", orden)
        raise NotificacionRechazada("el importe notificado no es el del intento")
    if _campo(datos, "Ds_MerchantCode") != intento.comercio or _campo(datos, "Ds_Terminal").zfill(
        3
    ) != intento.terminal.zfill(3):
        raise NotificacionRechazada("el comercio o terminal notificado no es el del intento")
    if _campo(datos, "Ds_Currency") not in ("", MONEDA_EURO):
        raise NotificacionRechazada("la moneda notificada no es el euro")
    if intento.estado != IntentoEstado.INICIADO:
        return Resultado(orden, "repetida", intento.liquidacion_id)
    respuesta = _campo(datos, "Ds_Response")[:4]
    autorizado = redsys.pago_autorizado(respuesta)
    ahora = datetime.now(UTC)
    await uow.session.execute(
        update(intentos)
        .where(intentos.c.tenant_id == uow.tenant_id, intentos.c.orden == orden)
        .values(
            estado=IntentoEstado.AUTORIZADO if autorizado else IntentoEstado.DENEGADO,
            ds_response=respuesta or None,
            autorizacion=_campo(datos, "Ds_AuthorisationCode")[:6] or None,
            resuelto_at=func.now(),
        )
    )
    liquidacion = await service.cargar_liquidacion(
        uow.session, uow.tenant_id, intento.liquidacion_id, bloquear=True
    )
    if not autorizado:
        uow.audit(
            action="pago-tarjeta-denegado",
            entity="liquidacion",
            entity_id=liquidacion.id,
            new={"orden": orden, "ds_response": respuesta},
        )
        uow.emit(
            service.PAGO_FALLIDO,
            {
                "liquidacion_id": liquidacion.id,
                "expediente_id": liquidacion.expediente_id,
                "referencia": liquidacion.referencia,
                "importe": service.euros(intento.importe_centimos),
                "canal": "tarjeta",
                "orden": orden,
                "codigo_respuesta": respuesta,
            },
            subject=liquidacion.id,
        )
        return Resultado(orden, "denegada", liquidacion.id)
    if not await service.marcar_pagada(
        uow, liquidacion=liquidacion, canal="tarjeta", justificante=orden, pagada_at=ahora
    ):
        # Paid twice (another channel was first): the money must go back, by hand.
        _log.error(
            "order %s authorised for liquidación %s already %s: refund needed",
            orden,
            liquidacion.id,
            liquidacion.estado,
        )
        uow.audit(
            action="cobro-duplicado",
            entity="liquidacion",
            entity_id=liquidacion.id,
            new={"orden": orden, "estado_liquidacion": liquidacion.estado},
        )
        return Resultado(orden, "duplicada", liquidacion.id)
    return Resultado(orden, "aplicada", liquidacion.id)


@dataclass(frozen=True)
class Vuelta:
    """What the payer's browser is shown on coming back from Redsys."""

    numero: str
    concepto: str
    importe: str
    estado: str
    justificante_url: str | None


async def vuelta(
    db: Database, *, version: str, parametros: str, firma: str, base_url: str
) -> Vuelta:
    """The liquidación an order paid, for the browser Redsys sends back (signature checked).

    What the page shows is the liquidación as stored, never what the parameters say:
    only the notification changes anything.
    """
    orden, tenant = await tenant_de_notificacion(db, parametros)
    async with db.sessions() as session, session.begin():
        await bind_tenant(session, tenant)
        cfg = await service.cargar_configuracion(session, tenant)
        try:
            redsys.verificar(cfg.clave or "", version, parametros, firma)
        except (redsys.FirmaNoValida, ValueError) as exc:
            raise NotificacionRechazada(f"Firma no válida: {exc}") from exc
        intento = (
            await session.execute(
                select(intentos).where(intentos.c.tenant_id == tenant, intentos.c.orden == orden)
            )
        ).one()
        fila = await service.cargar_liquidacion(session, tenant, intento.liquidacion_id)
        documento = (
            await session.execute(
                select(documentos.c.csv).where(
                    documentos.c.tenant_id == tenant,
                    documentos.c.liquidacion_id == fila.id,
                    documentos.c.tipo == "justificante_pago",
                    documentos.c.estado == "emitido",
                )
            )
        ).scalar_one_or_none()
    return Vuelta(
        numero=f"{fila.ejercicio}/{fila.numero:08d}",
        concepto=fila.concepto,
        importe=service.euros(fila.importe_centimos),
        estado=fila.estado,
        justificante_url=(
            f"{base_url.rstrip('/')}/verificar/{documento}/documento" if documento else None
        ),
    )

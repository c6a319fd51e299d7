"""Use cases of pagos: issue, read, annul and refund liquidaciones; self-assessment; configuration.

Each use case runs in one unit of work: the row changes, the audit entries and
the events go to the database in the same transaction. Card payments (the
Redsys attempt and its notification) are in :mod:`services.pagos.tarjeta`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bus.consumer import PermanentFailure
from services.common.errors import Conflict, FieldError, NotFound, ProblemError, Unprocessable
from services.common.uow import UnitOfWork
from services.pagos import claves, cuaderno60, redsys
from services.pagos.dinero import ImporteNoValido, a_centimos, a_euros
from services.pagos.domain import (
    Bonificacion,
    Calculo,
    Condicion,
    Estado,
    Exencion,
    ReglaConcepto,
    ReglaNoAplicable,
    calcular,
    importe_requerido,
    puede_pasar,
)
from services.pagos.models import conceptos, configuracion, liquidaciones
from services.pagos.schemas import (
    AutoliquidacionRead,
    ConceptoCreate,
    ConceptoRead,
    ConfiguracionRead,
    ConfiguracionUpdate,
    Cuaderno60Read,
    LiquidacionCreate,
    LiquidacionPage,
    LiquidacionRead,
    Obligado,
    RedsysConfigRead,
)

__all__ = [
    "ClaveIlegible",
    "LIQUIDACION_ANULADA",
    "LIQUIDACION_VENCIDA",
    "LIQUIDACION_EMITIDA",
    "PAGO_COMPLETADO",
    "PAGO_FALLIDO",
    "REQUERIMIENTO_RECHAZADO",
    "REQUERIR_PAGO",
    "Configuracion",
    "anular_liquidacion",
    "autoliquidar",
    "cargar_liquidacion",
    "cargar_configuracion",
    "configurar",
    "consultar_configuracion",
    "consultar_liquidacion",
    "definir_concepto",
    "devolver_liquidacion",
    "emitir_liquidacion",
    "euros",
    "listar_conceptos",
    "listar_liquidaciones",
    "marcar_pagada",
    "marcar_vencidas",
    "regla_de",
    "requerir_pago",
    "vista",
]

LIQUIDACION_EMITIDA = "pagos.liquidacion.emitida.v1"
LIQUIDACION_ANULADA = "pagos.liquidacion.anulada.v1"
LIQUIDACION_VENCIDA = "pagos.liquidacion.vencida.v1"
PAGO_COMPLETADO = "pagos.pago.completado.v1"
PAGO_FALLIDO = "pagos.pago.fallido.v1"

# Without a date the obligado has a month to pay.
_log = logging.getLogger("consistorio.pagos")

PLAZO_POR_DEFECTO = timedelta(days=30)
_SERIE = "liquidacion"


@dataclass(frozen=True)
class Configuracion:
    """A tenant's payment channels as stored (the key stays inside the service)."""

    emisora: str | None
    comercio: str | None
    terminal: str | None
    clave: str | None
    url: str | None

    @property
    def redsys_lista(self) -> bool:
        return bool(self.comercio and self.terminal and self.clave and self.url)


class ClaveIlegible(ProblemError):
    """The stored Redsys key does not decrypt with the configured KEKs: an operator's fix."""

    status = 503


async def cargar_configuracion(session: AsyncSession, tenant_id: str) -> Configuracion:
    """The tenant's configuration (all None when never configured)."""
    row = (
        await session.execute(select(configuracion).where(configuracion.c.tenant_id == tenant_id))
    ).first()
    if row is None:
        return Configuracion(None, None, None, None, None)
    clave = None
    if row.redsys_clave_cifrada:
        try:
            clave = claves.vigente().descifrar(row.redsys_clave_cifrada, tenant_id=tenant_id)
        except claves.ClaveNoDescifrable as exc:
            # The message names the KEK id, never a key: safe to log and to answer.
            _log.error("Redsys key of tenant %s cannot be decrypted: %s", tenant_id, exc)
            raise ClaveIlegible(
                f"La clave de Redsys de la entidad no puede usarse: {exc}."
            ) from exc
    return Configuracion(
        row.emisora, row.redsys_comercio, row.redsys_terminal, clave, row.redsys_url
    )


def _vista_configuracion(cfg: Configuracion) -> ConfiguracionRead:
    return ConfiguracionRead.model_validate(
        {
            "redsys": RedsysConfigRead(
                comercio=cfg.comercio,
                terminal=cfg.terminal,
                url=cfg.url or "",
                clave_configurada=bool(cfg.clave),
            )
            if cfg.comercio and cfg.terminal
            else None,
            "cuaderno60": {"emisora": cfg.emisora} if cfg.emisora else None,
        }
    )


async def consultar_configuracion(session: AsyncSession, *, tenant_id: str) -> ConfiguracionRead:
    """The tenant's configuration, without the key."""
    return _vista_configuracion(await cargar_configuracion(session, tenant_id))


async def configurar(uow: UnitOfWork, *, datos: ConfiguracionUpdate) -> ConfiguracionRead:
    """Sets the tenant's Redsys merchant and Cuaderno 60 emisora (the key is write-only)."""
    actual = await cargar_configuracion(uow.session, uow.tenant_id)
    valores: dict[str, Any] = {}
    if datos.cuaderno60 is not None:
        valores["emisora"] = datos.cuaderno60.emisora
    if datos.redsys is not None:
        clave = datos.redsys.clave or actual.clave
        if clave is None:
            raise Unprocessable(
                "La primera configuración de Redsys necesita la clave del comercio.",
                errors=[FieldError("redsys.clave", "obligatoria la primera vez")],
            )
        try:
            redsys.validar_clave(clave)
        except ValueError as exc:
            raise Unprocessable(
                "Clave de Redsys no válida.", errors=[FieldError("redsys.clave", str(exc))]
            ) from exc
        valores |= {
            "redsys_comercio": datos.redsys.comercio,
            "redsys_terminal": datos.redsys.terminal.zfill(3),
            "redsys_clave_cifrada": claves.vigente().cifrar(clave, tenant_id=uow.tenant_id),
            "redsys_url": datos.redsys.url,
        }
    if not valores:
        raise Unprocessable("Nada que configurar.", errors=[FieldError("body", "vacío")])
    valores["updated_at"] = func.now()
    await uow.session.execute(
        pg_insert(configuracion)
        .values(tenant_id=uow.tenant_id, **valores)
        .on_conflict_do_update(index_elements=[configuracion.c.tenant_id], set_=valores)
    )
    # The audit trail says the key changed, never what it is.
    auditado = {k: v for k, v in valores.items() if k not in ("redsys_clave_cifrada", "updated_at")}
    if datos.redsys is not None:
        auditado["redsys_clave"] = "cambiada" if datos.redsys.clave else "conservada"
    uow.audit(action="configurar", entity="configuracion", entity_id=uow.tenant_id, new=auditado)
    return _vista_configuracion(await cargar_configuracion(uow.session, uow.tenant_id))


def euros(centimos: int) -> str:
    """Cents as the API and the bus write euros: ``"159.00"``."""
    return str(a_euros(centimos))


def _numero_texto(row: Row[Any]) -> str:
    return f"{row.ejercicio}/{row.numero:08d}"


def vista(row: Row[Any], *, base: str = "/api/v1/pagos") -> LiquidacionRead:
    """The REST view of a liquidación row."""
    datos = cuaderno60.DatosCuaderno60(
        2, row.emisora, row.referencia, row.identificacion, row.importe_centimos
    )
    enlace = f"{base}/liquidaciones/{row.id}"
    return LiquidacionRead(
        id=row.id,
        numero=_numero_texto(row),
        estado=row.estado,
        origen=row.origen,
        concepto=row.concepto,
        importe=str(a_euros(row.importe_centimos)),
        obligado=Obligado.model_construct(**row.obligado),
        expediente_id=row.expediente_id,
        vencimiento=row.vencimiento,
        emisora=row.emisora,
        referencia=row.referencia,
        identificacion=row.identificacion,
        digitos_control=datos.digitos_control,
        cuaderno60=Cuaderno60Read(
            modalidad=2,
            emisora=row.emisora,
            referencia=row.referencia,
            identificacion=row.identificacion,
            digitos_control=datos.digitos_control,
            codigo_barras=datos.codigo_barras,
        ),
        canal=row.canal,
        justificante_pago=row.justificante_pago,
        pagada_at=row.pagada_at,
        created_at=row.created_at,
        calculo=row.calculo,
        enlaces={
            "self": enlace,
            "carta_de_pago": f"{enlace}/carta-de-pago",
            "pago_tarjeta": f"{enlace}/pago-tarjeta",
            "justificante_pago": f"{enlace}/justificante-pago",
        },
    )


def _evento_emitida(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "liquidacion_id": row["id"],
        "numero": f"{row['ejercicio']}/{row['numero']:08d}",
        "concepto": row["concepto"],
        "importe": str(a_euros(row["importe_centimos"])),
        "obligado": row["obligado"],
        "expediente_id": row["expediente_id"],
        "vencimiento": row["vencimiento"].isoformat(),
        "emisora": row["emisora"],
        "referencia": row["referencia"],
        "identificacion": row["identificacion"],
        "origen": row["origen"],
    }


async def emitir_liquidacion(
    uow: UnitOfWork,
    *,
    datos: LiquidacionCreate,
    origen: str,
    hoy: date | None = None,
    concepto_codigo: str | None = None,
    calculo: Calculo | None = None,
    solicitud_id: str | None = None,
    solicitante: str | None = None,
) -> LiquidacionRead:
    """Issues a liquidación with its number and Cuaderno 60 reference; emits ``emitida``."""
    try:
        importe = a_centimos(datos.importe)
    except ImporteNoValido as exc:
        raise Unprocessable(str(exc), errors=[FieldError("importe", str(exc))]) from exc
    if importe <= 0:
        raise Unprocessable(
            "Una liquidación es de un importe positivo.",
            errors=[FieldError("importe", "debe ser mayor que cero")],
        )
    cfg = await cargar_configuracion(uow.session, uow.tenant_id)
    if cfg.emisora is None:
        raise Conflict(
            "La entidad no tiene emisora de Cuaderno 60: configúrela en "
            "PUT /api/v1/pagos/configuracion."
        )
    hoy = hoy or datetime.now(UTC).date()
    vencimiento = datos.vencimiento or hoy + PLAZO_POR_DEFECTO
    if vencimiento < hoy:
        raise Unprocessable(
            "El vencimiento ya ha pasado.", errors=[FieldError("vencimiento", "anterior a hoy")]
        )
    ejercicio = hoy.year
    numero = await uow.next_number(_SERIE, ejercicio)
    if numero >= 10**8:
        raise Conflict(f"Se agotó la numeración de liquidaciones de {ejercicio}.")
    try:
        c60 = cuaderno60.liquidacion_modalidad2(
            emisora=cfg.emisora,
            numero=int(f"{ejercicio % 100:02d}{numero:08d}"),
            tributo=datos.tributo,
            ejercicio=ejercicio,
            fecha_limite=vencimiento,
            importe=importe,
        )
    except cuaderno60.ReferenciaNoValida as exc:
        raise Unprocessable(str(exc), errors=[FieldError("importe", str(exc))]) from exc
    obligado = datos.obligado.model_dump(exclude_none=True)
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "ejercicio": ejercicio,
        "numero": numero,
        "estado": Estado.PENDIENTE,
        "origen": origen,
        "concepto": datos.concepto,
        "concepto_codigo": concepto_codigo,
        "tributo": datos.tributo,
        "importe_centimos": importe,
        "obligado": obligado,
        "obligado_identificador": datos.obligado.identificador,
        "expediente_id": datos.expediente_id.lower() if datos.expediente_id else None,
        "vencimiento": vencimiento,
        "emisora": c60.emisora,
        "referencia": c60.referencia,
        "identificacion": c60.identificacion,
        "calculo": calculo.desglose if calculo else None,
        "solicitud_id": solicitud_id,
        "solicitante": solicitante,
    }
    creada = (
        await uow.session.execute(liquidaciones.insert().values(**row).returning(liquidaciones))
    ).one()
    uow.audit(
        action="emitir",
        entity="liquidacion",
        entity_id=row["id"],
        new={
            "estado": Estado.PENDIENTE,
            "importe_centimos": importe,
            "referencia": c60.referencia,
            "origen": origen,
        },
    )
    uow.emit(LIQUIDACION_EMITIDA, _evento_emitida(row), subject=row["id"])
    return vista(creada)


async def cargar_liquidacion(
    session: AsyncSession, tenant_id: str, liquidacion_id: str, *, bloquear: bool = False
) -> Row[Any]:
    try:
        uuid.UUID(liquidacion_id)
    except ValueError as exc:
        raise NotFound(f"No existe la liquidación {liquidacion_id}.") from exc
    stmt = select(liquidaciones).where(
        liquidaciones.c.tenant_id == tenant_id, liquidaciones.c.id == liquidacion_id
    )
    if bloquear:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound(f"No existe la liquidación {liquidacion_id}.")
    return row


async def consultar_liquidacion(
    session: AsyncSession, *, tenant_id: str, liquidacion_id: str, obligado: str | None = None
) -> LiquidacionRead:
    """One liquidación; a citizen (``obligado``) sees only their own, others are a 404."""
    row = await cargar_liquidacion(session, tenant_id, liquidacion_id)
    if obligado is not None and row.obligado_identificador != obligado:
        raise NotFound(f"No existe la liquidación {liquidacion_id}.")
    return vista(row)


async def listar_liquidaciones(
    session: AsyncSession,
    *,
    tenant_id: str,
    obligado: str | None = None,
    estado: str | None = None,
    expediente_id: str | None = None,
    limite: int = 50,
    desplazamiento: int = 0,
) -> LiquidacionPage:
    """The tenant's liquidaciones, newest first, filtered."""
    filtros = [liquidaciones.c.tenant_id == tenant_id]
    if obligado is not None:
        filtros.append(liquidaciones.c.obligado_identificador == obligado)
    if estado is not None:
        filtros.append(liquidaciones.c.estado == estado)
    if expediente_id is not None:
        filtros.append(liquidaciones.c.expediente_id == expediente_id.lower())
    total = (
        await session.execute(select(func.count()).select_from(liquidaciones).where(*filtros))
    ).scalar_one()
    rows = (
        await session.execute(
            select(liquidaciones)
            .where(*filtros)
            .order_by(liquidaciones.c.created_at.desc(), liquidaciones.c.numero.desc())
            .limit(limite)
            .offset(desplazamiento)
        )
    ).all()
    return LiquidacionPage(items=[vista(r) for r in rows], total=total)


async def _cambiar_estado(
    uow: UnitOfWork,
    *,
    liquidacion_id: str,
    hasta: str,
    accion: str,
    motivo: str,
    **columnas: Any,
) -> tuple[Row[Any], Row[Any]]:
    """Moves a liquidación (locked) to ``hasta`` if its state allows; audits; (before, after)."""
    row = await cargar_liquidacion(uow.session, uow.tenant_id, liquidacion_id, bloquear=True)
    if not puede_pasar(row.estado, hasta):
        raise Conflict(f"La liquidación está {row.estado}: no puede pasar a {hasta}.")
    nueva = (
        await uow.session.execute(
            update(liquidaciones)
            .where(liquidaciones.c.tenant_id == uow.tenant_id, liquidaciones.c.id == row.id)
            .values(estado=hasta, updated_at=func.now(), **columnas)
            .returning(liquidaciones)
        )
    ).one()
    uow.audit(
        action=accion,
        entity="liquidacion",
        entity_id=row.id,
        old={"estado": row.estado},
        new={"estado": hasta, "motivo": motivo},
    )
    return row, nueva


async def anular_liquidacion(
    uow: UnitOfWork, *, liquidacion_id: str, motivo: str
) -> LiquidacionRead:
    """Annuls an unpaid liquidación; emits ``anulada``."""
    row, nueva = await _cambiar_estado(
        uow,
        liquidacion_id=liquidacion_id,
        hasta=Estado.ANULADA,
        accion="anular",
        motivo=motivo,
        motivo_anulacion=motivo,
    )
    uow.emit(
        LIQUIDACION_ANULADA,
        {
            "liquidacion_id": row.id,
            "expediente_id": row.expediente_id,
            "referencia": row.referencia,
            "motivo": motivo,
        },
        subject=row.id,
    )
    return vista(nueva)


async def devolver_liquidacion(
    uow: UnitOfWork, *, liquidacion_id: str, motivo: str
) -> LiquidacionRead:
    """Records that a paid liquidación was refunded (``devuelta``)."""
    _, nueva = await _cambiar_estado(
        uow, liquidacion_id=liquidacion_id, hasta=Estado.DEVUELTA, accion="devolver", motivo=motivo
    )
    return vista(nueva)


async def marcar_pagada(
    uow: UnitOfWork,
    *,
    liquidacion: Row[Any],
    canal: str,
    justificante: str,
    pagada_at: datetime,
) -> bool:
    """Marks a locked liquidación paid and emits ``pago.completado``; False if it cannot be.

    The caller holds the row lock, so two channels paying at once apply one.
    """
    if not puede_pasar(liquidacion.estado, Estado.PAGADA):
        return False
    await uow.session.execute(
        update(liquidaciones)
        .where(liquidaciones.c.tenant_id == uow.tenant_id, liquidaciones.c.id == liquidacion.id)
        .values(
            estado=Estado.PAGADA,
            canal=canal,
            justificante_pago=justificante,
            pagada_at=pagada_at,
            updated_at=func.now(),
        )
    )
    uow.audit(
        action="pagar",
        entity="liquidacion",
        entity_id=liquidacion.id,
        old={"estado": liquidacion.estado},
        new={"estado": Estado.PAGADA, "canal": canal, "justificante": justificante},
    )
    uow.emit(
        PAGO_COMPLETADO,
        {
            "liquidacion_id": liquidacion.id,
            "expediente_id": liquidacion.expediente_id,
            "referencia": liquidacion.referencia,
            "importe": str(a_euros(liquidacion.importe_centimos)),
            "canal": canal,
            "justificante": justificante,
            "pagado_en": pagada_at.isoformat(),
            # Only a liquidación a command asked for answers a solicitud.
            **(
                {"solicitud_id": liquidacion.solicitud_id, "solicitante": liquidacion.solicitante}
                if liquidacion.solicitud_id is not None
                else {}
            ),
        },
        subject=liquidacion.id,
    )
    return True


async def marcar_vencidas(uow: UnitOfWork, *, hoy: date, limite: int = 500) -> int:
    """Moves pendientes whose vencimiento is before ``hoy`` (the council's local day) to
    ``vencida``, at most ``limite`` of them; audits and emits ``liquidacion.vencida`` each.

    Rows another transaction holds are skipped (``SKIP LOCKED``): that one is paying,
    annulling or expiring them, and whichever commits first wins. A row expired by a
    transaction that committed meanwhile is no longer ``pendiente`` when this one locks
    it, so it is left alone: two schedulers expire and announce each liquidación once.
    """
    c = liquidaciones.c
    filas = (
        await uow.session.execute(
            select(c.id, c.expediente_id, c.referencia, c.importe_centimos, c.vencimiento)
            .where(
                c.tenant_id == uow.tenant_id,
                c.estado == Estado.PENDIENTE,
                c.vencimiento < hoy,
            )
            .order_by(c.vencimiento, c.id)
            .limit(limite)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not filas:
        return 0
    await uow.session.execute(
        update(liquidaciones)
        .where(c.tenant_id == uow.tenant_id, c.id.in_([f.id for f in filas]))
        .values(estado=Estado.VENCIDA, updated_at=func.now())
    )
    for fila in filas:
        uow.audit(
            action="vencer",
            entity="liquidacion",
            entity_id=fila.id,
            old={"estado": Estado.PENDIENTE},
            new={"estado": Estado.VENCIDA, "hoy": hoy.isoformat()},
        )
        uow.emit(
            LIQUIDACION_VENCIDA,
            {
                "liquidacion_id": fila.id,
                "expediente_id": fila.expediente_id,
                "referencia": fila.referencia,
                "importe": euros(fila.importe_centimos),
                "vencimiento": fila.vencimiento.isoformat(),
            },
            subject=fila.id,
        )
    return len(filas)


# --- ordenanza conceptos and autoliquidación ---------------------------------------------


def _condiciones(datos: list[dict[str, Any]]) -> tuple[Condicion, ...]:
    return tuple(Condicion(c["dato"], c["operador"], c["valor"]) for c in datos)


def regla_de(datos: dict[str, Any]) -> ReglaConcepto:
    """The domain rule of a stored (or submitted) ``regla``."""

    def dec(nombre: str) -> Decimal | None:
        valor = datos.get(nombre)
        return None if valor is None else Decimal(valor)

    return ReglaConcepto(
        tipo=datos["tipo"],
        importe=dec("importe"),
        precio_unidad=dec("precio_unidad"),
        porcentaje=dec("porcentaje"),
        minimo=dec("minimo"),
        maximo=dec("maximo"),
        exenciones=tuple(
            Exencion(e["motivo"], _condiciones(e["condiciones"]))
            for e in datos.get("exenciones", [])
        ),
        bonificaciones=tuple(
            Bonificacion(b["motivo"], Decimal(b["porcentaje"]), _condiciones(b["condiciones"]))
            for b in datos.get("bonificaciones", [])
        ),
    )


_NECESARIO = {"fija": "importe", "por_unidad": "precio_unidad", "porcentaje": "porcentaje"}


async def definir_concepto(uow: UnitOfWork, *, codigo: str, datos: ConceptoCreate) -> ConceptoRead:
    """Creates or replaces a concepto of the tenant's ordenanza."""
    regla = datos.regla.model_dump(exclude_none=True)
    necesario = _NECESARIO[datos.regla.tipo]
    if necesario not in regla:
        raise Unprocessable(
            f"Una regla {datos.regla.tipo} necesita {necesario}.",
            errors=[FieldError(f"regla.{necesario}", "obligatorio para este tipo")],
        )
    minimo, maximo = datos.regla.minimo, datos.regla.maximo
    if minimo and maximo and Decimal(minimo) > Decimal(maximo):
        raise Unprocessable(
            "El mínimo supera al máximo.", errors=[FieldError("regla.minimo", "> máximo")]
        )
    valores = {"nombre": datos.nombre, "tributo": datos.tributo, "regla": regla}
    await uow.session.execute(
        pg_insert(conceptos)
        .values(tenant_id=uow.tenant_id, codigo=codigo, **valores)
        .on_conflict_do_update(
            index_elements=[conceptos.c.tenant_id, conceptos.c.codigo],
            set_={**valores, "updated_at": func.now()},
        )
    )
    uow.audit(action="definir", entity="concepto", entity_id=codigo, new=valores)
    return ConceptoRead(codigo=codigo, **datos.model_dump())


async def listar_conceptos(session: AsyncSession, *, tenant_id: str) -> list[ConceptoRead]:
    """The tenant's self-assessable conceptos."""
    rows = (
        await session.execute(
            select(conceptos).where(conceptos.c.tenant_id == tenant_id).order_by(conceptos.c.codigo)
        )
    ).all()
    return [
        ConceptoRead(codigo=r.codigo, nombre=r.nombre, tributo=r.tributo, regla=r.regla)
        for r in rows
    ]


async def autoliquidar(
    uow: UnitOfWork,
    *,
    concepto: str,
    declarados: dict[str, Any],
    obligado: Obligado,
    expediente_id: str | None = None,
) -> AutoliquidacionRead:
    """Computes a fee from the ordenanza and issues it as a liquidación in the obligado's name."""
    row = (
        await uow.session.execute(
            select(conceptos).where(
                conceptos.c.tenant_id == uow.tenant_id, conceptos.c.codigo == concepto
            )
        )
    ).first()
    if row is None:
        raise Unprocessable(
            f"La ordenanza no tiene el concepto {concepto}.",
            errors=[FieldError("concepto", "desconocido")],
        )
    try:
        calculo = calcular(regla_de(row.regla), declarados)
    except ReglaNoAplicable as exc:
        raise Unprocessable(
            f"No se puede calcular: {exc}",
            errors=[FieldError(f"declarados.{exc.campo}", exc.motivo)],
        ) from exc
    liquidacion = None
    if calculo.importe_centimos > 0:
        liquidacion = await emitir_liquidacion(
            uow,
            datos=LiquidacionCreate(
                concepto=row.nombre,
                importe=str(calculo.importe),
                obligado=obligado,
                expediente_id=expediente_id,
                tributo=row.tributo,
            ),
            origen="autoliquidacion",
            concepto_codigo=concepto,
            calculo=calculo,
        )
    return AutoliquidacionRead(
        importe=str(calculo.importe),
        exenta=calculo.exenta,
        desglose=calculo.desglose,
        liquidacion=liquidacion,
    )


# --- the tramitador's command ---------------------------------------------------------------

REQUERIR_PAGO = "tramitador.pago.requerir.v1"
REQUERIMIENTO_RECHAZADO = "pagos.requerimiento.rechazado.v1"


async def requerir_pago(uow: UnitOfWork, *, datos: dict[str, Any]) -> LiquidacionRead | None:
    """The tramitador asks for the fees of an expediente: one liquidación per solicitud.

    ``datos`` is the command as its contract (tramitador.pago.requerir.v1) defines
    it, already validated against it. The liquidación charges the sum of the
    conceptos to the obligado; a redelivered command (same solicitante and
    solicitud_id) answers the liquidación already issued.

    A command that cannot be charged (a concepto without importe, which staff must
    assess, or another fault) is answered with ``pagos.requerimiento.rechazado.v1``
    naming why, so the expediente does not wait in silence; answered None. Only a
    command that names no solicitud, requester or expediente to answer is dead-lettered.
    """
    solicitud_id = str(datos.get("solicitud_id") or "").lower()
    solicitante = str(datos.get("solicitante") or "")
    try:
        uuid.UUID(solicitud_id)
    except ValueError as exc:
        raise PermanentFailure(f"{REQUERIR_PAGO} sin solicitud_id válido") from exc
    if not solicitante:
        raise PermanentFailure(f"{REQUERIR_PAGO} sin solicitante")
    try:
        expediente_id = str(uuid.UUID(str(datos.get("expediente_id"))))
    except ValueError as exc:
        raise PermanentFailure(f"{REQUERIR_PAGO} sin expediente_id") from exc
    previa = (
        await uow.session.execute(
            select(liquidaciones).where(
                liquidaciones.c.tenant_id == uow.tenant_id,
                liquidaciones.c.solicitante == solicitante,
                liquidaciones.c.solicitud_id == solicitud_id,
            )
        )
    ).first()
    if previa is not None:
        return vista(previa)

    def rechazar(codigo: str, motivo: str, conceptos: list[str] | None = None) -> None:
        uow.emit(
            REQUERIMIENTO_RECHAZADO,
            {
                "solicitud_id": solicitud_id,
                "solicitante": solicitante,
                "expediente_id": expediente_id,
                "codigo": codigo,
                "motivo": motivo[:1000],
                **({"conceptos": conceptos} if conceptos else {}),
            },
            subject=solicitud_id,
        )

    lineas = datos.get("conceptos")
    if not isinstance(lineas, list) or not lineas or not all(isinstance(c, dict) for c in lineas):
        rechazar("requerimiento-no-valido", f"{REQUERIR_PAGO} sin conceptos")
        return None
    obligado = datos.get("obligado")
    if not isinstance(obligado, dict):
        rechazar("requerimiento-no-valido", f"{REQUERIR_PAGO} sin obligado")
        return None
    sin_importe = [str(c.get("concepto")) for c in lineas if c.get("importe") is None]
    if sin_importe:
        rechazar(
            "importe-desconocido",
            f"Sin importe fijo: {', '.join(sin_importe)}. Hay que liquidarlo caso a caso y "
            "pedir el pago con su importe.",
            sin_importe,
        )
        return None
    try:
        importe = importe_requerido(lineas)
        solicitud = LiquidacionCreate.model_validate(
            {
                "concepto": _concepto_requerido(lineas),
                "importe": str(a_euros(importe)),
                "obligado": {
                    k: v
                    for k, v in obligado.items()
                    if k in Obligado.model_fields and v is not None
                },
                "expediente_id": expediente_id,
            }
        )
    except (ValueError, ImporteNoValido) as exc:
        rechazar("requerimiento-no-valido", f"{REQUERIR_PAGO} no válido: {exc}")
        return None
    codigos = [str(c["concepto"]) for c in lineas]
    try:
        return await emitir_liquidacion(
            uow,
            datos=solicitud,
            origen="tramitador",
            concepto_codigo=codigos[0] if len(codigos) == 1 and len(codigos[0]) <= 20 else None,
            solicitud_id=solicitud_id,
            solicitante=solicitante,
        )
    except (Unprocessable, Conflict) as exc:
        raise PermanentFailure(f"{REQUERIR_PAGO}: {exc.detail}") from exc


def _concepto_requerido(lineas: list[dict[str, Any]]) -> str:
    """The liquidación's concepto text: the fees' names, cut to the column's 200 characters."""
    texto = "; ".join(f"{c.get('nombre') or c.get('concepto')}" for c in lineas)
    return texto if len(texto) <= 200 else texto[:199] + "…"

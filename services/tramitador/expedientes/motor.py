"""The engine's steps inside one use case's transaction: read an expediente's situation,
enter a phase, and apply what each kind of action means in law.

Only service.py (the use cases) and the scheduler call these; each works on the
unit of work it is given and never commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.cpu import CpuPool
from services.common.errors import Conflict, FieldError, Forbidden, NotFound, Unprocessable
from services.common.timezones import tenant_timezone
from services.common.uow import UnitOfWork
from services.tramitador.calendario.domain import Calendario
from services.tramitador.calendario.service import calendario_de
from services.tramitador.documentos.service import emitir_documento
from services.tramitador.expedientes import domain
from services.tramitador.expedientes.domain import EstadoPlazo, Situacion, TipoPlazo
from services.tramitador.expedientes.models import expedientes, historial, plazos, tramites
from services.tramitador.procedimientos.domain import Definicion
from services.tramitador.procedimientos.service import definicion_de

__all__ = [
    "Contexto",
    "FASE_CAMBIADA",
    "NOTIFICACION_SOLICITAR",
    "PAGO_REQUERIR",
    "RESOLUCION_DICTADA",
    "TRAMITE_ASIGNADO",
    "abrir",
    "aplicar_accion",
    "entrar_en_fase",
    "hoy_de",
    "nuevo_tramite",
    "requerir_pago",
    "situacion_de",
    "solicitar_notificacion",
]

FASE_CAMBIADA = "tramitador.expediente.fase-cambiada.v1"
TRAMITE_ASIGNADO = "tramitador.tramite.asignado.v1"
RESOLUCION_DICTADA = "tramitador.resolucion.dictada.v1"
NOTIFICACION_SOLICITAR = "tramitador.notificacion.solicitar.v1"
PAGO_REQUERIR = "tramitador.pago.requerir.v1"
SOLICITANTE = "tramitador"


def hoy_de(tenant_id: str) -> date:
    """Today in the council's legal time (art. 31.1)."""
    return datetime.now(tenant_timezone(tenant_id)).date()


@dataclass
class Contexto:
    """One expediente being worked on in a transaction."""

    uow: UnitOfWork
    row: dict[str, Any]
    definicion: Definicion
    calendario: Calendario
    hoy: date
    # The document workers its documents are rendered in (a thread when None).
    documents: CpuPool | None = None

    @property
    def id(self) -> str:
        return str(self.row["id"])

    def cambiar(self, **valores: Any) -> None:
        """Records new values for the expediente's row (written by ``guardar``)."""
        self.row.update(valores)
        self._cambios.update(valores)

    def __post_init__(self) -> None:
        self._cambios: dict[str, Any] = {}

    async def guardar(self) -> None:
        if self._cambios:
            self._cambios["actualizado_at"] = datetime.now(UTC)
            await self.uow.session.execute(
                update(expedientes).where(expedientes.c.id == self.id).values(**self._cambios)
            )
            self._cambios = {}


async def abrir(
    uow: UnitOfWork,
    expediente_id: str,
    *,
    hoy: date | None = None,
    bloquear: bool = True,
    documents: CpuPool | None = None,
) -> Contexto:
    """Loads (and locks) an expediente of the unit of work's tenant; 404 otherwise."""
    try:
        uuid.UUID(expediente_id)
    except ValueError:
        raise NotFound(f"No existe el expediente {expediente_id}.") from None
    query = select(expedientes).where(
        expedientes.c.tenant_id == uow.tenant_id, expedientes.c.id == expediente_id
    )
    row = (await uow.session.execute(query.with_for_update() if bloquear else query)).first()
    if row is None:
        raise NotFound(f"No existe el expediente {expediente_id}.")
    data = dict(row._mapping)
    definicion = await definicion_de(
        uow.session,
        tenant_id=uow.tenant_id,
        codigo=data["procedimiento"],
        version=data["procedimiento_version"],
    )
    calendario = await calendario_de(
        uow.session, tenant_id=uow.tenant_id, interesados=data["interesados"]
    )
    return Contexto(uow, data, definicion, calendario, hoy or hoy_de(uow.tenant_id), documents)


async def situacion_de(
    session: AsyncSession,
    row: dict[str, Any],
    definicion: Definicion,
    datos: dict[str, Any] | None = None,
) -> Situacion:
    """What the guards need to know about the expediente now."""
    expediente_id = row["id"]
    informes = (
        (
            await session.execute(
                select(tramites.c.estado).where(
                    tramites.c.expediente_id == expediente_id, tramites.c.informe.is_(True)
                )
            )
        )
        .scalars()
        .all()
    )
    estados = (
        await session.execute(
            select(plazos.c.tipo, plazos.c.estado).where(plazos.c.expediente_id == expediente_id)
        )
    ).all()
    d = definicion.data
    return Situacion(
        fase=row["fase"],
        documentos_requeridos=frozenset(
            x["codigo"] for x in d.get("documentos_requeridos", []) if x.get("obligatorio", True)
        ),
        documentos_aportados=frozenset(row["documentos_aportados"] or []),
        tasas=frozenset(t["concepto"] for t in d.get("tasas", [])),
        tasas_pagadas=frozenset(row["tasas_pagadas"] or []),
        informes_pendientes=sum(1 for e in informes if e == "abierto"),
        informes_emitidos=sum(1 for e in informes if e == "completado"),
        plazos_abiertos=frozenset(
            t for t, e in estados if e in (EstadoPlazo.ABIERTO, EstadoPlazo.SUSPENDIDO)
        ),
        plazos_vencidos=frozenset(t for t, e in estados if e == EstadoPlazo.VENCIDO),
        propuesta=row["propuesta"],
        plazo_ampliado=bool(row["plazo_ampliado"]),
        datos=datos or {},
    )


def _historial(
    ctx: Contexto, accion: str, *, desde: str | None, hacia: str | None, datos: dict[str, Any]
) -> None:
    ctx.uow.add(
        historial,
        {
            "tenant_id": ctx.uow.tenant_id,
            "expediente_id": ctx.id,
            "actor": ctx.uow.actor.sub,
            "accion": accion,
            "fase_desde": desde,
            "fase_hacia": hacia,
            "datos": datos,
        },
    )


async def nuevo_tramite(ctx: Contexto, fase: str, t: dict[str, Any]) -> str:
    """Creates a trámite and announces whom it is assigned to; answers its id."""
    asignado = t["asignado"]
    vence = domain.vence(ctx.hoy, t["plazo"], ctx.calendario) if t.get("plazo") else None
    row = {
        "id": str(uuid.uuid4()),
        "tenant_id": ctx.uow.tenant_id,
        "expediente_id": ctx.id,
        "fase": fase,
        "codigo": t["codigo"],
        "nombre": t["nombre"],
        "informe": bool(t.get("informe")),
        "unidad": asignado.get("unidad"),
        "rol": asignado.get("rol"),
        "persona": asignado.get("persona"),
        "estado": "abierto",
        "vencimiento": vence,
        "procedimiento": ctx.row["procedimiento"],
    }
    # Written now, not deferred: the same transaction may read the trámites back.
    await ctx.uow.session.execute(insert(tramites).values(**row))
    ctx.uow.emit(
        TRAMITE_ASIGNADO,
        {
            "tramite_id": row["id"],
            "expediente_id": ctx.id,
            "numero": ctx.row["numero"],
            "procedimiento": ctx.row["procedimiento"],
            "fase": fase,
            "codigo": row["codigo"],
            "nombre": row["nombre"],
            "asignado": {k: v for k, v in asignado.items() if v},
            "vencimiento": vence.isoformat() if vence else None,
        },
        subject=row["id"],
    )
    return str(row["id"])


async def _cerrar_tramites(ctx: Contexto, *, fase: str | None = None, estado: str) -> None:
    query = update(tramites).where(
        tramites.c.expediente_id == ctx.id, tramites.c.estado == "abierto"
    )
    if fase is not None:
        query = query.where(tramites.c.fase == fase)
    await ctx.uow.session.execute(
        query.values(
            estado=estado, completado_at=datetime.now(UTC), completado_por=ctx.uow.actor.sub
        )
    )


async def entrar_en_fase(ctx: Contexto, fase: str, *, accion: str | None) -> None:
    """Moves the expediente into ``fase``: its state, its trámites, what it waits for."""
    anterior = ctx.row["fase"] if accion is not None else None
    if anterior is not None:
        await _cerrar_tramites(ctx, fase=anterior, estado="completado")
    definicion_fase = ctx.definicion.fases[fase]
    cambios: dict[str, Any] = {"fase": fase, "espera_evento": None}
    if definicion_fase.get("estado"):
        cambios["estado"] = definicion_fase["estado"]
    if definicion_fase.get("espera"):
        cambios["espera_evento"] = definicion_fase["espera"]["evento"]
    ctx.cambiar(**cambios)
    for t in definicion_fase.get("tramites", []):
        await nuevo_tramite(ctx, fase, t)
    ctx.uow.emit(
        FASE_CAMBIADA,
        {
            "expediente_id": ctx.id,
            "numero": ctx.row["numero"],
            "procedimiento": ctx.row["procedimiento"],
            "procedimiento_version": ctx.row["procedimiento_version"],
            "fase_anterior": anterior,
            "fase": fase,
            "estado": ctx.row["estado"],
            "accion": accion,
            "cambiado_en": datetime.now(UTC).isoformat(),
        },
        subject=ctx.id,
    )


async def abrir_plazo(
    ctx: Contexto, tipo: TipoPlazo, plazo: dict[str, Any], *, desde: date, al_vencer: str | None
) -> date:
    """Opens a plazo counted from the day after ``desde`` (art. 30)."""
    vence = domain.vence(desde, plazo, ctx.calendario)
    await ctx.uow.session.execute(
        insert(plazos).values(
            {
                "id": str(uuid.uuid4()),
                "tenant_id": ctx.uow.tenant_id,
                "expediente_id": ctx.id,
                "tipo": tipo.value,
                "inicio": desde,
                "vencimiento": vence,
                "estado": EstadoPlazo.ABIERTO.value,
                "accion_al_vencer": al_vencer,
            }
        )
    )
    return vence


async def _plazo(ctx: Contexto, tipo: TipoPlazo, *estados: EstadoPlazo) -> Any:
    return (
        await ctx.uow.session.execute(
            select(plazos)
            .where(
                plazos.c.expediente_id == ctx.id,
                plazos.c.tipo == tipo.value,
                plazos.c.estado.in_([e.value for e in estados]),
            )
            .order_by(plazos.c.created_at.desc())
            .limit(1)
        )
    ).first()


async def _terminar_plazo(ctx: Contexto, tipo: TipoPlazo, estado: EstadoPlazo) -> None:
    await ctx.uow.session.execute(
        update(plazos)
        .where(
            plazos.c.expediente_id == ctx.id,
            plazos.c.tipo == tipo.value,
            plazos.c.estado.in_([EstadoPlazo.ABIERTO.value, EstadoPlazo.SUSPENDIDO.value]),
        )
        .values(estado=estado.value, procesado_at=datetime.now(UTC))
    )


def _validar_datos(accion: dict[str, Any], datos: dict[str, Any]) -> None:
    sentidos = accion.get("sentidos")
    if sentidos:
        sentido = datos.get("sentido")
        if sentido is None and len(sentidos) == 1:
            datos["sentido"] = sentidos[0]
        elif sentido not in sentidos:
            raise Unprocessable(
                f"La acción {accion['codigo']} necesita un sentido: {', '.join(sentidos)}.",
                errors=[FieldError("sentido", f"debe ser uno de: {', '.join(sentidos)}")],
            )
    if accion["tipo"] == "solicitar-informe" and not datos.get("unidad"):
        raise Unprocessable(
            "Falta la unidad que debe informar.",
            errors=[FieldError("unidad", "obligatorio para solicitar un informe")],
        )


async def aplicar_accion(
    ctx: Contexto,
    codigo: str,
    datos: dict[str, Any],
    *,
    roles: frozenset[str] | None,
) -> None:
    """Takes one action: checks phase, role, data and guards, then applies its effects.

    ``roles`` None means the platform acts (a plazo expired, an answer arrived): only then
    may ``automatica`` actions run, and no role is needed.
    """
    accion = ctx.definicion.acciones.get(codigo)
    if accion is None:
        raise NotFound(f"El procedimiento {ctx.definicion.codigo} no tiene la acción {codigo}.")
    fase = ctx.row["fase"]
    if fase not in accion["desde"]:
        raise Conflict(
            f"La acción {codigo} no está disponible en la fase {fase}.",
            errors=[FieldError("fase", f"el expediente está en la fase {fase}")],
        )
    if roles is not None:
        if accion.get("automatica"):
            raise Conflict(
                f"La acción {codigo} solo la realiza el sistema.",
                errors=[FieldError("automatica", "al vencer un plazo o llegar una respuesta")],
            )
        if not domain.puede_actuar(accion, roles):
            raise Forbidden(
                f"La acción {codigo} necesita el rol '{accion.get('rol', 'tramitador')}'."
            )
    _validar_datos(accion, datos)
    if accion["tipo"] == "subsanar" and datos.get("documentos"):
        ctx.cambiar(
            documentos_aportados=sorted(
                set(ctx.row["documentos_aportados"]) | set(datos["documentos"])
            )
        )
    faltan = domain.condiciones_incumplidas(
        accion, await situacion_de(ctx.uow.session, ctx.row, ctx.definicion, datos)
    )
    if faltan:
        raise Conflict(
            f"No se puede realizar {codigo}: {'; '.join(faltan)}.",
            errors=[FieldError(f.split(":")[0], f.split(": ", 1)[1]) for f in faltan],
        )
    await _efectos(ctx, accion, datos)
    if accion.get("documento"):
        await emitir_documento(
            ctx.uow,
            expediente=ctx.row,
            definicion=ctx.definicion.data,
            plantilla=accion["documento"],
            datos=datos,
            fecha=ctx.hoy,
            documents=ctx.documents,
        )
    hacia = accion.get("hacia")
    _historial(
        ctx,
        codigo,
        desde=fase,
        hacia=hacia,
        datos={k: v for k, v in datos.items() if v not in (None, [], "")},
    )
    if hacia is not None and hacia != fase:
        await entrar_en_fase(ctx, hacia, accion=codigo)
    await ctx.guardar()


async def _efectos(ctx: Contexto, accion: dict[str, Any], datos: dict[str, Any]) -> None:
    """What each kind of action means in law, beyond moving phase."""
    tipo = accion["tipo"]
    if tipo == "requerir-subsanacion":
        # Art. 68.1: ten días hábiles; art. 22.1.a: the resolution plazo is suspended.
        await abrir_plazo(
            ctx,
            TipoPlazo.SUBSANACION,
            accion["plazo"],
            desde=ctx.hoy,
            al_vencer=accion.get("al_vencer"),
        )
        await ctx.uow.session.execute(
            update(plazos)
            .where(
                plazos.c.expediente_id == ctx.id,
                plazos.c.tipo == TipoPlazo.RESOLUCION.value,
                plazos.c.estado == EstadoPlazo.ABIERTO.value,
            )
            .values(estado=EstadoPlazo.SUSPENDIDO.value, suspendido_desde=ctx.hoy)
        )
    elif tipo == "subsanar":
        await _terminar_plazo(ctx, TipoPlazo.SUBSANACION, EstadoPlazo.CUMPLIDO)
        await _reanudar_resolucion(ctx)
    elif tipo == "abrir-audiencia":
        await abrir_plazo(
            ctx,
            TipoPlazo.AUDIENCIA,
            accion["plazo"],
            desde=ctx.hoy,
            al_vencer=accion.get("al_vencer"),
        )
    elif tipo == "cerrar-audiencia":
        await _terminar_plazo(ctx, TipoPlazo.AUDIENCIA, EstadoPlazo.CUMPLIDO)
    elif tipo == "solicitar-informe":
        await nuevo_tramite(
            ctx,
            ctx.row["fase"],
            {
                "codigo": "informe-solicitado",
                "nombre": datos.get("nombre") or f"Informe de {datos['unidad']}",
                "asignado": {"unidad": datos["unidad"]},
                "informe": True,
                "plazo": accion.get("plazo"),
            },
        )
    elif tipo == "emitir-informe":
        await _emitir_informe(ctx, datos)
    elif tipo == "ampliar-plazo":
        await _ampliar(ctx)
    elif tipo == "proponer":
        ctx.cambiar(propuesta=datos["sentido"])
    elif tipo == "resolver":
        _resolver(ctx, accion, datos)
        await _terminar_plazo(ctx, TipoPlazo.RESOLUCION, EstadoPlazo.CUMPLIDO)
        await _terminar_plazo(ctx, TipoPlazo.SUBSANACION, EstadoPlazo.CANCELADO)
        await _terminar_plazo(ctx, TipoPlazo.AUDIENCIA, EstadoPlazo.CANCELADO)
    elif tipo == "requerir-pago":
        requerir_pago(ctx)
    elif tipo == "confirmar-pago":
        conceptos = [t["concepto"] for t in ctx.definicion.data.get("tasas", [])]
        ctx.cambiar(tasas_pagadas=sorted(set(ctx.row["tasas_pagadas"]) | set(conceptos)))
    elif tipo == "archivar":
        await _cerrar_tramites(ctx, estado="completado")
    elif tipo == "reabrir":
        ctx.cambiar(resolucion=None, propuesta=None, silencio=None)


async def _reanudar_resolucion(ctx: Contexto) -> None:
    suspendido = await _plazo(ctx, TipoPlazo.RESOLUCION, EstadoPlazo.SUSPENDIDO)
    if suspendido is None:
        return
    nuevo, dias = domain.reanudar(
        suspendido.vencimiento, suspendido.suspendido_desde, ctx.hoy, ctx.calendario
    )
    await ctx.uow.session.execute(
        update(plazos)
        .where(plazos.c.id == suspendido.id)
        .values(
            estado=EstadoPlazo.ABIERTO.value,
            vencimiento=nuevo,
            suspendido_desde=None,
            dias_suspendidos=suspendido.dias_suspendidos + dias,
        )
    )


async def _emitir_informe(ctx: Contexto, datos: dict[str, Any]) -> None:
    pendiente = (
        await ctx.uow.session.execute(
            select(tramites.c.id)
            .where(
                tramites.c.expediente_id == ctx.id,
                tramites.c.informe.is_(True),
                tramites.c.estado == "abierto",
            )
            .order_by(tramites.c.created_at, tramites.c.codigo)
            .limit(1)
        )
    ).scalar_one()
    await ctx.uow.session.execute(
        update(tramites)
        .where(tramites.c.id == pendiente)
        .values(
            estado="completado",
            sentido=datos["sentido"],
            completado_at=datetime.now(UTC),
            completado_por=ctx.uow.actor.sub,
        )
    )


async def _ampliar(ctx: Contexto) -> None:
    actual = await _plazo(ctx, TipoPlazo.RESOLUCION, EstadoPlazo.ABIERTO, EstadoPlazo.SUSPENDIDO)
    if actual is None:
        raise Conflict(
            "No hay plazo de resolución que ampliar.",
            errors=[FieldError("plazo-resolucion", "no corre ningún plazo de resolución")],
        )
    nuevo = domain.plazo_ampliado(
        actual.vencimiento, ctx.definicion.data["plazo_resolucion"], ctx.calendario
    )
    await ctx.uow.session.execute(
        update(plazos).where(plazos.c.id == actual.id).values(vencimiento=nuevo)
    )
    ctx.cambiar(plazo_ampliado=True)


def _resolver(ctx: Contexto, accion: dict[str, Any], datos: dict[str, Any]) -> None:
    sentido = datos["sentido"]
    ctx.cambiar(resolucion=sentido)
    automatica = ctx.uow.actor.sub.startswith(domain.SISTEMA)
    ctx.uow.emit(
        RESOLUCION_DICTADA,
        {
            "expediente_id": ctx.id,
            "numero": ctx.row["numero"],
            "procedimiento": ctx.row["procedimiento"],
            "sentido": sentido,
            "accion": accion["codigo"],
            "fecha": ctx.hoy.isoformat(),
            "automatica": automatica,
            "motivo": datos.get("motivo"),
            "interesados": ctx.row["interesados"],
        },
        subject=ctx.id,
    )
    ctx.cambiar(espera_solicitud=None)
    if not accion.get("documento"):
        solicitar_notificacion(ctx, plantilla=None, documento_id=None)
    # Otherwise the resolution is notified once the repositorio has issued it.


def solicitar_notificacion(
    ctx: Contexto, *, plantilla: str | None, documento_id: str | None
) -> None:
    """Asks for the resolution to be notified; the phase waits for this solicitud's answer."""
    solicitud = str(uuid.uuid4())
    ctx.cambiar(espera_solicitud=solicitud)
    ctx.uow.emit(
        NOTIFICACION_SOLICITAR,
        {
            "solicitud_id": solicitud,
            "solicitante": SOLICITANTE,
            "expediente_id": ctx.id,
            "numero": ctx.row["numero"],
            "asunto": f"Resolución del expediente {ctx.row['numero']}: {ctx.row['resolucion']}",
            "documento": {"plantilla": plantilla, "documento_id": documento_id},
            "interesados": [domain.para_notificar(i) for i in ctx.row["interesados"]],
        },
        subject=solicitud,
    )


def requerir_pago(ctx: Contexto) -> None:
    """Asks pagos for the procedure's fees, with the importes staff assessed for this
    expediente; the phase waits for this solicitud's answer."""
    tasas = domain.importes_de_tasas(ctx.definicion.data.get("tasas", []), ctx.row["importes"])
    solicitud = str(uuid.uuid4())
    ctx.cambiar(espera_solicitud=solicitud)
    ctx.uow.emit(
        PAGO_REQUERIR,
        {
            "solicitud_id": solicitud,
            "solicitante": SOLICITANTE,
            "expediente_id": ctx.id,
            "numero": ctx.row["numero"],
            "conceptos": [
                {
                    "concepto": t["concepto"],
                    "nombre": t["nombre"],
                    "importe": _euros(t.get("importe")),
                }
                for t in tasas
            ],
            "obligado": ctx.row["interesados"][0],
        },
        subject=solicitud,
    )


def _euros(importe: object) -> str | None:
    """A fee of the definition as the bus carries money: a decimal string, never a float."""
    return None if importe is None else f"{Decimal(str(importe)).quantize(Decimal('0.01'))}"

"""Pure rules of the expedientes: numbers, states, which actions a user may take now and
which conditions of the law still block them. No framework, no I/O."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from services.tramitador.calendario.domain import Calendario, Unidad, sumar_meses, vencimiento

__all__ = [
    "AccionPosible",
    "EstadoExpediente",
    "EstadoPlazo",
    "DATOS_DE_CANAL",
    "SERIE_EXPEDIENTES",
    "Situacion",
    "abre_expediente",
    "codificar_cursor",
    "decodificar_cursor",
    "acciones_posibles",
    "con_datos_de_canal",
    "condiciones_incumplidas",
    "format_numero",
    "importes_de_tasas",
    "para_notificar",
    "plazo_ampliado",
    "reanudar",
    "tasas_sin_importe",
]

SERIE_EXPEDIENTES = "expediente"
SISTEMA = "sistema"


class EstadoExpediente(StrEnum):
    """Life cycle of an expediente; each phase of its procedure names the state it means."""

    INICIADO = "iniciado"
    EN_TRAMITE = "en_tramite"
    SUSPENDIDO = "suspendido"
    RESUELTO = "resuelto"
    ARCHIVADO = "archivado"


class EstadoPlazo(StrEnum):
    """A plazo runs (abierto), is suspended, met (cumplido), expired or cancelled."""

    ABIERTO = "abierto"
    SUSPENDIDO = "suspendido"
    CUMPLIDO = "cumplido"
    VENCIDO = "vencido"
    CANCELADO = "cancelado"


class TipoPlazo(StrEnum):
    """What a plazo is for."""

    RESOLUCION = "resolucion"
    SUBSANACION = "subsanacion"
    AUDIENCIA = "audiencia"
    INFORME = "informe"


# The plazo an action opens, by action type.
PLAZO_DE_ACCION = {
    "requerir-subsanacion": TipoPlazo.SUBSANACION,
    "abrir-audiencia": TipoPlazo.AUDIENCIA,
}


def format_numero(anio: int, secuencia: int) -> str:
    """Human number of an expediente, e.g. ``EXP/2026/000001``."""
    if secuencia < 1:
        raise ValueError("la secuencia empieza en 1")
    return f"EXP/{anio:04d}/{secuencia:06d}"


def abre_expediente(*, tipo_asiento: str, procedimiento: str | None, catalogo: set[str]) -> bool:
    """An entrada that names a procedimiento of the catalogue starts an expediente
    (Ley 39/2015, art. 54: procedures start at the interested party's request)."""
    return tipo_asiento == "entrada" and procedimiento is not None and procedimiento in catalogo


@dataclass(frozen=True)
class Situacion:
    """What the guards look at: the expediente's phase and what has been done so far."""

    fase: str
    documentos_requeridos: frozenset[str]
    documentos_aportados: frozenset[str]
    tasas: frozenset[str]
    tasas_pagadas: frozenset[str]
    informes_pendientes: int
    informes_emitidos: int
    plazos_abiertos: frozenset[str]
    plazos_vencidos: frozenset[str]
    propuesta: str | None
    plazo_ampliado: bool
    datos: dict[str, Any] = field(default_factory=dict)


def condiciones_incumplidas(accion: dict[str, Any], situacion: Situacion) -> list[str]:
    """Every unmet condition of an action, in words a user can act on (empty: it may go)."""
    faltan: list[str] = []
    for condicion in accion.get("requiere", []):
        motivo = _motivo(condicion, situacion)
        if motivo:
            faltan.append(f"{condicion}: {motivo}")
    tipo = accion["tipo"]
    if tipo == "emitir-informe" and situacion.informes_pendientes == 0:
        faltan.append("informe-solicitado: no hay ningún informe pendiente")
    if tipo == "ampliar-plazo" and situacion.plazo_ampliado:
        faltan.append("ampliacion-unica: el plazo ya se amplió una vez (art. 23.1)")
    return faltan


def _motivo(condicion: str, s: Situacion) -> str | None:
    if condicion == "documentos-requeridos":
        faltan = sorted(s.documentos_requeridos - s.documentos_aportados)
        return f"faltan documentos: {', '.join(faltan)}" if faltan else None
    if condicion == "tasas-pagadas":
        faltan = sorted(s.tasas - s.tasas_pagadas)
        return f"tasas sin pagar: {', '.join(faltan)}" if faltan else None
    if condicion == "informes-emitidos":
        if s.informes_pendientes:
            return f"{s.informes_pendientes} informe(s) pendiente(s)"
        return None if s.informes_emitidos else "no se ha emitido ningún informe"
    if condicion == "audiencia-concluida":
        if TipoPlazo.AUDIENCIA in s.plazos_vencidos or s.datos.get("renuncia") is True:
            return None
        return (
            "el plazo de audiencia sigue abierto (cabe cerrarlo antes si los interesados renuncian)"
        )
    if condicion == "propuesta-formulada":
        return None if s.propuesta else "no hay propuesta de resolución"
    if condicion == "sin-plazos-abiertos":
        abiertos = sorted(s.plazos_abiertos - {TipoPlazo.RESOLUCION})
        return f"plazos abiertos: {', '.join(abiertos)}" if abiertos else None
    return f"condición desconocida {condicion}"


@dataclass(frozen=True)
class AccionPosible:
    """An action the user may take now, and what still blocks it (if anything)."""

    codigo: str
    nombre: str
    tipo: str
    sentidos: list[str] | None
    condiciones_pendientes: list[str]


def acciones_posibles(
    acciones: Iterable[dict[str, Any]], situacion: Situacion, roles: frozenset[str]
) -> list[AccionPosible]:
    """The manual actions of the current phase the user's roles allow, each with what
    still blocks it (an empty list: it can be taken now)."""
    out = []
    for accion in acciones:
        if situacion.fase not in accion["desde"] or accion.get("automatica"):
            continue
        if not puede_actuar(accion, roles):
            continue
        out.append(
            AccionPosible(
                codigo=accion["codigo"],
                nombre=accion["nombre"],
                tipo=accion["tipo"],
                sentidos=accion.get("sentidos"),
                condiciones_pendientes=condiciones_incumplidas(accion, situacion),
            )
        )
    return out


def puede_actuar(accion: dict[str, Any], roles: frozenset[str]) -> bool:
    """The action's role (``tramitador`` by default) or ``admin`` may take it."""
    return "admin" in roles or accion.get("rol", "tramitador") in roles


def vence(desde: date, plazo: dict[str, Any], calendario: Calendario) -> date:
    """The end of a plazo of a definition counted from ``desde`` (art. 30)."""
    return vencimiento(desde, int(plazo["cantidad"]), Unidad(plazo["unidad"]), calendario)


def reanudar(
    vencimiento_actual: date, suspendido_desde: date, hoy: date, calendario: Calendario
) -> tuple[date, int]:
    """A suspended plazo resumes (art. 22.1): it ends later by the days it was suspended."""
    dias = max((hoy - suspendido_desde).days, 0)
    return calendario.siguiente_habil(vencimiento_actual + timedelta(days=dias)), dias


def plazo_ampliado(vencimiento_actual: date, plazo: dict[str, Any], calendario: Calendario) -> date:
    """Art. 23.1: the resolution plazo may be extended once, by no more than half of it."""
    cantidad, unidad = int(plazo["cantidad"]), Unidad(plazo["unidad"])
    if unidad is Unidad.MESES:
        fin = sumar_meses(vencimiento_actual, max(cantidad // 2, 1))
    elif unidad is Unidad.ANIOS:
        fin = sumar_meses(vencimiento_actual, 6 * cantidad)
    elif unidad is Unidad.DIAS_HABILES:
        return vencimiento(vencimiento_actual, max(cantidad // 2, 1), unidad, calendario)
    else:
        fin = vencimiento_actual + timedelta(days=max(cantidad // 2, 1))
    return calendario.siguiente_habil(fin)


def codificar_cursor(*valores: str) -> str:
    """The opaque cursor of a listing: base64url (unpadded) of the sort key's values."""
    raw = json.dumps(list(valores), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decodificar_cursor(cursor: str, partes: int) -> list[str]:
    """Reads a cursor made by ``codificar_cursor``; ValueError on anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        valores = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("cursor no válido: use el next_cursor de una respuesta") from exc
    if not isinstance(valores, list) or len(valores) != partes:
        raise ValueError("cursor no válido: use el next_cursor de una respuesta")
    return [str(v) for v in valores]


# --- what notificaciones and pagos need from the expediente ---------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# SICRES 3.0 canal preferente: 01 postal address, 02 DEH, 03 comparecencia en sede.
_CANALES_ELECTRONICOS = {"02", "03"}
# What staff may give to reach an interesado, and which the notification command carries.
DATOS_DE_CANAL = ("eligio_electronico", "email", "movil", "direccion_postal")


def _nombre_completo(persona: dict[str, Any]) -> str:
    partes = (persona.get("nombre"), persona.get("apellido1"), persona.get("apellido2"))
    return " ".join(str(p) for p in partes if p)


def para_notificar(interesado: dict[str, Any]) -> dict[str, Any]:
    """An interesado as the notification command carries them: identity, and how to reach
    them (art. 41), from what staff gave (``DATOS_DE_CANAL``) or else what the asiento
    said (SICRES ``canal_preferente``, ``email``, the postal address fields).

    A field that would not pass the notificaciones service's checks is left out rather
    than sent wrong: then the notification fails with its reason and staff give it.
    """
    salida: dict[str, Any] = {
        k: interesado.get(k)
        for k in ("tipo_identificador", "identificador", "nombre", "apellido1", "apellido2")
        if k in interesado
    }
    electronico = interesado.get("eligio_electronico")
    if electronico is None and interesado.get("canal_preferente") in _CANALES_ELECTRONICOS:
        electronico = True
    if electronico is not None:
        salida["eligio_electronico"] = bool(electronico)
    email = interesado.get("email")
    if isinstance(email, str) and _EMAIL.match(email) and len(email) <= 254:
        salida["email"] = email
    movil = interesado.get("movil")
    if isinstance(movil, str) and re.fullmatch(r"\+?\d{9,15}", movil):
        salida["movil"] = movil
    direccion = interesado.get("direccion_postal") or _direccion_del_asiento(interesado)
    if direccion is not None:
        salida["direccion_postal"] = direccion
    representante = interesado.get("representante")
    if isinstance(representante, dict) and representante.get("identificador"):
        salida["representante"] = {
            "tipo_identificador": representante.get("tipo_identificador", "NIF"),
            "identificador": representante["identificador"],
            "nombre": _nombre_completo(representante) or representante["identificador"],
        }
    return salida


def _direccion_del_asiento(interesado: dict[str, Any]) -> dict[str, str] | None:
    """The postal address SICRES fields of an asiento's interesado, when complete."""
    direccion, cp = interesado.get("direccion"), interesado.get("codigo_postal")
    municipio = interesado.get("municipio")
    if not (direccion and municipio and isinstance(cp, str) and re.fullmatch(r"\d{5}", cp)):
        return None
    return {
        "direccion": str(direccion)[:200],
        "codigo_postal": cp,
        "municipio": str(municipio)[:100],
        "provincia": str(interesado.get("provincia") or cp[:2])[:100],
    }


def con_datos_de_canal(
    interesados: list[dict[str, Any]], cambios: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The interesados with the channel data staff gave, matched by identificador; and
    the identificadores given that name no interesado of the expediente."""
    por_id = {c["identificador"]: c for c in cambios}
    nuevos = []
    for interesado in interesados:
        cambio = por_id.pop(interesado.get("identificador"), None)
        if cambio is None:
            nuevos.append(interesado)
            continue
        datos = {k: v for k, v in cambio.items() if k in DATOS_DE_CANAL and v is not None}
        nuevos.append({**interesado, **datos})
    return nuevos, sorted(por_id)


def importes_de_tasas(
    tasas: list[dict[str, Any]], fijados: dict[str, str] | None
) -> list[dict[str, Any]]:
    """The definition's fees with the importes staff assessed for this expediente (a fee
    computed case by case, such as the ICIO of an obra) put in place of a null one."""
    fijados = fijados or {}
    return [{**t, "importe": fijados.get(t["concepto"], t.get("importe"))} for t in tasas]


def tasas_sin_importe(tasas: list[dict[str, Any]], fijados: dict[str, str] | None) -> list[str]:
    """The concepto codes still without an importe once staff's are counted."""
    return [t["concepto"] for t in importes_de_tasas(tasas, fijados) if t["importe"] is None]

"""Pure rules of the tramitador: expediente numbers, states, when an asiento opens one."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["EstadoExpediente", "SERIE_EXPEDIENTES", "abre_expediente", "format_numero"]

SERIE_EXPEDIENTES = "expediente"


class EstadoExpediente(StrEnum):
    """Life cycle of an expediente (this slice opens them; later trámites move them on)."""

    INICIADO = "iniciado"
    EN_TRAMITE = "en_tramite"
    RESUELTO = "resuelto"
    ARCHIVADO = "archivado"


def format_numero(anio: int, secuencia: int) -> str:
    """Human number of an expediente, e.g. ``EXP/2026/000001``."""
    if secuencia < 1:
        raise ValueError("la secuencia empieza en 1")
    return f"EXP/{anio:04d}/{secuencia:06d}"


def abre_expediente(*, tipo_asiento: str, procedimiento: str | None, catalogo: set[str]) -> bool:
    """An entrada that names a procedimiento of the catalogue starts an expediente
    (Ley 39/2015, art. 54: procedures start at the interested party's request)."""
    return tipo_asiento == "entrada" and procedimiento is not None and procedimiento in catalogo

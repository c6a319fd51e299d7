"""Use cases of anexos: each is checked, hashed and sent to the repositorio to be stored."""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from services.common.errors import FieldError, PayloadTooLarge, Unprocessable

# The catalogue of formats (NTI de Catálogo de estándares) is the one the repositorio
# applies too: an anexo the repositorio would refuse is refused here, at once, instead of
# leaving the asiento naming a documento that never gets stored.
from services.common.tenants import tenants_table
from services.common.uow import UnitOfWork
from services.registro.anexos.domain import (
    MAX_ANEXOS,
    AnexoSicres,
    Limites,
    TipoDocumentoAnexo,
    Validez,
    _max_base64,
    identificador_fichero,
    resolver_mime,
    sha256_de_hash,
)
from services.registro.anexos.schemas import AnexoCreate, AnexoRead
from services.registro.domain import TipoAsiento

__all__ = [
    "ALMACENAR_DOCUMENTO",
    "guardar_anexos",
    "guardar_anexos_recibidos",
]

ALMACENAR_DOCUMENTO = "repositorio.documento.almacenar.v1"


# --- naming and hashes -----------------------------------------------------------------------


# --- storing ---------------------------------------------------------------------------------


async def _organo(uow: UnitOfWork) -> str:
    """The entity's DIR3 code: the órgano its documents belong to."""
    dir3 = (
        await uow.session.execute(
            select(tenants_table.c.dir3).where(tenants_table.c.ine_code == uow.tenant_id)
        )
    ).scalar_one_or_none()
    if dir3 is None:
        raise Unprocessable(f"La entidad {uow.tenant_id} no está en el registro de entidades.")
    return str(dir3)


def _tipo_documental(tipo: TipoAsiento, tipo_documento: TipoDocumentoAnexo) -> str:
    # The form of an entrada is the citizen's solicitud (TD14); anything else is "otros".
    if tipo is TipoAsiento.ENTRADA and tipo_documento is TipoDocumentoAnexo.FORMULARIO:
        return "TD14"
    return "TD99"


def _almacenar(
    uow: UnitOfWork,
    *,
    anexo: AnexoRead,
    contenido: bytes,
    organo: str,
    tipo: TipoAsiento,
    asiento_id: str,
    numero: str,
) -> None:
    """Sends the command that stores one anexo as a documento (committed with the asiento)."""
    assert anexo.documento_id is not None and anexo.tipo_mime is not None
    uow.emit(
        ALMACENAR_DOCUMENTO,
        {
            "documento_id": anexo.documento_id,
            "nombre": anexo.nombre,
            "mime": anexo.tipo_mime,
            "contenido": base64.b64encode(contenido).decode("ascii"),
            "sha256": anexo.sha256,
            "metadatos": {
                "organo": organo,
                # An entrada brings what citizens present; a salida, what the council sends.
                "origen": "ciudadano" if tipo is TipoAsiento.ENTRADA else "administracion",
                "estado_elaboracion": (anexo.validez or Validez.ORIGINAL).estado_elaboracion,
                "tipo_documental": _tipo_documental(tipo, anexo.tipo_documento),
            },
            "referencia": {"tipo": "asiento", "id": asiento_id, "numero": numero},
        },
        subject=numero,
    )


def _too_large(field: str, detail: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(detail, errors=[FieldError(field, f"máximo {limit} bytes")])


def _decode(anexos: Sequence[AnexoCreate], limites: Limites) -> list[bytes]:
    """Every anexo's bytes; 413 past a limit, 422 naming each bad ``anexos[i].contenido``."""
    maximo = _max_base64(limites.max_anexo_bytes)
    for n, anexo in enumerate(anexos):
        # Refused on the encoded length before decoding: no work for what cannot fit
        # (with room for the line breaks MIME-style base64 may carry).
        if len(anexo.contenido) > maximo + maximo // 38 + 4:
            raise _too_large(
                f"anexos[{n}].contenido",
                f"El anexo {anexo.nombre} supera el máximo de {limites.max_anexo_bytes} bytes.",
                limites.max_anexo_bytes,
            )
    contenidos: list[bytes] = []
    errors: list[FieldError] = []
    for n, anexo in enumerate(anexos):
        try:
            data = base64.b64decode("".join(anexo.contenido.split()), validate=True)
        except (binascii.Error, ValueError):
            errors.append(FieldError(f"anexos[{n}].contenido", "no es base64 válido"))
            contenidos.append(b"")
            continue
        if not data:
            errors.append(FieldError(f"anexos[{n}].contenido", "el fichero está vacío"))
        elif len(data) > limites.max_anexo_bytes:
            raise _too_large(
                f"anexos[{n}].contenido",
                f"El anexo {anexo.nombre} supera el máximo de {limites.max_anexo_bytes} bytes.",
                limites.max_anexo_bytes,
            )
        contenidos.append(data)
    if errors:
        campos = ", ".join(e["field"] for e in errors)
        raise Unprocessable(f"Datos no válidos: {campos}", errors=errors)
    total = sum(len(c) for c in contenidos)
    if total > limites.max_anexos_bytes:
        raise _too_large(
            "anexos",
            f"Los anexos suman {total} bytes y el máximo por asiento es "
            f"{limites.max_anexos_bytes}.",
            limites.max_anexos_bytes,
        )
    return contenidos


async def guardar_anexos(
    uow: UnitOfWork,
    *,
    asiento_id: str,
    numero: str,
    tipo: TipoAsiento,
    anexos: Sequence[AnexoCreate],
    limites: Limites | None = None,
) -> list[AnexoRead]:
    """Checks and hashes an asiento's anexos and asks the repositorio to store each one.

    The commands go out with the asiento's unit of work, so they exist if and only if
    the asiento does. Answers what the asiento records of them. Raises 413 naming
    the anexo past a limit, 422 naming ``anexos[i].contenido`` (bad base64, empty) or
    ``anexos[i].tipo_mime`` / ``anexos[i].nombre`` (a format the repositorio refuses).
    """
    if not anexos:
        return []
    if len(anexos) > MAX_ANEXOS:
        raise Unprocessable(
            f"Un asiento lleva como máximo {MAX_ANEXOS} anexos.",
            errors=[FieldError("anexos", f"máximo {MAX_ANEXOS}")],
        )
    contenidos = _decode(anexos, limites or Limites())
    leidos: list[AnexoRead] = []
    errors: list[FieldError] = []
    for n, (anexo, contenido) in enumerate(zip(anexos, contenidos, strict=True)):
        try:
            mime = resolver_mime(anexo.tipo_mime, anexo.nombre, contenido)
        except ValueError as exc:
            campo = "tipo_mime" if anexo.tipo_mime is not None else "nombre"
            errors.append(FieldError(f"anexos[{n}].{campo}", str(exc)))
            continue
        leidos.append(
            AnexoRead(
                identificador_fichero=identificador_fichero(numero, n + 1, anexo.nombre),
                documento_id=str(uuid.uuid4()),
                version=1,
                nombre=anexo.nombre,
                tipo_mime=mime,
                tamano=len(contenido),
                sha256=hashlib.sha256(contenido).hexdigest(),
                validez=anexo.validez,
                tipo_documento=anexo.tipo_documento,
                observaciones=anexo.observaciones,
                firma=anexo.firma,
                sello_tiempo=anexo.sello_tiempo,
            )
        )
    if errors:
        campos = ", ".join(e["field"] for e in errors)
        raise Unprocessable(f"Datos no válidos: {campos}", errors=errors)
    organo = await _organo(uow)
    for leido, contenido in zip(leidos, contenidos, strict=True):
        _almacenar(
            uow,
            anexo=leido,
            contenido=contenido,
            organo=organo,
            tipo=tipo,
            asiento_id=asiento_id,
            numero=numero,
        )
    return leidos


def _codigo(enum: type[Validez] | type[TipoDocumentoAnexo], value: str | None, campo: str) -> Any:
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        raise Unprocessable(
            "El intercambio no se puede registrar como asiento: recházelo con un motivo.",
            errors=[FieldError(campo, f"código SICRES desconocido: {value!r}")],
        ) from None


def _b64(value: bytes | str | None) -> str | None:
    if value is None or value == b"" or value == "":
        return None
    if isinstance(value, str):
        return "".join(value.split()) or None
    return base64.b64encode(value).decode("ascii")


async def guardar_anexos_recibidos(
    uow: UnitOfWork,
    *,
    asiento_id: str,
    numero: str,
    anexos: Sequence[AnexoSicres],
    limites: Limites | None = None,
) -> list[AnexoRead]:
    """The anexos of an accepted exchange, recorded on its new entrada.

    Those that came with their content are stored in the repositorio like any other
    (same command; their Hash was checked on reception). Those that came without it
    are recorded flagged ``sin_contenido``, with no documento; their Hash is kept as
    the sha256 when it is one, and as it came otherwise, to pass it on.
    """
    limites = limites or Limites()
    organo: str | None = None
    leidos: list[AnexoRead] = []
    vistos: set[str] = set()
    for n, anexo in enumerate(anexos):
        campo = f"De_Anexo[{anexo.identificador_fichero}]"
        identificador = anexo.identificador_fichero
        if identificador in vistos or len(identificador) > 50:
            identificador = identificador_fichero(numero, n + 1, anexo.nombre_fichero)
        vistos.add(identificador)
        comun: dict[str, Any] = {
            "identificador_fichero": identificador,
            "nombre": anexo.nombre_fichero,
            "validez": _codigo(Validez, anexo.validez, campo),
            "tipo_documento": _codigo(TipoDocumentoAnexo, anexo.tipo_documento, campo),
            "observaciones": anexo.observaciones,
            "firma": _b64(anexo.firma),
            "sello_tiempo": _b64(anexo.sello_tiempo),
            "identificador_documento_firmado": anexo.identificador_documento_firmado,
        }
        contenido = anexo.contenido
        if contenido is None:
            sha256 = sha256_de_hash(anexo.hash)
            leidos.append(
                AnexoRead(
                    **comun,
                    documento_id=None,
                    version=None,
                    tipo_mime=anexo.tipo_mime,
                    tamano=None,
                    sha256=sha256,
                    hash_origen=None if sha256 is not None else anexo.hash,
                    sin_contenido=True,
                )
            )
            continue
        if len(contenido) > limites.max_anexo_bytes:
            raise Unprocessable(
                "El intercambio no se puede registrar como asiento: recházelo con un motivo.",
                errors=[FieldError(campo, f"supera el máximo de {limites.max_anexo_bytes} bytes")],
            )
        try:
            mime = resolver_mime(anexo.tipo_mime, anexo.nombre_fichero, contenido)
        except ValueError as exc:
            raise Unprocessable(
                "El intercambio no se puede registrar como asiento: recházelo con un motivo.",
                errors=[FieldError(campo, str(exc))],
            ) from None
        leido = AnexoRead(
            **comun,
            documento_id=str(uuid.uuid4()),
            version=1,
            tipo_mime=mime,
            tamano=len(contenido),
            sha256=hashlib.sha256(contenido).hexdigest(),
        )
        organo = organo or await _organo(uow)
        _almacenar(
            uow,
            anexo=leido,
            contenido=contenido,
            organo=organo,
            tipo=TipoAsiento.ENTRADA,
            asiento_id=asiento_id,
            numero=numero,
        )
        leidos.append(leido)
    return leidos


# --- the request body ------------------------------------------------------------------------

"""Pure rules of the registro: numbers, identifiers, dates. No I/O, no framework."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum

from stdnum.es import cif, nie, nif
from stdnum.exceptions import InvalidChecksum, InvalidLength
from stdnum.exceptions import ValidationError as StdnumError

from services.common.timezones import tenant_timezone

__all__ = [
    "Canal",
    "CanalPreferente",
    "DocumentacionFisica",
    "TipoAsiento",
    "TipoIdentificador",
    "TipoTransporte",
    "anio_registral",
    "canal_preferente_incompleto",
    "format_numero",
    "normalize_identificador",
    "serie_de",
    "solicitud_id",
    "uuid_or_none",
    "validate_codigo_registral",
    "validate_dir3",
]

_DIR3 = re.compile(r"^[A-Z][A-Z0-9]{8}$")
_CODIGO_REGISTRAL = re.compile(r"^[A-Z0-9]{1,21}$")
_PASAPORTE = re.compile(r"^[A-Z0-9]{3,20}$")


class TipoAsiento(StrEnum):
    """Which book the asiento belongs to."""

    ENTRADA = "entrada"
    SALIDA = "salida"

    @property
    def letra(self) -> str:
        return "E" if self is TipoAsiento.ENTRADA else "S"


class TipoIdentificador(StrEnum):
    """How an interesado is identified."""

    NIF = "NIF"
    NIE = "NIE"
    CIF = "CIF"
    PASAPORTE = "PASAPORTE"


class Canal(StrEnum):
    """How the asiento came in: at an office desk, or through the sede electrónica."""

    PRESENCIAL = "presencial"
    ELECTRONICO = "electronico"


class CanalPreferente(StrEnum):
    """How an interesado wants to be notified (SICRES Canal_Preferente_Comunicacion)."""

    DIRECCION_POSTAL = "01"
    DEH = "02"
    COMPARECENCIA_ELECTRONICA = "03"


class TipoTransporte(StrEnum):
    """How paper came to the office (SICRES Tipo_Transporte_Entrada)."""

    MENSAJERIA = "01"
    CORREO_POSTAL = "02"
    CORREO_CERTIFICADO = "03"
    BUROFAX = "04"
    EN_MANO = "05"
    FAX = "06"
    OTROS = "07"


class DocumentacionFisica(StrEnum):
    """Whether paper goes with the asiento (SICRES Documentacion_Fisica)."""

    REQUERIDA = "1"
    COMPLEMENTARIA = "2"
    NINGUNA = "3"


def canal_preferente_incompleto(
    canal: CanalPreferente | None,
    *,
    direccion: str | None,
    codigo_postal: str | None,
    deh: str | None,
) -> str | None:
    """Why the chosen notification channel cannot be used with the data given, or None.

    A postal channel needs somewhere to post to; a DEH channel needs the DEH.
    """
    if canal is CanalPreferente.DIRECCION_POSTAL and not (direccion and codigo_postal):
        return "el canal 01 (dirección postal) necesita direccion y codigo_postal"
    if canal is CanalPreferente.DEH and not deh:
        return "el canal 02 (dirección electrónica habilitada) necesita deh"
    return None


def serie_de(tipo: TipoAsiento) -> str:
    """The counter series of a book: entrada and salida number independently."""
    return f"asiento-{tipo.value}"


def format_numero(tipo: TipoAsiento, anio: int, secuencia: int) -> str:
    """Human number of an asiento, e.g. ``E/2026/000001``."""
    if secuencia < 1:
        raise ValueError("la secuencia empieza en 1")
    return f"{tipo.letra}/{anio:04d}/{secuencia:06d}"


def anio_registral(fecha_registro: datetime, ine_code: str) -> int:
    """The register year is the entity's local year at the moment of registration."""
    if fecha_registro.tzinfo is None:
        raise ValueError("la fecha de registro debe llevar zona horaria")
    return fecha_registro.astimezone(tenant_timezone(ine_code)).year


def normalize_identificador(tipo: TipoIdentificador, valor: str) -> str:
    """Validates and normalises an identifier; raises ValueError with a clear message."""
    compact = re.sub(r"[\s.\-/]", "", valor).upper()
    try:
        if tipo is TipoIdentificador.NIF:
            if compact[:1] in ("X", "Y", "Z"):
                raise ValueError("NIF no válido: empieza por X, Y o Z, es un NIE")
            return str(nif.validate(compact))
        if tipo is TipoIdentificador.NIE:
            return str(nie.validate(compact))
        if tipo is TipoIdentificador.CIF:
            return str(cif.validate(compact))
    except InvalidChecksum as exc:
        raise ValueError(f"{tipo.value} no válido: la letra o cifra de control no cuadra") from exc
    except InvalidLength as exc:
        raise ValueError(f"{tipo.value} no válido: longitud incorrecta") from exc
    except StdnumError as exc:
        raise ValueError(f"{tipo.value} no válido: formato incorrecto") from exc
    if not _PASAPORTE.match(compact):
        raise ValueError("PASAPORTE no válido: de 3 a 20 letras o cifras")
    return compact


def validate_dir3(code: str) -> str:
    """A DIR3 unit code: a letter and eight letters or digits (e.g. ``L01030149``)."""
    normalized = code.strip().upper()
    if not _DIR3.match(normalized):
        raise ValueError("código DIR3 no válido: una letra y ocho letras o cifras")
    return normalized


def validate_codigo_registral(code: str) -> str:
    """A code of the SICRES network (entidad registral, unidad): up to 21 letters or digits."""
    normalized = code.strip().upper()
    if not _CODIGO_REGISTRAL.match(normalized):
        raise ValueError("código no válido: de 1 a 21 letras o cifras")
    return normalized


# --- requests to other services about an asiento -----------------------------------------------


def solicitud_id(espacio: uuid.UUID, asiento_id: str, intento: int = 1) -> str:
    """The id of the ``intento``-th request about an asiento, in a feature's ``espacio``.

    The same attempt always gets the same id, so the consumer and a staff retry racing
    for it send one request; a new attempt after a failure (2, 3, ...) gets a new id, so
    a late answer to the failed one is told apart from the answer to the new one.
    """
    if intento < 1:
        raise ValueError("el intento empieza en 1")
    return str(uuid.uuid5(espacio, f"{asiento_id}/{intento}"))


def uuid_or_none(value: object) -> str | None:
    """A uuid from another service's event, or None: a bad id must not fail the query."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None

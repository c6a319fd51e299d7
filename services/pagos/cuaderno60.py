"""Cuaderno 60 of the AEB/CSB (Norma 60): references, check digits and barcode of a carta de pago.

A council collects through the banks (entidades colaboradoras) with the data a
carta de pago prints: the *emisora* (the council's six-digit code given by the
banks), a *referencia* of ten digits plus two check digits, an *identificación*
and the *importe*. The bank reads them from the barcode or types them, checks the
digits, takes the money and answers with an NRC (Número de Referencia Completo).

Check digits (both modalidades, as the norm states them)::

    N   = emisora·76 + referencia·9 + (identificación + importe − 1)·55
    dc  = 99 − (first two decimals of N / 97), and 99 when that gives 0

"the first two decimals of N/97" is ⌊(N mod 97)·100 / 97⌋, computed here in
integers so no rounding of a float can change a digit. The importe is in cents.

Modalidad 1 (recibos, formato ``502``): identificación of seven digits, tributo
(3), ejercicio (2) and remesa (2); its barcode is 38 digits, ``90502``, emisora,
referencia, identificación and the importe in eight digits, with no digit after it.
Modalidad 2 (liquidaciones and autoliquidaciones, formato ``521``): identificación
of ten digits, ``1`` (the discriminante of a single payment period), tributo (3),
ejercicio (2), the last digit of the year of the fecha límite and its day of the
year (3); its barcode is 42 digits, ``90521``, emisora, referencia, identificación,
the importe in eight digits and a final ``0`` (the parity digit the norm keeps). Both
are printed as GS1-128, the ``90`` being its application identifier for internally
agreed data. docs/pagos.md names the public sources these layouts were checked
against, and where they leave room for doubt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

__all__ = [
    "LONGITUD_REGISTRO",
    "DatosCuaderno60",
    "FicheroCobros",
    "FicheroNoValido",
    "LineaCobro",
    "ReferenciaNoValida",
    "codigo_barras",
    "digitos_control",
    "identificacion_modalidad1",
    "identificacion_modalidad2",
    "leer_fichero_cobros",
    "liquidacion_modalidad2",
    "validar_emisora",
]

_SEIS_DIGITOS = re.compile(r"^\d{6}$")
# The importe has eight digits (cents) in the barcode of both modalidades.
_ANCHO_IMPORTE = 8
_FORMATO = {1: "90502", 2: "90521"}
# What follows the importe: modalidad 2 keeps a parity digit, always 0; modalidad 1 ends there.
_COLA = {1: "", 2: "0"}
_LONGITUD_CODIGO = {1: 38, 2: 42}


class ReferenciaNoValida(ValueError):
    """Data that cannot make a Cuaderno 60 reference (wrong length, amount too large...)."""


@dataclass(frozen=True)
class DatosCuaderno60:
    """What a carta de pago prints for the bank: all digit strings, as the norm lays them out."""

    modalidad: int
    emisora: str
    referencia: str  # ten digits and the two check digits
    identificacion: str
    importe_centimos: int

    @property
    def digitos_control(self) -> str:
        return self.referencia[-2:]

    @property
    def codigo_barras(self) -> str:
        return codigo_barras(self)


def validar_emisora(emisora: str) -> str:
    """The emisora as six digits, or :class:`ReferenciaNoValida`."""
    if not _SEIS_DIGITOS.match(emisora):
        raise ReferenciaNoValida("la emisora son seis dígitos")
    return emisora


def digitos_control(emisora: str, referencia: str, identificacion: str, importe: int) -> str:
    """The two check digits of a ten-digit referencia (the norm's formula, in integers)."""
    if not re.fullmatch(r"\d{10}", referencia):
        raise ReferenciaNoValida("la referencia (sin dígitos de control) son diez dígitos")
    if not identificacion.isdigit():
        raise ReferenciaNoValida("la identificación son dígitos")
    if importe < 0:
        raise ReferenciaNoValida("el importe no puede ser negativo")
    n = int(validar_emisora(emisora)) * 76 + int(referencia) * 9
    n += (int(identificacion) + importe - 1) * 55
    decimales = (n % 97) * 100 // 97
    dc = 99 - decimales
    return f"{dc if dc else 99:02d}"


def identificacion_modalidad1(tributo: str, ejercicio: int, remesa: int) -> str:
    """Seven digits: tributo (3), last two digits of the ejercicio, remesa (2)."""
    if not re.fullmatch(r"\d{3}", tributo) or not 0 <= remesa <= 99:
        raise ReferenciaNoValida("tributo de tres dígitos y remesa de dos")
    return f"{tributo}{ejercicio % 100:02d}{remesa:02d}"


def identificacion_modalidad2(tributo: str, ejercicio: int, fecha_limite: date) -> str:
    """Ten digits: ``1``, tributo (3), ejercicio (2), year digit and day of year of the límite."""
    if not re.fullmatch(r"\d{3}", tributo):
        raise ReferenciaNoValida("el tributo son tres dígitos")
    dia = fecha_limite.timetuple().tm_yday
    return f"1{tributo}{ejercicio % 100:02d}{fecha_limite.year % 10}{dia:03d}"


def liquidacion_modalidad2(
    *, emisora: str, numero: int, tributo: str, ejercicio: int, fecha_limite: date, importe: int
) -> DatosCuaderno60:
    """The Cuaderno 60 data of a liquidación: its number as the referencia, modalidad 2."""
    if not 0 < numero < 10**10:
        raise ReferenciaNoValida("el número de la liquidación no cabe en diez dígitos")
    if importe >= 10**_ANCHO_IMPORTE:
        raise ReferenciaNoValida("el importe no cabe en el código de barras de la modalidad 2")
    base = f"{numero:010d}"
    identificacion = identificacion_modalidad2(tributo, ejercicio, fecha_limite)
    dc = digitos_control(emisora, base, identificacion, importe)
    return DatosCuaderno60(2, emisora, base + dc, identificacion, importe)


def codigo_barras(datos: DatosCuaderno60) -> str:
    """The digits of the GS1-128 barcode (formato, emisora, referencia, identificación, importe)."""
    if datos.importe_centimos >= 10**_ANCHO_IMPORTE:
        raise ReferenciaNoValida("el importe no cabe en el código de barras")
    codigo = (
        f"{_FORMATO[datos.modalidad]}{datos.emisora}{datos.referencia}"
        f"{datos.identificacion}{datos.importe_centimos:0{_ANCHO_IMPORTE}d}{_COLA[datos.modalidad]}"
    )
    if len(codigo) != _LONGITUD_CODIGO[datos.modalidad]:
        raise ReferenciaNoValida(
            f"el código de barras de la modalidad {datos.modalidad} tiene "
            f"{_LONGITUD_CODIGO[datos.modalidad]} dígitos"
        )
    return codigo


# --- the bank's cobros file ---------------------------------------------------------------
#
# Records of 120 characters, one per line, as the collaborating bank sends them:
#
#   01 cabecera   01 | emisora (6) | fecha de creación AAAAMMDD (8) | relleno
#   02 detalle    02 | emisora (6) | entidad (4) | oficina (4) | fecha de cobro AAAAMMDD (8)
#                 | referencia (12) | identificación (10) | importe en céntimos (10)
#                 | NRC (22) | relleno
#   03 totales    03 | emisora (6) | número de detalles (8) | importe total en céntimos (14)
#                 | relleno
#
# The NRC (Número de Referencia Completo, 22 characters) is the bank's proof of each
# payment and what makes a line unique.

LONGITUD_REGISTRO = 120


@dataclass(frozen=True)
class LineaCobro:
    """One payment the bank collected (a detail record)."""

    linea: int
    emisora: str
    entidad: str
    oficina: str
    fecha_cobro: date
    referencia: str
    identificacion: str
    importe_centimos: int
    nrc: str


@dataclass(frozen=True)
class FicheroCobros:
    """A parsed cobros file: its payments, and the lines that could not be read."""

    cobros: list[LineaCobro]
    errores: list[tuple[int, str]]


class FicheroNoValido(ValueError):
    """A file whose structure (header, totals) does not hold: nothing in it is applied."""


def _fecha(texto: str) -> date:
    return date(int(texto[:4]), int(texto[4:6]), int(texto[6:8]))


def leer_fichero_cobros(texto: str) -> FicheroCobros:
    """Parses the bank's file; a line that cannot be read is reported, the totals must agree."""
    cobros: list[LineaCobro] = []
    errores: list[tuple[int, str]] = []
    totales: tuple[int, int] | None = None
    cabeceras = 0
    for numero, bruta in enumerate(texto.splitlines(), start=1):
        linea = bruta.rstrip("\r\n")
        if not linea.strip():
            continue
        if len(linea.rstrip()) > LONGITUD_REGISTRO:
            errores.append((numero, f"registro de más de {LONGITUD_REGISTRO} caracteres"))
            continue
        linea = linea.ljust(LONGITUD_REGISTRO)
        tipo = linea[:2]
        if tipo == "01":
            cabeceras += 1
            continue
        if tipo == "03":
            if not (linea[8:16].isdigit() and linea[16:30].isdigit()):
                raise FicheroNoValido(f"línea {numero}: registro de totales mal formado")
            totales = (int(linea[8:16]), int(linea[16:30]))
            continue
        if tipo != "02":
            errores.append((numero, f"tipo de registro desconocido {tipo!r}"))
            continue
        campos = {
            "emisora": linea[2:8],
            "entidad": linea[8:12],
            "oficina": linea[12:16],
            "fecha": linea[16:24],
            "referencia": linea[24:36],
            "identificacion": linea[36:46],
            "importe": linea[46:56],
        }
        malos = [nombre for nombre, valor in campos.items() if not valor.isdigit()]
        nrc = linea[56:78].strip()
        if malos or len(nrc) != 22 or not nrc.isalnum():
            errores.append((numero, "campos no válidos: " + ", ".join(malos or ["nrc"])))
            continue
        try:
            fecha = _fecha(campos["fecha"])
        except ValueError:
            errores.append((numero, "fecha de cobro no válida"))
            continue
        cobros.append(
            LineaCobro(
                linea=numero,
                emisora=campos["emisora"],
                entidad=campos["entidad"],
                oficina=campos["oficina"],
                fecha_cobro=fecha,
                referencia=campos["referencia"],
                identificacion=campos["identificacion"],
                importe_centimos=int(campos["importe"]),
                nrc=nrc,
            )
        )
    if cabeceras != 1:
        raise FicheroNoValido("el fichero debe tener un registro de cabecera (01)")
    if totales is None:
        raise FicheroNoValido("el fichero no tiene registro de totales (03)")
    leidos = len(cobros) + sum(1 for _, motivo in errores if motivo.startswith("campos"))
    leidos += sum(1 for _, motivo in errores if motivo.startswith("fecha"))
    if totales[0] != leidos:
        raise FicheroNoValido(
            f"el registro de totales dice {totales[0]} cobros y el fichero trae {leidos}"
        )
    if not any(m.startswith(("campos", "fecha")) for _, m in errores):
        suma = sum(c.importe_centimos for c in cobros)
        if totales[1] != suma:
            raise FicheroNoValido(
                f"el importe total ({totales[1]}) no es la suma de los cobros ({suma})"
            )
    return FicheroCobros(cobros, errores)

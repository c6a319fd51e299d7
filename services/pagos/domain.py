"""The rules of a liquidación: its states, and the ordenanza rules of an autoliquidación.

A liquidación is a debt the council notifies (or a citizen declares): an amount
in cents, an obligado, a concepto, a due date. Its states::

    pendiente ──► pagada ──► devuelta      (refunded)
        │
        ├──────► vencida ──► pagada        (paid late at the bank still counts)
        └──────► anulada

An ordenanza fiscal fixes how a fee is computed; each concepto's rule is one of
``fija`` (an amount), ``por_unidad`` (a price times the declared units) or
``porcentaje`` (a rate of a declared base, between a minimum and a maximum).
Exemptions (``exenciones``) and bonuses (``bonificaciones``) are rules too: a
condition on the declared data, and for a bonus the percentage it takes off.
Every step is kept in a breakdown, so the citizen sees why the amount is what it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from stdnum.es import cif, nie, nif
from stdnum.exceptions import ValidationError as StdnumError

from services.pagos.dinero import a_centimos, a_euros, redondear

__all__ = [
    "TRANSICIONES",
    "Bonificacion",
    "Calculo",
    "Condicion",
    "Estado",
    "Exencion",
    "ReglaConcepto",
    "ReglaNoAplicable",
    "ImporteSinFijar",
    "calcular",
    "importe_requerido",
    "normalizar_identificador",
    "puede_pasar",
    "tipo_de_identificador",
]


class Estado:
    """The states of a liquidación (the column ``estado``)."""

    PENDIENTE = "pendiente"
    PAGADA = "pagada"
    VENCIDA = "vencida"
    ANULADA = "anulada"
    DEVUELTA = "devuelta"
    TODOS = (PENDIENTE, PAGADA, VENCIDA, ANULADA, DEVUELTA)


TRANSICIONES: dict[str, frozenset[str]] = {
    Estado.PENDIENTE: frozenset({Estado.PAGADA, Estado.VENCIDA, Estado.ANULADA}),
    # A bank may still collect an expired carta de pago; the money is the council's.
    Estado.VENCIDA: frozenset({Estado.PAGADA, Estado.ANULADA}),
    Estado.PAGADA: frozenset({Estado.DEVUELTA}),
    Estado.ANULADA: frozenset(),
    Estado.DEVUELTA: frozenset(),
}


def puede_pasar(desde: str, hasta: str) -> bool:
    """Whether a liquidación in ``desde`` may move to ``hasta``."""
    return hasta in TRANSICIONES.get(desde, frozenset())


class ReglaNoAplicable(ValueError):
    """The declared data do not fit the concepto's rule (a missing base, negative units...)."""

    def __init__(self, campo: str, motivo: str) -> None:
        super().__init__(f"{campo}: {motivo}")
        self.campo = campo
        self.motivo = motivo


Operador = Literal["igual", "distinto", "menor", "menor_igual", "mayor", "mayor_igual"]


@dataclass(frozen=True)
class Condicion:
    """A test on one declared datum: ``{"dato": "familia_numerosa", "igual": true}``."""

    dato: str
    operador: Operador
    valor: Any

    def se_cumple(self, declarados: Mapping[str, Any]) -> bool:
        if self.dato not in declarados:
            return False
        actual = declarados[self.dato]
        if self.operador == "igual":
            return bool(_comparable(actual) == _comparable(self.valor))
        if self.operador == "distinto":
            return bool(_comparable(actual) != _comparable(self.valor))
        a, b = _numero(self.dato, actual), _numero(self.dato, self.valor)
        return {
            "menor": a < b,
            "menor_igual": a <= b,
            "mayor": a > b,
            "mayor_igual": a >= b,
        }[self.operador]


def _comparable(valor: Any) -> Any:
    if isinstance(valor, bool) or valor is None:
        return valor
    if isinstance(valor, int | Decimal):
        return Decimal(valor)
    if isinstance(valor, str):
        try:
            return Decimal(valor)
        except ArithmeticError:
            return valor
    return valor


def _numero(dato: str, valor: Any) -> Decimal:
    if isinstance(valor, bool | float):
        raise ReglaNoAplicable(dato, "se esperaba un número decimal en texto o entero")
    try:
        return Decimal(str(valor))
    except ArithmeticError as exc:
        raise ReglaNoAplicable(dato, f"{valor!r} no es un número") from exc


@dataclass(frozen=True)
class Exencion:
    """Nothing is due when its conditions all hold (e.g. the State's own buildings)."""

    motivo: str
    condiciones: tuple[Condicion, ...]


@dataclass(frozen=True)
class Bonificacion:
    """A percentage off the cuota when its conditions all hold (e.g. familia numerosa)."""

    motivo: str
    porcentaje: Decimal
    condiciones: tuple[Condicion, ...]


@dataclass(frozen=True)
class ReglaConcepto:
    """How the ordenanza computes one concepto's cuota."""

    tipo: Literal["fija", "por_unidad", "porcentaje"]
    importe: Decimal | None = None  # fija
    precio_unidad: Decimal | None = None  # por_unidad
    porcentaje: Decimal | None = None  # porcentaje of the base
    minimo: Decimal | None = None
    maximo: Decimal | None = None
    exenciones: tuple[Exencion, ...] = ()
    bonificaciones: tuple[Bonificacion, ...] = ()


@dataclass(frozen=True)
class Calculo:
    """The outcome of applying a rule: the amount in cents and each step that led to it."""

    importe_centimos: int
    exenta: bool
    desglose: list[dict[str, str]] = field(default_factory=list)

    @property
    def importe(self) -> Decimal:
        return a_euros(self.importe_centimos)


def _todas(condiciones: tuple[Condicion, ...], declarados: Mapping[str, Any]) -> bool:
    return all(c.se_cumple(declarados) for c in condiciones)


def _cuota(
    regla: ReglaConcepto, declarados: Mapping[str, Any], pasos: list[dict[str, str]]
) -> Decimal:
    if regla.tipo == "fija":
        assert regla.importe is not None
        pasos.append({"paso": "cuota fija", "importe": str(regla.importe)})
        return regla.importe
    if regla.tipo == "por_unidad":
        assert regla.precio_unidad is not None
        if "unidades" not in declarados:
            raise ReglaNoAplicable("unidades", "el concepto se liquida por unidades: declárelas")
        unidades = _numero("unidades", declarados["unidades"])
        if unidades < 0:
            raise ReglaNoAplicable("unidades", "no pueden ser negativas")
        cuota = redondear(unidades * regla.precio_unidad)
        pasos.append(
            {
                "paso": "por unidad",
                "detalle": f"{unidades} × {regla.precio_unidad} €",
                "importe": str(cuota),
            }
        )
    else:
        assert regla.porcentaje is not None
        if "base" not in declarados:
            raise ReglaNoAplicable("base", "el concepto es un porcentaje de la base: declárela")
        base = _numero("base", declarados["base"])
        if base < 0:
            raise ReglaNoAplicable("base", "no puede ser negativa")
        cuota = redondear(base * regla.porcentaje / 100)
        pasos.append(
            {
                "paso": "porcentaje de la base",
                "detalle": f"{regla.porcentaje} % de {base} €",
                "importe": str(cuota),
            }
        )
    if regla.minimo is not None and cuota < regla.minimo:
        cuota = regla.minimo
        pasos.append({"paso": "mínimo de la ordenanza", "importe": str(cuota)})
    if regla.maximo is not None and cuota > regla.maximo:
        cuota = regla.maximo
        pasos.append({"paso": "máximo de la ordenanza", "importe": str(cuota)})
    return cuota


def calcular(regla: ReglaConcepto, declarados: Mapping[str, Any]) -> Calculo:
    """Applies the ordenanza's rule to what the citizen declared."""
    for exencion in regla.exenciones:
        if _todas(exencion.condiciones, declarados):
            return Calculo(
                0, True, [{"paso": "exención", "detalle": exencion.motivo, "importe": "0.00"}]
            )
    pasos: list[dict[str, str]] = []
    cuota = _cuota(regla, declarados, pasos)
    # Bonuses do not compound: their percentages add up, to at most the whole cuota.
    porcentaje = Decimal(0)
    for bonificacion in regla.bonificaciones:
        if _todas(bonificacion.condiciones, declarados):
            porcentaje += bonificacion.porcentaje
            pasos.append(
                {
                    "paso": "bonificación",
                    "detalle": f"{bonificacion.motivo}: {bonificacion.porcentaje} %",
                }
            )
    porcentaje = min(porcentaje, Decimal(100))
    if porcentaje:
        descuento = redondear(cuota * porcentaje / 100)
        cuota -= descuento
        pasos.append({"paso": "total bonificado", "importe": f"-{descuento}"})
    pasos.append({"paso": "a ingresar", "importe": str(cuota)})
    return Calculo(a_centimos(cuota), False, pasos)


_PASAPORTE = re.compile(r"^[A-Z0-9]{3,20}$")


def normalizar_identificador(tipo: str, valor: str) -> str:
    """An obligado's identity number checked (NIF, NIE, CIF by their control character)."""
    compacto = re.sub(r"[\s.\-/]", "", valor).upper()
    validadores = {"NIF": nif.validate, "NIE": nie.validate, "CIF": cif.validate}
    if tipo in validadores:
        if tipo == "NIF" and compacto[:1] in ("X", "Y", "Z"):
            raise ValueError("NIF no válido: empieza por X, Y o Z, es un NIE")
        try:
            return str(validadores[tipo](compacto))
        except StdnumError as exc:
            raise ValueError(f"{tipo} no válido: {exc}") from exc
    if not _PASAPORTE.match(compacto):
        raise ValueError("PASAPORTE no válido: de 3 a 20 letras o cifras")
    return compacto


def tipo_de_identificador(valor: str) -> Literal["NIF", "NIE"]:
    """The kind of a NIF claim of a citizen's token (NIE when it starts with X, Y or Z)."""
    return "NIE" if valor[:1] in ("X", "Y", "Z") else "NIF"


class ImporteSinFijar(ValueError):
    """A fee the tramitador asked for without an amount: it must be assessed, not charged."""

    def __init__(self, concepto: str) -> None:
        super().__init__(
            f"el concepto {concepto} no tiene importe fijo: hay que liquidarlo, "
            "no puede cobrarse por comando"
        )
        self.concepto = concepto


def importe_requerido(conceptos: list[dict[str, Any]]) -> int:
    """Whole cents of the fees of a ``pago.requerir`` command: the sum of their importes.

    A concepto whose importe is null must be assessed by staff (a tasa on a base, an
    ICIO...), so the whole command is refused rather than charging part of it.
    """
    total = 0
    for concepto in conceptos:
        if concepto.get("importe") is None:
            raise ImporteSinFijar(str(concepto.get("concepto")))
        total += a_centimos(concepto["importe"])
    return total

"""Procedure definitions: the JSON Schema they follow, the rules between their parts,
and the life cycle of a version (borrador → publicado → retirado). Pure, no I/O."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator

__all__ = [
    "Definicion",
    "DefinicionInvalida",
    "EstadoVersion",
    "Problema",
    "definiciones_incluidas",
    "leer_yaml",
    "validar",
]

_PACKAGE = "services.tramitador.procedimientos"
# Actions that stay in the phase they are taken from (no ``hacia``).
_SIN_DESTINO = {"solicitar-informe", "emitir-informe", "ampliar-plazo"}
_CON_SENTIDO = {"emitir-informe", "proponer", "resolver"}


class EstadoVersion(StrEnum):
    """A version is drafted, then published (immutable, usable) and at last retired."""

    BORRADOR = "borrador"
    PUBLICADO = "publicado"
    RETIRADO = "retirado"


_TRANSICIONES = {
    EstadoVersion.BORRADOR: {EstadoVersion.PUBLICADO},
    EstadoVersion.PUBLICADO: {EstadoVersion.RETIRADO},
    EstadoVersion.RETIRADO: set(),
}


def puede_pasar(desde: EstadoVersion, hacia: EstadoVersion) -> bool:
    """Whether a version in ``desde`` may move to ``hacia``."""
    return hacia in _TRANSICIONES[desde]


@dataclass(frozen=True)
class Problema:
    """One fault of a definition: where (a path such as ``flujo.fases[2].codigo``) and why."""

    ruta: str
    mensaje: str


class DefinicionInvalida(ValueError):
    """A definition that breaks its schema or its own references."""

    def __init__(self, problemas: list[Problema]) -> None:
        super().__init__("; ".join(f"{p.ruta}: {p.mensaje}" for p in problemas))
        self.problemas = problemas


@cache
def esquema() -> dict[str, Any]:
    """The JSON Schema of a definition, shipped in the package."""
    text = resources.files(_PACKAGE).joinpath("procedimiento.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(esquema())


def _ruta(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(raíz)"


class _CargadorExacto(yaml.SafeLoader):
    """A safe YAML loader that reads a float as the Decimal its text says (``95.10`` stays
    95.10, never the binary float 95.09999…), so a fee written as a number converts exactly."""


_CargadorExacto.add_constructor(
    "tag:yaml.org,2002:float",
    lambda loader, node: Decimal(str(loader.construct_scalar(node)).replace("_", "")),  # type: ignore[arg-type]
)


def leer_yaml(texto: str) -> dict[str, Any]:
    """Parses a YAML definition; a syntax error or a non-mapping is a DefinicionInvalida."""
    try:
        data = _sin_decimales(yaml.load(texto, Loader=_CargadorExacto))  # noqa: S506 (safe loader)
    except yaml.YAMLError as exc:
        raise DefinicionInvalida([Problema("(yaml)", str(exc))]) from None
    if not isinstance(data, dict):
        raise DefinicionInvalida([Problema("(raíz)", "la definición debe ser un objeto")])
    return data


def _sin_decimales(valor: Any) -> Any:
    """Every Decimal the exact loader made, back to a float, except a fee's ``importe``
    (kept as Decimal for :func:`_importes_exactos`); JSON has no decimal type."""
    if isinstance(valor, dict):
        return {
            k: (v if k == "importe" and isinstance(v, Decimal) else _sin_decimales(v))
            for k, v in valor.items()
        }
    if isinstance(valor, list):
        return [_sin_decimales(v) for v in valor]
    return float(valor) if isinstance(valor, Decimal) else valor


def _importe_exacto(importe: Any) -> Any:
    """A fee given as a number, as the decimal string the schema asks for: an integer or a
    YAML decimal converts exactly; a JSON float by its shortest text (what was written).
    Anything else is left for the schema to refuse."""
    if isinstance(importe, bool) or not isinstance(importe, int | float | Decimal):
        return importe
    exacto = Decimal(repr(importe)) if isinstance(importe, float) else Decimal(importe)
    if exacto.is_finite() and abs(exacto) < 10**9:
        centimos = exacto.quantize(Decimal("0.01"))
        if centimos == exacto:
            return f"{centimos}"
    return str(exacto)  # more than two decimals or too large: the pattern refuses it


def _importes_exactos(data: dict[str, Any]) -> dict[str, Any]:
    """Fees written as numbers (older files, JSON clients) become decimal strings."""
    tasas = data.get("tasas")
    if not isinstance(tasas, list):
        return data
    convertidas = [
        {**t, "importe": _importe_exacto(t["importe"])}
        if isinstance(t, dict) and "importe" in t
        else t
        for t in tasas
    ]
    return {**data, "tasas": convertidas}


def validar(data: dict[str, Any]) -> Definicion:
    """Checks a definition against the JSON Schema, then its internal references. A fee's
    ``importe`` given as a number is first converted exactly to its decimal string."""
    data = _importes_exactos(data)
    problemas = [
        Problema(_ruta(e.absolute_path), e.message)
        for e in sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    ]
    if problemas:
        raise DefinicionInvalida(problemas)
    problemas = list(_referencias(data))
    if problemas:
        raise DefinicionInvalida(problemas)
    return Definicion(data)


def _duplicados(items: list[dict[str, Any]], ruta: str) -> Iterator[Problema]:
    vistos: set[str] = set()
    for i, item in enumerate(items):
        if item["codigo"] in vistos:
            yield Problema(f"{ruta}[{i}].codigo", f"código repetido: {item['codigo']}")
        vistos.add(item["codigo"])


def _referencias(data: dict[str, Any]) -> Iterator[Problema]:
    flujo = data["flujo"]
    fases = {f["codigo"] for f in flujo["fases"]}
    acciones = {a["codigo"]: a for a in flujo["acciones"]}
    plantillas = {p["codigo"] for p in data.get("plantillas", [])}
    yield from _duplicados(flujo["fases"], "flujo.fases")
    yield from _duplicados(flujo["acciones"], "flujo.acciones")
    if flujo["fase_inicial"] not in fases:
        yield Problema("flujo.fase_inicial", f"no existe la fase {flujo['fase_inicial']}")
    for i, fase in enumerate(flujo["fases"]):
        espera = fase.get("espera")
        if espera and espera["accion"] not in acciones:
            yield Problema(f"flujo.fases[{i}].espera.accion", f"no existe {espera['accion']}")
    for i, accion in enumerate(flujo["acciones"]):
        ruta = f"flujo.acciones[{i}]"
        for j, desde in enumerate(accion["desde"]):
            if desde not in fases:
                yield Problema(f"{ruta}.desde[{j}]", f"no existe la fase {desde}")
        hacia = accion.get("hacia")
        if hacia is None and accion["tipo"] not in _SIN_DESTINO:
            yield Problema(f"{ruta}.hacia", f"una acción {accion['tipo']} necesita fase destino")
        elif hacia is not None and hacia not in fases:
            yield Problema(f"{ruta}.hacia", f"no existe la fase {hacia}")
        if accion["tipo"] in _CON_SENTIDO and not accion.get("sentidos"):
            yield Problema(f"{ruta}.sentidos", f"una acción {accion['tipo']} necesita sentidos")
        if "al_vencer" in accion:
            siguiente = acciones.get(accion["al_vencer"])
            if siguiente is None:
                yield Problema(f"{ruta}.al_vencer", f"no existe la acción {accion['al_vencer']}")
            elif hacia is not None and hacia not in siguiente["desde"]:
                # At expiry the expediente is where this action left it: an action that
                # cannot be taken there would leave the expediente waiting for nothing.
                yield Problema(
                    f"{ruta}.al_vencer",
                    f"{accion['al_vencer']} no se puede realizar desde la fase {hacia}",
                )
            if "plazo" not in accion:
                yield Problema(f"{ruta}.plazo", "al_vencer necesita un plazo")
        elif accion["tipo"] == "abrir-audiencia":
            # Art. 82.2 and 82.4: once the plazo de audiencia ends, the procedure goes on
            # to the propuesta; the definition says by which action.
            yield Problema(f"{ruta}.al_vencer", "el trámite de audiencia necesita al_vencer")
        if accion["tipo"] == "resolver" and not accion.get("documento"):
            # Art. 40.1: the resolution is notified with its text; without a document the
            # notification could never be made and the expediente would wait for nothing.
            yield Problema(f"{ruta}.documento", "una resolución necesita su documento")
        if accion.get("documento") and accion["documento"] not in plantillas:
            yield Problema(f"{ruta}.documento", f"no existe la plantilla {accion['documento']}")


class Definicion:
    """A validated definition, with the look-ups the engine needs."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        flujo = data["flujo"]
        self.fases: dict[str, dict[str, Any]] = {f["codigo"]: f for f in flujo["fases"]}
        self.acciones: dict[str, dict[str, Any]] = {a["codigo"]: a for a in flujo["acciones"]}
        self.plantillas: dict[str, dict[str, Any]] = {
            p["codigo"]: p for p in data.get("plantillas", [])
        }

    @property
    def codigo(self) -> str:
        return str(self.data["codigo"])

    @property
    def nombre(self) -> str:
        return str(self.data["nombre"])

    @property
    def fase_inicial(self) -> str:
        return str(self.data["flujo"]["fase_inicial"])

    def acciones_desde(self, fase: str) -> list[dict[str, Any]]:
        """The actions that may leave or act within ``fase``, in definition order."""
        return [a for a in self.data["flujo"]["acciones"] if fase in a["desde"]]

    def con_cambios(self, cambios: dict[str, Any]) -> dict[str, Any]:
        """A copy of the definition with top-level overrides (a council's local changes)."""
        return {**self.data, **cambios}


@cache
@functools.cache
def definiciones_incluidas() -> tuple[Definicion, ...]:
    """The definitions the platform ships and seeds for every council, validated.

    Read once per process: they ship with the package. Parsing their YAML took a few
    hundred ms, and every expediente opened for a council not yet seeded paid it (all of
    a burst's first asientos at once). Callers copy ``data`` before changing it.
    """
    carpeta = resources.files(_PACKAGE).joinpath("definiciones")
    found = sorted((f for f in carpeta.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    return tuple(validar(leer_yaml(f.read_text("utf-8"))) for f in found)

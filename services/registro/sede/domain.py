"""What a citizen may present through the sede electrónica, as pure rules.

A citizen registers only as themselves or for somebody whose representante they are
(and the register must have that representation on record: service.py checks it).
What only happens at a desk (paper, couriers, forwarding another register's asiento)
has no place in an electronic presentation. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.registro.domain import DocumentacionFisica, TipoAsiento

if TYPE_CHECKING:  # the REST model is only a type here: the rules stay free of pydantic
    from services.registro.asientos.schemas import AsientoCreate

__all__ = ["Presentacion", "comprobar_presentacion"]


@dataclass(frozen=True)
class Presentacion:
    """The verdict on a citizen's asiento before the register is consulted.

    ``invalidos`` are fields a citizen cannot send (422); ``ajenos`` are interesados the
    citizen neither is nor represents (403); ``poderdantes`` maps each interesado the
    citizen says they represent to its position, to check against the representations.
    """

    invalidos: list[tuple[str, str]] = field(default_factory=list)
    ajenos: list[tuple[str, str]] = field(default_factory=list)
    poderdantes: dict[str, list[int]] = field(default_factory=dict)


def comprobar_presentacion(nif: str, data: AsientoCreate) -> Presentacion:
    """Checks an asiento a citizen identified by ``nif`` presents through the sede."""
    verdict = Presentacion()
    if data.tipo is not TipoAsiento.ENTRADA:
        verdict.invalidos.append(("tipo", "por la sede solo se presentan asientos de entrada"))
    if data.transporte is not None:
        verdict.invalidos.append(("transporte", "una presentación electrónica no se transporta"))
    if data.documentacion_fisica is not DocumentacionFisica.NINGUNA:
        verdict.invalidos.append(
            ("documentacion_fisica", "por la sede no se entrega documentación en papel (3)")
        )
    if data.origen is not None:
        verdict.invalidos.append(("origen", "solo una oficina reenvía asientos de otro registro"))
    for n, interesado in enumerate(data.interesados):
        if interesado.identificador == nif:
            continue
        representante = interesado.representante
        if representante is not None and representante.identificador == nif:
            verdict.poderdantes.setdefault(interesado.identificador, []).append(n)
            continue
        verdict.ajenos.append(
            (
                f"interesados[{n}]",
                "solo puede presentar en su propio nombre o como representante de este "
                "interesado (figurando usted como su representante)",
            )
        )
    return verdict

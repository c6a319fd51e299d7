"""Pure rules of an emisión: its states, the CSV as typed, the issued file's name. No I/O."""

from __future__ import annotations

import re
from enum import StrEnum

from services.repositorio.domain import _NOMBRE_MAX

# The CSV format of the platform: 25 symbols of an alphabet without 0, 1, I and O (they are
# misread in print) in five groups of five. Its check character is the csv service's
# business; a code of the right shape that was never issued is simply not found.
_CSV = re.compile(r"^[2-9A-HJ-NP-Z]{5}(-[2-9A-HJ-NP-Z]{5}){4}$")
# The same, as documented in OpenAPI: what normalizar_csv accepts (case, spaces around).
PATRON_CSV = r"^\s*[2-9A-HJ-NP-Za-hj-np-z]{5}(-[2-9A-HJ-NP-Za-hj-np-z]{5}){4}\s*$"


class EstadoEmision(StrEnum):
    """Where an emisión (issuing one version with a CSV and the seal) stands.

    ``pendiente``: the CSV was asked for. ``sellando``: the CSV is reserved, stamped
    on every page and the stamped PDF sent to the sellado (reserving and stamping
    commit together with the seal command, so no stored state sits between them).
    ``emitida`` and ``fallida`` are final.
    """

    PENDIENTE = "pendiente"
    SELLANDO = "sellando"
    EMITIDA = "emitida"
    FALLIDA = "fallida"

    @property
    def final(self) -> bool:
        """Whether nothing more will happen to the emisión."""
        return self in (EstadoEmision.EMITIDA, EstadoEmision.FALLIDA)


def normalizar_csv(value: str) -> str:
    """A Código Seguro de Verificación as people type it, in its canonical form.

    Surrounding spaces go and letters are upper-cased (printed codes are read
    aloud and typed in any case); anything else out of shape raises ValueError.
    """
    code = value.strip().upper()
    if not _CSV.match(code):
        raise ValueError(
            "código seguro de verificación no válido: cinco grupos de cinco letras o cifras "
            "separados por guiones (sin 0, 1, I ni O)"
        )
    return code


def nombre_pdf(nombre: str) -> str:
    """A file name that ends in ``.pdf``, as the seal command asks (``acta`` → ``acta.pdf``)."""
    if nombre.lower().endswith(".pdf"):
        return nombre
    return nombre[: _NOMBRE_MAX - 4] + ".pdf"

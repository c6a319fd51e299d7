"""Bus consumers of the registro: every feature's, gathered for the service app.

Built per app by :func:`consumers`, because the justificantes render in the process's
document workers.
"""

from __future__ import annotations

from services.common.cpu import CpuPool
from services.common.runtime import ConsumerSpec
from services.registro.justificantes import handlers as justificantes
from services.registro.sellos_tiempo.handlers import CONSUMERS as SELLOS_TIEMPO


def consumers(documents: CpuPool | None) -> tuple[ConsumerSpec, ...]:
    """Every consumer of the registro, the document ones rendering in ``documents``."""
    return (*justificantes.consumers(documents), *SELLOS_TIEMPO)

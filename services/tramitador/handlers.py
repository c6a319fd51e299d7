"""Bus consumers of the tramitador, gathered from its features.

Built per app by :func:`consumers`, because the expedientes' actions render their
documents in the process's document workers; ``CONSUMERS`` is the same list without
them (documents rendered in a thread), for the catalog.
"""

from __future__ import annotations

from services.common.cpu import CpuPool
from services.common.runtime import ConsumerSpec
from services.tramitador.documentos.handlers import CONSUMERS as DOCUMENTOS
from services.tramitador.eni.handlers import CONSUMERS as ENI
from services.tramitador.expedientes import handlers as expedientes

__all__ = ["CONSUMERS", "consumers"]


def consumers(documents: CpuPool | None) -> tuple[ConsumerSpec, ...]:
    """Every consumer of the tramitador, its documents rendered in ``documents``."""
    return (*expedientes.consumers(documents), *DOCUMENTOS, *ENI)


CONSUMERS = consumers(None)

"""Bus consumers of the tramitador, gathered from its features."""

from __future__ import annotations

from services.tramitador.documentos.handlers import CONSUMERS as DOCUMENTOS
from services.tramitador.eni.handlers import CONSUMERS as ENI
from services.tramitador.expedientes.handlers import CONSUMERS as EXPEDIENTES

__all__ = ["CONSUMERS"]

CONSUMERS = (*EXPEDIENTES, *DOCUMENTOS, *ENI)

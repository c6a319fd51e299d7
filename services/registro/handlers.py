"""Bus consumers of the registro: every feature's, gathered for the service catalogue."""

from __future__ import annotations

from services.registro.justificantes.handlers import CONSUMERS as JUSTIFICANTES
from services.registro.sellos_tiempo.handlers import CONSUMERS as SELLOS_TIEMPO

CONSUMERS = (*JUSTIFICANTES, *SELLOS_TIEMPO)

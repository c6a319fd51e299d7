"""Bus consumers of the tramitador, gathered from its features."""

from __future__ import annotations

from services.tramitador.expedientes.handlers import CONSUMERS

__all__ = ["CONSUMERS"]

"""Bus consumers of pagos: none yet (the tramitador's pago.requerir command comes later)."""

from __future__ import annotations

from services.common.runtime import ConsumerSpec

__all__ = ["CONSUMERS"]

CONSUMERS: tuple[ConsumerSpec, ...] = ()

"""The legal time zone of a tenant (an entidad local keyed by its INE code).

Every service that shows or reads a local date needs it; the rule is the law's. No I/O.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

__all__ = ["tenant_timezone"]


_CANARIAS = ("35", "38")  # Las Palmas, Santa Cruz de Tenerife


def tenant_timezone(ine_code: str) -> ZoneInfo:
    """The legal time zone of an entity: Canarias keeps its own hour."""
    return ZoneInfo("Atlantic/Canary" if ine_code[:2] in _CANARIAS else "Europe/Madrid")

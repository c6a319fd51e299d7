"""Bus consumers of notificaciones.

None yet: the command ``tramitador.notificacion.solicitar.v1`` belongs to the
tramitador's contracts, and its consumer comes with them. Notifications are
created by staff over the API meanwhile.
"""

from __future__ import annotations

from services.common.runtime import ConsumerSpec

__all__ = ["CONSUMERS"]

CONSUMERS: tuple[ConsumerSpec, ...] = ()

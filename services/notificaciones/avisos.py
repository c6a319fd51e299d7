"""Sending the avisos of art. 41.6: at most once each, retried only when surely not sent.

An aviso row is created with its notification, in the same transaction (one per
channel: the unique key forbids a second). A sender then, in three steps:

1. **claims** it in a short transaction: ``pendiente`` → ``enviando``, attempt
   counted, under a per-tenant advisory lock that also enforces the tenant's
   rate (attempts in the last minute, across replicas);
2. **sends** it, outside any transaction;
3. **records** the outcome in another transaction: ``enviado``; or ``pendiente``
   again with a back-off when the failure was temporary (so certainly not sent)
   and attempts remain; or ``fallido`` with the reason.

The trade-off is at-most-once. If the sender dies between 2 and 3 the row stays
``enviando``; after ``plazo_incierto_segundos`` it becomes ``incierto``, visible to
staff, and is never sent again automatically: a lost aviso costs nothing legally
(art. 41.6: its absence does not invalidate the notification), while two avisos
would be noise the law does not ask for. Nothing here touches the notification:
a failed aviso never blocks it.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update

from services.common.periodic import PeriodicPass
from services.common.runtime import ServiceRuntime
from services.common.uow import Actor
from services.notificaciones.avisos_domain import (
    CanalAviso,
    EstadoAviso,
    FalloPermanente,
    FalloTemporal,
    espera,
    mensaje_email,
    mensaje_sms,
)
from services.notificaciones.canales import CanalEmail, CanalSms, Incierto
from services.notificaciones.clock import Clock
from services.notificaciones.models import AVISOS_FN, avisos, notificaciones
from services.notificaciones.settings import AvisosSettings

__all__ = ["Avisador", "filas_de_avisos"]

_log = logging.getLogger("consistorio.notificaciones.avisos")
_ACTOR = Actor.system("avisos")
_VENTANA = timedelta(minutes=1)

TrasEnviar = Callable[[str], Awaitable[None]]


def filas_de_avisos(
    *, tenant_id: str, notificacion_id: str, interesado: dict[str, Any], ahora: datetime
) -> list[dict[str, Any]]:
    """The aviso rows of a notification put at disposal: one per channel the addressee gave."""
    destinos = {CanalAviso.EMAIL: interesado.get("email"), CanalAviso.SMS: interesado.get("movil")}
    return [
        {
            "id": str(uuid.uuid4()),
            "tenant_id": tenant_id,
            "notificacion_id": notificacion_id,
            "canal": canal.value,
            "destino": destino,
            "idioma": interesado.get("idioma") or "es",
            "estado": EstadoAviso.PENDIENTE.value,
            "intentos": 0,
            "proximo_en": ahora,
            "creado_en": ahora,
        }
        for canal, destino in destinos.items()
        if destino
    ]


class Avisador:
    """Claims, sends and records avisos, in passes, on a timer or when told."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        clock: Clock,
        settings: AvisosSettings,
        *,
        email: CanalEmail,
        sms: CanalSms | None,
        tras_enviar: TrasEnviar | None = None,
    ) -> None:
        self._runtime = runtime
        self._clock = clock
        self._s = settings
        self._email = email
        self._sms = sms
        # Test seam: runs between "sent" and "recorded" (where a crash hurts most).
        self._tras_enviar = tras_enviar
        self._passes = PeriodicPass(
            lambda: self.una_pasada(),
            name="notificaciones-avisos",
            interval_seconds=settings.intervalo_segundos,
            logger=_log,
            failed="avisos pass failed; retried on the next tick",
        )

    async def _por_atender(self, ahora: datetime) -> dict[str, list[str]]:
        async with self._runtime.db.engine.connect() as conn:
            rows = await conn.execute(
                text(f"SELECT tenant_id, id FROM {AVISOS_FN}(:ahora, :limite, :plazo)"),
                {
                    "ahora": ahora,
                    "limite": self._s.lote,
                    "plazo": timedelta(seconds=self._s.plazo_incierto_segundos),
                },
            )
            por_entidad: dict[str, list[str]] = defaultdict(list)
            for tenant_id, ident in rows:
                por_entidad[tenant_id].append(str(ident))
        return por_entidad

    async def _reclamar(
        self, tenant_id: str, ids: list[str], ahora: datetime
    ) -> list[dict[str, Any]]:
        """Step 1: marks stale claims incierto and claims what the tenant's rate allows."""
        c = avisos.c
        async with self._runtime.unit_of_work(tenant_id, _ACTOR) as uow:
            session = uow.session
            # One claimer per tenant at a time: the rate count and the claim agree.
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:clave))"),
                {"clave": f"notificaciones.avisos/{tenant_id}"},
            )
            plazo = timedelta(seconds=self._s.plazo_incierto_segundos)
            await session.execute(
                update(avisos)
                .where(
                    c.id.in_(ids),
                    c.estado == EstadoAviso.ENVIANDO.value,
                    c.reclamado_en <= ahora - plazo,
                )
                .values(
                    estado=EstadoAviso.INCIERTO.value,
                    error="El envío no confirmó su resultado; no se reenvía para no duplicarlo.",
                )
            )
            recientes = (
                await session.execute(select(func.count()).where(c.reclamado_en > ahora - _VENTANA))
            ).scalar_one()
            cupo = self._s.por_minuto - int(recientes)
            if cupo <= 0:
                return []
            # Locked first, updated after: inside an UPDATE's IN, a LIMIT ... SKIP LOCKED
            # subquery may be run again and hand out more rows than the limit.
            elegidos = list(
                (
                    await session.execute(
                        select(c.id)
                        .where(
                            c.id.in_(ids),
                            c.estado == EstadoAviso.PENDIENTE.value,
                            c.proximo_en <= ahora,
                        )
                        .order_by(c.proximo_en)
                        .limit(cupo)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            if not elegidos:
                return []
            rows = await session.execute(
                update(avisos)
                .where(c.id.in_(elegidos))
                .values(
                    estado=EstadoAviso.ENVIANDO.value,
                    intentos=c.intentos + 1,
                    reclamado_en=ahora,
                )
                .returning(*c)
            )
            reclamados = [dict(r._mapping) for r in rows]
            if reclamados:
                emisores = dict(
                    (
                        await session.execute(
                            select(notificaciones.c.id, notificaciones.c.emisor).where(
                                notificaciones.c.id.in_([a["notificacion_id"] for a in reclamados])
                            )
                        )
                    ).all()
                )
                for aviso in reclamados:
                    aviso["emisor"] = emisores[aviso["notificacion_id"]]
        return reclamados

    async def _enviar(self, aviso: dict[str, Any]) -> str:
        """Step 2: through the aviso's channel; the text carries only entity and link."""
        entidad, url, idioma = aviso["emisor"], self._s.sede_url, aviso["idioma"]
        if aviso["canal"] == CanalAviso.EMAIL.value:
            return await self._email.enviar(
                aviso_id=aviso["id"],
                destino=aviso["destino"],
                mensaje=mensaje_email(idioma, entidad=entidad, url=url),
            )
        if self._sms is None:
            raise FalloPermanente("No hay proveedor de SMS configurado (AVISOS_SMS_URL).")
        return await self._sms.enviar(
            aviso_id=aviso["id"],
            destino=aviso["destino"],
            texto=mensaje_sms(idioma, entidad=entidad, url=url),
        )

    async def _registrar(self, aviso: dict[str, Any], cambios: dict[str, Any]) -> None:
        """Step 3: the outcome, only over the claim this sender made."""
        async with self._runtime.unit_of_work(aviso["tenant_id"], _ACTOR) as uow:
            await uow.session.execute(
                update(avisos)
                .where(
                    avisos.c.id == aviso["id"],
                    avisos.c.estado == EstadoAviso.ENVIANDO.value,
                    avisos.c.reclamado_en == aviso["reclamado_en"],
                )
                .values(**cambios)
            )

    async def _atender(self, aviso: dict[str, Any]) -> None:
        ahora = self._clock.now()
        cambios: dict[str, Any]
        try:
            referencia = await self._enviar(aviso)
        except FalloTemporal as exc:
            if aviso["intentos"] >= self._s.max_intentos:
                cambios = {"estado": EstadoAviso.FALLIDO.value, "error": f"Agotados: {exc}"}
            else:
                cambios = {
                    "estado": EstadoAviso.PENDIENTE.value,
                    "error": str(exc),
                    "proximo_en": ahora
                    + espera(aviso["intentos"], base_segundos=self._s.espera_base_segundos),
                }
        except FalloPermanente as exc:
            cambios = {"estado": EstadoAviso.FALLIDO.value, "error": str(exc)}
        except Incierto as exc:
            cambios = {"estado": EstadoAviso.INCIERTO.value, "error": str(exc)}
        else:
            if self._tras_enviar is not None:
                await self._tras_enviar(aviso["id"])
            cambios = {
                "estado": EstadoAviso.ENVIADO.value,
                "enviado_en": ahora,
                "referencia": referencia,
                "error": None,
            }
        await self._registrar(aviso, cambios)

    async def una_pasada(self) -> int:
        """Claims and sends what is due at the clock's instant; answers how many were tried."""
        ahora = self._clock.now()
        intentados = 0
        for tenant_id, ids in (await self._por_atender(ahora)).items():
            for aviso in await self._reclamar(tenant_id, ids, ahora):
                await self._atender(aviso)
                intentados += 1
        return intentados

    def start(self) -> None:
        """Runs passes every ``intervalo_segundos`` in the background."""
        self._passes.start()

    async def stop(self) -> None:
        """Stops the background passes."""
        await self._passes.stop()

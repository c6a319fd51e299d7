"""Avisos (art. 41.6) on real PostgreSQL: email to a real SMTP server (aiosmtpd, with
STARTTLS and AUTH), SMS to a stand-in speaking Altiria's REST protocol over HTTP;
retries on temporary failures only, permanent ones recorded and visible; at most once
even when the sender dies between sending and recording; per-tenant rate; and a failed
aviso that does not touch its notification."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from services.bootstrap import Platform
from services.common.db import tenant_transaction
from services.common.settings import Settings
from services.common.uow import Actor
from services.notificaciones import service
from services.notificaciones.avisos import Avisador
from services.notificaciones.canales import AltiriaSms, SmtpEmail
from services.notificaciones.clock import ControlledClock
from services.notificaciones.models import avisos
from services.notificaciones.schemas import (
    DocumentoNotificado,
    NotificacionCreate,
    NotificacionRead,
)
from services.notificaciones.settings import AvisosSettings
from tests.support.altiria import Altiria, altiria_server
from tests.support.factories import nif
from tests.support.platforms import running_platform
from tests.support.smtp import Buzon, free_port, self_signed, smtp_server

pytestmark = pytest.mark.integration

INICIO = datetime(2026, 11, 2, 8, 0, 0, tzinfo=UTC)
SEDE = "https://sede.example.org/carpeta/notificaciones"
# Other tests' avisos share the database (and a sender serves every tenant): our
# addresses carry this run's tag, and assertions look only at them.
TAG = uuid.uuid4().hex[:8]
ENTIDAD = "Ajuntament de Prova"


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["notificaciones"]) as platform:
        yield platform


@pytest.fixture
def clock() -> ControlledClock:
    return ControlledClock(INICIO)


def ajustes(**overrides: Any) -> AvisosSettings:
    base: dict[str, Any] = {
        "sede_url": SEDE,
        "smtp_remitente": "avisos@ayto.example.org",
        "espera_base_segundos": 60,
        "max_intentos": 3,
        "plazo_incierto_segundos": 300,
    }
    base.update(overrides)
    return AvisosSettings(**base)


async def notificar(
    platform: Platform, tenant: str, *interesados: dict[str, Any], ahora: datetime = INICIO
) -> list[NotificacionRead]:
    runtime = platform.runtimes["notificaciones"]
    documento = DocumentoNotificado(documento_id=str(uuid.uuid4()), version=1, nombre="r.pdf")
    datos = NotificacionCreate.model_validate(
        {
            "documento_id": documento.documento_id,
            "concepto": "Sanción de tráfico expediente 2026/123",
            "interesados": list(interesados),
        }
    )
    async with runtime.unit_of_work(tenant, Actor(sub="funcionaria")) as uow:
        return await service.crear_notificaciones(
            uow, datos=datos, documento=documento, emisor=ENTIDAD, ahora=ahora
        )


def nuestros(buzon: Buzon, *nombres: str) -> list[Any]:
    """The messages to this run's addresses (those of ``nombres`` when given)."""
    return [
        m
        for m in buzon.mensajes
        if m["To"].endswith(f".{TAG}@example.org")
        and (not nombres or m["To"].split(".")[0] in nombres)
    ]


def persona(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "tipo_identificador": "NIF",
        "identificador": nif(),
        "nombre": "Vicent Ferrer Soler",
        "eligio_electronico": True,
    }
    data.update(overrides)
    return data


async def leer(platform: Platform, tenant: str, notificacion_id: str) -> NotificacionRead:
    async with tenant_transaction(platform.runtimes["notificaciones"].db, tenant) as session:
        return await service.get_notificacion(session, notificacion_id=notificacion_id)


def avisador(
    platform: Platform, clock: ControlledClock, settings: AvisosSettings, **kwargs: Any
) -> Avisador:
    return Avisador(
        platform.runtimes["notificaciones"],
        clock,
        settings,
        email=SmtpEmail(settings),
        sms=AltiriaSms(settings) if settings.sms_url else None,
        **kwargs,
    )


# --- email ---


async def test_the_email_aviso_says_who_and_where_and_nothing_personal(
    platform: Platform, clock: ControlledClock, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    buzon = Buzon()
    [es] = await notificar(platform, tenant, persona(email=f"vicent.{TAG}@example.org"))
    [va] = await notificar(platform, tenant, persona(email=f"neus.{TAG}@example.org", idioma="va"))
    with smtp_server(buzon) as port:
        s = ajustes(smtp_port=port)
        assert await avisador(platform, clock, s).una_pasada() >= 2
    por_destino = {m["To"]: m for m in nuestros(buzon, "vicent", "neus")}
    assert set(por_destino) == {f"vicent.{TAG}@example.org", f"neus.{TAG}@example.org"}
    castellano = por_destino[f"vicent.{TAG}@example.org"]
    assert castellano["Subject"] == f"Aviso de notificación de {ENTIDAD}"
    cuerpo = castellano.get_content()
    assert SEDE in cuerpo and "art. 41.6" in cuerpo
    valenciano = por_destino[f"neus.{TAG}@example.org"]
    assert valenciano["Subject"] == f"Avís de notificació de {ENTIDAD}"
    assert "posat a la seua disposició" in valenciano.get_content()
    for mensaje in nuestros(buzon, "vicent", "neus"):
        texto = mensaje.as_string()
        assert "Vicent Ferrer" not in texto and "Sanción" not in texto and "2026/123" not in texto
    leida = await leer(platform, tenant, es.id)
    [aviso] = leida.avisos
    assert (aviso.canal, aviso.estado, aviso.intentos) == ("email", "enviado", 1)
    assert castellano["Message-ID"].startswith("<aviso-")
    assert (await leer(platform, tenant, va.id)).avisos[0].estado == "enviado"


async def test_starttls_and_credentials_are_used_and_a_bad_password_is_permanent(
    platform: Platform, clock: ControlledClock, new_tenant: Callable[..., Any], tmp_path: Path
) -> None:
    tenant = await new_tenant()
    cert, key = self_signed(tmp_path)
    buzon = Buzon()
    [buena] = await notificar(platform, tenant, persona(email=f"a.{TAG}@example.org"))
    with smtp_server(buzon, tls=(cert, key), credenciales=("ayto", "clave")) as port:
        s = ajustes(
            smtp_port=port,
            smtp_starttls=True,
            smtp_ca_file=cert,
            smtp_usuario="ayto",
            smtp_password="clave",
        )
        await avisador(platform, clock, s).una_pasada()
        assert [m["To"] for m in nuestros(buzon, "a", "b", "c")] == [f"a.{TAG}@example.org"]
        assert (await leer(platform, tenant, buena.id)).avisos[0].estado == "enviado"

        [mala] = await notificar(platform, tenant, persona(email=f"b.{TAG}@example.org"))
        await avisador(
            platform, clock, s.model_copy(update={"smtp_password": SecretStr("otra")})
        ).una_pasada()
        [aviso] = (await leer(platform, tenant, mala.id)).avisos
        assert aviso.estado == "fallido" and aviso.intentos == 1
        assert aviso.error is not None and "535" in aviso.error
        # Without STARTTLS the server refuses to go on: permanent too, nothing sent.
        [sin_tls] = await notificar(platform, tenant, persona(email=f"c.{TAG}@example.org"))
        await avisador(platform, clock, s.model_copy(update={"smtp_starttls": False})).una_pasada()
        assert (await leer(platform, tenant, sin_tls.id)).avisos[0].estado == "fallido"
    assert [m["To"] for m in nuestros(buzon, "a", "b", "c")] == [f"a.{TAG}@example.org"]


async def test_a_temporary_refusal_is_retried_with_back_off_until_attempts_run_out(
    platform: Platform, clock: ControlledClock, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    buzon = Buzon(respuestas={f"lleno.{TAG}@example.org": "452 4.2.2 Mailbox full"})
    [n] = await notificar(platform, tenant, persona(email=f"lleno.{TAG}@example.org"))
    with smtp_server(buzon) as port:
        envios = avisador(platform, clock, ajustes(smtp_port=port))
        await envios.una_pasada()
        [aviso] = (await leer(platform, tenant, n.id)).avisos
        assert (aviso.estado, aviso.intentos) == ("pendiente", 1)
        assert aviso.proximo_en == INICIO + timedelta(seconds=60)
        # Not before its time...
        clock.set(INICIO + timedelta(seconds=59))
        await envios.una_pasada()
        assert (await leer(platform, tenant, n.id)).avisos[0].intentos == 1
        # ...then again, waiting twice as long after the second failure.
        clock.set(INICIO + timedelta(seconds=60))
        await envios.una_pasada()
        [aviso] = (await leer(platform, tenant, n.id)).avisos
        assert (aviso.estado, aviso.intentos) == ("pendiente", 2)
        assert aviso.proximo_en == INICIO + timedelta(seconds=60 + 120)
        # The mailbox has room now.
        buzon.respuestas.clear()
        clock.set(INICIO + timedelta(seconds=180))
        await envios.una_pasada()
    [aviso] = (await leer(platform, tenant, n.id)).avisos
    assert (aviso.estado, aviso.intentos) == ("enviado", 3)
    assert len(nuestros(buzon, "lleno")) == 1


async def test_temporary_failures_exhausted_and_permanent_refusals_are_recorded(
    platform: Platform, clock: ControlledClock, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    buzon = Buzon(
        respuestas={
            f"nadie.{TAG}@example.org": "550 5.1.1 No such user",
            f"lento.{TAG}@example.org": "451 4.3.0 Try again later",
        }
    )
    [nadie, lento] = await notificar(
        platform,
        tenant,
        persona(email=f"nadie.{TAG}@example.org"),
        persona(email=f"lento.{TAG}@example.org"),
    )
    with smtp_server(buzon) as port:
        envios = avisador(platform, clock, ajustes(smtp_port=port))
        for minutos in (0, 1, 3):
            clock.set(INICIO + timedelta(minutes=minutos))
            await envios.una_pasada()
    [a] = (await leer(platform, tenant, nadie.id)).avisos
    assert (a.estado, a.intentos) == ("fallido", 1)
    assert a.error is not None and "550" in a.error
    [b] = (await leer(platform, tenant, lento.id)).avisos
    assert (b.estado, b.intentos) == ("fallido", 3)
    assert b.error is not None and "451" in b.error
    assert nuestros(buzon, "nadie", "lento") == []


async def test_a_failed_aviso_never_blocks_the_notification(
    platform: Platform, clock: ControlledClock, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    lucia = persona(email=f"lucia.{TAG}@example.org")
    [n] = await notificar(platform, tenant, lucia)
    # Nobody listens there: the aviso waits, the notification does not.
    await avisador(platform, clock, ajustes(smtp_port=free_port())).una_pasada()
    leida = await leer(platform, tenant, n.id)
    assert leida.estado == "puesta_disposicion"
    assert leida.avisos[0].estado == "pendiente"
    assert leida.avisos[0].error is not None
    runtime = platform.runtimes["notificaciones"]
    async with runtime.unit_of_work(tenant, Actor(sub="lucia")) as uow:
        vista = await service.acceder(
            uow, notificacion_id=n.id, nif=lucia["identificador"], ahora=INICIO
        )
    assert vista is not None and vista.estado == "practicada"


# --- at most once ---


class Caida(BaseException):
    """The sender's process dies: no code of it runs after this."""


async def test_a_sender_killed_between_sent_and_recorded_does_not_send_twice(
    platform: Platform, clock: ControlledClock, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    buzon = Buzon()
    [n] = await notificar(platform, tenant, persona(email=f"una.{TAG}@example.org"))

    async def morir(aviso_id: str) -> None:
        assert len(nuestros(buzon, "una")) == 1  # the server has accepted it
        raise Caida()

    with smtp_server(buzon) as port:
        s = ajustes(smtp_port=port)
        with pytest.raises(Caida):
            await avisador(platform, clock, s, tras_enviar=morir).una_pasada()
        assert (await leer(platform, tenant, n.id)).avisos[0].estado == "enviando"
        # Another replica, and later this one restarted, find it and do not send it again.
        otra = avisador(platform, clock, s)
        await otra.una_pasada()
        clock.advance(timedelta(seconds=299))
        await otra.una_pasada()
        assert (await leer(platform, tenant, n.id)).avisos[0].estado == "enviando"
        clock.advance(timedelta(seconds=1))
        await otra.una_pasada()
        clock.advance(timedelta(hours=1))
        await otra.una_pasada()
    [aviso] = (await leer(platform, tenant, n.id)).avisos
    assert aviso.estado == "incierto"
    assert aviso.intentos == 1
    assert len(nuestros(buzon, "una")) == 1


async def test_a_notification_has_at_most_one_aviso_per_channel(
    platform: Platform, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    [n] = await notificar(
        platform, tenant, persona(email=f"x.{TAG}@example.org", movil="600111222")
    )
    assert sorted(a.canal for a in (await leer(platform, tenant, n.id)).avisos) == ["email", "sms"]
    with pytest.raises(IntegrityError):
        async with tenant_transaction(platform.runtimes["notificaciones"].db, tenant) as session:
            await session.execute(
                insert(avisos).values(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant,
                    notificacion_id=n.id,
                    canal="email",
                    destino=f"x.{TAG}@example.org",
                    idioma="es",
                    estado="pendiente",
                    intentos=0,
                    proximo_en=INICIO,
                    creado_en=INICIO,
                )
            )


async def test_postal_notifications_get_no_aviso(
    platform: Platform, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    [n] = await notificar(
        platform,
        tenant,
        persona(
            email=f"p.{TAG}@example.org",
            eligio_electronico=False,
            direccion_postal={
                "direccion": "Plaça Major 1",
                "codigo_postal": "46001",
                "municipio": "València",
                "provincia": "València",
            },
        ),
    )
    assert n.canal == "postal"
    assert (await leer(platform, tenant, n.id)).avisos == []


# --- rate ---


async def test_each_tenant_has_its_own_rate_of_outgoing_avisos(
    platform: Platform, clock: ControlledClock, new_tenant: Callable[..., Any]
) -> None:
    ruidoso, tranquilo = await new_tenant(), await new_tenant()
    muchas = await notificar(
        platform, ruidoso, *(persona(email=f"r{i}.{TAG}@example.org") for i in range(5))
    )
    await notificar(
        platform, tranquilo, *(persona(email=f"t{i}.{TAG}@example.org") for i in range(2))
    )
    buzon = Buzon()
    with smtp_server(buzon) as port:
        envios = avisador(platform, clock, ajustes(smtp_port=port, por_minuto=3))
        await envios.una_pasada()
        await envios.una_pasada()

        assert len(nuestros(buzon, *(f"r{i}" for i in range(5)))) == 3
        assert len(nuestros(buzon, *(f"t{i}" for i in range(2)))) == 2
        clock.advance(timedelta(seconds=61))
        await envios.una_pasada()
    assert len(nuestros(buzon, *(f"r{i}" for i in range(5)))) == 5
    assert len(nuestros(buzon, *(f"t{i}" for i in range(2)))) == 2
    for n in muchas:
        assert (await leer(platform, ruidoso, n.id)).avisos[0].estado == "enviado"


# --- SMS (Altiria) ---


async def test_the_sms_aviso_goes_through_altiria(
    platform: Platform, clock: ControlledClock, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    altiria = Altiria()
    [n] = await notificar(platform, tenant, persona(movil="+34600111222", idioma="va"))
    async with altiria_server(altiria) as url:
        s = ajustes(
            sms_url=url,
            sms_login=altiria.login,
            sms_password=altiria.passwd,
            sms_remitente="Ajuntament",
        )
        await avisador(platform, clock, s).una_pasada()
    [peticion] = altiria.recibidos
    assert peticion["destination"] == ["34600111222"]
    assert peticion["message"]["senderId"] == "Ajuntament"
    assert peticion["message"]["msg"] == (
        f"{ENTIDAD}: té una notificació a la seua disposició en la seu electrònica {SEDE}"
    )
    assert peticion["credentials"] == {"login": altiria.login, "passwd": altiria.passwd}
    [aviso] = (await leer(platform, tenant, n.id)).avisos
    assert (aviso.canal, aviso.estado) == ("sms", "enviado")


@pytest.mark.parametrize(
    ("respuesta", "estado", "error"),
    [
        ((200, "015"), "fallido", "015"),  # no valid destination: permanent
        ((200, "020"), "fallido", "020"),  # authentication: permanent
        ((400, "Invalid JSON request"), "fallido", "400"),
        ((200, "001"), "pendiente", "001"),  # internal error: temporary
        ((503, "Service Unavailable"), "pendiente", "503"),
    ],
)
async def test_altirias_error_answers_are_told_apart(
    platform: Platform,
    clock: ControlledClock,
    new_tenant: Callable[..., Any],
    respuesta: tuple[int, str],
    estado: str,
    error: str,
) -> None:
    tenant = await new_tenant()
    altiria = Altiria(respuestas=[respuesta])
    [n] = await notificar(platform, tenant, persona(movil="600111222"))
    async with altiria_server(altiria) as url:
        s = ajustes(sms_url=url, sms_login=altiria.login, sms_password=altiria.passwd)
        envios = avisador(platform, clock, s)
        await envios.una_pasada()
        [aviso] = (await leer(platform, tenant, n.id)).avisos
        assert aviso.estado == estado
        assert aviso.error is not None and error in aviso.error
        clock.advance(timedelta(minutes=5))
        await envios.una_pasada()
    final = (await leer(platform, tenant, n.id)).avisos[0]
    if estado == "pendiente":
        assert (final.estado, final.intentos, len(altiria.recibidos)) == ("enviado", 2, 2)
    else:
        assert (final.estado, final.intentos, len(altiria.recibidos)) == ("fallido", 1, 1)


async def test_a_wrong_number_is_refused_per_destination(
    platform: Platform, clock: ControlledClock, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    altiria = Altiria()
    [n] = await notificar(platform, tenant, persona(movil="600111222"))
    async with altiria_server(altiria) as url:
        s = ajustes(sms_url=url, sms_login=altiria.login, sms_password="mala")
        await avisador(platform, clock, s).una_pasada()
    [aviso] = (await leer(platform, tenant, n.id)).avisos
    assert aviso.estado == "fallido"
    assert aviso.error is not None and "020" in aviso.error

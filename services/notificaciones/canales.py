"""The channels avisos leave by: SMTP for email, Altiria's REST API for SMS.

Each adapter sends one aviso and says how it went in three ways: it returns (the
server or provider accepted it), raises :class:`FalloTemporal` (not accepted, and
certainly not sent: retry later), :class:`FalloPermanente` (refused for good), or
:class:`Incierto` (the request left and no answer came back: it may have been
delivered, so it is never sent again automatically).

Email: ``smtplib`` in a worker thread (the event loop keeps serving), STARTTLS
verified against the system's CAs or ``AVISOS_SMTP_CA_FILE``, optional login. A
4xx reply is temporary, a 5xx permanent (RFC 5321, 4.2.1). The Message-ID is
derived from the aviso id, so a copy sent by hand is recognisable as the same.

SMS: Altiria (an SMS gateway many Spanish councils buy through public tenders),
REST API: ``POST <base>/sendSms`` with a JSON body::

    {"credentials": {"login": "...", "passwd": "..."},
     "destination": ["34600000000"],
     "message": {"msg": "...", "senderId": "Ayto", "idAck": "<20 chars>"},
     "source": "consistorio"}

answered with HTTP 200 and ``{"status": "000", "details": [{"destination": "...",
"status": "000"}]}`` when accepted. Any other ``status`` (overall or per
destination) is a refusal: ``001`` (internal error) and ``019`` (too many
messages) are temporary; ``010`` (bad number format), ``013`` (too long), ``014``
(bad encoding), ``015`` (no valid destination), ``016``, ``017``, ``018`` and
``020`` (authentication) are permanent. A non-200 answer carries ``{"error":
"..."}``: 5xx temporary, 4xx permanent.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import httpx

from services.notificaciones.avisos_domain import FalloPermanente, FalloTemporal, Mensaje
from services.notificaciones.settings import AvisosSettings

__all__ = ["AltiriaSms", "CanalEmail", "CanalSms", "Incierto", "SmtpEmail"]

_TEMPORALES_ALTIRIA = frozenset({"001", "019"})


class Incierto(Exception):
    """The aviso left and no outcome came back: it may have been delivered."""


class CanalEmail(Protocol):
    async def enviar(self, *, aviso_id: str, destino: str, mensaje: Mensaje) -> str:
        """Sends one email aviso; answers its reference (the Message-ID)."""
        ...


class CanalSms(Protocol):
    async def enviar(self, *, aviso_id: str, destino: str, texto: str) -> str:
        """Sends one SMS aviso; answers the provider's reference."""
        ...


def _por_codigo(codigo: int, texto: str) -> Exception:
    if 400 <= codigo < 500:
        return FalloTemporal(f"SMTP {codigo}: {texto}")
    return FalloPermanente(f"SMTP {codigo}: {texto}")


class SmtpEmail:
    """Email avisos through an SMTP server (aiosmtpd in the tests, the council's in production)."""

    def __init__(self, settings: AvisosSettings) -> None:
        self._s = settings

    def _contexto(self) -> ssl.SSLContext:
        ca = self._s.smtp_ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _conectar(self) -> smtplib.SMTP:
        """Connected, upgraded and logged in; every failure here means nothing was sent."""
        s = self._s
        try:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_segundos)
        except (OSError, smtplib.SMTPException) as exc:
            raise FalloTemporal(
                f"no se pudo conectar con {s.smtp_host}:{s.smtp_port}: {exc}"
            ) from exc
        try:
            smtp.ehlo()
            if s.smtp_starttls:
                smtp.starttls(context=self._contexto())
                smtp.ehlo()
            if s.smtp_usuario:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                smtp.login(s.smtp_usuario, password)
        except smtplib.SMTPResponseException as exc:
            smtp.close()
            raise _por_codigo(exc.smtp_code, str(exc.smtp_error)) from exc
        except ssl.SSLError as exc:
            smtp.close()
            raise FalloPermanente(f"STARTTLS falló: {exc}") from exc
        except smtplib.SMTPNotSupportedError as exc:
            # The server does not offer what the settings ask (STARTTLS, AUTH): configuration.
            smtp.close()
            raise FalloPermanente(f"SMTP: {exc}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            smtp.close()
            raise FalloTemporal(f"SMTP: {exc}") from exc
        return smtp

    def _enviar(self, aviso_id: str, destino: str, mensaje: Mensaje) -> str:
        message_id = f"<aviso-{aviso_id}@consistorio>"
        email = EmailMessage()
        email["From"] = self._s.smtp_remitente
        email["To"] = destino
        email["Subject"] = mensaje.asunto
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = message_id
        email["Auto-Submitted"] = "auto-generated"
        email.set_content(mensaje.cuerpo)
        smtp = self._conectar()
        try:
            refused = smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            codigo, texto = next(iter(exc.recipients.values()))
            raise _por_codigo(codigo, texto.decode(errors="replace")) from exc
        except smtplib.SMTPResponseException as exc:
            raise _por_codigo(exc.smtp_code, str(exc.smtp_error)) from exc
        except (OSError, smtplib.SMTPException) as exc:
            # The message may have been transmitted before the line dropped.
            raise Incierto(f"SMTP sin respuesta tras enviar: {exc}") from exc
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        if refused:
            codigo, texto = next(iter(refused.values()))
            raise _por_codigo(codigo, texto.decode(errors="replace"))
        return message_id

    async def enviar(self, *, aviso_id: str, destino: str, mensaje: Mensaje) -> str:
        """Sends in a worker thread; answers the Message-ID."""
        return await asyncio.to_thread(self._enviar, aviso_id, destino, mensaje)


class AltiriaSms:
    """SMS avisos through Altiria's REST API (see the module docstring for the protocol)."""

    def __init__(
        self, settings: AvisosSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if not settings.sms_url:
            raise ValueError("AVISOS_SMS_URL no está configurada")
        self._s = settings
        self._url = settings.sms_url.rstrip("/") + "/sendSms"
        self._transport = transport

    async def enviar(self, *, aviso_id: str, destino: str, texto: str) -> str:
        """Posts one message; answers our idAck, which the provider's reports carry back."""
        s = self._s
        id_ack = aviso_id.replace("-", "")[:20]
        message: dict[str, object] = {"msg": texto, "idAck": id_ack}
        if s.sms_remitente:
            message["senderId"] = s.sms_remitente
        body = {
            "credentials": {
                "login": s.sms_login or "",
                "passwd": s.sms_password.get_secret_value() if s.sms_password else "",
            },
            "destination": [destino.lstrip("+")],
            "message": message,
            "source": "consistorio",
        }
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=s.sms_timeout_segundos
            ) as client:
                response = await client.post(self._url, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise FalloTemporal(f"Altiria no responde: {exc.__class__.__name__}") from exc
        except httpx.HTTPError as exc:
            raise Incierto(f"Altiria sin respuesta tras enviar: {exc.__class__.__name__}") from exc
        if response.status_code != 200:
            error = _error(response)
            if response.status_code >= 500:
                raise FalloTemporal(f"Altiria HTTP {response.status_code}: {error}")
            raise FalloPermanente(f"Altiria HTTP {response.status_code}: {error}")
        data = response.json()
        estados = [str(data.get("status"))] + [
            str(d.get("status")) for d in data.get("details", []) if isinstance(d, dict)
        ]
        malo = next((e for e in estados if e != "000"), None)
        if malo is not None:
            if malo in _TEMPORALES_ALTIRIA:
                raise FalloTemporal(f"Altiria status {malo}")
            raise FalloPermanente(f"Altiria status {malo}")
        return id_ack


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", ""))[:200]
    except ValueError:
        return response.text[:200]

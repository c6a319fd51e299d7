"""Settings of the avisos (art. 41.6): the SMTP server, the SMS provider, retries and limits.

Read from the environment with the prefix ``AVISOS_`` (``AVISOS_SMTP_HOST``...),
apart from the platform's settings because only this service needs them. Secrets
(passwords) come from the environment or a secret store, never from the repository.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AvisosSettings"]


class AvisosSettings(BaseSettings):
    """How avisos are sent, retried and limited."""

    model_config = SettingsConfigDict(env_prefix="AVISOS_", extra="ignore")

    # Email over SMTP (submission port with STARTTLS in production).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_usuario: str | None = None
    smtp_password: SecretStr | None = None
    # CA bundle to verify the server's certificate (the system's when absent).
    smtp_ca_file: Path | None = None
    smtp_remitente: str = "notificaciones@consistorio.invalid"
    smtp_timeout_segundos: float = 10.0

    # SMS through Altiria's REST API (``<base>/sendSms``); no URL: SMS avisos fail, recorded.
    sms_url: str | None = None
    sms_login: str | None = None
    sms_password: SecretStr | None = None
    sms_remitente: str | None = Field(default=None, max_length=11)
    sms_timeout_segundos: float = 10.0

    # Where the addressee opens their notifications (the sede's carpeta).
    sede_url: str = "http://127.0.0.1:8000/sede/notificaciones"

    # Retries of temporary failures: base * 2^(n-1) seconds, at most max_intentos attempts.
    max_intentos: int = Field(default=5, ge=1)
    espera_base_segundos: float = Field(default=30.0, gt=0)
    # Outgoing avisos (attempts) per tenant and minute, across replicas.
    por_minuto: int = Field(default=120, ge=1)
    # A claimed aviso with no outcome after this long is marked incierto, never resent.
    plazo_incierto_segundos: float = Field(default=300.0, gt=0)
    lote: int = Field(default=100, ge=1)
    intervalo_segundos: float = Field(default=1.0, gt=0)

"""Settings only pagos needs: the KEKs of the Redsys merchant keys and the vencimiento pass.

Read from the environment with the prefix ``PAGOS_``, apart from the platform's
settings because no other service needs them. The KEKs are secrets: they come from
the environment (``PAGOS_KEKS``) or a secret file mounted by the orchestrator
(``PAGOS_KEKS_FILE``), never from the repository, and are never logged.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PagosSettings"]


class PagosSettings(BaseSettings):
    """Where the key-encryption keys come from."""

    model_config = SettingsConfigDict(env_prefix="PAGOS_", extra="ignore")

    # Comma-separated ``<id>:<base64 of 32 bytes>``; the first encrypts, all decrypt
    # (a rotation puts the new key first and keeps the old one until `rotar` ran).
    keks: SecretStr | None = None
    # The same, read from a file (a mounted secret); used when ``keks`` is unset.
    keks_file: Path | None = None

    # How often each replica's vencimiento pass runs (services/pagos/vencimientos.py);
    # 0 turns the scheduler off in that replica.
    vencimientos_intervalo_segundos: float = Field(default=3600.0, ge=0)
    vencimientos_lote: int = Field(default=500, ge=1, le=500)

    def keks_texto(self) -> str | None:
        """The configured keyring text, from the variable or the file (None: not configured)."""
        if self.keks is not None and self.keks.get_secret_value().strip():
            return self.keks.get_secret_value()
        if self.keks_file is not None:
            texto = self.keks_file.read_text(encoding="utf-8").strip()
            return texto or None
        return None

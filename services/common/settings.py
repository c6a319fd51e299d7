"""One place that reads configuration from the environment.

Nothing here is built at import time: call :func:`load_settings` from a
composition root (CLI, app factory, test fixture) and pass the object down.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

APP_ROLE_DEFAULT = "consistorio_app"


class Settings(BaseSettings):
    """Runtime configuration of a Consistorio process (any service, gateway or CLI)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("./var")

    # The owner URL runs migrations; services connect as the app role, which is
    # neither superuser nor table owner, so row-level security applies to it.
    database_url: str | None = None
    database_app_url: str | None = None
    database_app_role: str = APP_ROLE_DEFAULT
    database_app_password: str | None = None
    # Requests and background work (outbox relay, bus consumers) have separate pools,
    # each of pool_size + the same overflow; a request that waits more than
    # database_pool_timeout_seconds for a connection gets a 503 with Retry-After.
    database_pool_size: int = Field(default=10, gt=0)
    database_worker_pool_size: int = Field(default=5, gt=0)
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0)

    amqp_url: str | None = None
    bus_exchange: str = "consistorio.events"
    # Prefix of queue names, so two deployments (or test runs) can share a vhost.
    bus_queue_prefix: str = ""
    bus_prefetch: int = 20
    # The type of the consumer queues this process declares. It must be the type the
    # broker's definitions gave them (deploy/rabbitmq/definitions.json: quorum), or the
    # broker refuses the declaration; classic for development and tests on a bare broker.
    bus_queue_type: Literal["classic", "quorum"] = "classic"
    bus_max_attempts: int = 5
    bus_retry_base_seconds: float = 0.2
    # Messages of one tenant a consumer handles at once (half the prefetch window by
    # default, so a council alone still gets half of it); others' proceed beside them.
    bus_tenant_concurrency: int = Field(default=10, gt=0)
    outbox_poll_seconds: float = 1.0
    # The reconciler picks up requests left half-way (services/common/reconciler.py):
    # it runs on start and then every period (0 turns it off); a request whose current
    # attempt is older than stalled_after counts as stalled, and staff may retry it too.
    reconciler_period_seconds: float = Field(default=60.0, ge=0)
    reconciler_stalled_after_seconds: float = Field(default=300.0, gt=0)

    # Token verification: a JWKS URL or a path to a JWKS file.
    auth_jwks: str | None = None
    auth_issuer: str = "consistorio-dev"
    auth_audience: str = "consistorio"
    auth_algorithms: list[str] = Field(default_factory=lambda: ["ES256", "RS256"])
    tenant_cache_seconds: float = 30.0

    # Gateway
    service_urls: dict[str, str] = Field(default_factory=dict)
    cors_origins: list[str] = Field(default_factory=list)
    rate_limit_per_minute: int = 600
    rate_limit_anonymous_per_minute: int = 60
    # Redsys' payment notifications (POST /pagos/redsys/notificacion) spend their own
    # bucket per address: a council taking many card payments is not throttled with
    # the citizens, nor are citizens behind Redsys' addresses (docs/pagos.md).
    rate_limit_redsys_per_minute: int = 600
    redis_url: str | None = None
    # Per-tenant quota over every user of a council, beside the per-user one (429).
    rate_limit_tenant_per_minute: int = Field(default=6000, gt=0)
    # Answer wait: only an upstream silent this long is a 504 (services refuse with 503
    # long before). Connecting or getting a pooled connection is bounded by the connect
    # timeout, and failing that is a 503 with Retry-After: nothing reached the service.
    proxy_timeout_seconds: float = 30.0
    proxy_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    # Requests the gateway forwards at once, and of one tenant (503 beyond).
    gateway_max_in_flight: int = Field(default=512, gt=0)
    gateway_max_in_flight_per_tenant: int = Field(default=64, gt=0)
    # The largest request body the gateway forwards (the largest any service takes:
    # a document of REPOSITORIO_MAX_BYTES in its multipart envelope); 413 beyond.
    gateway_max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)

    # repositorio (documents store): S3 when S3_ENDPOINT is set (host[:port], as the
    # minio SDK takes it; S3_SECURE picks https), else files under <data_dir>/documentos.
    repositorio_max_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_bucket: str = "consistorio-documentos"
    s3_secure: bool = True

    # registro: anexos of an asiento travel inline (base64) as SICRES carries them; SIR
    # accepts at most 10 MB per anexo and 15 MB per asiento, and the registro keeps to it
    # (the almacenar command's contract holds at most a 10 MiB anexo).
    registro_max_anexo_bytes: int = Field(default=10 * 1024 * 1024, gt=0, le=10 * 1024 * 1024)
    registro_max_anexos_bytes: int = Field(default=15 * 1024 * 1024, gt=0)

    # sellado: production keys as PKCS#12 files (tsa.p12, <INE>.p12, ca.pem) with a
    # passphrase from a secret; without them a development PKI is made under data_dir.
    sellado_pkcs12_dir: Path | None = None
    sellado_pkcs12_passphrase: SecretStr | None = None
    sellado_max_pdf_bytes: int = 10 * 1024 * 1024
    # Verifications a caller may ask for per minute (each parses a whole PDF).
    sellado_verificaciones_per_minute: int = Field(default=20, gt=0)
    tsa_policy_oid: str | None = None
    # POST /tsa is anonymous (rate-limited) unless this asks for a token.
    tsa_require_token: bool = False

    # tramitador: the PEM file of the trust anchor(s) an exported expediente's signer and
    # TSA must chain to (the sellado's ca.pem; `consistorio up` names the development
    # PKI's, or SELLADO_PKCS12_DIR's ca.pem). Without it no signer is trusted.
    tramitador_trust_anchor_pem: Path | None = None

    # Public address of the gateway, printed on issued documents (CSV verification URL,
    # QR code, footer): production must name the real one, never the development default.
    public_base_url: str = "http://127.0.0.1:8000"
    # How long POST .../emitir waits for the issuing saga before answering 202.
    emision_wait_seconds: float = 15.0
    # Misses on /verificar allowed per client and minute before 429.
    verificar_misses_per_minute: int = 10

    # HTTP serving (gateway and services): header block and count limits (431), how
    # long a client may take to send its headers or to send the next piece of its
    # body (408), and the proxies whose X-Forwarded-For is believed (none by default,
    # not even loopback): comma-separated addresses or networks.
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    http_max_headers: int = Field(default=100, ge=10)
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    http_body_timeout_seconds: float = Field(default=30.0, gt=0)
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Admission control in every service (services/common/admission.py): requests in
    # flight at once in one process, and of one tenant; beyond them an immediate 503
    # with Retry-After (seconds).
    admission_max_in_flight: int = Field(default=64, gt=0)
    admission_max_in_flight_per_tenant: int = Field(default=16, gt=0)
    admission_retry_after_seconds: int = Field(default=1, gt=0)
    # SIGTERM: readiness false at once, then in-flight requests, consumers and the
    # embedded PostgreSQL get this long, all together, before the process exits 0.
    shutdown_grace_seconds: float = Field(default=25.0, gt=0)

    # Worker processes for CPU-heavy work in each service app, and how many jobs of one
    # tenant may run at once (the rest wait their turn).
    cpu_workers: int = Field(default=2, gt=0)
    cpu_jobs_per_tenant: int = Field(default=1, gt=0)
    # Document workers: the child processes that render, stamp and seal the documents
    # the platform issues (one pool per process, shared by its services), the niceness
    # they run at (below the processes serving requests), and the prefetch of the
    # consumers that make documents: a delivery waiting for a worker holds a database
    # connection, so more than a few in flight only starve the cheap consumers.
    document_workers: int = Field(default=2, gt=0)
    document_worker_nice: int = Field(default=10, ge=0, le=19)
    document_prefetch: int = Field(default=2, gt=0)
    # Which consumers this process runs: every one (``all``, as ``up`` does), only the
    # cheap ones (``cheap``: the Deployment that serves HTTP), or only the document ones
    # (``documents``: the document-worker Deployment, scaled on its backlog).
    consumers_role: Literal["all", "cheap", "documents"] = "all"

    log_level: str = "INFO"
    log_json: bool = True
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = "consistorio"

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment == "production":
            if not self.database_url:
                raise ValueError("DATABASE_URL is required in production")
            if not self.amqp_url:
                raise ValueError("AMQP_URL is required in production")
            if not self.auth_jwks:
                raise ValueError("AUTH_JWKS is required in production (no development keys)")
            if self.auth_issuer == "consistorio-dev":
                raise ValueError("AUTH_ISSUER must name the real identity provider in production")
            _refuse_private_base_url(self.public_base_url)
            secret = self.s3_secret_key.get_secret_value() if self.s3_secret_key else ""
            if self.s3_endpoint and not (self.s3_access_key and secret):
                raise ValueError(
                    "S3_ACCESS_KEY and S3_SECRET_KEY are required in production when "
                    "S3_ENDPOINT is set (an anonymous bucket would expose every document)"
                )
        return self

    def app_database_url(self) -> str:
        """URL services connect with: DATABASE_APP_URL, or DATABASE_URL as the app role."""
        if self.database_app_url:
            return self.database_app_url
        if not self.database_url:
            raise ValueError("DATABASE_URL is not set")
        url = make_url(self.database_url).set(
            username=self.database_app_role, password=self.database_app_password
        )
        return url.render_as_string(hide_password=False)

    @property
    def keys_dir(self) -> Path:
        """Where development key material lives (never used in production)."""
        return self.data_dir / "keys"


def _refuse_private_base_url(url: str) -> None:
    """PUBLIC_BASE_URL is printed on every issued document: it must reach the public.

    A loopback address (the development default, so also an unset variable) would send
    every citizen who scans a QR code to their own machine, and a documento once issued
    cannot be reprinted with the right one.
    """
    if not url.strip():
        raise ValueError(
            "PUBLIC_BASE_URL is required in production: it is printed in the QR code and "
            "footer of every issued document"
        )
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"PUBLIC_BASE_URL must be an absolute http(s) URL, not {url!r}")
    if host == "localhost" or host.endswith(".localhost") or _is_local_ip(host):
        raise ValueError(
            f"PUBLIC_BASE_URL must be set to the platform's public address in production, "
            f"not {url!r} (a loopback or unspecified address, the development default when "
            f"unset): it is printed in the QR code and footer of every issued document"
        )


def _is_local_ip(host: str) -> bool:
    """127.0.0.0/8, ::1 and the unspecified 0.0.0.0 / :: reach no citizen."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is still this machine
    return address.is_loopback or address.is_unspecified


def load_settings(**overrides: object) -> Settings:
    """Reads settings from the environment; keyword overrides win (CLI flags, tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]

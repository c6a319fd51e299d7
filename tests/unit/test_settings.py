"""Production settings refuse what would be unsafe or wrong on every issued document."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.common.settings import Settings

PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "database_url": "postgresql://consistorio@db.internal/consistorio",
    "amqp_url": "amqp://consistorio@mq.internal/",
    "auth_jwks": "https://idp.example.es/jwks.json",
    "auth_issuer": "https://idp.example.es",
    "public_base_url": "https://sede.example.es",
    "s3_endpoint": None,
    "s3_access_key": None,
    "s3_secret_key": None,
}


def production(**changes: Any) -> Settings:
    return Settings(**{**PRODUCTION, **changes})


def test_a_complete_production_configuration_is_accepted() -> None:
    settings = production(
        s3_endpoint="s3.example.es", s3_access_key="consistorio", s3_secret_key="s3cr3t"
    )
    assert settings.public_base_url == "https://sede.example.es"
    assert settings.s3_access_key == "consistorio"


def test_files_instead_of_s3_need_no_credentials() -> None:
    assert production().s3_endpoint is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://127.8.9.10",
        "https://localhost",
        "https://LOCALHOST.:8443/sede",
        "https://sede.localhost",
        "http://[::1]:8000",
        "http://[::ffff:127.0.0.1]",
        "http://0.0.0.0:8000",
    ],
)
def test_production_refuses_a_loopback_public_base_url(url: str) -> None:
    with pytest.raises(ValidationError, match="PUBLIC_BASE_URL must be set to the platform's"):
        production(public_base_url=url)


def test_production_refuses_an_unset_public_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset, the development default (loopback) would be printed on documents."""
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    values = {k: v for k, v in PRODUCTION.items() if k != "public_base_url"}
    with pytest.raises(ValidationError, match="PUBLIC_BASE_URL must be set.*127.0.0.1"):
        Settings(**values)


def test_production_refuses_an_empty_public_base_url() -> None:
    with pytest.raises(ValidationError, match="PUBLIC_BASE_URL is required in production"):
        production(public_base_url=" ")


@pytest.mark.parametrize("url", ["sede.example.es", "ftp://sede.example.es", "https://"])
def test_production_refuses_a_public_base_url_that_is_not_an_http_url(url: str) -> None:
    with pytest.raises(ValidationError, match="PUBLIC_BASE_URL must be an absolute http"):
        production(public_base_url=url)


def test_development_keeps_the_loopback_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    assert Settings().public_base_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("access_key", "secret_key"),
    [(None, None), ("consistorio", None), (None, "s3cr3t"), ("", "s3cr3t")],
)
def test_production_refuses_s3_without_credentials(
    access_key: str | None, secret_key: str | None
) -> None:
    with pytest.raises(ValidationError, match="S3_ACCESS_KEY and S3_SECRET_KEY are required"):
        production(s3_endpoint="s3.example.es", s3_access_key=access_key, s3_secret_key=secret_key)


def test_production_refuses_an_empty_s3_secret() -> None:
    with pytest.raises(ValidationError, match="S3_ACCESS_KEY and S3_SECRET_KEY are required"):
        production(s3_endpoint="s3.example.es", s3_access_key="consistorio", s3_secret_key="")


def test_development_may_use_an_anonymous_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    settings = Settings(s3_endpoint="127.0.0.1:9000", s3_access_key=None, s3_secret_key=None)
    assert settings.s3_endpoint == "127.0.0.1:9000"


def test_bus_queue_type_is_classic_by_default_and_only_a_type_rabbitmq_has() -> None:
    assert Settings().bus_queue_type == "classic"
    assert Settings(bus_queue_type="quorum").bus_queue_type == "quorum"
    with pytest.raises(ValidationError, match="bus_queue_type"):
        Settings(bus_queue_type="stream")

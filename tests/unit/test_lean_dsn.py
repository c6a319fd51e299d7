"""The hot path's pool opens with the same database URL as the engine, TLS included."""

from __future__ import annotations

from services.common.lean import asyncpg_dsn


def test_the_tls_mode_of_the_url_becomes_asyncpgs_argument() -> None:
    dsn, ssl = asyncpg_dsn(
        "postgresql+asyncpg://app:s%40cret@db.example:6432/consistorio?ssl=require"
    )

    assert dsn == "postgresql://app:s%40cret@db.example:6432/consistorio"
    assert ssl == "require"


def test_sslmode_is_taken_as_well_and_other_parameters_stay() -> None:
    dsn, ssl = asyncpg_dsn(
        "postgresql+asyncpg://app@db/consistorio?sslmode=verify-full&application_name=x"
    )

    assert dsn == "postgresql://app@db/consistorio?application_name=x"
    assert ssl == "verify-full"


def test_a_url_without_tls_has_no_mode() -> None:
    assert asyncpg_dsn("postgresql+asyncpg://app@127.0.0.1/consistorio") == (
        "postgresql://app@127.0.0.1/consistorio",
        None,
    )

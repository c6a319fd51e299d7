"""Tables of the calendar: each council's local holidays."""

from __future__ import annotations

from sqlalchemy import Column, Date, Integer, String, Table

from services.tramitador.metadata import metadata

festivos_locales = Table(
    "festivos_locales",
    metadata,
    Column("tenant_id", String(5), primary_key=True),
    Column("fecha", Date, primary_key=True),
    Column("anio", Integer, nullable=False),
)

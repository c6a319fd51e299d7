"""REST models of the expediente's documents."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DocumentoRead(BaseModel):
    """A document of the expediente: issued from a template or attached from the repositorio."""

    id: str
    expediente_id: str
    titulo: str
    plantilla: str | None
    origen: str = Field(description="`plantilla` (emitido por el tramitador) o `adjunto`")
    estado: str = Field(description="`emitiendo`, `emitido`, `fallido` o `adjunto`")
    documento_id: str | None
    csv: str | None
    url_verificacion: str | None
    motivo: str | None = None


class DocumentoAdjunto(BaseModel):
    """A document already stored in the repositorio, attached to the expediente."""

    documento_id: str = Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )
    titulo: str = Field(min_length=1, max_length=300)

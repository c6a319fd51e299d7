"""The kernel documents what every route may answer, and answers what it documents:
problem+json for every error, the standard problems on every operation, and a 405
whose Allow lists every method of the path (not only those of its first route)."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from services.common.errors import PROBLEM_JSON, document_problems, install_problem_handlers


class Cosa(BaseModel):
    nombre: str


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    lectura, escritura = APIRouter(), APIRouter()

    @lectura.get("/cosas")
    async def listar() -> list[Cosa]:
        return []

    @escritura.post("/cosas", status_code=201)
    async def crear(cosa: Cosa) -> Cosa:
        return cosa

    @lectura.get("/cosas/{cosa_id}")
    async def leer(cosa_id: str) -> Cosa:
        return Cosa(nombre=cosa_id)

    @escritura.post("/cosas/recuentos")
    async def contar() -> dict[str, int]:
        return {"cosas": 0}

    app.include_router(lectura)
    app.include_router(escritura)
    return app


async def test_405_allows_every_method_of_the_path() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.delete("/cosas")
    assert answer.status_code == 405
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert {m.strip() for m in answer.headers["allow"].split(",")} >= {"GET", "POST"}
    # A literal path is its own resource, even where a parameter could match it.
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.delete("/cosas/recuentos")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


def test_every_operation_documents_the_standard_problems() -> None:
    document = document_problems(_app().openapi())
    crear = document["paths"]["/cosas"]["post"]["responses"]
    listar = document["paths"]["/cosas"]["get"]["responses"]
    for code in ("400", "403", "404", "422", "503", "413"):
        assert PROBLEM_JSON in crear[code]["content"], code
    assert "413" not in listar  # no body, nothing too large
    assert "application/json" not in crear["422"]["content"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
    ]

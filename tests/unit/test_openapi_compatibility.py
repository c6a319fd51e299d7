"""openapi_incompatibilities(): each breaking kind found, additive changes accepted.

Small hand-made documents before and after a change; the committed documents of the
services are checked against the code in tests/contracts/test_openapi_documents.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from services.common.contracts.openapi import openapi_incompatibilities

PATH = "/api/v1/padron/habitantes"
ITEM = f"{PATH}/{{habitante_id}}"


def habitante(**extra: Any) -> dict[str, Any]:
    """The response model, as pydantic writes it (optional fields as anyOf with null)."""
    properties: dict[str, Any] = {
        "id": {"type": "string", "title": "Id"},
        "nombre": {"type": "string", "title": "Nombre"},
        "apellido2": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Apellido2"},
        "edad": {"type": "integer", "title": "Edad"},
    }
    return {
        "type": "object",
        "title": "HabitanteRead",
        "properties": properties,
        "required": ["id", "nombre", "edad"],
        **extra,
    }


def base() -> dict[str, Any]:
    """A service with a list/create collection and an item read by id."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "padron", "version": "1.0.0"},
        "paths": {
            PATH: {
                "get": {
                    "operationId": "listar_habitantes",
                    "parameters": [
                        {
                            "name": "nombre",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 100},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/HabitanteRead"},
                                    }
                                }
                            },
                        }
                    },
                },
                "post": {
                    "operationId": "empadronar",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/HabitanteCreate"}
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "Created",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/HabitanteRead"}
                                }
                            },
                        },
                        "422": {"description": "Validation Error"},
                    },
                },
            },
            ITEM: {
                "parameters": [
                    {
                        "name": "habitante_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "get": {
                    "operationId": "leer_habitante",
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/HabitanteRead"}
                                }
                            },
                        }
                    },
                },
            },
        },
        "components": {
            "schemas": {
                "HabitanteRead": habitante(),
                "HabitanteCreate": {
                    "type": "object",
                    "title": "HabitanteCreate",
                    "properties": {
                        "nombre": {"type": "string", "maxLength": 200},
                        "apellido2": {
                            "anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"}]
                        },
                        "email": {"type": "string"},
                    },
                    "required": ["nombre"],
                },
            }
        },
    }


def changed(edit: Any) -> list[str]:
    """The problems ``edit`` (a function changing a copy of the base document) causes."""
    old = base()
    new = copy.deepcopy(old)
    edit(new)
    return openapi_incompatibilities(old, new)


def schemas(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = doc["components"]["schemas"]
    return result


def test_a_document_is_compatible_with_itself() -> None:
    assert openapi_incompatibilities(base(), base()) == []


# (case id, edit, a fragment every expected message shares, how many messages)
BREAKING: list[tuple[str, Any, str, int]] = [
    ("path removed", lambda d: d["paths"].pop(ITEM), f"{ITEM}: path removed", 1),
    (
        "operation removed",
        lambda d: d["paths"][PATH].pop("post"),
        f"POST {PATH}: operation removed",
        1,
    ),
    (
        "response field removed",
        lambda d: schemas(d)["HabitanteRead"]["properties"].pop("edad"),
        "/properties/edad: property removed",
        3,  # the list's items, the created one, the one read by id
    ),
    (
        "response field no longer required",
        lambda d: schemas(d)["HabitanteRead"]["required"].remove("edad"),
        "/properties/edad: no longer required",
        3,
    ),
    (
        "response field may now be null",
        lambda d: schemas(d)["HabitanteRead"]["properties"].update(
            edad={"anyOf": [{"type": "integer"}, {"type": "null"}]}
        ),
        "/properties/edad: type widened",
        3,
    ),
    (
        "response field type changed",
        lambda d: schemas(d)["HabitanteRead"]["properties"]["edad"].update(type="string"),
        "/properties/edad: type changed",
        3,
    ),
    (
        "request field made required",
        lambda d: schemas(d)["HabitanteCreate"]["required"].append("email"),
        f"POST {PATH}: request body application/json #/properties/email: became required",
        1,
    ),
    (
        "request field type changed",
        lambda d: schemas(d)["HabitanteCreate"]["properties"]["email"].update(type="integer"),
        "#/properties/email: type changed",
        1,
    ),
    (
        "request constraint inside an optional field tightened",
        lambda d: schemas(d)["HabitanteCreate"]["properties"]["apellido2"]["anyOf"][0].update(
            maxLength=50
        ),
        "#/properties/apellido2: maxLength tightened from 200 to 50",
        1,
    ),
    (
        "new required parameter",
        lambda d: d["paths"][PATH]["get"]["parameters"].append(
            {"name": "distrito", "in": "query", "required": True, "schema": {"type": "string"}}
        ),
        f"GET {PATH}: query parameter 'distrito': new and required",
        1,
    ),
    (
        "parameter became required",
        lambda d: d["paths"][PATH]["get"]["parameters"][0].update(required=True),
        "query parameter 'nombre': became required",
        1,
    ),
    (
        "parameter type changed",
        lambda d: d["paths"][PATH]["get"]["parameters"][0]["schema"].update(type="integer"),
        "query parameter 'nombre' #: type changed",
        1,
    ),
    (
        "path-level parameter type changed",
        lambda d: d["paths"][ITEM]["parameters"][0]["schema"].update(type="integer"),
        f"GET {ITEM}: path parameter 'habitante_id' #: type changed",
        1,
    ),
    (
        "success status changed",
        lambda d: d["paths"][PATH]["post"]["responses"].update(
            {"200": d["paths"][PATH]["post"]["responses"].pop("201")}
        ),
        f"POST {PATH}: response 201: removed",
        1,
    ),
    (
        "media type no longer accepted",
        lambda d: d["paths"][PATH]["post"]["requestBody"].update(
            content={"multipart/form-data": {"schema": {"type": "object"}}}
        ),
        "request body application/json: no longer accepted",
        1,
    ),
    (
        "request body became required",
        lambda d: d["paths"][ITEM]["get"].update(
            requestBody={"required": True, "content": {"application/json": {"schema": {}}}}
        ),
        f"GET {ITEM}: request body: became required",
        1,
    ),
]


@pytest.mark.parametrize(
    ("edit", "expected", "count"),
    [case[1:] for case in BREAKING],
    ids=[case[0] for case in BREAKING],
)
def test_a_breaking_change_is_found(edit: Any, expected: str, count: int) -> None:
    problems = changed(edit)
    assert len(problems) == count, problems
    assert all(expected in problem for problem in problems), problems


def _rename_component(d: dict[str, Any]) -> None:
    """HabitanteRead becomes Habitante, and every reference follows."""
    schemas(d)["Habitante"] = schemas(d).pop("HabitanteRead")
    schemas(d)["Habitante"]["title"] = "Habitante"
    for operation in (d["paths"][PATH]["post"], d["paths"][ITEM]["get"]):
        content = operation["responses"]["201" if "requestBody" in operation else "200"]
        content["content"]["application/json"]["schema"]["$ref"] = "#/components/schemas/Habitante"
    listing = d["paths"][PATH]["get"]["responses"]["200"]["content"]["application/json"]
    listing["schema"]["items"]["$ref"] = "#/components/schemas/Habitante"


ADDITIVE: list[tuple[str, Any]] = [
    ("path added", lambda d: d["paths"].update({f"{PATH}/buscar": {"get": {"responses": {}}}})),
    (
        "operation added",
        lambda d: d["paths"][ITEM].update(delete={"responses": {"204": {"description": "x"}}}),
    ),
    (
        "optional response field added",
        lambda d: schemas(d)["HabitanteRead"]["properties"].update(dni={"type": "string"}),
    ),
    (
        "optional request field added",
        lambda d: schemas(d)["HabitanteCreate"]["properties"].update(dni={"type": "string"}),
    ),
    (
        "optional parameter added",
        lambda d: d["paths"][PATH]["get"]["parameters"].append(
            {"name": "pagina", "in": "query", "required": False, "schema": {"type": "integer"}}
        ),
    ),
    (
        "request field no longer required",
        lambda d: schemas(d)["HabitanteCreate"]["required"].clear(),
    ),
    (
        "request constraint loosened",
        lambda d: schemas(d)["HabitanteCreate"]["properties"]["nombre"].update(maxLength=400),
    ),
    (
        "request field may now be null",
        lambda d: schemas(d)["HabitanteCreate"]["properties"].update(
            email={"anyOf": [{"type": "string"}, {"type": "null"}]}
        ),
    ),
    (
        "response field made required",
        lambda d: schemas(d)["HabitanteRead"]["required"].append("apellido2"),
    ),
    (
        "response field no longer nullable",
        lambda d: schemas(d)["HabitanteRead"]["properties"].update(apellido2={"type": "string"}),
    ),
    ("component renamed", _rename_component),
    ("operation id renamed", lambda d: d["paths"][PATH]["post"].update(operationId="alta")),
    (
        "descriptions and titles edited",
        lambda d: schemas(d)["HabitanteRead"].update(title="Otro", description="Un habitante"),
    ),
    (
        "an error answer changed",
        lambda d: d["paths"][PATH]["post"]["responses"].pop("422"),
    ),
    ("success status added", lambda d: d["paths"][ITEM]["get"]["responses"].update({"203": {}})),
]


@pytest.mark.parametrize("edit", [case[1] for case in ADDITIVE], ids=[c[0] for c in ADDITIVE])
def test_an_additive_change_is_accepted(edit: Any) -> None:
    assert changed(edit) == []


def test_a_recursive_schema_is_compared_without_looping() -> None:
    def tree(d: dict[str, Any]) -> None:
        schemas(d)["HabitanteRead"]["properties"]["hijos"] = {
            "type": "array",
            "items": {"$ref": "#/components/schemas/HabitanteRead"},
        }

    old = base()
    tree(old)
    new = copy.deepcopy(old)
    schemas(new)["HabitanteRead"]["properties"].pop("nombre")
    problems = openapi_incompatibilities(old, new)
    assert problems and all("nombre: property removed" in p for p in problems), problems
    assert openapi_incompatibilities(old, copy.deepcopy(old)) == []

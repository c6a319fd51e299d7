"""The merged OpenAPI document: paths, tags, shared and clashing components, security."""

from __future__ import annotations

import copy
from typing import Any

from gateway.openapi_merge import BEARER_SCHEME, merge_openapi


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _registro() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "registro", "version": "1.0.0"},
        "paths": {
            "/api/v1/registro/asientos": {
                "post": {
                    "operationId": "crear",
                    "requestBody": _json_body(_ref("Interesado")),
                    "responses": {"201": _json_body(_ref("Expediente"))},
                }
            },
            "/healthz": {"get": {"responses": {"200": {"description": "ok"}}}},
        },
        "components": {
            "schemas": {
                "Interesado": {"type": "object", "properties": {"nif": {"type": "string"}}},
                "Expediente": {
                    "type": "object",
                    "properties": {"titular": _ref("Interesado")},
                },
                "Pagina": {"type": "object", "properties": {"total": {"type": "integer"}}},
            }
        },
    }


def _tramitador() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "tramitador", "version": "1.0.0"},
        "paths": {
            "/api/v1/tramitador/expedientes/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True}],
                "get": {
                    "operationId": "crear",
                    "tags": ["expedientes"],
                    "responses": {"200": _json_body(_ref("Expediente"))},
                },
            },
            "/api/v1/tramitador/eventos": {
                "get": {"responses": {"200": _json_body(_ref("Evento"))}},
            },
        },
        "components": {
            "schemas": {
                # Same name as registro's, different content: must be renamed.
                "Interesado": {"type": "object", "properties": {"cif": {"type": "string"}}},
                # Textually identical to registro's, but its Interesado is another one.
                "Expediente": {
                    "type": "object",
                    "properties": {"titular": _ref("Interesado")},
                },
                # Identical in content and meaning: shared.
                "Pagina": {"type": "object", "properties": {"total": {"type": "integer"}}},
                "Evento": {
                    "oneOf": [_ref("Interesado"), _ref("Pagina")],
                    "discriminator": {
                        "propertyName": "tipo",
                        "mapping": {"interesado": "#/components/schemas/Interesado"},
                    },
                },
            }
        },
    }


def _merge() -> dict[str, Any]:
    return merge_openapi(
        {"registro": _registro(), "tramitador": _tramitador()}, title="Consistorio", version="9.9"
    )


def test_paths_of_every_service_are_merged_and_unreachable_ones_dropped() -> None:
    merged = _merge()

    assert merged["openapi"] == "3.1.0"
    assert merged["info"]["title"] == "Consistorio"
    assert merged["info"]["version"] == "9.9"
    assert set(merged["paths"]) == {
        "/api/v1/registro/asientos",
        "/api/v1/tramitador/expedientes/{id}",
        "/api/v1/tramitador/eventos",
    }
    item = merged["paths"]["/api/v1/tramitador/expedientes/{id}"]
    assert item["parameters"] == [{"name": "id", "in": "path", "required": True}]


def test_untagged_operations_get_the_service_tag_and_tagged_ones_keep_theirs() -> None:
    merged = _merge()

    assert merged["paths"]["/api/v1/registro/asientos"]["post"]["tags"] == ["registro"]
    assert merged["paths"]["/api/v1/tramitador/eventos"]["get"]["tags"] == ["tramitador"]
    tagged = merged["paths"]["/api/v1/tramitador/expedientes/{id}"]["get"]
    assert tagged["tags"] == ["expedientes"]
    assert {t["name"] for t in merged["tags"]} == {"registro", "tramitador"}


def test_identical_schemas_are_shared_and_clashing_ones_renamed_with_their_refs() -> None:
    merged = _merge()
    schemas = merged["components"]["schemas"]

    assert schemas["Interesado"] == _registro()["components"]["schemas"]["Interesado"]
    assert schemas["TramitadorInteresado"]["properties"] == {"cif": {"type": "string"}}
    # Expediente clashes only through the renamed Interesado it refers to.
    assert schemas["Expediente"]["properties"]["titular"] == _ref("Interesado")
    assert schemas["TramitadorExpediente"]["properties"]["titular"] == _ref("TramitadorInteresado")
    assert "TramitadorPagina" not in schemas
    assert set(schemas) == {
        "Interesado",
        "Expediente",
        "Pagina",
        "TramitadorInteresado",
        "TramitadorExpediente",
        "Evento",
        "Problem",  # the gateway's own answers (401, 429, 502, 504)
    }

    registro_op = merged["paths"]["/api/v1/registro/asientos"]["post"]
    assert registro_op["requestBody"]["content"]["application/json"]["schema"] == _ref("Interesado")
    tramitador_op = merged["paths"]["/api/v1/tramitador/expedientes/{id}"]["get"]
    assert tramitador_op["responses"]["200"]["content"]["application/json"]["schema"] == _ref(
        "TramitadorExpediente"
    )
    evento = schemas["Evento"]
    assert evento["oneOf"] == [_ref("TramitadorInteresado"), _ref("Pagina")]
    assert evento["discriminator"]["mapping"] == {
        "interesado": "#/components/schemas/TramitadorInteresado"
    }


def test_rename_does_not_overwrite_an_existing_component_of_that_name() -> None:
    first = {
        "paths": {},
        "components": {
            "schemas": {
                "Tasa": {"type": "string"},
                "OtroTasa": {"type": "boolean"},
            }
        },
    }
    second = {
        "paths": {
            "/api/v1/otro/tasas": {"get": {"responses": {"200": _json_body(_ref("Tasa"))}}},
        },
        "components": {"schemas": {"Tasa": {"type": "integer"}}},
    }

    merged = merge_openapi({"primero": first, "otro": second}, title="t", version="1")
    schemas = merged["components"]["schemas"]

    assert schemas["OtroTasa"] == {"type": "boolean"}
    assert schemas["OtroTasa2"] == {"type": "integer"}
    op = merged["paths"]["/api/v1/otro/tasas"]["get"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == _ref("OtroTasa2")


def test_bearer_scheme_is_added_and_required_globally() -> None:
    merged = _merge()

    scheme = merged["components"]["securitySchemes"][BEARER_SCHEME]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    assert merged["security"] == [{BEARER_SCHEME: []}]


def test_operation_ids_stay_unique_across_services() -> None:
    merged = _merge()

    assert merged["paths"]["/api/v1/registro/asientos"]["post"]["operationId"] == "crear"
    other = merged["paths"]["/api/v1/tramitador/expedientes/{id}"]["get"]["operationId"]
    assert other == "tramitador_crear"


def test_service_security_schemes_are_kept_and_renamed_when_clashing() -> None:
    service = {
        "paths": {
            "/api/v1/padron/altas": {
                "post": {"responses": {"201": {"description": "ok"}}},
            },
            "/api/v1/padron/bajas": {
                "post": {
                    "security": [{"bearerAuth": ["padron"]}],
                    "responses": {"201": {"description": "ok"}},
                },
            },
        },
        "components": {"securitySchemes": {"bearerAuth": {"type": "apiKey", "in": "header"}}},
        "security": [{"bearerAuth": []}],
    }

    merged = merge_openapi({"padron": service}, title="t", version="1")

    schemes = merged["components"]["securitySchemes"]
    assert schemes[BEARER_SCHEME]["scheme"] == "bearer"
    assert schemes["PadronBearerAuth"] == {"type": "apiKey", "in": "header"}
    altas = merged["paths"]["/api/v1/padron/altas"]["post"]
    bajas = merged["paths"]["/api/v1/padron/bajas"]["post"]
    assert altas["security"] == [{"PadronBearerAuth": []}]
    assert bajas["security"] == [{"PadronBearerAuth": ["padron"]}]


def test_a_service_cannot_describe_paths_of_another_service() -> None:
    registro = {"paths": {"/api/v1/registro/x": {"get": {"summary": "registro"}}}}
    intruso = {
        "paths": {
            "/api/v1/registro/x": {"post": {"summary": "intruso"}},
            "/api/v1/registro2/y": {"get": {"summary": "propio"}},
        }
    }

    merged = merge_openapi({"registro": registro, "registro2": intruso}, title="t", version="1")

    kept = merged["paths"]["/api/v1/registro/x"]
    assert set(kept) == {"get"}
    assert kept["get"]["summary"] == "registro"
    assert kept["get"]["tags"] == ["registro"]
    assert merged["paths"]["/api/v1/registro2/y"]["get"]["summary"] == "propio"


def test_inputs_are_not_modified() -> None:
    registro, tramitador = _registro(), _tramitador()
    before = copy.deepcopy((registro, tramitador))

    merge_openapi({"registro": registro, "tramitador": tramitador}, title="t", version="1")

    assert (registro, tramitador) == before


def test_every_operation_documents_what_the_gateway_may_answer() -> None:
    merged = merge_openapi({"registro": _registro()}, title="t", version="1")
    operation = merged["paths"]["/api/v1/registro/asientos"]["post"]
    for code in ("401", "413", "429", "502", "504"):
        schema = operation["responses"][code]["content"]["application/problem+json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Problem"}


def test_merged_document_tells_clients_to_send_an_idempotency_key() -> None:
    merged = merge_openapi({}, title="Consistorio", version="1")
    description = merged["info"]["description"]
    assert "Idempotency-Key" in description
    assert "misma clave" in description

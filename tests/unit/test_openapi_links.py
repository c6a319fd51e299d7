"""The OpenAPI links of creating routes point at operations of the same document."""

from __future__ import annotations

import json
from pathlib import Path

from services.common.openapi_links import enlaces_a


def test_a_link_names_the_operation_by_json_pointer_and_passes_the_id() -> None:
    extra = enlaces_a(
        "liquidacion_id",
        "$response.body#/id",
        anular="POST /api/v1/pagos/liquidaciones/{liquidacion_id}/anular",
    )
    assert extra == {
        "responses": {
            "201": {
                "links": {
                    "anular": {
                        "operationRef": "#/paths/~1api~1v1~1pagos~1liquidaciones"
                        "~1{liquidacion_id}~1anular/post",
                        "parameters": {"liquidacion_id": "$response.body#/id"},
                    }
                }
            }
        }
    }


def test_every_link_of_the_documents_resolves_to_one_of_their_operations() -> None:
    docs = Path(__file__).parents[2] / "docs" / "openapi"
    seen = 0
    for path in docs.glob("*.json"):
        document = json.loads(path.read_text())
        for item in document["paths"].values():
            for operation in item.values():
                for response in (operation.get("responses") or {}).values():
                    for link in (response.get("links") or {}).values():
                        pointer, method = (
                            link["operationRef"].removeprefix("#/paths/").rsplit("/", 1)
                        )
                        target = pointer.replace("~1", "/").replace("~0", "~")
                        assert method in document["paths"][target], link
                        seen += 1
    assert seen >= 9

"""The committed OpenAPI documents (docs/openapi/) are the code's, and the tool guards them.

The build fails when a route, a field or a parameter changes without its document being
regenerated, and regenerating refuses a change that breaks clients of the committed one.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from services import openapi_docs
from services.catalog import SERVICES
from services.common.contracts.openapi import openapi_incompatibilities
from services.openapi_docs import (
    DOCS_DIR,
    breaking_changes,
    build_documents,
    read_committed,
    render,
    stale_documents,
)

Documents = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def documents() -> Documents:
    return build_documents()


def test_every_service_has_a_committed_document() -> None:
    committed = sorted(path.stem for path in DOCS_DIR.glob("*.json"))
    assert committed == sorted(SERVICES), "run `make openapi` and commit docs/openapi/"


def test_committed_documents_are_the_codes(documents: Documents) -> None:
    """Fails on any REST change not regenerated; says whether it also breaks clients."""
    stale = stale_documents(documents)
    breaking = breaking_changes(documents)
    assert not stale, (
        f"docs/openapi/ is out of date for {', '.join(stale)}: run `make openapi` and commit "
        "it."
        + ("\nThese changes break clients of the committed API:\n" + "\n".join(breaking))
        * bool(breaking)
    )


def test_each_document_is_the_apps_own(documents: Documents) -> None:
    """The documents hold each service's own routes, under its gateway segment."""
    for name, document in documents.items():
        segments = SERVICES[name]().gateway_routes
        paths = list(document["paths"])
        assert paths, name
        assert all(
            any(path.startswith(f"/api/v1/{segment}") for segment in segments) for path in paths
        ), (name, paths)


def test_building_twice_gives_the_same_bytes(documents: Documents) -> None:
    again = build_documents(["sellado", "csv"])
    for name in ("sellado", "csv"):
        assert render(again[name]) == render(documents[name])


# --- the command --------------------------------------------------------------------


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch, documents: Documents) -> Documents:
    """The command builds from a copy of the documents built once for this module."""
    copies = copy.deepcopy(documents)
    monkeypatch.setattr(openapi_docs, "build_documents", lambda names=None: copies)
    return copies


def test_write_then_check(tmp_path: Path, fast: Documents) -> None:
    assert openapi_docs.main(["check", "--dir", str(tmp_path)]) == 1
    assert openapi_docs.main(["write", "--dir", str(tmp_path)]) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == sorted(fast)
    assert openapi_docs.main(["check", "--dir", str(tmp_path)]) == 0


def test_an_additive_change_is_stale_until_written(
    tmp_path: Path, fast: Documents, capsys: pytest.CaptureFixture[str]
) -> None:
    openapi_docs.main(["write", "--dir", str(tmp_path)])
    fast["tramitador"]["paths"]["/api/v1/tramitador/nueva"] = {"get": {"responses": {}}}
    assert openapi_docs.main(["check", "--dir", str(tmp_path)]) == 1
    assert "run `make openapi`" in capsys.readouterr().err
    assert openapi_docs.main(["write", "--dir", str(tmp_path)]) == 0
    assert "/api/v1/tramitador/nueva" in (read_committed("tramitador", tmp_path) or {})["paths"]


def test_a_breaking_change_is_refused_unless_allowed(
    tmp_path: Path, fast: Documents, capsys: pytest.CaptureFixture[str]
) -> None:
    openapi_docs.main(["write", "--dir", str(tmp_path)])
    removed = next(iter(fast["csv"]["paths"]))
    del fast["csv"]["paths"][removed]
    for action in ("check", "write"):
        assert openapi_docs.main([action, "--dir", str(tmp_path)]) == 1
        assert f"csv: {removed}: path removed" in capsys.readouterr().err
    assert removed in (read_committed("csv", tmp_path) or {})["paths"], "refused, not written"
    assert openapi_docs.main(["write", "--allow-breaking", "--dir", str(tmp_path)]) == 0
    assert openapi_docs.main(["check", "--dir", str(tmp_path)]) == 0


def test_a_gone_service_is_a_breaking_change(tmp_path: Path, fast: Documents) -> None:
    openapi_docs.main(["write", "--dir", str(tmp_path)])
    (tmp_path / "padron.json").write_text(json.dumps({"paths": {}}), encoding="utf-8")
    assert breaking_changes(fast, tmp_path) == [
        "padron: the service is gone, and every route with it"
    ]
    assert openapi_docs.main(["write", "--allow-breaking", "--dir", str(tmp_path)]) == 0
    assert not (tmp_path / "padron.json").exists()


def test_the_committed_documents_are_their_own_baseline() -> None:
    """Sanity of the checker on real documents: each is compatible with itself."""
    for path in DOCS_DIR.glob("*.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        assert openapi_incompatibilities(document, document) == [], path.name

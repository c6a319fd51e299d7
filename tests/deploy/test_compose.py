"""deploy/compose.yaml is a valid Compose file that starts things in a safe order.

Validated against the Compose Specification's JSON Schema (vendored in
tests/fixtures/compose); then what the schema cannot know: every service of the
catalog runs with a health check, starts only after the migrations and the broker,
the gateway only after the services, and no password is written in the file.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from services.catalog import SERVICES

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "tests" / "fixtures" / "compose" / "compose-spec.json").read_text())
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def validate(document: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(SCHEMA).validate(document)


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    validate(compose)
    broken = copy.deepcopy(compose)
    broken["services"]["registro"]["depends_on"]["migrate"]["condition"] = "service_finished"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_every_service_and_the_infrastructure_are_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in (*SERVICES, "gateway"):
        assert services[name]["command"][:2] == ["serve", name]
        assert "healthcheck" in services[name], name
        assert services[name]["read_only"] is True and services[name]["cap_drop"] == ["ALL"]
    for infrastructure in ("postgres", "rabbitmq", "minio", "otel-collector"):
        assert infrastructure in services
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"


def test_services_start_after_migrations_and_broker_gateway_last(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["rabbitmq"]["condition"] == "service_healthy"
    gateway = services["gateway"]["depends_on"]
    assert {name: gateway[name]["condition"] for name in SERVICES} == dict.fromkeys(
        SERVICES, "service_healthy"
    )
    assert services["rabbitmq"]["depends_on"]["broker-definitions"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_no_password_is_written_in_the_file() -> None:
    text = COMPOSE_FILE.read_text()
    for url in re.findall(r"(?:postgresql|amqp)://[^\s'\"]+", text):
        password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        assert password.startswith("${"), url
    for line in re.findall(r"(?:PASSWORD|PASS|SECRET_KEY|PASSPHRASE)[A-Z_]*: (.+)", text):
        assert line.startswith("${"), line


def test_services_declare_the_queue_type_of_the_broker_definitions(
    compose: dict[str, Any],
) -> None:
    definitions = json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())
    types = {q["arguments"]["x-queue-type"] for q in definitions["queues"]}
    for name in (*SERVICES, "gateway"):
        assert {compose["services"][name]["environment"]["BUS_QUEUE_TYPE"]} == types, name


def test_every_image_is_pinned_to_a_release(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest", f"{name}: {image}"

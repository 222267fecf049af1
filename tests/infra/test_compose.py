"""Docker is not available on these machines: check the compose stack's structure instead."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"
COMPOSE = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
LONG_RUNNING = {"postgres", "seaweedfs", "mlflow", "prefect-server", "prefect-worker"}


def test_services_and_ports() -> None:
    services = COMPOSE["services"]
    assert LONG_RUNNING | {"create-buckets"} <= set(services)
    ports = {name: [p.split(":")[0] for p in svc.get("ports", [])] for name, svc in services.items()}
    assert ports["mlflow"] == ["5000"] and ports["prefect-server"] == ["4200"] and ports["postgres"] == ["5432"]


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name in LONG_RUNNING:
        check = COMPOSE["services"][name].get("healthcheck")
        assert check and check["test"], name


def test_dependencies_wait_for_health() -> None:
    for name, service in COMPOSE["services"].items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in COMPOSE["services"], (name, dependency)
            expected = "service_completed_successfully" if dependency == "create-buckets" else "service_healthy"
            assert condition["condition"] == expected, (name, dependency)


def test_mlflow_uses_postgres_and_served_s3_artifacts() -> None:
    command = " ".join(COMPOSE["services"]["mlflow"]["command"])
    # explicit driver: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which the image does not ship
    assert "--backend-store-uri=postgresql+psycopg2://" in command and "--serve-artifacts" in command
    assert "--artifacts-destination=s3://" in command


def test_no_inline_secrets_and_env_example_covers_every_variable() -> None:
    text = (INFRA / "docker-compose.yml").read_text()
    for key in ("PASSWORD", "SECRET", "API_KEY"):
        for line in text.splitlines():
            if key in line and ":" in line and not line.strip().startswith("#"):
                value = line.split(":", 1)[1].strip()
                assert value.startswith("${") or "${" in value or not value, line
    used = set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))
    example = {line.split("=", 1)[0] for line in (INFRA / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    assert used <= example, used - example


def test_dockerfiles_pin_torch_and_run_as_non_root() -> None:
    for name in ("Dockerfile", "Dockerfile.cuda"):
        text = (INFRA / name).read_text()
        lock = "requirements-gpu.lock" if name == "Dockerfile.cuda" else "requirements.lock"
        assert "torch==2.13.0" in text and "USER reverso" in text and f"-r {lock}" in text
        # the OpenVINO exporter's own venv, and the variable that points the backend at it
        assert "requirements-export.lock" in text and "REVERSO_OPENVINO_EXPORTER=/opt/export-venv/" in text

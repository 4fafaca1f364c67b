"""deploy/compose.yaml is held to the code: images cannot be pulled here, so the topology it
describes runs in the other distributed tests as processes, and this checks that the file
describes that same topology (the variables it sets are ones Tributary reads, the commands
it runs exist, its health check asks a route the app serves).
"""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from tests.distributed.conftest import ROOT

DEPLOY = ROOT / "deploy"
TRIBUTARY_SERVICES = ("app", "worker-1", "worker-2")


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _read_variables() -> set[str]:
    """The TRIBUTARY_ variables the code reads: named in a string anywhere in its modules, or
    a Settings field, which common/settings.py reads as TRIBUTARY_<FIELD>."""
    names: set[str] = set()
    for package in ("common", "core", "runners", "storage", "demo"):
        for path in (ROOT / package).rglob("*.py"):
            names |= set(re.findall(r"TRIBUTARY_[A-Z0-9_]+", path.read_text()))
    names |= {"TRIBUTARY_" + name.upper() for name in re.findall(r"^    (\w+): ", (ROOT / "common/settings.py")
                                                                   .read_text(), flags=re.M)}
    return names


def test_it_runs_the_app_postgres_redis_and_two_workers():
    services = _compose()["services"]
    assert set(services) == {"app", "postgres", "redis", "worker-1", "worker-2"}
    for name in TRIBUTARY_SERVICES:
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert services[name]["environment"]["TRIBUTARY_EXECUTOR"] == "celery"
    for worker in ("worker-1", "worker-2"):
        assert services[worker]["command"] == ["python", "-m", "core.worker"]
    # Each Tributary service has a data dir of its own: no volume is shared between them.
    volumes = [services[name]["volumes"][0].split(":")[0] for name in TRIBUTARY_SERVICES]
    assert len(set(volumes)) == len(volumes)


def test_every_tributary_variable_it_sets_is_one_the_code_reads():
    read = _read_variables()
    services = _compose()["services"]
    set_here = {key for name in TRIBUTARY_SERVICES for key in services[name]["environment"]
                if key.startswith("TRIBUTARY_")}
    example = {line.split("=", 1)[0] for line in (DEPLOY / "tributary.env.example").read_text().splitlines()
               if line.startswith("TRIBUTARY_") or line.startswith("# TRIBUTARY_")}
    assert set_here and set_here <= read, set_here - read
    assert {name.lstrip("# ") for name in example} - {"TRIBUTARY_BASE_IMAGE"} <= read


def test_the_commands_and_the_health_route_exist():
    worker_help = subprocess.run([sys.executable, "-m", "core.worker", "--help"], cwd=ROOT, capture_output=True,
                                 text=True)
    assert worker_help.returncode == 0 and "--queues" in worker_help.stdout, worker_help.stderr
    app = _compose()["services"]["app"]
    health = " ".join(app["healthcheck"]["test"])
    assert "/api/health" in health and '"/api/health"' in (ROOT / "app.py").read_text()
    assert app["ports"] == ["8501:8501"] and "8501" in health
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "--server.port=8501" in dockerfile and "requirements-extras.txt" in dockerfile
    for copied in ("requirements.txt", "requirements-extras.txt"):
        assert (ROOT / copied).exists()


def test_the_warehouse_database_it_names_is_created():
    environment = _compose()["services"]["app"]["environment"]
    warehouse = environment["TRIBUTARY_POSTGRES_URL"].rsplit("/", 1)[1]
    assert f"CREATE DATABASE {warehouse} " in (DEPLOY / "postgres-init.sql").read_text()


def test_secrets_come_from_the_env_file_not_the_compose_file():
    text = (DEPLOY / "compose.yaml").read_text()
    assert "${TRIBUTARY_SECRET_KEY:?" in text and "${POSTGRES_PASSWORD:?" in text
    assert "deploy/tributary.env" in (ROOT / ".gitignore").read_text()

"""docker-compose.yml against `make run-prod` (scripts/run_prod.py): the same services, the same configuration files
(deploy/haproxy.cfg, deploy/endpoints.production.yml, deploy/redis.conf) with every variable they read set, the
same published ports, restart policies and persistent data. Parsed, not run: Docker does not run here."""

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from bot.core.settings import ROOT

VARIABLE = re.compile(r"\$\{(\w+)")


def run_prod():
    spec = importlib.util.spec_from_file_location("run_prod", ROOT / "scripts" / "run_prod.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory):
    module = run_prod()
    ports, shared, services = module.topology(tmp_path_factory.mktemp("var"), 0)
    return module, ports, shared, {service.name: service for service in services}


def variables(path: Path) -> set[str]:
    """The environment variables a configuration file reads (``${VAR}``), comments left out."""
    text = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
    return set(VARIABLE.findall(text))


def test_the_same_services_run_in_both(compose, topology) -> None:
    _module, _ports, _shared, services = topology
    # migrate is a step of run_prod.py (load-knowledge, index), crm-worker starts only with an external CRM
    assert set(compose) - {"migrate", "crm-worker"} == set(services)
    assert compose["migrate"]["command"][-1] == "python -m bot load-knowledge && python -m bot index"


def test_every_variable_of_the_load_balancer_is_set(compose, topology) -> None:
    _module, _ports, _shared, services = topology
    needed = variables(ROOT / "deploy" / "haproxy.cfg")
    assert needed == set(compose["lb"]["environment"]) == set(services["lb"].env)
    assert "./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in compose["lb"]["volumes"]
    assert str(ROOT / "deploy" / "haproxy.cfg") in services["lb"].argv
    for name in ("rasa-1", "rasa-2", "actions-1", "actions-2"):  # each backend server is a service of its own
        address = compose["lb"]["environment"][name.upper().replace("-", "_")]
        host, port = address.split(":")
        assert host == name
        assert port in compose[name]["expose"]
        assert services["lb"].env[name.upper().replace("-", "_")].endswith(f":{services[name].argv[-1]}")


def test_every_variable_of_the_rasa_endpoints_is_set(compose, topology) -> None:
    _module, _ports, shared, services = topology
    needed = variables(ROOT / "deploy" / "endpoints.production.yml")
    for name in ("rasa-1", "rasa-2"):
        assert needed <= set(compose[name]["environment"]), name
        assert needed <= set(shared) | set(services[name].env), name
        assert "deploy/endpoints.production.yml" in services[name].argv
    assert compose["rasa-1"]["environment"]["ACTION_SERVER_URL"] == "http://lb:5055/webhook"
    assert services["rasa-1"].env["ACTION_SERVER_URL"].endswith(f":{_ports['lb-actions']}/webhook")


def test_closer_processes_get_the_same_settings(compose, topology) -> None:
    _module, _ports, shared, services = topology
    for name in ("actions-1", "actions-2", "console"):
        environment = compose[name]["environment"]
        assert set(shared) <= set(environment), name
        assert "CLOSER_METRICS_PORT" in environment and "CLOSER_METRICS_PORT" in services[name].env
    assert compose["console"]["environment"]["CLOSER_RASA_URL"] == "http://lb:5005"
    for name in ("CLOSER_ACTIONS_URL", "CLOSER_REDIS_URL"):  # what the console's /ready checks besides
        assert name in compose["console"]["environment"] and name in services["console"].env
    assert (
        compose["console"]["environment"]["CLOSER_TRACKER_DATABASE_URL"]
        == (compose["console"]["environment"]["CLOSER_DATABASE_URL"])
    )
    assert shared["CLOSER_TRACKER_DATABASE_URL"] == shared["CLOSER_DATABASE_URL"]


def test_published_ports_restarts_and_data(compose, topology) -> None:
    _module, ports, _shared, services = topology
    assert compose["lb"]["ports"] == [f"{ports['lb-rasa']}:5005"]
    assert compose["console"]["ports"] == [f"{ports['console']}:8000"]
    for name in ("actions-1", "actions-2", "rasa-1", "rasa-2", "console"):  # started again when they exit, in both
        assert compose[name]["restart"] == "unless-stopped" and services[name].restart, name
    assert compose["redis"]["volumes"] == ["./deploy/redis.conf:/usr/local/etc/redis/redis.conf:ro"]
    assert str(ROOT / "deploy" / "redis.conf") in services["redis"].argv
    # the data that outlives a restart: PostgreSQL's and Chroma's, in named volumes and under --var
    assert compose["postgres"]["volumes"] == ["postgres:/var/lib/postgresql/data"]
    assert compose["chroma"]["volumes"] == ["chroma:/data"]
    assert any(part.endswith("/postgres") for part in services["postgres"].argv)
    assert any(part.endswith("/chroma") for part in services["chroma"].argv)

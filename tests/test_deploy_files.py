"""The deploy kit's files (``Dockerfile``, ``.dockerignore``, ``compose.yaml``,
``deploy/haproxy.cfg``, ``deploy/kubernetes/``) say what ``cueflow serve`` understands: every
environment variable they set is a setting it reads (and its value parses), every command line
is one the CLI accepts, the probes read ``/status`` (readiness) and ``/health`` (liveness), and
the orchestrator waits longer than the drain. Containers cannot be built here: these checks
read the files."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from pydantic import AliasChoices

from cueflow.cli import app
from cueflow.config import Settings
from tests.haproxy_support import balancer_config, haproxy_binary

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"


def accepted_env() -> set[str]:
    """Every environment variable ``cueflow serve`` reads: each setting's names (upper case)."""
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        names |= {choice.upper() for choice in choices if isinstance(choice, str)}
    return names


def _serve_options() -> set[str]:
    command = typer.main.get_command(app)
    serve = command.commands["serve"]  # type: ignore[attr-defined]
    return {opt for param in serve.params for opt in [*param.opts, *param.secondary_opts]}


def _check_command(args: list[str]) -> None:
    """``args`` (after the ``cueflow`` entry point) is a command the CLI has, with its options."""
    command = typer.main.get_command(app)
    assert args, "no command"
    if args[0] == "serve":
        for arg in args[1:]:
            if arg.startswith("--"):
                assert arg.split("=")[0] in _serve_options(), arg
        return
    group = command.commands[args[0]]  # type: ignore[attr-defined]
    assert args[1] in group.commands, args


def _check_env(env: dict[str, Any], interpolated_ok: bool = False) -> None:
    """Every name is a setting and the values (``${...}`` ones aside) make valid Settings."""
    unknown = set(env) - accepted_env()
    assert not unknown, f"cueflow serve reads no {sorted(unknown)}"
    values = {
        name: str(value)
        for name, value in env.items()
        if not (interpolated_ok and "${" in str(value))
    }
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    assert settings.graceful_timeout_seconds >= 0


# Dockerfile ---------------------------------------------------------------------------------


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(instruction, arguments) per stage, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def _exec_form(arguments: str) -> list[str]:
    value = yaml.safe_load(arguments)  # a JSON array is YAML
    assert isinstance(value, list), f"not the exec form: {arguments}"
    return [str(v) for v in value]


def test_the_image_runs_cueflow_serve_as_an_unprivileged_user_on_a_slim_python() -> None:
    stages = _dockerfile_stages()
    final = stages[-1]
    image = final[0][1].split()[0]
    assert re.fullmatch(r"python:3\.1[1-9]-slim", image), image
    users = [args for instruction, args in final if instruction == "USER"]
    assert users, "no USER: the server would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user
    [entrypoint] = [_exec_form(a) for i, a in final if i == "ENTRYPOINT"]
    assert entrypoint == ["cueflow"]
    [cmd] = [_exec_form(a) for i, a in final if i == "CMD"]
    assert cmd[:1] == ["serve"] and "--host" in cmd and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    _check_command(cmd)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'cueflow = "cueflow.__main__:main"' in pyproject  # the entry point the image calls
    installs = [a for stage in stages for i, a in stage if i == "RUN" and "pip install" in a]
    assert any('".[server,postgres]"' in a for a in installs), installs  # serve, on PostgreSQL
    env = {}
    for instruction, arguments in final:
        if instruction == "ENV":
            env |= dict(item.split("=", 1) for item in shlex.split(arguments))
    ours = {k: v for k, v in env.items() if not k.startswith(("PYTHON", "PATH", "PIP_"))}
    _check_env(ours)


def test_the_image_copies_what_the_package_needs_and_the_context_leaves_the_rest_out() -> None:
    copied = [
        path
        for stage in _dockerfile_stages()
        for instruction, arguments in stage
        if instruction == "COPY" and not arguments.startswith("--from")
        for path in arguments.split()[:-1]
    ]
    assert copied, "nothing copied"
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for path in copied:
        assert (ROOT / path).exists(), path
        assert path.rstrip("/") not in ignored, f"{path} is copied but .dockerignore drops it"
    for heavy in (".git", ".venv", "tests", "build", "**/__pycache__"):
        assert heavy in ignored, heavy


# compose.yaml -------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def test_compose_runs_three_nodes_on_postgresql_behind_haproxy() -> None:
    services = _compose()["services"]
    nodes = {name: s for name, s in services.items() if s.get("image", "").startswith("cueflow")}
    nodes.pop("migrate")
    assert sorted(nodes) == ["cueflow1", "cueflow2", "cueflow3"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    _check_command(services["migrate"]["command"])
    assert services["postgres"]["image"].startswith("postgres:")
    for node in nodes.values():
        env = node["environment"]
        _check_env(env, interpolated_ok=True)
        assert env == services["migrate"]["environment"]  # one configuration
        assert (
            env["DATABASE_URL"].startswith("postgresql://") and "@postgres:" in env["DATABASE_URL"]
        )
        assert "CUEFLOW_SECRET_KEY" in env and env["ALLOW_REGISTER"] == "false"
        assert node["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        grace = float(env["CUEFLOW_GRACEFUL_TIMEOUT_SECONDS"])
        assert float(node["stop_grace_period"].rstrip("s")) > grace + 5
    balancer = services["balancer"]
    assert balancer["image"].startswith("haproxy:")
    [mount] = balancer["volumes"]
    assert mount.split(":")[0] == "./deploy/haproxy.cfg"
    address = balancer["networks"]["cueflow"]["ipv4_address"]
    assert env["CUEFLOW_FORWARDED_ALLOW_IPS"] == address  # only the balancer is believed
    config = (ROOT / "deploy" / "haproxy.cfg").read_text()
    # the nodes go on accepting connections until HAProxy's check has seen them draining
    inter = float(re.search(r"default-server .*\binter (\d+)s", config)[1])  # type: ignore[index]
    fall = int(re.search(r"default-server .*\bfall (\d+)", config)[1])  # type: ignore[index]
    assert float(env["CUEFLOW_DRAIN_ACCEPT_SECONDS"]) >= 2 * inter * fall
    servers = re.findall(r"^\s*server \S+ (\S+):8000", config, re.MULTILINE)
    assert sorted(servers) == sorted(nodes)


def test_haproxy_checks_readiness_on_status_and_its_configuration_is_valid(
    tmp_path: Path,
) -> None:
    config = (ROOT / "deploy" / "haproxy.cfg").read_text()
    assert "http-check send meth GET uri /status" in config
    assert "http-check expect status 200" in config
    assert "option forwardfor" in config
    assert re.search(r"retry-on .*conn-failure", config)
    path = tmp_path / "haproxy.cfg"
    path.write_text(balancer_config([18001, 18002, 18003], 18000, 18404))
    checked = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# Kubernetes ---------------------------------------------------------------------------------


def _manifests() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found[(document["kind"], document["metadata"]["name"])] = document
    return found


def _settings_of(manifests: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    config = manifests[("ConfigMap", "cueflow")]["data"]
    secret = manifests[("Secret", "cueflow")]["stringData"]
    return {**config, **secret}


def test_the_kubernetes_settings_are_settings_cueflow_reads() -> None:
    manifests = _manifests()
    settings = _settings_of(manifests)
    _check_env(settings)
    assert settings["ALLOW_REGISTER"] == "false"
    assert settings["DATABASE_URL"].startswith("postgresql://")
    assert "CUEFLOW_SECRET_KEY" in manifests[("Secret", "cueflow")]["stringData"]
    assert "CUEFLOW_SECRET_KEY" not in manifests[("ConfigMap", "cueflow")]["data"]


def _container(spec: dict[str, Any]) -> dict[str, Any]:
    [container] = spec["containers"]
    return dict(container)


def test_the_deployment_probes_readiness_on_status_liveness_on_health_and_outwaits_the_drain() -> (
    None
):
    manifests = _manifests()
    deployment = manifests[("Deployment", "cueflow")]
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    container = _container(spec)
    assert container["args"][0] == "serve"
    _check_command(container["args"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/status"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    args = container["args"]
    assert ports[container["readinessProbe"]["httpGet"]["port"]] == int(
        args[args.index("--port") + 1]
    )
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    grace = float(_settings_of(manifests)["CUEFLOW_GRACEFUL_TIMEOUT_SECONDS"])
    assert spec["terminationGracePeriodSeconds"] >= float(sleep[1]) + grace + 5
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    assert refs == {"cueflow"}
    assert ("ConfigMap", "cueflow") in manifests and ("Secret", "cueflow") in manifests
    service = manifests[("Service", "cueflow")]
    labels = pod["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in ports


def test_the_migration_job_runs_db_upgrade_with_the_same_settings() -> None:
    manifests = _manifests()
    job = manifests[("Job", "cueflow-migrate")]
    container = _container(job["spec"]["template"]["spec"])
    assert container["args"] == ["db", "upgrade"]
    _check_command(container["args"])
    deployment = _container(manifests[("Deployment", "cueflow")]["spec"]["template"]["spec"])
    assert container["envFrom"] == deployment["envFrom"]
    assert container["image"] == deployment["image"]


def test_kustomization_lists_existing_files() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (KUBERNETES / resource).exists(), resource


@pytest.mark.parametrize("name", ["CUEFLOW_GRACEFUL_TIMEOUT_SECONDS", "DATABASE_URL", "PORT"])
def test_the_accepted_names_are_read_from_the_environment(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {"CUEFLOW_GRACEFUL_TIMEOUT_SECONDS": "7", "DATABASE_URL": "postgresql://x/y"}
    monkeypatch.setenv(name, values.get(name, "9000"))
    assert name in accepted_env()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert str(values.get(name, "9000")) in {
        str(settings.graceful_timeout_seconds).removesuffix(".0"),
        settings.database_url,
        str(settings.port),
    }

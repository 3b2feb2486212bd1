"""The deployment files in deploy/: they parse, and they say what the service needs.

Docker, systemd and Kubernetes are not available here, so the files are checked by reading
them: structure, cross-references between them, and the settings they carry run through
the service's own validation (approver.config).
"""

from __future__ import annotations

import configparser
import datetime
import json
import re
import runpy
import shlex
import socket
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from gunicorn.config import Config
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from approver import config
from approver.errors import ConfigError
from approver.logs import redact
from approver.process.embedded_redis import HASH_VALUE_LIMIT
from approver.sandbox import serve
from approver.web import create_app

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
SYSTEMD = DEPLOY / "systemd"
TOKEN = "SECRET123456789abcdef"

HEALTHCHECK = runpy.run_path(str(DEPLOY / "healthcheck.py"))


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_one(path: Path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert len(docs) == 1, f"{path}: expected one document, got {len(docs)}"
    return docs[0]


_VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")
# What an operator puts in deploy/.env before `docker compose up` (the file's header).
GIVEN = {"APPROVER_WEBHOOK_TOKENS": "compose-webhook-token-0123456789",
         "APPROVER_SECRET_KEY": "compose-signing-key-0123456789abcdefgh"}


def compose_default(value: str, given: dict | None = None) -> str:
    """A compose value as compose fills it in from `given` (the shell or deploy/.env)."""

    def fill(m: re.Match) -> str:
        name, operator, argument = m.groups()
        if (given or {}).get(name):
            return given[name]
        if operator == "?":
            raise AssertionError(f"compose stops: {argument}")
        return argument or ""

    return _VARIABLE.sub(fill, value)


# ---- every YAML file --------------------------------------------------------------------


def test_there_are_yaml_files_to_check():
    names = {p.relative_to(DEPLOY).as_posix() for p in yaml_files()}
    assert {"docker-compose.yml", "kubernetes/kustomization.yaml"} <= names


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_yaml_file_parses_to_mappings(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} holds no document"
    assert all(isinstance(d, dict) for d in docs)


# ---- docker compose ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose():
    return load_one(DEPLOY / "docker-compose.yml")


def test_compose_services_and_profiles(compose):
    services = compose["services"]
    assert set(services) == {"redis", "web", "worker", "sandbox"}
    assert services["sandbox"]["profiles"] == ["demo"]
    for name in ("redis", "web", "worker"):
        assert "profiles" not in services[name], f"{name} must run without a profile"


def test_compose_redis_runs_the_mounted_config_with_a_volume(compose):
    redis = compose["services"]["redis"]
    assert redis["image"].split(":")[0] == "redis"
    assert redis["image"].split(":")[1].startswith("7")
    command = redis["command"]
    command = shlex.split(command) if isinstance(command, str) else command
    assert command[0] == "redis-server"
    conf_path = command[1]
    mounts = {}
    for volume in redis["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    assert mounts[conf_path] == "./redis.conf"
    assert (DEPLOY / mounts[conf_path]).is_file()
    assert mounts["/data"] in compose["volumes"], "Redis data must live on a named volume"
    check = " ".join(redis["healthcheck"]["test"])
    assert "ping" in check and "redis-cli" in check
    assert "ports" not in redis, "Redis must not be published outside the compose network"


def test_compose_web(compose):
    web = compose["services"]["web"]
    assert web["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / web["build"]["context"] / web["build"]["dockerfile"]).resolve() == (
        DEPLOY / "Dockerfile"
    )
    assert web["command"][:3] == ["web", "--bind", "0.0.0.0:8000"]
    assert any(compose_default(str(p)).endswith(":8000") for p in web["ports"])
    assert web["depends_on"]["redis"]["condition"] == "service_healthy"
    test = " ".join(web["healthcheck"]["test"])
    assert "/healthz" in test and "python" in test


def test_compose_worker(compose):
    worker = compose["services"]["worker"]
    web = compose["services"]["web"]
    assert worker["command"] == ["worker"]
    assert worker["image"] == web["image"]
    assert worker["deploy"]["replicas"] >= 2
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    # The image's HEALTHCHECK is the web tier's: a worker must not inherit it.
    assert "worker" in worker["healthcheck"]["test"]


def test_compose_demo_wiring(compose):
    services = compose["services"]
    sandbox, web = services["sandbox"], services["web"]
    assert sandbox["image"] == web["image"]
    cmd = [compose_default(str(c), GIVEN) for c in sandbox["command"]]
    assert cmd[0] == "sandbox"
    args = dict(zip(cmd[1::2], cmd[2::2], strict=True))
    assert args["--bind"] == "0.0.0.0:3000"
    env = {k: compose_default(str(v), GIVEN) for k, v in web["environment"].items()}
    # The sandbox and the service agree on the Dashboard secret and the webhook token.
    assert args["--secret"] == env["APPROVER_DASHBOARD_SECRET"]
    assert args["--webhook-url"] == f"http://web:8000/hooks/tyk/{env['APPROVER_WEBHOOK_TOKENS']}"
    assert env["APPROVER_DASHBOARD_URL"] == "http://sandbox:3000"
    assert services["worker"]["environment"] == web["environment"]


def test_compose_needs_the_services_own_secrets_and_has_no_placeholder(compose):
    environment = compose["services"]["web"]["environment"]
    for name in GIVEN:
        with pytest.raises(AssertionError, match=f"compose stops: set {name}"):
            compose_default(str(environment[name]), {k: v for k, v in GIVEN.items() if k != name})
    env = {k: compose_default(str(v), GIVEN) for k, v in environment.items()}
    # The Redis password is a compose secret, mounted at /run/secrets/<name> in the service.
    secrets = {f"/run/secrets/{name}": str(DEPLOY / s["file"])
               for name, s in compose["secrets"].items()}
    env = {k: secrets.get(v, v) for k, v in env.items()}
    settings = (config.from_env(env).require_dashboard().require_webhook_tokens()
                .require_secret_key())
    assert settings.redis_url == "redis://approver@redis:6379/0"
    assert settings.redis_password_file == DEPLOY / "redis-password"
    assert str(settings.rules_path) == "/app/rules"


# ---- redis.conf ---------------------------------------------------------------------------


def redis_directives() -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in (DEPLOY / "redis.conf").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            assert name not in directives, f"redis.conf sets {name} twice"
            directives[name] = value.split()
    return directives


def test_redis_conf_persistence_and_eviction():
    d = redis_directives()
    assert d["appendonly"] == ["yes"]
    assert d["appendfsync"] == ["everysec"]
    assert d["aof-use-rdb-preamble"] == ["yes"]
    assert d["maxmemory-policy"] == ["noeviction"]
    save = d["save"]
    assert save and len(save) % 2 == 0, "RDB snapshots stay on as a second line of defence"
    assert d["dir"] == ["/data"]


def test_redis_conf_keeps_records_compact_as_the_embedded_redis_does():
    assert redis_directives()["hash-max-listpack-value"] == [HASH_VALUE_LIMIT[1]]


def test_redis_conf_says_why():
    text = (DEPLOY / "redis.conf").read_text()
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) > len(redis_directives())
    assert "protected-mode" in text and "bind" in text


# ---- Kubernetes ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    return {
        p.name: load_one(p) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"
    }


def by_kind(manifests, kind, name=None):
    found = [m for m in manifests.values()
             if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def pod_spec(deployment):
    return deployment["spec"]["template"]["spec"]


def test_k8s_kinds(manifests):
    kinds = Counter(m["kind"] for m in manifests.values())
    assert kinds == {
        "Deployment": 2, "Service": 1, "HorizontalPodAutoscaler": 1,
        "PodDisruptionBudget": 1, "ConfigMap": 2, "Secret": 1,
    }
    versions = {m["kind"]: m["apiVersion"] for m in manifests.values()}
    assert versions["HorizontalPodAutoscaler"] == "autoscaling/v2"
    assert versions["PodDisruptionBudget"] == "policy/v1"
    assert versions["Deployment"] == "apps/v1"


def test_kustomization_lists_every_manifest():
    kustomization = load_one(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    on_disk = {p.name for p in K8S.iterdir() if p.is_file() and p.name != "kustomization.yaml"}
    assert set(listed) == on_disk


def test_k8s_web_deployment(manifests):
    web = by_kind(manifests, "Deployment", "approver-web")
    assert web["spec"]["replicas"] == 2
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert web["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = pod_spec(web)["containers"]
    assert container["args"][:3] == ["web", "--bind", "0.0.0.0:8000"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == 8000
    live, ready = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
    assert live["path"] == "/healthz"
    assert ready["path"] == "/readyz"
    assert ports.get(live["port"], live["port"]) == 8000
    assert ports.get(ready["port"], ready["port"]) == 8000
    resources = container["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]


@pytest.mark.parametrize("name", ["approver-web", "approver-worker"])
def test_k8s_pods_are_locked_down(manifests, name):
    spec = pod_spec(by_kind(manifests, "Deployment", name))
    pod_security = spec.get("securityContext", {})
    for container in spec["containers"]:
        security = {**pod_security, **container.get("securityContext", {})}
        assert security["runAsNonRoot"] is True
        assert security.get("runAsUser", 10001) != 0
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert "ALL" in security["capabilities"]["drop"]
        # With a read-only root, /tmp (gunicorn's heartbeat files) must be a volume.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]


@pytest.mark.parametrize("name", ["approver-web", "approver-worker"])
def test_k8s_pods_get_settings_secrets_and_rules(manifests, name):
    spec = pod_spec(by_kind(manifests, "Deployment", name))
    secret = by_kind(manifests, "Secret")
    settings = by_kind(manifests, "ConfigMap", "approver-settings")
    rules = by_kind(manifests, "ConfigMap", "approver-rules")
    (container,) = spec["containers"]
    sources = container["envFrom"]
    assert {"configMapRef": {"name": settings["metadata"]["name"]}} in sources
    assert {"secretRef": {"name": secret["metadata"]["name"]}} in sources
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/app/rules"]["readOnly"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/app/rules"]["name"]]["configMap"]["name"] == rules["metadata"]["name"]
    assert settings["data"]["APPROVER_RULES"] == "/app/rules"


def test_k8s_both_deployments_run_one_image(manifests):
    images = {pod_spec(by_kind(manifests, "Deployment", n))["containers"][0]["image"]
              for n in ("approver-web", "approver-worker")}
    assert len(images) == 1
    kustomization = load_one(K8S / "kustomization.yaml")
    assert {i["name"] for i in kustomization["images"]} == {images.pop().split(":")[0]}


def test_k8s_worker_deployment(manifests):
    worker = by_kind(manifests, "Deployment", "approver-worker")
    assert worker["spec"]["replicas"] == 2
    (container,) = pod_spec(worker)["containers"]
    assert container["args"] == ["worker"]
    assert "ports" not in container and "readinessProbe" not in container
    assert container["livenessProbe"]["exec"]["command"] == [
        "python", "/app/healthcheck.py", "worker"
    ]
    # A stop waits for the job in hand.
    assert pod_spec(worker)["terminationGracePeriodSeconds"] >= 30


def test_k8s_service_hpa_pdb_target_the_web_pods(manifests):
    web = by_kind(manifests, "Deployment", "approver-web")
    pod_labels = web["spec"]["template"]["metadata"]["labels"]
    worker_labels = by_kind(manifests, "Deployment", "approver-worker")["spec"]["template"][
        "metadata"]["labels"]

    service = by_kind(manifests, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert not service["spec"]["selector"].items() <= worker_labels.items()
    port_names = {p["name"] for p in pod_spec(web)["containers"][0]["ports"]}
    assert all(p["targetPort"] in port_names | {8000} for p in service["spec"]["ports"])

    pdb = by_kind(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert not pdb["spec"]["selector"]["matchLabels"].items() <= worker_labels.items()

    hpa = by_kind(manifests, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "approver-web"
    }
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"


def real_values(env: dict) -> dict:
    """`env` with its change-me placeholders replaced, as the operator is told to."""
    return {k: "real-" + k.lower().replace("_", "-") + "-0123456789abcdefghij"
            if "change-me" in v else v for k, v in env.items()}


def test_k8s_secret_and_settings_pass_the_service_validation(manifests):
    secret = by_kind(manifests, "Secret")
    assert "data" not in secret
    keys = set(secret["stringData"])
    assert {"APPROVER_DASHBOARD_SECRET", "APPROVER_WEBHOOK_TOKENS", "APPROVER_SECRET_KEY",
            "APPROVER_BILLING_SECRETS"} <= keys
    settings = by_kind(manifests, "ConfigMap", "approver-settings")["data"]
    assert not keys & {"APPROVER_DASHBOARD_URL", "APPROVER_MODE"}
    assert all(isinstance(v, str) for v in settings.values()), "ConfigMap values are strings"
    assert not {"APPROVER_DASHBOARD_SECRET", "APPROVER_WEBHOOK_TOKENS"} & settings.keys()
    env = {**settings, **secret["stringData"]}  # envFrom: the later source wins
    with pytest.raises(ConfigError, match="placeholder"):
        config.from_env(env)
    config.from_env(real_values(env)).require_dashboard().require_webhook_tokens() \
        .require_secret_key()


def test_k8s_rules_configmap_matches_the_rules_folder(manifests):
    data = by_kind(manifests, "ConfigMap", "approver-rules")["data"]
    shipped = {p.name: p.read_text() for p in (ROOT / "rules").iterdir()
               if p.is_file() and p.suffix in (".yaml", ".yml")}
    assert set(data) == set(shipped), "deploy/kubernetes/configmap-rules.yaml lists other files"
    for name, text in shipped.items():
        assert data[name] == text, f"configmap-rules.yaml: {name} differs from rules/{name}"


# ---- systemd ------------------------------------------------------------------------------


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((SYSTEMD / name).read_text())
    return parser


@pytest.mark.parametrize(("name", "role"), [
    ("approver-web.service", "web"),
    ("approver-worker@.service", "worker"),
])
def test_systemd_unit(name, role):
    u = unit(name)
    assert {"Unit", "Service", "Install"} <= set(u.sections())
    service = u["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "approver"
    assert argv[1] == role
    assert service["EnvironmentFile"] == "/etc/tyk-approver/env"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) >= 20
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    assert service.get("DynamicUser") == "yes" or service.get("User") not in (None, "root")
    assert u["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_worker_is_a_template():
    u = unit("approver-worker@.service")
    assert "%i" in u["Unit"]["Description"]


def test_systemd_web_binds_loopback_and_checks_rules_first():
    service = unit("approver-web.service")["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[argv.index("--bind") + 1].startswith("127.0.0.1:")
    pre = shlex.split(service["ExecStartPre"])
    assert Path(pre[0]).name == "approver" and pre[1:3] == ["rules", "check"]


def test_systemd_env_example_passes_the_service_validation():
    env = {}
    for line in (SYSTEMD / "env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), line
            env[key] = value
    assert {"APPROVER_DASHBOARD_URL", "APPROVER_DASHBOARD_SECRET", "APPROVER_REDIS_URL",
            "APPROVER_WEBHOOK_TOKENS", "APPROVER_SECRET_KEY", "APPROVER_RULES"} <= env.keys()
    with pytest.raises(ConfigError, match="placeholder"):
        config.from_env(env)
    config.from_env(real_values(env)).require_dashboard().require_webhook_tokens() \
        .require_secret_key()


# ---- Dockerfile ---------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    steps = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, args = line.strip().partition(" ")
            steps.append((instruction.upper(), " ".join(args.split())))
    return steps


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for step in dockerfile():
        if step[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(step)
    return found


def test_dockerfile_is_multi_stage_on_slim_python_312():
    args = dict(a.split("=", 1) for i, a in dockerfile() if i == "ARG" and "=" in a)
    all_stages = stages()
    assert len(all_stages) >= 2
    for stage in all_stages:
        base = stage[0][1].split()[0]
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert base == "python:3.12-slim"
    assert all_stages[0][0][1].lower().endswith("as build")


def test_dockerfile_final_stage():
    final = stages()[-1]
    steps = {}
    for instruction, args in final:
        steps.setdefault(instruction, []).append(args)
    text = " ".join(a for _, a in final)
    # No build tools: nothing installed from apt, no compiler, the wheels bind-mounted only.
    assert "apt-get" not in text and "gcc" not in text and "build-essential" not in text
    assert not any("/wheels" in a for a in steps.get("COPY", []))
    assert any("from=build" in a and "--no-index" in a for a in steps["RUN"])

    (user,) = steps["USER"]
    assert user.split(":")[0] not in ("root", "0")
    env = " ".join(steps["ENV"])
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "APPROVER_RULES=/app/rules"):
        assert setting in env
    assert any(a.split()[-2:] == ["rules/", "/app/rules/"] for a in steps["COPY"])
    assert json.loads(steps["ENTRYPOINT"][0]) == ["approver"]
    assert json.loads(steps["CMD"][0]) == ["web", "--bind", "0.0.0.0:8000"]
    (healthcheck,) = steps["HEALTHCHECK"]
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[0] == "python"
    assert command[1] == "/app/healthcheck.py" and command[2] == "web"
    assert HEALTHCHECK["DEFAULT_URL"].endswith(":8000/healthz")


def test_dockerfile_copies_only_what_exists_and_is_not_ignored():
    ignore = [line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*"
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for instruction, args in dockerfile():
        if instruction != "COPY" or "--from" in args:
            continue
        sources = [a for a in args.split()[:-1] if not a.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the context"
            top = source.rstrip("/")
            assert top in kept or top.split("/")[0] in kept, f"{source} is .dockerignored"


# ---- gunicorn config ----------------------------------------------------------------------


@pytest.fixture
def gunicorn_conf():
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def test_gunicorn_conf_settings(gunicorn_conf):
    assert re.fullmatch(r"[\w.\-\[\]:]+:\d+", gunicorn_conf["bind"])
    assert isinstance(gunicorn_conf["workers"], int) and 1 <= gunicorn_conf["workers"] <= 8
    assert gunicorn_conf["worker_class"] == "approver.web.gunicorn_worker.DeadlineWorker"
    assert gunicorn_conf["worker_connections"] == gunicorn_conf["threads"] >= 11
    assert gunicorn_conf["logger_class"].__name__ == "RedactingLogger"


def test_redact_hides_a_webhook_token():
    line = redact(f"POST /hooks/tyk/{TOKEN} HTTP/1.1")
    assert TOKEN not in line
    assert "/hooks/tyk/[redacted]" in line
    assert "SECRET123456789" not in redact("/hooks/tyk/SECRET123456789")


def test_gunicorn_access_log_redacts_the_token(gunicorn_conf, tmp_path):
    cfg = Config()
    for name, value in gunicorn_conf.items():
        if name in cfg.settings:
            cfg.set(name, value)
    access_log = tmp_path / "access.log"
    cfg.set("accesslog", str(access_log))
    cfg.set("errorlog", str(tmp_path / "error.log"))
    logger = gunicorn_conf["RedactingLogger"](cfg)
    try:
        environ = {
            "REQUEST_METHOD": "POST", "RAW_URI": f"/hooks/tyk/{TOKEN}?x=1",
            "PATH_INFO": f"/hooks/tyk/{TOKEN}", "QUERY_STRING": "x=1",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.7",
        }
        resp = SimpleNamespace(status="202 ACCEPTED", sent=42, headers=[])
        req = SimpleNamespace(headers=[("AUTHORIZATION", f"Bearer {TOKEN}")])
        atoms = logger.atoms(resp, req, environ, datetime.timedelta(milliseconds=3))
        assert TOKEN not in json.dumps(atoms, default=str)
        assert atoms["r"] == "POST /hooks/tyk/[redacted]?x=1 HTTP/1.1"
        logger.access(resp, req, environ, datetime.timedelta(milliseconds=3))
        logger.error("webhook for /hooks/tyk/%s failed", TOKEN)
    finally:
        for log in (logger.access_log, logger.error_log):
            for handler in list(log.handlers):
                handler.close()
                log.removeHandler(handler)
    written = json.loads(access_log.read_text())  # one JSON object per line
    assert written["path"] == "/hooks/tyk/[redacted]" and written["status"] == 202
    assert TOKEN not in json.dumps(written)
    errors = (tmp_path / "error.log").read_text()
    assert "/hooks/tyk/[redacted]" in errors and TOKEN not in errors


# ---- deploy/healthcheck.py ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthcheck_web(settings):
    server = serve(create_app(settings))
    try:
        assert HEALTHCHECK["check_web"](f"{server.url}/healthz") == 0
        assert HEALTHCHECK["check_web"](f"{server.url}/no-such-page") == 1
    finally:
        server.shutdown()
    assert HEALTHCHECK["check_web"](f"http://127.0.0.1:{free_port()}/healthz", timeout=1) == 1


def test_healthcheck_web_url_from_the_environment(monkeypatch):
    monkeypatch.setenv("APPROVER_HEALTHCHECK_URL", f"http://127.0.0.1:{free_port()}/healthz")
    assert HEALTHCHECK["main"](["healthcheck.py", "web"]) == 1
    assert HEALTHCHECK["main"](["healthcheck.py", "nonsense"]) == 2


def test_healthcheck_worker(redis_server, redis_conn, monkeypatch):
    monkeypatch.setenv("APPROVER_REDIS_URL", redis_server.url)
    check = HEALTHCHECK["check_worker"]
    assert check() == 1, "no worker registered yet"
    worker = SimpleWorker(["approver"], connection=redis_conn, serializer=JSONSerializer)
    worker.register_birth()
    try:
        assert worker.hostname == socket.gethostname()
        assert check() == 0
        assert check(hostname="some-other-pod") == 1
    finally:
        worker.register_death()
    assert check() == 1, "a stopped worker is not alive"


def test_healthcheck_worker_passes_while_redis_is_down(monkeypatch):
    monkeypatch.setenv("APPROVER_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert HEALTHCHECK["check_worker"](timeout=1) == 0

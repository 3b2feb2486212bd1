"""The service starts only with secrets of its own: no derived signing key, no placeholders."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

import pytest
import yaml

from approver import config, signing
from approver.errors import ConfigError
from approver.web import create_app
from tests.conftest import ROOT, WEBHOOK_TOKEN

DEPLOY = ROOT / "deploy"
KEY = "a-signing-key-of-its-own-0123456789abcdef"


def shipped_placeholders() -> set[str]:
    """Every secret-looking value deploy/ ships: compose defaults, the Secret, env.example."""
    found = set()
    compose = (DEPLOY / "docker-compose.yml").read_text()
    found |= {m for m in re.findall(r"\$\{\w+:-([^}]+)\}", compose) if "change" in m.lower()}
    secret = yaml.safe_load((DEPLOY / "kubernetes" / "secret.yaml").read_text())
    found |= {v for v in secret["stringData"].values() if v}
    for line in (DEPLOY / "systemd" / "env.example").read_text().splitlines():
        name, sep, value = line.lstrip("#").partition("=")
        if sep and re.search(r"SECRET|TOKEN|KEY", name):
            found.add(value)
    return found


def test_the_web_tier_refuses_to_start_without_a_signing_key(settings):
    with pytest.raises(ConfigError, match="APPROVER_SECRET_KEY is required"):
        create_app(settings.with_(secret_key=b""))


def test_approver_web_exits_with_the_reason_without_a_signing_key(env):
    environ = {k: v for k, v in os.environ.items() if k != "APPROVER_SECRET_KEY"}
    done = subprocess.run([sys.executable, "-m", "approver", "web", "--bind", "127.0.0.1:0"],
                          env=environ, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "APPROVER_SECRET_KEY is required" in done.stderr


def test_no_signing_key_is_derived_from_a_webhook_token():
    settings = config.from_env({"APPROVER_WEBHOOK_TOKENS": WEBHOOK_TOKEN})
    assert settings.secret_key == b""


def test_a_leaked_webhook_token_forges_no_status_link(settings, rt):
    client = create_app(settings.with_(secret_key=KEY.encode())).test_client()
    # What the key used to be: derived from the first webhook token.
    derived = hashlib.sha256(b"tyk-approver signing key\0" + WEBHOOK_TOKEN.encode()).digest()
    forged = signing.sign(derived, {"kr": "64b0000000000000000000ff"}, 3600, "status")
    assert client.get(f"/status/{forged}").status_code == 404


def test_a_short_signing_key_is_refused():
    with pytest.raises(ConfigError, match="at least 32"):
        config.from_env({"APPROVER_SECRET_KEY": "short-key"})


def test_deploy_ships_placeholders_for_every_secret_the_web_tier_needs():
    placeholders = shipped_placeholders()
    assert len(placeholders) >= 4, placeholders


@pytest.mark.parametrize("placeholder", sorted(shipped_placeholders()))
@pytest.mark.parametrize("name", ["APPROVER_WEBHOOK_TOKENS", "APPROVER_DASHBOARD_SECRET",
                                  "APPROVER_SECRET_KEY", "APPROVER_BILLING_SECRETS",
                                  "APPROVER_PORTAL_TOKEN", "APPROVER_REDIS_URL"])
def test_every_shipped_placeholder_is_refused_at_start(name, placeholder):
    with pytest.raises(ConfigError, match=f"{name} holds a placeholder"):
        config.from_env({name: placeholder})


@pytest.mark.parametrize("value", ["CHANGE-ME-please-0123456789", "changeme0123456789abcdef",
                                   "redis://:change_me@redis:6379/0", "replace-me-0123456789"])
def test_placeholder_spellings_are_refused_without_showing_the_value(value):
    with pytest.raises(ConfigError) as caught:
        config.from_env({"APPROVER_WEBHOOK_TOKENS": "real-token-0123456789",
                         "APPROVER_DASHBOARD_SECRET": value})
    assert value not in str(caught.value)

"""Groups of people: local accounts in groups, single sign-on's groups claim, a proxy's
groups header; each shown to the signed-in person."""

import pytest

from approver import config
from approver.errors import ConfigError
from approver.state import accounts
from approver.web import create_app
from tests.console_support import PASSWORD, sign_in
from tests.test_console_oidc import client as oidc_client  # noqa: F401 (a fixture)
from tests.test_console_oidc import (  # noqa: F401 (fixtures)
    oidc_settings,
    provider,
    provider_server,
    sign_on,
)
from tests.test_console_signin import PROXY, THROUGH_PROXY, run


def test_admin_add_puts_an_account_in_groups_and_list_shows_them(capsys, monkeypatch, rt):
    code, out, _ = run(capsys, monkeypatch, "admin", "add", "bob", "--email",
                       "bob@corp.example", "--group", "payments-owners", "--group",
                       "security", stdin=PASSWORD + "\n")
    assert code == 0 and "added console account bob" in out
    assert accounts.profile(rt.store, "bob") == {
        "name": "bob", "email": "bob@corp.example", "groups": ["payments-owners", "security"]}
    code, out, _ = run(capsys, monkeypatch, "admin", "list")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["NAME", "EMAIL", "GROUPS"]
    assert row.split(None, 2) == ["bob", "bob@corp.example", "payments-owners, security"]


def test_groups_of_an_existing_account_change_without_its_password(capsys, monkeypatch, rt):
    accounts.add(rt.store, "bob", PASSWORD, "bob@corp.example", ("security",))
    stamp = accounts.stamp(rt.store, "bob")
    code, out, _ = run(capsys, monkeypatch, "admin", "add", "bob", "--group", "api-leads")
    assert code == 0 and "groups api-leads" in out
    assert accounts.profile(rt.store, "bob")["groups"] == ["api-leads"]
    assert accounts.profile(rt.store, "bob")["email"] == "bob@corp.example"
    assert accounts.stamp(rt.store, "bob") == stamp  # its sessions hold


@pytest.mark.parametrize("argv, words", [
    (["--group", "bad group"], "not a usable group name"),
    (["--group", ""], "not a usable group name"),
    (["--email", "not-an-address"], "not an email address"),
])
def test_bad_groups_and_emails_are_refused(capsys, monkeypatch, rt, argv, words):
    code, _, err = run(capsys, monkeypatch, "admin", "add", "bob", *argv,
                       stdin=PASSWORD + "\n")
    assert code == 2 and words in err
    assert not accounts.exists(rt.store, "bob")


def test_a_local_person_s_groups_are_read_on_each_request(app, rt):
    accounts.add(rt.store, "bob", PASSWORD, "bob@corp.example", ("security",))
    client = app.test_client()
    assert sign_in(client, "bob").status_code == 303
    assert b"(security)" in client.get("/console/").data
    accounts.set_profile(rt.store, "bob", groups=("security", "api-leads"))
    assert b"(api-leads, security)" in client.get("/console/").data


def test_a_proxy_names_the_groups_in_its_header(settings, rt):
    app = create_app(settings.with_(
        console_user_header="X-Forwarded-Email", console_groups_header="X-Forwarded-Groups",
        console_trusted_proxies=(PROXY,), trusted_proxies=(PROXY,)))
    client = app.test_client()
    headers = {"X-Forwarded-Email": "ops@example.com",
               "X-Forwarded-Groups": "security, payments-owners,bad group"}
    page = client.get("/console/", headers=headers, **THROUGH_PROXY)
    assert page.status_code == 200 and b"(payments-owners, security)" in page.data
    # From an address that is not the proxy, neither header is believed.
    assert client.get("/console/", headers=headers).status_code == 302


def test_single_sign_on_keeps_every_group_of_the_claim(oidc_client, provider):  # noqa: F811
    provider.user = {"sub": "u-2", "email": "dev@example.com", "email_verified": True,
                     "groups": ["api-admins", "payments-owners"]}
    assert sign_on(oidc_client).status_code == 303
    assert b"(api-admins, payments-owners)" in oidc_client.get("/console/").data


def test_the_groups_header_needs_the_user_header():
    with pytest.raises(ConfigError, match="APPROVER_CONSOLE_GROUPS_HEADER"):
        config.from_env({"APPROVER_CONSOLE_GROUPS_HEADER": "X-Forwarded-Groups"})
    assert config.from_env({"APPROVER_ADMINS_GROUP": " api-admins "}).admins_group == \
        "api-admins"

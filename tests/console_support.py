"""Helpers for console tests: accounts, signing in through the real forms, reading pages."""

import ipaddress
import re
from html import unescape

from approver.state import accounts
from approver.web import create_app

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_admin(rt, name="alice", password=PASSWORD) -> str:
    accounts.add(rt.store, name, password)
    return name


def csrf(html: bytes | str) -> str:
    """The CSRF token in a page's forms."""
    text = html.decode() if isinstance(html, bytes) else html
    return unescape(_CSRF.search(text).group(1))


def sign_in(client, name="alice", password=PASSWORD, next_path=None):
    """Sign in through the login form, as a browser does; the answer to the POST."""
    page = client.get("/console/login")
    form = {"csrf_token": csrf(page.data), "name": name, "password": password}
    if next_path is not None:
        form["next"] = next_path
    return client.post("/console/login", data=form)


def post_form(client, page_path: str, action: str, **fields):
    """Submit a form the way a browser would: with the CSRF token of the page it is on."""
    page = client.get(page_path)
    return client.post(action, data={"csrf_token": csrf(page.data), **fields})


def client_behind_proxy(settings, rt):
    """A client of the web app behind the shipped proxies (private networks trusted), with
    one local admin account (alice)."""
    add_admin(rt)
    app = create_app(settings.with_(trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),)))
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    return client


# A rule that reads a sign-up field no seeded developer has: nested conditions, an `as:`
# conversion, and an unknown fact that sends the request to review (the screenshots too).
SMALL_COMPANIES = """\
version: 1
rules:
  - id: small-companies-to-review
    description: Companies under ten people, or of unknown size, are looked at by a person.
    when:
      policy.tags: {contains: free}
      not: {developer.email_domain: {ends_with: .partner.example}}
      any:
        - developer.fields.company size: {as: number, lt: 10}
        - request.fields.use_case: {exists: false}
    then: review
    reason: "A small company ({developer.fields.company size} people): a person decides."
    message: Requests from small companies are checked by a person.
"""


def own_rules(rt, folder):
    """A copy of the shipped rules in `folder`, in force in `rt` as they are when next read
    (change them before deciding); its path."""
    import shutil
    from pathlib import Path

    rules = Path(folder) / "rules"
    shutil.copytree(Path(__file__).resolve().parent.parent / "rules", rules)
    rt.settings = rt.settings.with_(rules_path=rules)
    rt.__dict__.pop("rules", None)  # read the copy, once it is written
    return rules


def with_small_companies(rt, folder):
    """The shipped rules with SMALL_COMPANIES before the trust rules, in force in `rt`."""
    rules = own_rules(rt, folder)
    (rules / "25-small.yaml").write_text(SMALL_COMPANIES)
    return rules


# The partners' approval for 90 days, its renewal decided by a person at the reminder a week
# before the end (the grants and renewals tests, the renewal in a browser, its screenshot).
GRANT = "    grant: {expires_after: 90d, remind_before: 7d, renew: review}\n"


def with_grant(rules) -> None:
    """The partners' rule in the copy of the shipped rules at `rules` approves for GRANT's
    period."""
    from pathlib import Path

    trust = Path(rules) / "30-trust.yaml"
    text = trust.read_text()
    anchor = "    message: Partner organisations get access at once.\n"
    assert anchor in text
    trust.write_text(text.replace(anchor, anchor + GRANT, 1))

"""Take the screenshots in docs/console.md: `python -m tests.console_screenshots [FOLDER]`.

Starts a private Redis and the sandbox Dashboard, decides a few sample requests with the
shipped rules plus one nested rule that reads a sign-up field nobody filled in
(tests.console_support.SMALL_COMPANIES), serves the web app, and with headless Chromium
saves the login page, the inbox, the page of a request that rule sent to review (before and
after a person approved it), the inbox and that page at a phone's width, and the page of
the partner's approval for a period (tests.console_support.GRANT) once its renewal waits.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from approver.config import Settings
from approver.pipeline import decide, grants, review, runtime
from approver.process.embedded_redis import EmbeddedRedis
from approver.sandbox import create_app as create_sandbox_app
from approver.sandbox import serve
from approver.state import accounts
from approver.web import create_app
from tests import browser
from tests.console_support import SMALL_COMPANIES, with_grant

ROOT = Path(__file__).resolve().parent.parent
SECRET = "screenshot-dashboard-secret-0123"
PASSWORD = "screenshots only, thrown away"
FREE, PRO = "64b0000000000000000000b1", "64b0000000000000000000b2"
SAMPLES = (  # (email, policies, fields): the shipped rules leave the last four to people
    ("alice@acme.partner.example", [FREE], {"company": "Acme Inc", "use_case": "sync"}),
    ("bob@mailinator.com", [FREE], {"company": "", "use_case": "testing"}),
    ("carol@gmail.com", [FREE], {"company": "Carol Consulting", "use_case": "dashboards"}),
    ("dave@example.com", [FREE], {"company": "Dave Ltd"}),
    ("dave@example.com", [PRO], {"company": "Dave Ltd", "use_case": "billing reports"}),
)


SHOTS = ("console-login.png", "console-inbox.png", "console-request.png",
         "console-request-decided.png", "console-phone.png", "console-request-phone.png",
         "console-request-renewal.png")


def main(folder: Path) -> None:
    """Save each of SHOTS in `folder`."""
    work = Path(tempfile.mkdtemp(prefix="approver-shots-"))
    rules = work / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "25-small.yaml").write_text(SMALL_COMPANIES)
    with_grant(rules)
    redis_server = EmbeddedRedis(directory=work).start()
    sandbox = serve(create_sandbox_app(secret=SECRET))
    settings = Settings(dashboard_url=sandbox.url, dashboard_secret=SECRET,
                        redis_url=redis_server.url, webhook_tokens=("screenshot-token-0123456",),
                        rules_path=rules, secret_key=b"screenshots-signing-key-0123456789")
    rt = runtime.Runtime(settings)
    runtime.install(rt)
    web = serve(create_app(settings))
    chrome = browser.Browser()
    try:
        refs = [sandbox.app.sandbox.create_key_request(email, policies, fields)["id"]
                for email, policies, fields in SAMPLES]
        for ref in refs:
            decide.run(rt, ref, "webhook")
        accounts.add(rt.store, "alice", PASSWORD)
        chrome.open(f"{web.url}/console/login")
        chrome.screenshot(folder / "console-login.png")
        chrome.resize(browser.LAPTOP)
        chrome.sign_in(None, "alice", PASSWORD)
        chrome.screenshot(folder / "console-inbox.png")
        chrome.resize(browser.LAPTOP)
        carol = f"{web.url}/console/requests/{refs[2]}"
        chrome.open(carol)
        chrome.fill("textarea[name=reason]", "Known customer: signed the partner agreement.")
        chrome.screenshot(folder / "console-request.png")
        chrome.resize(browser.PHONE)
        chrome.open(f"{web.url}/console/")
        chrome.screenshot(folder / "console-phone.png")
        chrome.resize(browser.PHONE)
        chrome.open(carol)
        chrome.screenshot(folder / "console-request-phone.png")
        taken = review.claim(rt.store, refs[2], "approve", "Known customer: signed the "
                             "partner agreement.", "local:alice", "console", "127.0.0.1")
        decide.decide_by_person(rt, refs[2], "approve", taken["reason"], "local:alice", "console",
                                **review.audit_fields(taken))
        chrome.resize(browser.LAPTOP)
        chrome.open(carol)
        chrome.screenshot(folder / "console-request-decided.png")
        # A week before the partner's access ends: its renewal waits for a person.
        grants.run(rt, now=float(rt.store.state(refs[0])["remind_ts"]) + 1)
        chrome.resize(browser.LAPTOP)
        chrome.open(f"{web.url}/console/requests/{refs[0]}")
        chrome.fill(".decide textarea[name=reason]", "Still a partner: another quarter.")
        chrome.screenshot(folder / "console-request-renewal.png")
    finally:
        chrome.quit()
        web.shutdown()
        sandbox.shutdown()
        runtime.install(None)
        redis_server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs"))

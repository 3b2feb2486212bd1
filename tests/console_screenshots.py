"""Take the screenshots in docs/console.md: `python -m tests.console_screenshots [FOLDER]`.

Starts a private Redis and the sandbox Dashboard, decides a few sample requests with the
shipped rules, serves the web app, signs in with headless Chromium and saves the inbox and
a request's page (at a laptop's width, and the inbox at a phone's).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from approver.config import Settings
from approver.pipeline import decide, runtime
from approver.process.embedded_redis import EmbeddedRedis
from approver.sandbox import create_app as create_sandbox_app
from approver.sandbox import serve
from approver.state import accounts
from approver.web import create_app
from tests import browser

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


def main(folder: Path) -> None:
    """Save console-inbox.png, console-request.png and console-phone.png in `folder`."""
    work = Path(tempfile.mkdtemp(prefix="approver-shots-"))
    redis_server = EmbeddedRedis(directory=work).start()
    sandbox = serve(create_sandbox_app(secret=SECRET))
    settings = Settings(dashboard_url=sandbox.url, dashboard_secret=SECRET,
                        redis_url=redis_server.url, webhook_tokens=("screenshot-token-0123456",),
                        rules_path=ROOT / "rules", secret_key=b"screenshots-signing-key-0123456789")
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
        chrome.sign_in(web.url, "alice", PASSWORD)
        chrome.screenshot(folder / "console-inbox.png")
        chrome.resize(browser.LAPTOP)
        chrome.open(f"{web.url}/console/requests/{refs[2]}")
        chrome.fill("textarea[name=reason]", "Known customer: signed the partner agreement.")
        chrome.screenshot(folder / "console-request.png")
        chrome.resize(browser.PHONE)
        chrome.open(f"{web.url}/console/")
        chrome.screenshot(folder / "console-phone.png")
    finally:
        chrome.quit()
        web.shutdown()
        sandbox.shutdown()
        runtime.install(None)
        redis_server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs"))

"""Take the screenshots of deciding from a mail and from Slack in docs/console.md:
`python -m tests.elsewhere_screenshots [FOLDER]`.

Starts a private Redis, the sandbox Dashboard, an SMTP server and the fake Slack API
(tests/slack_fake.py), leaves a request to people with the shipped rules, and with headless
Chromium saves the admin's mail (its HTML part), the page its Approve link opens, and the
Slack message as posted and once approved, drawn from the posted Block Kit JSON by a simple
preview (`preview`), not by Slack.
"""

from __future__ import annotations

import html
import re
import shutil
import sys
import tempfile
from pathlib import Path

from approver.config import Settings
from approver.pipeline import decide, enqueue, review, runtime
from approver.process.embedded_redis import EmbeddedRedis
from approver.sandbox import create_app as create_sandbox_app
from approver.sandbox import serve
from approver.web import create_app
from tests import browser
from tests.conftest import run_jobs
from tests.slack_fake import CHANNEL, TOKEN, FakeSlack
from tests.test_mail import Inbox, parts, smtp_server

ROOT = Path(__file__).resolve().parent.parent
SECRET = "screenshot-dashboard-secret-0123"
FREE = "64b0000000000000000000b1"
SHOTS = ("mail-review-links.png", "mail-link-page.png", "slack-message.png",
         "slack-message-decided.png")
_LINK = re.compile(r'href="([^"]*/console/act/[^"?]+)\?outcome=approve"')


def preview(message: dict) -> str:
    """A Block Kit message as a plain HTML page, close enough to Slack's to show what people
    see: headers, mrkdwn sections (bold, code, quotes), context lines, buttons."""
    out = []
    for block in message["blocks"]:
        kind = block["type"]
        if kind == "header":
            out.append(f"<h3>{html.escape(block['text']['text'])}</h3>")
        elif kind == "section":
            out.append(f"<p>{_mrkdwn(block['text']['text'])}</p>")
        elif kind == "context":
            out.append("<p class=ctx>" + " ".join(_mrkdwn(e["text"]) for e in block["elements"])
                       + "</p>")
        elif kind == "actions":
            out.append("<p>" + "".join(
                f"<span class='btn {e.get('style', '')}'>{html.escape(e['text']['text'])}</span>"
                for e in block["elements"]) + "</p>")
    return ("<!doctype html><meta charset=utf-8><style>body{font:15px/1.46 Lato,system-ui,"
            "sans-serif;margin:24px;color:#1d1c1d;max-width:640px}.msg{display:flex;gap:10px}"
            ".av{width:36px;height:36px;border-radius:4px;background:#4a154b;color:#fff;"
            "display:flex;align-items:center;justify-content:center;font-weight:700}"
            "code{color:#e01e5a;background:#f6f6f6;border:1px solid #ddd;border-radius:3px;"
            "padding:0 3px;font-size:12px}.ctx{color:#616061;font-size:12px}h3{margin:4px 0}"
            "blockquote{border-left:4px solid #ddd;margin:4px 0;padding-left:8px}"
            ".btn{display:inline-block;border:1px solid #bbb;border-radius:4px;padding:3px 12px;"
            "margin-right:8px;font-weight:700}.primary{background:#007a5a;color:#fff;"
            "border-color:#007a5a}.danger{color:#e01e5a;border-color:#e01e5a}</style>"
            "<div class=msg><div class=av>A</div><div><b>tyk-approver</b> <span class=ctx>APP"
            "</span>" + "".join(out) + "</div></div>")


def _mrkdwn(text: str) -> str:
    """Slack's mrkdwn (already escaped as Slack asks: &amp; &lt; &gt;) as HTML."""
    pieces = re.split(r"(`[^`]*`)", text)
    shown = []
    for piece in pieces:
        if piece.startswith("`") and piece.endswith("`") and len(piece) > 1:
            shown.append(f"<code>{piece[1:-1]}</code>")
        else:
            piece = re.sub(r"\*([^*\n]+)\*", r"<b>\1</b>", piece)
            piece = re.sub(r"_([^_\n]+)_", r"<i>\1</i>", piece)
            shown.append(piece)
    lines = "".join(shown).split("\n")
    return "<br>".join(f"<blockquote>{line[1:]}</blockquote>" if line.startswith(">")
                       else line for line in lines)


def main(folder: Path) -> None:
    """Save each of SHOTS in `folder`."""
    work = Path(tempfile.mkdtemp(prefix="approver-shots-"))
    redis_server = EmbeddedRedis(directory=work).start()
    sandbox = serve(create_sandbox_app(secret=SECRET))
    slack = FakeSlack()
    slack_server = serve(slack.app)
    inbox = Inbox()
    smtp = smtp_server(inbox)
    web = None
    chrome = browser.Browser()
    try:
        settings = Settings(
            dashboard_url=sandbox.url, dashboard_secret=SECRET, redis_url=redis_server.url,
            webhook_tokens=("screenshot-token-0123456",), rules_path=ROOT / "rules",
            secret_key=b"screenshots-signing-key-0123456789",
            smtp_url=f"smtp://127.0.0.1:{smtp.port}", mail_from="API team <api@example.com>",
            mail_on=(), mail_admins=("reviewers@example.com",),
            slack_api_url=slack_server.url + "/api", slack_bot_token=TOKEN,
            slack_signing_secret="screenshot-signing-secret", slack_channel=CHANNEL)
        web = serve(create_app(settings))
        settings = settings.with_(public_url=web.url)
        rt = runtime.Runtime(settings)
        runtime.install(rt)
        ref = sandbox.app.sandbox.create_key_request(
            "carol@gmail.com", [FREE], {"company": "Carol Consulting",
                                        "use_case": "dashboards for our clients"})["id"]
        decide.run(rt, ref, "webhook")
        run_jobs(rt.redis, enqueue.notify_queue(rt.queue))
        [message] = [m for r, m in inbox.messages if r == ["reviewers@example.com"]]
        page = work / "mail.html"
        page.write_text(parts(message)[1])
        chrome.resize((760, 720))
        chrome.open(page.as_uri())
        chrome.screenshot(folder / "mail-review-links.png")
        link = _LINK.search(parts(message)[1]).group(1).replace("&amp;", "&")
        chrome.resize(browser.LAPTOP)
        chrome.open(link + "?outcome=approve")
        chrome.fill("textarea[name=reason]", "Known customer: signed the partner agreement.")
        chrome.screenshot(folder / "mail-link-page.png")
        chrome.resize((760, 520))
        _shoot(chrome, work, folder / "slack-message.png", slack)
        taken = review.claim(rt.store, ref, "approve", "Known customer: signed the partner "
                             "agreement.", "email:reviewers@example.com", "slack",
                             "slack:U0MEMBER1")
        decide.decide_by_person(rt, ref, "approve", taken["reason"], taken["by"], "slack",
                                **review.audit_fields(taken))
        run_jobs(rt.redis, enqueue.notify_queue(rt.queue))
        _shoot(chrome, work, folder / "slack-message-decided.png", slack)
    finally:
        chrome.quit()
        for server in (web, slack_server, sandbox):
            if server is not None:
                server.shutdown()
        smtp.stop()
        runtime.install(None)
        redis_server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _shoot(chrome, work: Path, path: Path, slack: FakeSlack) -> None:
    [posted] = slack.messages.values()
    page = work / f"{path.stem}.html"
    page.write_text(preview(posted))
    chrome.open(page.as_uri())
    chrome.screenshot(path)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs"))

"""Small HTML pages for developers' browsers, with a strict content security policy."""

from __future__ import annotations

import base64
import hashlib

from flask import render_template

STYLE = ("body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}"
         "main{max-width:36rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px}"
         "h1{font-size:1.5rem;margin-top:0}.small{color:#555;font-size:.875rem}")
# The one inline style is allowed by its hash; nothing else may load or run.
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")


def page(status: int, title: str, message: str, **details):
    """An HTML answer: autoescaped, no scripts, not cached, not framed."""
    html = render_template("page.html", title=title, message=message, style=STYLE, **details)
    return html, status, {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
    }

"""Rendering console pages, and the one page that says something went wrong."""

from __future__ import annotations

from flask import g, render_template


def render(template: str, status: int = 200, headers: dict | None = None, **context):
    """A console page (autoescaped; the security headers come from init_app)."""
    html = render_template(f"console/{template}", user=g.get("console_user"), **context)
    return html, status, {"Content-Type": "text/html; charset=utf-8", **(headers or {})}


def message(status: int, title: str, text: str, **context):
    """A page that only says something: an error, a refusal, a missing set-up."""
    return render("message.html", status, title=title, text=text, **context)

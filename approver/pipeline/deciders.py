"""Who may decide a request, whatever the channel (console, mail link, Slack): one function,
`may_decide`, so that a step's own rules (groups, an outside address) replace it in one place.

Until requests have steps, the one step is "anyone who may decide in the console": a local
account that exists, a single sign-on identity on the allow-list, a trusted proxy's user (the
proxy is configured), and an address of APPROVER_MAIL_ADMINS (the people told that a
request awaits review).
"""

from __future__ import annotations

from approver.state import accounts
from approver.state.store import Store


def may_decide(person: str, request_id: str, store: Store, settings) -> str | None:
    """None if `person` (`local:NAME`, `oidc:EMAIL`, `proxy:NAME`, `email:ADDRESS`) may
    decide `request_id` now; else why not, in words for that person."""
    way, _, name = person.partition(":")
    if not name:
        return f"{person!r} names nobody"
    if way == "local" and accounts.exists(store, name):
        return None
    if way == "oidc" and settings.oidc_issuer and name.lower() in settings.oidc_allowed_users:
        return None
    if way == "proxy" and settings.console_user_header:
        return None
    if way == "email" and name.lower() in {a.lower() for a in settings.mail_admins}:
        return None
    return f"{person} may not decide key requests here"


def same_person(subject: str, person: str) -> bool:
    """Whether a signed-in `person` is the one a link was made for: the same name, or an
    address link's address as the person's email (`email:a@x` is `oidc:a@x`, `proxy:a@x`,
    or a local account named `a@x`)."""
    if subject == person:
        return True
    way, _, address = subject.partition(":")
    return way == "email" and bool(address) and (
        person.partition(":")[2].lower() == address.lower())


def by_email(email: str, request_id: str, store: Store, settings) -> str | None:
    """The person an email someone else vouches for (Slack's profile) names, if one of the
    ways that name people by email allows them: single sign-on, a mail admin's address, a
    local account named by it. Never a proxy's user: any name passes as one."""
    email = (email or "").strip()
    if not email or "@" not in email:
        return None
    for way in ("oidc", "email", "local"):
        if may_decide(f"{way}:{email}", request_id, store, settings) is None:
            return f"{way}:{email.lower() if way != 'local' else email}"
    return None

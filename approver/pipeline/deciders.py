"""Who a channel's person is, and whether they may decide a request, whatever the channel
(console, mail link, Slack): the people a name stands for (`person_of`), then the steps'
one check (`pipeline.steps.refusal`: a request without steps is anyone's who may decide in
the console; with steps, the current step's group, four eyes, the admins' group).

Who may decide in the console: a local account that exists (with its groups and email), a
single sign-on identity on the allow-list, a trusted proxy's user (the proxy is
configured), and an address of APPROVER_MAIL_ADMINS (the people told that a request awaits
review; an address is in no group).
"""

from __future__ import annotations

from approver.pipeline import steps
from approver.state import accounts
from approver.state.store import Store


def person_of(subject: str, store: Store, settings) -> tuple[steps.Person | None, str | None]:
    """(the person `subject` names, None), or (None, why they may not decide here):
    `local:NAME`, `oidc:EMAIL`, `proxy:NAME`, `email:ADDRESS`."""
    way, _, name = subject.partition(":")
    if name and way == "local":
        found = accounts.profile(store, name)
        if found is not None:
            return steps.Person(subject, tuple(found["groups"]), found["email"]), None
    if name and way == "oidc" and settings.oidc_issuer and (
            name.lower() in settings.oidc_allowed_users):
        return steps.Person(subject, (), name), None
    if name and way == "proxy" and settings.console_user_header:
        return steps.Person(subject, (), name if "@" in name else ""), None
    if name and way == "email" and name.lower() in {a.lower() for a in settings.mail_admins}:
        return steps.Person(subject, (), name), None
    return None, f"{subject} may not decide key requests here"


def may_decide(person: str | steps.Person, request_id: str, store: Store, settings,
               outcome: str = "approve") -> str | None:
    """None if `person` (a name, or a signed-in `steps.Person`) may `outcome` the request
    now; else why not, in words for that person."""
    if isinstance(person, str):
        person, why = person_of(person, store, settings)
        if why:
            return why
    return steps.refusal(store, request_id, person, settings.admins_group, outcome)


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
    ways that name people by email admits them: single sign-on, a mail admin's address, a
    local account named by it. Never a proxy's user: any name passes as one."""
    email = (email or "").strip()
    if not email or "@" not in email:
        return None
    for way in ("local", "oidc", "email"):  # an account first: it has groups
        name = f"{way}:{email.lower() if way != 'local' else email}"
        if person_of(name, store, settings)[0] is not None:
            return name
    return None

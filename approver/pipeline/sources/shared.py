"""The new portal's shared-credential guard: an access request is deleted to revoke it only
once its app's access requests, read now, show that no other one holds its credential.

Since portal 1.16 one credential may serve several products (tyk-docs
`tyk-developer-portal/single-credentials-multiple-api-products.mdx`): deleting the access
request would then cut the others' access too. Only the 1.14.0 spec's shapes are read (an
app's access requests with their `Credentials`, docs/tyk-compatibility.md); whatever
cannot be read refuses the revocation, never deletes blind.
"""

from __future__ import annotations

from approver.pipeline.sources import RevocationRefused
from approver.portal.models import int_id


def not_shared(portal, ar, key_id: str) -> None:
    """RevocationRefused unless no other approved (or status-less) access request of the
    app holding `key_id` lists its credential, as the portal answers now."""
    try:
        listed = _app_access(portal, ar, key_id)
    except RevocationRefused:
        raise
    except Exception as exc:  # any failure: never delete blind
        raise RevocationRefused(
            f"access request {key_id} not deleted: its app's access requests and "
            f"credentials could not be read ({type(exc).__name__})",
            "revocation_refused_credentials_unread", error=type(exc).__name__) from exc
    mine = next(a for a in listed if a.id == key_id)
    sharing = [a for a in listed if a.id != key_id and a.credentials & mine.credentials
               and a.status in ("approved", "")]  # no status: it may hold access
    if sharing:
        products = sorted({n for a in sharing for n in a.product_names})
        raise RevocationRefused(
            f"access request {key_id} not deleted: its credential also serves access "
            f"request(s) {', '.join(a.id for a in sharing)} of the same app "
            f"({', '.join(products) or 'unnamed'})",
            "revocation_refused_shared_credential",
            shared_with=[a.id for a in sharing], products=products)


def _app_access(portal, ar, key_id: str) -> list:
    """The access requests of the app holding `key_id`, found by the app's name and owner
    (access requests name their app, they carry no app id)."""
    apps = [str(a.get("ID")) for a in portal.list_apps()
            if a.get("Name") == ar.app_name and int_id(a.get("ID"))
            and int_id(a.get("UserID")) in ("", ar.user_id)]
    for app_id in apps:
        listed = portal.app_access(app_id)
        if any(a.id == key_id for a in listed):
            return listed
    raise RevocationRefused(
        f"access request {key_id} not deleted: no app named {ar.app_name[:80]!r} lists "
        f"it, so whether its credential is shared cannot be read",
        "revocation_refused_credentials_unread", error="app not found")

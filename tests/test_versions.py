"""`approver status` reads the Tyk versions where Tyk exposes them and says which the
service's evidence covers."""

import json

import pytest

from approver.pipeline import versions
from approver.pipeline.runtime import Runtime
from approver.tyk import Dashboard
from tests.conftest import SANDBOX_SECRET, with_portal
from tests.test_cli import run


def test_the_dashboard_version_is_none_when_hello_does_not_say(sandbox):
    with Dashboard(sandbox.url, SANDBOX_SECRET) as dashboard:
        assert dashboard.version() is None
        sandbox.app.sandbox.set_mode("version", "v5.13.2")
        assert dashboard.version() == "v5.13.2"


def test_a_dashboard_without_hello_reports_no_version(sandbox):
    sandbox.app.sandbox.add_fault("GET", "/hello", status=404, times=1)
    with Dashboard(sandbox.url, SANDBOX_SECRET) as dashboard:
        assert dashboard.version() is None


@pytest.mark.parametrize("reported, tested", [("v5.13.2", True), ("v5.3.0", False)])
def test_status_says_whether_the_dashboard_version_is_tested(capsys, rt, sandbox, reported,
                                                            tested):
    sandbox.app.sandbox.set_mode("version", reported)
    code, out, _ = run(capsys, "status", "--json")
    seen = json.loads(out)["versions"]["classic"]
    assert code == 0
    assert (seen["version"], seen["tested"], seen["note"]) == (reported, tested, None)
    assert "5.13.0" in seen["evidence"]
    code, out, _ = run(capsys, "status")
    said = "tested" if tested else "untested"
    assert f"tyk classic: version {reported}, {said} (evidence: Dashboard API spec" in out


def test_status_says_a_version_tyk_does_not_expose_is_unknown(capsys, rt, sandbox):
    code, out, _ = run(capsys, "status")
    assert code == 0 and "tyk classic: version not exposed by Tyk (evidence:" in out


def test_the_new_portal_exposes_no_version(settings, portal):
    seen = versions.report(Runtime(with_portal(settings, portal)))["portal"]
    assert (seen["version"], seen["tested"], seen["note"]) == (None, None, "not exposed by Tyk")
    assert "1.14.0" in seen["evidence"]


def test_a_dashboard_that_cannot_be_reached_is_said_so(settings):
    rt = Runtime(settings.with_(dashboard_url="http://127.0.0.1:9"))
    seen = versions.report(rt)["classic"]
    assert seen["version"] is None and seen["note"].startswith("could not be read")


def test_minor_versions_are_read_from_tyk_spellings():
    assert [versions.minor(v) for v in ("v5.3.1-rc2", "1.14.0", "5.13", "dev")] == [
        "5.3", "1.14", "5.13", None]

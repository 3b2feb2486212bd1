"""Both portals' lists are read to the end, whatever page size the server honours, whether
its pages count from 0 or from 1, and whether it states a page count (sandbox paging modes)."""

import itertools

import pytest

from approver.pipeline import reconcile
from approver.pipeline.runtime import Runtime
from approver.portal import Portal
from approver.tyk import Dashboard
from tests.conftest import PORTAL_TOKEN, SANDBOX_SECRET, with_portal

ALICE = "alice@acme.partner.example"
FREE = "64b0000000000000000000b1"

CLASSIC_VARIANTS = [dict(zip(("page_base", "page_size", "pages_total"), v, strict=True))
                    for v in itertools.product((0, 1), (3, 10), ("counted", "zero"))]
PORTAL_VARIANTS = [dict(zip(("page_base", "max_per_page"), v, strict=True))
                   for v in itertools.product((0, 1), (0, 7))]


def _name(variant: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in variant.items())


def paging(state, modes: dict, ask, count: int):
    """`state` switched to these paging modes, holding `count` more requests (`ask()`)."""
    for name, value in modes.items():
        state.set_mode(name, value)
    for _ in range(count):
        ask()
    return state


@pytest.fixture(params=CLASSIC_VARIANTS, ids=_name)
def classic(request, sandbox):
    """The sandbox Dashboard paging one way, with 25 more pending requests than its seed."""
    tyk = sandbox.app.sandbox
    return paging(tyk, request.param, lambda: tyk.create_key_request(ALICE, [FREE]), 25)


@pytest.fixture(params=PORTAL_VARIANTS, ids=_name)
def paged_portal(request, portal):
    """The sandbox portal paging one way, with 23 access requests."""
    state = portal.app.sandbox
    return paging(state, request.param,
                  lambda: state.create_access_request(ALICE, ["Free"], "Free plan"), 23)


def test_every_pending_key_request_is_walked_once(sandbox, classic):
    with Dashboard(sandbox.url, SANDBOX_SECRET, backoff=0.001) as dashboard:
        walked = [r.id for r in dashboard.iter_key_requests(approved=False)]
    assert len(walked) == len(set(walked))
    assert set(walked) == {r["id"] for r in classic.key_requests(approved=False)}
    asked = [c["query"]["p"] for c in classic.calls("GET", "/api/portal/requests")]
    assert asked[:2] == ["0", "1"]  # the first page either way, then page 1


def test_the_reconciler_sees_every_pending_key_request(rt, classic):
    assert reconcile.run(rt).pending == len(classic.key_requests(approved=False))


def test_every_access_request_is_walked_once(portal, paged_portal):
    with Portal(portal.url, PORTAL_TOKEN, backoff=0.001) as client:
        walked = [r.id for r in client.list_access_requests()]
    assert walked == [str(r["ID"]) for r in paged_portal.access_requests()]
    first = paged_portal.calls("GET", "/portal-api/access_requests")[0]
    assert first["query"] == {"per_page": "100"}  # the first page, whatever the base


def test_the_reconciler_sees_every_pending_access_request(settings, sandbox, portal,
                                                          paged_portal):
    both = Runtime(with_portal(settings, portal))
    pending = len(paged_portal.access_requests("pending"))
    assert reconcile.run(both).pending == pending + len(
        sandbox.app.sandbox.key_requests(approved=False))


def test_a_page_shorter_than_asked_does_not_end_the_walk(portal):
    state = portal.app.sandbox
    state.set_mode("max_per_page", 5)
    for _ in range(12):
        state.create_access_request(ALICE, ["Free"], "Free plan")
    with Portal(portal.url, PORTAL_TOKEN, backoff=0.001) as client:
        assert len(client.list_access_requests()) == 12
    pages = [c["query"].get("page") for c in state.calls("GET", "/portal-api/access_requests")]
    # Pages of 5 though 100 were asked; page 1 repeats the first (pages count from 1);
    # the walk ends after page 3, shorter (2 rows) than the first.
    assert pages == [None, "1", "2", "3"]


def test_the_sandbox_refuses_a_paging_mode_it_does_not_have(sandbox, portal):
    for state, name, value in ((sandbox.app.sandbox, "page_base", 2),
                               (sandbox.app.sandbox, "page_size", 0),
                               (sandbox.app.sandbox, "pages_total", "some"),
                               (portal.app.sandbox, "page_base", True),
                               (portal.app.sandbox, "max_per_page", -1)):
        with pytest.raises(ValueError, match=name):
            state.set_mode(name, value)

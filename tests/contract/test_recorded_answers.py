"""Every recorded Tyk answer, served as Tyk sent it, parses through the project's clients
and models into the facts the rules see."""

from __future__ import annotations

import pytest

from approver.pipeline.sources.classic import ClassicSource
from approver.pipeline.sources.portal import PortalSource
from approver.portal import Portal
from approver.rules import FactContext, Facts
from approver.rules.values import UNKNOWN
from approver.tyk import BadRequest, Dashboard, Forbidden, NotFound, Unauthorized
from tests.contract import corpus

REQUEST = "5cf61bff0313b300010b89ac"


@pytest.fixture
def dashboard(replay):
    url, _ = replay
    with Dashboard(url, "secret-0123456789", retries=0) as client:
        yield client


@pytest.fixture
def portal_api(replay):
    url, _ = replay
    with Portal(url, "token-0123456789", retries=0) as client:
        yield client


@pytest.mark.parametrize("file", ["classic/GET-api-portal-requests.json",
                                  "classic/GET-api-portal-requests.portal-keys-page.json"])
def test_recorded_key_request_lists_parse(replay, dashboard, file):
    replay[1].answer("GET", "/api/portal/requests", file)
    requests = dashboard.list_key_requests(approved=False)
    assert requests and all(r.id and r.policies and r.developer_id for r in requests)
    assert all(r.developer is not None and r.developer.email for r in requests)
    assert all("jwt_secret" not in r.raw for r in requests)


def test_the_recorded_portal_configuration_names_the_organisation_served(replay, dashboard):
    # What the workers' health check reads to recognise another organisation's events.
    file = "classic/GET-api-portal-configuration.json"
    replay[1].answer("GET", "/api/portal/configuration", file)
    assert dashboard.ping() == corpus.load(file)["org_id"] == "5cc03283d07e7f00019404b3"
    # Tyk's own sample says HashKeys false: the service never reads hashing from it.
    assert corpus.load(file)["HashKeys"] is False


def test_recorded_p0_list_with_pages_0_is_walked_once(replay, dashboard):
    # Tyk's sample asks p=0 and answers "Pages": 0 beside a page of requests; a server
    # answering it for every p (one that ignores p) is read once, not forever.
    file = "classic/GET-api-portal-requests.json"
    assert corpus.load(file)["Pages"] == 0
    replay[1].answer("GET", "/api/portal/requests", file)
    walked = [r.id for r in dashboard.iter_key_requests(approved=False)]
    assert walked == [d["id"] for d in corpus.load(file)["Data"]]


@pytest.mark.parametrize("file", ["classic/GET-api-portal-requests-id.json",
                                  "classic/GET-api-portal-requests-id.portal-keys-page.json"])
def test_recorded_key_requests_become_facts(replay, dashboard, file):
    body = corpus.load(file)
    replay[1].answer("GET", f"/api/portal/requests/{REQUEST}", file)
    replay[1].answer("GET", f"/api/portal/developers/{body['by_user']}",
                     "classic/GET-api-portal-developers-id.json")
    replay[1].answer("GET", f"/api/portal/policies/{body['apply_policies'][0]}",
                     "classic/GET-api-portal-policies-id.json")
    source = ClassicSource(dashboard)
    request = source.fetch(REQUEST)
    facts = Facts(source.gather(request, None))
    # Both recorded requests are approved ones: the pipeline would skip them.
    assert not request.pending and request.policies == tuple(body["apply_policies"])
    assert facts.get("request.policies") == body["apply_policies"]
    assert facts.get("developer.email_domain") in ("tyk.io", "blop.com")
    assert facts.get("policy.names") == [
        corpus.load("classic/GET-api-portal-policies-id.json")["name"]]
    assert facts.get("request.created_at") is not UNKNOWN
    # The OAuth client secret of the embedded developer never reaches the facts' input.
    assert "secret" not in str(source.gather(request, None).developer)


@pytest.mark.parametrize("file", [
    "classic/PUT-api-portal-requests-approve.authtoken.json",
    "classic/PUT-api-portal-requests-approve.basicauth.json",
    "classic/PUT-api-portal-requests-approve.json",
])
def test_recorded_approve_answers_are_success_and_never_kept(replay, dashboard, file):
    routes = replay[1]
    routes.answer("GET", f"/api/portal/requests/{REQUEST}",
                  "classic/GET-api-portal-requests-id.json")
    recorded_id = corpus.load("classic/GET-api-portal-requests-id.json")["id"]
    routes.answer("PUT", f"/api/portal/requests/approve/{recorded_id}", file)
    # Not embedded in this recorded request: the developer is read before and after.
    routes.answer("GET", "/api/portal/developers/554c733a30c55e4b16000002",
                  "classic/GET-api-portal-developers-id.json")
    approval = dashboard.approve_key_request(dashboard.get_key_request(REQUEST))
    assert approval.already_processed is False
    secret = corpus.load(file)["RawKey"]
    assert secret not in repr(approval)


@pytest.mark.parametrize("file", [
    "classic/POST-api-portal-requests.json",
    "classic/POST-api-portal-requests.custom-portal-guide.json",
    "classic/DELETE-api-portal-requests-id.json", "classic/POST-api-portal-developers.json",
    "classic/PUT-api-portal-developers-id.json", "classic/POST-api-portal-policies.json",
    "classic/POST-api-portal-developers-password-id.json",
])
def test_recorded_ok_answers_are_success(replay, dashboard, file):
    # Whatever `Meta` holds (null, "" or "null") and whichever keys come.
    replay[1].answer("DELETE", f"/api/portal/requests/{REQUEST}", file)
    assert dashboard.delete_key_request(REQUEST) is True


@pytest.mark.parametrize("file, status, error", [
    ("classic/ERR-401-not-authorised.json", 401, Unauthorized),
    ("classic/ERR-403-access-denied.json", 403, Forbidden),
    ("classic/ERR-404-api-portal-policies-id.json", 404, NotFound),
    ("classic/ERR-POST-api-portal-developers-password-id.json", 400, BadRequest),
])
def test_recorded_errors_raise_typed_errors_with_tyks_message(replay, dashboard, file, status,
                                                              error):
    replay[1].answer("GET", f"/api/portal/policies/{REQUEST}", file, status=status)
    with pytest.raises(error) as caught:
        dashboard.get_policy(REQUEST)
    assert corpus.load(file)["Message"].split("  ")[0] in str(caught.value)
    if error is Forbidden:
        assert "lacks the right 'policy: read'" in str(caught.value)


@pytest.mark.parametrize("file", ["classic/GET-api-portal-developers.json",
                                  "classic/GET-api-portal-developers.2015-legacy.json"])
def test_recorded_developer_lists_parse_without_passwords(file):
    from approver.tyk import Developer

    for item in corpus.load(file)["Data"]:
        developer = Developer.from_json(item)
        assert developer.id and developer.email and "password" not in developer.raw


def test_a_recorded_developer_with_only_api_keys_holds_unknown_keys_and_policies():
    from approver.tyk import Developer

    # The 2015 list's `api_keys` maps API id -> short key id, not key id -> policy ids.
    (first, second) = corpus.load("classic/GET-api-portal-developers.2015-legacy.json")["Data"]
    assert first["api_keys"] and "keys" not in first
    for item in (first, second):
        assert Developer.from_json(item).keys == {}
        facts = Facts(FactContext(request={}, developer=Developer.from_json(item).raw))
        assert facts.get("developer.policies") is UNKNOWN
        assert facts.get("developer.key_count") is UNKNOWN


def test_recorded_developers_parse_by_id_and_by_email(replay, dashboard):
    replay[1].answer("GET", "/api/portal/developers/5e397e714ea461ef1d474efa",
                     "classic/GET-api-portal-developers-id.json")
    replay[1].answer("GET", "/api/portal/developers/email/blip@blop.com",
                     "classic/GET-api-portal-developers-email.json")
    developer = dashboard.get_developer("5e397e714ea461ef1d474efa")
    assert list(developer.oauth_clients) == ["5e397e804ea461ef1d474efb"]
    assert "secret" not in str(developer.raw)
    assert dashboard.get_developer_by_email("blip@blop.com").id


@pytest.mark.parametrize("file", ["classic/GET-api-portal-policies.json",
                                  "classic/GET-api-portal-policies.swagger.json",
                                  "classic/GET-api-portal-policies.tyk-operator.json"])
def test_recorded_policy_lists_parse(replay, dashboard, file):
    replay[1].answer("GET", "/api/portal/policies", file)
    policies = dashboard.list_policies()
    assert policies and all(p.id and p.name for p in policies)


@pytest.mark.parametrize("file", ["classic/GET-api-portal-policies-id.json",
                                  "classic/GET-api-portal-policies-id.swagger.json"])
def test_recorded_policies_become_policy_facts(replay, dashboard, file):
    replay[1].answer("GET", f"/api/portal/policies/{REQUEST}", file)
    policy = dashboard.get_policy(REQUEST)
    facts = Facts(FactContext(request={"apply_policies": [REQUEST]},
                              policies={REQUEST: policy.raw}))
    assert facts.get("policy.names") == [corpus.load(file)["name"]]
    assert isinstance(facts.get("policy.tags"), list)


@pytest.mark.parametrize("file", ["classic/GET-api-portal-catalogue.json",
                                  "classic/GET-api-portal-catalogue.custom-portal-guide.json"])
def test_recorded_catalogues_name_the_requested_entries(replay, dashboard, file):
    replay[1].answer("GET", "/api/portal/catalogue", file)
    catalogue = dashboard.get_catalogue()
    entry = catalogue["apis"][0]
    facts = Facts(FactContext(request={"apply_policies": [entry["policy_id"]]},
                              catalogue=catalogue))
    assert facts.get("request.catalogue") == [entry["name"]]


# ----- the new Developer Portal ------------------------------------------------------------


def test_recorded_access_requests_parse_with_names_and_without_credentials(replay,
                                                                           portal_api):
    replay[1].answer("GET", "/portal-api/apps/1/access-requests",
                     "edp/GET-portal-api-apps-id-access-requests.http")
    (listed,) = portal_api.list_app_access_requests("1")
    assert (listed.id, listed.status, listed.user_id) == ("30", "approved", "1")
    assert (listed.plan_name, listed.product_names, listed.app_name) == (
        "free_plan", ("public_product",), "v34")
    assert "Credentials" not in listed.raw
    # Read under its app, one access request has no ID and no Status: never "pending".
    from approver.portal import AccessRequest

    single = AccessRequest.from_json(
        corpus.load("edp/GET-portal-api-apps-id-access-requests-id.http"))
    assert (single.id, single.status, single.pending) == ("", "", False)
    assert single.user_id == "1" and "Credentials" not in single.raw


def test_a_recorded_app_list_tells_credentials_apart_without_keeping_them(replay,
                                                                         portal_api):
    replay[1].answer("GET", "/portal-api/apps/1/access-requests",
                     "edp/GET-portal-api-apps-id-access-requests.http")
    (listed,) = portal_api.app_access("1")
    assert (listed.id, listed.status, listed.product_names) == ("30", "approved",
                                                                ("public_product",))
    # The credential's ID and hash tell it apart (the shared-credential guard compares
    # them); the credential itself is not kept.
    assert listed.credentials == {"id:29", "hash:60bf6ae8aeddde79"}
    secret = corpus.load("edp/GET-portal-api-apps-id-access-requests.json")[0][
        "Credentials"][0]["Credential"]
    assert secret not in repr(listed)


def test_a_recorded_access_request_becomes_facts_from_records_only(replay, portal_api):
    routes = replay[1]
    listed = corpus.load("edp/GET-portal-api-apps-id-access-requests.json")[0]
    routes.answer("GET", "/portal-api/access_requests/30", body={**listed, "Status": "pending"})
    routes.answer("GET", "/portal-api/users/1", "edp/GET-portal-api-users-id.http")
    routes.answer("GET", "/portal-api/users/1/custom-attributes", body=[])
    routes.answer("GET", "/portal-api/plans", body={"data": []})
    routes.answer("GET", "/portal-api/products", body=[corpus.load(
        "edp/GET-portal-api-products-id.json")])
    source = PortalSource(portal_api)
    request = source.fetch("30")
    facts = Facts(source.gather(request, None))
    assert request.pending and request.developer_id == "1"
    assert facts.get("developer.email") == "raava@tyk.io"
    assert facts.get("developer.inactive") is False
    assert facts.get("portal.app") == "v34"
    assert facts.get("request.created_at") is not UNKNOWN
    # No plan or product answers to the recorded names here: unknown, so no approval.
    assert request.policies == ("product-?public_product", "plan-?free_plan")
    for name in ("policy.tags", "portal.plan", "portal.products", "request.fields.use_case"):
        assert facts.get(name) is UNKNOWN


def test_recorded_users_products_organisations_providers_and_apps_parse(replay, portal_api):
    from approver.pipeline.sources.portal import _developer, _policy

    routes = replay[1]
    routes.answer("GET", "/portal-api/users/1", "edp/GET-portal-api-users-id.http")
    routes.answer("GET", "/portal-api/products/8", "edp/GET-portal-api-products-id.http")
    routes.answer("GET", "/portal-api/organisations/1",
                  "edp/GET-portal-api-organisations-id.http")
    routes.answer("GET", "/portal-api/providers", "edp/GET-portal-api-providers.http")
    routes.answer("GET", "/portal-api/apps", "edp/GET-portal-api-apps.http")
    developer = _developer("1", portal_api.get_user("1"), {})
    assert (developer["email"], developer["inactive"]) == ("raava@tyk.io", False)
    product = _policy("product-8", portal_api.get_product("8"))
    assert product == {"id": "product-8", "name": "keycloak_product_Y", "tags": []}
    assert portal_api._get_object("/organisations/1")["Name"] == "Default Org"
    assert len(portal_api._get_items("/providers")) == 7
    assert {a["UserID"] for a in portal_api._get_items("/apps")} == {1}


def test_the_portals_plain_404_is_not_found(replay, portal_api):
    replay[1].answer("GET", "/portal-api/products/9", "edp/ERR-404-page-not-found.http")
    with pytest.raises(NotFound):
        portal_api.get_product("9")


@pytest.mark.parametrize("file", [
    "edp/GET-portal-api-apps.json", "edp/GET-portal-api-apps-id-access-requests-id.json",
    "edp/GET-portal-api-organisations-id.json", "edp/GET-portal-api-products-id.json",
    "edp/GET-portal-api-providers.json", "edp/GET-portal-api-users-id.json",
])
def test_each_dumps_body_is_its_json_file(file):
    assert corpus.load(file) == corpus.load(file.replace(".json", ".http"))

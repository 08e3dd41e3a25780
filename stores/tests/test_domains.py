"""Custom domains through the API (issue 11): bad input refused with a clear
4xx and nothing created; DNS verification against a real DNS server on
loopback; the change_url operation serving the domain through the fake
cluster and the real chart; the periodic check noticing a record removed."""

import pytest

from stores import constants as c
from stores import domains, notification_types
from stores.models import AuditEntry, Domain, Store

pytestmark = pytest.mark.django_db

HOST = "shop.example.com"


def create(api, eager, name="Acme Shop"):
    with eager():
        response = api.post("/api/stores/", {"name": name, "engine": "woocommerce"},
                            format="json")
    store = Store.objects.get(pk=response.json()["id"])
    assert store.status == c.READY, store.status_message
    return store


def add(api, store, hostname=HOST):
    return api.post(f"/api/stores/{store.id}/domains/", {"hostname": hostname}, format="json")


def point_at(fake_dns, store, domain_json, hostname=HOST):
    fake_dns.set(f"_storeplatform-challenge.{hostname}", "TXT",
                 domain_json["verification_token"])
    fake_dns.set(hostname, "CNAME", store.host)


def statuses(store):
    return [e.status_to for e in store.events.filter(kind=c.EVENT_STATUS)]


@pytest.fixture
def store(user):
    """A ready store as a row: enough for what needs no cluster."""
    return Store.objects.create(owner=user, name="Acme Shop", slug="acme-shop",
                                host="acme-shop.localtest.me", engine="woocommerce",
                                status=c.READY)


@pytest.fixture
def live(api, eager, cluster):
    """A store provisioned through the fake cluster and the real chart."""
    return create(api, eager)


# --- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(("hostname", "status", "says"), [
    ("", 400, "Give a host name"),
    ("not a host", 400, "not a host name"),
    ("https://shop.example.com/", 400, "without https://"),
    ("shop_example.com", 400, "not a valid host name"),
    ("localhost", 400, "not a valid host name"),
    ("203.0.113.7", 400, "is an IP address"),
    ("2001:db8::1", 400, "is an IP address"),
    ("*.example.com", 400, "Wildcard names are not supported"),
    ("other.localtest.me", 400, "under the platform's own domain localtest.me"),
    ("localtest.me", 400, "under the platform's own domain"),
    (42, 400, "Not a valid string"),
])
def test_a_bad_host_name_is_refused_saying_why_and_nothing_is_created(api, store, hostname,
                                                                      status, says):
    response = add(api, store, hostname)
    assert response.status_code == status, response.content
    assert says in str(response.json()), response.json()
    assert Domain.objects.count() == 0


def test_unknown_fields_are_refused(api, store):
    response = api.post(f"/api/stores/{store.id}/domains/", {"hostname": HOST, "tls": True},
                        format="json")
    assert response.status_code == 400
    assert response.json()["tls"] == ["Unknown field: remove it from the request."]
    assert Domain.objects.count() == 0


def test_a_name_on_another_store_is_a_conflict(api, store, user):
    assert add(api, store).status_code == 201
    other = Store.objects.create(owner=user, name="Other Shop", slug="other-shop",
                                 host="other-shop.localtest.me", engine="woocommerce",
                                 status=c.READY)
    response = add(api, other, "SHOP.example.com.")
    assert response.status_code == 409
    assert response.json()["detail"] == "shop.example.com is already used by another store."
    again = add(api, store)
    assert (again.status_code, again.json()["detail"]) == (
        409, "shop.example.com is already used by this store.")
    assert Domain.objects.count() == 1


def test_at_most_store_max_domains_per_store(api, store, settings):
    settings.STORE_MAX_DOMAINS = 2
    assert add(api, store, "a.example.com").status_code == 201
    assert add(api, store, "b.example.com").status_code == 201
    response = add(api, store, "c.example.com")
    assert response.status_code == 409
    assert "already has 2 of its 2 allowed domains" in response.json()["detail"]
    assert sorted(Domain.objects.values_list("hostname", flat=True)) == [
        "a.example.com", "b.example.com"]


def test_someone_elses_store_and_domains_are_404(api, other_api, store):
    domain = add(api, store).json()
    base = f"/api/stores/{store.id}/domains/"
    assert other_api.get(base).status_code == 404
    assert other_api.post(base, {"hostname": "x.example.com"}, format="json").status_code == 404
    for path in (f"{domain['id']}/verify/", f"{domain['id']}/make-primary/"):
        assert other_api.post(base + path).status_code == 404
    assert other_api.delete(f"{base}{domain['id']}/").status_code == 404
    assert Domain.objects.count() == 1


def test_a_domain_that_is_not_verified_cannot_become_primary(api, store):
    domain = add(api, store).json()
    response = api.post(f"/api/stores/{store.id}/domains/{domain['id']}/make-primary/")
    assert response.status_code == 409
    assert "only a verified domain" in response.json()["detail"]


# --- verification and serving ---------------------------------------------------------


def test_the_answer_lists_the_records_to_create(api, store, settings):
    settings.STORE_INGRESS_IPS = ["203.0.113.10"]
    domain = add(api, store).json()
    assert domain["status"] == c.DOMAIN_PENDING
    assert domain["records"] == [
        {"type": "TXT", "name": f"_storeplatform-challenge.{HOST}",
         "value": domain["verification_token"], "purpose": "proves the name is yours"},
        {"type": "CNAME", "name": HOST, "value": store.host,
         "purpose": "sends visitors to the store"},
        {"type": "A", "name": HOST, "value": "203.0.113.10",
         "purpose": "instead of the CNAME, for a name without subdomain"},
    ]


def test_verification_names_the_missing_record_and_changes_nothing(api, store, fake_dns):
    """(The store is a row: a failed verification asks nothing of the cluster.)"""
    domain = add(api, store).json()
    fake_dns.set(HOST, "CNAME", store.host)
    response = api.post(f"/api/stores/{store.id}/domains/{domain['id']}/verify/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == c.DOMAIN_PENDING
    assert body["last_error"] == (
        f"No TXT record _storeplatform-challenge.{HOST} was found: create it with the value "
        f"{domain['verification_token']}.")
    fake_dns.set(f"_storeplatform-challenge.{HOST}", "TXT", "someone-elses-token")
    fake_dns.set(HOST, "A", "198.51.100.1")
    fake_dns.remove(HOST, "CNAME")
    body = api.post(f"/api/stores/{store.id}/domains/{domain['id']}/verify/").json()
    assert "holds 'someone-elses-token', not the value" in body["last_error"]
    assert f"{HOST} points at 198.51.100.1, not at the platform" in body["last_error"]
    store.refresh_from_db()
    assert store.status == c.READY


def test_a_verified_domain_is_served_then_made_primary_then_removed(api, eager, live,
                                                                   fake_dns, cluster):
    store = live
    domain = add(api, store).json()
    point_at(fake_dns, store, domain)
    with eager():
        body = api.post(f"/api/stores/{store.id}/domains/{domain['id']}/verify/").json()
    assert body["status"] == c.DOMAIN_VERIFIED
    store.refresh_from_db()
    assert store.status == c.READY, store.status_message
    assert statuses(store)[-2:] == [c.CHANGING_URL, c.READY]
    row = Domain.objects.get()
    assert (row.status, row.verified_at is not None) == (c.DOMAIN_ACTIVE, True)
    hosts = {i["spec"]["rules"][0]["host"]
             for i in cluster.fake.cluster.list("ingresses", store.namespace, "")}
    assert hosts == {store.host, HOST}
    assert store.events.filter(step="Updating the store's addresses").exists()
    timeline = " | ".join(store.events.values_list("message", flat=True))
    assert f"Domain {HOST} added (pending_verification)" in timeline
    assert f"Domain {HOST}: pending_verification -> verified." in timeline
    assert f"Domain {HOST}: verified -> active." in timeline

    with eager():
        response = api.post(f"/api/stores/{store.id}/domains/{domain['id']}/make-primary/")
    assert response.status_code == 202
    store_json = api.get(f"/api/stores/{store.id}/").json()
    assert store_json["status"] == c.READY
    assert store_json["primary_url"] == f"http://{HOST}/"
    assert store_json["storefront_url"] == f"http://{store.host}/"
    assert store_json["admin_url"] == f"http://{HOST}/wp-admin/"
    assert [(d["hostname"], d["status"], d["is_primary"]) for d in store_json["domains"]] == [
        (HOST, c.DOMAIN_ACTIVE, True)]
    # The release now tells WordPress its new home, and the platform host redirects.
    setup = next(j for j in cluster.fake.cluster.list("jobs", store.namespace, ""))
    env = {e["name"]: e.get("value") for e in setup["spec"]["template"]["spec"]["containers"][0][
        "env"]}
    assert env["STORE_URL"] == f"http://{HOST}"
    middlewares = cluster.fake.cluster.list("middlewares", store.namespace, "")
    assert [m["spec"]["redirectRegex"]["replacement"] for m in middlewares] == [
        f"http://{HOST}" + "${1}"]

    with eager():
        response = api.delete(f"/api/stores/{store.id}/domains/{domain['id']}/")
    assert response.status_code == 202 and response.json()["status"] == c.DOMAIN_REMOVING
    store.refresh_from_db()
    assert (store.status, store.public_host, store.primary_url) == (
        c.READY, "", f"http://{store.host}/")
    assert Domain.objects.count() == 0
    hosts = {i["spec"]["rules"][0]["host"]
             for i in cluster.fake.cluster.list("ingresses", store.namespace, "")}
    assert hosts == {store.host}
    assert {"domain_add", "domain_verify", "domain_primary", "domain_remove", "change_url"} <= set(
        AuditEntry.objects.values_list("action", flat=True))


def test_a_pending_domain_is_removed_at_once(api, store):
    domain = add(api, store).json()
    response = api.delete(f"/api/stores/{store.id}/domains/{domain['id']}/")
    assert response.status_code == 204
    assert Domain.objects.count() == 0
    store.refresh_from_db()
    assert store.status == c.READY


def test_the_periodic_check_verifies_and_notices_a_record_removed_later(api, eager, live,
                                                                       fake_dns):
    store = live
    domain = add(api, store).json()
    point_at(fake_dns, store, domain)
    with eager():
        counts = domains.check_domains()
    assert counts == {"checked": 1, "requested": 1}
    assert Domain.objects.get().status == c.DOMAIN_ACTIVE
    # What the owner hears about (stores.notification_types), in order.
    told = [t.key for t in map(notification_types.type_for, store.events.order_by("id")) if t]
    assert told[-2:] == ["domain.verified", "domain.active"], told

    fake_dns.remove(HOST)  # the owner deleted the CNAME
    Domain.objects.update(last_checked_at=None)
    with eager():
        assert domains.check_domains() == {"checked": 1, "requested": 0}
    row = Domain.objects.get()
    assert row.status == c.DOMAIN_ACTIVE  # it stays until the owner removes it
    assert f"{HOST} does not resolve: create a CNAME record {HOST} -> {store.host}" in (
        row.last_error)
    warning = store.events.filter(kind=c.EVENT_WARNING).last()
    assert warning.message.startswith(f"Domain {HOST} no longer points at this store:")
    assert notification_types.type_for(warning).key == "domain.lost"

    Domain.objects.update(last_checked_at=None)
    domains.check_domains()  # still missing: said once, not again
    assert store.events.filter(kind=c.EVENT_WARNING, message__contains="no longer").count() == 1
    fake_dns.set(HOST, "CNAME", store.host)
    Domain.objects.update(last_checked_at=None)
    domains.check_domains()
    assert Domain.objects.get().last_error == ""
    assert store.events.filter(message=f"Domain {HOST} points at this store again.").exists()


def test_a_domain_verified_while_the_store_is_busy_is_served_once_it_is_ready(
        api, eager, live, fake_dns):
    store = live
    domain = add(api, store).json()
    point_at(fake_dns, store, domain)
    Store.objects.filter(pk=store.id).update(status=c.UPGRADING)
    api.post(f"/api/stores/{store.id}/domains/{domain['id']}/verify/")
    assert Domain.objects.get().status == c.DOMAIN_VERIFIED
    Store.objects.filter(pk=store.id).update(status=c.READY)
    with eager():
        assert domains.check_domains()["requested"] == 1
    assert Domain.objects.get().status == c.DOMAIN_ACTIVE


# --- the store page and admin -----------------------------------------------------------


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def test_the_store_page_has_a_domains_card_with_records_to_copy(browser, api, store,
                                                                django_assert_num_queries):
    domain = add(api, store).json()
    html = browser.get(f"/stores/{store.id}/").content.decode()
    assert 'data-testid="domains-card"' in html and "js/domains.js" in html
    with django_assert_num_queries(4):  # session, user, store, its domains
        card = browser.get(f"/stores/{store.id}/domains/").content.decode()
    assert f'data-copy="_storeplatform-challenge.{HOST}"' in card
    assert f'data-copy="{domain["verification_token"]}"' in card
    assert f'data-copy="{store.host}"' in card
    assert 'hx-trigger="every 3s"' in card  # pending: the card follows it live
    assert "Pending verification" in card and ">Verify</button>" in card


def test_the_card_refuses_bad_input_with_the_reason(browser, store):
    response = browser.post(f"/stores/{store.id}/domains/add/", {"hostname": "10.0.0.1"},
                            follow=True)
    assert "10.0.0.1 is an IP address" in response.content.decode()
    assert Domain.objects.count() == 0


def test_the_card_verifies_and_says_what_is_missing(browser, api, store, fake_dns):
    domain = add(api, store).json()
    response = browser.post(f"/stores/{store.id}/domains/{domain['id']}/verify/", follow=True)
    assert f"{HOST} is not verified yet: No TXT record" in response.content.decode()


def test_someone_elses_domains_card_is_404(client, other_user, api, store):
    domain = add(api, store).json()
    client.force_login(other_user)
    assert client.get(f"/stores/{store.id}/domains/").status_code == 404
    for action in ("verify", "primary", "remove"):
        assert client.post(f"/stores/{store.id}/domains/{domain['id']}/{action}/").status_code \
            == 404
    assert client.post(f"/stores/{store.id}/domains/add/", {"hostname": "x.example.com"}
                       ).status_code == 404
    assert Domain.objects.count() == 1


def test_operators_see_and_verify_domains_in_admin(client, staff, api, store, fake_dns):
    domain = add(api, store).json()
    point_at(fake_dns, store, domain)
    client.force_login(staff)
    assert HOST in client.get("/admin/stores/domain/").content.decode()
    response = client.post("/admin/stores/domain/", {
        "action": "verify_domains", "_selected_action": [domain["id"]]}, follow=True)
    assert "Checked 1 domain(s)." in response.content.decode()
    assert Domain.objects.get().status == c.DOMAIN_VERIFIED

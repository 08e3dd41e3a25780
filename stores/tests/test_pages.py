"""The store owner's pages: dashboard, create form, store page with live
timeline, retry and delete, and the fragments htmx polls."""

import pytest
from django.utils import timezone

from stores import constants as c
from stores.models import Store
from stores.transitions import transition

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def make_store(browser, name="Acme Shop", engine="woocommerce"):
    response = browser.post("/stores/new/", {"name": name, "engine": engine})
    assert response.status_code == 302, response.content.decode()[:500]
    return Store.objects.get(name=name)


def test_signing_in_is_required(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_user_signs_in_with_the_login_form(client, user):
    response = client.post("/login/", {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_the_dashboard_lists_stores_with_their_urls_and_times(browser, cluster):
    store = make_store(browser)
    html = browser.get("/").content.decode()
    assert "Acme Shop" in html
    assert 'data-status="requested"' in html
    assert "http://acme-shop.localtest.me/" in html
    assert store.created_at.strftime("%Y-%m-%d") in html


def test_the_dashboard_says_plainly_when_no_cluster_is_reachable(browser, cluster):
    from django.core.cache import cache

    html = browser.get("/").content.decode()
    assert "banner-warning" not in html
    cluster.fake.pause()
    cache.delete("cluster-status")
    html = browser.get("/").content.decode()
    # The same words a store failing now would get (REASON_TITLES).
    assert "The Kubernetes cluster could not be reached." in html
    assert f"Nothing answered at {cluster.fake.url}" in html


def test_the_dashboard_says_plainly_when_no_cluster_is_configured(browser, settings, tmp_path,
                                                                  monkeypatch):
    from django.core.cache import cache

    settings.KUBECONFIG = str(tmp_path / "missing-kubeconfig")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    cache.delete("cluster-status")
    html = browser.get("/").content.decode()
    assert "No Kubernetes cluster is configured." in html
    assert "missing-kubeconfig, which does not exist" in html


def test_a_bad_name_is_shown_on_the_form_and_creates_nothing(browser):
    response = browser.post("/stores/new/", {"name": "!!", "engine": "woocommerce"})
    # Post/Redirect/Get: the form comes back on the dashboard, as typed.
    assert (response.status_code, response["Location"]) == (302, "/")
    html = browser.get("/").content.decode()
    assert "at least 3 characters" in html
    assert 'value="!!"' in html
    assert Store.objects.count() == 0
    assert "at least 3 characters" not in browser.get("/").content.decode()  # said once


def test_the_store_page_shows_the_timeline(browser):
    store = make_store(browser)
    html = browser.get(f"/stores/{store.id}/").content.decode()
    assert "WooCommerce store requested." in html
    assert 'id="detail-poller"' in html


def test_someone_elses_store_page_is_404(browser, other_user):
    theirs = Store.objects.create(owner=other_user, name="Theirs", slug="theirs",
                                  host="theirs.localtest.me", engine="woocommerce")
    for url in (f"/stores/{theirs.id}/", f"/stores/{theirs.id}/changes/?after=0",
                f"/stores/{theirs.id}/delete/", f"/stores/{theirs.id}/credentials/"):
        assert browser.get(url).status_code == 404
    assert browser.post(f"/stores/{theirs.id}/delete/").status_code == 404
    assert browser.post(f"/stores/{theirs.id}/retry/").status_code == 404


def test_the_detail_fragment_is_204_until_something_changes(browser,
                                                            django_assert_num_queries):
    store = make_store(browser)
    last = store.events.last()
    seen = store.updated_at.isoformat()
    url = f"/stores/{store.id}/changes/"
    with django_assert_num_queries(4):  # session, user, store, new events
        assert browser.get(url, {"after": last.id, "seen": seen}).status_code == 204
    transition(store.id, c.PROVISIONING, actor="worker", message="Picked up.")
    response = browser.get(url, {"after": last.id, "seen": seen})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Picked up." in html
    assert 'hx-swap-oob="beforeend:#timeline"' in html
    assert 'data-status="provisioning"' in html


def test_the_dashboard_fragment_sends_only_changed_rows(browser, settings,
                                                       django_assert_num_queries):
    settings.STORE_MAX_PER_USER = 5
    first = make_store(browser, "First Shop")
    make_store(browser, "Second Shop")
    cursor = timezone.now().isoformat()
    with django_assert_num_queries(3):  # session, user, changed rows
        assert browser.get("/stores/changes/", {"since": cursor}).status_code == 204
    transition(first.id, c.PROVISIONING, actor="worker")
    html = browser.get("/stores/changes/", {"since": cursor}).content.decode()
    assert "First Shop" in html and "Second Shop" not in html
    assert f'id="store-{first.id}"' in html


def test_a_long_step_shows_which_step_and_since_when(browser):
    store = make_store(browser)
    transition(store.id, c.PROVISIONING, actor="worker")
    Store.objects.filter(pk=store.id).update(current_step="Installing chart",
                                             step_started_at=timezone.now())
    html = browser.get(f"/stores/{store.id}/").content.decode()
    assert "Installing chart" in html
    assert 'class="elapsed" data-since=' in html


def test_a_failed_store_shows_the_reason_diagnostics_and_retry(browser):
    store = make_store(browser)
    transition(store.id, c.PROVISIONING, actor="worker")
    transition(store.id, c.FAILED, reason=c.REASON_TIMED_OUT,
               message="resource not ready, name: web, kind: Deployment",
               details={"cluster": {"pods": [{"name": "web-1", "phase": "Pending", "containers": [
                   {"container": "wordpress", "ready": False, "state": "ImagePullBackOff",
                    "detail": "pull access denied", "restarts": 0}]}],
                   "events": [{"object": "Pod/web-1", "reason": "Failed",
                               "message": "Failed to pull image", "count": 3}]}})
    html = browser.get(f"/stores/{store.id}/").content.decode()
    assert "Timed out waiting for the store" in html
    assert "ImagePullBackOff" in html and "Failed to pull image" in html
    assert f'action="/stores/{store.id}/retry/"' in html
    browser.post(f"/stores/{store.id}/retry/")
    assert Store.objects.get(pk=store.id).status == c.REQUESTED


def test_deleting_asks_for_confirmation_first(browser):
    store = make_store(browser)
    page = browser.get(f"/stores/{store.id}/delete/").content.decode()
    assert "cannot be undone" in page
    assert Store.objects.get(pk=store.id).status == c.REQUESTED
    browser.post(f"/stores/{store.id}/delete/")
    assert Store.objects.get(pk=store.id).status == c.DELETING


def test_the_dashboard_query_count_does_not_grow_with_stores(browser, settings,
                                                             django_assert_num_queries, cluster):
    settings.STORE_MAX_PER_USER = 30
    make_store(browser, "Only One")
    browser.get("/")  # warm the cluster-status cache
    with django_assert_num_queries(4):  # session, user, quota, one page of stores
        browser.get("/")
    for n in range(20):
        make_store(browser, f"Shop {n}")
    with django_assert_num_queries(4):
        browser.get("/")


def test_the_dashboard_pages_by_keyset_newest_first(browser, settings, user):
    settings.STORE_MAX_PER_USER = 40
    for n in range(30):
        Store.objects.create(owner=user, name=f"Shop {n:02d}", slug=f"shop-{n:02d}",
                             host=f"shop-{n:02d}.localtest.me", engine="woocommerce")
    first = browser.get("/")
    names = [s.name for s in first.context["stores"]]
    assert len(names) == 25 and names[0] == "Shop 29"
    older = first.context["older"]
    second = browser.get("/", {"before": older})
    assert [s.name for s in second.context["stores"]] == [f"Shop {n:02d}" for n in range(4, -1, -1)]
    assert second.context["older"] == ""


def test_the_credentials_fragment_shows_the_admin_login(browser, cluster, eager):
    with eager():
        store = make_store(browser)
    html = browser.get(f"/stores/{store.id}/credentials/").content.decode()
    assert "admin" in html and "Password" in html

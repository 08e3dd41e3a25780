"""Operators in Django admin: every store, filters, search, the timeline and
commands inline, quotas, and the retry / delete / force-fail actions."""

import pytest

from stores import constants as c
from stores.models import AuditEntry, Quota, Store
from stores.transitions import transition

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def stores(user, other_user):
    made = []
    for owner, name, engine in [(user, "Alpha", "woocommerce"), (other_user, "Beta", "medusa")]:
        made.append(Store.objects.create(owner=owner, name=name, slug=name.lower(),
                                         host=f"{name.lower()}.localtest.me", engine=engine))
    return made


def test_the_changelist_shows_every_store_and_filters(operator, stores):
    html = operator.get("/admin/stores/store/").content.decode()
    assert "Alpha" in html and "Beta" in html
    html = operator.get("/admin/stores/store/?engine=medusa").content.decode()
    assert "Beta" in html and "Alpha" not in html
    html = operator.get("/admin/stores/store/?q=alph").content.decode()
    assert "Alpha" in html and "Beta" not in html


def test_the_store_page_has_the_timeline_and_commands(operator, stores, api, cluster, eager):
    with eager():
        store_id = api.post("/api/stores/", {"name": "Gamma", "engine": "woocommerce"},
                            format="json").json()["id"]
    html = operator.get(f"/admin/stores/store/{store_id}/change/").content.decode()
    assert "A worker picked up the store." in html
    assert "upgrade --install" in html


def test_force_fail_moves_a_stuck_store_to_failed(operator, stores):
    stuck = stores[0]
    transition(stuck.id, c.PROVISIONING, actor="worker")
    operator.post("/admin/stores/store/", {"action": "force_fail_stores",
                                           "_selected_action": [stuck.id]})
    stuck.refresh_from_db()
    assert stuck.status == c.FAILED
    assert stuck.status_reason == c.REASON_FORCE_FAILED
    assert AuditEntry.objects.filter(action="force_fail", store_id=stuck.id, via="admin").exists()


def test_retry_and_delete_actions_use_the_same_rules(operator, stores):
    first, second = stores
    transition(first.id, c.FAILED, reason=c.REASON_TIMED_OUT)
    operator.post("/admin/stores/store/", {"action": "retry_stores",
                                           "_selected_action": [first.id, second.id]})
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == c.REQUESTED
    assert second.status == c.REQUESTED  # was not failed: refused, unchanged
    operator.post("/admin/stores/store/", {"action": "delete_stores",
                                           "_selected_action": [second.id]})
    second.refresh_from_db()
    assert second.status == c.DELETING


def test_quotas_are_edited_per_user_and_audited(operator, user):
    response = operator.post("/admin/stores/quota/add/", {"user": user.pk, "max_stores": 7,
                                                          "note": "agency"})
    assert response.status_code == 302
    assert Quota.objects.get(user=user).max_stores == 7
    assert AuditEntry.objects.filter(action="quota").exists()


def test_the_audit_log_exports_as_csv(operator, stores, api):
    api.post("/api/stores/", {"name": "Delta", "engine": "woocommerce"}, format="json")
    entry = AuditEntry.objects.get(action="create")
    response = operator.post("/admin/stores/auditentry/", {"action": "export_csv",
                                                           "_selected_action": [entry.pk]})
    assert response["Content-Type"] == "text/csv"
    text = response.content.decode()
    assert text.splitlines()[0] == "time,actor,action,store,ip,via,details"
    assert ",alice,create," in text and "127.0.0.1" in text

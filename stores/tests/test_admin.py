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


# --- admin cannot bypass the platform (issue 14) -----------------------------


def test_djangos_delete_selected_is_not_offered_for_stores(operator, stores):
    page = operator.get("/admin/stores/store/")
    actions = [value for value, _ in page.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions and "delete_stores" in actions
    operator.post("/admin/stores/store/", {"action": "delete_selected", "post": "yes",
                                           "_selected_action": [stores[0].id]})
    assert Store.objects.filter(pk=stores[0].id, status=c.REQUESTED).exists()
    assert operator.get(f"/admin/stores/store/{stores[0].id}/delete/").status_code == 403
    assert Store.objects.filter(pk=stores[0].id).exists()


def test_audit_entries_cannot_be_changed_or_deleted_in_admin(operator, api):
    api.post("/api/stores/", {"name": "Delta", "engine": "woocommerce"}, format="json")
    entry = AuditEntry.objects.get(action="create")
    page = operator.get("/admin/stores/auditentry/")
    actions = [value for value, _ in page.context["action_form"].fields["action"].choices]
    assert actions == ["", "export_csv"]
    assert operator.get(f"/admin/stores/auditentry/{entry.pk}/delete/").status_code == 403
    operator.post(f"/admin/stores/auditentry/{entry.pk}/change/", {"action": "changed"})
    operator.post("/admin/stores/auditentry/", {"action": "delete_selected", "post": "yes",
                                                "_selected_action": [entry.pk]})
    entry.refresh_from_db()
    assert entry.action == "create"


def test_audit_entries_are_append_only_in_the_model_too(api):
    from django.contrib.auth.models import Permission

    from stores.models import AuditEntryIsAppendOnly

    api.post("/api/stores/", {"name": "Delta", "engine": "woocommerce"}, format="json")
    entry = AuditEntry.objects.get(action="create")
    entry.action = "nothing happened"
    with pytest.raises(AuditEntryIsAppendOnly):
        entry.save()
    with pytest.raises(AuditEntryIsAppendOnly):
        entry.delete()
    with pytest.raises(AuditEntryIsAppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(action="x")
    with pytest.raises(AuditEntryIsAppendOnly):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "create"
    # No permission exists that could be granted to change or delete one.
    codenames = set(Permission.objects.filter(content_type__model="auditentry")
                    .values_list("codename", flat=True))
    assert codenames == {"add_auditentry", "view_auditentry"}


def test_deleting_a_user_keeps_their_audit_entries(api, user):
    api.post("/api/stores/", {"name": "Delta", "engine": "woocommerce"}, format="json")
    Store.objects.all().delete()
    user.delete()
    entry = AuditEntry.objects.get(action="create")
    assert entry.actor is None and entry.actor_name == "alice"


def test_deleting_a_quota_is_audited_like_adding_one(operator, user, other_user):
    for owner in (user, other_user):
        Quota.objects.create(user=owner, max_stores=5)
    mine = Quota.objects.get(user=user)
    operator.post(f"/admin/stores/quota/{mine.pk}/delete/", {"post": "yes"})
    operator.post("/admin/stores/quota/", {"action": "delete_selected", "post": "yes",
                                           "_selected_action": [Quota.objects.get().pk]})
    assert not Quota.objects.exists()
    deleted = AuditEntry.objects.filter(action="quota_deleted", via="admin")
    assert sorted(e.details["user"] for e in deleted) == ["alice", "bob"]


# -- the store page's buttons (POST /admin/stores/store/<id>/operate/) ----------------


def test_a_store_page_button_needs_its_own_permission(client, django_user_model, stores):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="x-password-1",
                                                   is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_store"))
    client.force_login(viewer)
    store = stores[0]
    Store.objects.filter(pk=store.pk).update(status=c.FAILED)
    page = client.get(f"/admin/stores/store/{store.pk}/change/").content.decode()
    assert "Retry the" not in page  # no button it may not press
    response = client.post(f"/admin/stores/store/{store.pk}/operate/", {"action": "retry"},
                           follow=True)
    assert "This needs the permission stores.retry_store." in response.content.decode()
    assert Store.objects.get(pk=store.pk).status == c.FAILED

    viewer.user_permissions.add(Permission.objects.get(codename="retry_store"))
    page = client.get(f"/admin/stores/store/{store.pk}/change/").content.decode()
    assert "Retry the" in page


@pytest.mark.parametrize("revision", ["abc", "²", "", "9" * 40])
def test_a_crafted_rollback_revision_is_refused_not_a_500(operator, stores, revision):
    store = stores[0]
    Store.objects.filter(pk=store.pk).update(status=c.READY, helm_revision=2)
    response = operator.post(f"/admin/stores/store/{store.pk}/operate/",
                             {"action": "rollback", "revision": revision}, follow=True)
    assert response.status_code == 200
    assert "Choose a revision to roll back to." in response.content.decode()
    assert Store.objects.get(pk=store.pk).status == c.READY


def test_an_unknown_button_or_a_malformed_id_is_refused(operator, stores):
    response = operator.post(f"/admin/stores/store/{stores[0].pk}/operate/",
                             {"action": "explode"}, follow=True)
    assert "Unknown operation &#x27;explode&#x27;." in response.content.decode()
    assert operator.post("/admin/stores/store/NOT-AN-ID/operate/",
                         {"action": "retry"}).status_code == 404
    # NUL bytes never reach a view (stores.middleware answers 400 first).
    assert operator.post("/admin/stores/store/%00bad/operate/",
                         {"action": "retry"}).status_code == 400


def test_a_user_with_live_stores_cannot_be_deleted_in_admin(operator, stores, user):
    """Django's user admin would cascade the rows and leave the namespaces
    running: the user's live stores are listed as what must go first."""
    page = operator.get(f"/admin/auth/user/{user.pk}/delete/").content.decode()
    assert "Store Alpha" in page and "delete it first" in page
    operator.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})
    assert Store.objects.filter(pk=stores[0].pk).exists()
    response = operator.post("/admin/auth/user/", {"action": "delete_selected",
                                                   "_selected_action": [user.pk],
                                                   "post": "yes"})
    assert Store.objects.filter(pk=stores[0].pk).exists(), response.status_code

    Store.objects.filter(owner=user).update(status=c.DELETED)
    operator.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})
    assert not Store.objects.filter(pk=stores[0].pk).exists()
